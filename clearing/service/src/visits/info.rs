//! 2203: the visit's medical type and disease, set before its fee details (the national order is 2201,
//! 2203, 2204), checked exactly like a registration of those facts.

use super::*;

impl<S: Store> Visits<'_, S> {
    pub async fn update_visit_info(&self, req: &VisitInfo, authorize: Authorize<'_>) -> Result<VisitRecord, ServiceError> {
        let Loaded { visit, .. } = self.load_visit(&req.mdtrt_id, authorize).await?;
        let mut v = Violations::default();
        if !req.psn_no.is_empty() && req.psn_no != visit.psn_no {
            v.add("psn_no", "not the visit's member");
        }
        if req.med_type.is_empty() {
            v.add("med_type", "required");
        }
        // The facts as a registration would carry them: the same checks, the same field names.
        let probe = Registration {
            msgid: "VISIT-INFO".into(),
            psn_no: visit.psn_no.clone(),
            insuplc_admdvs: visit.insuplc_admdvs.clone(),
            mdtrt_admdvs: visit.mdtrt_admdvs.clone(),
            fixmedins_code: visit.fixmedins_code.clone(),
            hosp_lv: visit.hosp_lv,
            med_type: req.med_type.clone(),
            dise_code: req.dise_code.clone(),
            prescribing_hosp_lv: visit.prescribing_hosp_lv,
            prescribing_fixmedins_code: visit.prescribing_fixmedins_code.clone(),
            begntime: visit.begntime.clone(),
            ipt_otp_no: visit.ipt_otp_no.clone(),
        };
        self.checked_registration(&probe, v).await?;
        let (visit, ()) = self
            .change_visit(&req.mdtrt_id, authorize, |visit| {
                require_open(visit, now_ms())?;
                let changes = visit.med_type != req.med_type || visit.dise_code != req.dise_code;
                if changes && !visit.lines.is_empty() {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "visit {} has fee details: 2203 comes before 2204 (cancel the details with 2205 to change its medical type)",
                        visit.mdtrt_id
                    )));
                }
                visit.med_type = req.med_type.clone();
                visit.dise_code = req.dise_code.clone();
                Ok(())
            })
            .await?;
        Ok(visit)
    }
}
