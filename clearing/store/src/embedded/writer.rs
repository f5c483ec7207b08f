//! The single writer: jobs queued by callers, applied in batches, one transaction per batch.

use super::*;

pub(crate) type Reply = oneshot::Sender<Result<CommitOutcome, StoreError>>;

pub(crate) enum Job {
    Commit(Box<Commit>, NaiveDate, Reply),
    Upsert(Box<MemberUpsert>, oneshot::Sender<Result<MemberRecord, StoreError>>),
    /// Window closes and metadata writes: small, rare, serialized with commits.
    Meta(MetaOp, oneshot::Sender<Result<String, StoreError>>),
}

pub(crate) enum MetaOp {
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

/// The writer thread: batches, applies, fsyncs, answers.
pub(crate) fn writer(db: Arc<Database>, faults: Arc<Faults>, members: Arc<MemberCache>, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let results = apply_batch(&db, &faults, &members, &batch);
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

pub(crate) enum Answer {
    Commit(Result<CommitOutcome, StoreError>),
    Upsert(Result<Box<MemberRecord>, StoreError>),
    Meta(Result<String, StoreError>),
}

/// Applies a batch in one transaction; if any job fails with a store error, the transaction is aborted
/// (so no job's half-made writes survive) and each job runs again in a transaction of its own.
pub(crate) fn apply_batch(db: &Database, faults: &Faults, members: &MemberCache, batch: &[Job]) -> Vec<Answer> {
    match apply_in_one_transaction(db, faults, members, batch) {
        Ok(answers) => answers,
        Err(_) if batch.len() > 1 => batch
            .iter()
            .flat_map(|job| match apply_in_one_transaction(db, faults, members, std::slice::from_ref(job)) {
                Ok(answers) => answers,
                Err(e) => vec![failed(job, e)],
            })
            .collect(),
        Err(e) => batch.iter().map(|job| failed(job, e.clone())).collect(),
    }
}

pub(crate) fn failed(job: &Job, e: StoreError) -> Answer {
    match job {
        Job::Commit(..) => Answer::Commit(Err(e)),
        Job::Upsert(..) => Answer::Upsert(Err(e)),
        Job::Meta(..) => Answer::Meta(Err(e)),
    }
}

/// All of `batch` in one write transaction, committed only when every job succeeded (a job's refusal,
/// such as a version conflict, is a success here: it wrote nothing). Any store error aborts it whole.
/// The members it wrote enter the member cache only once the transaction is durable.
pub(crate) fn apply_in_one_transaction(
    db: &Database,
    faults: &Faults,
    members: &MemberCache,
    batch: &[Job],
) -> Result<Vec<Answer>, StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    let (answers, written) = {
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
            cache: members,
            written: HashMap::new(),
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
        (answers, t.written)
    };
    // Reached only when every job succeeded; a `?` above dropped `txn`, which aborts it.
    if let Err(e) = txn.commit() {
        // Whether the file holds these members now is unknown: their next read goes to the file.
        for key in written.keys() {
            members.forget(key);
        }
        return Err(unavailable(e));
    }
    for (key, rec) in written {
        members.put(key, Arc::new(rec));
    }
    Ok(answers)
}
