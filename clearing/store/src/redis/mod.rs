//! The Redis store: several `clearing` replicas share one Redis, or a Redis Cluster, with no code
//! change between the two.
//!
//! Layout: every key of a shard carries the hash tag `{ch:XX}` (XX = shard in hex), so a commit is one
//! Lua script (`commit.lua`, loaded once and run by SHA) on one slot. Per shard:
//! `m:<admdvs>:<psn_no>` member hash (`f` registry facts JSON, `v` version, `b` balance in fen,
//! `a:<year>:<benefit>:{d,f,n}` accumulators, `h` recent visits), `s:<setl_id>` settlement hash
//! (`rec` the stored record, see `record.rs`; `rev`), `i:<idempotency key>`, `mi:<idempotency key>` the
//! msgid's shard, `j:<clr_date>` journal list, `wl:<clr_date>` the journal entries not folded into the
//! window totals yet (`w:<clr_date>`, a hash of sums, from builds before), `svl:<month>` supervision
//! deltas not folded yet, `fl:<month>` flagged settlements, `closed` set of closed windows,
//! `h:<setl_id>` + `holds` for cross-shard family pay.
//!
//! Money is integer fen changed only by HINCRBY. At connect the store checks that every master keeps
//! what it acknowledges (AOF on, fsync always) and refuses otherwise, unless overridden loudly.
//!
//! Family pay whose payer lives in another shard cannot be one script on a cluster. It runs as a small
//! saga: reserve on the payer's shard (`hold.lua`), commit on the patient's shard, then finalize or
//! release (`settle_hold.lua`). A hold left behind by a crash is resolved by a sweeper that either finds
//! the commit or fences the idempotency key so that the commit can never happen (`fence.lua`).

mod cache;
mod commit;
mod durability;
mod folds;
mod holds;
pub mod keys;
mod members;
mod store_impl;
#[cfg(test)]
mod tests;

pub use crate::member_cache::{DEFAULT_MEMBER_CACHE, MemberCache};
use commit::*;
use durability::*;
use folds::*;
use holds::*;
use keys::*;
use members::*;

use super::*;
use crate::ids::SHARDS;
use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Pauses (ms) between attempts of an idempotent read while Redis is unreachable: one attempt more
/// than pauses, 1.55 s in all, enough to ride out a Redis restart (AOF replay of a test-sized file
/// takes well under a second); the commit itself is never retried blindly (see settle.rs).
const READ_BACKOFF_MS: [u64; 5] = [50, 100, 200, 400, 800];
/// A reply slower than this counts as a failed call.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// A hold older than this is resolved by the sweeper.
const STALE_HOLD_MS: i64 = 15_000;
/// Shards worked on at once by the cheap per-shard passes (close markers, journal counts).
const SHARD_CONCURRENCY: usize = 32;
/// Shards folded at once: a fold is a script that keeps single-threaded Redis busy, so two are enough
/// to overlap one shard's transfer with another's execution without queueing past the reply timeout.
const FOLD_CONCURRENCY: usize = 2;

/// How long a fenced idempotency key refuses commits (the abandoned attempt's client retries later).
const FENCE_SECS: u64 = 60;

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// One URL for a single Redis; one or more seed nodes for a cluster (detected automatically).
    pub urls: Vec<String>,
    /// Start even if Redis does not fsync every write. Logged loudly; for experiments only.
    pub allow_volatile: bool,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(&'a mut self, p: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(p, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The Redis store. Cheap to clone: one multiplexed connection (or cluster connection) shared by all.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    cluster: bool,
    scripts: Arc<Scripts>,
    /// Per shard: (today, the open day found then). The commit script is the authority on closed
    /// windows (it answers WINDOW for a closed day, which drops the entry), so this only saves the
    /// SMEMBERS round trip of every settlement.
    open_days: Arc<std::sync::Mutex<HashMap<u16, (NaiveDate, NaiveDate)>>>,
    /// Months of supervision indicators read before, with the folds they contained (the month's
    /// applied-sequence hash): a month no fold has changed since (a past month, mostly) is not read
    /// again. A few months at most.
    indicator_cache: Arc<std::sync::Mutex<HashMap<String, CachedMonth>>>,
    /// Members as this replica last read or committed them (issue 20): a settlement starts from one
    /// without a round trip. Never trusted: the commit script checks the version, and every writer of a
    /// member hash bumps it, so a stale entry (another replica committed) costs one retry.
    members: Arc<MemberCache>,
    /// The durability check of every node, again after start (`recheck_durability`), and the writes it
    /// refuses meanwhile.
    durability: Arc<Durability>,
}

/// A month's indicator fields and the folds (shard, sequence) they contain.
type CachedMonth = (Vec<(String, String)>, Arc<Vec<(String, i64)>>);

struct Scripts {
    commit: Script,
    upsert: Script,
    hold: Script,
    settle_hold: Script,
    fence: Script,
    fold: Script,
    fold_apply: Script,
    fold_apply_packed: Script,
    fold_done: Script,
    journal_sum: Script,
    records: Script,
    credit: Script,
}

/// Classifies a Redis error by whether retrying can help. Transient (UNAVAILABLE, retry with the same
/// msgid): connection loss, timeouts, a server still loading its data, TRYAGAIN, CLUSTERDOWN,
/// MASTERDOWN and MOVED/ASK the cluster client could not follow. Out of memory: RESOURCE_EXHAUSTED.
/// Anything else (a script error, WRONGTYPE, NOPERM…) is logged with Redis's message and answered as an
/// internal error without it.
fn err(e: RedisError) -> StoreError {
    use ::redis::{ErrorKind, ServerErrorKind};
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound | ErrorKind::Server(ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown)
        );
    if transient {
        return StoreError::Unavailable(e.to_string());
    }
    if e.code() == Some("OOM") {
        tracing::error!(error = %e, "redis is out of memory (maxmemory reached)");
        return StoreError::Exhausted("redis reached maxmemory".into());
    }
    tracing::error!(error = %e, code = e.code().unwrap_or(""), "redis refused a command");
    StoreError::Failed(format!("redis refused a command ({}); see the service log", e.code().unwrap_or("client error")))
}

impl RedisStore {
    /// Connects, checks durability on every master, loads the scripts.
    pub async fn connect(opts: &RedisOptions) -> Result<RedisStore, StoreError> {
        let urls: Vec<String> =
            opts.urls.iter().flat_map(|u| u.split(',')).map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
        let (cluster, nodes) = discover_nodes(&urls).await?;
        check_durability(&nodes, opts.allow_volatile).await?;
        let conn = if cluster {
            let client = ::redis::cluster::ClusterClient::builder(urls.clone())
                .response_timeout(RESPONSE_TIMEOUT)
                .connection_timeout(Duration::from_secs(2))
                .retries(3)
                .build()
                .map_err(err)?;
            Conn::Cluster(client.get_async_connection().await.map_err(err)?)
        } else {
            let cfg = ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_number_of_retries(3)
                .set_max_delay(Duration::from_millis(500));
            let client = ::redis::Client::open(nodes[0].as_str()).map_err(err)?;
            Conn::Single(client.get_connection_manager_with_config(cfg).await.map_err(err)?)
        };
        let scripts = Arc::new(Scripts {
            commit: Script::new(include_str!("commit.lua")),
            upsert: Script::new(include_str!("upsert.lua")),
            hold: Script::new(include_str!("hold.lua")),
            settle_hold: Script::new(include_str!("settle_hold.lua")),
            fence: Script::new(include_str!("fence.lua")),
            fold: Script::new(include_str!("fold.lua")),
            fold_apply: Script::new(include_str!("fold_apply.lua")),
            fold_apply_packed: Script::new(include_str!("fold_apply_packed.lua")),
            fold_done: Script::new(include_str!("fold_done.lua")),
            journal_sum: Script::new(include_str!("journal_sum.lua")),
            records: Script::new(include_str!("records.lua")),
            credit: Script::new(include_str!("credit.lua")),
        });
        let members = Arc::new(MemberCache::new(DEFAULT_MEMBER_CACHE));
        let durability = Arc::new(Durability { seeds: urls, allow_volatile: opts.allow_volatile, gate: DurabilityGate::default() });
        let store = RedisStore { conn, cluster, scripts, open_days: Arc::default(), indicator_cache: Arc::default(), members, durability };
        // Load every script once so commits run by SHA; on a cluster, Script falls back to loading on a
        // node that lacks it (NOSCRIPT) without running anything twice.
        if !cluster {
            let mut c = store.conn.clone();
            for s in [&store.scripts.commit, &store.scripts.upsert, &store.scripts.hold, &store.scripts.settle_hold, &store.scripts.fence] {
                s.prepare_invoke().load_async(&mut c).await.map_err(err)?;
            }
        }
        Ok(store)
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// An idempotent command, retried with bounded backoff when the connection fails. Commits never
    /// come through here: an unknown commit outcome is resolved by re-reading the idempotency key.
    /// `query` for a pipeline (reads only, so repeating it is safe).
    async fn query_pipe<T: ::redis::FromRedisValue>(&self, pipe: &::redis::Pipeline) -> Result<T, StoreError> {
        self.read_with_retries(|mut c| async move { pipe.query_async(&mut c).await }).await
    }

    async fn query<T: ::redis::FromRedisValue>(&self, cmd: &::redis::Cmd) -> Result<T, StoreError> {
        self.read_with_retries(|mut c| async move { cmd.query_async(&mut c).await }).await
    }

    /// A read, repeated with backoff while Redis is unreachable; any other error is final at once, and
    /// the last attempt's error is returned without a pause after it.
    async fn read_with_retries<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        let mut pauses = READ_BACKOFF_MS.iter();
        loop {
            let e = match read(self.conn.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => err(e),
            };
            match (&e, pauses.next()) {
                (StoreError::Unavailable(m), Some(ms)) => {
                    tracing::debug!(error = %m, pause_ms = ms, "redis read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(*ms)).await
                }
                _ => return Err(e),
            }
        }
    }

    /// Runs `f` for every shard, `concurrency` at a time; returns the results in shard order.
    async fn each_shard<T, F, Fut>(&self, concurrency: usize, f: F) -> Result<Vec<T>, StoreError>
    where
        T: Send + 'static,
        F: Fn(RedisStore, u16) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let mut out = Vec::with_capacity(SHARDS as usize);
        let shards: Vec<u16> = (0..SHARDS).collect();
        for chunk in shards.chunks(concurrency.max(1)) {
            let mut set = tokio::task::JoinSet::new();
            for &shard in chunk {
                let fut = f(self.clone(), shard);
                set.spawn(async move { (shard, fut.await) });
            }
            let mut part = Vec::with_capacity(chunk.len());
            while let Some(r) = set.join_next().await {
                let (shard, v) = r.map_err(|e| StoreError::Unavailable(format!("shard task: {e}")))?;
                part.push((shard, v?));
            }
            part.sort_by_key(|(s, _)| *s);
            out.extend(part.into_iter().map(|(_, v)| v));
        }
        Ok(out)
    }
}
