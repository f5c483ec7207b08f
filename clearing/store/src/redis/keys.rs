//! Every Redis key of the store, in one place: benchmarks, the commit-ceiling script and the
//! conformance tests use these rather than spelling keys again.

use crate::MemberKey;
use crate::ids::{shard_of, shard_of_key, shard_of_setl_id};
use chrono::NaiveDate;

/// Hashes the window-wide totals are split into (same slot), read concurrently at netting.
pub const TOTALS_BUCKETS: usize = 16;

pub fn tag(shard: u16) -> String {
    format!("{{ch:{shard:02x}}}")
}

pub fn member_key(k: &MemberKey) -> String {
    format!("{}:m:{}:{}", tag(shard_of(&k.insuplc_admdvs, &k.psn_no)), k.insuplc_admdvs, k.psn_no)
}

pub fn member_shard(k: &MemberKey) -> u16 {
    shard_of(&k.insuplc_admdvs, &k.psn_no)
}

pub fn settlement_key(setl_id: &str) -> Option<String> {
    shard_of_setl_id(setl_id).map(|s| settlement_key_in(s, setl_id))
}

/// A settlement's key in a shard (for a benchmark whose ids are placeholders).
pub fn settlement_key_in(shard: u16, setl_id: &str) -> String {
    format!("{}:s:{setl_id}", tag(shard))
}

/// The keys `commit.lua` takes for one settlement of `member` (a single Redis: the msgid index in the
/// script), in the script's order, with `id` standing for the idempotency key and settlement id: what
/// `scripts/commit-ceiling.sh` runs the script with (`clearing bench-commit-keys`).
pub fn commit_script_keys(member: &MemberKey, id: &str, date: NaiveDate, month: &str) -> Vec<String> {
    let shard = member_shard(member);
    vec![
        idem_key(shard, id),
        settlement_key_in(shard, id),
        closed_key(shard),
        window_log_key(shard, date),
        journal_key(shard, date),
        settlement_key_in(shard, id),
        msgid_index_key_in(shard, id),
        member_key(member),
        sv_log_key(shard, month),
        flagged_key(shard, month),
        // The msgid's key before issue 29: none for this id, so the key again.
        idem_key(shard, id),
    ]
}

pub fn idem_key(shard: u16, key: &str) -> String {
    format!("{}:i:{key}", tag(shard))
}

/// Which member shard a msgid (idempotency key) belongs to, kept in the key's own shard, so a msgid
/// reused for another member (another shard) is caught although the two commits share no slot.
pub fn msgid_index_key(key: &str) -> String {
    msgid_index_key_in(shard_of_key(key), key)
}

/// The msgid index key in a given shard (for a benchmark whose ids are placeholders).
pub fn msgid_index_key_in(shard: u16, key: &str) -> String {
    format!("{}:mi:{key}", tag(shard))
}

/// Window-level metadata shared by every replica (not per shard): its own hash tag.
pub fn meta_key(key: &str) -> String {
    format!("{{clr:meta}}:{key}")
}

pub fn totals_bucket_key(date: NaiveDate, bucket: usize) -> String {
    meta_key(&format!("wt:{date}:{bucket}"))
}

/// The bucket of a window-totals field: FNV-1a of its name, so a field always lands in one bucket.
pub fn bucket_of(field: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in field.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h as usize % TOTALS_BUCKETS
}

pub fn closed_key(shard: u16) -> String {
    format!("{}:closed", tag(shard))
}

/// What a shard keeps of a period (a window's date, a month) until it is folded, as keys
/// `<tag>:<name>:<period>`; each one's fold in flight and fold sequence are named after it (`FoldKeys::of`).
/// A shard's window totals not folded yet, as the builds before the window log kept them (a hash).
pub const WINDOW_SUMS: &str = "w";
/// A shard's journal entries of a window not folded into the window totals yet (`commit.lua` appends
/// each settlement's entry here and to the journal).
pub const WINDOW_LOG: &str = "wl";
/// A shard's supervision indicators of a month not folded yet, as the builds before the supervision log
/// kept them (a hash).
pub const SV_SUMS: &str = "sv";
/// A shard's supervision deltas of a month not folded yet, one `SupervisionDelta::encode_logged` per
/// settlement (`commit.lua` appends: one RPUSH instead of ten HINCRBYs into a small hash, which Redis
/// searches linearly).
pub const SV_LOG: &str = "svl";

pub fn period_key(shard: u16, name: &str, period: &str) -> String {
    format!("{}:{name}:{period}", tag(shard))
}

pub fn window_log_key(shard: u16, date: NaiveDate) -> String {
    period_key(shard, WINDOW_LOG, &date.to_string())
}

pub fn journal_key(shard: u16, date: NaiveDate) -> String {
    format!("{}:j:{date}", tag(shard))
}

/// A region's members, by person number (a sorted set read by lexical range, for the monthly credit
/// run); its own hash tag per region, so 400 regions spread over a cluster.
pub fn region_members_key(insured: &str) -> String {
    format!("{{reg:{insured}}}:members")
}

/// A versioned record of a shard (visits), and the shard's index of record names.
pub fn record_key(shard: u16, name: &str) -> String {
    format!("{}:r:{name}", tag(shard))
}

pub fn records_index_key(shard: u16) -> String {
    format!("{}:rk", tag(shard))
}

pub fn sv_pending_key(shard: u16, month: &str) -> String {
    period_key(shard, SV_SUMS, month)
}

pub fn sv_log_key(shard: u16, month: &str) -> String {
    period_key(shard, SV_LOG, month)
}

/// The month-wide indicator sums (buckets, like the window totals) and the last fold applied per shard:
/// one hash tag per month.
pub fn sv_bucket_key(month: &str, bucket: usize) -> String {
    format!("{{sv:{month}}}:e{bucket}")
}

pub fn sv_applied_key(month: &str) -> String {
    format!("{{sv:{month}}}:applied")
}

/// A shard's flagged settlements of a month: setl_id → entry.
pub fn flagged_key(shard: u16, month: &str) -> String {
    format!("{}:fl:{month}", tag(shard))
}

pub fn hold_key(shard: u16, hold_id: &str) -> String {
    format!("{}:h:{hold_id}", tag(shard))
}

pub fn holds_key(shard: u16) -> String {
    format!("{}:holds", tag(shard))
}
