//! Closing a window, its netting report (stored once), acknowledgements.

use super::*;

impl<S: Store> Clearinghouse<S> {
    pub(crate) async fn advances(&self) -> Result<BTreeMap<String, i64>, ServiceError> {
        let raw = self.store.advances().await?;
        raw.into_iter()
            .map(|(k, v)| match v.parse::<i64>() {
                Ok(f) => Ok((k, f)),
                Err(e) => Err(ServiceError::Internal(format!("advance of {k}: {e}"))),
            })
            .collect()
    }

    pub(crate) async fn stored_report(&self, d: NaiveDate) -> Result<Option<Report>, ServiceError> {
        match self.store.netting_report(d).await? {
            Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| ServiceError::Internal(format!("stored report of {d}: {e}"))),
            None => Ok(None),
        }
    }

    /// The window's live totals as netting input (open or closed).
    pub(crate) async fn live_report(&self, d: NaiveDate) -> Result<Report, ServiceError> {
        let totals = self.store.window_totals(d).await?;
        let journal = self.store.journal_sums(d).await?;
        netting::net(&d.to_string(), &totals, &journal, &self.advances().await?)
            .map_err(|e| ServiceError::Internal(format!("netting {d}: {e}")))
    }

    pub async fn close_window(&self, clr_date: &str) -> Result<pb::Window, ServiceError> {
        let d = date("clr_date", clr_date)?;
        if d > crate::calendar::today() {
            return Err(ServiceError::field("clr_date", "a future window cannot be closed"));
        }
        self.store.close_window(d).instrument(tracing::debug_span!("window.close", clr_date = %d)).await?;
        tracing::info!(clr_date = %d, "window closed");
        self.window(d).await
    }

    pub async fn get_window(&self, clr_date: &str) -> Result<pb::Window, ServiceError> {
        self.window(date("clr_date", clr_date)?).await
    }

    pub(crate) async fn window(&self, d: NaiveDate) -> Result<pb::Window, ServiceError> {
        let closed = self.store.closed_windows().await?.contains(&d);
        let report = self.stored_report(d).await?;
        let acks = self.store.acknowledgements(d).await?;
        let acknowledgements: Vec<pb::Acknowledgement> = acks
            .iter()
            .map(|(admdvs, v)| {
                let (bank_ref, at) = v.split_once('|').unwrap_or((v.as_str(), ""));
                pb::Acknowledgement { admdvs: admdvs.clone(), bank_ref: bank_ref.into(), acknowledged_at: at.into() }
            })
            .collect();
        let (state, count, digest, awaiting) = match &report {
            Some(r) => {
                let awaiting: Vec<String> =
                    r.positions.iter().filter(|p| p.net_fen != 0 && !acks.contains_key(&p.admdvs)).map(|p| p.admdvs.clone()).collect();
                (if awaiting.is_empty() { "settled" } else { "netted" }, r.settlement_count, r.digest.clone(), awaiting)
            }
            None => {
                let count = self.store.window_totals(d).await?.all.count;
                (if closed { "closed" } else { "open" }, count, String::new(), Vec::new())
            }
        };
        Ok(pb::Window {
            clr_date: d.to_string(),
            state: state.into(),
            settlement_count: count,
            report_digest: digest,
            acknowledgements,
            awaiting_admdvs: awaiting,
        })
    }

    pub async fn list_windows(&self) -> Result<pb::ListWindowsResponse, ServiceError> {
        let mut dates = self.store.closed_windows().await?;
        let today = crate::calendar::today();
        let open = self.store.open_window(0, today).await?;
        if !dates.contains(&open) {
            dates.push(open);
        }
        let mut windows = Vec::with_capacity(dates.len());
        for d in dates {
            windows.push(self.window(d).await?);
        }
        Ok(pb::ListWindowsResponse { windows })
    }

    /// The netting report of a closed window, computed once and stored write-once.
    pub async fn netting_report(&self, clr_date: &str) -> Result<Report, ServiceError> {
        let d = date("clr_date", clr_date)?;
        if let Some(r) = self.stored_report(d).await? {
            return Ok(r);
        }
        if !self.store.closed_windows().await?.contains(&d) {
            return Err(ServiceError::FailedPrecondition(format!("window {d} is open: close it before netting (CloseWindow)")));
        }
        let started = std::time::Instant::now();
        let report = self.live_report(d).instrument(tracing::debug_span!("netting", clr_date = %d)).await?;
        let date_label = [KeyValue::new("clr_date", d.to_string())];
        M.netting_duration.record(started.elapsed().as_secs_f64(), &[]);
        M.window_settlements.record(report.settlement_count.max(0) as u64, &date_label);
        M.window_pairs.record(report.obligations.len() as u64, &date_label);
        record_advance_usage(&report.advances);
        if !report.complete {
            tracing::error!(clr_date = %d, "netting: totals and journal disagree; the report is marked incomplete");
        }
        let json = serde_json::to_string(&report).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let stored = self.store.put_netting_report_once(d, &json).await?;
        tracing::info!(clr_date = %d, elapsed_ms = started.elapsed().as_millis() as u64, regions = report.positions.len(), "window netted");
        // Another replica may have stored its (identical, deterministic) report first: return what is stored.
        if stored == json { Ok(report) } else { serde_json::from_str(&stored).map_err(|e| ServiceError::Internal(e.to_string())) }
    }

    pub async fn acknowledge(&self, req: &pb::AcknowledgeSettlementRequest) -> Result<pb::Window, ServiceError> {
        let d = date("clr_date", &req.clr_date)?;
        let adm = region("admdvs", &req.admdvs)?;
        if req.bank_ref.is_empty() || req.bank_ref.len() > 64 || req.bank_ref.contains('|') {
            return Err(ServiceError::field("bank_ref", "1–64 characters, no '|'"));
        }
        let report =
            self.stored_report(d).await?.ok_or_else(|| ServiceError::FailedPrecondition(format!("window {d} is not netted yet")))?;
        if !report.positions.iter().any(|p| p.admdvs == adm && p.net_fen != 0) {
            return Err(ServiceError::FailedPrecondition(format!("{adm} has no instruction in window {d}")));
        }
        let value = format!("{}|{}", req.bank_ref, chrono::Utc::now().to_rfc3339());
        let stored = self.store.acknowledge_once(d, &adm, &value).await?;
        if stored.split('|').next() != Some(req.bank_ref.as_str()) {
            return Err(ServiceError::FailedPrecondition(format!("{adm} already acknowledged window {d} with another bank reference")));
        }
        self.window(d).await
    }
}
