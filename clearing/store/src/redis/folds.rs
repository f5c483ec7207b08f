//! Folding the shards' logs (window journal entries, supervision deltas) into the window totals and
//! the month's indicators, in the background and before every read of them.

use super::*;

impl RedisStore {
    /// Folds every shard's pending totals of `date` into the window-wide totals (exactly once, in
    /// order per shard). Run in the background during the day so that netting reads ~pairs, not
    /// shards × pairs; and before reading totals, so they are always complete.
    pub async fn fold_window(&self, date: NaiveDate) -> Result<(), StoreError> {
        self.durability.gate.check()?;
        self.each_shard(FOLD_CONCURRENCY, move |store, shard| async move { store.fold_shard(date, shard).await }).await.map(|_| ())
    }

    pub(crate) async fn fold_shard(&self, date: NaiveDate, shard: u16) -> Result<(), StoreError> {
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
    pub(crate) async fn fold_with(&self, shard: u16, k: &FoldKeys, shape: Shape, apply: &Script) -> Result<(), StoreError> {
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
    pub(crate) async fn read_sums_fold(&self, fold: &str) -> Result<(Option<String>, Vec<(String, i64)>), StoreError> {
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
    pub(crate) async fn read_log_fold(
        &self,
        fold: &str,
        row_fields: RowFields,
    ) -> Result<(Option<String>, Vec<(String, i64)>), StoreError> {
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
}

/// A shard fold (`<insured>|<mdtrt>|<kind>` fields written by commits) in the compact window-wide
/// layout: per pair only `p:<insured>|<mdtrt>|n` (count) and `|o` (owed = fund + account); per
/// service location `d:<mdtrt>|{n,e,m,f,a}`; for the window `t|{n,e,m,f,a}`. Netting then reads two
/// fields per region pair.
pub(crate) fn compact(fields: &[(String, i64)]) -> Result<Vec<(String, String)>, StoreError> {
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
pub(crate) type Shape = fn(&[(String, i64)]) -> Result<Vec<(String, String)>, StoreError>;

/// The `<key>|<measure>` fields one row of a log adds.
pub(crate) type RowFields = fn(&[u8]) -> Result<Vec<(String, i64)>, StoreError>;

/// A journal entry as the window-totals fields of its pair (`compact` shapes them).
pub(crate) fn journal_fields(row: &[u8]) -> Result<Vec<(String, i64)>, StoreError> {
    let e = JournalEntry::decode(std::str::from_utf8(row).map_err(|_| StoreError::Corrupt("journal entry".into()))?)?;
    let p = format!("{}|{}", e.insuplc_admdvs, e.mdtrt_admdvs);
    let t = e.totals;
    Ok([("n", t.count), ("m", t.medfee_fen), ("f", t.fund_fen), ("a", t.acct_fen), ("e", 1)]
        .into_iter()
        .map(|(k, v)| (format!("{p}|{k}"), v))
        .collect())
}

/// A logged supervision delta as its indicator fields.
pub(crate) fn supervision_fields(row: &[u8]) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(SupervisionDelta::decode_logged(row)?.fields())
}

/// The keys of one fold (see `fold_with`).
pub(crate) struct FoldKeys {
    pub(crate) pending: String,
    pub(crate) fold: String,
    pub(crate) seq: String,
    pub(crate) applied: String,
    pub(crate) buckets: Vec<String>,
    /// The pending key is a log (a list), not a hash of sums: the fields one row adds.
    pub(crate) log: Option<RowFields>,
}

impl FoldKeys {
    /// The fold of shard's pending `name` of `period` into the sums `buckets`, recorded in `applied`:
    /// the pending key `<tag>:<name>:<period>`, its fold in flight `<name>f` and its fold sequence
    /// `<name>seq`.
    pub(crate) fn of(shard: u16, name: &str, period: &str, applied: String, buckets: Vec<String>, log: Option<RowFields>) -> FoldKeys {
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
pub(crate) fn as_packed(fields: &[(String, i64)]) -> Result<Vec<(String, String)>, StoreError> {
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
pub(crate) fn unpack(entity: &str, packed: &str, out: &mut Vec<(String, i64)>) -> Result<(), StoreError> {
    for part in packed.split(',').filter(|p| !p.is_empty()) {
        let (m, v) = part.split_once('=').ok_or_else(|| StoreError::Corrupt(format!("indicator {entity}: {part:?}")))?;
        let v: i64 = v.parse().map_err(|_| StoreError::Corrupt(format!("indicator {entity}: {part:?}")))?;
        out.push((format!("{entity}|{m}"), v));
    }
    Ok(())
}
