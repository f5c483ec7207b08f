//! `clearinghouse.v1.Netting` on the wire: requests read into the windows' dates, regions, queries and
//! amounts (every problem with its field), their answers and errors written back as protobuf.

use super::*;
use crate::calendar::Month;
use crate::windows::netting::{AdvanceRow, Report};
use crate::windows::{ItemAmounts, MonthlyStatement, Reconciliation, TotalsQuery, WindowView, WindowsError};
use chrono::NaiveDate;
use region_adapter::money::{MAX_AMOUNT_FEN, fmt_yuan};

impl From<WindowsError> for ServiceError {
    fn from(e: WindowsError) -> ServiceError {
        match e {
            WindowsError::Refused { field, why } => ServiceError::field(field, why),
            WindowsError::NotNow(m) => ServiceError::FailedPrecondition(m),
            WindowsError::Store(e) => e.into(),
            WindowsError::Corrupt(m) => ServiceError::Internal(m),
        }
    }
}

pub(super) fn date(field: &str, s: &str) -> Result<NaiveDate, ServiceError> {
    let mut v = Violations::default();
    let d = fields::parse_date(&mut v, field, s);
    v.into_result(())?;
    Ok(d.expect("checked"))
}

pub(super) fn region(field: &str, s: &str) -> Result<String, ServiceError> {
    match Admdvs::parse(s) {
        Some(a) if a != Admdvs::CENTRAL => Ok(a.to_string()),
        _ => Err(ServiceError::field(field, "must be a 6-digit division code")),
    }
}

pub(super) fn month(field: &str, s: &str) -> Result<Month, ServiceError> {
    Month::parse(s).ok_or_else(|| ServiceError::field(field, "must be YYYYMM"))
}

/// A signed wire amount (reconciliation totals may be negative after reversals).
fn signed(v: &mut Violations, field: &str, s: &str) -> i64 {
    let neg = s.starts_with('-');
    fields::parse_money(v, field, s.trim_start_matches('-'), MAX_AMOUNT_FEN * 1_000).map_or(0, |f| if neg { -f } else { f })
}

/// The institution a reconciliation is narrowed to: none when `code` is empty; otherwise a valid code
/// of the service location `mdtrt`.
fn institution_of(v: &mut Violations, mdtrt: &str, code: &str) -> Option<String> {
    if code.is_empty() {
        return None;
    }
    match crate::registry::institutions::service_location(code) {
        Some(m) if m.to_string() == mdtrt => Some(code.to_string()),
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

pub(super) fn totals_query(req: &pb::ReconcileTotalsRequest) -> Result<TotalsQuery, ServiceError> {
    let first = date("clr_date", &req.clr_date)?;
    let last = if req.clr_date_end.is_empty() { first } else { date("clr_date_end", &req.clr_date_end)? };
    crate::windows::check_range(first, last)?;
    let mdtrt = region("mdtrt_admdvs", &req.mdtrt_admdvs)?;
    let mut v = Violations::default();
    let medfee_fen = signed(&mut v, "medfee_sumamt", &req.medfee_sumamt);
    let fund_fen = signed(&mut v, "fund_pay_sumamt", &req.fund_pay_sumamt);
    let acct_fen = signed(&mut v, "acct_pay", &req.acct_pay);
    let institution = institution_of(&mut v, &mdtrt, &req.fixmedins_code);
    v.into_result(())?;
    Ok(TotalsQuery { first, last, mdtrt, institution, count: req.count, medfee_fen, fund_fen, acct_fen })
}

/// 3202's first message names the day, the service location (empty: the whole window, the national
/// role's check) and the institution.
pub(super) fn detail_scope(clr_date: &str, mdtrt: &str, code: &str) -> Result<(NaiveDate, Option<String>, Option<String>), ServiceError> {
    let d = date("clr_date", clr_date)?;
    let mdtrt = if mdtrt.is_empty() { None } else { Some(region("mdtrt_admdvs", mdtrt)?) };
    let mut v = Violations::default();
    let inst = match &mdtrt {
        Some(m) => institution_of(&mut v, m, code),
        None if !code.is_empty() => {
            v.add("fixmedins_code", "an institution is reconciled within its service location: name mdtrt_admdvs");
            None
        }
        None => None,
    };
    v.into_result(())?;
    Ok((d, mdtrt, inst))
}

/// Their items, each amount checked (the first bad item is named).
pub fn detail_items(items: &[pb::ReconcileItem]) -> Result<Vec<ItemAmounts>, ServiceError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut v = Violations::default();
            let out = ItemAmounts {
                setl_id: item.setl_id.clone(),
                medfee_fen: signed(&mut v, &format!("items[{i}].medfee_sumamt"), &item.medfee_sumamt),
                fund_fen: signed(&mut v, &format!("items[{i}].fund_pay_sumamt"), &item.fund_pay_sumamt),
                acct_fen: signed(&mut v, &format!("items[{i}].acct_pay"), &item.acct_pay),
            };
            v.into_result(out)
        })
        .collect()
}

pub(super) fn window_pb(w: WindowView) -> pb::Window {
    pb::Window {
        clr_date: w.clr_date.to_string(),
        state: w.state.code().into(),
        settlement_count: w.settlement_count,
        report_digest: w.report_digest,
        acknowledgements: w
            .acknowledgements
            .into_iter()
            .map(|a| pb::Acknowledgement { admdvs: a.admdvs, bank_ref: a.bank_ref, acknowledged_at: a.acknowledged_at })
            .collect(),
        awaiting_admdvs: w.awaiting,
    }
}

pub(super) fn reconciliation_pb(r: Reconciliation) -> pb::ReconcileResult {
    pb::ReconcileResult {
        matched: r.matched(),
        differences_total: r.differences_total,
        compared: r.compared,
        differences: r
            .differences
            .into_iter()
            .map(|d| pb::Difference {
                kind: d.kind.code().into(),
                setl_id: d.setl_id,
                field: d.field.into(),
                ours: d.ours,
                theirs: d.theirs,
            })
            .collect(),
    }
}

pub(super) fn advance_pb(a: &AdvanceRow) -> pb::AdvancePosition {
    pb::AdvancePosition {
        admdvs: a.admdvs.clone(),
        advance: fmt_yuan(a.advance_fen),
        net_debit: fmt_yuan(a.net_debit_fen),
        usage: a.usage_bp.map(|u| region_adapter::money::fmt_ratio(u.clamp(0, u32::MAX as i64) as u32)).unwrap_or_default(),
        flag: a.flag.clone(),
    }
}

pub(super) fn statement_pb(s: MonthlyStatement) -> pb::MonthlyStatement {
    pb::MonthlyStatement {
        setlym: s.month.to_string(),
        clr_dates: s.clr_dates.iter().map(NaiveDate::to_string).collect(),
        pending_clr_dates: s.pending.iter().map(NaiveDate::to_string).collect(),
        positions: s
            .positions
            .into_iter()
            .map(|(admdvs, (p, r))| pb::Position { admdvs, payable: fmt_yuan(p), receivable: fmt_yuan(r), net: fmt_yuan(r - p) })
            .collect(),
        settlement_count: s.settlement_count,
        gross_total: fmt_yuan(s.gross_total_fen),
        multilateral_net_total: fmt_yuan(s.multilateral_net_total_fen),
    }
}

pub(super) fn report_pb(r: &Report) -> pb::NettingReport {
    pb::NettingReport {
        clr_date: r.clr_date.clone(),
        positions: r
            .positions
            .iter()
            .map(|p| pb::Position {
                admdvs: p.admdvs.clone(),
                payable: fmt_yuan(p.payable_fen),
                receivable: fmt_yuan(p.receivable_fen),
                net: fmt_yuan(p.net_fen),
            })
            .collect(),
        instructions: r
            .instructions
            .iter()
            .map(|i| pb::Instruction { from_admdvs: i.from_admdvs.clone(), to_admdvs: i.to_admdvs.clone(), amount: fmt_yuan(i.amount_fen) })
            .collect(),
        gross_total: fmt_yuan(r.gross_total_fen),
        bilateral_net_total: fmt_yuan(r.bilateral_net_total_fen),
        multilateral_net_total: fmt_yuan(r.multilateral_net_total_fen),
        saving: fmt_yuan(r.gross_total_fen - r.multilateral_net_total_fen),
        digest: r.digest.clone(),
        obligations: r
            .obligations
            .iter()
            .map(|o| pb::Obligation {
                from_admdvs: o.from_admdvs.clone(),
                to_admdvs: o.to_admdvs.clone(),
                amount: fmt_yuan(o.amount_fen),
                count: o.count,
            })
            .collect(),
        settlement_count: r.settlement_count,
        medfee_total: fmt_yuan(r.medfee_total_fen),
        fund_total: fmt_yuan(r.fund_total_fen),
        acct_total: fmt_yuan(r.acct_total_fen),
        journal_entries: r.journal_entries,
        complete: r.complete,
        advances: r.advances.iter().map(advance_pb).collect(),
    }
}
