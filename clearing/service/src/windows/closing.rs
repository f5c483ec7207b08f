//! Closing a window, its netting report (stored once), acknowledgements.

use super::*;

/// Where a window is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Open,
    Closed,
    /// Netted; some region with an instruction has not acknowledged yet.
    Netted,
    /// Netted, and every region with an instruction acknowledged.
    Settled,
}

impl WindowState {
    pub fn code(self) -> &'static str {
        match self {
            WindowState::Open => "open",
            WindowState::Closed => "closed",
            WindowState::Netted => "netted",
            WindowState::Settled => "settled",
        }
    }
}

/// A region's acknowledgement of its transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub admdvs: String,
    pub bank_ref: String,
    /// RFC 3339.
    pub acknowledged_at: String,
}

/// A window as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowView {
    pub clr_date: NaiveDate,
    pub state: WindowState,
    pub settlement_count: i64,
    /// The stored report's digest; empty until netted.
    pub report_digest: String,
    pub acknowledgements: Vec<Acknowledgement>,
    /// Regions with an instruction that have not acknowledged.
    pub awaiting: Vec<String>,
}

impl<S: Store> Windows<'_, S> {
    pub(crate) async fn advances(&self) -> Result<BTreeMap<String, i64>, WindowsError> {
        let raw = self.store.advances().await?;
        raw.into_iter()
            .map(|(k, v)| match v.parse::<i64>() {
                Ok(f) => Ok((k, f)),
                Err(e) => Err(WindowsError::Corrupt(format!("advance of {k}: {e}"))),
            })
            .collect()
    }

    pub(crate) async fn stored_report(&self, d: NaiveDate) -> Result<Option<Report>, WindowsError> {
        match self.store.netting_report(d).await? {
            Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| WindowsError::Corrupt(format!("stored report of {d}: {e}"))),
            None => Ok(None),
        }
    }

    /// The window's live totals as netting input (open or closed).
    pub(crate) async fn live_report(&self, d: NaiveDate) -> Result<Report, WindowsError> {
        let totals = self.store.window_totals(d).await?;
        let journal = self.store.journal_sums(d).await?;
        netting::net(&d.to_string(), &totals, &journal, &self.advances().await?)
            .map_err(|e| WindowsError::Corrupt(format!("netting {d}: {e}")))
    }

    /// Closes `d` (idempotent; never undone). A future day cannot be closed.
    pub async fn close(&self, d: NaiveDate) -> Result<WindowView, WindowsError> {
        if d > crate::calendar::today() {
            return Err(WindowsError::Refused { field: "clr_date", why: "a future window cannot be closed".into() });
        }
        self.store.close_window(d).instrument(tracing::debug_span!("window.close", clr_date = %d)).await?;
        tracing::info!(clr_date = %d, "window closed");
        self.window(d).await
    }

    pub async fn window(&self, d: NaiveDate) -> Result<WindowView, WindowsError> {
        let closed = self.store.closed_windows().await?.contains(&d);
        let report = self.stored_report(d).await?;
        let acks = self.store.acknowledgements(d).await?;
        let acknowledgements = acks
            .iter()
            .map(|(admdvs, v)| {
                let (bank_ref, at) = v.split_once('|').unwrap_or((v.as_str(), ""));
                Acknowledgement { admdvs: admdvs.clone(), bank_ref: bank_ref.into(), acknowledged_at: at.into() }
            })
            .collect();
        let (state, settlement_count, report_digest, awaiting) = match &report {
            Some(r) => {
                let awaiting: Vec<String> =
                    r.positions.iter().filter(|p| p.net_fen != 0 && !acks.contains_key(&p.admdvs)).map(|p| p.admdvs.clone()).collect();
                let state = if awaiting.is_empty() { WindowState::Settled } else { WindowState::Netted };
                (state, r.settlement_count, r.digest.clone(), awaiting)
            }
            None => {
                let count = self.store.window_totals(d).await?.all.count;
                (if closed { WindowState::Closed } else { WindowState::Open }, count, String::new(), Vec::new())
            }
        };
        Ok(WindowView { clr_date: d, state, settlement_count, report_digest, acknowledgements, awaiting })
    }

    /// The closed windows and today's open one, oldest first.
    pub async fn list(&self) -> Result<Vec<WindowView>, WindowsError> {
        let mut dates = self.store.closed_windows().await?;
        let open = self.store.open_window(0, crate::calendar::today()).await?;
        if !dates.contains(&open) {
            dates.push(open);
        }
        let mut windows = Vec::with_capacity(dates.len());
        for d in dates {
            windows.push(self.window(d).await?);
        }
        Ok(windows)
    }

    /// The netting report of a closed window, computed once and stored write-once.
    pub async fn netting_report(&self, d: NaiveDate) -> Result<Report, WindowsError> {
        if let Some(r) = self.stored_report(d).await? {
            return Ok(r);
        }
        if !self.store.closed_windows().await?.contains(&d) {
            return Err(WindowsError::NotNow(format!("window {d} is open: close it before netting (CloseWindow)")));
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
        let json = serde_json::to_string(&report).map_err(|e| WindowsError::Corrupt(e.to_string()))?;
        let stored = self.store.put_netting_report_once(d, &json).await?;
        tracing::info!(clr_date = %d, elapsed_ms = started.elapsed().as_millis() as u64, regions = report.positions.len(), "window netted");
        // Another replica may have stored its (identical, deterministic) report first: return what is stored.
        if stored == json { Ok(report) } else { serde_json::from_str(&stored).map_err(|e| WindowsError::Corrupt(e.to_string())) }
    }

    /// Region `admdvs` acknowledges its transfer of window `d` with `bank_ref` (once; the same reference
    /// again is accepted, another refused).
    pub async fn acknowledge(&self, d: NaiveDate, admdvs: &str, bank_ref: &str) -> Result<WindowView, WindowsError> {
        if bank_ref.is_empty() || bank_ref.len() > 64 || bank_ref.contains('|') {
            return Err(WindowsError::Refused { field: "bank_ref", why: "1–64 characters, no '|'".into() });
        }
        let report = self.stored_report(d).await?.ok_or_else(|| WindowsError::NotNow(format!("window {d} is not netted yet")))?;
        if !report.positions.iter().any(|p| p.admdvs == admdvs && p.net_fen != 0) {
            return Err(WindowsError::NotNow(format!("{admdvs} has no instruction in window {d}")));
        }
        let value = format!("{bank_ref}|{}", chrono::Utc::now().to_rfc3339());
        let stored = self.store.acknowledge_once(d, admdvs, &value).await?;
        if stored.split('|').next() != Some(bank_ref) {
            return Err(WindowsError::NotNow(format!("{admdvs} already acknowledged window {d} with another bank reference")));
        }
        self.window(d).await
    }
}
