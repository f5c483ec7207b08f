//! The `Store` trait on the embedded store.

use super::*;

impl Store for EmbeddedStore {
    async fn load_member(&self, key: &MemberKey) -> Result<Option<MemberRecord>, StoreError> {
        let k = key.storage_key();
        match self.members.get(&k) {
            Some(m) => Ok(Some(MemberRecord::clone(&m))),
            None => self.filed_member(&k),
        }
    }

    async fn load_member_and_idempotency(
        &self,
        key: &MemberKey,
        shard: u16,
        msgid: &str,
    ) -> Result<(Option<Arc<MemberRecord>>, MsgidRead), StoreError> {
        // A member the writer committed is in the cache as the file holds it; the commit checks the
        // msgid (and the version) anyway, so the msgid is not read here.
        let k = key.storage_key();
        if let Some(m) = self.members.get(&k) {
            return Ok((Some(m), MsgidRead::Unread));
        }
        let member = self.filed_member(&k)?.map(Arc::new);
        Ok((member, MsgidRead::of(self.lookup_idempotency(shard, msgid).await?)))
    }

    async fn upsert_member(&self, upsert: MemberUpsert) -> Result<MemberRecord, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Upsert(Box::new(upsert), tx), rx).await
    }

    async fn lookup_idempotency(&self, _shard: u16, idem_key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let read = |k: &str| self.read(IDEMPOTENCY, k, |b| serde_json::from_slice(b).map_err(corrupt));
        match read(idem_key)? {
            Some(r) => Ok(Some(r)),
            None => crate::ids::legacy_idempotency_key(idem_key).map_or(Ok(None), |old| read(&old)),
        }
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
        for e in self.journal_rows(clr_date)? {
            sums.add(&e.totals);
        }
        Ok(sums)
    }

    async fn window_journal(&self, clr_date: NaiveDate) -> Result<Vec<JournalEntry>, StoreError> {
        let mut out = self.journal_rows(clr_date)?;
        // By setl_id, as the rows were keyed before `journal_row` (shard, then time): the same order
        // for a day written by either build.
        out.sort_by(|a, b| a.setl_id.cmp(&b.setl_id));
        Ok(out)
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
}

impl crate::backend::Primitives for EmbeddedStore {
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
