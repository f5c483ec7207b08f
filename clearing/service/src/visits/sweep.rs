//! The sweep: expired open and cancelled visits removed, visits left settling by a crash finished or reopened.

use super::*;

impl<S: Store> Visits<'_, S> {
    /// Deletes open and cancelled visits past their expiry (settled ones stay), with their entries in the
    /// members' open lists, and resolves visits stuck `settling` (`resolve_stuck_settling`). Returns how
    /// many were swept or resolved.
    pub async fn sweep_expired_visits(&self) -> Result<usize, ServiceError> {
        let mut swept = 0;
        for shard in 0..crate::ids::SHARDS {
            let keys = self.ch.store.visit_names(shard).await?;
            if keys.is_empty() {
                continue;
            }
            let recs = self.ch.store.visit_records(shard, &keys).await?;
            for (key, rec) in keys.iter().zip(recs) {
                let Some(rec) = rec else { continue };
                let visit: VisitRecord = serde_json::from_str(&rec.data).map_err(corrupt)?;
                if visit.status == Status::Settling && visit.settling_since_ms == 0 {
                    // Written before the time was kept (a settlement may be running on an older
                    // replica right now): its staleness counts from now.
                    let mut v = visit;
                    v.settling_since_ms = now_ms();
                    let data = Some(serde_json::to_string(&v).map_err(corrupt)?);
                    self.ch.store.put_visit_records(shard, vec![RecordWrite { key: key.clone(), expected: rec.version, data }]).await?;
                    continue;
                }
                if visit.stuck_settling(now_ms()) {
                    if self.resolve_stuck_settling(shard, key, rec.version, visit).await? {
                        swept += 1;
                    }
                    continue;
                }
                if !visit.expired(now_ms()) {
                    continue;
                }
                let mut writes = vec![RecordWrite { key: key.clone(), expected: rec.version, data: None }];
                if visit.status == Status::Open {
                    writes.push(self.without_open_visit(shard, &visit).await?);
                }
                // A conflict means someone touched it just now: the next sweep looks again.
                if self.ch.store.put_visit_records(shard, writes).await? {
                    swept += 1;
                }
            }
        }
        Ok(swept)
    }

    /// A visit left `settling` (a crash between the settlement's commit and the visit's update, and the
    /// HIS never resent the msgid): settled with the stored settlement when the msgid committed, reopened
    /// (back in the member's open list, details unchanged) when it did not. Logged either way; `false`
    /// when someone changed the visit meanwhile (the next sweep looks again).
    pub(crate) async fn resolve_stuck_settling(
        &self,
        shard: u16,
        key: &str,
        version: u64,
        mut visit: VisitRecord,
    ) -> Result<bool, ServiceError> {
        let idem = idempotency_key(&visit.mdtrt_admdvs, &visit.fixmedins_code, &visit.setl_msgid);
        let committed = self.ch.store.lookup_idempotency(shard_of(&visit.insuplc_admdvs, &visit.psn_no), &idem).await?;
        let (action, reopened) = match committed {
            Some(stored) => {
                visit.status = Status::Settled;
                visit.setl_id = stored.setl_id;
                ("settled from its stored settlement", None)
            }
            None => {
                visit.status = Status::Open;
                visit.setl_msgid.clear();
                ("reopened: its settlement never committed", Some(self.with_open_visit(shard, &visit).await?))
            }
        };
        let this = RecordWrite { key: key.to_string(), expected: version, data: Some(serde_json::to_string(&visit).map_err(corrupt)?) };
        let done = self.ch.store.put_visit_records(shard, std::iter::once(this).chain(reopened).collect()).await?;
        if done {
            tracing::warn!(mdtrt_id = %visit.mdtrt_id, action, "a visit left settling was resolved");
        }
        Ok(done)
    }
}
