//! Supervision (ARCHITECTURE.md): flags on each settlement, computed at settle time from the settlement
//! and the member's recent settlements, and the monthly indicators per institution and region pair,
//! kept incrementally at commit (like the window totals) so that a month is read from aggregates.
//!
//! What the seeds ask for: an early-warning watch on cost growing fast, high cost per visit, a high
//! self-paid share and a high share of examinations (Nanchang 002 §4(五)); preventing account cash-out
//! and out-of-scope use (Jiangsu 000); pharmacies swapping drugs or selling daily goods (Suizhou 003
//! art. 25). No seed gives a number: every threshold is in the rule packs' `[supervision]`, marked as
//! an assumption. A flag is information for review: it never refuses or changes a settlement.
//!
//! Indicators are stored as `<entity>|<measure>` → integer sums of one month (the visit's month):
//! entities `i|<mdtrt>|<fixmedins_code>` (an institution) and `p|<insured>|<mdtrt>` (a region pair);
//! measures `n` claims, `m` medical cost, `s` self-paid (全自费 + 超限价自费), `e` examinations, `a`
//! account, `f` fund, `x` flagged claims, `k:<kind>` claims per flag kind (fen for amounts).
//! A reversal adds the original's numbers negated, in the original's month.

mod indicators;
mod reads;
mod rules;

pub use indicators::*;
pub use reads::*;
pub use rules::*;

use crate::calendar::Month;
use crate::claim::ValidClaim;
use crate::store::{RecentVisit, SupervisionDelta};
use chrono::NaiveDate;
use region_adapter::model::{ItemCategory, Provenance, SupervisionTerms};
use region_adapter::money::{RATIO_ONE_BP, fmt_yuan};
use region_adapter::{Amounts, Priced, RuleSet};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

impl<S: crate::store::Store> crate::core::Clearinghouse<S> {
    /// Supervision's reads over this clearinghouse's store and rule packs.
    pub fn supervision(&self) -> Supervision<'_, S> {
        Supervision { store: &self.store, rules: self.router.snapshot() }
    }
}
