//! 3201/3202: a service location's (or one of its institutions') totals of a range of clearing days, or
//! detail list of one day, against what is recorded.

use super::*;
use crate::store::PairTotals;
use region_adapter::money::fmt_yuan;

/// The longest range one totals reconciliation covers (a month).
pub const MAX_RECONCILE_DAYS: i64 = 31;

/// What a difference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    /// They have the settlement, we do not.
    MissingHere,
    /// We have it, they do not.
    MissingThere,
    AmountDiffers,
    TotalsDiffer,
}

impl DifferenceKind {
    pub fn code(self) -> &'static str {
        match self {
            DifferenceKind::MissingHere => "missing_here",
            DifferenceKind::MissingThere => "missing_there",
            DifferenceKind::AmountDiffers => "amount_differs",
            DifferenceKind::TotalsDiffer => "totals_differ",
        }
    }
}

/// One difference: a settlement (or the totals) and, for an amount, the field and both values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub setl_id: String,
    pub field: &'static str,
    pub ours: String,
    pub theirs: String,
}

/// A reconciliation's outcome: at most `MAX_DIFFERENCES` listed, all counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    pub differences: Vec<Difference>,
    pub differences_total: i64,
    pub compared: i64,
}

impl Reconciliation {
    pub fn matched(&self) -> bool {
        self.differences_total == 0
    }
    fn push(&mut self, d: Difference) {
        self.differences_total += 1;
        if self.differences.len() < MAX_DIFFERENCES {
            self.differences.push(d);
        }
    }
}

/// 3201: their totals of a service location (or one institution of it) over `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsQuery {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub mdtrt: String,
    pub institution: Option<String>,
    pub count: i64,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
}

/// 3202: one settlement as they recorded it (fen; negative for a reversal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemAmounts {
    pub setl_id: String,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
}

/// A totals reconciliation covers `first..=last`, at most `MAX_RECONCILE_DAYS`.
pub fn check_range(first: NaiveDate, last: NaiveDate) -> Result<(), WindowsError> {
    if last < first || (last - first).num_days() >= MAX_RECONCILE_DAYS {
        return Err(WindowsError::Refused { field: "clr_date_end", why: format!("from clr_date on, at most {MAX_RECONCILE_DAYS} days") });
    }
    Ok(())
}

impl<S: Store> Windows<'_, S> {
    pub async fn reconcile_totals(&self, q: &TotalsQuery) -> Result<Reconciliation, WindowsError> {
        check_range(q.first, q.last)?;
        let mut ours = PairTotals::default();
        for d in q.first.iter_days().take_while(|d| *d <= q.last) {
            match &q.institution {
                None => ours.merge(&self.store.window_totals(d).await?.by_mdtrt.remove(&q.mdtrt).unwrap_or_default()),
                // One institution: its entries of the journal, added up.
                Some(code) => {
                    for e in self.store.window_journal(d).await?.iter().filter(|e| e.mdtrt_admdvs == q.mdtrt && e.fixmedins_code == *code) {
                        ours.add(&e.totals);
                    }
                }
            }
        }
        let mut out = Reconciliation { compared: 1, ..Default::default() };
        for (field, o, t, money) in [
            ("count", ours.count, q.count, false),
            ("medfee_sumamt", ours.medfee_fen, q.medfee_fen, true),
            ("fund_pay_sumamt", ours.fund_fen, q.fund_fen, true),
            ("acct_pay", ours.acct_fen, q.acct_fen, true),
        ] {
            if o != t {
                let f = |x: i64| if money { fmt_yuan(x) } else { x.to_string() };
                out.push(Difference { kind: DifferenceKind::TotalsDiffer, setl_id: String::new(), field, ours: f(o), theirs: f(t) });
            }
        }
        Ok(out)
    }

    /// Detail reconciliation of one service location's window (or of one institution's part of it; or,
    /// with no service location, of the whole window): their items against our journal. Entries of other
    /// institutions are neither compared nor listed.
    pub async fn reconcile_detail(
        &self,
        d: NaiveDate,
        mdtrt: Option<&str>,
        institution: Option<&str>,
        theirs: &[ItemAmounts],
    ) -> Result<Reconciliation, WindowsError> {
        let journal: Vec<JournalEntry> = self
            .store
            .window_journal(d)
            .await?
            .into_iter()
            .filter(|e| mdtrt.is_none_or(|m| e.mdtrt_admdvs == m) && institution.is_none_or(|c| e.fixmedins_code == c))
            .collect();
        let mut ours: HashMap<&str, &JournalEntry> = journal.iter().map(|e| (e.setl_id.as_str(), e)).collect();
        let mut out = Reconciliation { compared: theirs.len() as i64, ..Default::default() };
        let missing =
            |kind, setl_id: &str| Difference { kind, setl_id: setl_id.into(), field: "", ours: String::new(), theirs: String::new() };
        for item in theirs {
            match ours.remove(item.setl_id.as_str()) {
                None => out.push(missing(DifferenceKind::MissingHere, &item.setl_id)),
                Some(e) => {
                    for (field, o, t) in [
                        ("medfee_sumamt", e.totals.medfee_fen, item.medfee_fen),
                        ("fund_pay_sumamt", e.totals.fund_fen, item.fund_fen),
                        ("acct_pay", e.totals.acct_fen, item.acct_fen),
                    ] {
                        if o != t {
                            out.push(Difference {
                                kind: DifferenceKind::AmountDiffers,
                                setl_id: item.setl_id.clone(),
                                field,
                                ours: fmt_yuan(o),
                                theirs: fmt_yuan(t),
                            });
                        }
                    }
                }
            }
        }
        let mut left: Vec<&&JournalEntry> = ours.values().collect();
        left.sort_by(|a, b| a.setl_id.cmp(&b.setl_id));
        for e in left {
            out.push(missing(DifferenceKind::MissingThere, &e.setl_id));
        }
        Ok(out)
    }
}
