//! The monthly statement of settlements per region pair.

use super::*;
use crate::calendar::Month;

/// A month's netted windows summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyStatement {
    pub month: Month,
    /// The netted windows summed.
    pub clr_dates: Vec<NaiveDate>,
    /// Windows of the month not netted yet (not included).
    pub pending: Vec<NaiveDate>,
    /// Per region: (payable, receivable) fen.
    pub positions: BTreeMap<String, (i64, i64)>,
    pub settlement_count: i64,
    pub gross_total_fen: i64,
    pub multilateral_net_total_fen: i64,
}

impl<S: Store> Windows<'_, S> {
    pub async fn monthly_statement(&self, month: Month) -> Result<MonthlyStatement, WindowsError> {
        let mut dates = self.store.closed_windows().await?;
        dates.push(self.store.open_window(0, crate::calendar::today()).await?);
        dates.sort();
        dates.dedup();
        let mut out = MonthlyStatement {
            month,
            clr_dates: vec![],
            pending: vec![],
            positions: BTreeMap::new(),
            settlement_count: 0,
            gross_total_fen: 0,
            multilateral_net_total_fen: 0,
        };
        for d in dates.into_iter().filter(|d| month.contains(*d)) {
            match self.stored_report(d).await? {
                Some(r) => {
                    out.clr_dates.push(d);
                    for p in &r.positions {
                        let e = out.positions.entry(p.admdvs.clone()).or_default();
                        e.0 += p.payable_fen;
                        e.1 += p.receivable_fen;
                    }
                    out.gross_total_fen += r.gross_total_fen;
                    out.multilateral_net_total_fen += r.multilateral_net_total_fen;
                    out.settlement_count += r.settlement_count;
                }
                None => out.pending.push(d),
            }
        }
        Ok(out)
    }
}
