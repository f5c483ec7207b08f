//! The clearing core: the `Clearinghouse` every gRPC service shares (the store, the routing to rule
//! packs and adapters, the institution lists, settings), and the one commit loop every write of money
//! goes through (`commit_attempt`: a settlement, a reversal, an account closure), with its idempotency.

use crate::ids::SetlIds;
use crate::metrics::{self, M};
pub use crate::record::Settlement;
use crate::registry::institutions::InstitutionList;
use crate::routing::router::Router;
use crate::store::*;
use chrono::Utc;
use clearing_edge::error::ServiceError;
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The clearing core, shared by every gRPC service and generic over the store.
pub struct Clearinghouse<S: Store> {
    pub store: S,
    pub router: Router,
    /// The designated institutions `clearing` started with (upserted ones are in the store).
    pub institutions: InstitutionList,
    pub(crate) ids: SetlIds,
    /// How long a registered visit may stay open, seconds (`--visit-ttl-secs`).
    visit_ttl_secs: std::sync::atomic::AtomicU64,
    /// Supervision's flags and indicators are kept (`--supervision`, on by default).
    supervise: std::sync::atomic::AtomicBool,
    /// Members by certificate (1101): the keyed-hash index's key.
    pub(crate) identity: crate::registry::identity::IdentityIndex,
    /// One settlement at a time per member in this replica (`turns.rs`).
    pub(crate) turns: crate::turns::MemberTurns,
}

pub(crate) use crate::record::decode;

/// Pause before retry `attempt` after a conflict: 0.1 ms, 0.2 ms, … capped at 6.4 ms, with jitter from
/// the clock so that two replicas hitting the same member do not retry in lockstep.
pub(crate) async fn conflict_pause(attempt: u32) {
    let base_us = 100u64 << attempt.min(6);
    let jitter_us = (Utc::now().timestamp_subsec_nanos() as u64 / 1_000) % base_us.max(1);
    tokio::time::sleep(std::time::Duration::from_micros(base_us + jitter_us)).await;
}

/// The one answer for a settlement id that does not exist, or that the caller may not see: the same
/// status, message and field either way, so the answer never tells which (see grpc.rs).
pub fn settlement_not_found(setl_id: &str) -> ServiceError {
    ServiceError::NotFound { what: format!("settlement {setl_id}"), field: "setl_id".into() }
}

/// The clock of settlement ids: `calendar::now_ms`, never before 1970.
pub(crate) fn id_clock() -> u64 {
    crate::calendar::now_ms().max(0) as u64
}

impl<S: Store> Clearinghouse<S> {
    /// With the bundled sample institution list.
    pub fn new(store: S, router: Router) -> Arc<Self> {
        let list = InstitutionList::load(None).expect("the bundled institution list is checked by the tests");
        Self::with_institutions(store, router, list)
    }

    pub fn with_institutions(store: S, router: Router, institutions: InstitutionList) -> Arc<Self> {
        let visit_ttl_secs = std::sync::atomic::AtomicU64::new(crate::limits::DEFAULT_VISIT_TTL.as_secs());
        let supervise = std::sync::atomic::AtomicBool::new(true);
        Arc::new(Clearinghouse {
            store,
            router,
            institutions,
            ids: SetlIds::new(),
            visit_ttl_secs,
            supervise,
            identity: Default::default(),
            turns: Default::default(),
        })
    }

    /// The monthly account credit runs (`registry::credits`), over this clearinghouse's store and rules.
    pub fn credits(&self) -> crate::registry::credits::Credits<'_, S> {
        crate::registry::credits::Credits { store: &self.store, router: &self.router }
    }

    /// Turns supervision's flags and indicators on or off (`--supervision`).
    pub fn set_supervision(&self, on: bool) {
        self.supervise.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn supervision_on(&self) -> bool {
        self.supervise.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_visit_ttl(&self, ttl: Duration) {
        self.visit_ttl_secs.store(ttl.as_secs().max(1), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn visit_ttl(&self) -> Duration {
        Duration::from_secs(self.visit_ttl_secs.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl<S: Store> Clearinghouse<S> {
    /// The stored answer for an idempotency key: the settlement when the content matches,
    /// `IdempotencyMismatch` when it does not, `None` when the key is new.
    pub(crate) async fn replay(&self, shard: u16, idem_key: &str, hash: &[u8; 32]) -> Result<Option<Settlement>, ServiceError> {
        match self.store.lookup_idempotency(shard, idem_key).await? {
            None => Ok(None),
            Some(idem) => self.stored_answer(idem, idem_key, hash).await.map(Some),
        }
    }

    /// Resolves a commit whose outcome is unknown (the store failed while it ran): re-reads the
    /// idempotency key until the store answers or `key.until` passes. `Ok(Some)`: it committed (the
    /// stored answer); `Ok(None)`: it did not, commit again.
    async fn resolve_unknown(&self, shard: u16, key: &IdemCtx<'_>) -> Result<Option<Settlement>, ServiceError> {
        let mut pause = Duration::from_millis(50);
        loop {
            // A store read retries by itself while the store is away; bound it by what is left, so the
            // answer never comes after `key.until`.
            let left = key.until.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, self.replay(shard, key.idem_key, key.hash)).await;
            let read = read.unwrap_or_else(|_| Err(ServiceError::Unavailable("the store did not come back in time".into())));
            match read {
                Err(ServiceError::Unavailable(m)) => {
                    if Instant::now() + pause >= key.until {
                        return Err(ServiceError::Unavailable(m));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// The stored settlement an idempotency record names, if the content matches.
    pub(crate) async fn stored_answer(&self, idem: IdempotencyRecord, idem_key: &str, hash: &[u8; 32]) -> Result<Settlement, ServiceError> {
        if &idem.content_hash != hash {
            let msgid = idem_key.rsplit_once(':').map_or(idem_key, |(_, m)| m);
            return Err(ServiceError::IdempotencyMismatch(msgid.to_string()));
        }
        let rec = self
            .store
            .get_settlement(&idem.setl_id)
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("idempotency key names missing {}", idem.setl_id)))?;
        decode(&rec)
    }

    /// One commit attempt. `Ok(Some)` is the answer: `answer` when this attempt committed, the stored
    /// settlement when the msgid was already committed with the same content. `Ok(None)` means recompute
    /// and try again: a member changed, the window closed, the id was taken, the account moved, or the
    /// store failed and the commit is known not to have happened; it returns after a short, growing
    /// pause so that contending commits of one member spread out. A store failure whose outcome is
    /// unknown is resolved by re-reading the idempotency key, never by committing twice.
    pub(crate) async fn commit_attempt(
        &self,
        planned: Planned,
        today: chrono::NaiveDate,
        key: &IdemCtx<'_>,
        attempt: u32,
    ) -> Result<Option<Settlement>, ServiceError> {
        let Planned { commit: c, answer } = planned;
        let shard = c.shard;
        let reverses = c.reverses.clone();
        let (insured, mdtrt, totals) = (c.settlement.insuplc_admdvs.clone(), c.settlement.mdtrt_admdvs.clone(), c.settlement.totals);
        let outcome = self.store.commit(c, today).instrument(tracing::debug_span!("store.commit", attempt)).await;
        match outcome {
            Ok(CommitOutcome::Committed) => {
                count_settlement(&insured, &mdtrt, if reverses.is_some() { "reversed" } else { "settled" });
                let labels = metrics::pair(&insured, &mdtrt);
                M.fund_pay.add(totals.fund_fen, &labels);
                M.account_pay.add(totals.acct_fen, &labels);
                Ok(Some(answer))
            }
            Ok(CommitOutcome::Replayed(rec)) => {
                count_settlement(&insured, &mdtrt, "replayed");
                decode(&rec).map(Some)
            }
            Ok(CommitOutcome::IdempotencyMismatch) => Err(ServiceError::IdempotencyMismatch(key.msgid.to_string())),
            // The account was closed after it was read: nothing written.
            Ok(CommitOutcome::Closed) => Err(ServiceError::FailedPrecondition(
                "psn_no: the member's personal account is closed; nothing is settled or changed after closure".into(),
            )),
            Ok(CommitOutcome::AlreadyReversed) => Err(match reverses {
                Some(orig) => ServiceError::FailedPrecondition(format!("{orig} was already reversed")),
                None => ServiceError::Internal("settlement commit reported a reversal conflict".into()),
            }),
            Ok(CommitOutcome::OriginalMissing) => Err(match reverses {
                Some(orig) => settlement_not_found(&orig),
                None => ServiceError::Internal("settlement commit reported a missing original".into()),
            }),
            Ok(
                o @ (CommitOutcome::VersionConflict
                | CommitOutcome::WindowMoved
                | CommitOutcome::SetlIdTaken
                | CommitOutcome::InsufficientBalance),
            ) => {
                let reason = match o {
                    CommitOutcome::VersionConflict => "member_changed",
                    CommitOutcome::WindowMoved => "window_moved",
                    CommitOutcome::SetlIdTaken => "id_taken",
                    _ => "balance_moved",
                };
                M.commit_conflicts.add(1, &[KeyValue::new("reason", reason)]);
                tracing::debug!(attempt, reason, "commit conflict; recomputing");
                conflict_pause(attempt).await;
                Ok(None)
            }
            // Not known to be committed. Wait for the store (bounded), then ask it: committed → the
            // stored answer; not committed → recompute and commit again (the msgid is still unused).
            Err(StoreError::Unavailable(m)) => {
                M.store_errors.add(1, &[KeyValue::new("op", "commit")]);
                tracing::debug!(attempt, error = %m, "commit outcome unknown; resolving");
                match self.resolve_unknown(shard, key).await {
                    Ok(Some(stored)) => Ok(Some(stored)),
                    Ok(None) => Ok(None),
                    Err(ServiceError::Unavailable(_)) => Err(ServiceError::Unavailable(m)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                M.store_errors.add(1, &[KeyValue::new("op", "commit")]);
                Err(e.into())
            }
        }
    }
}

/// A commit to make and the answer to give once it is made.
pub struct Planned {
    pub commit: Commit,
    pub answer: Settlement,
}

/// What one request's commits share: its idempotency key and content, and how long it may wait for a
/// store that went away.
pub(crate) struct IdemCtx<'a> {
    pub(crate) idem_key: &'a str,
    pub(crate) hash: &'a [u8; 32],
    pub(crate) msgid: &'a str,
    /// Give up waiting for the store at this instant (the caller's deadline or `STORE_OUTAGE_PATIENCE`).
    pub(crate) until: Instant,
}

/// One claim outcome in `clearing.settlements`.
pub(crate) fn count_settlement(insured: &str, mdtrt: &str, outcome: &'static str) {
    let [i, m] = metrics::pair(insured, mdtrt);
    M.settlements.add(1, &[i, m, KeyValue::new("outcome", outcome)]);
}
