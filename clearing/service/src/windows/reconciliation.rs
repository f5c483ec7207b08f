//! 3201/3202: a service location's (or one of its institutions') totals of a range of clearing days, or
//! detail list of one day, against what is recorded.

use super::*;
use crate::store::PairTotals;

/// The longest range one totals reconciliation covers (a month).
pub const MAX_RECONCILE_DAYS: i64 = 31;

impl<S: Store> Clearinghouse<S> {
    pub async fn reconcile_totals(&self, req: &pb::ReconcileTotalsRequest) -> Result<pb::ReconcileResult, ServiceError> {
        let first = date("clr_date", &req.clr_date)?;
        let last = if req.clr_date_end.is_empty() { first } else { date("clr_date_end", &req.clr_date_end)? };
        if last < first || (last - first).num_days() >= MAX_RECONCILE_DAYS {
            return Err(ServiceError::field("clr_date_end", format!("from clr_date on, at most {MAX_RECONCILE_DAYS} days")));
        }
        let mdtrt = region("mdtrt_admdvs", &req.mdtrt_admdvs)?;
        let mut v = Violations::default();
        let medfee = wire_signed(&mut v, "medfee_sumamt", &req.medfee_sumamt);
        let fund = wire_signed(&mut v, "fund_pay_sumamt", &req.fund_pay_sumamt);
        let acct = wire_signed(&mut v, "acct_pay", &req.acct_pay);
        let inst = institution_of(&mut v, &mdtrt, &req.fixmedins_code);
        v.into_result(())?;
        let mut ours = PairTotals::default();
        for d in first.iter_days().take_while(|d| *d <= last) {
            match inst {
                None => ours.merge(&self.store.window_totals(d).await?.by_mdtrt.remove(&mdtrt).unwrap_or_default()),
                // One institution: its entries of the journal, added up.
                Some(code) => {
                    for e in self.store.window_journal(d).await?.iter().filter(|e| e.mdtrt_admdvs == mdtrt && e.fixmedins_code == code) {
                        ours.add(&e.totals);
                    }
                }
            }
        }
        let mut differences = Vec::new();
        let mut cmp = |field: &str, o: i64, t: i64, money: bool| {
            if o != t {
                let f = |x: i64| if money { fmt_yuan(x) } else { x.to_string() };
                differences.push(pb::Difference {
                    kind: "totals_differ".into(),
                    setl_id: String::new(),
                    field: field.into(),
                    ours: f(o),
                    theirs: f(t),
                });
            }
        };
        cmp("count", ours.count, req.count, false);
        cmp("medfee_sumamt", ours.medfee_fen, medfee.expect("checked"), true);
        cmp("fund_pay_sumamt", ours.fund_fen, fund.expect("checked"), true);
        cmp("acct_pay", ours.acct_fen, acct.expect("checked"), true);
        Ok(pb::ReconcileResult { matched: differences.is_empty(), differences_total: differences.len() as i64, differences, compared: 1 })
    }

    /// Detail reconciliation of one service location's window (or of one institution's part of it):
    /// their items against our journal. Entries of other institutions are neither compared nor listed.
    pub async fn reconcile_detail(
        &self,
        clr_date: &str,
        mdtrt: &str,
        fixmedins_code: &str,
        theirs: Vec<pb::ReconcileItem>,
    ) -> Result<pb::ReconcileResult, ServiceError> {
        let d = date("clr_date", clr_date)?;
        // An empty service location reconciles the whole window (the national role's check).
        let mdtrt = if mdtrt.is_empty() { None } else { Some(region("mdtrt_admdvs", mdtrt)?) };
        let mut v = Violations::default();
        let inst = match &mdtrt {
            Some(m) => institution_of(&mut v, m, fixmedins_code),
            None if !fixmedins_code.is_empty() => {
                v.add("fixmedins_code", "an institution is reconciled within its service location: name mdtrt_admdvs");
                None
            }
            None => None,
        };
        v.into_result(())?;
        let journal: Vec<JournalEntry> = self
            .store
            .window_journal(d)
            .await?
            .into_iter()
            .filter(|e| mdtrt.as_ref().is_none_or(|m| &e.mdtrt_admdvs == m) && inst.is_none_or(|c| e.fixmedins_code == c))
            .collect();
        let mut ours: HashMap<&str, &JournalEntry> = journal.iter().map(|e| (e.setl_id.as_str(), e)).collect();
        let mut out = pb::ReconcileResult::default();
        let push = |out: &mut pb::ReconcileResult, diff: pb::Difference| {
            out.differences_total += 1;
            if out.differences.len() < MAX_DIFFERENCES {
                out.differences.push(diff);
            }
        };
        let compared = theirs.len() as i64;
        for (i, item) in theirs.iter().enumerate() {
            let mut v = Violations::default();
            let t = [
                wire_signed(&mut v, &format!("items[{i}].medfee_sumamt"), &item.medfee_sumamt),
                wire_signed(&mut v, &format!("items[{i}].fund_pay_sumamt"), &item.fund_pay_sumamt),
                wire_signed(&mut v, &format!("items[{i}].acct_pay"), &item.acct_pay),
            ];
            v.into_result(())?;
            match ours.remove(item.setl_id.as_str()) {
                None => push(&mut out, pb::Difference { kind: "missing_here".into(), setl_id: item.setl_id.clone(), ..Default::default() }),
                Some(e) => {
                    for (field, o, t) in [
                        ("medfee_sumamt", e.totals.medfee_fen, t[0]),
                        ("fund_pay_sumamt", e.totals.fund_fen, t[1]),
                        ("acct_pay", e.totals.acct_fen, t[2]),
                    ] {
                        let t = t.expect("checked");
                        if o != t {
                            push(
                                &mut out,
                                pb::Difference {
                                    kind: "amount_differs".into(),
                                    setl_id: item.setl_id.clone(),
                                    field: field.into(),
                                    ours: fmt_yuan(o),
                                    theirs: fmt_yuan(t),
                                },
                            );
                        }
                    }
                }
            }
        }
        let mut missing: Vec<&&JournalEntry> = ours.values().collect();
        missing.sort_by(|a, b| a.setl_id.cmp(&b.setl_id));
        for e in missing {
            push(&mut out, pb::Difference { kind: "missing_there".into(), setl_id: e.setl_id.clone(), ..Default::default() });
        }
        out.matched = out.differences_total == 0;
        out.compared = compared;
        Ok(out)
    }
}

/// The institution a reconciliation is narrowed to: none when `code` is empty; otherwise a valid code
/// of the service location `mdtrt`.
fn institution_of<'a>(v: &mut Violations, mdtrt: &str, code: &'a str) -> Option<&'a str> {
    if code.is_empty() {
        return None;
    }
    match crate::institutions::service_location(code) {
        Some(m) if m.to_string() == mdtrt => Some(code),
        Some(_) => {
            v.add("fixmedins_code", format!("not an institution of the service location {mdtrt}"));
            None
        }
        None => {
            v.add("fixmedins_code", "must be H or P + 6-digit division + 5 digits, e.g. H42130200746");
            None
        }
    }
}
