//! 2201: registering an outpatient visit.

use super::*;

impl<S: Store> Visits<'_, S> {
    /// Whether `member` may be treated in `mdtrt` at `begntime`: always in its own region and where its
    /// region pays visits elsewhere without a filing; otherwise only with a filing in force then. A region
    /// whose rules run at a remote adapter is not judged here (its adapter's answer decides the pay).
    fn may_be_treated(&self, member: &crate::store::MemberRecord, mdtrt: &str, begntime: &str) -> bool {
        let (Some(insured), Some(mdtrt)) =
            (region_adapter::Admdvs::parse(&member.key.insuplc_admdvs), region_adapter::Admdvs::parse(mdtrt))
        else {
            return false;
        };
        let Some(date) = chrono::DateTime::parse_from_rfc3339(begntime).ok().map(crate::calendar::day_of) else {
            return false;
        };
        if insured == mdtrt {
            return true;
        }
        let routing = self.ch.router.current();
        let Some(policy) = routing.rules.region(insured).and_then(|p| p.policy_on(date)) else {
            return true;
        };
        if !policy.cross_region.filing_required.value {
            return true;
        }
        member.filings.iter().any(|f| {
            region_adapter::Admdvs::parse(&f.mdtrt_admdvs).is_some_and(|a| a.covers(mdtrt))
                && f.begndate <= date
                && f.enddate.is_none_or(|e| date <= e)
        })
    }

    /// A registration's facts checked exactly like a claim of the same fields (the listed levels filled
    /// in), with `v`'s problems added: the claim it would settle, less its lines.
    pub(crate) async fn checked_registration(&self, req: &Registration, v: Violations) -> Result<ClaimDraft, ServiceError> {
        let probe = ClaimDraft {
            msgid: req.msgid.clone(),
            psn_no: req.psn_no.clone(),
            insuplc_admdvs: req.insuplc_admdvs.clone(),
            mdtrt_admdvs: req.mdtrt_admdvs.clone(),
            fixmedins_code: req.fixmedins_code.clone(),
            hosp_lv: req.hosp_lv,
            med_type: req.med_type.clone(),
            dise_code: req.dise_code.clone(),
            prescribing_hosp_lv: req.prescribing_hosp_lv,
            prescribing_fixmedins_code: req.prescribing_fixmedins_code.clone(),
            setl_time: req.begntime.clone(),
            lines: vec![DraftLine {
                hilist_code: PROBE_CODE.into(),
                cnt: "1".into(),
                pric: "0.01".into(),
                det_item_fee_sumamt: "0.01".into(),
            }],
            ..Default::default()
        };
        let listed = self.ch.with_listed_levels(&probe).await?;
        let probe_checked = listed.map_or(probe, |(c, _)| c);
        let routing = self.ch.router.current();
        let now = Utc::now().with_timezone(&crate::calendar::shanghai());
        let checked = claim::validate_claim(&probe_checked, &|a| routing.knows(a), now).map_err(|e| rename_setl_time(e, "begntime"));
        let mut violations = v.0;
        if let Err(ServiceError::Invalid(more)) = &checked {
            violations.extend(more.iter().cloned());
        } else {
            checked?;
        }
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        Ok(probe_checked)
    }

    /// 2201. Validated exactly like a claim of the same fields; idempotent on (service location, msgid).
    pub async fn register_visit(&self, req: &Registration) -> Result<VisitRecord, ServiceError> {
        let mut v = Violations::default();
        if !req.ipt_otp_no.is_empty() && !id_like(&req.ipt_otp_no, MAX_VISIT_ID_LEN, b"-_.") {
            v.add("ipt_otp_no", format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
        }
        let probe_checked = self.checked_registration(req, v).await?;
        // The member must exist (its shard holds the visit) and may be treated here: where the insured
        // region pays visits elsewhere only with a filing, one in force on the visit date. Otherwise the
        // same answer as for a member that does not exist: registration is no way to learn who exists.
        let missing = || ServiceError::NotFound { what: "member".into(), field: "psn_no".into() };
        let member = self.ch.store.load_member(&MemberKey::new(&req.insuplc_admdvs, &req.psn_no)).await?.ok_or_else(missing)?;
        if !self.may_be_treated(&member, &req.mdtrt_admdvs, &req.begntime) {
            return Err(missing());
        }
        let registration = crate::record::registration_hash(req);
        let mdtrt_id = mdtrt_id_of(&req.insuplc_admdvs, &req.psn_no, &req.mdtrt_admdvs, &req.fixmedins_code, &req.msgid);
        let shard = shard_of(&req.insuplc_admdvs, &req.psn_no);
        let list_key = member_visits_key(&req.insuplc_admdvs, &req.psn_no);
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let recs = self.ch.store.visit_records(shard, &[visit_key(&mdtrt_id), list_key.clone()]).await?;
            if let Some(existing) = &recs[0] {
                let visit: VisitRecord = serde_json::from_str(&existing.data).map_err(corrupt)?;
                if visit.registration != registration {
                    return Err(ServiceError::IdempotencyMismatch(req.msgid.clone()));
                }
                return Ok(visit);
            }
            let now = now_ms();
            let (list_version, mut open): (u64, Vec<OpenVisit>) = match &recs[1] {
                None => (0, Vec::new()),
                Some(r) => (r.version, serde_json::from_str(&r.data).map_err(corrupt)?),
            };
            // Expired entries do not count (the sweep removes their visits).
            open.retain(|o| o.expires_ms > now);
            let here = open.iter().filter(|o| o.fixmedins_code == req.fixmedins_code).count();
            if here >= MAX_OPEN_VISITS_PER_INSTITUTION {
                return Err(ServiceError::FailedPrecondition(format!(
                    "the member has {here} open visits at {} (at most {MAX_OPEN_VISITS_PER_INSTITUTION} at one institution): settle or cancel one first",
                    req.fixmedins_code
                )));
            }
            if open.len() >= MAX_OPEN_VISITS_PER_MEMBER {
                // Not how many, nor where: the other visits may be other institutions'.
                return Err(ServiceError::FailedPrecondition(format!(
                    "the member has the most open visits allowed ({MAX_OPEN_VISITS_PER_MEMBER}): an open visit must be settled or cancelled first"
                )));
            }
            let expires_ms = now + self.ch.visit_ttl().as_millis() as i64;
            let visit = VisitRecord {
                mdtrt_id: mdtrt_id.clone(),
                registration: registration.clone(),
                psn_no: req.psn_no.clone(),
                insuplc_admdvs: req.insuplc_admdvs.clone(),
                mdtrt_admdvs: req.mdtrt_admdvs.clone(),
                fixmedins_code: req.fixmedins_code.clone(),
                hosp_lv: probe_checked.hosp_lv,
                med_type: req.med_type.clone(),
                dise_code: req.dise_code.clone(),
                prescribing_hosp_lv: probe_checked.prescribing_hosp_lv,
                prescribing_fixmedins_code: req.prescribing_fixmedins_code.clone(),
                begntime: req.begntime.clone(),
                ipt_otp_no: req.ipt_otp_no.clone(),
                status: Status::Open,
                setl_id: String::new(),
                setl_msgid: String::new(),
                lines: Vec::new(),
                expires_ms,
                settling_since_ms: 0,
            };
            open.push(OpenVisit {
                mdtrt_id: mdtrt_id.clone(),
                expires_ms,
                mdtrt_admdvs: req.mdtrt_admdvs.clone(),
                fixmedins_code: req.fixmedins_code.clone(),
            });
            let writes = vec![
                RecordWrite { key: visit_key(&mdtrt_id), expected: 0, data: Some(serde_json::to_string(&visit).map_err(corrupt)?) },
                RecordWrite { key: list_key.clone(), expected: list_version, data: Some(serde_json::to_string(&open).map_err(corrupt)?) },
            ];
            if self.ch.store.put_visit_records(shard, writes).await? {
                return Ok(visit);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }
}
