//! The monthly statement of settlements per region pair.

use super::*;

impl<S: Store> Clearinghouse<S> {
    pub async fn monthly_statement(&self, setlym: &str) -> Result<pb::MonthlyStatement, ServiceError> {
        let month = crate::calendar::Month::parse(setlym).ok_or_else(|| ServiceError::field("setlym", "must be YYYYMM"))?;
        let mut dates = self.store.closed_windows().await?;
        let open = self.store.open_window(0, crate::calendar::today()).await?;
        dates.push(open);
        let mut out = pb::MonthlyStatement { setlym: setlym.into(), ..Default::default() };
        let mut per: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let (mut gross, mut moved) = (0, 0);
        dates.sort();
        dates.dedup();
        for d in dates.into_iter().filter(|d| month.contains(*d)) {
            match self.stored_report(d).await? {
                Some(r) => {
                    out.clr_dates.push(d.to_string());
                    for p in &r.positions {
                        let e = per.entry(p.admdvs.clone()).or_default();
                        e.0 += p.payable_fen;
                        e.1 += p.receivable_fen;
                    }
                    gross += r.gross_total_fen;
                    moved += r.multilateral_net_total_fen;
                    out.settlement_count += r.settlement_count;
                }
                None => out.pending_clr_dates.push(d.to_string()),
            }
        }
        out.positions = per
            .into_iter()
            .map(|(admdvs, (p, r))| pb::Position { admdvs, payable: fmt_yuan(p), receivable: fmt_yuan(r), net: fmt_yuan(r - p) })
            .collect();
        out.gross_total = fmt_yuan(gross);
        out.multilateral_net_total = fmt_yuan(moved);
        Ok(out)
    }
}
