//! The state of the clearinghouse behind one narrow trait, so the embedded store (default) and the
//! Redis store (several replicas) are interchangeable and pass one conformance suite.
//!
//! A commit is one atomic step. It checks the idempotency key (same key + same content hash →
//! the stored settlement; other content → mismatch), each member's version, that the settlement id is
//! free, that an original is not already reversed, and that the settlement's clearing day is still the
//! shard's open window; then it writes accumulators, account balances, the settlement, the window's
//! pair totals and journal. Money is integer fen throughout.
//!
//! Keys are laid out by shard so one commit touches one shard: a member's shard comes from
//! (insured region, psn_no), and the settlement id carries it (see `ids`).
#![forbid(unsafe_code)]

pub mod backend;
pub mod embedded;
mod error;
pub mod features;
pub mod ids;
mod member_cache;
mod members;
mod record;
pub mod redis;
mod settlements;
mod windows;

pub use error::*;
pub use features::{InstitutionRecords, MemberIdentityIndex, VisitRecords, WindowMeta};
pub use member_cache::{DEFAULT_MEMBER_CACHE, MemberCache};
pub use members::*;
pub use settlements::*;
pub use windows::*;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;

/// A versioned record of one shard (a visit and its member's list of open visits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub version: u64,
    pub data: String,
}

/// One write of `put_records`: applied only if the record's version is still `expected` (0 = the
/// record must not exist); `data` None deletes it. A written record gets version `expected + 1`.
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub key: String,
    pub expected: u64,
    pub data: Option<String>,
}

/// The narrow interface every store implements: typed operations per feature. The features' own
/// metadata and records (window reports and acknowledgements, advances, institutions, the identity
/// index, visits) are the typed traits of `features`, built on `backend::Primitives`, which only the
/// store's own code names (`scripts/check_modules.py` checks that).
pub trait Store: backend::Primitives + Send + Sync + 'static {
    fn load_member(&self, key: &MemberKey) -> impl Future<Output = Result<Option<MemberRecord>, StoreError>> + Send;
    fn upsert_member(&self, upsert: MemberUpsert) -> impl Future<Output = Result<MemberRecord, StoreError>> + Send;
    fn lookup_idempotency(&self, shard: u16, msgid: &str) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
    /// Both reads a settlement starts with, in one round trip where the store can (the member and the
    /// idempotency key live in the same shard). A store may answer from a cache instead (Redis: the
    /// member as this replica last knew it, and `MsgidRead::Unread`): the commit checks both, the
    /// member's version and the msgid, so a stale answer costs a retry with `load_member`, never a
    /// wrong settlement.
    fn load_member_and_idempotency(
        &self,
        key: &MemberKey,
        shard: u16,
        msgid: &str,
    ) -> impl Future<Output = Result<(Option<std::sync::Arc<MemberRecord>>, MsgidRead), StoreError>> + Send {
        async move {
            let member = self.load_member(key).await?.map(std::sync::Arc::new);
            Ok((member, MsgidRead::of(self.lookup_idempotency(shard, msgid).await?)))
        }
    }
    fn get_settlement(&self, setl_id: &str) -> impl Future<Output = Result<Option<SettlementRecord>, StoreError>> + Send;
    /// The clearing day a commit to `shard` made now lands in: today (Asia/Shanghai) or, once
    /// today's window is closed, the next open day.
    fn open_window(&self, shard: u16, today: NaiveDate) -> impl Future<Output = Result<NaiveDate, StoreError>> + Send;
    fn commit(&self, commit: Commit, today: NaiveDate) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;
    /// A window's totals, summed over shards.
    fn window_totals(&self, clr_date: NaiveDate) -> impl Future<Output = Result<WindowTotals, StoreError>> + Send;

    /// Closes a window: writes the close marker into every shard, so a commit that comes after it
    /// lands in the next open day. Idempotent; returns when every shard has its marker.
    fn close_window(&self, clr_date: NaiveDate) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Closed windows, oldest first.
    fn closed_windows(&self) -> impl Future<Output = Result<Vec<NaiveDate>, StoreError>> + Send;
    /// A window's sums (entries, count, medfee, fund, account) computed from the journal entries
    /// themselves, not from the totals: netting compares the two.
    fn journal_sums(&self, clr_date: NaiveDate) -> impl Future<Output = Result<PairTotals, StoreError>> + Send;
    /// Every journal entry of a window (all shards).
    fn window_journal(&self, clr_date: NaiveDate) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// Adds one month's account credit to a member, at most once per member-month (atomic with the
    /// record of the month).
    fn credit_month(&self, key: &MemberKey, month: &str, fen: i64) -> impl Future<Output = Result<CreditOutcome, StoreError>> + Send;
    /// A page of the person numbers of `insured`'s members, in order, after `after` ("" = from the start).
    fn members_of(&self, insured: &str, after: &str, limit: usize) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// A month's supervision indicators over every settlement committed so far, as `<entity>|<measure>`
    /// amounts that may repeat a field (add them up: `added`). Reads aggregates kept at commit, never
    /// settlements.
    fn indicators(&self, month: &str) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// A page of the month's flagged list: (cursor, setl_id, entry) after `after` ("" = from the start),
    /// in cursor order; pass the last cursor to get the next page.
    fn flagged(
        &self,
        month: &str,
        after: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, String, String)>, StoreError>> + Send;
    /// Adds indicator amounts of `month` directly (bulk loads: a migration, the read benchmark), as if
    /// settlements of `shard` had been committed.
    fn add_indicators(&self, shard: u16, month: &str, fields: &[(String, i64)]) -> impl Future<Output = Result<(), StoreError>> + Send;
}
