//! Windows, netting, reconciliation and advances: the national role's operations over the store.
//!
//! Rules of the window life cycle:
//! - Closing is idempotent and cannot be undone: a closed day never reopens; what comes after the
//!   close lands in the next open day (reversals included, as negative entries).
//! - A window can be netted only once closed. The first netting stores the report write-once; every
//!   later call (any replica) returns that same report, digest included. If netting fails (an
//!   unbalanced position, an unreadable store) nothing is stored and it can simply be run again: the
//!   totals of a closed window no longer change.
//! - Acknowledgements are recorded once per region with its bank reference; the same reference again is
//!   accepted, a different one refused. The window is settled when every region with an instruction
//!   has acknowledged.

mod advances;
mod closing;
pub mod netting;
mod reconciliation;
mod statements;

use crate::core::Clearinghouse;
use crate::metrics::M;
use crate::store::{JournalEntry, Store, WindowMeta};
use chrono::NaiveDate;
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self as fields, Violations};
use netting::Report;
use opentelemetry::KeyValue;
use proto::v1 as pb;
use region_adapter::money::{MAX_AMOUNT_FEN, fmt_yuan};
use std::collections::{BTreeMap, HashMap};
use tracing::Instrument;

pub use crate::limits::{MAX_DIFFERENCES, MAX_RECONCILE_ITEMS};

fn date(field: &str, s: &str) -> Result<NaiveDate, ServiceError> {
    let mut v = Violations::default();
    let d = fields::parse_date(&mut v, field, s);
    v.into_result(())?;
    Ok(d.expect("checked"))
}

fn region(field: &str, s: &str) -> Result<String, ServiceError> {
    match region_adapter::Admdvs::parse(s) {
        Some(a) if a != region_adapter::Admdvs::CENTRAL => Ok(a.to_string()),
        _ => Err(ServiceError::field(field, "must be a 6-digit division code")),
    }
}

pub fn report_pb(r: &Report) -> pb::NettingReport {
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

fn advance_pb(a: &netting::AdvanceRow) -> pb::AdvancePosition {
    pb::AdvancePosition {
        admdvs: a.admdvs.clone(),
        advance: fmt_yuan(a.advance_fen),
        net_debit: fmt_yuan(a.net_debit_fen),
        usage: a.usage_bp.map(|u| region_adapter::money::fmt_ratio(u.clamp(0, u32::MAX as i64) as u32)).unwrap_or_default(),
        flag: a.flag.clone(),
    }
}

/// A signed wire amount (reconciliation totals may be negative after reversals).
fn wire_signed(v: &mut Violations, field: &str, s: &str) -> Option<i64> {
    let neg = s.starts_with('-');
    fields::parse_money(v, field, s.trim_start_matches('-'), MAX_AMOUNT_FEN * 1_000).map(|f| if neg { -f } else { f })
}

/// The advance-usage gauge, per region with an advance.
fn record_advance_usage(rows: &[netting::AdvanceRow]) {
    for r in rows {
        if let Some(bp) = r.usage_bp {
            M.advance_usage.record(bp.max(0) as u64, &[KeyValue::new("admdvs", r.admdvs.clone())]);
        }
    }
}
