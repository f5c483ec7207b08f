//! One settlement commit: the open window, the msgid claim, and the `commit.lua` invocation.

use super::*;

pub(crate) fn date_list(skipped: &[NaiveDate]) -> String {
    skipped.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
}

/// An idempotency key's value: `<content hash hex> <setl_id>`, or FENCED (a commit that never happened).
pub(crate) fn parse_idempotency(v: Option<String>) -> Result<Option<IdempotencyRecord>, StoreError> {
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
    pub(crate) async fn find_open_window(&self, shard: u16, today: NaiveDate) -> Result<NaiveDate, StoreError> {
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

    /// Claims the msgid for the member's shard (idempotent: the same shard may claim it again); `false`
    /// when another shard (another member) has it.
    pub(crate) async fn claim_msgid(&self, idem: &str, shard: u16) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let claimed: Option<String> =
            ::redis::cmd("SET").arg(msgid_index_key(idem)).arg(shard).arg("NX").arg("GET").query_async(&mut conn).await.map_err(err)?;
        Ok(claimed.is_none_or(|owner| owner == shard.to_string()))
    }

    /// The `commit.lua` invocation of a commit (keys and arguments as the script documents them).
    pub(crate) fn commit_invocation<'s>(
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
        // The msgid's key before issue 29 (or the key again): an answer stored under it still answers.
        let legacy = crate::ids::legacy_idempotency_key(idem).unwrap_or_else(|| idem.to_string());
        inv.key(idem_key(c.shard, &legacy));
        inv.arg(if sv.month.is_empty() { String::new() } else { sv.encode_logged() });
        inv.arg(sv.flagged.as_deref().unwrap_or("")).arg(sv.unflag.as_deref().unwrap_or(""));
        Ok(inv)
    }
}
