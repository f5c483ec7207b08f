//! 2204 upload fee details (priced at once), 2205 cancel some, 2202 cancel the visit, and reading it.

use super::*;

impl<S: Store> Visits<'_, S> {
    /// 2204. All or nothing; each detail answered with the catalogue's verdict.
    pub async fn upload_fee_details(
        &self,
        ctx: &CallCtx,
        mdtrt_id: &str,
        details: &[FeeDetail],
        authorize: Authorize<'_>,
    ) -> Result<Uploaded, ServiceError> {
        if details.is_empty() {
            return Err(ServiceError::field("details", "at least one detail"));
        }
        if details.len() > MAX_LINES_PER_VISIT {
            return Err(ServiceError::field("details", format!("{} details; a visit has at most {MAX_LINES_PER_VISIT}", details.len())));
        }
        // Priced once, outside the compare-and-set loop (the catalogue does not change under it).
        let Loaded { visit: first, .. } = self.load_visit(mdtrt_id, authorize).await?;
        require_open(&first, now_ms())?;
        let priced = self.price_details(ctx, &first, details).await?;
        let (visit, ()) = self
            .change_visit(mdtrt_id, authorize, |visit| {
                require_open(visit, now_ms())?;
                let mut v = Violations::default();
                let mut added = 0;
                for (i, d) in details.iter().enumerate() {
                    match visit.lines.iter().find(|l| l.feedetl_sn == d.feedetl_sn) {
                        Some(l) if l.same_as(d) => {}
                        Some(_) => v.add(format!("details[{i}].feedetl_sn"), format!("{} was uploaded with other content", d.feedetl_sn)),
                        None => added += 1,
                    }
                }
                if visit.lines.len() + added > MAX_LINES_PER_VISIT {
                    v.add("details", format!("the visit would have {} details; at most {MAX_LINES_PER_VISIT}", visit.lines.len() + added));
                }
                v.into_result(())?;
                for line in &priced {
                    if !visit.lines.iter().any(|l| l.feedetl_sn == line.feedetl_sn) {
                        visit.lines.push(line.clone());
                    }
                }
                Ok(())
            })
            .await?;
        let results = details.iter().filter_map(|d| visit.lines.iter().find(|l| l.feedetl_sn == d.feedetl_sn).cloned()).collect();
        Ok(Uploaded { visit, results })
    }

    /// Validates details exactly like claim lines (field paths `details[i].…`) and prices them with the
    /// service location's catalogue on the visit date.
    pub(crate) async fn price_details(&self, ctx: &CallCtx, visit: &VisitRecord, details: &[FeeDetail]) -> Result<Vec<Line>, ServiceError> {
        let mut v = Violations::default();
        let mut seen = std::collections::HashSet::new();
        for (i, d) in details.iter().enumerate() {
            if !id_like(&d.feedetl_sn, MAX_VISIT_ID_LEN, b"-_.") {
                v.add(format!("details[{i}].feedetl_sn"), format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
            } else if !seen.insert(&d.feedetl_sn) {
                v.add(format!("details[{i}].feedetl_sn"), format!("{} appears twice in this upload", d.feedetl_sn));
            }
            if !d.chrg_bchno.is_empty() && !id_like(&d.chrg_bchno, MAX_VISIT_ID_LEN, b"-_.") {
                v.add(format!("details[{i}].chrg_bchno"), format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
            }
            if DateTime::parse_from_rfc3339(&d.fee_ocur_time).is_err() {
                v.add(format!("details[{i}].fee_ocur_time"), "must be an RFC 3339 time");
            }
        }
        let lines = details
            .iter()
            .map(|d| DraftLine {
                hilist_code: d.hilist_code.clone(),
                cnt: d.cnt.clone(),
                pric: d.pric.clone(),
                det_item_fee_sumamt: d.det_item_fee_sumamt.clone(),
            })
            .collect();
        let probe = ClaimDraft { msgid: "visit-upload".into(), ..visit.claim_of(lines) };
        let routing = self.ch.router.current();
        let now: DateTime<FixedOffset> = Utc::now().with_timezone(&crate::calendar::shanghai());
        // The registration was checked; what can fail here are the lines (lines[i] → details[i]).
        let vc = match claim::validate_claim(&probe, &|a| routing.knows(a), now) {
            Ok(vc) => Some(vc),
            Err(ServiceError::Invalid(more)) => {
                for f in more {
                    v.add(f.field.replacen("lines", "details", 1), f.description);
                }
                None
            }
            Err(e) => return Err(e),
        };
        v.into_result(())?;
        let vc = vc.expect("valid");
        let priced = self.ch.router.price(ctx, &routing, vc.mdtrt, vc.visit_date, &vc.line_inputs()).await?;
        Ok(details
            .iter()
            .zip(&priced.priced.lines)
            .zip(&priced.items)
            .map(|((d, p), item)| Line {
                feedetl_sn: d.feedetl_sn.clone(),
                chrg_bchno: d.chrg_bchno.clone(),
                hilist_code: d.hilist_code.clone(),
                cnt: d.cnt.clone(),
                pric: d.pric.clone(),
                det_item_fee_sumamt: d.det_item_fee_sumamt.clone(),
                fee_ocur_time: d.fee_ocur_time.clone(),
                hilist_name: item.name.clone(),
                med_chrgitm_type: item.chrgitm_type.clone(),
                lmt_used_flag: if item.name.is_empty() { String::new() } else { (if item.restricted { "1" } else { "0" }).into() },
                chrgitm_lv: p.class.map(|c| c.code().to_string()).unwrap_or_default(),
                selfpay_prop: fmt_ratio(p.selfpay_prop_bp),
                pric_uplmt_amt: p.price_cap.map(|c| c.to_string()).unwrap_or_default(),
                fulamt_ownpay_amt: fmt_yuan(p.fulamt_ownpay_fen),
                overlmt_selfpay: fmt_yuan(p.overlmt_selfpay_fen),
                preselfpay_amt: fmt_yuan(p.preselfpay_fen),
                inscp_scp_amt: fmt_yuan(p.inscp_fen),
            })
            .collect())
    }

    /// 2205: the batch's details (or the named ones of it) leave the visit. Cancelling what is not
    /// there is not an error (a resend).
    pub async fn cancel_fee_details(&self, req: &DetailsCancel, authorize: Authorize<'_>) -> Result<VisitRecord, ServiceError> {
        if req.chrg_bchno.is_empty() && req.feedetl_sn.is_empty() {
            return Err(ServiceError::field("chrg_bchno", "name the batch (or feedetl_sn) to cancel"));
        }
        let (visit, ()) = self
            .change_visit(&req.mdtrt_id, authorize, |visit| {
                require_open(visit, now_ms())?;
                visit.lines.retain(|l| {
                    let batch = req.chrg_bchno.is_empty() || l.chrg_bchno == req.chrg_bchno;
                    let named = req.feedetl_sn.is_empty() || req.feedetl_sn.contains(&l.feedetl_sn);
                    !(batch && named)
                });
                Ok(())
            })
            .await?;
        Ok(visit)
    }

    /// 2202. A settled visit is not cancelled (reverse the settlement instead); cancelling twice is fine.
    pub async fn cancel_visit(&self, mdtrt_id: &str, authorize: Authorize<'_>) -> Result<VisitRecord, ServiceError> {
        let (visit, ()) = self
            .change_visit(mdtrt_id, authorize, |visit| match visit.status {
                Status::Open => {
                    visit.status = Status::Cancelled;
                    Ok(())
                }
                Status::Cancelled => Ok(()),
                Status::Settled => Err(ServiceError::FailedPrecondition(format!(
                    "visit {} is settled ({}): reverse the settlement instead (2208)",
                    visit.mdtrt_id, visit.setl_id
                ))),
                Status::Settling => Err(ServiceError::FailedPrecondition(format!(
                    "visit {} is being settled under msgid {}: resend that settlement",
                    visit.mdtrt_id, visit.setl_msgid
                ))),
            })
            .await?;
        Ok(visit)
    }

    pub async fn get_visit(&self, mdtrt_id: &str, authorize: Authorize<'_>) -> Result<VisitRecord, ServiceError> {
        Ok(self.load_visit(mdtrt_id, authorize).await?.visit)
    }
}
