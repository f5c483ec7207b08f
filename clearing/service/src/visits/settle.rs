//! 2206/2207 of a registered visit: its lines settled as one claim, under the request's msgid.

use super::*;
use crate::settlement::settle::Mode;

impl<S: Store> Visits<'_, S> {
    /// 2206/2207 by mdtrt_id: `settle` of the visit's claim.
    pub async fn settle_visit(
        &self,
        ctx: &CallCtx,
        req: &VisitSettle,
        mode: Mode,
        authorize: Authorize<'_>,
    ) -> Result<Settlement, ServiceError> {
        let record = mode == Mode::Settle;
        let Loaded { visit, .. } = self.load_visit(&req.mdtrt_id, authorize).await?;
        match visit.status {
            Status::Cancelled => return Err(ServiceError::FailedPrecondition(format!("visit {} is cancelled", visit.mdtrt_id))),
            Status::Settled | Status::Settling if visit.setl_msgid != req.msgid || !record => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "visit {} is {} under msgid {}{}",
                    visit.mdtrt_id,
                    visit.status.name(),
                    visit.setl_msgid,
                    if visit.setl_id.is_empty() { String::new() } else { format!(" as settlement {}", visit.setl_id) }
                )));
            }
            Status::Open => require_open(&visit, now_ms())?,
            Status::Settled | Status::Settling => {}
        }
        let mut v = Violations::default();
        match signed_fen(&req.medfee_sumamt) {
            Some(m) if m == visit.sum_fen() => {}
            Some(_) => v.add(
                "medfee_sumamt",
                format!("{} is not the sum of the visit's uploaded details ({})", req.medfee_sumamt, fmt_yuan(visit.sum_fen())),
            ),
            None => v.add("medfee_sumamt", "must be a decimal amount in yuan with at most two decimals"),
        }
        if visit.lines.is_empty() {
            v.add("mdtrt_id", "the visit has no fee details: upload them first (2204)");
        }
        // A visit is settled as the medical type it was registered with (2201) or given (2203), never
        // silently as another.
        if !req.med_type.is_empty() && req.med_type != visit.med_type {
            v.add(
                "med_type",
                format!(
                    "the visit is med_type {}, not {}: set it with 2203 (UpdateVisitInfo) before the fee details",
                    visit.med_type, req.med_type
                ),
            );
        }
        if !req.chrg_bchno.is_empty()
            && let Some(l) = visit.lines.iter().find(|l| l.chrg_bchno != req.chrg_bchno)
        {
            v.add("chrg_bchno", format!("detail {} belongs to batch {:?}, not {}", l.feedetl_sn, l.chrg_bchno, req.chrg_bchno));
        }
        v.into_result(())?;
        let claim = visit.claim(req);
        if !record {
            return self.ch.settle(ctx, &claim, Mode::Preview).await;
        }
        // Freeze the details under this msgid, settle, then record the settlement on the visit. A crash
        // in between leaves it `settling`: a resend of the msgid finishes it (settle is idempotent).
        if visit.status == Status::Settling {
            // A resend works on the visit now: the sweep's staleness counts from here.
            self.change_visit(&req.mdtrt_id, authorize, |v| {
                if v.status == Status::Settling && v.setl_msgid == req.msgid {
                    v.settling_since_ms = now_ms();
                }
                Ok(())
            })
            .await?;
        }
        if visit.status == Status::Open {
            let expected_lines = visit.lines.clone();
            self.change_visit(&req.mdtrt_id, authorize, |v| {
                if v.status != Status::Open || v.lines != expected_lines {
                    return Err(ServiceError::Aborted(1));
                }
                v.status = Status::Settling;
                v.setl_msgid = req.msgid.clone();
                v.settling_since_ms = now_ms();
                Ok(())
            })
            .await?;
        }
        match self.ch.settle(ctx, &claim, Mode::Settle).await {
            Ok(s) => {
                let setl_id = s.setl_id.clone();
                self.change_visit(&req.mdtrt_id, authorize, |v| {
                    v.status = Status::Settled;
                    v.setl_id = setl_id.clone();
                    Ok(())
                })
                .await?;
                Ok(s)
            }
            Err(e) => {
                // A definite refusal nothing was written for: the visit opens again so the HIS can fix it.
                if matches!(
                    e,
                    ServiceError::Invalid(_)
                        | ServiceError::NotFound { .. }
                        | ServiceError::PermissionDenied(..)
                        | ServiceError::IdempotencyMismatch(_)
                        | ServiceError::FailedPrecondition(_)
                ) {
                    let _ = self
                        .change_visit(&req.mdtrt_id, authorize, |v| {
                            if v.status == Status::Settling && v.setl_msgid == req.msgid {
                                v.status = Status::Open;
                                v.setl_msgid.clear();
                            }
                            Ok(())
                        })
                        .await;
                }
                Err(e)
            }
        }
    }
}
