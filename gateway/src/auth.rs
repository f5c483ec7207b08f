//! Authentication like the national gateway's: headers `x-tif-paasid`, `x-tif-timestamp` (Unix seconds),
//! `x-tif-nonce`, `x-tif-signature` = lowercase hex SHA-256 of `timestamp + token + nonce + timestamp`.
//! The order of the checks matters: a nonce is recorded only once the signature is right, so a caller
//! without the token cannot use up anybody's nonces.
//!
//! A nonce may be used once within the timestamp window. Each paasid's nonces are a keyspace of their
//! own with a bound (`MAX_NONCES_PER_PAASID`): one caller, however busy, can neither push another's
//! nonces out (which would let them be replayed) nor grow the store without limit; a caller at its
//! bound is answered 429 until its oldest nonces expire. With Redis configured the keyspace is one
//! sorted set per paasid, `gw:nonces:{<paasid>}` (nonce → expiry, `nonce.lua`), shared by every
//! replica; otherwise a map per paasid in this process (one replica, or sticky sessions). For
//! `LEGACY_NONCE_KEYS_FOR` after start a gateway on Redis also sets and honours the key of the builds
//! before (`gw:nonce:<paasid>:<nonce>`), so that a rolling update leaves no replay window.

use crate::paas::{Paas, SharedTable};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const H_PAASID: &str = "x-tif-paasid";
pub const H_TIMESTAMP: &str = "x-tif-timestamp";
pub const H_NONCE: &str = "x-tif-nonce";
pub const H_SIGNATURE: &str = "x-tif-signature";

/// Nonce length bounds (national callers send 16–32 characters).
pub const MAX_NONCE_LEN: usize = 64;
pub const MIN_NONCE_LEN: usize = 8;
/// Nonces one paasid may have in use (within 2 × the timestamp window, 10 minutes by default) at once:
/// 100,000 is 166 requests a second sustained for ten minutes, above the busiest provincial platform's
/// share of national volume (≈ 650,000 cross-region claims a day); a caller at the bound is refused
/// (429) rather than having its own older nonces forgotten, which would let them be replayed.
pub const MAX_NONCES_PER_PAASID: usize = 100_000;

/// The one answer to a request that did not authenticate (the reason is audited, not answered).
pub const AUTHENTICATION_FAILED: &str = "authentication failed: check x-tif-paasid, x-tif-timestamp, x-tif-nonce and x-tif-signature";

/// Why a request was not authenticated (audited with the paasid; answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingHeader(&'static str),
    UnknownPaasid,
    StaleTimestamp,
    BadSignature,
    ReplayedNonce,
    /// The paasid has `MAX_NONCES_PER_PAASID` nonces in use.
    TooManyNonces,
    NonceStoreUnavailable,
}

impl Refusal {
    /// The reason as audited and answered (no secret, no person).
    pub fn reason(self) -> String {
        match self {
            Refusal::MissingHeader(h) => format!("missing or malformed header {h}"),
            Refusal::UnknownPaasid => "unknown paasid".into(),
            Refusal::StaleTimestamp => "x-tif-timestamp outside the accepted window".into(),
            Refusal::BadSignature => "x-tif-signature does not match".into(),
            Refusal::ReplayedNonce => "x-tif-nonce already used".into(),
            Refusal::TooManyNonces => format!("more than {MAX_NONCES_PER_PAASID} nonces in use by this paasid; retry later"),
            Refusal::NonceStoreUnavailable => "the nonce store is unavailable; retry".into(),
        }
    }
}

/// The signature a caller with `token` sends.
pub fn signature(timestamp: &str, token: &[u8], nonce: &str) -> String {
    let mut h = Sha256::new();
    h.update(timestamp.as_bytes());
    h.update(token);
    h.update(nonce.as_bytes());
    h.update(timestamp.as_bytes());
    hex::encode(h.finalize())
}

/// Where used nonces are remembered.
pub enum Nonces {
    Memory(Mutex<HashMap<String, MemoryNonces>>),
    Redis(redis::aio::ConnectionManager, redis::Script, Instant),
    Cluster(redis::cluster_async::ClusterConnection, redis::Script, Instant),
}

/// How long after start a gateway also honours (and writes) the nonce keys of the builds before issue
/// 29, `gw:nonce:<paasid>:<nonce>`: replicas of both builds share Redis during a rolling update, and a
/// nonce either used must be refused by both. Past twice the longest timestamp window those keys have
/// expired.
pub const LEGACY_NONCE_KEYS_FOR: Duration = Duration::from_secs(20 * 60);

/// One paasid's nonces in this process: nonce → expiry, and the same in order of expiry.
#[derive(Default)]
pub struct MemoryNonces {
    seen: HashMap<String, Instant>,
    order: std::collections::VecDeque<(Instant, String)>,
}

/// Outcome of recording a nonce.
#[derive(Debug, PartialEq, Eq)]
enum Use {
    First,
    Replayed,
    Full,
}

impl Nonces {
    pub fn memory() -> Nonces {
        Nonces::Memory(Mutex::new(HashMap::new()))
    }
    pub fn redis(c: redis::aio::ConnectionManager) -> Nonces {
        Nonces::Redis(c, redis::Script::new(include_str!("nonce.lua")), Instant::now() + LEGACY_NONCE_KEYS_FOR)
    }
    pub fn cluster(c: redis::cluster_async::ClusterConnection) -> Nonces {
        Nonces::Cluster(c, redis::Script::new(include_str!("nonce.lua")), Instant::now() + LEGACY_NONCE_KEYS_FOR)
    }

    /// The Redis key of a paasid's nonces (its own slot on a cluster).
    pub fn redis_key(paasid: &str) -> String {
        format!("gw:nonces:{{{paasid}}}")
    }

    /// Records `nonce` for `paasid` for `ttl`.
    async fn record(&self, paasid: &str, nonce: &str, ttl: Duration) -> Result<Use, Refusal> {
        match self {
            Nonces::Memory(m) => {
                let now = Instant::now();
                let mut all = m.lock().expect("nonce lock");
                let mine = all.entry(paasid.to_string()).or_default();
                while mine.order.front().is_some_and(|(exp, _)| *exp <= now) {
                    let (_, k) = mine.order.pop_front().expect("front");
                    mine.seen.remove(&k);
                }
                if mine.seen.contains_key(nonce) {
                    return Ok(Use::Replayed);
                }
                if mine.seen.len() >= MAX_NONCES_PER_PAASID {
                    return Ok(Use::Full);
                }
                mine.seen.insert(nonce.to_string(), now + ttl);
                mine.order.push_back((now + ttl, nonce.to_string()));
                Ok(Use::First)
            }
            Nonces::Redis(_, script, legacy_until) | Nonces::Cluster(_, script, legacy_until) => {
                let unavailable = |e: redis::RedisError| {
                    tracing::warn!(error = %e, "nonce store unavailable");
                    Refusal::NonceStoreUnavailable
                };
                let mut inv = script.prepare_invoke();
                inv.key(Self::redis_key(paasid)).arg(nonce).arg(ttl.as_millis() as u64).arg(MAX_NONCES_PER_PAASID);
                let r: i64 = match self {
                    Nonces::Redis(c, ..) => inv.invoke_async(&mut c.clone()).await,
                    Nonces::Cluster(c, ..) => inv.invoke_async(&mut c.clone()).await,
                    Nonces::Memory(_) => unreachable!("matched above"),
                }
                .map_err(unavailable)?;
                let verdict = match r {
                    1 => Use::First,
                    0 => Use::Replayed,
                    _ => Use::Full,
                };
                if verdict != Use::First || Instant::now() >= *legacy_until {
                    return Ok(verdict);
                }
                // Soon after start: the key an older replica writes and reads, too.
                let mut old = redis::cmd("SET");
                old.arg(format!("gw:nonce:{paasid}:{nonce}")).arg(1).arg("NX").arg("EX").arg(ttl.as_secs().max(1));
                let set: Option<String> = match self {
                    Nonces::Redis(c, ..) => old.query_async(&mut c.clone()).await,
                    Nonces::Cluster(c, ..) => old.query_async(&mut c.clone()).await,
                    Nonces::Memory(_) => unreachable!("matched above"),
                }
                .map_err(unavailable)?;
                Ok(if set.is_some() { Use::First } else { Use::Replayed })
            }
        }
    }
}

/// The x-tif check.
pub struct Authenticator {
    /// The callers in force (reloaded while running).
    pub paas: SharedTable,
    pub window: Duration,
    pub nonces: Nonces,
}

impl Authenticator {
    /// The caller of a request with these headers, or why not.
    pub async fn authenticate(&self, headers: &axum::http::HeaderMap, now_unix: i64) -> Result<Arc<Paas>, (Refusal, Option<String>)> {
        let get = |h: &'static str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let paasid = get(H_PAASID).ok_or((Refusal::MissingHeader(H_PAASID), None))?;
        // An unknown paasid is audited, but not echoed in full: it may be garbage of any length.
        let shown: String = paasid.chars().take(64).collect();
        let fail = |r: Refusal| (r, Some(shown.clone()));
        let paas = self.paas.read().expect("paas lock").get(paasid).cloned().ok_or_else(|| fail(Refusal::UnknownPaasid))?;
        let ts_text = get(H_TIMESTAMP).ok_or_else(|| fail(Refusal::MissingHeader(H_TIMESTAMP)))?;
        let ts: i64 = ts_text.parse().map_err(|_| fail(Refusal::MissingHeader(H_TIMESTAMP)))?;
        let nonce = get(H_NONCE)
            .filter(|n| (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .ok_or_else(|| fail(Refusal::MissingHeader(H_NONCE)))?;
        let sent = get(H_SIGNATURE).ok_or_else(|| fail(Refusal::MissingHeader(H_SIGNATURE)))?;
        if now_unix.abs_diff(ts) > self.window.as_secs() {
            return Err(fail(Refusal::StaleTimestamp));
        }
        // Constant time over the whole value and every token in force (the token and, during a rotation,
        // its successor); case-insensitive hex as some callers send upper case.
        let sent = sent.to_ascii_lowercase();
        let matched =
            paas.tokens.iter().fold(subtle::Choice::from(0), |m, t| m | signature(ts_text, t, nonce).as_bytes().ct_eq(sent.as_bytes()));
        if !bool::from(matched) {
            return Err(fail(Refusal::BadSignature));
        }
        // Any timestamp still accepted is at most 2 × window away from any other: remember that long.
        match self.nonces.record(paasid, nonce, self.window * 2).await.map_err(fail)? {
            Use::First => {}
            Use::Replayed => return Err(fail(Refusal::ReplayedNonce)),
            Use::Full => return Err(fail(Refusal::TooManyNonces)),
        }
        Ok(paas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn table() -> SharedTable {
        let t = "[[paas]]\npaasid = \"his_1\"\ntoken = \"0123456789abcdef0123\"\nrole = \"platform\"\nadmdvs = \"421300\"\n";
        Arc::new(std::sync::RwLock::new(Arc::new(crate::paas::PaasTable::parse("t", t, std::path::Path::new(".")).unwrap())))
    }

    fn headers(paasid: &str, ts: i64, nonce: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(H_PAASID, paasid.parse().unwrap());
        h.insert(H_TIMESTAMP, ts.to_string().parse().unwrap());
        h.insert(H_NONCE, nonce.parse().unwrap());
        h.insert(H_SIGNATURE, sig.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn signatures_windows_and_nonces() {
        let a = Authenticator { paas: table(), window: Duration::from_secs(300), nonces: Nonces::memory() };
        let now = 1_700_000_000;
        let sig = |ts: i64, nonce: &str| signature(&ts.to_string(), b"0123456789abcdef0123", nonce);
        assert_eq!(a.authenticate(&headers("his_1", now, "nonce0001", &sig(now, "nonce0001")), now).await.unwrap().paasid, "his_1");
        // The same nonce again, even correctly signed: a replay.
        let again = a.authenticate(&headers("his_1", now, "nonce0001", &sig(now, "nonce0001")), now + 5).await;
        assert_eq!(again.unwrap_err().0, Refusal::ReplayedNonce);
        let stale = a.authenticate(&headers("his_1", now - 301, "nonce0002", &sig(now - 301, "nonce0002")), now).await;
        assert_eq!(stale.unwrap_err().0, Refusal::StaleTimestamp);
        let bad = a.authenticate(&headers("his_1", now, "nonce0003", &sig(now, "nonce0004")), now).await;
        assert_eq!(bad.unwrap_err().0, Refusal::BadSignature);
        // A bad signature did not use the nonce up.
        assert!(a.authenticate(&headers("his_1", now, "nonce0003", &sig(now, "nonce0003")), now).await.is_ok());
        let unknown = a.authenticate(&headers("nobody", now, "nonce0005", &sig(now, "nonce0005")), now).await;
        assert_eq!(unknown.unwrap_err().0, Refusal::UnknownPaasid);
        // The national example: sha256("1700000000" + token + "nonce0001" + "1700000000"), lowercase hex.
        assert_eq!(sig(now, "nonce0001").len(), 64);
        assert_eq!(signature("1", b"t", "n"), hex::encode(Sha256::digest(b"1tn1")), "timestamp + token + nonce + timestamp");
    }

    #[tokio::test]
    async fn each_paasid_has_its_own_bounded_nonces() {
        let n = Nonces::memory();
        let ttl = Duration::from_secs(600);
        for i in 0..MAX_NONCES_PER_PAASID {
            assert_eq!(n.record("busy", &format!("n{i}"), ttl).await, Ok(Use::First));
        }
        // At its bound a paasid is refused, and its oldest nonce is still remembered (no replay) …
        assert_eq!(n.record("busy", "one-more", ttl).await, Ok(Use::Full));
        assert_eq!(n.record("busy", "n0", ttl).await, Ok(Use::Replayed));
        // … while another paasid, even with the same nonce, is not affected.
        assert_eq!(n.record("quiet", "n0", ttl).await, Ok(Use::First));
        // Expired nonces free their room.
        assert_eq!(n.record("brief", "a", Duration::ZERO).await, Ok(Use::First));
        assert_eq!(n.record("brief", "a", ttl).await, Ok(Use::First));
    }
}
