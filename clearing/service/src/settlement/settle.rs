//! Settling and previewing claims: the orchestration of ARCHITECTURE.md's flow, the effects
//! around the pure steps of `plan.rs`. Validate (nothing written on a bad request) → idempotency check
//! → price with the service location's catalogue → load the member → apply the insured region's policy
//! → plan → commit atomically; a version conflict reloads and recomputes, a bounded number of times.

use crate::claim::{self, ClaimDraft, ValidClaim};
use crate::core::*;
use crate::ids::{idempotency_key, shard_of};
use crate::limits::MAX_COMMIT_ATTEMPTS;
use crate::metrics::M;
use crate::routing::remote::CallCtx;
use crate::routing::router::{PolicyCall, Routing};
use crate::settlement::plan;
use crate::store::*;
use chrono::{Datelike, Utc};
use clearing_edge::error::ServiceError;
use region_adapter::Benefit;
use std::sync::Arc;
use tracing::Instrument;

/// Whether a claim is settled (recorded, idempotent by msgid) or only previewed (computed, nothing
/// written): SettleClaim/2207 and PreviewClaim/2206.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Settle,
    Preview,
}

impl<S: Store> Clearinghouse<S> {
    /// The claim with the institution list's levels (a level it sent must agree: `institutions::resolve`),
    /// and whether a pharmacy fill's pharmacy is designated for outpatient pooling. `None` when the code
    /// is malformed (the claim's validation says so).
    pub(crate) async fn with_listed_levels(&self, claim: &ClaimDraft) -> Result<Option<(ClaimDraft, bool)>, ServiceError> {
        let Some(l) = crate::registry::institutions::resolve(&self.store, &self.institutions, claim).await? else {
            return Ok(None);
        };
        let listed = ClaimDraft {
            hosp_lv: if claim.med_type == "41" { claim.hosp_lv } else { l.hosp_lv },
            prescribing_hosp_lv: if claim.med_type == "41" { l.prescribing_hosp_lv } else { claim.prescribing_hosp_lv },
            ..claim.clone()
        };
        Ok(Some((listed, l.pharmacy_designated)))
    }

    /// Settles or previews a claim.
    pub async fn settle(&self, ctx: &CallCtx, claim: &ClaimDraft, mode: Mode) -> Result<Settlement, ServiceError> {
        let record = mode == Mode::Settle;
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

    async fn settle_inner(&self, ctx: &CallCtx, claim: &ClaimDraft, record: bool) -> Result<Settlement, ServiceError> {
        let routing = self.router.current();
        let now = Utc::now().with_timezone(&crate::calendar::shanghai());
        // The idempotency hash is of the claim as sent, before a listed level fills `hosp_lv`.
        let hash = crate::record::claim_hash(claim);
        let listed = self.with_listed_levels(claim).await?;
        let claim = listed.as_ref().map_or(claim, |(c, _)| c);
        let mut vc = claim::validate_claim(claim, &|a| routing.knows(a), now)?;
        vc.pharmacy_designated = listed.as_ref().is_some_and(|(_, d)| *d);
        let shard = shard_of(&claim.insuplc_admdvs, &claim.psn_no);
        let idem_key = idempotency_key(&claim.mdtrt_admdvs, &claim.fixmedins_code, &claim.msgid);
        // The member's turn in this replica, held until the commit has answered: its next claim reads what
        // this one writes instead of computing twice (a preview writes nothing and takes no turn).
        let _turn = match record {
            true => Some(self.turns.take(&vc.member_key()).await),
            false => None,
        };
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
        vc: &ValidClaim,
        mut first_member: Option<Arc<MemberRecord>>,
        shard: u16,
        idem: Option<(&str, &[u8; 32])>,
    ) -> Result<Settlement, ServiceError> {
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
                return Err(crate::settlement::closure::closed_error(c));
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
                preview.flags = flags.as_deref().map(crate::settlement::plan::flags_pb).unwrap_or_default();
                return Ok(preview);
            };
            // Plan (pure) and commit.
            let today = crate::calendar::today();
            let clr_date = self.store.open_window(shard, today).await?;
            let setl_id = self.ids.next(shard, id_clock());
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
}
