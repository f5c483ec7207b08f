//! The `Store` trait on Redis.

use super::*;

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
            identity: u.identity.clone(),
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
        let Some(old) = crate::ids::legacy_idempotency_key(key) else {
            return parse_idempotency(self.query(::redis::cmd("GET").arg(idem_key(shard, key))).await?);
        };
        // The key, and the key before issue 29 (same shard, same slot), in one round trip.
        let (new, old): (Option<String>, Option<String>) =
            self.query(::redis::cmd("MGET").arg(idem_key(shard, key)).arg(idem_key(shard, &old))).await?;
        Ok(parse_idempotency(new)?.or(parse_idempotency(old)?))
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
        let old = crate::ids::legacy_idempotency_key(msgid).unwrap_or_else(|| msgid.to_string());
        pipe.cmd("HGETALL").arg(&k).cmd("MGET").arg(idem_key(shard, msgid)).arg(idem_key(shard, &old));
        let (fields, (idem, legacy)): (HashMap<String, String>, (Option<String>, Option<String>)) = self.query_pipe(&pipe).await?;
        let m = member_from_fields(key, fields)?.map(Arc::new);
        if let Some(m) = &m {
            self.members.put(k, m.clone());
        }
        Ok((m, MsgidRead::of(parse_idempotency(idem)?.or(parse_idempotency(legacy)?))))
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
        let idem = crate::ids::idempotency_key(&s.mdtrt_admdvs, &s.fixmedins_code, &s.msgid);
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
}

impl crate::backend::Primitives for RedisStore {
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
