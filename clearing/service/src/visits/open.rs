//! Reading and changing a visit record and its member's list of open visits, together (compare-and-set).

use super::*;

impl<S: Store> Visits<'_, S> {
    pub(crate) async fn load_visit(&self, mdtrt_id: &str, authorize: Authorize<'_>) -> Result<Loaded, ServiceError> {
        let shard = shard_of_setl_id(mdtrt_id).ok_or_else(|| visit_not_found(mdtrt_id))?;
        let [rec]: [Option<Record>; 1] = self
            .ch
            .store
            .visit_records(shard, &[visit_key(mdtrt_id)])
            .await?
            .try_into()
            .map_err(|_| ServiceError::Internal("record count".into()))?;
        let rec = rec.ok_or_else(|| visit_not_found(mdtrt_id))?;
        let visit: VisitRecord = serde_json::from_str(&rec.data).map_err(corrupt)?;
        // A caller that may not touch the visit learns nothing about it.
        authorize(&visit.mdtrt_admdvs, &visit.fixmedins_code).map_err(|_| visit_not_found(mdtrt_id))?;
        Ok(Loaded { shard, visit, version: rec.version })
    }

    /// Reloads `mdtrt_id`, applies `change` and writes it back with compare-and-set (also updating the
    /// member's open list when the visit stops being open), again after a conflict.
    pub(crate) async fn change_visit<T>(
        &self,
        mdtrt_id: &str,
        authorize: Authorize<'_>,
        mut change: impl FnMut(&mut VisitRecord) -> Result<T, ServiceError>,
    ) -> Result<(VisitRecord, T), ServiceError> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let Loaded { shard, mut visit, version } = self.load_visit(mdtrt_id, authorize).await?;
            let was_open = visit.status == Status::Open;
            let out = change(&mut visit)?;
            let data = serde_json::to_string(&visit).map_err(corrupt)?;
            let mut writes = vec![RecordWrite { key: visit_key(mdtrt_id), expected: version, data: Some(data) }];
            if was_open && visit.status != Status::Open {
                writes.push(self.without_open_visit(shard, &visit).await?);
            } else if !was_open && visit.status == Status::Open {
                writes.push(self.with_open_visit(shard, &visit).await?);
            }
            if self.ch.store.put_visit_records(shard, writes).await? {
                return Ok((visit, out));
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    /// The member's open list without `visit` (to be written with the visit's change).
    pub(crate) async fn without_open_visit(&self, shard: u16, visit: &VisitRecord) -> Result<RecordWrite, ServiceError> {
        self.change_open_list(shard, visit, |open| open.retain(|o| o.mdtrt_id != visit.mdtrt_id)).await
    }

    /// The member's open list with `visit` again (a visit reopened after a settlement that did not happen).
    pub(crate) async fn with_open_visit(&self, shard: u16, visit: &VisitRecord) -> Result<RecordWrite, ServiceError> {
        self.change_open_list(shard, visit, |open| {
            if !open.iter().any(|o| o.mdtrt_id == visit.mdtrt_id) {
                open.push(OpenVisit {
                    mdtrt_id: visit.mdtrt_id.clone(),
                    expires_ms: visit.expires_ms,
                    mdtrt_admdvs: visit.mdtrt_admdvs.clone(),
                    fixmedins_code: visit.fixmedins_code.clone(),
                });
            }
        })
        .await
    }

    /// The member's open list changed by `change`, as a write expecting the version read.
    pub(crate) async fn change_open_list(
        &self,
        shard: u16,
        visit: &VisitRecord,
        change: impl FnOnce(&mut Vec<OpenVisit>),
    ) -> Result<RecordWrite, ServiceError> {
        let key = member_visits_key(&visit.insuplc_admdvs, &visit.psn_no);
        let [rec]: [Option<Record>; 1] = self
            .ch
            .store
            .visit_records(shard, std::slice::from_ref(&key))
            .await?
            .try_into()
            .map_err(|_| ServiceError::Internal("record count".into()))?;
        let (version, mut open): (u64, Vec<OpenVisit>) = match rec {
            None => (0, Vec::new()),
            Some(r) => (r.version, serde_json::from_str(&r.data).map_err(corrupt)?),
        };
        change(&mut open);
        Ok(RecordWrite { key, expected: version, data: Some(serde_json::to_string(&open).map_err(corrupt)?) })
    }

    /// The service locations where the member has an open (unexpired) visit.
    pub async fn open_visit_regions(&self, insured: &str, psn_no: &str) -> Result<Vec<region_adapter::Admdvs>, ServiceError> {
        let key = member_visits_key(insured, psn_no);
        let recs = self.ch.store.visit_records(shard_of(insured, psn_no), std::slice::from_ref(&key)).await?;
        let Some(Some(rec)) = recs.into_iter().next() else { return Ok(Vec::new()) };
        let open: Vec<OpenVisit> = serde_json::from_str(&rec.data).map_err(corrupt)?;
        let now = now_ms();
        Ok(open.iter().filter(|o| o.expires_ms > now).filter_map(|o| region_adapter::Admdvs::parse(&o.mdtrt_admdvs)).collect())
    }
}
