//! Advances (预付金) per region and how much of them a window's net debit uses.

use super::*;

impl<S: Store> Clearinghouse<S> {
    pub async fn set_advance(&self, req: &pb::SetAdvanceRequest) -> Result<pb::AdvancePosition, ServiceError> {
        let adm = region("admdvs", &req.admdvs)?;
        let mut v = Violations::default();
        let fen = fields::parse_money(&mut v, "amount", &req.amount, MAX_AMOUNT_FEN);
        v.into_result(())?;
        self.store.set_advance(&adm, fen.expect("checked")).await?;
        let rows = netting::advance_rows(&[], &self.advances().await?);
        Ok(rows.iter().find(|r| r.admdvs == adm).map(advance_pb).expect("just set"))
    }

    pub async fn advance_positions(&self, clr_date: &str) -> Result<pb::AdvancePositions, ServiceError> {
        let d = date("clr_date", clr_date)?;
        let report = match self.stored_report(d).await? {
            Some(r) => r,
            None => self.live_report(d).await?,
        };
        record_advance_usage(&report.advances);
        Ok(pb::AdvancePositions { clr_date: d.to_string(), positions: report.advances.iter().map(advance_pb).collect() })
    }
}
