//! Cross-shard family pay on a cluster: reserve on the payer's shard, commit on the patient's, then
//! finalize or release; a sweeper resolves what a crash left behind.

use super::*;

/// A hold as stored on the payer's shard.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hold {
    pub(crate) payer: MemberKey,
    pub(crate) delta_fen: i64,
    pub(crate) patient_shard: u16,
    pub(crate) idem_key: String,
    pub(crate) setl_id: String,
    pub(crate) created_ms: i64,
}

impl RedisStore {
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
    pub(crate) async fn resolve_by_fence(&self, shard: u16, id: &str, hold: &Hold) -> Result<&'static str, StoreError> {
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

    pub(crate) async fn settle_hold(&self, shard: u16, id: &str, hold: &Hold, action: &str) -> Result<(), StoreError> {
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

    /// Reserves each payer in another shard (`hold.lua`), recording the holds in `holds`; the refusal
    /// when a payer changed or its balance no longer covers the debit.
    pub(crate) async fn take_holds(
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
}

/// What is known of the commit that cross-shard holds belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldFate {
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
pub(crate) struct Holds {
    pub(crate) store: RedisStore,
    pub(crate) setl_id: String,
    pub(crate) held: Vec<(u16, Hold)>,
    pub(crate) fate: HoldFate,
}

impl Holds {
    pub(crate) fn new(store: &RedisStore, setl_id: &str) -> Holds {
        Holds { store: store.clone(), setl_id: setl_id.to_string(), held: Vec::new(), fate: HoldFate::NotSent }
    }

    /// Finalizes or releases every hold now; whatever is left after an error is resolved by `Drop`.
    pub(crate) async fn resolve(mut self, action: &'static str) -> Result<(), StoreError> {
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
