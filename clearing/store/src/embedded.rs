//! The embedded store: one redb database file under the data directory, so `clearing serve` needs no
//! server. Every acknowledged commit has been fsynced (redb's `Durability::Immediate`).
//!
//! Writes go through one writer thread that takes up to `MAX_BATCH` queued commits, applies them in
//! order inside one write transaction (each sees the ones before it), and fsyncs once for all: group
//! commit, so throughput is not bounded by one fsync per settlement. A commit whose checks fail
//! writes nothing; its neighbours in the batch are unaffected. A commit whose *writes* fail half-way
//! (an I/O error after some rows were put) must not leave those rows behind: the whole transaction is
//! aborted and the batch's jobs are run again one per transaction, so the failing job's transaction is
//! aborted alone and every other job commits. Reads use redb's MVCC read transactions and never wait
//! for the writer.

use super::*;
use chrono::NaiveDate;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Commits applied in one transaction (one fsync). Bounds the latency a batch adds and the memory
/// it holds; 256 is far above what two cores produce between two fsyncs.
const MAX_BATCH: usize = 256;
/// Commits waiting for the writer. A full queue makes callers wait (backpressure), not fail.
const QUEUE_DEPTH: usize = 4096;
/// Days a window search moves forward past closed windows; more means a corrupt calendar.
const MAX_CLOSED_AHEAD_DAYS: u32 = 366;

const MEMBERS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("members");
const SETTLEMENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("settlements");
const IDEMPOTENCY: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("idempotency");
/// `<clr_date>|<insured>|<service location>` → pair totals (the Redis store keeps them per shard and
/// folds them into window-wide totals; one database needs no shard dimension).
const WINDOW_TOTALS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("window_totals");
/// `<clr_date>|<setl_id>` → the entry with its amounts: the window's journal, for reconciliation.
const JOURNAL: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("journal");
/// `<clr_date>` → window state; a present key means the window is closed.
const WINDOWS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("windows");
/// Shared metadata: `<key>` → value, and `<key>|<field>` → value for maps.
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
/// Supervision deltas of commits not yet folded into the months' segments, by an increasing sequence:
/// a commit appends one row at the end of the tree (a page it shares with its neighbours) instead of
/// updating two rows anywhere in it; `fold_indicators` adds them up in bulk.
const SV_LOG: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("supervision_log");
/// A month's indicators as a few segments, `<month>|<seq, 16 hex>` → `<entity>|<measure>` sums
/// (`encode_sums`): each fold appends one segment per month it saw (one sequential write, however many
/// institutions), and once a month has more than `MAX_SEGMENTS` they are merged into one. A month is
/// read by adding up its segments.
const SV_SEGMENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("supervision_segments");
const MAX_SEGMENTS: usize = 16;
/// Log rows folded per transaction at most, so that a fold holds the writer for tens of milliseconds
/// (a fold that finds more leaves the rest for the next one).
const MAX_FOLD: usize = 2_000;

type Reply = oneshot::Sender<Result<CommitOutcome, StoreError>>;

enum Job {
    Commit(Box<Commit>, NaiveDate, Reply),
    Upsert(Box<MemberUpsert>, oneshot::Sender<Result<MemberRecord, StoreError>>),
    /// Window closes and metadata writes: small, rare, serialized with commits.
    Meta(MetaOp, oneshot::Sender<Result<String, StoreError>>),
}

enum MetaOp {
    Close(NaiveDate),
    PutOnce(String, String),
    MapSet(String, String, String, bool),
    /// A month's account credit of a member: "-1" missing, "0:<fen>" credited before, "1:<balance>" now.
    Credit(MemberKey, String, i64),
    /// Compare-and-set of a shard's versioned records; answers "1" when written, "0" when not.
    PutRecords(u16, Vec<RecordWrite>),
    /// Adds to a month's supervision indicators (a bulk load).
    AddIndicators(String, Vec<(String, i64)>),
    /// Folds the supervision log into the months' entity rows; answers how many deltas were folded.
    FoldIndicators,
}

/// Sums as stored: per field its name's length (two bytes LE), its name, the sum (i64 LE).
fn encode_sums(sums: &BTreeMap<String, i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(sums.len() * 40);
    for (m, v) in sums.iter().filter(|(_, v)| **v != 0) {
        let name = &m.as_bytes()[..m.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Calls `f` with each (name, sum) of stored sums (`encode_sums`).
fn each_sum(mut b: &[u8], mut f: impl FnMut(&str, i64)) -> Result<(), StoreError> {
    while !b.is_empty() {
        let truncated = || corrupt("indicator segment truncated");
        let len = u16::from_le_bytes(b.get(..2).ok_or_else(truncated)?.try_into().expect("2 bytes")) as usize;
        let rest = &b[2..];
        if rest.len() < len + 8 {
            return Err(truncated());
        }
        f(std::str::from_utf8(&rest[..len]).map_err(corrupt)?, i64::from_le_bytes(rest[len..len + 8].try_into().expect("8 bytes")));
        b = &rest[len + 8..];
    }
    Ok(())
}

/// Adds stored sums into `into`.
fn add_decoded(b: &[u8], into: &mut BTreeMap<String, i64>) -> Result<(), StoreError> {
    each_sum(b, |name, v| match into.get_mut(name) {
        Some(have) => *have += v,
        None => {
            into.insert(name.to_string(), v);
        }
    })
}

/// Stored sums as fields, appended to `out` (a month's segments may repeat a field).
fn read_fields(b: &[u8], out: &mut Vec<(String, i64)>) -> Result<(), StoreError> {
    each_sum(b, |name, v| out.push((name.to_string(), v)))
}

#[cfg(test)]
fn decode_sums(b: &[u8]) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut out = BTreeMap::new();
    add_decoded(b, &mut out)?;
    Ok(out)
}

/// Appends `sums` as a new segment of `month`, merging the month's segments into one when there are
/// more than `MAX_SEGMENTS`.
fn add_segment(t: &mut Tables<'_>, month: &str, sums: &BTreeMap<String, i64>) -> Result<(), StoreError> {
    let (from, to) = (format!("{month}|"), format!("{month}}}"));
    let mut keys = Vec::new();
    for row in t.sv_segments.range(from.as_str()..to.as_str()).map_err(unavailable)? {
        keys.push(row.map_err(unavailable)?.0.value().to_string());
    }
    let seq_of = |k: &str| u64::from_str_radix(&k[from.len()..], 16).map_err(|_| corrupt(format!("indicator segment {k:?}")));
    let next = match keys.last() {
        Some(k) => seq_of(k)? + 1,
        None => 0,
    };
    if keys.len() < MAX_SEGMENTS {
        let key = format!("{from}{next:016x}");
        t.faults.before_write(&key)?;
        t.sv_segments.insert(key.as_str(), encode_sums(sums).as_slice()).map_err(unavailable)?;
        return Ok(());
    }
    let mut merged = sums.clone();
    for k in &keys {
        let v = t.sv_segments.remove(k.as_str()).map_err(unavailable)?.ok_or_else(|| corrupt("indicator segment vanished"))?;
        add_decoded(v.value(), &mut merged)?;
    }
    let key = format!("{from}{next:016x}");
    t.faults.before_write(&key)?;
    t.sv_segments.insert(key.as_str(), encode_sums(&merged).as_slice()).map_err(unavailable)?;
    Ok(())
}

/// Adds the logged supervision deltas (oldest first, at most `MAX_FOLD`) to their months as one
/// segment each and removes them from the log, in the caller's transaction; returns how many were folded.
fn fold_log(t: &mut Tables<'_>) -> Result<usize, StoreError> {
    let mut months: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let (mut last, mut n) = (None, 0);
    for row in t.sv_log.iter().map_err(unavailable)?.take(MAX_FOLD) {
        let (k, v) = row.map_err(unavailable)?;
        let d = SupervisionDelta::decode_logged(v.value())?;
        let sums = months.entry(d.month.clone()).or_default();
        for (kind, entity, m, v) in d.adds() {
            *sums.entry(format!("{kind}|{entity}|{m}")).or_default() += v;
        }
        last = Some(k.value());
        n += 1;
    }
    for (month, sums) in &months {
        add_segment(t, month, sums)?;
    }
    if let Some(last) = last {
        t.sv_log.retain_in(..=last, |_, _| false).map_err(unavailable)?;
    }
    Ok(n)
}

/// A flagged settlement's row in the month's flagged list: `fl|<month>|<setl_id>` → entry (JSON).
fn flagged_row(month: &str, setl_id: &str) -> String {
    format!("fl|{month}|{setl_id}")
}

/// Adds `<entity>|<measure>` amounts to the month (a segment of their own).
fn add_indicators(t: &mut Tables<'_>, month: &str, fields: &[(String, i64)]) -> Result<(), StoreError> {
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for (f, v) in fields {
        *sums.entry(f.clone()).or_default() += v;
    }
    add_segment(t, month, &sums)
}

fn apply_supervision(t: &mut Tables<'_>, s: &SettlementRecord) -> Result<(), StoreError> {
    let Some(sv) = &s.supervision else { return Ok(()) };
    let seq = match t.next_log_seq {
        Some(n) => n,
        None => t.sv_log.last().map_err(unavailable)?.map_or(0, |(k, _)| k.value() + 1),
    };
    t.faults.before_write(&format!("svlog|{}", s.setl_id))?;
    t.sv_log.insert(seq, sv.encode_logged().as_bytes()).map_err(unavailable)?;
    t.next_log_seq = Some(seq + 1);
    if let Some(entry) = &sv.flagged {
        t.put(TableId::Meta, &flagged_row(&sv.month, &s.setl_id), entry.as_bytes())?;
    }
    if let Some(orig) = &sv.unflag {
        t.remove_meta(&flagged_row(&sv.month, orig))?;
    }
    Ok(())
}

fn parse_credit(r: &str) -> Result<CreditOutcome, StoreError> {
    let bad = || corrupt(format!("credit answer {r:?}"));
    match r.split_once(':') {
        None if r == "-1" => Ok(CreditOutcome::Missing),
        None if r == "-2" => Ok(CreditOutcome::Closed),
        Some(("0", f)) => Ok(CreditOutcome::AlreadyCredited { fen: f.parse().map_err(|_| bad())? }),
        Some(("1", b)) => Ok(CreditOutcome::Credited { balance_fen: b.parse().map_err(|_| bad())? }),
        _ => Err(bad()),
    }
}

/// A versioned record's row in the meta table: `rec|<shard>|<name>` → `<version>\0<data>`.
fn record_row(shard: u16, name: &str) -> String {
    format!("rec|{shard:03}|{name}")
}

fn parse_record(bytes: &[u8]) -> Result<Record, StoreError> {
    let split = bytes.iter().position(|b| *b == 0).ok_or_else(|| corrupt("record without a version"))?;
    let version = std::str::from_utf8(&bytes[..split]).ok().and_then(|v| v.parse().ok()).ok_or_else(|| corrupt("record version"))?;
    let data = String::from_utf8(bytes[split + 1..].to_vec()).map_err(corrupt)?;
    Ok(Record { version, data })
}

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: mpsc::Sender<Job>,
    /// Fault injection for the all-or-nothing test (see `Faults`); only tests plant a fault.
    #[cfg_attr(not(test), allow(dead_code))]
    faults: Arc<Faults>,
}

/// A write fault planted by a test: every write of a row under `key` fails as an I/O error would.
/// Unarmed (always, outside tests) it costs one relaxed atomic load per row.
#[derive(Default)]
struct Faults {
    armed: AtomicBool,
    key: std::sync::Mutex<String>,
}

impl Faults {
    fn before_write(&self, key: &str) -> Result<(), StoreError> {
        if self.armed.load(Ordering::Relaxed) && *self.key.lock().expect("fault key") == key {
            return Err(unavailable(format!("injected write failure at {key}")));
        }
        Ok(())
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/clearing.redb` and starts the writer thread.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| unavailable(format!("cannot create data directory {}: {e}", dir.display())))?;
        let path = dir.join("clearing.redb");
        let db = Database::create(&path).map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        {
            let txn = db.begin_write().map_err(unavailable)?;
            for t in [MEMBERS, SETTLEMENTS, IDEMPOTENCY, WINDOW_TOTALS, JOURNAL, WINDOWS, META] {
                txn.open_table(t).map_err(unavailable)?;
            }
            txn.open_table(SV_LOG).map_err(unavailable)?;
            txn.open_table(SV_SEGMENTS).map_err(unavailable)?;
            txn.commit().map_err(unavailable)?;
        }
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (wdb, faults) = (db.clone(), Arc::new(Faults::default()));
        let wfaults = faults.clone();
        std::thread::Builder::new().name("embedded-writer".into()).spawn(move || writer(wdb, wfaults, rx)).map_err(unavailable)?;
        Ok(EmbeddedStore { db, writer: tx, faults })
    }

    /// Folds the supervision log into the months' indicator rows (run in the background, and before a
    /// month is read); returns how many commits' deltas were folded.
    pub async fn fold_indicators(&self) -> Result<usize, StoreError> {
        let started = std::time::Instant::now();
        // In chunks of `MAX_FOLD`, each its own transaction, so commits go on between them.
        let mut n = 0;
        loop {
            let (tx, rx) = oneshot::channel();
            let folded: usize = self.submit(Job::Meta(MetaOp::FoldIndicators, tx), rx).await?.parse().map_err(corrupt)?;
            n += folded;
            if folded < MAX_FOLD {
                break;
            }
        }
        if n > 0 {
            tracing::debug!(deltas = n, ms = started.elapsed().as_millis() as u64, "folded supervision deltas");
        }
        Ok(n)
    }

    /// How many commits' supervision deltas wait in the log (the background folder folds in bulk:
    /// many deltas per page of indicator rows, not two random pages per commit).
    pub fn pending_indicators(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(SV_LOG).map_err(unavailable)?;
        let first = t.first().map_err(unavailable)?.map(|(k, _)| k.value());
        let last = t.last().map_err(unavailable)?.map(|(k, _)| k.value());
        Ok(match (first, last) {
            (Some(f), Some(l)) => l - f + 1,
            _ => 0,
        })
    }

    /// Makes every write of a row under `key` fail (tests only); `None` clears the fault.
    #[cfg(test)]
    fn fail_writes_of(&self, key: Option<&str>) {
        *self.faults.key.lock().expect("fault key") = key.unwrap_or_default().to_string();
        self.faults.armed.store(key.is_some(), Ordering::Relaxed);
    }

    fn read<T>(
        &self,
        table: TableDefinition<'static, &str, &[u8]>,
        key: &str,
        f: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(table).map_err(unavailable)?;
        match t.get(key).map_err(unavailable)? {
            Some(v) => f(v.value()).map(Some),
            None => Ok(None),
        }
    }

    async fn submit<T>(&self, job: Job, rx: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        self.writer.send(job).await.map_err(|_| unavailable("writer stopped"))?;
        // A dropped reply means the writer died mid-batch: the outcome is unknown to us, and the caller
        // resolves it by re-reading the idempotency key, never by committing again blindly.
        rx.await.map_err(|_| unavailable("writer stopped before answering"))?
    }
}

impl Store for EmbeddedStore {
    async fn load_member(&self, key: &MemberKey) -> Result<Option<MemberRecord>, StoreError> {
        self.read(MEMBERS, &key.storage_key(), |b| serde_json::from_slice(b).map_err(corrupt))
    }

    async fn upsert_member(&self, upsert: MemberUpsert) -> Result<MemberRecord, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Upsert(Box::new(upsert), tx), rx).await
    }

    async fn lookup_idempotency(&self, _shard: u16, idem_key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.read(IDEMPOTENCY, idem_key, |b| serde_json::from_slice(b).map_err(corrupt))
    }

    async fn get_settlement(&self, setl_id: &str) -> Result<Option<SettlementRecord>, StoreError> {
        self.read(SETTLEMENTS, setl_id, SettlementRecord::from_stored)
    }

    async fn open_window(&self, _shard: u16, today: NaiveDate) -> Result<NaiveDate, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(WINDOWS).map_err(unavailable)?;
        first_open_day(|k| t.get(k).map(|v| v.is_some()).map_err(unavailable), today)
    }

    async fn commit(&self, commit: Commit, today: NaiveDate) -> Result<CommitOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Commit(Box::new(commit), today, tx), rx).await
    }

    async fn window_totals(&self, clr_date: NaiveDate) -> Result<WindowTotals, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(WINDOW_TOTALS).map_err(unavailable)?;
        let prefix = format!("{clr_date}|");
        let end = format!("{clr_date}}}"); // '}' sorts after '|'
        let mut sums: std::collections::BTreeMap<(String, String), PairTotals> = Default::default();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(unavailable)? {
            let (k, v) = row.map_err(unavailable)?;
            let mut parts = k.value().split('|').skip(1);
            let (Some(ins), Some(mdt)) = (parts.next(), parts.next()) else {
                return Err(corrupt(format!("bad totals key {}", k.value())));
            };
            let add: PairTotals = serde_json::from_slice(v.value()).map_err(corrupt)?;
            sums.entry((ins.to_string(), mdt.to_string())).or_default().merge(&add);
        }
        Ok(WindowTotals::from_pairs(sums))
    }

    async fn close_window(&self, clr_date: NaiveDate) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Meta(MetaOp::Close(clr_date), tx), rx).await.map(|_| ())
    }

    async fn closed_windows(&self) -> Result<Vec<NaiveDate>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(WINDOWS).map_err(unavailable)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(unavailable)? {
            let (k, _) = row.map_err(unavailable)?;
            out.push(k.value().parse::<NaiveDate>().map_err(corrupt)?);
        }
        Ok(out)
    }

    async fn journal_sums(&self, clr_date: NaiveDate) -> Result<PairTotals, StoreError> {
        let mut sums = PairTotals::default();
        for e in self.window_journal(clr_date).await? {
            sums.add(&e.totals);
        }
        Ok(sums)
    }

    async fn window_journal(&self, clr_date: NaiveDate) -> Result<Vec<JournalEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(JOURNAL).map_err(unavailable)?;
        let (from, to) = (format!("{clr_date}|"), format!("{clr_date}}}"));
        let mut out = Vec::new();
        for row in t.range(from.as_str()..to.as_str()).map_err(unavailable)? {
            let (_, v) = row.map_err(unavailable)?;
            out.push(JournalEntry::decode(std::str::from_utf8(v.value()).map_err(corrupt)?)?);
        }
        Ok(out)
    }

    async fn put_once(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Meta(MetaOp::PutOnce(key.into(), value.into()), tx), rx).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(META, key, |b| String::from_utf8(b.to_vec()).map_err(corrupt))
    }

    async fn map_set(&self, key: &str, field: &str, value: &str, only_new: bool) -> Result<String, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Meta(MetaOp::MapSet(key.into(), field.into(), value.into(), only_new), tx), rx).await
    }

    async fn credit_month(&self, key: &MemberKey, month: &str, fen: i64) -> Result<CreditOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        let r = self.submit(Job::Meta(MetaOp::Credit(key.clone(), month.into(), fen), tx), rx).await?;
        parse_credit(&r)
    }

    async fn members_of(&self, insured: &str, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(MEMBERS).map_err(unavailable)?;
        let prefix = format!("{insured}:");
        let from = format!("{prefix}{after}");
        let to = format!("{insured};");
        let mut out = Vec::with_capacity(limit);
        for row in t.range(from.as_str()..to.as_str()).map_err(unavailable)? {
            let (k, _) = row.map_err(unavailable)?;
            let psn = &k.value()[prefix.len()..];
            if psn == after {
                continue;
            }
            out.push(psn.to_string());
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn get_records(&self, shard: u16, keys: &[String]) -> Result<Vec<Option<Record>>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(META).map_err(unavailable)?;
        keys.iter()
            .map(|k| match t.get(record_row(shard, k).as_str()).map_err(unavailable)? {
                None => Ok(None),
                Some(v) => parse_record(v.value()).map(Some),
            })
            .collect()
    }

    async fn put_records(&self, shard: u16, writes: Vec<RecordWrite>) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Meta(MetaOp::PutRecords(shard, writes), tx), rx).await.map(|r| r == "1")
    }

    async fn record_keys(&self, shard: u16, prefix: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(META).map_err(unavailable)?;
        let from = record_row(shard, prefix);
        let to = format!("rec|{shard:03}}}");
        let head = record_row(shard, "").len();
        let mut out = Vec::new();
        for row in t.range(from.as_str()..to.as_str()).map_err(unavailable)? {
            let (k, _) = row.map_err(unavailable)?;
            let name = &k.value()[head..];
            if !name.starts_with(prefix) {
                break;
            }
            out.push(name.to_string());
        }
        Ok(out)
    }

    async fn indicators(&self, month: &str) -> Result<Vec<(String, i64)>, StoreError> {
        // Everything committed before this read is folded first.
        self.fold_indicators().await?;
        let (db, month) = (self.db.clone(), month.to_string());
        // A read of a few megabytes: off the async threads.
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(unavailable)?;
            let t = txn.open_table(SV_SEGMENTS).map_err(unavailable)?;
            let (from, to) = (format!("{month}|"), format!("{month}}}"));
            let mut out = Vec::new();
            for row in t.range(from.as_str()..to.as_str()).map_err(unavailable)? {
                read_fields(row.map_err(unavailable)?.1.value(), &mut out)?;
            }
            Ok(out)
        })
        .await
        .map_err(|e| unavailable(format!("indicator read: {e}")))?
    }

    async fn flagged(&self, month: &str, after: &str, limit: usize) -> Result<Vec<(String, String, String)>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(META).map_err(unavailable)?;
        // Cursor `<shard>/<setl_id>` as on Redis; settlement ids start with their shard, so one order.
        let after = after.split_once('/').map_or(after, |(_, id)| id);
        let head = flagged_row(month, "");
        let (from, to) = (format!("{head}{after}\0"), format!("fl|{month}}}"));
        let from = if after.is_empty() { head.clone() } else { from };
        let mut out = Vec::new();
        for row in t.range(from.as_str()..to.as_str()).map_err(unavailable)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(unavailable)?;
            let id = k.value()[head.len()..].to_string();
            let cursor = format!("{}/{id}", id.get(..2).unwrap_or("00"));
            out.push((cursor, id, String::from_utf8(v.value().to_vec()).map_err(corrupt)?));
        }
        Ok(out)
    }

    async fn add_indicators(&self, _shard: u16, month: &str, fields: &[(String, i64)]) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Meta(MetaOp::AddIndicators(month.to_string(), fields.to_vec()), tx), rx).await.map(|_| ())
    }

    async fn map_get_field(&self, key: &str, field: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(META).map_err(unavailable)?;
        match t.get(format!("{key}|{field}").as_str()).map_err(unavailable)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.value().to_vec()).map(Some).map_err(corrupt),
        }
    }

    async fn map_get(&self, key: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(META).map_err(unavailable)?;
        let (from, to) = (format!("{key}|"), format!("{key}}}"));
        let mut out = std::collections::BTreeMap::new();
        for row in t.range(from.as_str()..to.as_str()).map_err(unavailable)? {
            let (k, v) = row.map_err(unavailable)?;
            let field = k.value()[from.len()..].to_string();
            out.insert(field, String::from_utf8(v.value().to_vec()).map_err(corrupt)?);
        }
        Ok(out)
    }
}

fn first_open_day(mut closed: impl FnMut(&str) -> Result<bool, StoreError>, today: NaiveDate) -> Result<NaiveDate, StoreError> {
    let mut d = today;
    for _ in 0..MAX_CLOSED_AHEAD_DAYS {
        if !closed(&d.to_string())? {
            return Ok(d);
        }
        d = d.succ_opt().ok_or_else(|| corrupt("date overflow"))?;
    }
    Err(corrupt(format!("more than {MAX_CLOSED_AHEAD_DAYS} closed windows after {today}")))
}

/// The writer thread: batches, applies, fsyncs, answers.
fn writer(db: Arc<Database>, faults: Arc<Faults>, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let results = apply_batch(&db, &faults, &batch);
        for (job, result) in batch.drain(..).zip(results) {
            match (job, result) {
                (Job::Commit(_, _, reply), Answer::Commit(r)) => drop(reply.send(r)),
                (Job::Upsert(_, reply), Answer::Upsert(r)) => drop(reply.send(r.map(|b| *b))),
                (Job::Meta(_, reply), Answer::Meta(r)) => drop(reply.send(r)),
                _ => unreachable!("answers are produced in job order and kind"),
            }
        }
    }
}

enum Answer {
    Commit(Result<CommitOutcome, StoreError>),
    Upsert(Result<Box<MemberRecord>, StoreError>),
    Meta(Result<String, StoreError>),
}

struct Tables<'t> {
    members: Table<'t, &'static str, &'static [u8]>,
    settlements: Table<'t, &'static str, &'static [u8]>,
    idempotency: Table<'t, &'static str, &'static [u8]>,
    totals: Table<'t, &'static str, &'static [u8]>,
    journal: Table<'t, &'static str, &'static [u8]>,
    windows: Table<'t, &'static str, &'static [u8]>,
    meta: Table<'t, &'static str, &'static [u8]>,
    sv_log: Table<'t, u64, &'static [u8]>,
    sv_segments: Table<'t, &'static str, &'static [u8]>,
    /// The supervision log's next key in this transaction (looked up once, then counted).
    next_log_seq: Option<u64>,
    faults: &'t Faults,
}

impl Tables<'_> {
    /// Every row write goes through here, so a planted fault can hit any of them.
    fn put(&mut self, table: TableId, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.faults.before_write(key)?;
        let t = match table {
            TableId::Members => &mut self.members,
            TableId::Settlements => &mut self.settlements,
            TableId::Idempotency => &mut self.idempotency,
            TableId::Totals => &mut self.totals,
            TableId::Journal => &mut self.journal,
            TableId::Windows => &mut self.windows,
            TableId::Meta => &mut self.meta,
        };
        t.insert(key, value).map_err(unavailable)?;
        Ok(())
    }

    fn remove_meta(&mut self, key: &str) -> Result<(), StoreError> {
        self.faults.before_write(key)?;
        self.meta.remove(key).map_err(unavailable)?;
        Ok(())
    }

    fn put_json<T: serde::Serialize>(&mut self, table: TableId, key: &str, v: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(v).map_err(corrupt)?;
        self.put(table, key, &bytes)
    }
}

#[derive(Clone, Copy)]
enum TableId {
    Members,
    Settlements,
    Idempotency,
    Totals,
    Journal,
    Windows,
    Meta,
}

/// Applies a batch in one transaction; if any job fails with a store error, the transaction is aborted
/// (so no job's half-made writes survive) and each job runs again in a transaction of its own.
fn apply_batch(db: &Database, faults: &Faults, batch: &[Job]) -> Vec<Answer> {
    match apply_in_one_transaction(db, faults, batch) {
        Ok(answers) => answers,
        Err(_) if batch.len() > 1 => batch
            .iter()
            .flat_map(|job| match apply_in_one_transaction(db, faults, std::slice::from_ref(job)) {
                Ok(answers) => answers,
                Err(e) => vec![failed(job, e)],
            })
            .collect(),
        Err(e) => batch.iter().map(|job| failed(job, e.clone())).collect(),
    }
}

fn failed(job: &Job, e: StoreError) -> Answer {
    match job {
        Job::Commit(..) => Answer::Commit(Err(e)),
        Job::Upsert(..) => Answer::Upsert(Err(e)),
        Job::Meta(..) => Answer::Meta(Err(e)),
    }
}

/// All of `batch` in one write transaction, committed only when every job succeeded (a job's refusal,
/// such as a version conflict, is a success here: it wrote nothing). Any store error aborts it whole.
fn apply_in_one_transaction(db: &Database, faults: &Faults, batch: &[Job]) -> Result<Vec<Answer>, StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    let answers = {
        let mut t = Tables {
            members: txn.open_table(MEMBERS).map_err(unavailable)?,
            settlements: txn.open_table(SETTLEMENTS).map_err(unavailable)?,
            idempotency: txn.open_table(IDEMPOTENCY).map_err(unavailable)?,
            totals: txn.open_table(WINDOW_TOTALS).map_err(unavailable)?,
            journal: txn.open_table(JOURNAL).map_err(unavailable)?,
            windows: txn.open_table(WINDOWS).map_err(unavailable)?,
            meta: txn.open_table(META).map_err(unavailable)?,
            sv_log: txn.open_table(SV_LOG).map_err(unavailable)?,
            sv_segments: txn.open_table(SV_SEGMENTS).map_err(unavailable)?,
            next_log_seq: None,
            faults,
        };
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch {
            let answer = match job {
                Job::Commit(c, today, _) => Answer::Commit(Ok(apply_commit(&mut t, c, *today)?)),
                Job::Upsert(u, _) => Answer::Upsert(Ok(Box::new(apply_upsert(&mut t, u)?))),
                Job::Meta(op, _) => Answer::Meta(Ok(apply_meta(&mut t, op)?)),
            };
            answers.push(answer);
        }
        answers
    };
    // Reached only when every job succeeded; a `?` above dropped `txn`, which aborts it.
    txn.commit().map_err(unavailable)?;
    Ok(answers)
}

fn get_json<T: serde::de::DeserializeOwned>(t: &Table<'_, &'static str, &'static [u8]>, key: &str) -> Result<Option<T>, StoreError> {
    match t.get(key).map_err(unavailable)? {
        Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

/// A stored settlement of either form (see `record`).
fn get_settlement(t: &Table<'_, &'static str, &'static [u8]>, setl_id: &str) -> Result<Option<SettlementRecord>, StoreError> {
    match t.get(setl_id).map_err(unavailable)? {
        Some(v) => SettlementRecord::from_stored(v.value()).map(Some),
        None => Ok(None),
    }
}

fn apply_commit(t: &mut Tables<'_>, c: &Commit, today: NaiveDate) -> Result<CommitOutcome, StoreError> {
    let s = &c.settlement;
    let idem_key = idempotency_key(s);
    // ---- checks: nothing is written unless all pass ----
    if let Some(idem) = get_json::<IdempotencyRecord>(&t.idempotency, &idem_key)? {
        if idem.content_hash != s.content_hash {
            return Ok(CommitOutcome::IdempotencyMismatch);
        }
        let stored = get_settlement(&t.settlements, &idem.setl_id)?
            .ok_or_else(|| corrupt(format!("idempotency key {idem_key} names missing {}", idem.setl_id)))?;
        return Ok(CommitOutcome::Replayed(Box::new(stored)));
    }
    if t.settlements.get(s.setl_id.as_str()).map_err(unavailable)?.is_some() {
        return Ok(CommitOutcome::SetlIdTaken);
    }
    if first_open_day(|k| t.windows.get(k).map(|v| v.is_some()).map_err(unavailable), today)? != s.clr_date {
        return Ok(CommitOutcome::WindowMoved);
    }
    let mut original = None;
    if let Some(orig_id) = &c.reverses {
        let Some(orig) = get_settlement(&t.settlements, orig_id)? else {
            return Ok(CommitOutcome::OriginalMissing);
        };
        if orig.reversed_by.is_some() {
            return Ok(CommitOutcome::AlreadyReversed);
        }
        original = Some(orig);
    }
    let mut members = Vec::with_capacity(c.members.len());
    for m in &c.members {
        let key = m.key.storage_key();
        let Some(rec) = get_json::<MemberRecord>(&t.members, &key)? else {
            return Ok(CommitOutcome::VersionConflict);
        };
        if m.expected_version.is_some_and(|v| v != rec.version) {
            return Ok(CommitOutcome::VersionConflict);
        }
        if rec.closed.is_some() {
            return Ok(CommitOutcome::Closed);
        }
        if rec.acct_balc_fen + m.balance_delta_fen < 0 {
            return Ok(CommitOutcome::InsufficientBalance);
        }
        members.push((key, rec, m));
    }
    // ---- writes ----
    for (key, mut rec, m) in members {
        apply_member_change(&mut rec, m);
        t.put_json(TableId::Members, &key, &rec)?;
    }
    if let Some(mut orig) = original {
        orig.reversed_by = Some(s.setl_id.clone());
        t.put(TableId::Settlements, &orig.setl_id, &orig.to_stored())?;
    }
    t.put(TableId::Settlements, &s.setl_id, &s.to_stored())?;
    t.put_json(TableId::Idempotency, &idem_key, &IdempotencyRecord { content_hash: s.content_hash, setl_id: s.setl_id.clone() })?;
    // One database, so no shard dimension: netting reads one entry per region pair.
    let tkey = format!("{}|{}|{}", s.clr_date, s.insuplc_admdvs, s.mdtrt_admdvs);
    let mut totals: PairTotals = get_json(&t.totals, &tkey)?.unwrap_or_default();
    totals.add(&s.totals);
    t.put_json(TableId::Totals, &tkey, &totals)?;
    t.put(TableId::Journal, &format!("{}|{}", s.clr_date, s.setl_id), JournalEntry::of(s).encode().as_bytes())?;
    apply_supervision(t, s)?;
    Ok(CommitOutcome::Committed)
}

/// The idempotency key of a settlement: the msgid within its sender's scope (see `ids`).
fn idempotency_key(s: &SettlementRecord) -> String {
    crate::ids::idempotency_key(&s.mdtrt_admdvs, &s.msgid)
}

/// Applies an upsert to an existing record (or none); shared by every store.
pub fn upserted(existing: Option<MemberRecord>, u: &MemberUpsert) -> MemberRecord {
    let (accumulators, version, balance, credits, recent, closed) = match existing {
        Some(r) => (r.accumulators, r.version + 1, r.acct_balc_fen, r.credits, r.recent, r.closed),
        None => (Vec::new(), 1, 0, BTreeMap::new(), Vec::new(), None),
    };
    MemberRecord {
        key: u.key.clone(),
        psn_type: u.psn_type.clone(),
        retire_date: u.retire_date,
        pooling_only: u.pooling_only,
        acct_balc_fen: u.set_balance_fen.unwrap_or(balance) + u.credit_fen,
        filings: u.filings.clone(),
        mulaid_beneficiaries: u.mulaid_beneficiaries.clone(),
        accumulators,
        version,
        credit_facts: u.credit_facts,
        arrears: u.arrears.clone(),
        credits,
        recent,
        closed,
    }
}

fn apply_upsert(t: &mut Tables<'_>, u: &MemberUpsert) -> Result<MemberRecord, StoreError> {
    let key = u.key.storage_key();
    let existing = get_json::<MemberRecord>(&t.members, &key)?;
    if let Some(c) = existing.as_ref().and_then(|r| r.closed.clone()) {
        return Err(StoreError::Closed(c));
    }
    let rec = upserted(existing, u);
    t.put_json(TableId::Members, &key, &rec)?;
    Ok(rec)
}

fn get_str(t: &Table<'_, &'static str, &'static [u8]>, key: &str) -> Result<Option<String>, StoreError> {
    match t.get(key).map_err(unavailable)? {
        Some(v) => String::from_utf8(v.value().to_vec()).map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

fn apply_meta(t: &mut Tables<'_>, op: &MetaOp) -> Result<String, StoreError> {
    match op {
        MetaOp::Close(date) => {
            let key = date.to_string();
            if t.windows.get(key.as_str()).map_err(unavailable)?.is_none() {
                let at = chrono::Utc::now().to_rfc3339();
                t.put(TableId::Windows, &key, at.as_bytes())?;
            }
            Ok(key)
        }
        MetaOp::PutOnce(key, value) => {
            if let Some(old) = get_str(&t.meta, key)? {
                return Ok(old);
            }
            t.put(TableId::Meta, key, value.as_bytes())?;
            Ok(value.clone())
        }
        MetaOp::MapSet(key, field, value, only_new) => {
            let k = format!("{key}|{field}");
            if *only_new && let Some(old) = get_str(&t.meta, &k)? {
                return Ok(old);
            }
            t.put(TableId::Meta, &k, value.as_bytes())?;
            Ok(value.clone())
        }
        MetaOp::Credit(key, month, fen) => {
            let k = key.storage_key();
            let Some(mut rec) = get_json::<MemberRecord>(&t.members, &k)? else { return Ok("-1".into()) };
            if rec.closed.is_some() {
                return Ok("-2".into());
            }
            if let Some(before) = rec.credits.get(month) {
                return Ok(format!("0:{before}"));
            }
            rec.credits.insert(month.clone(), *fen);
            rec.acct_balc_fen += fen;
            rec.version += 1;
            t.put_json(TableId::Members, &k, &rec)?;
            Ok(format!("1:{}", rec.acct_balc_fen))
        }
        MetaOp::AddIndicators(month, fields) => {
            add_indicators(t, month, fields)?;
            Ok(String::new())
        }
        MetaOp::FoldIndicators => fold_log(t).map(|n| n.to_string()),
        MetaOp::PutRecords(shard, writes) => {
            for w in writes {
                let row = record_row(*shard, &w.key);
                let current = match t.meta.get(row.as_str()).map_err(unavailable)? {
                    None => 0,
                    Some(v) => parse_record(v.value())?.version,
                };
                if current != w.expected {
                    return Ok("0".into());
                }
            }
            for w in writes {
                let row = record_row(*shard, &w.key);
                match &w.data {
                    None => t.remove_meta(&row)?,
                    Some(d) => {
                        let mut bytes = (w.expected + 1).to_string().into_bytes();
                        bytes.push(0);
                        bytes.extend_from_slice(d.as_bytes());
                        t.put(TableId::Meta, &row, &bytes)?;
                    }
                }
            }
            Ok("1".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MemberKey {
        MemberKey::new("421300", "P-ATOMIC")
    }

    async fn store_with_member(dir: &Path) -> EmbeddedStore {
        let s = EmbeddedStore::open(dir).unwrap();
        let u = MemberUpsert {
            key: key(),
            psn_type: "11".into(),
            retire_date: None,
            pooling_only: false,
            filings: vec![],
            mulaid_beneficiaries: vec![],
            set_balance_fen: Some(30_000),
            credit_fen: 0,
            credit_facts: Default::default(),
            arrears: vec![],
        };
        s.upsert_member(u).await.unwrap();
        s
    }

    /// A settlement debiting 100.00 from the member's account, computed from version 1.
    fn commit(n: u64, today: NaiveDate) -> Commit {
        let shard = crate::ids::shard_of("421300", "P-ATOMIC");
        Commit {
            shard,
            settlement: SettlementRecord {
                setl_id: format!("{shard:02x}{:012x}{n:010x}", 1),
                msgid: format!("ATOMIC{n}"),
                clr_date: today,
                insuplc_admdvs: "421300".into(),
                mdtrt_admdvs: "360100".into(),
                message: vec![n as u8],
                content_hash: [n as u8; 32],
                totals: PairDelta { count: 1, medfee_fen: 50_000, fund_fen: 20_000, acct_fen: 10_000 },
                orig_setl_id: None,
                reversed_by: None,
                supervision: Some(SupervisionDelta {
                    month: "202601".into(),
                    institution: "360100|H36010000001".into(),
                    pair: "421300|360100".into(),
                    sums: [1, 50_000, 0, 0, 10_000, 20_000, 1],
                    kinds: vec!["high_cost".into()],
                    flagged: Some("{}".into()),
                    unflag: None,
                }),
            },
            members: vec![MemberChange {
                key: key(),
                expected_version: None,
                accumulator: Some(AccumulatorDelta {
                    year: 2026,
                    benefit: "general".into(),
                    deductible_used_fen: 0,
                    fund_paid_fen: 20_000,
                    visits: 1,
                }),
                balance_delta_fen: -10_000,
                recent: Some(vec![RecentVisit { date: today, mdtrt_admdvs: "360100".into() }]),
                close: None,
            }],
            reverses: None,
        }
    }

    type Snapshot = (MemberRecord, WindowTotals, Vec<JournalEntry>, BTreeMap<String, i64>, Vec<(String, String, String)>);

    /// Everything a commit could have touched, for before/after comparison.
    async fn snapshot(s: &EmbeddedStore, day: NaiveDate) -> Snapshot {
        (
            s.load_member(&key()).await.unwrap().unwrap(),
            s.window_totals(day).await.unwrap(),
            s.window_journal(day).await.unwrap(),
            added(s.indicators("202601").await.unwrap()),
            s.flagged("202601", "", 10).await.unwrap(),
        )
    }

    #[test]
    fn logged_deltas_and_stored_sums_read_back_as_written() {
        let d = SupervisionDelta {
            month: "202303".into(),
            institution: "360100|H36010000001".into(),
            pair: "421300|360100".into(),
            sums: [-1, -50_000, 0, 7, -10_000, -20_000, -1],
            kinds: vec!["high_cost".into(), "multi_region_day".into()],
            flagged: None,
            unflag: None,
        };
        assert_eq!(SupervisionDelta::decode_logged(d.encode_logged().as_bytes()).unwrap(), d);
        let clean = SupervisionDelta { kinds: vec![], ..d };
        assert_eq!(SupervisionDelta::decode_logged(clean.encode_logged().as_bytes()).unwrap(), clean);
        assert!(SupervisionDelta::decode_logged(b"202303\x1fx").is_err());
        let sums: BTreeMap<String, i64> = [("n".to_string(), 3), ("k:high_cost".to_string(), -1), ("m".to_string(), i64::MAX)].into();
        assert_eq!(decode_sums(&encode_sums(&sums)).unwrap(), sums);
        assert!(decode_sums(&encode_sums(&sums)[..5]).is_err());
    }

    #[tokio::test]
    async fn a_month_stays_a_few_segments_and_sums_every_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        for i in 0..40 {
            let fields = vec![("i|360100|H36010000001|n".to_string(), 1), (format!("i|360100|H360100{i:05}|m"), 100)];
            s.add_indicators(0, "202303", &fields).await.unwrap();
        }
        let got = added(s.indicators("202303").await.unwrap());
        assert_eq!(got.get("i|360100|H36010000001|n"), Some(&40));
        assert_eq!(got.len(), 41);
        let txn = s.db.begin_read().unwrap();
        let segments = txn.open_table(SV_SEGMENTS).unwrap().iter().unwrap().count();
        assert!(segments <= MAX_SEGMENTS, "{segments} segments");
        assert!(s.indicators("202304").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_commit_whose_last_write_fails_leaves_no_indicator_nor_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let s = store_with_member(dir.path()).await;
        let today = chrono::Utc::now().date_naive();
        let before = snapshot(&s, today).await;
        let c = commit(1, today);
        // The flagged entry is the commit's last write.
        s.fail_writes_of(Some(&flagged_row("202601", &c.settlement.setl_id)));
        assert!(matches!(s.commit(c.clone(), today).await, Err(StoreError::Unavailable(_))));
        assert_eq!(snapshot(&s, today).await, before, "no member, recent visit, total, journal, indicator or flag changed");
        s.fail_writes_of(None);
        assert_eq!(s.commit(c, today).await.unwrap(), CommitOutcome::Committed);
        let after = snapshot(&s, today).await;
        assert_eq!(after.3.get("i|360100|H36010000001|n"), Some(&1));
        assert_eq!(after.4.len(), 1);
        assert_eq!(after.0.recent.len(), 1);
    }

    #[tokio::test]
    async fn a_commit_whose_write_fails_half_way_leaves_nothing_and_a_retry_debits_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store_with_member(dir.path()).await;
        let today = chrono::Utc::now().date_naive();
        let before = snapshot(&s, today).await;
        let c = commit(1, today);
        // The member row is written first; the settlement row (the second write) fails.
        s.fail_writes_of(Some(&c.settlement.setl_id));
        let r = s.commit(c.clone(), today).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert_eq!(snapshot(&s, today).await, before, "no member, balance, total or journal changed");
        assert_eq!(s.get_settlement(&c.settlement.setl_id).await.unwrap(), None);
        let idem = crate::ids::idempotency_key("360100", "ATOMIC1");
        assert_eq!(s.lookup_idempotency(c.shard, &idem).await.unwrap(), None);
        // The caller retries with the same msgid once the store works again: debited once.
        s.fail_writes_of(None);
        assert_eq!(s.commit(c.clone(), today).await.unwrap(), CommitOutcome::Committed);
        assert_eq!(
            s.commit(c, today).await.unwrap(),
            CommitOutcome::Replayed(Box::new(s.get_settlement(&commit(1, today).settlement.setl_id).await.unwrap().unwrap()))
        );
        let m = s.load_member(&key()).await.unwrap().unwrap();
        assert_eq!((m.acct_balc_fen, m.version), (20_000, before.0.version + 1));
        assert_eq!(s.window_journal(today).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_commit_in_a_batch_does_not_take_its_neighbours_down_nor_leave_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = store_with_member(dir.path()).await;
        let today = chrono::Utc::now().date_naive();
        let (a, b, c) = (commit(1, today), commit(2, today), commit(3, today));
        s.fail_writes_of(Some(&b.settlement.setl_id));
        let mut replies = Vec::new();
        let batch: Vec<Job> = [a, b.clone(), c]
            .into_iter()
            .map(|c| {
                let (tx, rx) = oneshot::channel();
                replies.push(rx);
                Job::Commit(Box::new(c), today, tx)
            })
            .collect();
        let answers = apply_batch(&s.db, &s.faults, &batch);
        let outcomes: Vec<String> = answers
            .into_iter()
            .map(|a| match a {
                Answer::Commit(r) => format!("{r:?}").split('(').next().unwrap().to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(outcomes, ["Ok", "Err", "Ok"]);
        s.fail_writes_of(None);
        let m = s.load_member(&key()).await.unwrap().unwrap();
        assert_eq!(m.acct_balc_fen, 10_000, "two debits of 100.00, not three");
        assert_eq!(m.accumulator(2026, "general").unwrap().visits, 2);
        assert_eq!(s.get_settlement(&b.settlement.setl_id).await.unwrap(), None);
        let t = s.window_totals(today).await.unwrap();
        assert_eq!((t.all.count, t.all.entries, t.all.acct_fen), (2, 2, 20_000));
        assert_eq!(s.window_journal(today).await.unwrap().len(), 2);
    }
}
