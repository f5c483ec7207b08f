//! The hospital's flow: 2201 register, 2203 visit information, 2204 upload details, 2205 cancel details,
//! 2202 cancel, then 2206/2207 with data.mdtrt_id.

use super::*;

/// 2201's fields by their national path.
pub(crate) const REGISTER: FieldPaths = FieldPaths {
    named: &[
        ("msgid", "msgid"),
        ("insuplc_admdvs", "insuplc_admdvs"),
        ("fixmedins_code", "fixmedins_code"),
        ("mdtrt_admdvs", "mdtrtarea_admvs"),
        ("dise_code", "input.data.dise_codg"),
    ],
    list: None,
    rest: "input.data",
};

/// The fields of a call on a registered visit (2202, 2205, 2206/2207 by mdtrt_id).
pub(crate) const VISIT: FieldPaths = FieldPaths { named: &[("msgid", "msgid")], list: None, rest: "input.data" };

/// 2203's fields by their national path.
pub(crate) const VISIT_INFO: FieldPaths = FieldPaths {
    named: &[("dise_code", "input.mdtrtinfo.dise_codg"), ("begntime", "input.mdtrtinfo.begntime")],
    list: None,
    rest: "input.mdtrtinfo",
};

/// At most this many diagnoses in one 2203 (a visit has a handful).
pub(crate) const MAX_DIAGNOSES: usize = 50;

/// 2204's fields by their national path.
pub(crate) const UPLOAD: FieldPaths = FieldPaths {
    named: &[("mdtrt_id", "input.feedetail[].mdtrt_id")],
    list: Some(("details", "input.feedetail", &[("hilist_code", "med_list_codg")])),
    rest: "input",
};

pub(crate) fn has_mdtrt_id(env: &Envelope) -> bool {
    matches!(env.input.get("data"), Some(Value::Object(d)) if text(d.get("mdtrt_id")).is_some_and(|m| !m.is_empty()))
}

/// A required time "yyyy-MM-dd HH:mm:ss" (Beijing time) or RFC 3339, as RFC 3339.
pub(crate) fn time_of(f: &mut Fields<'_>, m: &Map<String, Value>, path: &str, name: &str) -> String {
    let t = f.text(m, path, name, true, 32);
    match rfc3339_of(&t) {
        Some(x) => x.to_rfc3339(),
        None if t.is_empty() => t,
        None => {
            f.v.add(format!("{path}.{name}"), "must be yyyy-MM-dd HH:mm:ss (Beijing time)");
            t
        }
    }
}

pub(crate) fn check_insutype(f: &mut Fields<'_>, d: &Map<String, Value>) {
    let insutype = f.text(d, "input.data", "insutype", false, 8);
    if !insutype.is_empty() && insutype != EMPLOYEE_BASIC {
        f.v.add("input.data.insutype", "only 310 (employee basic medical insurance) is settled here");
    }
}

pub(crate) async fn register_visit(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let env = call.env;
    let mut req = pb::RegisterVisitRequest {
        msgid: env.msgid.clone(),
        insuplc_admdvs: env.insuplc_admdvs.clone(),
        mdtrt_admdvs: env.mdtrtarea_admvs.clone(),
        fixmedins_code: env.fixmedins_code.clone(),
        ..Default::default()
    };
    if env.insuplc_admdvs.is_empty() {
        f.v.add("insuplc_admdvs", "required for 2201");
    }
    if let Some(d) = f.obj(&env.input, "input", "data") {
        let p = "input.data";
        req.psn_no = f.text(d, p, "psn_no", true, MAX_FIELD_LEN);
        check_insutype(&mut f, d);
        req.begntime = time_of(&mut f, d, p, "begntime");
        req.med_type = f.text(d, p, "med_type", false, 8);
        if req.med_type.is_empty() {
            req.med_type = "11".into();
        }
        req.hosp_lv = f.level(d, p, "hosp_lv");
        req.prescribing_hosp_lv = f.level(d, p, "prescribing_hosp_lv");
        req.prescribing_fixmedins_code = f.text(d, p, "prescribing_fixmedins_code", false, MAX_FIELD_LEN);
        req.dise_code = f.text(d, p, "dise_codg", false, MAX_FIELD_LEN);
        req.ipt_otp_no = f.text(d, p, "ipt_otp_no", false, MAX_FEEDETL_SN_LEN);
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match ClearingClient::new(clients.channel.clone()).register_visit(call.request(req)).await {
        Ok(r) => {
            let r = r.into_inner();
            Answer::done(
                json!({ "data": { "mdtrt_id": r.mdtrt_id, "psn_no": r.psn_no, "ipt_otp_no": r.ipt_otp_no, "hosp_lv": r.hosp_lv, "expires_at": r.expires_at } }),
            )
        }
        Err(st) => from_status(&st, &REGISTER),
    }
}

pub(crate) async fn upload_fee_details(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut req = pb::UploadFeeDetailsRequest::default();
    if let Some(list) = f.list(&call.env.input, "input", "feedetail") {
        if list.is_empty() {
            f.v.add("input.feedetail", "at least one fee detail");
        }
        for (i, item) in list.iter().take(MAX_LINES_PER_CLAIM + 1).enumerate() {
            let p = format!("input.feedetail[{i}]");
            let Value::Object(item) = item else {
                f.v.add(p, "must be an object");
                continue;
            };
            let id = f.text(item, &p, "mdtrt_id", true, MAX_FIELD_LEN);
            if req.mdtrt_id.is_empty() {
                req.mdtrt_id = id;
            } else if !id.is_empty() && id != req.mdtrt_id {
                f.v.add(format!("{p}.mdtrt_id"), "one upload is for one visit: every detail needs the same mdtrt_id");
            }
            req.details.push(pb::FeeDetail {
                feedetl_sn: f.text(item, &p, "feedetl_sn", true, MAX_FEEDETL_SN_LEN),
                chrg_bchno: f.text(item, &p, "chrg_bchno", false, MAX_FEEDETL_SN_LEN),
                hilist_code: f.text(item, &p, "med_list_codg", true, 50),
                cnt: f.text(item, &p, "cnt", true, 32),
                pric: f.text(item, &p, "pric", true, 32),
                det_item_fee_sumamt: f.text(item, &p, "det_item_fee_sumamt", true, 32),
                fee_ocur_time: time_of(&mut f, item, &p, "fee_ocur_time"),
            });
        }
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match ClearingClient::new(clients.channel.clone()).upload_fee_details(call.request(req)).await {
        Ok(r) => {
            let r = r.into_inner();
            let result: Vec<Value> = r
                .results
                .iter()
                .map(|l| {
                    json!({
                        "feedetl_sn": l.feedetl_sn, "med_list_codg": l.hilist_code, "hilist_name": l.hilist_name, "chrg_bchno": l.chrg_bchno,
                        "det_item_fee_sumamt": l.det_item_fee_sumamt, "cnt": l.cnt, "pric": l.pric, "pric_uplmt_amt": l.pric_uplmt_amt,
                        "selfpay_prop": l.selfpay_prop, "chrgitm_lv": l.chrgitm_lv, "fulamt_ownpay_amt": l.fulamt_ownpay_amt,
                        "overlmt_amt": l.overlmt_selfpay, "preselfpay_amt": l.preselfpay_amt, "inscp_scp_amt": l.inscp_scp_amt,
                        "med_chrgitm_type": l.med_chrgitm_type, "lmt_used_flag": l.lmt_used_flag,
                    })
                })
                .collect();
            Answer::done(json!({ "result": result, "mdtrt_id": r.mdtrt_id, "medfee_sumamt": r.medfee_sumamt }))
        }
        Err(st) => from_status(&st, &UPLOAD),
    }
}

pub(crate) fn visit_summary(v: &pb::Visit) -> Value {
    json!({ "mdtrt_id": v.mdtrt_id, "status": v.status, "medfee_sumamt": v.medfee_sumamt, "details": v.details.len() })
}

pub(crate) async fn cancel_fee_details(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut req = pb::CancelFeeDetailsRequest::default();
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        req.mdtrt_id = f.text(d, "input.data", "mdtrt_id", true, MAX_FIELD_LEN);
        req.chrg_bchno = f.text(d, "input.data", "chrg_bchno", true, MAX_FEEDETL_SN_LEN);
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match ClearingClient::new(clients.channel.clone()).cancel_fee_details(call.request(req)).await {
        Ok(r) => Answer::done(visit_summary(&r.into_inner())),
        Err(st) => from_status(&st, &VISIT),
    }
}

/// 2203: `mdtrtinfo` sets the visit's medical type and disease (what the settlement applies);
/// `diseinfo[]` is checked for shape and not kept (the settlement needs no diagnosis list, and a
/// diagnosis is health data we have no use for). Output: none.
pub(crate) async fn visit_info(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut req = pb::UpdateVisitInfoRequest::default();
    if let Some(d) = f.obj(&call.env.input, "input", "mdtrtinfo") {
        let p = "input.mdtrtinfo";
        req.mdtrt_id = f.text(d, p, "mdtrt_id", true, MAX_FIELD_LEN);
        req.psn_no = f.text(d, p, "psn_no", true, MAX_FIELD_LEN);
        req.med_type = f.text(d, p, "med_type", true, 8);
        req.dise_code = f.text(d, p, "dise_codg", false, MAX_FIELD_LEN);
    }
    if let Some(Value::Array(list)) = call.env.input.get("diseinfo") {
        if list.len() > MAX_DIAGNOSES {
            f.v.add("input.diseinfo", format!("at most {MAX_DIAGNOSES} diagnoses"));
        }
        for (i, item) in list.iter().take(MAX_DIAGNOSES).enumerate() {
            let p = format!("input.diseinfo[{i}]");
            let Value::Object(item) = item else {
                f.v.add(p, "must be an object");
                continue;
            };
            f.text(item, &p, "diag_code", true, MAX_FIELD_LEN);
        }
    } else if call.env.input.get("diseinfo").is_some_and(|d| !d.is_null()) {
        f.v.add("input.diseinfo", "must be a list");
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match ClearingClient::new(clients.channel.clone()).update_visit_info(call.request(req)).await {
        Ok(_) => Answer::done(json!({})),
        Err(st) => from_status(&st, &VISIT_INFO),
    }
}

pub(crate) async fn cancel_visit(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut req = pb::CancelVisitRequest::default();
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        req.mdtrt_id = f.text(d, "input.data", "mdtrt_id", true, MAX_FIELD_LEN);
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match ClearingClient::new(clients.channel.clone()).cancel_visit(call.request(req)).await {
        Ok(r) => Answer::done(visit_summary(&r.into_inner())),
        Err(st) => from_status(&st, &VISIT),
    }
}

/// 2206/2207 of a registered visit: the uploaded details are the claim's lines.
pub(crate) async fn settle_visit(clients: &Clients, call: &Call<'_>, record: bool) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut req = pb::SettleVisitRequest { msgid: call.env.msgid.clone(), ..Default::default() };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        let p = "input.data";
        req.mdtrt_id = f.text(d, p, "mdtrt_id", true, MAX_FIELD_LEN);
        req.medfee_sumamt = f.text(d, p, "medfee_sumamt", true, 32);
        req.acct_used_flag = f.flag(d, p, "acct_used_flag");
        req.acct_payer_psn_no = f.text(d, p, "acct_payer_psn_no", false, MAX_FIELD_LEN);
        req.chrg_bchno = f.text(d, p, "chrg_bchno", false, MAX_FEEDETL_SN_LEN);
        req.med_type = f.text(d, p, "med_type", false, 8);
        check_insutype(&mut f, d);
    }
    if matches!(call.env.input.get("feedetail"), Some(Value::Array(a)) if !a.is_empty()) {
        f.v.add("input.feedetail", "with data.mdtrt_id the visit's uploaded details (2204) are settled: send no feedetail");
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    let mdtrt_id = req.mdtrt_id.clone();
    let mut c = ClearingClient::new(clients.channel.clone());
    let r = if record { c.settle_visit(call.request(req)).await } else { c.preview_visit(call.request(req)).await };
    match r {
        Ok(s) => {
            // The lines' feedetl_sn are the visit's, in upload order.
            let sns: Vec<String> = match c.get_visit(call.request(pb::GetVisitRequest { mdtrt_id: mdtrt_id.clone() })).await {
                Ok(v) => v.into_inner().details.into_iter().map(|d| d.feedetl_sn).collect(),
                Err(_) => Vec::new(),
            };
            let mut out = super::settlement::settlement_output(&s.into_inner(), &sns);
            out["setlinfo"]["mdtrt_id"] = json!(mdtrt_id);
            Answer::done(out)
        }
        Err(st) => from_status(&st, &VISIT),
    }
}
