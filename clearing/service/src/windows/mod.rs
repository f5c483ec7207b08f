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

pub use closing::{Acknowledgement, WindowState, WindowView};
pub use reconciliation::{Difference, DifferenceKind, ItemAmounts, Reconciliation, TotalsQuery, check_range};
pub use statements::MonthlyStatement;

use crate::core::Clearinghouse;
use crate::metrics::M;
use crate::store::{JournalEntry, Store, StoreError, WindowMeta};
use chrono::NaiveDate;
use netting::Report;
use opentelemetry::KeyValue;
use std::collections::{BTreeMap, HashMap};
use tracing::Instrument;

pub use crate::limits::{MAX_DIFFERENCES, MAX_RECONCILE_ITEMS};

/// What a window operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WindowsError {
    /// The rules refuse the request; `field` names what.
    #[error("{field}: {why}")]
    Refused { field: &'static str, why: String },
    /// The window is not in the state the operation needs.
    #[error("{0}")]
    NotNow(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored window data that does not read back, or netting inputs that do not balance.
    #[error("{0}")]
    Corrupt(String),
}

/// The windows of one store: closing, netting, acknowledgements, reconciliation, advances, statements.
pub struct Windows<'a, S> {
    pub(crate) store: &'a S,
}

impl<S: Store> Clearinghouse<S> {
    /// The window operations over this clearinghouse's store.
    pub fn windows(&self) -> Windows<'_, S> {
        Windows { store: &self.store }
    }
}

/// The advance-usage gauge, per region with an advance.
fn record_advance_usage(rows: &[netting::AdvanceRow]) {
    for r in rows {
        if let Some(bp) = r.usage_bp {
            M.advance_usage.record(bp.max(0) as u64, &[KeyValue::new("admdvs", r.admdvs.clone())]);
        }
    }
}
