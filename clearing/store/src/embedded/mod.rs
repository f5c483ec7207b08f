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

mod apply;
mod store_impl;
mod sums;
mod tables;
#[cfg(test)]
mod tests;
mod writer;

use apply::*;
use sums::*;
use tables::*;
use writer::*;

use super::*;
use chrono::NaiveDate;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use std::collections::HashMap;
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

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: mpsc::Sender<Job>,
    /// The members as the writer last committed them (the writer is their only writer, so an entry is
    /// what the file holds): a settlement starts, and the writer checks it, without decoding the row.
    members: Arc<MemberCache>,
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
        Self::open_with(dir, DEFAULT_MEMBER_CACHE)
    }

    /// `open`, keeping at most `member_cache` decoded members in memory (`--member-cache`; 0: none).
    pub fn open_with(dir: &Path, member_cache: usize) -> Result<EmbeddedStore, StoreError> {
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
        let members = Arc::new(MemberCache::new(member_cache));
        let wmembers = members.clone();
        std::thread::Builder::new()
            .name("embedded-writer".into())
            .spawn(move || writer(wdb, wfaults, wmembers, rx))
            .map_err(unavailable)?;
        Ok(EmbeddedStore { db, writer: tx, members, faults })
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

    /// A member as its row in the file holds it (not the cache).
    fn filed_member(&self, key: &str) -> Result<Option<MemberRecord>, StoreError> {
        self.read(MEMBERS, key, |b| serde_json::from_slice(b).map_err(corrupt))
    }

    /// A day's journal entries in row order (see `journal_row`).
    fn journal_rows(&self, clr_date: NaiveDate) -> Result<Vec<JournalEntry>, StoreError> {
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
