//! 2201: registering an outpatient visit.

use super::*;

impl<S: Store> Clearinghouse<S> {
    /// 2201. Validated exactly like a claim of the same fields; idempotent on (service location, msgid).
    pub async fn register_visit(&self, req: &pb::RegisterVisitRequest) -> Result<pb::Visit, ServiceError> {
        let mut v = Violations::default();
        if !req.ipt_otp_no.is_empty() && !id_like(&req.ipt_otp_no, MAX_VISIT_ID_LEN, b"-_.") {
            v.add("ipt_otp_no", format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
        }
        let probe = pb::Claim {
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
            lines: vec![pb::ClaimLine {
                hilist_code: PROBE_CODE.into(),
                cnt: "1".into(),
                pric: "0.01".into(),
                det_item_fee_sumamt: "0.01".into(),
            }],
            ..Default::default()
        };
        let listed = self.with_listed_levels(&probe).await?;
        let probe_checked = listed.as_ref().map_or(&probe, |(c, _)| c);
        let routing = self.router.current();
        let now = Utc::now().with_timezone(&crate::calendar::shanghai());
        let checked = wire::validate_claim(probe_checked, &|a| routing.knows(a), now).map_err(|e| rename_setl_time(e, "begntime"));
        let mut violations = v.0;
        if let Err(ServiceError::Invalid(more)) = &checked {
            violations.extend(more.iter().cloned());
        } else {
            checked?;
        }
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        // The member must exist (its shard holds the visit).
        if self.store.load_member(&MemberKey::new(&req.insuplc_admdvs, &req.psn_no)).await?.is_none() {
            return Err(ServiceError::NotFound { what: "member".into(), field: "psn_no".into() });
        }
        let registration = hex::encode(Sha256::digest(prost::Message::encode_to_vec(req)));
        let mdtrt_id = mdtrt_id_of(&req.insuplc_admdvs, &req.psn_no, &req.mdtrt_admdvs, &req.msgid);
        let shard = shard_of(&req.insuplc_admdvs, &req.psn_no);
        let list_key = member_visits_key(&req.insuplc_admdvs, &req.psn_no);
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let recs = self.store.visit_records(shard, &[visit_key(&mdtrt_id), list_key.clone()]).await?;
            if let Some(existing) = &recs[0] {
                let visit: VisitRecord = serde_json::from_str(&existing.data).map_err(corrupt)?;
                if visit.registration != registration {
                    return Err(ServiceError::IdempotencyMismatch(req.msgid.clone()));
                }
                return Ok(visit.to_pb());
            }
            let now = now_ms();
            let (list_version, mut open): (u64, Vec<OpenVisit>) = match &recs[1] {
                None => (0, Vec::new()),
                Some(r) => (r.version, serde_json::from_str(&r.data).map_err(corrupt)?),
            };
            // Expired entries do not count (the sweep removes their visits).
            open.retain(|o| o.expires_ms > now);
            if open.len() >= MAX_OPEN_VISITS_PER_MEMBER {
                return Err(ServiceError::FailedPrecondition(format!(
                    "the member has {} open visits (at most {MAX_OPEN_VISITS_PER_MEMBER}): settle or cancel one first",
                    open.len()
                )));
            }
            let expires_ms = now + self.visit_ttl().as_millis() as i64;
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
            open.push(OpenVisit { mdtrt_id: mdtrt_id.clone(), expires_ms, mdtrt_admdvs: req.mdtrt_admdvs.clone() });
            let writes = vec![
                RecordWrite { key: visit_key(&mdtrt_id), expected: 0, data: Some(serde_json::to_string(&visit).map_err(corrupt)?) },
                RecordWrite { key: list_key.clone(), expected: list_version, data: Some(serde_json::to_string(&open).map_err(corrupt)?) },
            ];
            if self.store.put_visit_records(shard, writes).await? {
                return Ok(visit.to_pb());
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }
}
