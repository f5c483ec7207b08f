//! Authentication like the national gateway's: headers `x-tif-paasid`, `x-tif-timestamp` (Unix seconds),
//! `x-tif-nonce`, `x-tif-signature` = lowercase hex SHA-256 of `timestamp + token + nonce + timestamp`.
//! The order of the checks matters: a nonce is recorded only once the signature is right, so a caller
//! without the token cannot use up anybody's nonces.
//!
//! A nonce may be used once within the timestamp window. With Redis configured, nonces are shared by
//! every replica (`SET gw:nonce:<paasid>:<nonce> 1 NX EX <2 × window>`); otherwise they are kept in this
//! process (one replica, or replicas behind a load balancer with sticky sessions).

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
/// Nonces remembered in memory at most; past this the oldest expire early (a flood of valid
/// signatures, only possible for a caller holding a token, cannot grow memory without bound).
pub const MAX_MEMORY_NONCES: usize = 1_000_000;

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
    Memory(Mutex<MemoryNonces>),
    Redis(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

#[derive(Default)]
pub struct MemoryNonces {
    seen: HashMap<String, Instant>,
    order: std::collections::VecDeque<(Instant, String)>,
}

impl Nonces {
    pub fn memory() -> Nonces {
        Nonces::Memory(Mutex::new(MemoryNonces::default()))
    }

    /// Records `key`; false when it was already there (a replay).
    async fn first_use(&self, key: String, ttl: Duration) -> Result<bool, Refusal> {
        match self {
            Nonces::Memory(m) => {
                let now = Instant::now();
                let mut m = m.lock().expect("nonce lock");
                while let Some((exp, _)) = m.order.front() {
                    if *exp > now && m.order.len() < MAX_MEMORY_NONCES {
                        break;
                    }
                    let (_, k) = m.order.pop_front().expect("front");
                    m.seen.remove(&k);
                }
                if m.seen.get(&key).is_some_and(|exp| *exp > now) {
                    return Ok(false);
                }
                m.seen.insert(key.clone(), now + ttl);
                m.order.push_back((now + ttl, key));
                Ok(true)
            }
            Nonces::Redis(_) | Nonces::Cluster(_) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(format!("gw:nonce:{key}")).arg(1).arg("NX").arg("EX").arg(ttl.as_secs().max(1));
                let set: Result<Option<String>, redis::RedisError> = match self {
                    Nonces::Redis(c) => cmd.query_async(&mut c.clone()).await,
                    Nonces::Cluster(c) => cmd.query_async(&mut c.clone()).await,
                    Nonces::Memory(_) => unreachable!("matched above"),
                };
                let set = set.map_err(|e| {
                    tracing::warn!(error = %e, "nonce store unavailable");
                    Refusal::NonceStoreUnavailable
                })?;
                Ok(set.is_some())
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
        if !self.nonces.first_use(format!("{paasid}:{nonce}"), self.window * 2).await.map_err(fail)? {
            return Err(fail(Refusal::ReplayedNonce));
        }
        Ok(paas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn table() -> SharedTable {
        let t = "[[paas]]\npaasid = \"his_1\"\ntoken = \"0123456789abcdef0123\"\nrole = \"mdtrt\"\nadmdvs = \"421300\"\n";
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
}
