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

pub mod embedded;
pub mod ids;
mod record;
pub mod redis;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;

/// A member's identity: insured region and person number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberKey {
    pub insuplc_admdvs: String,
    pub psn_no: String,
}

impl MemberKey {
    pub fn new(insuplc_admdvs: &str, psn_no: &str) -> MemberKey {
        MemberKey { insuplc_admdvs: insuplc_admdvs.to_string(), psn_no: psn_no.to_string() }
    }
    /// The store key: `<admdvs>:<psn_no>` (psn_no has no `:`; validated at the edge).
    pub fn storage_key(&self) -> String {
        format!("{}:{}", self.insuplc_admdvs, self.psn_no)
    }
}

/// A filing as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingRecord {
    pub mdtrt_admdvs: String,
    pub begndate: NaiveDate,
    pub enddate: Option<NaiveDate>,
    /// The group of those who may file (Suizhou art. 10), when recorded.
    #[serde(default)]
    pub group: Option<String>,
}

/// A period of dates, `end` inclusive (`None` = open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRecord {
    pub begndate: NaiveDate,
    pub enddate: Option<NaiveDate>,
}

impl PeriodRecord {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.begndate <= d && self.enddate.is_none_or(|e| d <= e)
    }
}

/// A family link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeneficiaryRecord {
    pub psn_no: String,
    pub relation: String,
}

/// Year-to-date state of one benefit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccumulatorRecord {
    pub year: i32,
    pub benefit: String,
    pub deductible_used_fen: i64,
    pub fund_paid_fen: i64,
    pub visits: i64,
}

/// What a monthly account credit is computed from (registry facts; zero = not on record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreditFacts {
    /// Monthly contribution base (缴费基数), fen: the in-service credit is a share of it.
    pub contribution_base_fen: i64,
    /// The member's own monthly pension, fen (a retiree rule that is a share of it).
    pub own_pension_fen: i64,
    /// Years under 统账结合 and insured years in all (Suizhou art. 14(三) pro-rates the retiree credit).
    pub combined_years: u32,
    pub insured_years: u32,
    /// The member's own monthly credit in 2022 (Jiangsu 2023 keeps it, 000 §三 Q5), fen; 0 = not on record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub monthly_credit_2022_fen: i64,
    /// Whether a retiree reached the required contribution years (Suizhou art. 14(三)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_required_years: Option<bool>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The registry facts of a member plus the state settlements change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub key: MemberKey,
    pub psn_type: String,
    pub retire_date: Option<NaiveDate>,
    pub pooling_only: bool,
    pub acct_balc_fen: i64,
    pub filings: Vec<FilingRecord>,
    pub mulaid_beneficiaries: Vec<BeneficiaryRecord>,
    pub accumulators: Vec<AccumulatorRecord>,
    /// Incremented by every change; a commit names the version it computed from.
    pub version: u64,
    #[serde(default)]
    pub credit_facts: CreditFacts,
    /// Periods without paid contributions (Suizhou art. 27(三)): visits in them get no fund pay.
    #[serde(default)]
    pub arrears: Vec<PeriodRecord>,
    /// Monthly account credits made, YYYYMM → fen (each month at most once).
    #[serde(default)]
    pub credits: BTreeMap<String, i64>,
    /// The member's recent settlements (date, service location), for supervision's flags; kept like
    /// the accumulators, bounded (see `supervision::remember`). Stored as one compact string.
    #[serde(default, with = "recent_compact")]
    pub recent: Vec<RecentVisit>,
    /// Set once the account is closed (emigration or death, Suizhou art. 17): the balance was paid out
    /// and the member takes no further claim, credit or change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<AccountClosure>,
}

/// A closed personal account: when, why, and the settlement that paid the balance out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountClosure {
    pub date: NaiveDate,
    /// `emigration` or `death`.
    pub reason: String,
    pub setl_id: String,
}

impl AccountClosure {
    /// `<date> <reason> <setl_id>`, the stored form on Redis (one hash field, `x`).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.date, self.reason, self.setl_id)
    }
    pub fn decode(s: &str) -> Result<AccountClosure, StoreError> {
        let bad = || StoreError::Corrupt(format!("account closure {s:?}"));
        let mut p = s.split(' ');
        let (Some(date), Some(reason), Some(setl_id), None) = (p.next(), p.next(), p.next(), p.next()) else {
            return Err(bad());
        };
        Ok(AccountClosure { date: date.parse().map_err(|_| bad())?, reason: reason.into(), setl_id: setl_id.into() })
    }
}

/// One recent settlement of a member: its visit date and service location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentVisit {
    pub date: NaiveDate,
    pub mdtrt_admdvs: String,
}

impl RecentVisit {
    /// `YYYY-MM-DD:admdvs,…`, the stored form on Redis (one hash field).
    pub fn encode_all(v: &[RecentVisit]) -> String {
        v.iter().map(|r| format!("{}:{}", r.date, r.mdtrt_admdvs)).collect::<Vec<_>>().join(",")
    }
    pub fn decode_all(s: &str) -> Result<Vec<RecentVisit>, StoreError> {
        s.split(',')
            .filter(|e| !e.is_empty())
            .map(|e| {
                let bad = || StoreError::Corrupt(format!("recent visit {e:?}"));
                let (d, a) = e.split_once(':').ok_or_else(bad)?;
                Ok(RecentVisit { date: d.parse().map_err(|_| bad())?, mdtrt_admdvs: a.to_string() })
            })
            .collect()
    }
}

/// `recent` as `YYYY-MM-DD:admdvs,…` in stored JSON (a few bytes per visit instead of an object).
mod recent_compact {
    use super::RecentVisit;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[RecentVisit], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&RecentVisit::encode_all(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RecentVisit>, D::Error> {
        RecentVisit::decode_all(<&str>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The measures of the indicators, in `SupervisionDelta::sums` order: claims, medical cost, self-paid
/// (全自费 + 超限价自费), examinations, account, fund, flagged claims (fen for amounts).
pub const MEASURES: [&str; 7] = ["n", "m", "s", "e", "a", "f", "x"];

/// What one settlement adds to supervision's monthly indicators and flagged list (a reversal: the
/// original's numbers negated, and its flagged entry removed). Stored with the settlement so that a
/// reversal subtracts exactly what was added; compact, since every settlement carries one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SupervisionDelta {
    /// YYYYMM of the visit: the month whose indicators it counts in.
    pub month: String,
    /// The institution, `<mdtrt>|<fixmedins_code>`, and the region pair, `<insured>|<mdtrt>`.
    pub institution: String,
    pub pair: String,
    /// Added to both, in `MEASURES` order.
    pub sums: [i64; 7],
    /// Flag kinds, each counting `sums[0]` (1, or −1 on a reversal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// A flagged settlement's entry in the month's flagged list (JSON), keyed by its setl_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
    /// On a reversal: the original whose flagged entry is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unflag: Option<String>,
}

impl SupervisionDelta {
    /// The `(entity, measure, amount)` it adds, zeros left out: entities `i|<institution>`, `p|<pair>`.
    pub fn adds(&self) -> impl Iterator<Item = (&'static str, &str, std::borrow::Cow<'static, str>, i64)> + '_ {
        let measures = MEASURES.iter().zip(self.sums).filter(|(_, v)| *v != 0).map(|(m, v)| (std::borrow::Cow::Borrowed(*m), v));
        let kinds = self.kinds.iter().map(|k| (std::borrow::Cow::Owned(format!("k:{k}")), self.sums[0]));
        let all: Vec<(std::borrow::Cow<'static, str>, i64)> = measures.chain(kinds).collect();
        [("i", self.institution.as_str()), ("p", self.pair.as_str())]
            .into_iter()
            .flat_map(move |(kind, entity)| all.clone().into_iter().map(move |(m, v)| (kind, entity, m, v)))
    }

    /// The delta as a log keeps it (the embedded store's log table, the Redis shards' logs): month,
    /// institution, pair, the sums and the kinds, separated by 0x1f.
    pub fn encode_logged(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(96);
        let _ = write!(s, "{}\x1f{}\x1f{}\x1f", self.month, self.institution, self.pair);
        for (i, v) in self.sums.iter().enumerate() {
            let _ = write!(s, "{}{v}", if i > 0 { "," } else { "" });
        }
        s.push('\x1f');
        s.push_str(&self.kinds.join(","));
        s
    }

    pub fn decode_logged(b: &[u8]) -> Result<SupervisionDelta, StoreError> {
        let bad = || StoreError::Corrupt("supervision log row".into());
        let s = std::str::from_utf8(b).map_err(|_| bad())?;
        let mut p = s.split('\x1f');
        let (Some(month), Some(institution), Some(pair), Some(sums), Some(kinds), None) =
            (p.next(), p.next(), p.next(), p.next(), p.next(), p.next())
        else {
            return Err(bad());
        };
        let mut out = [0i64; 7];
        let mut it = sums.split(',');
        for v in out.iter_mut() {
            *v = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        }
        Ok(SupervisionDelta {
            month: month.into(),
            institution: institution.into(),
            pair: pair.into(),
            sums: out,
            kinds: kinds.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect(),
            flagged: None,
            unflag: None,
        })
    }

    /// The same as `<entity>|<measure>` fields (the Redis commit script's arguments, bulk loads).
    pub fn fields(&self) -> Vec<(String, i64)> {
        self.adds().map(|(k, e, m, v)| (format!("{k}|{e}|{m}"), v)).collect()
    }
}

/// Applies one member change; shared by every store so the arithmetic is written once.
pub fn apply_member_change(rec: &mut MemberRecord, m: &MemberChange) {
    rec.version += 1;
    rec.acct_balc_fen += m.balance_delta_fen;
    if let Some(r) = &m.recent {
        rec.recent = r.clone();
    }
    if let Some(c) = &m.close {
        rec.closed = Some(c.clone());
    }
    if let Some(d) = &m.accumulator {
        match rec.accumulators.iter_mut().find(|a| a.year == d.year && a.benefit == d.benefit) {
            Some(a) => {
                a.deductible_used_fen += d.deductible_used_fen;
                a.fund_paid_fen += d.fund_paid_fen;
                a.visits += d.visits;
            }
            None => rec.accumulators.push(AccumulatorRecord {
                year: d.year,
                benefit: d.benefit.clone(),
                deductible_used_fen: d.deductible_used_fen,
                fund_paid_fen: d.fund_paid_fen,
                visits: d.visits,
            }),
        }
    }
}

impl MsgidRead {
    /// What a read of the idempotency key found.
    pub fn of(read: Option<IdempotencyRecord>) -> MsgidRead {
        read.map_or(MsgidRead::New, MsgidRead::Stored)
    }
}

impl MemberRecord {
    pub fn accumulator(&self, year: i32, benefit: &str) -> Option<&AccumulatorRecord> {
        self.accumulators.iter().find(|a| a.year == year && a.benefit == benefit)
    }
}

/// The registry facts an upsert replaces; the balance is set or credited as asked.
#[derive(Debug, Clone)]
pub struct MemberUpsert {
    pub key: MemberKey,
    pub psn_type: String,
    pub retire_date: Option<NaiveDate>,
    pub pooling_only: bool,
    pub filings: Vec<FilingRecord>,
    pub mulaid_beneficiaries: Vec<BeneficiaryRecord>,
    /// Replace the balance (new members start at 0 when absent).
    pub set_balance_fen: Option<i64>,
    /// Add to the balance after any replacement.
    pub credit_fen: i64,
    pub credit_facts: CreditFacts,
    pub arrears: Vec<PeriodRecord>,
}

/// What `credit_month` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    /// Credited now; the balance after.
    Credited { balance_fen: i64 },
    /// This month was credited before (that amount); nothing changed.
    AlreadyCredited { fen: i64 },
    /// No such member.
    Missing,
    /// The member's account is closed: nothing credited.
    Closed,
}

/// Change of one accumulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccumulatorDelta {
    pub year: i32,
    pub benefit: String,
    pub deductible_used_fen: i64,
    pub fund_paid_fen: i64,
    pub visits: i64,
}

/// Change of one member made by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub key: MemberKey,
    /// The version the change was computed from; `None` when the change does not depend on state
    /// (a reversal only subtracts what its original added).
    pub expected_version: Option<u64>,
    pub accumulator: Option<AccumulatorDelta>,
    /// Added to the account balance (negative = a debit). A debit never takes it below zero.
    pub balance_delta_fen: i64,
    /// Replaces the member's recent settlements (only with `expected_version`, so never stale).
    pub recent: Option<Vec<RecentVisit>>,
    /// Closes the account (the closure's own commit). Any other commit touching a closed member is
    /// refused (`CommitOutcome::Closed`).
    pub close: Option<AccountClosure>,
}

/// The amounts a settlement adds to its window's totals for (insured, service location).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PairDelta {
    /// +1 for a settlement, −1 for a reversal.
    pub count: i64,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
}

/// A stored settlement: the encoded wire message, as returned to the client, plus what indexes need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    pub setl_id: String,
    pub msgid: String,
    pub clr_date: NaiveDate,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    /// `clearinghouse.v1.Settlement`, prost-encoded: a resend gets exactly these bytes back.
    #[serde(with = "hex_bytes")]
    pub message: Vec<u8>,
    /// SHA-256 of the request that produced it (the idempotency content hash).
    #[serde(with = "hex_hash")]
    pub content_hash: [u8; 32],
    pub totals: PairDelta,
    pub orig_setl_id: Option<String>,
    /// Set when this settlement has been reversed.
    pub reversed_by: Option<String>,
    /// What it added to supervision (absent when supervision is off, and on settlements made before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervision: Option<SupervisionDelta>,
}

/// An idempotency record: which settlement a msgid produced, from which content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    #[serde(with = "hex_hash")]
    pub content_hash: [u8; 32],
    pub setl_id: String,
}

/// What a settlement's first read found under its msgid (`Store::load_member_and_idempotency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgidRead {
    /// The msgid was settled before: its record.
    Stored(IdempotencyRecord),
    /// Read, and new.
    New,
    /// Not read: the member came from a cache. The commit checks the msgid; a caller whose computation
    /// fails asks `lookup_idempotency` before refusing, so a resend is still answered as it was.
    Unread,
}

/// One atomic commit.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The shard of the member (and of the settlement id).
    pub shard: u16,
    pub settlement: SettlementRecord,
    pub members: Vec<MemberChange>,
    /// For a reversal: the original, which must not be reversed yet.
    pub reverses: Option<String>,
}

/// How a commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// The msgid was already committed with the same content: here is that settlement.
    Replayed(Box<SettlementRecord>),
    /// The msgid was already committed with other content.
    IdempotencyMismatch,
    /// A member changed since it was read: reload and recompute.
    VersionConflict,
    /// The settlement's clearing day is no longer the shard's open window: recompute with the new one.
    WindowMoved,
    /// The settlement id is taken (ids are random-suffixed; draw another).
    SetlIdTaken,
    /// The original has been reversed already.
    AlreadyReversed,
    /// The original of a reversal is not in the store (it was read a moment ago, so only a store that
    /// lost it or an id that never existed gets here): nothing written.
    OriginalMissing,
    /// The account no longer holds what the settlement takes from it.
    InsufficientBalance,
    /// A member of the commit has a closed account: nothing written.
    Closed,
}

/// A store failure, classified by whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Transient: the store could not be reached or is not ready (connection lost, timeout, loading,
    /// failover). The commit's outcome may be unknown; a retry with the same msgid is safe.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused a write before doing any of it (a Redis node configured unsafely): nothing was
    /// written, so the outcome is known; UNAVAILABLE to the caller, who retries later with the same msgid.
    #[error("store refuses writes: {0}")]
    Refused(String),
    /// The store is out of memory (Redis OOM): retrying soon does not help until an operator acts.
    #[error("store out of memory: {0}")]
    Exhausted(String),
    /// Anything else the store refused (a script error, a key of the wrong type): retrying the same
    /// request will fail the same way. The store's own message is in the service log, not here.
    #[error("store error: {0}")]
    Failed(String),
    /// Stored data unreadable.
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
    /// The member's account is closed (the closure as stored): a closed account takes no change.
    #[error("the account was closed on {} ({})", .0.date, .0.reason)]
    Closed(AccountClosure),
}

/// How a store failure reaches a caller: transient → UNAVAILABLE (retry with the same msgid), out of
/// memory → RESOURCE_EXHAUSTED, anything else → INTERNAL.
impl From<StoreError> for clearing_edge::error::ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) | StoreError::Refused(m) => clearing_edge::error::ServiceError::Unavailable(m),
            StoreError::Exhausted(_) => {
                clearing_edge::error::ServiceError::ResourceExhausted("the store is out of memory; retry later with the same msgid".into())
            }
            StoreError::Failed(m) | StoreError::Corrupt(m) => clearing_edge::error::ServiceError::Internal(m),
            e @ StoreError::Closed(_) => {
                clearing_edge::error::ServiceError::FailedPrecondition(format!("psn_no: {e}; a closed account takes no change"))
            }
        }
    }
}

/// Totals of one (insured, service location) pair in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PairTotals {
    pub count: i64,
    /// Journal entries behind the totals (settlements and reversals, each 1).
    #[serde(default)]
    pub entries: i64,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
}

impl PairTotals {
    /// Adds another total (of another shard, pair or service location).
    pub fn merge(&mut self, o: &PairTotals) {
        self.count += o.count;
        self.entries += o.entries;
        self.medfee_fen += o.medfee_fen;
        self.fund_fen += o.fund_fen;
        self.acct_fen += o.acct_fen;
    }

    pub fn add(&mut self, d: &PairDelta) {
        self.count += d.count;
        self.entries += 1;
        self.medfee_fen += d.medfee_fen;
        self.fund_fen += d.fund_fen;
        self.acct_fen += d.acct_fen;
    }
}

/// What one directed pair (insured → service location) owes in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairOwed {
    /// Settlements minus reversals.
    pub count: i64,
    /// Σ fund_pay_sumamt + acct_pay, fen.
    pub owed_fen: i64,
}

/// A window's totals as netting and reconciliation need them: per pair only what is owed (so that
/// netting reads two numbers per region pair), the full sums per service location and for the window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowTotals {
    /// Sorted by pair.
    pub pairs: Vec<((String, String), PairOwed)>,
    pub by_mdtrt: BTreeMap<String, PairTotals>,
    pub all: PairTotals,
}

impl WindowTotals {
    /// Builds the view from full per-pair totals (the embedded store keeps those).
    pub fn from_pairs(rows: impl IntoIterator<Item = ((String, String), PairTotals)>) -> WindowTotals {
        let mut out = WindowTotals::default();
        for ((ins, mdt), t) in rows {
            out.pairs.push(((ins, mdt.clone()), PairOwed { count: t.count, owed_fen: t.fund_fen + t.acct_fen }));
            let m = out.by_mdtrt.entry(mdt).or_default();
            m.merge(&t);
            out.all.merge(&t);
        }
        out.pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// One entry of a window's journal: a settlement or a reversal with its amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub setl_id: String,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    pub totals: PairDelta,
}

impl JournalEntry {
    pub fn of(s: &SettlementRecord) -> JournalEntry {
        JournalEntry {
            setl_id: s.setl_id.clone(),
            insuplc_admdvs: s.insuplc_admdvs.clone(),
            mdtrt_admdvs: s.mdtrt_admdvs.clone(),
            totals: s.totals,
        }
    }
    /// `setl_id|insured|mdtrt|count|medfee|fund|acct`, the stored form.
    pub fn encode(&self) -> String {
        let t = &self.totals;
        format!("{}|{}|{}|{}|{}|{}|{}", self.setl_id, self.insuplc_admdvs, self.mdtrt_admdvs, t.count, t.medfee_fen, t.fund_fen, t.acct_fen)
    }
    pub fn decode(s: &str) -> Result<JournalEntry, StoreError> {
        let bad = || StoreError::Corrupt(format!("journal entry {s:?}"));
        let p: Vec<&str> = s.split('|').collect();
        if p.len() != 7 {
            return Err(bad());
        }
        let n = |i: usize| p[i].parse::<i64>().map_err(|_| bad());
        Ok(JournalEntry {
            setl_id: p[0].into(),
            insuplc_admdvs: p[1].into(),
            mdtrt_admdvs: p[2].into(),
            totals: PairDelta { count: n(3)?, medfee_fen: n(4)?, fund_fen: n(5)?, acct_fen: n(6)? },
        })
    }
}

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

/// The narrow interface every store implements.
pub trait Store: Send + Sync + 'static {
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

    /// Small shared metadata (reports, acknowledgements, advances). Writes `value` under `key` unless a
    /// value is there; returns the value in force (the first one written).
    fn put_once(&self, key: &str, value: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn get_meta(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Sets `field` of the map `key`; with `only_new`, keeps an existing value. Returns the value in force.
    fn map_set(&self, key: &str, field: &str, value: &str, only_new: bool) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn map_get(&self, key: &str) -> impl Future<Output = Result<BTreeMap<String, String>, StoreError>> + Send;
    /// One field of the map `key`.
    fn map_get_field(&self, key: &str, field: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Adds one month's account credit to a member, at most once per member-month (atomic with the
    /// record of the month).
    fn credit_month(&self, key: &MemberKey, month: &str, fen: i64) -> impl Future<Output = Result<CreditOutcome, StoreError>> + Send;
    /// A page of the person numbers of `insured`'s members, in order, after `after` ("" = from the start).
    fn members_of(&self, insured: &str, after: &str, limit: usize) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Versioned records of `shard` (visits): several read at once.
    fn get_records(&self, shard: u16, keys: &[String]) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + Send;
    /// Writes several records of `shard` at once, all or nothing, each only if its version is as
    /// expected. `Ok(false)`: a version differed and nothing was written (reload and try again).
    fn put_records(&self, shard: u16, writes: Vec<RecordWrite>) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The names of `shard`'s records that start with `prefix` (the expiry sweep).
    fn record_keys(&self, shard: u16, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

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

/// Indicator fields added up, zeros left out.
pub fn added(fields: Vec<(String, i64)>) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (f, v) in fields {
        *out.entry(f).or_default() += v;
    }
    out.retain(|_, v| *v != 0);
    out
}

/// Hex into a buffer sized once (`hex::encode` builds its string a char at a time: ~3% of a
/// settlement's CPU in a profile).
fn to_hex(v: &[u8]) -> String {
    let mut buf = vec![0u8; v.len() * 2];
    hex::encode_to_slice(v, &mut buf).expect("buffer is twice the input");
    String::from_utf8(buf).expect("hex is ASCII")
}

/// Bytes as a hex string in stored JSON (compact and readable, unlike a JSON array of numbers).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(<&str>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(<&str>::deserialize(d)?, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
