//! Settling, previewing and reversing claims: the orchestration of ARCHITECTURE.md's flow.
//! Validate (nothing written on a bad request) → idempotency check → price with the service
//! location's catalogue → load the member → apply the insured region's policy → commit atomically;
//! a version conflict reloads and recomputes, a bounded number of times.

use crate::error::ServiceError;
use crate::ids::{SetlIds, idempotency_key, shard_of, shard_of_setl_id};
use crate::limits::{MAX_COMMIT_ATTEMPTS, MAX_TEXT_LEN, STORE_OUTAGE_PATIENCE};
use crate::metrics::{self, M};
use crate::remote::CallCtx;
use crate::router::{PolicyOutcome, PricedClaim, Router};
use crate::store::*;
use crate::wire::{self, ValidClaim, Violations};
use chrono::{Datelike, Utc};
use opentelemetry::KeyValue;
use prost::Message;
use proto::v1 as pb;
use region_adapter::money::{fmt_ratio, fmt_yuan};
use region_adapter::{AccountSource, Admdvs, Benefit, Filing, MemberFacts, PsnType, YearState};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The clearing core, shared by every gRPC service and generic over the store.
pub struct Clearinghouse<S: Store> {
    pub store: S,
    pub router: Router,
    ids: SetlIds,
}

fn content_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn decode(rec: &SettlementRecord) -> Result<pb::Settlement, ServiceError> {
    pb::Settlement::decode(rec.message.as_slice())
        .map_err(|e| ServiceError::Internal(format!("stored settlement {} unreadable: {e}", rec.setl_id)))
}

/// Amount strings written by us, read back (reversals).
fn stored_fen(s: &str) -> Result<i64, ServiceError> {
    wire::signed_fen(s).ok_or_else(|| ServiceError::Internal(format!("stored amount {s:?} unreadable")))
}

/// Pause before retry `attempt` after a conflict: 0.1 ms, 0.2 ms, … capped at 6.4 ms, with jitter from
/// the clock so that two replicas hitting the same member do not retry in lockstep.
async fn conflict_pause(attempt: u32) {
    let base_us = 100u64 << attempt.min(6);
    let jitter_us = (Utc::now().timestamp_subsec_nanos() as u64 / 1_000) % base_us.max(1);
    tokio::time::sleep(std::time::Duration::from_micros(base_us + jitter_us)).await;
}

fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

impl<S: Store> Clearinghouse<S> {
    pub fn new(store: S, router: Router) -> Arc<Self> {
        Arc::new(Clearinghouse { store, router, ids: SetlIds::new() })
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
        let now = Utc::now().with_timezone(&crate::window::shanghai());
        let vc = wire::validate_claim(claim, &|a| routing.knows(a), now)?;
        let hash = content_hash(&claim.encode_to_vec());
        let shard = shard_of(&claim.insuplc_admdvs, &claim.psn_no);
        let idem_key = idempotency_key(&claim.mdtrt_admdvs, &claim.msgid);
        // The member and the msgid's stored answer in one round trip; a resend is answered from the store
        // before anything is computed.
        let (mut first_member, stored) = if record {
            self.store
                .load_member_and_idempotency(&vc.member_key(), shard, &idem_key)
                .instrument(tracing::debug_span!("store.load_member"))
                .await?
        } else {
            (self.store.load_member(&vc.member_key()).instrument(tracing::debug_span!("store.load_member")).await?, None)
        };
        if let Some(idem) = stored {
            let done = self.stored_answer(idem, &idem_key, &hash).await?;
            count_settlement(&claim.insuplc_admdvs, &claim.mdtrt_admdvs, "replayed");
            return Ok(done);
        }
        let lines = vc.line_inputs();
        let priced = self
            .router
            .price(ctx, &routing, vc.mdtrt, vc.visit_date, &lines)
            .instrument(tracing::debug_span!("pricing", region = %vc.mdtrt, route = %routing.route_name(vc.mdtrt), lines = lines.len()))
            .await?;
        let visit = vc.visit();
        let benefit = Benefit::of(&visit)?;
        let benefit_key = benefit.key();
        let year = vc.visit_date.year();
        let key = IdemCtx { idem_key: &idem_key, hash: &hash, msgid: &vc.msgid, until: ctx.store_patience() };
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            if attempt > 0 {
                M.commit_retries.add(1, &[]);
            }
            let member = if attempt == 0 {
                first_member.take()
            } else {
                self.store.load_member(&vc.member_key()).instrument(tracing::debug_span!("store.load_member")).await?
            }
            .ok_or_else(|| ServiceError::NotFound { what: "member".into(), field: "psn_no".into() })?;
            let payer = match &vc.acct_payer {
                None => None,
                Some(p) => {
                    let payer = self
                        .store
                        .load_member(&MemberKey::new(&vc.insured.to_string(), p))
                        .await?
                        .ok_or_else(|| ServiceError::NotFound { what: "account payer".into(), field: "acct_payer_psn_no".into() })?;
                    if !payer.mulaid_beneficiaries.iter().any(|b| b.psn_no == vc.psn_no) {
                        return Err(ServiceError::PermissionDenied(
                            "the account payer has not bound the patient for family mutual aid (家庭共济)".into(),
                            "acct_payer_psn_no".into(),
                        ));
                    }
                    Some(payer)
                }
            };
            let account = match &payer {
                Some(p) => AccountSource::Family { balance_fen: p.acct_balc_fen },
                None => AccountSource::Own { balance_fen: member.acct_balc_fen },
            };
            let filings: Vec<Filing> = member
                .filings
                .iter()
                .filter_map(|f| Some(Filing { mdtrt_admdvs: Admdvs::parse(&f.mdtrt_admdvs)?, begin: f.begndate, end: f.enddate }))
                .collect();
            let facts = MemberFacts {
                psn_type: PsnType::parse(&member.psn_type).ok_or_else(|| ServiceError::Internal("stored psn_type unreadable".into()))?,
                retire_date: member.retire_date,
                pooling_only: member.pooling_only,
                filings: &filings,
            };
            let state = member
                .accumulator(year, &benefit_key)
                .map(|a| YearState {
                    deductible_used_fen: a.deductible_used_fen,
                    fund_paid_fen: a.fund_paid_fen,
                    visits: a.visits.max(0) as u32,
                })
                .unwrap_or_default();
            let outcome = self
                .router
                .apply_policy(ctx, &routing, vc.insured, &priced.priced, &facts, state, Some(account), &visit)
                .instrument(tracing::debug_span!("policy", region = %vc.insured, route = %routing.route_name(vc.insured), attempt))
                .await?;
            if !record {
                return Ok(settlement_pb(&vc, &priced, &outcome, "", "", false));
            }
            let today = crate::window::today();
            let clr_date = self.store.open_window(shard, today).await?;
            let setl_id = self.ids.next(shard, now_ms());
            let msg = settlement_pb(&vc, &priced, &outcome, &setl_id, &clr_date.to_string(), true);
            let a = &outcome.settled.amounts;
            let d = &outcome.settled.delta;
            let mut members = vec![MemberChange {
                key: member.key.clone(),
                expected_version: Some(member.version),
                accumulator: Some(AccumulatorDelta {
                    year,
                    benefit: benefit_key.clone(),
                    deductible_used_fen: d.deductible_used_fen,
                    fund_paid_fen: d.fund_paid_fen,
                    visits: d.visits as i64,
                }),
                balance_delta_fen: if payer.is_none() { -d.account_debit_fen } else { 0 },
            }];
            if let Some(p) = &payer {
                members.push(MemberChange {
                    key: p.key.clone(),
                    expected_version: Some(p.version),
                    accumulator: None,
                    balance_delta_fen: -d.account_debit_fen,
                });
            }
            let record = SettlementRecord {
                setl_id: setl_id.clone(),
                msgid: vc.msgid.clone(),
                clr_date,
                insuplc_admdvs: vc.insured.to_string(),
                mdtrt_admdvs: vc.mdtrt.to_string(),
                message: msg.encode_to_vec(),
                content_hash: hash,
                totals: PairDelta { count: 1, medfee_fen: a.medfee_sumamt, fund_fen: a.fund_pay_sumamt, acct_fen: a.acct_pay },
                orig_setl_id: None,
                reversed_by: None,
            };
            let commit = Commit { shard, settlement: record, members, reverses: None };
            if let Some(answer) = self.commit_attempt(commit, today, &key, attempt, msg).await? {
                return Ok(answer);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    /// The stored answer for an idempotency key: the settlement when the content matches,
    /// `IdempotencyMismatch` when it does not, `None` when the key is new.
    async fn replay(&self, shard: u16, idem_key: &str, hash: &[u8; 32]) -> Result<Option<pb::Settlement>, ServiceError> {
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
            match self.replay(shard, key.idem_key, key.hash).await {
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
    async fn commit_attempt(
        &self,
        c: Commit,
        today: chrono::NaiveDate,
        key: &IdemCtx<'_>,
        attempt: u32,
        answer: pb::Settlement,
    ) -> Result<Option<pb::Settlement>, ServiceError> {
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
            Ok(CommitOutcome::AlreadyReversed) => Err(match reverses {
                Some(orig) => ServiceError::FailedPrecondition(format!("{orig} was already reversed")),
                None => ServiceError::Internal("settlement commit reported a reversal conflict".into()),
            }),
            Ok(CommitOutcome::OriginalMissing) => Err(match reverses {
                Some(orig) => ServiceError::NotFound { what: format!("settlement {orig}"), field: "setl_id".into() },
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
        wire::check_msgid(&mut v, "msgid", &req.msgid);
        if req.reason.chars().count() > MAX_TEXT_LEN {
            v.add("reason", format!("at most {MAX_TEXT_LEN} characters"));
        }
        v.into_result(())?;
        let hash = content_hash(&req.encode_to_vec());
        let until = Instant::now() + STORE_OUTAGE_PATIENCE;
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let orig = self
                .store
                .get_settlement(&req.setl_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound { what: format!("settlement {}", req.setl_id), field: "setl_id".into() })?;
            authorize(&orig.insuplc_admdvs, &orig.mdtrt_admdvs)?;
            let idem_key = idempotency_key(&orig.mdtrt_admdvs, &req.msgid);
            if let Some(done) = self.replay(shard.unwrap_or(0), &idem_key, &hash).await? {
                return Ok(done);
            }
            if orig.orig_setl_id.is_some() {
                return Err(ServiceError::FailedPrecondition(format!("{} is itself a reversal", orig.setl_id)));
            }
            if let Some(by) = &orig.reversed_by {
                return Err(ServiceError::FailedPrecondition(format!("{} was already reversed by {by}", orig.setl_id)));
            }
            let o = decode(&orig)?;
            let patient = MemberKey::new(&o.insuplc_admdvs, &o.psn_no);
            let payer_key =
                if o.acct_payer_psn_no.is_empty() { patient.clone() } else { MemberKey::new(&o.insuplc_admdvs, &o.acct_payer_psn_no) };
            let payer = self
                .store
                .load_member(&payer_key)
                .await?
                .ok_or_else(|| ServiceError::Internal("paying member of a stored settlement is missing".into()))?;
            let acct_pay = stored_fen(&o.acct_pay)?;
            let today = crate::window::today();
            let member_shard = shard_of(&o.insuplc_admdvs, &o.psn_no);
            let clr_date = self.store.open_window(member_shard, today).await?;
            let setl_id = self.ids.next(member_shard, now_ms());
            let msg = reversal_pb(&o, req, &setl_id, &clr_date.to_string(), payer.acct_balc_fen + acct_pay)?;
            let mut members = vec![MemberChange {
                key: patient.clone(),
                expected_version: None,
                accumulator: Some(AccumulatorDelta {
                    year: o.year as i32,
                    benefit: o.benefit.clone(),
                    deductible_used_fen: -stored_fen(&o.act_pay_dedc)?,
                    fund_paid_fen: -stored_fen(&o.hifp_pay)?,
                    visits: -1,
                }),
                balance_delta_fen: if payer_key == patient { acct_pay } else { 0 },
            }];
            if payer_key == patient {
                members[0].expected_version = Some(payer.version);
            } else {
                members.push(MemberChange {
                    key: payer_key,
                    expected_version: Some(payer.version),
                    accumulator: None,
                    balance_delta_fen: acct_pay,
                });
            }
            let record = SettlementRecord {
                setl_id: setl_id.clone(),
                msgid: req.msgid.clone(),
                clr_date,
                insuplc_admdvs: o.insuplc_admdvs.clone(),
                mdtrt_admdvs: o.mdtrt_admdvs.clone(),
                message: msg.encode_to_vec(),
                content_hash: hash,
                totals: PairDelta {
                    count: -1,
                    medfee_fen: -orig.totals.medfee_fen,
                    fund_fen: -orig.totals.fund_fen,
                    acct_fen: -orig.totals.acct_fen,
                },
                orig_setl_id: Some(orig.setl_id.clone()),
                reversed_by: None,
            };
            let commit = Commit { shard: member_shard, settlement: record, members, reverses: Some(orig.setl_id.clone()) };
            let key = IdemCtx { idem_key: &idem_key, hash: &hash, msgid: &req.msgid, until };
            if let Some(answer) = self.commit_attempt(commit, today, &key, attempt, msg).await? {
                return Ok(answer);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    pub async fn get_settlement(&self, setl_id: &str) -> Result<pb::Settlement, ServiceError> {
        if shard_of_setl_id(setl_id).is_none() {
            return Err(ServiceError::field("setl_id", "malformed settlement id"));
        }
        let rec = self
            .store
            .get_settlement(setl_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound { what: format!("settlement {setl_id}"), field: "setl_id".into() })?;
        let mut s = decode(&rec)?;
        s.reversed_by_setl_id = rec.reversed_by.unwrap_or_default();
        Ok(s)
    }
}

/// What one request's commits share: its idempotency key and content, and how long it may wait for a
/// store that went away.
struct IdemCtx<'a> {
    idem_key: &'a str,
    hash: &'a [u8; 32],
    msgid: &'a str,
    /// Give up waiting for the store at this instant (the caller's deadline or `STORE_OUTAGE_PATIENCE`).
    until: Instant,
}

/// One claim outcome in `clearing.settlements`.
fn count_settlement(insured: &str, mdtrt: &str, outcome: &'static str) {
    let [i, m] = metrics::pair(insured, mdtrt);
    M.settlements.add(1, &[i, m, KeyValue::new("outcome", outcome)]);
}

/// The wire settlement of a claim.
fn settlement_pb(
    vc: &ValidClaim,
    priced: &PricedClaim,
    outcome: &PolicyOutcome,
    setl_id: &str,
    clr_date: &str,
    recorded: bool,
) -> pb::Settlement {
    let s = &outcome.settled;
    let a = &s.amounts;
    let mut explanation = Vec::with_capacity(1 + outcome.explanation.len());
    explanation.push(priced.explanation.clone());
    explanation.extend(outcome.explanation.iter().cloned());
    pb::Settlement {
        setl_id: setl_id.into(),
        msgid: vc.msgid.clone(),
        psn_no: vc.psn_no.clone(),
        insuplc_admdvs: vc.insured.to_string(),
        mdtrt_admdvs: vc.mdtrt.to_string(),
        setl_time: vc.setl_time.to_rfc3339(),
        clr_date: clr_date.into(),
        medfee_sumamt: fmt_yuan(a.medfee_sumamt),
        fulamt_ownpay_amt: fmt_yuan(a.fulamt_ownpay_amt),
        overlmt_selfpay: fmt_yuan(a.overlmt_selfpay),
        preselfpay_amt: fmt_yuan(a.preselfpay_amt),
        inscp_scp_amt: fmt_yuan(a.inscp_scp_amt),
        act_pay_dedc: fmt_yuan(a.act_pay_dedc),
        hifp_pay: fmt_yuan(a.hifp_pay),
        pool_prop_selfpay: fmt_yuan(a.pool_prop_selfpay),
        fund_pay_sumamt: fmt_yuan(a.fund_pay_sumamt),
        psn_part_amt: fmt_yuan(a.psn_part_amt),
        acct_pay: fmt_yuan(a.acct_pay),
        acct_mulaid_pay: fmt_yuan(a.acct_mulaid_pay),
        psn_cash_pay: fmt_yuan(a.psn_cash_pay),
        balc: fmt_yuan(a.balc),
        refd_setl_flag: false,
        orig_setl_id: String::new(),
        lines: vc
            .lines
            .iter()
            .zip(&priced.priced.lines)
            .zip(&priced.names)
            .map(|((l, p), name)| pb::SettlementLine {
                hilist_code: l.code.clone(),
                chrgitm_lv: p.class.map(|c| c.code().to_string()).unwrap_or_default(),
                selfpay_prop: fmt_ratio(p.selfpay_prop_bp),
                det_item_fee_sumamt: fmt_yuan(p.amount_fen),
                fulamt_ownpay_amt: fmt_yuan(p.fulamt_ownpay_fen),
                overlmt_selfpay: fmt_yuan(p.overlmt_selfpay_fen),
                preselfpay_amt: fmt_yuan(p.preselfpay_fen),
                inscp_scp_amt: fmt_yuan(p.inscp_fen),
                hilist_name: name.clone(),
            })
            .collect(),
        explanation,
        fixmedins_code: vc.fixmedins_code.clone(),
        med_type: vc.med_type.code().into(),
        hosp_lv: vc.hosp_lv.get() as u32,
        ratio_hosp_lv: s.level.get() as u32,
        hifp_ratio: fmt_ratio(s.ratio_bp),
        benefit: s.benefit.key(),
        year: s.year as u32,
        psn_type: match s.member_class {
            region_adapter::MemberClass::InService => "11".into(),
            region_adapter::MemberClass::Retired => "12".into(),
        },
        recorded,
        acct_payer_psn_no: vc.acct_payer.clone().unwrap_or_default(),
        reversed_by_setl_id: String::new(),
        refd_reason: String::new(),
        dise_code: vc.dise_code.clone().unwrap_or_default(),
    }
}

fn negate(s: &str) -> Result<String, ServiceError> {
    Ok(fmt_yuan(-stored_fen(s)?))
}

/// The wire reversal of a stored settlement: every amount negated; `balc` is the paying account's
/// balance after the account pay is restored.
fn reversal_pb(
    o: &pb::Settlement,
    req: &pb::ReverseClaimRequest,
    setl_id: &str,
    clr_date: &str,
    balc_after_fen: i64,
) -> Result<pb::Settlement, ServiceError> {
    let mut lines = Vec::with_capacity(o.lines.len());
    for l in &o.lines {
        lines.push(pb::SettlementLine {
            det_item_fee_sumamt: negate(&l.det_item_fee_sumamt)?,
            fulamt_ownpay_amt: negate(&l.fulamt_ownpay_amt)?,
            overlmt_selfpay: negate(&l.overlmt_selfpay)?,
            preselfpay_amt: negate(&l.preselfpay_amt)?,
            inscp_scp_amt: negate(&l.inscp_scp_amt)?,
            ..l.clone()
        });
    }
    Ok(pb::Settlement {
        setl_id: setl_id.into(),
        msgid: req.msgid.clone(),
        setl_time: Utc::now().with_timezone(&crate::window::shanghai()).to_rfc3339(),
        clr_date: clr_date.into(),
        medfee_sumamt: negate(&o.medfee_sumamt)?,
        fulamt_ownpay_amt: negate(&o.fulamt_ownpay_amt)?,
        overlmt_selfpay: negate(&o.overlmt_selfpay)?,
        preselfpay_amt: negate(&o.preselfpay_amt)?,
        inscp_scp_amt: negate(&o.inscp_scp_amt)?,
        act_pay_dedc: negate(&o.act_pay_dedc)?,
        hifp_pay: negate(&o.hifp_pay)?,
        pool_prop_selfpay: negate(&o.pool_prop_selfpay)?,
        fund_pay_sumamt: negate(&o.fund_pay_sumamt)?,
        psn_part_amt: negate(&o.psn_part_amt)?,
        acct_pay: negate(&o.acct_pay)?,
        acct_mulaid_pay: negate(&o.acct_mulaid_pay)?,
        psn_cash_pay: negate(&o.psn_cash_pay)?,
        balc: fmt_yuan(balc_after_fen),
        refd_setl_flag: true,
        orig_setl_id: o.setl_id.clone(),
        lines,
        explanation: vec![format!(
            "reversal (撤销) of {}: every amount negated; accumulators and account restored; lands in window {clr_date}",
            o.setl_id
        )],
        recorded: true,
        reversed_by_setl_id: String::new(),
        refd_reason: req.reason.clone(),
        ..o.clone()
    })
}
