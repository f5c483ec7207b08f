//! The queries a HIS makes after a fault: 5201 a visit, 5203 a settlement, 5204 fee details. Both read what the
//! caller may read (an institution its own settlements and visits) and answer anything else exactly like
//! a missing one.

use super::*;
use crate::tx::settlement::{national_datetime, settlement_output};

/// 5203/5204's fields by their national path.
pub(crate) const QUERY: FieldPaths = FieldPaths { named: &[], list: None, rest: "input.data" };

fn settlement_not_found(setl_id: &str) -> Answer {
    Answer::invalid(format!("input.data.setl_id: settlement {setl_id} not found"))
}

/// The settlement `setl_id` of member `psn_no`, or the answer to give instead.
async fn settlement_of(clients: &Clients, call: &Call<'_>, setl_id: &str, psn_no: &str) -> Result<pb::Settlement, Answer> {
    let req = pb::GetSettlementRequest { setl_id: setl_id.into() };
    match ClearingClient::new(clients.channel.clone()).get_settlement(call.request(req)).await {
        // Another member's settlement is not this query's (and not told).
        Ok(s) if s.get_ref().psn_no == psn_no => Ok(s.into_inner()),
        Ok(_) => Err(settlement_not_found(setl_id)),
        Err(st) => Err(from_status(&st, &QUERY)),
    }
}

/// A query's `input.data`: `psn_no` (required), `setl_id` (required for 5203), `mdtrt_id`; for 5204 one
/// of `setl_id` and `mdtrt_id`.
struct Query {
    psn_no: String,
    setl_id: String,
    mdtrt_id: String,
}

fn query_of(call: &Call<'_>, setl_id_required: bool) -> Result<Query, Answer> {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut q = Query { psn_no: String::new(), setl_id: String::new(), mdtrt_id: String::new() };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        q.psn_no = f.text(d, "input.data", "psn_no", true, MAX_FIELD_LEN);
        q.setl_id = f.text(d, "input.data", "setl_id", setl_id_required, MAX_FIELD_LEN);
        q.mdtrt_id = f.text(d, "input.data", "mdtrt_id", false, MAX_FIELD_LEN);
        if q.setl_id.is_empty() && q.mdtrt_id.is_empty() && !setl_id_required {
            f.v.add("input.data.mdtrt_id", "name the visit (mdtrt_id) or the settlement (setl_id)");
        }
    }
    if v.0.is_empty() { Ok(q) } else { Err(invalid(v)) }
}

/// 5203: `setlinfo` (2207's, with 5203's own names for the personal parts: `psn_pay`, `cash_payamt`)
/// and `setldetail[]`.
pub(crate) async fn settlement_info(clients: &Clients, call: &Call<'_>) -> Answer {
    let Query { psn_no, setl_id, mdtrt_id } = match query_of(call, true) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let s = match settlement_of(clients, call, &setl_id, &psn_no).await {
        Ok(s) => s,
        Err(a) => return a,
    };
    let mut out = settlement_output(&s, &[]);
    let info = &mut out["setlinfo"];
    info["mdtrt_id"] = json!(mdtrt_id);
    info["psn_pay"] = json!(s.psn_part_amt);
    info["cash_payamt"] = json!(s.psn_cash_pay);
    info["year"] = json!(national_datetime(&s.setl_time).get(..4).unwrap_or_default());
    info["dise_codg"] = json!(s.dise_code);
    Answer::done(json!({ "setlinfo": out["setlinfo"].take(), "setldetail": out["setldetail"].take() }))
}

/// 5204: the fee details, `output` itself a list (as HSA reads it). By `mdtrt_id`, the visit's uploaded
/// details with each one's verdict (and `setl_id` once settled); by `setl_id` alone (a claim sent whole
/// to 2207), the settlement's lines, which keep no quantity or unit price.
pub(crate) async fn fee_details(clients: &Clients, call: &Call<'_>) -> Answer {
    let Query { psn_no, setl_id, mdtrt_id } = match query_of(call, false) {
        Ok(q) => q,
        Err(a) => return a,
    };
    if !mdtrt_id.is_empty() {
        let req = pb::GetVisitRequest { mdtrt_id: mdtrt_id.clone() };
        let visit = match ClearingClient::new(clients.channel.clone()).get_visit(call.request(req)).await {
            Ok(r) if r.get_ref().psn_no == psn_no => r.into_inner(),
            Ok(_) => return Answer::invalid(format!("input.data.mdtrt_id: visit {mdtrt_id} not found")),
            Err(st) => return from_status(&st, &QUERY),
        };
        let rows: Vec<Value> = visit
            .details
            .iter()
            .map(|d| {
                json!({
                    "mdtrt_id": visit.mdtrt_id, "setl_id": visit.setl_id, "feedetl_sn": d.feedetl_sn, "med_type": visit.med_type,
                    "fee_ocur_time": national_datetime(&d.fee_ocur_time), "cnt": d.cnt, "pric": d.pric,
                    "det_item_fee_sumamt": d.det_item_fee_sumamt, "pric_uplmt_amt": d.pric_uplmt_amt, "selfpay_prop": d.selfpay_prop,
                    "fulamt_ownpay_amt": d.fulamt_ownpay_amt, "overlmt_amt": d.overlmt_selfpay, "preselfpay_amt": d.preselfpay_amt,
                    "inscp_scp_amt": d.inscp_scp_amt, "chrgitm_lv": d.chrgitm_lv, "hilist_code": d.hilist_code,
                    "hilist_name": d.hilist_name, "med_list_codg": d.hilist_code,
                    "med_chrgitm_type": d.med_chrgitm_type, "lmt_used_flag": d.lmt_used_flag,
                })
            })
            .collect();
        return Answer::done(Value::Array(rows));
    }
    let s = match settlement_of(clients, call, &setl_id, &psn_no).await {
        Ok(s) => s,
        Err(a) => return a,
    };
    let rows: Vec<Value> = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "mdtrt_id": "", "setl_id": s.setl_id, "feedetl_sn": format!("{:04}", i + 1), "med_type": s.med_type,
                "fee_ocur_time": national_datetime(&s.setl_time), "cnt": "", "pric": "",
                "det_item_fee_sumamt": l.det_item_fee_sumamt, "selfpay_prop": l.selfpay_prop, "fulamt_ownpay_amt": l.fulamt_ownpay_amt,
                "overlmt_amt": l.overlmt_selfpay, "preselfpay_amt": l.preselfpay_amt, "inscp_scp_amt": l.inscp_scp_amt,
                "chrgitm_lv": l.chrgitm_lv, "hilist_code": l.hilist_code, "hilist_name": l.hilist_name, "med_list_codg": l.hilist_code,
            })
        })
        .collect();
    Answer::done(Value::Array(rows))
}

/// 5201: the visit `mdtrt_id` of member `psn_no` as `mdtrtinfo[]` (one row), or no row when it began
/// outside `begntime`..`endtime` or is of another `med_type`. Visits are found by `mdtrt_id` only:
/// without one the answer names the field (a member's past visits are not listed here).
pub(crate) async fn visit_info(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let p = "input.data";
    let empty = Map::new();
    let d = f.obj(&call.env.input, "input", "data").unwrap_or(&empty);
    let psn_no = f.text(d, p, "psn_no", true, MAX_FIELD_LEN);
    let mdtrt_id = f.text(d, p, "mdtrt_id", false, MAX_FIELD_LEN);
    let med_type = f.text(d, p, "med_type", false, 6);
    let time = |f: &mut Fields<'_>, name: &str| {
        let s = f.text(d, p, name, true, 32);
        let t = rfc3339_of(&s);
        if t.is_none() && !s.is_empty() {
            f.v.add(format!("{p}.{name}"), "must be yyyy-MM-dd HH:mm:ss (or RFC 3339)");
        }
        t
    };
    let (begin, end) = (time(&mut f, "begntime"), time(&mut f, "endtime"));
    if mdtrt_id.is_empty() {
        f.v.add(format!("{p}.mdtrt_id"), "required here: visits are found by mdtrt_id (2201's answer)");
    }
    if let (Some(b), Some(e)) = (begin, end)
        && e < b
    {
        f.v.add(format!("{p}.endtime"), "is before begntime");
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    let req = pb::GetVisitRequest { mdtrt_id: mdtrt_id.clone() };
    let visit = match ClearingClient::new(clients.channel.clone()).get_visit(call.request(req)).await {
        Ok(r) if r.get_ref().psn_no == psn_no => r.into_inner(),
        Ok(_) => return Answer::invalid(format!("input.data.mdtrt_id: visit {mdtrt_id} not found")),
        Err(st) => return from_status(&st, &QUERY),
    };
    let began = rfc3339_of(&visit.begntime);
    let inside = began.is_some_and(|t| begin.is_none_or(|b| b <= t) && end.is_none_or(|e| t <= e));
    if !inside || (!med_type.is_empty() && med_type != visit.med_type) {
        return Answer::done(json!({ "mdtrtinfo": [] }));
    }
    // The person's facts where the caller may read the member (1101's rule); blank otherwise.
    let q = pb::GetMemberRequest { insuplc_admdvs: visit.insuplc_admdvs.clone(), psn_no: psn_no.clone(), year: 0 };
    let m = match RegistryClient::new(clients.channel.clone()).get_member(call.request(q)).await {
        Ok(r) => r.into_inner(),
        // A member this caller may no longer read (or gone): the visit without the person's facts.
        Err(st) if matches!(st.code(), tonic::Code::NotFound | tonic::Code::PermissionDenied) => pb::Member::default(),
        Err(st) => return from_status(&st, &QUERY),
    };
    let base = crate::tx::member::baseinfo(&m);
    let mut row = json!({
        "mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no,
        "insutype": EMPLOYEE_BASIC, "psn_type": m.psn_type, "cvlserv_flag": "0", "insu_optins": visit.insuplc_admdvs,
        "emp_name": "", "begntime": national_datetime(&visit.begntime), "endtime": "", "mdtrt_cert_type": "",
        "med_type": visit.med_type, "ipt_otp_no": visit.ipt_otp_no, "dise_codg": visit.dise_code, "dise_name": "",
        "fixmedins_code": visit.fixmedins_code, "status": visit.status, "setl_id": visit.setl_id, "medfee_sumamt": visit.medfee_sumamt,
    });
    for k in ["psn_cert_type", "certno", "psn_name", "gend", "naty", "brdy", "age"] {
        row[k] = base[k].clone();
    }
    Answer::done(json!({ "mdtrtinfo": [row] }))
}
