//! What each job does inside the writer's transaction: a commit, an upsert, a meta operation.

use super::*;

pub(crate) fn apply_commit(t: &mut Tables<'_>, c: &Commit, today: NaiveDate) -> Result<CommitOutcome, StoreError> {
    let s = &c.settlement;
    let idem_key = idempotency_key(s);
    // ---- checks: nothing is written unless all pass ----
    let stored = match get_json::<IdempotencyRecord>(&t.idempotency, &idem_key)? {
        Some(idem) => Some(idem),
        None => match crate::ids::legacy_idempotency_key(&idem_key) {
            Some(old) => get_json::<IdempotencyRecord>(&t.idempotency, &old)?,
            None => None,
        },
    };
    if let Some(idem) = stored {
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
        let Some(rec) = t.member(&key)? else {
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
        t.put_member(&key, rec)?;
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
    t.put(TableId::Journal, &journal_row(s.clr_date, &s.setl_id), JournalEntry::of(s).encode().as_bytes())?;
    apply_supervision(t, s)?;
    Ok(CommitOutcome::Committed)
}

/// The idempotency key of a settlement: the msgid within its sender's scope (see `ids`).
pub(crate) fn idempotency_key(s: &SettlementRecord) -> String {
    crate::ids::idempotency_key(&s.mdtrt_admdvs, &s.fixmedins_code, &s.msgid)
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
        identity: u.identity.clone(),
    }
}

pub(crate) fn apply_upsert(t: &mut Tables<'_>, u: &MemberUpsert) -> Result<MemberRecord, StoreError> {
    let key = u.key.storage_key();
    let existing = t.member(&key)?;
    if let Some(c) = existing.as_ref().and_then(|r| r.closed.clone()) {
        return Err(StoreError::Closed(c));
    }
    let rec = upserted(existing, u);
    t.put_member(&key, rec.clone())?;
    Ok(rec)
}

pub(crate) fn apply_meta(t: &mut Tables<'_>, op: &MetaOp) -> Result<String, StoreError> {
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
            let Some(mut rec) = t.member(&k)? else { return Ok("-1".into()) };
            if rec.closed.is_some() {
                return Ok("-2".into());
            }
            if let Some(before) = rec.credits.get(month) {
                return Ok(format!("0:{before}"));
            }
            rec.credits.insert(month.clone(), *fen);
            rec.acct_balc_fen += fen;
            rec.version += 1;
            let balance = rec.acct_balc_fen;
            t.put_member(&k, rec)?;
            Ok(format!("1:{balance}"))
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

pub(crate) fn parse_credit(r: &str) -> Result<CreditOutcome, StoreError> {
    let bad = || corrupt(format!("credit answer {r:?}"));
    match r.split_once(':') {
        None if r == "-1" => Ok(CreditOutcome::Missing),
        None if r == "-2" => Ok(CreditOutcome::Closed),
        Some(("0", f)) => Ok(CreditOutcome::AlreadyCredited { fen: f.parse().map_err(|_| bad())? }),
        Some(("1", b)) => Ok(CreditOutcome::Credited { balance_fen: b.parse().map_err(|_| bad())? }),
        _ => Err(bad()),
    }
}
