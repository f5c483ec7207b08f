//! Settlements as stored, their commit, its outcome, and what a settlement adds to supervision.

use crate::*;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

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

impl MsgidRead {
    /// What a read of the idempotency key found.
    pub fn of(read: Option<IdempotencyRecord>) -> MsgidRead {
        read.map_or(MsgidRead::New, MsgidRead::Stored)
    }
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
    /// The institution it was settled at (empty for an account closure, and on records written before
    /// issue 29): reconciliation and reads are scoped by it.
    #[serde(default)]
    pub fixmedins_code: String,
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
