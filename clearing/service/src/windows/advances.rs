//! Advances (预付金) per region and how much of them a window's net debit uses.

use super::*;

impl<S: Store> Windows<'_, S> {
    /// Sets region `admdvs`'s advance; its row as it stands now (no window's debit).
    pub async fn set_advance(&self, admdvs: &str, fen: i64) -> Result<netting::AdvanceRow, WindowsError> {
        self.store.set_advance(admdvs, fen).await?;
        let rows = netting::advance_rows(&[], &self.advances().await?);
        Ok(rows.into_iter().find(|r| r.admdvs == admdvs).expect("just set"))
    }

    /// Each region's net debit of window `d` against its advance (the stored report's, or live).
    pub async fn advance_positions(&self, d: NaiveDate) -> Result<Vec<netting::AdvanceRow>, WindowsError> {
        let report = match self.stored_report(d).await? {
            Some(r) => r,
            None => self.live_report(d).await?,
        };
        record_advance_usage(&report.advances);
        Ok(report.advances)
    }
}
