//! Settling, previewing and reversing claims: the orchestration of ARCHITECTURE.md's flow, the effects
//! around the pure steps of `plan.rs`. Validate (nothing written on a bad request) → idempotency check
//! → price with the service location's catalogue → load the member → apply the insured region's policy
//! → plan → commit atomically; a version conflict reloads and recomputes, a bounded number of times.

use crate::ids::{SetlIds, idempotency_key, shard_of, shard_of_setl_id};
use crate::institutions::InstitutionList;
use crate::limits::{MAX_COMMIT_ATTEMPTS, MAX_TEXT_LEN, STORE_OUTAGE_PATIENCE};
use crate::metrics::{self, M};
use crate::plan;
use crate::remote::CallCtx;
use crate::router::{PolicyCall, Router, Routing};
use crate::store::*;
use crate::wire;
use chrono::{Datelike, Utc};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self, Violations};
use opentelemetry::KeyValue;
use prost::Message;
use proto::v1 as pb;
use region_adapter::Benefit;
use sha2::{Digest, Sha256};
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
}

pub(crate) fn content_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn decode(rec: &SettlementRecord) -> Result<pb::Settlement, ServiceError> {
    pb::Settlement::decode(rec.message.as_slice())
        .map_err(|e| ServiceError::Internal(format!("stored settlement {} unreadable: {e}", rec.setl_id)))
}

/// Pause before retry `attempt` after a conflict: 0.1 ms, 0.2 ms, … capped at 6.4 ms, with jitter from
/// the clock so that two replicas hitting the same member do not retry in lockstep.
async fn conflict_pause(attempt: u32) {
    let base_us = 100u64 << attempt.min(6);
    let jitter_us = (Utc::now().timestamp_subsec_nanos() as u64 / 1_000) % base_us.max(1);
    tokio::time::sleep(std::time::Duration::from_micros(base_us + jitter_us)).await;
}

/// The one answer for a settlement id that does not exist, or that the caller may not see: the same
/// status, message and field either way, so the answer never tells which (see grpc.rs).
pub fn settlement_not_found(setl_id: &str) -> ServiceError {
    ServiceError::NotFound { what: format!("settlement {setl_id}"), field: "setl_id".into() }
}

pub(crate) fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
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
        Arc::new(Clearinghouse { store, router, institutions, ids: SetlIds::new(), visit_ttl_secs, supervise })
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

    /// A claim without `hosp_lv` (a HIS does not send its own level) with the level of its institution
    /// from the institution lists; `None` when the claim has a level or its code is malformed (the
    /// claim's validation says so).
    pub(crate) async fn with_listed_level(&self, claim: &pb::Claim) -> Result<Option<pb::Claim>, ServiceError> {
        // A pharmacy fill (41) needs no level of its own.
        if claim.hosp_lv != 0 || claim.med_type == "41" || region_adapter::codes::parse_fixmedins_code(&claim.fixmedins_code).is_none() {
            return Ok(None);
        }
        let code = &claim.fixmedins_code;
        let found = crate::institutions::find(&self.store, &self.institutions, code).await?;
        match found {
            None => Err(ServiceError::field(
                "fixmedins_code",
                format!(
                    "{code} is on no institution list of its service location: send hosp_lv, or have the region's platform upsert the institution"
                ),
            )),
            Some(i) if i.hosp_lv == 0 => {
                Err(ServiceError::field("hosp_lv", format!("{code} is a retail pharmacy, which has no level of its own: send hosp_lv")))
            }
            Some(i) => Ok(Some(pb::Claim { hosp_lv: i.hosp_lv, ..claim.clone() })),
        }
    }

    /// Settles (record = true) or previews (record = false) a claim.
    pub async fn settle(&self, ctx: &CallCtx, claim: &pb::Claim, record: bool) -> Result<pb::Settlement, ServiceError> {
        let r = self.settle_inner(ctx, claim, record).await;
        let count = |outcome: &'static str| count_settlement(&claim.insuplc_admdvs, &claim.mdtrt_admdvs, outcome);
        match &r {
            Ok(_) if !record => count("previewed"),
            // Settled and replayed answers were counted where the store answered.
            Ok(s) => tracing::debug!(setl_id = %s.setl_id, clr_date = %s.clr_date, "settled"),
            Err(e) => {
                if matches!(e, ServiceError::Unavailable(_) | ServiceError::Internal(_)) {
                    tracing::warn!(error = %e, "claim failed");
                }
                count("refused")
            }
        }
        r
    }

    async fn settle_inner(&self, ctx: &CallCtx, claim: &pb::Claim, record: bool) -> Result<pb::Settlement, ServiceError> {
        let routing = self.router.current();
        let now = Utc::now().with_timezone(&crate::calendar::shanghai());
        // The idempotency hash is of the claim as sent, before a listed level fills `hosp_lv`.
        let hash = content_hash(&claim.encode_to_vec());
        let listed = self.with_listed_level(claim).await?;
        let claim = listed.as_ref().unwrap_or(claim);
        let vc = wire::validate_claim(claim, &|a| routing.knows(a), now)?;
        let shard = shard_of(&claim.insuplc_admdvs, &claim.psn_no);
        let idem_key = idempotency_key(&claim.mdtrt_admdvs, &claim.msgid);
        // The member and the msgid's stored answer in one round trip; a resend is answered from the store
        // before anything is computed.
        let (first_member, first_read) = if record {
            self.store
                .load_member_and_idempotency(&vc.member_key(), shard, &idem_key)
                .instrument(tracing::debug_span!("store.load_member"))
                .await?
        } else {
            (
                self.store.load_member(&vc.member_key()).instrument(tracing::debug_span!("store.load_member")).await?.map(Arc::new),
                MsgidRead::Unread,
            )
        };
        if let MsgidRead::Stored(idem) = first_read {
            let done = self.stored_answer(idem, &idem_key, &hash).await?;
            count_settlement(&claim.insuplc_admdvs, &claim.mdtrt_admdvs, "replayed");
            return Ok(done);
        }
        let idem = record.then_some((idem_key.as_str(), &hash));
        match self.compute_and_commit(ctx, &routing, &vc, first_member, shard, idem).await {
            // The member came from a cache, without the msgid's stored answer: a resend is answered as it
            // was, never refused.
            Err(e)
                if record
                    && first_read == MsgidRead::Unread
                    && !matches!(e, ServiceError::Unavailable(_) | ServiceError::IdempotencyMismatch(_)) =>
            {
                match self.replay(shard, &idem_key, &hash).await {
                    Ok(Some(done)) => {
                        count_settlement(&claim.insuplc_admdvs, &claim.mdtrt_admdvs, "replayed");
                        Ok(done)
                    }
                    _ => Err(e),
                }
            }
            r => r,
        }
    }

    /// Prices the claim, applies the insured region's policy and commits the settlement, computing again
    /// from a fresh read of the member while a commit finds it changed. `idem` (the idempotency key and
    /// the claim's content hash) is `None` for a preview, which is answered without a commit.
    async fn compute_and_commit(
        &self,
        ctx: &CallCtx,
        routing: &Routing,
        vc: &wire::ValidClaim,
        mut first_member: Option<Arc<MemberRecord>>,
        shard: u16,
        idem: Option<(&str, &[u8; 32])>,
    ) -> Result<pb::Settlement, ServiceError> {
        let lines = vc.line_inputs();
        let priced = self
            .router
            .price(ctx, routing, vc.mdtrt, vc.visit_date, &lines)
            .instrument(tracing::debug_span!("pricing", region = %vc.mdtrt, route = %routing.route_name(vc.mdtrt), lines = lines.len()))
            .await?;
        let visit = vc.visit();
        let benefit = Benefit::of(&visit)?.key();
        let year = vc.visit_date.year();
        let key = idem.map(|(idem_key, hash)| IdemCtx { idem_key, hash, msgid: &vc.msgid, until: ctx.store_patience() });
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            if attempt > 0 {
                M.commit_retries.add(1, &[]);
            }
            // Read: the member (already read on the first attempt) and the family payer.
            let member = match attempt {
                0 => first_member.take(),
                _ => self.store.load_member(&vc.member_key()).instrument(tracing::debug_span!("store.load_member")).await?.map(Arc::new),
            }
            .ok_or_else(|| ServiceError::NotFound { what: "member".into(), field: "psn_no".into() })?;
            if let Some(c) = &member.closed {
                return Err(crate::closure::closed_error(c));
            }
            let payer = match &vc.acct_payer {
                None => None,
                Some(p) => Some(
                    self.store
                        .load_member(&MemberKey::new(&vc.insured.to_string(), p))
                        .await?
                        .ok_or_else(|| ServiceError::NotFound { what: "account payer".into(), field: "acct_payer_psn_no".into() })?,
                ),
            };
            if let Some(p) = &payer {
                if let Some(c) = &p.closed {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "acct_payer_psn_no: the account payer's personal account was closed on {} ({}); it pays nothing",
                        c.date, c.reason
                    )));
                }
                plan::check_family_payer(vc, p)?;
            }
            // Compute: the insured region's policy (in process or a remote adapter).
            let pm = plan::policy_member(&member, payer.as_ref(), vc.visit_date, &benefit)?;
            let policy = PolicyCall {
                insured: vc.insured,
                priced: &priced.priced,
                member: pm.member.facts(),
                state: pm.state,
                account: Some(pm.account),
                visit,
            };
            let outcome = self
                .router
                .apply_policy(ctx, routing, &policy)
                .instrument(tracing::debug_span!("policy", region = %vc.insured, route = %routing.route_name(vc.insured), attempt))
                .await?;
            // Supervision's flags, from the insured region's thresholds and the member's recent visits.
            let flags = self.supervision_on().then(|| {
                let terms = crate::supervision::terms_of(&routing.rules, vc.insured);
                crate::supervision::flags(terms, vc, &priced.priced, &outcome.settled.amounts, &member.recent)
            });
            let Some(key) = &key else {
                let mut preview = plan::settlement_pb(vc, &priced, &outcome, "", "", false);
                preview.flags = flags.unwrap_or_default();
                return Ok(preview);
            };
            // Plan (pure) and commit.
            let today = crate::calendar::today();
            let clr_date = self.store.open_window(shard, today).await?;
            let setl_id = self.ids.next(shard, now_ms());
            let planned = plan::plan_settlement(&plan::SettlementInputs {
                claim: vc,
                priced: &priced,
                outcome: &outcome,
                member: &member,
                payer: payer.as_ref(),
                shard,
                setl_id: &setl_id,
                clr_date,
                content_hash: *key.hash,
                benefit: &benefit,
                year,
                flags: flags.as_deref(),
            });
            // The member as read is no longer needed: a store that caches it updates its entry in place
            // rather than copying it.
            drop((member, payer));
            if let Some(answer) = self.commit_attempt(planned, today, key, attempt).await? {
                return Ok(answer);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    /// The stored answer for an idempotency key: the settlement when the content matches,
    /// `IdempotencyMismatch` when it does not, `None` when the key is new.
    pub(crate) async fn replay(&self, shard: u16, idem_key: &str, hash: &[u8; 32]) -> Result<Option<pb::Settlement>, ServiceError> {
        match self.store.lookup_idempotency(shard, idem_key).await? {
            None => Ok(None),
            Some(idem) => self.stored_answer(idem, idem_key, hash).await.map(Some),
        }
    }

    /// Resolves a commit whose outcome is unknown (the store failed while it ran): re-reads the
    /// idempotency key until the store answers or `key.until` passes. `Ok(Some)`: it committed (the
    /// stored answer); `Ok(None)`: it did not, commit again.
    async fn resolve_unknown(&self, shard: u16, key: &IdemCtx<'_>) -> Result<Option<pb::Settlement>, ServiceError> {
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
    async fn stored_answer(&self, idem: IdempotencyRecord, idem_key: &str, hash: &[u8; 32]) -> Result<pb::Settlement, ServiceError> {
        if &idem.content_hash != hash {
            let msgid = idem_key.split_once(':').map_or(idem_key, |(_, m)| m);
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
        planned: plan::Planned,
        today: chrono::NaiveDate,
        key: &IdemCtx<'_>,
        attempt: u32,
    ) -> Result<Option<pb::Settlement>, ServiceError> {
        let plan::Planned { commit: c, answer } = planned;
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

    /// Reverses a settlement (2208). `authorize` sees the original's (`insuplc_admdvs`, `mdtrt_admdvs`)
    /// before anything else is read back or written.
    pub async fn reverse(
        &self,
        req: &pb::ReverseClaimRequest,
        authorize: &(dyn Fn(&str, &str) -> Result<(), ServiceError> + Sync),
    ) -> Result<pb::Settlement, ServiceError> {
        let mut v = Violations::default();
        let shard = shard_of_setl_id(&req.setl_id);
        if shard.is_none() {
            v.add("setl_id", "malformed settlement id");
        }
        fields::check_msgid(&mut v, "msgid", &req.msgid);
        if req.reason.chars().count() > MAX_TEXT_LEN {
            v.add("reason", format!("at most {MAX_TEXT_LEN} characters"));
        }
        v.into_result(())?;
        let hash = content_hash(&req.encode_to_vec());
        let until = Instant::now() + STORE_OUTAGE_PATIENCE;
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            // Read: the original (authorized before anything else is read or written), the msgid's
            // stored answer, the paying member.
            let orig = self.store.get_settlement(&req.setl_id).await?.ok_or_else(|| settlement_not_found(&req.setl_id))?;
            authorize(&orig.insuplc_admdvs, &orig.mdtrt_admdvs)?;
            let idem_key = idempotency_key(&orig.mdtrt_admdvs, &req.msgid);
            if let Some(done) = self.replay(shard.unwrap_or(0), &idem_key, &hash).await? {
                return Ok(done);
            }
            let decoded = decode(&orig)?;
            let payer = self
                .store
                .load_member(&plan::paying_member(&decoded))
                .await?
                .ok_or_else(|| ServiceError::Internal("paying member of a stored settlement is missing".into()))?;
            // Plan (pure) and commit.
            let today = crate::calendar::today();
            let member_shard = shard_of(&decoded.insuplc_admdvs, &decoded.psn_no);
            let clr_date = self.store.open_window(member_shard, today).await?;
            let setl_id = self.ids.next(member_shard, now_ms());
            let planned = plan::plan_reversal(&plan::ReversalInputs {
                request: req,
                original: &orig,
                decoded: &decoded,
                payer: &payer,
                shard: member_shard,
                setl_id: &setl_id,
                clr_date,
                content_hash: hash,
                now: Utc::now().with_timezone(&crate::calendar::shanghai()).fixed_offset(),
            })?;
            let key = IdemCtx { idem_key: &idem_key, hash: &hash, msgid: &req.msgid, until };
            if let Some(answer) = self.commit_attempt(planned, today, &key, attempt).await? {
                return Ok(answer);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    pub async fn get_settlement(&self, setl_id: &str) -> Result<pb::Settlement, ServiceError> {
        if shard_of_setl_id(setl_id).is_none() {
            return Err(ServiceError::field("setl_id", "malformed settlement id"));
        }
        let rec = self.store.get_settlement(setl_id).await?.ok_or_else(|| settlement_not_found(setl_id))?;
        let mut s = decode(&rec)?;
        s.reversed_by_setl_id = rec.reversed_by.unwrap_or_default();
        Ok(s)
    }
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
fn count_settlement(insured: &str, mdtrt: &str, outcome: &'static str) {
    let [i, m] = metrics::pair(insured, mdtrt);
    M.settlements.add(1, &[i, m, KeyValue::new("outcome", outcome)]);
}
