//! Shards, settlement ids and idempotency keys.
//!
//! A member's shard is fixed by (insured region, psn_no); everything one commit touches lives in
//! that shard, so the Redis store can give all its keys one hash tag. The settlement id starts with
//! the shard in hex, so a lookup by id knows where to go without an index.

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Number of shards. Fixed for the life of a deployment: changing it moves every member. 256 spreads
/// ~400 regions' members evenly over any Redis Cluster size up to 256 masters.
pub const SHARDS: u16 = 256;

/// The shard of a member: the first byte of SHA-256(insured admdvs, ':', psn_no).
pub fn shard_of(insuplc_admdvs: &str, psn_no: &str) -> u16 {
    let mut h = Sha256::new();
    h.update(insuplc_admdvs.as_bytes());
    h.update(b":");
    h.update(psn_no.as_bytes());
    h.finalize()[0] as u16 % SHARDS
}

/// The shard of an arbitrary key (the msgid index of the Redis store lives there).
pub fn shard_of_key(key: &str) -> u16 {
    Sha256::digest(key.as_bytes())[0] as u16 % SHARDS
}

/// The shard named by a settlement id, if the id is well formed.
pub fn shard_of_setl_id(setl_id: &str) -> Option<u16> {
    if setl_id.len() != SETL_ID_LEN || !setl_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    u16::from_str_radix(&setl_id[..2], 16).ok()
}

/// Length of a settlement id: 2 hex digits of shard + 12 of milliseconds + 10 of sequence.
pub const SETL_ID_LEN: usize = 24;

/// Draws settlement ids: shard, time, and a per-process sequence started at a random-ish point, so two
/// replicas practically never draw the same id; a commit refuses a taken id all the same (and the
/// caller draws again), so uniqueness never rests on chance.
pub struct SetlIds {
    seq: AtomicU64,
}

impl Default for SetlIds {
    fn default() -> Self {
        Self::new()
    }
}

impl SetlIds {
    pub fn new() -> SetlIds {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut h = Sha256::new();
        h.update(nanos.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let d = h.finalize();
        let seed = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
        SetlIds { seq: AtomicU64::new(seed) }
    }

    pub fn next(&self, shard: u16, now_ms: u64) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) & 0xff_ffff_ffff;
        format!("{shard:02x}{:012x}{seq:010x}", now_ms & 0xffff_ffff_ffff)
    }
}

/// The idempotency key of a message: its msgid within the sender's scope, the institution of the
/// service location (`<mdtrt>:<fixmedins_code>:<msgid>`), so that no institution can take (or learn
/// about) a neighbour's msgids; a national msgid begins with its sender's institution code and is
/// predictable (issue 29). A message of no institution (an account closure) keeps `<region>:<msgid>`.
pub fn idempotency_key(mdtrt_admdvs: &str, fixmedins_code: &str, msgid: &str) -> String {
    if fixmedins_code.is_empty() { format!("{mdtrt_admdvs}:{msgid}") } else { format!("{mdtrt_admdvs}:{fixmedins_code}:{msgid}") }
}

/// The key the same message had before issue 29 (`<mdtrt>:<msgid>`), for a key with an institution:
/// answers stored under it keep answering their resends. Both stores look it up beside the key and
/// check it inside the commit; nothing is written under it any more. (A msgid has no `:`.)
pub fn legacy_idempotency_key(key: &str) -> Option<String> {
    let mut p = key.splitn(3, ':');
    let (Some(mdtrt), Some(_code), Some(msgid)) = (p.next(), p.next(), p.next()) else { return None };
    Some(format!("{mdtrt}:{msgid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setl_ids_carry_their_shard_and_are_distinct() {
        let ids = SetlIds::new();
        let a = ids.next(0xab, 1_700_000_000_000);
        let b = ids.next(0xab, 1_700_000_000_000);
        assert_ne!(a, b);
        assert_eq!(a.len(), SETL_ID_LEN);
        assert_eq!(shard_of_setl_id(&a), Some(0xab));
        assert_eq!(shard_of_setl_id("zz"), None);
        assert_eq!(shard_of_setl_id(&a.to_uppercase()), None);
    }

    #[test]
    fn shard_is_stable() {
        // A changed shard function would orphan every stored member: pin literal values (computed
        // outside this code: the first byte of SHA-256 of "admdvs:psn_no", e.g. with Python's hashlib).
        for (insured, psn_no, shard) in [
            ("421300", "P0001", 176),
            ("421300", "421300000000000001", 101),
            ("360100", "360100000000000042", 73),
            ("150500", "X", 101),
            ("320100", "", 204),
        ] {
            assert_eq!(shard_of(insured, psn_no), shard, "shard of {insured}:{psn_no}");
        }
        assert_eq!(shard_of_key("360100:MSG1"), 119);
        assert_eq!(shard_of_key("421300:20240601000001"), 164);
        let spread: std::collections::HashSet<u16> = (0..2000).map(|i| shard_of("360100", &format!("P{i}"))).collect();
        assert!(spread.len() > 200);
    }
}
