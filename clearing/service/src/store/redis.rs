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

use super::*;
use crate::ids::{SHARDS, shard_of, shard_of_key, shard_of_setl_id};
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
/// Hashes the window-wide totals are split into (same slot), read concurrently at netting.
const TOTALS_BUCKETS: usize = 16;
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

/// What `recheck_durability` needs: where to find the nodes, and whether an unsafe one only warns.
struct Durability {
    seeds: Vec<String>,
    allow_volatile: bool,
    gate: DurabilityGate,
}

/// Members by key, bounded: two generations of at most `cap / 2` entries each; a lookup that finds an
/// entry in the older one moves it to the newer, and when the newer is full the older is dropped. So the
/// members settling now stay, and memory stays under `cap` entries (each the size of the member's record,
/// mostly its registry facts).
pub struct MemberCache {
    cap: usize,
    gens: std::sync::Mutex<[HashMap<String, Arc<MemberRecord>>; 2]>,
}

/// Members kept by default (`--member-cache`).
pub const DEFAULT_MEMBER_CACHE: usize = 100_000;

impl MemberCache {
    fn new(cap: usize) -> MemberCache {
        MemberCache { cap, gens: std::sync::Mutex::new([HashMap::new(), HashMap::new()]) }
    }

    fn get(&self, key: &str) -> Option<Arc<MemberRecord>> {
        if self.cap == 0 {
            return None;
        }
        let mut g = self.gens.lock().expect("member cache");
        if let Some(m) = g[0].get(key) {
            return Some(m.clone());
        }
        let m = g[1].remove(key)?;
        Self::put_in(&mut g, self.cap, key.to_string(), m.clone());
        Some(m)
    }

    fn put(&self, key: String, m: Arc<MemberRecord>) {
        if self.cap > 0 {
            Self::put_in(&mut self.gens.lock().expect("member cache"), self.cap, key, m);
        }
    }

    fn put_in(g: &mut [HashMap<String, Arc<MemberRecord>>; 2], cap: usize, key: String, m: Arc<MemberRecord>) {
        if g[0].len() >= cap.div_ceil(2) && !g[0].contains_key(&key) {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[1].remove(&key);
        g[0].insert(key, m);
    }

    /// Changes the entry of `key` in place, if there is one and `f` says so (`f` answers whether to keep
    /// it). Copy-on-write: a settlement still holding the entry keeps what it read.
    fn update(&self, key: &str, f: impl FnOnce(&mut Arc<MemberRecord>) -> bool) {
        if self.cap == 0 {
            return;
        }
        let mut g = self.gens.lock().expect("member cache");
        let keep = match g[0].get_mut(key) {
            Some(m) => f(m),
            None => match g[1].get_mut(key) {
                Some(m) => f(m),
                None => return,
            },
        };
        if !keep {
            g[0].remove(key);
            g[1].remove(key);
        }
    }

    fn forget(&self, key: &str) {
        self.update(key, |_| false);
    }
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

fn tag(shard: u16) -> String {
    format!("{{ch:{shard:02x}}}")
}

fn member_key(k: &MemberKey) -> String {
    format!("{}:m:{}:{}", tag(shard_of(&k.insuplc_admdvs, &k.psn_no)), k.insuplc_admdvs, k.psn_no)
}

fn member_shard(k: &MemberKey) -> u16 {
    shard_of(&k.insuplc_admdvs, &k.psn_no)
}

fn settlement_key(setl_id: &str) -> Option<String> {
    shard_of_setl_id(setl_id).map(|s| format!("{}:s:{setl_id}", tag(s)))
}

fn idem_key(shard: u16, key: &str) -> String {
    format!("{}:i:{key}", tag(shard))
}

/// Which member shard a msgid (idempotency key) belongs to, kept in the key's own shard, so a msgid
/// reused for another member (another shard) is caught although the two commits share no slot.
fn msgid_index_key(key: &str) -> String {
    format!("{}:mi:{key}", tag(shard_of_key(key)))
}

/// Window-level metadata shared by every replica (not per shard): its own hash tag.
fn meta_key(key: &str) -> String {
    format!("{{clr:meta}}:{key}")
}

fn totals_bucket_key(date: NaiveDate, bucket: usize) -> String {
    meta_key(&format!("wt:{date}:{bucket}"))
}

/// The bucket of a window-totals field: FNV-1a of its name, so a field always lands in one bucket.
fn bucket_of(field: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in field.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h as usize % TOTALS_BUCKETS
}

fn closed_key(shard: u16) -> String {
    format!("{}:closed", tag(shard))
}

/// What a shard keeps of a period (a window's date, a month) until it is folded, as keys
/// `<tag>:<name>:<period>`; each one's fold in flight and fold sequence are named after it (`FoldKeys::of`).
/// A shard's window totals not folded yet, as the builds before the window log kept them (a hash).
const WINDOW_SUMS: &str = "w";
/// A shard's journal entries of a window not folded into the window totals yet (`commit.lua` appends
/// each settlement's entry here and to the journal).
const WINDOW_LOG: &str = "wl";
/// A shard's supervision indicators of a month not folded yet, as the builds before the supervision log
/// kept them (a hash).
const SV_SUMS: &str = "sv";
/// A shard's supervision deltas of a month not folded yet, one `SupervisionDelta::encode_logged` per
/// settlement (`commit.lua` appends: one RPUSH instead of ten HINCRBYs into a small hash, which Redis
/// searches linearly).
const SV_LOG: &str = "svl";

fn period_key(shard: u16, name: &str, period: &str) -> String {
    format!("{}:{name}:{period}", tag(shard))
}

fn window_log_key(shard: u16, date: NaiveDate) -> String {
    period_key(shard, WINDOW_LOG, &date.to_string())
}

fn journal_key(shard: u16, date: NaiveDate) -> String {
    format!("{}:j:{date}", tag(shard))
}

/// A region's members, by person number (a sorted set read by lexical range, for the monthly credit
/// run); its own hash tag per region, so 400 regions spread over a cluster.
fn region_members_key(insured: &str) -> String {
    format!("{{reg:{insured}}}:members")
}

/// A versioned record of a shard (visits), and the shard's index of record names.
fn record_key(shard: u16, name: &str) -> String {
    format!("{}:r:{name}", tag(shard))
}

fn records_index_key(shard: u16) -> String {
    format!("{}:rk", tag(shard))
}

fn sv_pending_key(shard: u16, month: &str) -> String {
    period_key(shard, SV_SUMS, month)
}

fn sv_log_key(shard: u16, month: &str) -> String {
    period_key(shard, SV_LOG, month)
}

/// The month-wide indicator sums (buckets, like the window totals) and the last fold applied per shard:
/// one hash tag per month.
fn sv_bucket_key(month: &str, bucket: usize) -> String {
    format!("{{sv:{month}}}:e{bucket}")
}

fn sv_applied_key(month: &str) -> String {
    format!("{{sv:{month}}}:applied")
}

/// A shard's flagged settlements of a month: setl_id → entry.
fn flagged_key(shard: u16, month: &str) -> String {
    format!("{}:fl:{month}", tag(shard))
}

fn hold_key(shard: u16, hold_id: &str) -> String {
    format!("{}:h:{hold_id}", tag(shard))
}

fn holds_key(shard: u16) -> String {
    format!("{}:holds", tag(shard))
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

/// The registry facts kept as one JSON field.
#[derive(Serialize, Deserialize)]
struct Facts {
    psn_type: String,
    retire_date: Option<NaiveDate>,
    pooling_only: bool,
    filings: Vec<FilingRecord>,
    mulaid_beneficiaries: Vec<BeneficiaryRecord>,
    #[serde(default)]
    credit_facts: CreditFacts,
    #[serde(default)]
    arrears: Vec<PeriodRecord>,
}

/// A hold as stored on the payer's shard.
#[derive(Serialize, Deserialize)]
struct Hold {
    payer: MemberKey,
    delta_fen: i64,
    patient_shard: u16,
    idem_key: String,
    setl_id: String,
    created_ms: i64,
}

fn member_from_fields(key: &MemberKey, fields: HashMap<String, String>) -> Result<Option<MemberRecord>, StoreError> {
    let Some(f) = fields.get("f") else { return Ok(None) };
    let facts: Facts = serde_json::from_str(f).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let int = |s: Option<&String>| -> Result<i64, StoreError> {
        s.map_or(Ok(0), |v| v.parse::<i64>().map_err(|e| StoreError::Corrupt(format!("{v:?}: {e}"))))
    };
    let mut accs: BTreeMap<(i32, String), AccumulatorRecord> = BTreeMap::new();
    let mut credits = BTreeMap::new();
    for (k, v) in &fields {
        if let Some(month) = k.strip_prefix("c:") {
            credits.insert(month.to_string(), int(Some(v))?);
            continue;
        }
        let Some(rest) = k.strip_prefix("a:") else { continue };
        let (yb, kind) = rest.rsplit_once(':').ok_or_else(|| StoreError::Corrupt(format!("field {k}")))?;
        let (year, benefit) = yb.split_once(':').ok_or_else(|| StoreError::Corrupt(format!("field {k}")))?;
        let year: i32 = year.parse().map_err(|_| StoreError::Corrupt(format!("field {k}")))?;
        let n = int(Some(v))?;
        let a = accs.entry((year, benefit.to_string())).or_insert_with(|| AccumulatorRecord {
            year,
            benefit: benefit.to_string(),
            deductible_used_fen: 0,
            fund_paid_fen: 0,
            visits: 0,
        });
        match kind {
            "d" => a.deductible_used_fen = n,
            "f" => a.fund_paid_fen = n,
            "n" => a.visits = n,
            _ => return Err(StoreError::Corrupt(format!("field {k}"))),
        }
    }
    Ok(Some(MemberRecord {
        key: key.clone(),
        psn_type: facts.psn_type,
        retire_date: facts.retire_date,
        pooling_only: facts.pooling_only,
        acct_balc_fen: int(fields.get("b"))?,
        filings: facts.filings,
        mulaid_beneficiaries: facts.mulaid_beneficiaries,
        accumulators: accs.into_values().collect(),
        version: int(fields.get("v"))? as u64,
        credit_facts: facts.credit_facts,
        arrears: facts.arrears,
        credits,
        recent: fields.get("h").map(|h| RecentVisit::decode_all(h)).transpose()?.unwrap_or_default(),
        closed: fields.get("x").map(|x| AccountClosure::decode(x)).transpose()?,
    }))
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

    /// Checks every node's durability again (run every few seconds by `clearing serve`): a node that came
    /// back from a restart, or joined the cluster, with an unsafe configuration stops writes (UNAVAILABLE,
    /// logged with what to set) until it is fixed; with `--redis-allow-volatile` it is only logged. A node
    /// that does not answer keeps its previous verdict. Returns the unsafe nodes found now.
    pub async fn recheck_durability(&self) -> Result<usize, StoreError> {
        let d = &self.durability;
        let (_, nodes) = discover_nodes(&d.seeds).await?;
        let mut found = BTreeMap::new();
        let mut answered = Vec::new();
        for url in nodes.iter().cloned() {
            match durability_problem(&url).await {
                Ok(Some(why)) => {
                    found.insert(url.clone(), why);
                    answered.push(url);
                }
                Ok(None) => answered.push(url),
                Err(e) => tracing::debug!(node = %url, error = %e, "durability check: node did not answer"),
            }
        }
        if d.allow_volatile {
            for why in found.values() {
                tracing::error!("!!! {why} (allowed by --redis-allow-volatile) !!!");
            }
            return Ok(found.len());
        }
        let mut gate = d.gate.unsafe_nodes.lock().expect("durability gate");
        for url in &answered {
            match (found.get(url), gate.contains_key(url)) {
                (Some(why), false) => tracing::error!("{why}: writes refused until it is fixed"),
                (None, true) => tracing::info!(node = %url, "redis node configured safely again: writes resume"),
                _ => {}
            }
        }
        // A node gone from the cluster (replaced, moved) no longer holds writes back.
        gate.retain(|url, _| nodes.contains(url) && !answered.contains(url));
        gate.extend(found);
        Ok(gate.len())
    }

    /// Keeps at most `cap` members in the member cache (`--member-cache`; 0 turns it off).
    pub fn with_member_cache(mut self, cap: usize) -> RedisStore {
        self.members = Arc::new(MemberCache::new(cap));
        self
    }

    /// Forgets the members of a commit that did not commit (or may not have): their next settlement
    /// reads them again.
    fn forget_members(&self, c: &Commit) {
        for m in &c.members {
            self.members.forget(&member_key(&m.key));
        }
    }

    /// After COMMITTED: a member whose version the script checked held exactly the state the change was
    /// computed from (every writer bumps the version), so the cached entry of that version with the
    /// change applied, by the arithmetic every store shares, is what Redis holds now. A change without
    /// a version check (a reversal), or a payer in another shard (the hold saga bumps it twice), is not
    /// known that way: forgotten.
    fn remember_committed(&self, c: &Commit, local: &[&MemberChange]) {
        for m in &c.members {
            let k = member_key(&m.key);
            let checked = local.iter().any(|l| std::ptr::eq(*l, m));
            self.members.update(&k, |rec| match m.expected_version {
                Some(v) if checked && rec.version == v => {
                    let rec = Arc::make_mut(rec);
                    apply_member_change(rec, m);
                    // As a read orders them (see `member_from_fields`).
                    rec.accumulators.sort_by(|a, b| (a.year, &a.benefit).cmp(&(b.year, &b.benefit)));
                    true
                }
                // Already newer (a read after this commit put it there).
                Some(v) => rec.version > v,
                None => false,
            });
        }
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

    /// Folds every shard's pending totals of `date` into the window-wide totals (exactly once, in
    /// order per shard). Run in the background during the day so that netting reads ~pairs, not
    /// shards × pairs; and before reading totals, so they are always complete.
    pub async fn fold_window(&self, date: NaiveDate) -> Result<(), StoreError> {
        self.durability.gate.check()?;
        self.each_shard(FOLD_CONCURRENCY, move |store, shard| async move { store.fold_shard(date, shard).await }).await.map(|_| ())
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

    async fn fold_shard(&self, date: NaiveDate, shard: u16) -> Result<(), StoreError> {
        let buckets: Vec<String> = (0..TOTALS_BUCKETS).map(|b| totals_bucket_key(date, b)).collect();
        let applied = meta_key(&format!("wa:{date}"));
        let day = date.to_string();
        let log = FoldKeys::of(shard, WINDOW_LOG, &day, applied.clone(), buckets.clone(), Some(journal_fields));
        let sums = FoldKeys::of(shard, WINDOW_SUMS, &day, applied, buckets, None);
        let named = |e| match e {
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{m} (window {date})")),
            e => e,
        };
        self.fold_with(shard, &log, compact, &self.scripts.fold_apply).await.map_err(named)?;
        self.fold_with(shard, &sums, compact, &self.scripts.fold_apply).await.map_err(named)
    }

    /// Folds a shard's pending sums into the sums they add to, exactly once and in order per shard
    /// (`fold.lua`, `fold_apply.lua`, `fold_done.lua`); `shape` turns the shard's fields into the
    /// fields added.
    async fn fold_with(&self, shard: u16, k: &FoldKeys, shape: Shape, apply: &Script) -> Result<(), StoreError> {
        // At most two rounds: finish a fold left in flight, then fold what is pending.
        for _ in 0..2 {
            let mut c = self.conn.clone();
            let state: String = self.scripts.fold.key(&k.pending).key(&k.fold).key(&k.seq).invoke_async(&mut c).await.map_err(err)?;
            // Nothing pending and nothing in flight: one script per shard is the whole cost of a pass.
            if state == "EMPTY" {
                break;
            }
            let (seq, fields) = match k.log {
                Some(row_fields) => self.read_log_fold(&k.fold, row_fields).await?,
                None => self.read_sums_fold(&k.fold).await?,
            };
            let Some(seq) = seq else { break };
            let mut inv = apply.prepare_invoke();
            inv.key(&k.applied);
            for b in &k.buckets {
                inv.key(b);
            }
            // The applied-sequence field: a log's folds are numbered apart from the sums' folds.
            inv.arg(if k.log.is_some() { format!("{shard}l") } else { shard.to_string() }).arg(&seq);
            for (f, v) in shape(&fields)? {
                inv.arg(bucket_of(&f) + 1).arg(f).arg(v);
            }
            let r: String = inv.invoke_async(&mut c).await.map_err(err)?;
            if r == "GAP" {
                return Err(StoreError::Corrupt(format!("fold of shard {shard} out of order (seq {seq})")));
            }
            let _: i64 = self.scripts.fold_done.key(&k.fold).arg(&seq).invoke_async(&mut c).await.map_err(err)?;
        }
        Ok(())
    }

    /// An in-flight fold of sums (a hash): its sequence (the `_seq` field) and its other fields.
    async fn read_sums_fold(&self, fold: &str) -> Result<(Option<String>, Vec<(String, i64)>), StoreError> {
        let raw: Vec<(String, String)> = self.query(::redis::cmd("HGETALL").arg(fold)).await?;
        let mut seq = None;
        let mut fields = Vec::with_capacity(raw.len());
        for (f, v) in raw {
            if f == "_seq" {
                seq = Some(v);
            } else {
                let n = v.parse::<i64>().map_err(|_| StoreError::Corrupt(format!("fold {fold}: field {f} = {v:?}")))?;
                fields.push((f, n));
            }
        }
        Ok((seq, fields))
    }

    /// An in-flight fold of a log (a list): its sequence (the first element, `#<seq>`) and the sums of
    /// the fields its rows add.
    async fn read_log_fold(&self, fold: &str, row_fields: RowFields) -> Result<(Option<String>, Vec<(String, i64)>), StoreError> {
        let rows: Vec<Vec<u8>> = self.query(::redis::cmd("LRANGE").arg(fold).arg(0).arg(-1)).await?;
        let Some(seq) = rows.first().and_then(|r| r.strip_prefix(b"#")) else { return Ok((None, Vec::new())) };
        let seq = String::from_utf8(seq.to_vec()).map_err(|_| StoreError::Corrupt(format!("fold {fold} sequence")))?;
        let mut sums: HashMap<String, i64> = HashMap::new();
        for row in &rows[1..] {
            for (f, v) in row_fields(row)? {
                *sums.entry(f).or_default() += v;
            }
        }
        Ok((Some(seq), sums.into_iter().collect()))
    }

    /// Folds every shard's supervision indicators of `month` not folded yet (its log, and the pending
    /// sums of builds before the log) into the month-wide sums. Run in the background for the current
    /// month, and before a month is read.
    pub async fn fold_indicators(&self, month: &str) -> Result<(), StoreError> {
        self.durability.gate.check()?;
        let month = month.to_string();
        self.each_shard(FOLD_CONCURRENCY, move |store, shard| {
            let buckets: Vec<String> = (0..TOTALS_BUCKETS).map(|b| sv_bucket_key(&month, b)).collect();
            let log = FoldKeys::of(shard, SV_LOG, &month, sv_applied_key(&month), buckets.clone(), Some(supervision_fields));
            let sums = FoldKeys::of(shard, SV_SUMS, &month, sv_applied_key(&month), buckets, None);
            async move {
                store.fold_with(shard, &log, as_packed, &store.scripts.fold_apply_packed).await?;
                store.fold_with(shard, &sums, as_packed, &store.scripts.fold_apply_packed).await
            }
        })
        .await
        .map(|_| ())
    }

    /// Resolves holds older than `STALE_HOLD_MS` on every shard: finalized when their settlement
    /// committed, released otherwise. Safe to run from every replica at once.
    pub async fn sweep_holds(&self) -> Result<usize, StoreError> {
        self.durability.gate.check()?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut resolved = 0;
        for shard in 0..SHARDS {
            let ids: Vec<String> = self.query(::redis::cmd("SMEMBERS").arg(holds_key(shard))).await?;
            for id in ids {
                let raw: Option<String> = self.query(::redis::cmd("GET").arg(hold_key(shard, &id))).await?;
                let Some(raw) = raw else {
                    let mut c = self.conn.clone();
                    let _: i64 = ::redis::cmd("SREM").arg(holds_key(shard)).arg(&id).query_async(&mut c).await.map_err(err)?;
                    continue;
                };
                let hold: Hold = serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if now - hold.created_ms < STALE_HOLD_MS {
                    continue;
                }
                let action = self.resolve_by_fence(shard, &id, &hold).await?;
                tracing::warn!(shard, hold = %id, action, "resolved a stale cross-shard hold");
                resolved += 1;
            }
        }
        Ok(resolved)
    }

    /// Resolves a hold whose commit's outcome is unknown: fences the idempotency key unless the commit
    /// it belongs to is there (so it can never happen later), then finalizes or releases accordingly.
    async fn resolve_by_fence(&self, shard: u16, id: &str, hold: &Hold) -> Result<&'static str, StoreError> {
        let mut c = self.conn.clone();
        let verdict: String = self
            .scripts
            .fence
            .key(idem_key(hold.patient_shard, &hold.idem_key))
            .arg(&hold.setl_id)
            .arg(FENCE_SECS)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        let action = if verdict == "COMMITTED" { "finalize" } else { "release" };
        self.settle_hold(shard, id, hold, action).await?;
        Ok(action)
    }

    async fn settle_hold(&self, shard: u16, id: &str, hold: &Hold, action: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: String = self
            .scripts
            .settle_hold
            .key(member_key(&hold.payer))
            .key(hold_key(shard, id))
            .key(holds_key(shard))
            .arg(action)
            .arg(hold.delta_fen)
            .arg(id)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        Ok(())
    }
}

/// What a node's configuration lacks for money, or `None` when it keeps every acknowledged write and can
/// never bring back half of a commit after a crash:
/// - `appendonly yes` + `appendfsync always`: an answer goes out only after the write is on disk;
/// - `aof-load-truncated no`: a crash during the AOF `write()` of a script's `MULTI … EXEC` can leave the
///   file ending inside it; with `yes` Redis loads it up to the last whole command, inside the MULTI, and
///   the next restart replays half of an unacknowledged commit (a visit, fund pay, a balance debit that
///   no answer carried). With `no` Redis refuses the cut file, and its start script repairs it with
///   `redis-check-aof --fix`, which cuts back to before the MULTI (helm/clearinghouse/files/redis-start.sh).
async fn durability_problem(url: &str) -> Result<Option<String>, StoreError> {
    let client = ::redis::Client::open(url).map_err(err)?;
    let mut c = client.get_multiplexed_async_connection().await.map_err(|e| StoreError::Unavailable(format!("cannot reach {url}: {e}")))?;
    let mut pipe = ::redis::pipe();
    for p in ["appendonly", "appendfsync", "aof-load-truncated"] {
        pipe.cmd("CONFIG").arg("GET").arg(p);
    }
    let got: Vec<Vec<String>> = pipe.query_async(&mut c).await.map_err(err)?;
    let value = |i: usize| got.get(i).and_then(|v| v.get(1)).cloned().unwrap_or_default();
    let (aof, fsync, truncated) = (value(0), value(1), value(2));
    let mut problems = Vec::new();
    if aof != "yes" || fsync != "always" {
        problems.push(format!(
            "does not keep every acknowledged write (appendonly={aof}, appendfsync={fsync}; need appendonly=yes, appendfsync=always)"
        ));
    }
    if truncated != "no" {
        problems.push(format!(
            "would load an append-only file that a crash cut inside a transaction up to the cut, bringing back half of an \
             unacknowledged commit (aof-load-truncated={truncated}; need aof-load-truncated=no, with a start script that repairs a \
             cut file by `redis-check-aof --fix` before Redis starts, as helm/clearinghouse/files/redis-start.sh does)"
        ));
    }
    Ok((!problems.is_empty()).then(|| format!("redis at {url} {}", problems.join(", and "))))
}

/// Checks every node at start: an unsafe one refuses the start (or, with `allow_volatile`, is logged
/// loudly).
async fn check_durability(nodes: &[String], allow_volatile: bool) -> Result<(), StoreError> {
    for url in nodes {
        let Some(msg) = durability_problem(url).await? else { continue };
        if allow_volatile {
            tracing::error!(
                "!!! {msg}: starting anyway because --redis-allow-volatile was given; a Redis crash can lose acknowledged settlements \
                 or bring back half of one !!!"
            );
        } else {
            return Err(StoreError::Unavailable(format!(
                "{msg}. Refusing to start; configure Redis so, or pass --redis-allow-volatile for a throwaway setup"
            )));
        }
    }
    Ok(())
}

/// The nodes to check: the one Redis, or every node of the cluster that is not failing (masters and
/// replicas: a replica becomes a master at a failover), as `redis://host:port`. Asks the seeds in turn.
async fn discover_nodes(seeds: &[String]) -> Result<(bool, Vec<String>), StoreError> {
    let mut last = StoreError::Unavailable("no --redis-url given".into());
    for seed in seeds {
        match nodes_seen_by(seed).await {
            Ok(found) => return Ok(found),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn nodes_seen_by(seed: &str) -> Result<(bool, Vec<String>), StoreError> {
    let probe = ::redis::Client::open(seed).map_err(err)?;
    let mut pc = probe
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot reach redis at {seed}: {e}")))?;
    let info: String = ::redis::cmd("INFO").arg("cluster").query_async(&mut pc).await.map_err(err)?;
    if !info.lines().any(|l| l.trim() == "cluster_enabled:1") {
        return Ok((false, vec![seed.to_string()]));
    }
    let nodes: String = ::redis::cmd("CLUSTER").arg("NODES").query_async(&mut pc).await.map_err(err)?;
    let scheme = if seed.starts_with("rediss://") { "rediss" } else { "redis" };
    let found = nodes
        .lines()
        .filter(|l| l.split_whitespace().nth(2).is_some_and(|f| !f.contains("fail") && !f.contains("noaddr") && !f.contains("handshake")))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|a| format!("{scheme}://{}", a.split(['@', ',']).next().unwrap_or(a)))
        .collect();
    Ok((true, found))
}

/// The nodes found unsafe since the last check, with why. While any is, the store refuses writes
/// (UNAVAILABLE, the reason logged): a node restarted or added with an unsafe configuration must not take
/// commits.
#[derive(Default)]
struct DurabilityGate {
    unsafe_nodes: std::sync::Mutex<BTreeMap<String, String>>,
}

impl DurabilityGate {
    fn check(&self) -> Result<(), StoreError> {
        let nodes = self.unsafe_nodes.lock().expect("durability gate");
        if nodes.is_empty() {
            return Ok(());
        }
        // The node and its settings are in the service log (logged when found), not in the answer.
        Err(StoreError::Refused(format!(
            "writes are refused while {} Redis node(s) are configured unsafely (see the service log)",
            nodes.len()
        )))
    }
}

/// A shard fold (`<insured>|<mdtrt>|<kind>` fields written by commits) in the compact window-wide
/// layout: per pair only `p:<insured>|<mdtrt>|n` (count) and `|o` (owed = fund + account); per
/// service location `d:<mdtrt>|{n,e,m,f,a}`; for the window `t|{n,e,m,f,a}`. Netting then reads two
/// fields per region pair.
fn compact(fields: &[(String, i64)]) -> Result<Vec<(String, String)>, StoreError> {
    let mut out: HashMap<String, i64> = HashMap::new();
    for (f, v) in fields {
        let (f, v) = (f.as_str(), *v);
        let bad = || StoreError::Corrupt(format!("totals field {f}"));
        let (pair, kind) = f.rsplit_once('|').ok_or_else(bad)?;
        let (_, mdt) = pair.split_once('|').ok_or_else(bad)?;
        match kind {
            "n" => *out.entry(format!("p:{pair}|n")).or_default() += v,
            "f" | "a" => *out.entry(format!("p:{pair}|o")).or_default() += v,
            "m" | "e" => {}
            _ => return Err(bad()),
        }
        *out.entry(format!("d:{mdt}|{kind}")).or_default() += v;
        *out.entry(format!("t|{kind}")).or_default() += v;
    }
    Ok(out.into_iter().filter(|(_, v)| *v != 0).map(|(k, v)| (k, v.to_string())).collect())
}

/// How a fold turns a shard's summed fields into the (field, value) arguments of its apply script.
type Shape = fn(&[(String, i64)]) -> Result<Vec<(String, String)>, StoreError>;

/// The `<key>|<measure>` fields one row of a log adds.
type RowFields = fn(&[u8]) -> Result<Vec<(String, i64)>, StoreError>;

/// A journal entry as the window-totals fields of its pair (`compact` shapes them).
fn journal_fields(row: &[u8]) -> Result<Vec<(String, i64)>, StoreError> {
    let e = JournalEntry::decode(std::str::from_utf8(row).map_err(|_| StoreError::Corrupt("journal entry".into()))?)?;
    let p = format!("{}|{}", e.insuplc_admdvs, e.mdtrt_admdvs);
    let t = e.totals;
    Ok([("n", t.count), ("m", t.medfee_fen), ("f", t.fund_fen), ("a", t.acct_fen), ("e", 1)]
        .into_iter()
        .map(|(k, v)| (format!("{p}|{k}"), v))
        .collect())
}

/// A logged supervision delta as its indicator fields.
fn supervision_fields(row: &[u8]) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(SupervisionDelta::decode_logged(row)?.fields())
}

/// The keys of one fold (see `fold_with`).
struct FoldKeys {
    pending: String,
    fold: String,
    seq: String,
    applied: String,
    buckets: Vec<String>,
    /// The pending key is a log (a list), not a hash of sums: the fields one row adds.
    log: Option<RowFields>,
}

impl FoldKeys {
    /// The fold of shard's pending `name` of `period` into the sums `buckets`, recorded in `applied`:
    /// the pending key `<tag>:<name>:<period>`, its fold in flight `<name>f` and its fold sequence
    /// `<name>seq`.
    fn of(shard: u16, name: &str, period: &str, applied: String, buckets: Vec<String>, log: Option<RowFields>) -> FoldKeys {
        FoldKeys {
            pending: period_key(shard, name, period),
            fold: period_key(shard, &format!("{name}f"), period),
            seq: period_key(shard, &format!("{name}seq"), period),
            applied,
            buckets,
            log,
        }
    }
}

/// A shard's `<entity>|<measure>` fields as one `measure=value,…` per entity (`fold_apply_packed.lua`).
fn as_packed(fields: &[(String, i64)]) -> Result<Vec<(String, String)>, StoreError> {
    let mut by_entity: BTreeMap<&str, String> = BTreeMap::new();
    for (f, v) in fields {
        let v = *v;
        let (entity, measure) = f.rsplit_once('|').ok_or_else(|| StoreError::Corrupt(format!("indicator field {f}")))?;
        if v == 0 || measure.contains([',', '=']) {
            continue;
        }
        let packed = by_entity.entry(entity).or_default();
        if !packed.is_empty() {
            packed.push(',');
        }
        packed.push_str(measure);
        packed.push('=');
        packed.push_str(&v.to_string());
    }
    Ok(by_entity.into_iter().map(|(e, p)| (e.to_string(), p)).collect())
}

/// A month-wide entity's sums (`measure=value,…`) as `<entity>|<measure>` fields, appended to `out`.
fn unpack(entity: &str, packed: &str, out: &mut Vec<(String, i64)>) -> Result<(), StoreError> {
    for part in packed.split(',').filter(|p| !p.is_empty()) {
        let (m, v) = part.split_once('=').ok_or_else(|| StoreError::Corrupt(format!("indicator {entity}: {part:?}")))?;
        let v: i64 = v.parse().map_err(|_| StoreError::Corrupt(format!("indicator {entity}: {part:?}")))?;
        out.push((format!("{entity}|{m}"), v));
    }
    Ok(())
}

fn date_list(skipped: &[NaiveDate]) -> String {
    skipped.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
}

/// An idempotency key's value: `<content hash hex> <setl_id>`, or FENCED (a commit that never happened).
fn parse_idempotency(v: Option<String>) -> Result<Option<IdempotencyRecord>, StoreError> {
    let Some(v) = v else { return Ok(None) };
    if v == "FENCED" {
        return Ok(None);
    }
    let (h, sid) = v.split_once(' ').ok_or_else(|| StoreError::Corrupt(format!("idempotency value {v:?}")))?;
    let mut content_hash = [0u8; 32];
    hex::decode_to_slice(h, &mut content_hash).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(IdempotencyRecord { content_hash, setl_id: sid.to_string() }))
}

impl RedisStore {
    /// The open day as Redis has it now (no cache): for the background folder, which must follow a
    /// close made by another replica at once.
    pub async fn open_window_now(&self, today: NaiveDate) -> Result<NaiveDate, StoreError> {
        self.find_open_window(0, today).await
    }

    /// The first day from `today` on that is not closed in `shard`.
    async fn find_open_window(&self, shard: u16, today: NaiveDate) -> Result<NaiveDate, StoreError> {
        let k = closed_key(shard);
        let closed: std::collections::HashSet<String> = self.query(::redis::cmd("SMEMBERS").arg(&k)).await?;
        let mut d = today;
        for _ in 0..366 {
            if !closed.contains(&d.to_string()) {
                return Ok(d);
            }
            d = d.succ_opt().ok_or_else(|| StoreError::Corrupt("date overflow".into()))?;
        }
        Err(StoreError::Corrupt(format!("more than a year of closed windows after {today}")))
    }
}

impl RedisStore {
    /// Claims the msgid for the member's shard (idempotent: the same shard may claim it again); `false`
    /// when another shard (another member) has it.
    async fn claim_msgid(&self, idem: &str, shard: u16) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let claimed: Option<String> =
            ::redis::cmd("SET").arg(msgid_index_key(idem)).arg(shard).arg("NX").arg("GET").query_async(&mut conn).await.map_err(err)?;
        Ok(claimed.is_none_or(|owner| owner == shard.to_string()))
    }

    /// Reserves each payer in another shard (`hold.lua`), recording the holds in `holds`; the refusal
    /// when a payer changed or its balance no longer covers the debit.
    async fn take_holds(
        &self,
        c: &Commit,
        remote: &[&MemberChange],
        idem: &str,
        holds: &mut Holds,
    ) -> Result<Option<CommitOutcome>, StoreError> {
        let s = &c.settlement;
        for m in remote {
            let shard = member_shard(&m.key);
            let hold = Hold {
                payer: m.key.clone(),
                delta_fen: m.balance_delta_fen,
                patient_shard: c.shard,
                idem_key: idem.to_string(),
                setl_id: s.setl_id.clone(),
                created_ms: chrono::Utc::now().timestamp_millis(),
            };
            let mut conn = self.conn.clone();
            let r: String = self
                .scripts
                .hold
                .key(member_key(&m.key))
                .key(hold_key(shard, &s.setl_id))
                .key(holds_key(shard))
                .arg(m.expected_version.map(|v| v.to_string()).unwrap_or_default())
                .arg(m.balance_delta_fen)
                .arg(serde_json::to_string(&hold).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                .arg(&s.setl_id)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            match r.as_str() {
                "OK" | "HELD" => holds.held.push((shard, hold)),
                "BALANCE" => return Ok(Some(CommitOutcome::InsufficientBalance)),
                "CLOSED" => return Ok(Some(CommitOutcome::Closed)),
                _ => return Ok(Some(CommitOutcome::VersionConflict)),
            }
        }
        Ok(None)
    }

    /// The `commit.lua` invocation of a commit (keys and arguments as the script documents them).
    fn commit_invocation<'s>(
        &'s self,
        c: &Commit,
        local: &[&MemberChange],
        idem: &str,
        today: NaiveDate,
    ) -> Result<::redis::ScriptInvocation<'s>, StoreError> {
        let s = &c.settlement;
        let mut skipped = Vec::new();
        let mut d = today;
        while d < s.clr_date && skipped.len() < 366 {
            skipped.push(d);
            d = d.succ_opt().unwrap_or(d);
        }
        let record = s.to_stored();
        let orig = c.reverses.as_deref().and_then(settlement_key).unwrap_or_else(|| settlement_key(&s.setl_id).unwrap_or_default());
        let mut inv = self.scripts.commit.prepare_invoke();
        inv.key(idem_key(c.shard, idem))
            .key(settlement_key(&s.setl_id).ok_or_else(|| StoreError::Corrupt(format!("bad setl_id {}", s.setl_id)))?)
            .key(closed_key(c.shard))
            .key(window_log_key(c.shard, s.clr_date))
            .key(journal_key(c.shard, s.clr_date))
            .key(orig);
        // On one Redis the msgid is claimed inside the script (one round trip); a cluster keeps its
        // index in another slot, claimed before the script (`claim_msgid`).
        if self.cluster {
            inv.key(idem_key(c.shard, idem));
        } else {
            inv.key(msgid_index_key(idem));
        }
        inv.arg(hex::encode(s.content_hash))
            .arg(&s.setl_id)
            .arg(record)
            .arg(s.clr_date.to_string())
            .arg(date_list(&skipped))
            .arg(if c.reverses.is_some() { "1" } else { "0" })
            .arg(local.len())
            .arg(JournalEntry::of(s).encode())
            .arg(if self.cluster { String::new() } else { c.shard.to_string() });
        for m in local {
            inv.key(member_key(&m.key));
            inv.arg(m.expected_version.map(|v| v.to_string()).unwrap_or_default());
            match &m.accumulator {
                Some(a) => inv.arg(format!("a:{}:{}", a.year, a.benefit)).arg(a.deductible_used_fen).arg(a.fund_paid_fen).arg(a.visits),
                None => inv.arg("").arg(0).arg(0).arg(0),
            };
            inv.arg(m.balance_delta_fen);
            inv.arg(m.recent.as_deref().map(RecentVisit::encode_all).unwrap_or_default());
            inv.arg(m.close.as_ref().map(AccountClosure::encode).unwrap_or_default());
        }
        // Supervision: the shard's pending indicators and flagged list of the visit's month.
        let none = SupervisionDelta::default();
        let sv = s.supervision.as_ref().unwrap_or(&none);
        let month = if sv.month.is_empty() { "-" } else { sv.month.as_str() };
        inv.key(sv_log_key(c.shard, month)).key(flagged_key(c.shard, month));
        inv.arg(if sv.month.is_empty() { String::new() } else { sv.encode_logged() });
        inv.arg(sv.flagged.as_deref().unwrap_or("")).arg(sv.unflag.as_deref().unwrap_or(""));
        Ok(inv)
    }
}

/// What is known of the commit that cross-shard holds belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HoldFate {
    /// The commit script has not been sent: the commit cannot have happened.
    NotSent,
    /// The script was sent and no answer came back: committed or not, only the store knows.
    Unknown,
    /// The script answered: finalize (committed) or release (anything else).
    Known(&'static str),
}

/// The payer holds one commit has taken. Every way out of `commit` resolves them: `resolve` on the
/// normal paths, and `Drop` on every other one (an early return, a `?`, a cancelled future), which
/// releases holds of a commit that was never sent, resolves an unknown outcome the way the sweeper
/// does (fence, then finalize or release) and finishes a known one. If Redis is away even for that,
/// the sweeper is the backstop.
struct Holds {
    store: RedisStore,
    setl_id: String,
    held: Vec<(u16, Hold)>,
    fate: HoldFate,
}

impl Holds {
    fn new(store: &RedisStore, setl_id: &str) -> Holds {
        Holds { store: store.clone(), setl_id: setl_id.to_string(), held: Vec::new(), fate: HoldFate::NotSent }
    }

    /// Finalizes or releases every hold now; whatever is left after an error is resolved by `Drop`.
    async fn resolve(mut self, action: &'static str) -> Result<(), StoreError> {
        self.fate = HoldFate::Known(action);
        while let Some((shard, hold)) = self.held.last() {
            self.store.settle_hold(*shard, &self.setl_id, hold, action).await?;
            self.held.pop();
        }
        Ok(())
    }
}

impl Drop for Holds {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let (store, id, held, fate) = (self.store.clone(), std::mem::take(&mut self.setl_id), std::mem::take(&mut self.held), self.fate);
        rt.spawn(async move {
            for (shard, hold) in held {
                let done = match fate {
                    HoldFate::NotSent => store.settle_hold(shard, &id, &hold, "release").await.map(|_| "release"),
                    HoldFate::Known(action) => store.settle_hold(shard, &id, &hold, action).await.map(|_| action),
                    HoldFate::Unknown => store.resolve_by_fence(shard, &id, &hold).await,
                };
                match done {
                    Ok(action) => tracing::debug!(shard, hold = %id, action, "hold resolved after an interrupted commit"),
                    Err(e) => tracing::warn!(shard, hold = %id, error = %e, "hold left for the sweeper"),
                }
            }
        });
    }
}

impl Store for RedisStore {
    async fn load_member(&self, key: &MemberKey) -> Result<Option<MemberRecord>, StoreError> {
        let k = member_key(key);
        let fields: HashMap<String, String> = self.query(::redis::cmd("HGETALL").arg(&k)).await?;
        let m = member_from_fields(key, fields)?;
        match &m {
            Some(m) => self.members.put(k, Arc::new(m.clone())),
            None => self.members.forget(&k),
        }
        Ok(m)
    }

    async fn upsert_member(&self, u: MemberUpsert) -> Result<MemberRecord, StoreError> {
        self.durability.gate.check()?;
        let facts = Facts {
            psn_type: u.psn_type.clone(),
            retire_date: u.retire_date,
            pooling_only: u.pooling_only,
            filings: u.filings.clone(),
            mulaid_beneficiaries: u.mulaid_beneficiaries.clone(),
            credit_facts: u.credit_facts,
            arrears: u.arrears.clone(),
        };
        // The region's member index first (idempotent): a member is never missing from its region's
        // listing, at worst listed a moment before it exists (the credit run skips it then).
        let _: i64 = ::redis::cmd("ZADD")
            .arg(region_members_key(&u.key.insuplc_admdvs))
            .arg(0)
            .arg(&u.key.psn_no)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(err)?;
        let facts = serde_json::to_string(&facts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut c = self.conn.clone();
        // Re-running an upsert is harmless except for a credit; the script applies it atomically once per call.
        let fields: HashMap<String, String> = self
            .scripts
            .upsert
            .key(member_key(&u.key))
            .arg(facts)
            .arg(u.set_balance_fen.map(|b| b.to_string()).unwrap_or_default())
            .arg(u.credit_fen)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        let m = member_from_fields(&u.key, fields)?.ok_or_else(|| StoreError::Corrupt("upserted member missing".into()))?;
        // A closed account: the script changed nothing and answered the member as it is.
        if let Some(c) = &m.closed {
            return Err(StoreError::Closed(c.clone()));
        }
        self.members.put(member_key(&u.key), Arc::new(m.clone()));
        Ok(m)
    }

    async fn lookup_idempotency(&self, shard: u16, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let k = idem_key(shard, key);
        let v: Option<String> = self.query(::redis::cmd("GET").arg(&k)).await?;
        parse_idempotency(v)
    }

    async fn get_settlement(&self, setl_id: &str) -> Result<Option<SettlementRecord>, StoreError> {
        let Some(k) = settlement_key(setl_id) else { return Ok(None) };
        let (rec, rev): (Option<Vec<u8>>, Option<String>) = self.query(::redis::cmd("HMGET").arg(&k).arg("rec").arg("rev")).await?;
        let Some(rec) = rec else { return Ok(None) };
        let mut rec = SettlementRecord::from_stored(&rec)?;
        rec.reversed_by = rev;
        Ok(Some(rec))
    }

    async fn load_member_and_idempotency(
        &self,
        key: &MemberKey,
        shard: u16,
        msgid: &str,
    ) -> Result<(Option<Arc<MemberRecord>>, MsgidRead), StoreError> {
        // From the member cache when it has the member: the commit checks the version and the msgid.
        let k = member_key(key);
        if let Some(m) = self.members.get(&k) {
            return Ok((Some(m), MsgidRead::Unread));
        }
        // One pipeline: both keys carry the shard's hash tag, so this works on a cluster too.
        let mut pipe = ::redis::pipe();
        pipe.cmd("HGETALL").arg(&k).cmd("GET").arg(idem_key(shard, msgid));
        let (fields, idem): (HashMap<String, String>, Option<String>) = self.query_pipe(&pipe).await?;
        let m = member_from_fields(key, fields)?.map(Arc::new);
        if let Some(m) = &m {
            self.members.put(k, m.clone());
        }
        Ok((m, MsgidRead::of(parse_idempotency(idem)?)))
    }

    async fn open_window(&self, shard: u16, today: NaiveDate) -> Result<NaiveDate, StoreError> {
        if let Some((t, open)) = self.open_days.lock().expect("open days").get(&shard).copied()
            && t == today
        {
            return Ok(open);
        }
        let open = self.find_open_window(shard, today).await?;
        self.open_days.lock().expect("open days").insert(shard, (today, open));
        Ok(open)
    }

    async fn commit(&self, c: Commit, today: NaiveDate) -> Result<CommitOutcome, StoreError> {
        self.durability.gate.check()?;
        let s = &c.settlement;
        // Members in another shard can be in the same script on a single Redis; on a cluster they go
        // through the hold saga.
        let (local, remote): (Vec<&MemberChange>, Vec<&MemberChange>) =
            c.members.iter().partition(|m| !self.cluster || member_shard(&m.key) == c.shard);
        let idem = crate::ids::idempotency_key(&s.mdtrt_admdvs, &s.msgid);
        if self.cluster && !self.claim_msgid(&idem, c.shard).await? {
            return Ok(CommitOutcome::IdempotencyMismatch);
        }
        let mut holds = Holds::new(self, &s.setl_id);
        if let Some(refused) = self.take_holds(&c, &remote, &idem, &mut holds).await? {
            holds.resolve("release").await?;
            return Ok(refused);
        }
        let inv = self.commit_invocation(&c, &local, &idem, today)?;
        let mut conn = self.conn.clone();
        // From here an error leaves the outcome unknown: the holds are resolved by fencing (see
        // `Holds`), and the caller resolves the commit by re-reading the idempotency key.
        holds.fate = HoldFate::Unknown;
        let reply: Vec<String> = match inv.invoke_async(&mut conn).await {
            Ok(r) => r,
            Err(e) => {
                self.forget_members(&c);
                return Err(err(e));
            }
        };
        // Only COMMITTED wrote anything: every other answer releases the holds.
        let answer = reply.first().map(String::as_str);
        match answer {
            Some("COMMITTED") => self.remember_committed(&c, &local),
            _ => self.forget_members(&c),
        }
        holds.resolve(if answer == Some("COMMITTED") { "finalize" } else { "release" }).await?;
        Ok(match answer {
            Some("COMMITTED") => CommitOutcome::Committed,
            Some("REPLAYED") => {
                let sid = reply.get(1).cloned().unwrap_or_default();
                let rec =
                    self.get_settlement(&sid).await?.ok_or_else(|| StoreError::Corrupt(format!("idempotency key names missing {sid}")))?;
                CommitOutcome::Replayed(Box::new(rec))
            }
            Some("MISMATCH") => CommitOutcome::IdempotencyMismatch,
            Some("TAKEN") => CommitOutcome::SetlIdTaken,
            Some("WINDOW") => {
                // The day closed under us: find the open day again next time.
                self.open_days.lock().expect("open days").remove(&c.shard);
                CommitOutcome::WindowMoved
            }
            Some("REVERSED") => CommitOutcome::AlreadyReversed,
            Some("MISSING") => CommitOutcome::OriginalMissing,
            Some("BALANCE") => CommitOutcome::InsufficientBalance,
            Some("CLOSED") => CommitOutcome::Closed,
            Some("CONFLICT") | Some("FENCED") => CommitOutcome::VersionConflict,
            other => return Err(StoreError::Corrupt(format!("commit script answered {other:?}"))),
        })
    }

    async fn window_totals(&self, clr_date: NaiveDate) -> Result<WindowTotals, StoreError> {
        // Fold what is still pending, then read the compact window-wide totals (see `compact`).
        self.fold_window(clr_date).await?;
        let mut set = tokio::task::JoinSet::new();
        for b in 0..TOTALS_BUCKETS {
            let store = self.clone();
            set.spawn(async move {
                let k = totals_bucket_key(clr_date, b);
                store.query::<Vec<(String, i64)>>(::redis::cmd("HGETALL").arg(&k)).await
            });
        }
        let mut fields: Vec<(String, i64)> = Vec::new();
        while let Some(r) = set.join_next().await {
            fields.extend(r.map_err(|e| StoreError::Unavailable(format!("totals task: {e}")))??);
        }
        let bad = |f: &str| StoreError::Corrupt(format!("window totals field {f}"));
        let mut pairs: HashMap<&str, PairOwed> = HashMap::with_capacity(fields.len() / 2 + 1);
        let mut out = WindowTotals::default();
        fn add(t: &mut PairTotals, kind: &str, v: i64) -> bool {
            match kind {
                "n" => t.count += v,
                "e" => t.entries += v,
                "m" => t.medfee_fen += v,
                "f" => t.fund_fen += v,
                "a" => t.acct_fen += v,
                _ => return false,
            }
            true
        }
        for (f, v) in &fields {
            if let Some(rest) = f.strip_prefix("p:") {
                let (pair, kind) = rest.rsplit_once('|').ok_or_else(|| bad(f))?;
                let p = pairs.entry(pair).or_default();
                match kind {
                    "n" => p.count += v,
                    "o" => p.owed_fen += v,
                    _ => return Err(bad(f)),
                }
            } else if let Some(rest) = f.strip_prefix("d:") {
                let (mdt, kind) = rest.split_once('|').ok_or_else(|| bad(f))?;
                if !add(out.by_mdtrt.entry(mdt.to_string()).or_default(), kind, *v) {
                    return Err(bad(f));
                }
            } else if let Some(kind) = f.strip_prefix("t|") {
                if !add(&mut out.all, kind, *v) {
                    return Err(bad(f));
                }
            } else {
                return Err(bad(f));
            }
        }
        for (pair, p) in pairs {
            let (ins, mdt) = pair.split_once('|').ok_or_else(|| bad(pair))?;
            out.pairs.push(((ins.to_string(), mdt.to_string()), p));
        }
        out.pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn close_window(&self, clr_date: NaiveDate) -> Result<(), StoreError> {
        self.durability.gate.check()?;
        let date = clr_date.to_string();
        // Every shard's marker first; only then is the window listed as closed. A commit on a shard
        // is serialized with that shard's marker by Redis itself.
        let marker = date.clone();
        self.each_shard(SHARD_CONCURRENCY, move |store, shard| {
            let d = marker.clone();
            async move {
                let k = closed_key(shard);
                store.query::<i64>(::redis::cmd("SADD").arg(&k).arg(&d)).await
            }
        })
        .await?;
        let k = meta_key("windows");
        let _: i64 = self.query(::redis::cmd("SADD").arg(&k).arg(&date)).await?;
        Ok(())
    }

    async fn closed_windows(&self) -> Result<Vec<NaiveDate>, StoreError> {
        let k = meta_key("windows");
        let v: Vec<String> = self.query(::redis::cmd("SMEMBERS").arg(&k)).await?;
        let mut out: Vec<NaiveDate> = v.iter().filter_map(|d| d.parse().ok()).collect();
        out.sort();
        Ok(out)
    }

    async fn journal_sums(&self, clr_date: NaiveDate) -> Result<PairTotals, StoreError> {
        /// Entries summed per script run: a few milliseconds of Redis time each.
        const CHUNK: i64 = 10_000;
        let parts = self
            .each_shard(FOLD_CONCURRENCY, move |store, shard| async move {
                let k = journal_key(shard, clr_date);
                let mut sums = PairTotals::default();
                let mut start = 0i64;
                loop {
                    let mut c = store.conn.clone();
                    let [n, count, medfee, fund, acct]: [i64; 5] = store
                        .scripts
                        .journal_sum
                        .key(&k)
                        .arg(start)
                        .arg(start + CHUNK - 1)
                        .invoke_async::<Vec<i64>>(&mut c)
                        .await
                        .map_err(err)?
                        .try_into()
                        .map_err(|v| StoreError::Corrupt(format!("journal sum answered {v:?}")))?;
                    sums.merge(&PairTotals { count, entries: n, medfee_fen: medfee, fund_fen: fund, acct_fen: acct });
                    if n < CHUNK {
                        return Ok(sums);
                    }
                    start += CHUNK;
                }
            })
            .await?;
        let mut all = PairTotals::default();
        parts.iter().for_each(|p| all.merge(p));
        Ok(all)
    }

    async fn window_journal(&self, clr_date: NaiveDate) -> Result<Vec<JournalEntry>, StoreError> {
        /// Entries fetched per round trip.
        const CHUNK: isize = 20_000;
        let mut out = Vec::new();
        for shard in 0..SHARDS {
            let k = journal_key(shard, clr_date);
            let mut start = 0isize;
            loop {
                let chunk: Vec<String> = self.query(::redis::cmd("LRANGE").arg(&k).arg(start).arg(start + CHUNK - 1)).await?;
                for e in &chunk {
                    out.push(JournalEntry::decode(e)?);
                }
                if (chunk.len() as isize) < CHUNK {
                    break;
                }
                start += CHUNK;
            }
        }
        Ok(out)
    }

    async fn put_once(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.durability.gate.check()?;
        let k = meta_key(key);
        let mut c = self.conn.clone();
        let old: Option<String> = ::redis::cmd("SET").arg(&k).arg(value).arg("NX").arg("GET").query_async(&mut c).await.map_err(err)?;
        Ok(old.unwrap_or_else(|| value.to_string()))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let k = meta_key(key);
        self.query(::redis::cmd("GET").arg(&k)).await
    }

    async fn map_set(&self, key: &str, field: &str, value: &str, only_new: bool) -> Result<String, StoreError> {
        self.durability.gate.check()?;
        let k = meta_key(key);
        let mut c = self.conn.clone();
        if only_new {
            let _: i64 = ::redis::cmd("HSETNX").arg(&k).arg(field).arg(value).query_async(&mut c).await.map_err(err)?;
        } else {
            let _: i64 = ::redis::cmd("HSET").arg(&k).arg(field).arg(value).query_async(&mut c).await.map_err(err)?;
        }
        let v: Option<String> = ::redis::cmd("HGET").arg(&k).arg(field).query_async(&mut c).await.map_err(err)?;
        v.ok_or_else(|| StoreError::Corrupt(format!("{key}.{field} vanished")))
    }

    async fn credit_month(&self, key: &MemberKey, month: &str, fen: i64) -> Result<CreditOutcome, StoreError> {
        self.durability.gate.check()?;
        let mut c = self.conn.clone();
        let (code, n): (i64, i64) = self.scripts.credit.key(member_key(key)).arg(month).arg(fen).invoke_async(&mut c).await.map_err(err)?;
        Ok(match code {
            -1 => CreditOutcome::Missing,
            -2 => CreditOutcome::Closed,
            0 => CreditOutcome::AlreadyCredited { fen: n },
            _ => CreditOutcome::Credited { balance_fen: n },
        })
    }

    async fn members_of(&self, insured: &str, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let from = if after.is_empty() { "-".to_string() } else { format!("({after}") };
        self.query(::redis::cmd("ZRANGEBYLEX").arg(region_members_key(insured)).arg(from).arg("+").arg("LIMIT").arg(0).arg(limit)).await
    }

    async fn indicators(&self, month: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.fold_indicators(month).await?;
        // Which folds the month holds, read before its sums: sums read after it are at least that new,
        // so a cached month is served only while no fold has changed it.
        let mut folds: Vec<(String, String)> = self.query(::redis::cmd("HGETALL").arg(sv_applied_key(month))).await?;
        folds.sort_unstable();
        if let Some((seen, sums)) = self.indicator_cache.lock().expect("indicator cache").get(month)
            && *seen == folds
        {
            return Ok(sums.as_ref().clone());
        }
        let mut set = tokio::task::JoinSet::new();
        for b in 0..TOTALS_BUCKETS {
            let store = self.clone();
            let k = sv_bucket_key(month, b);
            set.spawn(async move {
                let entities: Vec<(String, String)> = store.query(::redis::cmd("HGETALL").arg(&k)).await?;
                let mut out = Vec::with_capacity(entities.len() * 8);
                for (entity, packed) in &entities {
                    unpack(entity, packed, &mut out)?;
                }
                Ok::<_, StoreError>(out)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.extend(r.map_err(|e| StoreError::Unavailable(format!("indicators task: {e}")))??);
        }
        let mut cache = self.indicator_cache.lock().expect("indicator cache");
        if cache.len() >= 4 {
            cache.clear();
        }
        cache.insert(month.to_string(), (folds, Arc::new(out.clone())));
        Ok(out)
    }

    async fn flagged(&self, month: &str, after: &str, limit: usize) -> Result<Vec<(String, String, String)>, StoreError> {
        // Cursor `<shard, 2 hex>/<setl_id>`: shards in order, each shard's entries by settlement id.
        let (from_shard, after_id) = match after.split_once('/') {
            Some((s, id)) => (u16::from_str_radix(s, 16).map_err(|_| StoreError::Corrupt(format!("cursor {after:?}")))?, id),
            None => (0, ""),
        };
        let mut out = Vec::new();
        for shard in from_shard..SHARDS {
            let mut entries: Vec<(String, String)> = self.query(::redis::cmd("HGETALL").arg(flagged_key(shard, month))).await?;
            entries.sort_unstable();
            for (id, entry) in entries {
                if shard == from_shard && id.as_str() <= after_id {
                    continue;
                }
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push((format!("{shard:02x}/{id}"), id, entry));
            }
        }
        Ok(out)
    }

    async fn add_indicators(&self, shard: u16, month: &str, fields: &[(String, i64)]) -> Result<(), StoreError> {
        self.durability.gate.check()?;
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        let k = sv_pending_key(shard, month);
        for (f, v) in fields {
            pipe.cmd("HINCRBY").arg(&k).arg(f).arg(v).ignore();
        }
        let mut c = self.conn.clone();
        let _: () = pipe.query_async(&mut c).await.map_err(err)?;
        Ok(())
    }

    async fn get_records(&self, shard: u16, keys: &[String]) -> Result<Vec<Option<Record>>, StoreError> {
        let mut pipe = ::redis::pipe();
        for k in keys {
            pipe.cmd("HMGET").arg(record_key(shard, k)).arg("v").arg("d");
        }
        let rows: Vec<(Option<String>, Option<String>)> = self.query_pipe(&pipe).await?;
        rows.into_iter()
            .map(|(v, d)| match (v, d) {
                (Some(v), Some(data)) => {
                    let version = v.parse().map_err(|_| StoreError::Corrupt(format!("record version {v:?}")))?;
                    Ok(Some(Record { version, data }))
                }
                _ => Ok(None),
            })
            .collect()
    }

    async fn put_records(&self, shard: u16, writes: Vec<RecordWrite>) -> Result<bool, StoreError> {
        self.durability.gate.check()?;
        let mut inv = self.scripts.records.prepare_invoke();
        for w in &writes {
            inv.key(record_key(shard, &w.key));
        }
        inv.key(records_index_key(shard));
        for w in &writes {
            inv.arg(w.expected.to_string()).arg(if w.data.is_some() { "s" } else { "d" }).arg(&w.key).arg(w.data.as_deref().unwrap_or(""));
        }
        let mut c = self.conn.clone();
        let applied: i64 = inv.invoke_async(&mut c).await.map_err(err)?;
        Ok(applied == 1)
    }

    async fn record_keys(&self, shard: u16, prefix: &str) -> Result<Vec<String>, StoreError> {
        let all: Vec<String> = self.query(::redis::cmd("SMEMBERS").arg(records_index_key(shard))).await?;
        Ok(all.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    async fn map_get_field(&self, key: &str, field: &str) -> Result<Option<String>, StoreError> {
        self.query(::redis::cmd("HGET").arg(meta_key(key)).arg(field)).await
    }

    async fn map_get(&self, key: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let k = meta_key(key);
        self.query(::redis::cmd("HGETALL").arg(&k)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys are data: a fold must find what earlier builds (the pending hashes) and this one (the
    /// logs) wrote, under the names they wrote it.
    #[test]
    fn fold_keys_keep_the_names_stored_data_has() {
        let names = |k: FoldKeys| (k.pending, k.fold, k.seq);
        let day = "2026-01-01";
        let keys = |name| names(FoldKeys::of(7, name, day, String::new(), Vec::new(), None));
        assert_eq!(keys(WINDOW_SUMS), ("{ch:07}:w:2026-01-01".into(), "{ch:07}:wf:2026-01-01".into(), "{ch:07}:wseq:2026-01-01".into()));
        assert_eq!(keys(WINDOW_LOG), ("{ch:07}:wl:2026-01-01".into(), "{ch:07}:wlf:2026-01-01".into(), "{ch:07}:wlseq:2026-01-01".into()));
        let keys = |name| names(FoldKeys::of(255, name, "202601", String::new(), Vec::new(), None));
        assert_eq!(keys(SV_SUMS), ("{ch:ff}:sv:202601".into(), "{ch:ff}:svf:202601".into(), "{ch:ff}:svseq:202601".into()));
        assert_eq!(keys(SV_LOG), ("{ch:ff}:svl:202601".into(), "{ch:ff}:svlf:202601".into(), "{ch:ff}:svlseq:202601".into()));
        let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(window_log_key(7, date), "{ch:07}:wl:2026-01-01");
        assert_eq!(sv_pending_key(255, "202601"), "{ch:ff}:sv:202601");
    }

    fn member(psn: &str, version: u64) -> Arc<MemberRecord> {
        Arc::new(MemberRecord {
            key: MemberKey::new("421300", psn),
            psn_type: "11".into(),
            retire_date: None,
            pooling_only: false,
            acct_balc_fen: 0,
            filings: Vec::new(),
            mulaid_beneficiaries: Vec::new(),
            accumulators: Vec::new(),
            version,
            credit_facts: CreditFacts::default(),
            arrears: Vec::new(),
            credits: BTreeMap::new(),
            recent: Vec::new(),
            closed: None,
        })
    }

    #[test]
    fn the_member_cache_stays_bounded_and_keeps_the_members_in_use() {
        let c = MemberCache::new(4);
        for i in 0..4 {
            c.put(format!("m{i}"), member(&format!("m{i}"), 1));
        }
        // m0 is used again: moved to the newer generation, so it outlives m1.
        assert_eq!(c.get("m0").map(|m| m.version), Some(1));
        for i in 4..7 {
            c.put(format!("m{i}"), member(&format!("m{i}"), 1));
        }
        let held: Vec<String> = (0..7).map(|i| format!("m{i}")).filter(|k| c.get(k).is_some()).collect();
        assert!(held.len() <= 4, "{held:?}");
        assert!(held.contains(&"m0".to_string()) && held.contains(&"m6".to_string()), "{held:?}");
        assert!(c.get("m1").is_none());
        // A newer version replaces; forgetting removes from both generations.
        c.put("m6".into(), member("m6", 2));
        assert_eq!(c.get("m6").map(|m| m.version), Some(2));
        c.forget("m6");
        assert!(c.get("m6").is_none());
        // Off: nothing is kept.
        let off = MemberCache::new(0);
        off.put("m".into(), member("m", 1));
        assert!(off.get("m").is_none());
    }
}
