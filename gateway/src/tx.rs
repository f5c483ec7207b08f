//! The transactions, by `infno`: national input → a `clearinghouse.v1` call → national output. Input and
//! output field names are the national interface's wherever one exists; the few of ours are named in
//! the README's transaction table. Field errors name the national path (`input.feedetail[2].cnt`).

use crate::envelope::{Answer, Envelope, from_status, national_time, text};
use crate::paas::Paas;
use axum::http::HeaderMap;
use clearing_edge::authz::FORWARDED_HEADER;
use clearing_edge::fields::{Violations, parse_money, signed_fen};
use proto::v1 as pb;
use proto::v1::catalogue_client::CatalogueClient;
use proto::v1::clearing_client::ClearingClient;
use proto::v1::netting_client::NettingClient;
use proto::v1::registry_client::RegistryClient;
use region_adapter::limits::MAX_LINES_PER_CLAIM;
use region_adapter::money::{MAX_AMOUNT_FEN, fmt_yuan};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tonic::transport::Channel;

/// The transactions served, in the order of the README's table.
pub const SERVED: &[&str] = &["1101", "1312", "2201", "2202", "2204", "2205", "2206", "2207", "2208", "3201", "3202", "9001", "9002"];

/// `feedetl_sn` length (national: 30).
pub const MAX_FEEDETL_SN_LEN: usize = 30;
/// Other text fields of an input.
pub const MAX_FIELD_LEN: usize = 64;
/// Items of one 3202 call (the same bound as clearing's detail reconciliation).
pub const MAX_RECONCILE_ITEMS: usize = 100_000;

/// `insutype` of employee basic medical insurance, the only insurance settled here.
const EMPLOYEE_BASIC: &str = "310";

/// One request's context: who, what, and how long it may take.
pub struct Call<'a> {
    pub paas: &'a Paas,
    pub env: &'a Envelope,
    pub headers: &'a HeaderMap,
    pub deadline: Duration,
}

impl Call<'_> {
    /// A gRPC request carrying the authenticated caller, the trace context and the deadline.
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.deadline);
        let fwd = format!("{}:{}:{}", self.paas.role.name(), self.paas.admdvs, self.paas.paasid);
        r.metadata_mut().insert(FORWARDED_HEADER, fwd.parse().expect("paasid is checked at load"));
        if !clearing_edge::telemetry::inject_current(r.metadata_mut()) {
            // Export off: pass the caller's own trace context on, so clearing's logs carry its trace id.
            for h in ["traceparent", "tracestate"] {
                if let Some(v) = self.headers.get(h).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) {
                    r.metadata_mut().insert(h, v);
                }
            }
        }
        r
    }
}

/// The gRPC clients of one `clearing` endpoint (one channel, shared).
#[derive(Clone)]
pub struct Clients {
    pub channel: Channel,
}

/// Runs the transaction `call.env.infno`.
pub async fn dispatch(clients: &Clients, call: &Call<'_>) -> Answer {
    match call.env.infno.as_str() {
        "1101" => member_info(clients, call).await,
        "1312" => catalogue(clients, call).await,
        "2201" => register_visit(clients, call).await,
        "2202" => cancel_visit(clients, call).await,
        "2204" => upload_fee_details(clients, call).await,
        "2205" => cancel_fee_details(clients, call).await,
        "2206" | "2207" if has_mdtrt_id(call.env) => settle_visit(clients, call, call.env.infno == "2207").await,
        "2206" => settle(clients, call, false).await,
        "2207" => settle(clients, call, true).await,
        "2208" => reverse(clients, call).await,
        "3201" => reconcile_totals(clients, call).await,
        "3202" => reconcile_detail(clients, call).await,
        "9001" => Answer::done(json!({ "signinoutb": { "sign_time": national_time(), "sign_no": sign_no(call) } })),
        "9002" => Answer::done(json!({ "signoutoutb": { "sign_time": national_time() } })),
        other => Answer::invalid(format!("infno: {other} is not served here; this gateway serves {}", SERVED.join(", "))),
    }
}

/// A sign-in number: the national gateway hands one out; nothing here depends on it (the x-tif
/// signature authenticates every call), so it is random-looking and unstored.
fn sign_no(call: &Call<'_>) -> String {
    use sha2::Digest;
    let seed = format!("{}|{}|{}", call.paas.paasid, call.env.msgid, chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
    hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..16])
}

/// Reads the fields of one input object, collecting every problem with its national path.
struct Fields<'a> {
    v: &'a mut Violations,
}

impl Fields<'_> {
    fn obj<'m>(&mut self, parent: &'m Map<String, Value>, path: &str, name: &str) -> Option<&'m Map<String, Value>> {
        match parent.get(name) {
            Some(Value::Object(m)) => Some(m),
            None | Some(Value::Null) => {
                self.v.add(format!("{path}.{name}"), "required");
                None
            }
            Some(_) => {
                self.v.add(format!("{path}.{name}"), "must be an object");
                None
            }
        }
    }
    fn list<'m>(&mut self, parent: &'m Map<String, Value>, path: &str, name: &str) -> Option<&'m Vec<Value>> {
        match parent.get(name) {
            Some(Value::Array(a)) => Some(a),
            None | Some(Value::Null) => {
                self.v.add(format!("{path}.{name}"), "required");
                None
            }
            Some(_) => {
                self.v.add(format!("{path}.{name}"), "must be a list");
                None
            }
        }
    }
    /// A text (or number) field; `""` when absent and optional.
    fn text(&mut self, m: &Map<String, Value>, path: &str, name: &str, required: bool, max: usize) -> String {
        let at = || format!("{path}.{name}");
        match m.get(name) {
            None | Some(Value::Null) => {
                if required {
                    self.v.add(at(), "required");
                }
                String::new()
            }
            Some(x) => match text(Some(x)) {
                None => {
                    self.v.add(at(), "must be a string or a number");
                    String::new()
                }
                Some(s) if s.is_empty() && required => {
                    self.v.add(at(), "required");
                    s
                }
                Some(s) if s.chars().count() > max => {
                    self.v.add(at(), format!("at most {max} characters"));
                    String::new()
                }
                Some(s) => s,
            },
        }
    }
    /// A flag "1"/"0" (also 1/0, true/false); absent = false.
    fn flag(&mut self, m: &Map<String, Value>, path: &str, name: &str) -> bool {
        match m.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(x) => match text(Some(x)).as_deref() {
                Some("1") => true,
                Some("0") | Some("") => false,
                _ => {
                    self.v.add(format!("{path}.{name}"), "must be \"1\" or \"0\"");
                    false
                }
            },
        }
    }
    /// A level 1–3; absent = 0.
    fn level(&mut self, m: &Map<String, Value>, path: &str, name: &str) -> u32 {
        let s = self.text(m, path, name, false, 2);
        if s.is_empty() {
            return 0;
        }
        match s.parse::<u32>() {
            Ok(n @ 1..=3) => n,
            _ => {
                self.v.add(format!("{path}.{name}"), "must be 1, 2 or 3");
                0
            }
        }
    }
}

fn invalid(v: Violations) -> Answer {
    Answer::fields(&v.0.into_iter().map(|f| (f.field, f.description)).collect::<Vec<_>>())
}

/// A national time "yyyy-MM-dd HH:mm:ss" (Beijing time) or RFC 3339, as RFC 3339.
fn rfc3339_of(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    naive.and_local_timezone(chrono::FixedOffset::east_opt(8 * 3600)?).single()
}

// ---------------------------------------------------------------------------------------------------
// 2206 / 2207: pre-settle and settle

/// A claim field's national path in 2206/2207.
fn claim_field(f: &str) -> String {
    if let Some(rest) = f.strip_prefix("lines") {
        // lines[i].field → input.feedetail[i].field (hilist_code is med_list_codg there).
        return format!("input.feedetail{}", rest.replace(".hilist_code", ".med_list_codg"));
    }
    match f {
        "msgid" | "insuplc_admdvs" | "fixmedins_code" => f.into(),
        "mdtrt_admdvs" => "mdtrtarea_admvs".into(),
        "setl_time" => "input.feedetail[].fee_ocur_time".into(),
        "dise_code" => "input.data.dise_codg".into(),
        "" => "input".into(),
        _ => format!("input.data.{f}"),
    }
}

/// The claim of a 2206/2207 input, or every problem with it. Returns the lines' `feedetl_sn`s too.
fn claim_of(env: &Envelope) -> Result<(pb::Claim, Vec<String>), Answer> {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    if env.insuplc_admdvs.is_empty() {
        f.v.add("insuplc_admdvs", "required for 2206/2207");
    }
    let data = f.obj(&env.input, "input", "data");
    let details = f.list(&env.input, "input", "feedetail");
    let mut claim = pb::Claim {
        msgid: env.msgid.clone(),
        insuplc_admdvs: env.insuplc_admdvs.clone(),
        mdtrt_admdvs: env.mdtrtarea_admvs.clone(),
        fixmedins_code: env.fixmedins_code.clone(),
        ..Default::default()
    };
    let mut medfee = None;
    if let Some(d) = data {
        let p = "input.data";
        claim.psn_no = f.text(d, p, "psn_no", true, MAX_FIELD_LEN);
        let insutype = f.text(d, p, "insutype", false, 8);
        if !insutype.is_empty() && insutype != EMPLOYEE_BASIC {
            f.v.add("input.data.insutype", "only 310 (employee basic medical insurance) is settled here");
        }
        claim.med_type = f.text(d, p, "med_type", true, 8);
        claim.hosp_lv = f.level(d, p, "hosp_lv");
        claim.prescribing_hosp_lv = f.level(d, p, "prescribing_hosp_lv");
        claim.dise_code = f.text(d, p, "dise_codg", false, MAX_FIELD_LEN);
        claim.acct_used_flag = f.flag(d, p, "acct_used_flag");
        claim.acct_payer_psn_no = f.text(d, p, "acct_payer_psn_no", false, MAX_FIELD_LEN);
        let m = f.text(d, p, "medfee_sumamt", true, 32);
        if !m.is_empty() {
            medfee = parse_money(f.v, "input.data.medfee_sumamt", &m, MAX_AMOUNT_FEN);
        }
    }
    let mut sns = Vec::new();
    if let Some(list) = details {
        if list.is_empty() {
            f.v.add("input.feedetail", "at least one fee detail");
        }
        if list.len() > MAX_LINES_PER_CLAIM {
            f.v.add("input.feedetail", format!("{} details; at most {MAX_LINES_PER_CLAIM} per claim", list.len()));
        }
        let mut seen = HashSet::new();
        let mut latest: Option<chrono::DateTime<chrono::FixedOffset>> = None;
        let mut sum = Some(0i64);
        for (i, item) in list.iter().take(MAX_LINES_PER_CLAIM).enumerate() {
            let p = format!("input.feedetail[{i}]");
            let Value::Object(item) = item else {
                f.v.add(p, "must be an object");
                sum = None;
                continue;
            };
            let sn = f.text(item, &p, "feedetl_sn", true, MAX_FEEDETL_SN_LEN);
            if !sn.is_empty() && !seen.insert(sn.clone()) {
                f.v.add(format!("{p}.feedetl_sn"), format!("{sn} appears twice in this claim"));
            }
            sns.push(sn);
            let line = pb::ClaimLine {
                hilist_code: f.text(item, &p, "med_list_codg", true, 50),
                cnt: f.text(item, &p, "cnt", true, 32),
                pric: f.text(item, &p, "pric", true, 32),
                det_item_fee_sumamt: f.text(item, &p, "det_item_fee_sumamt", true, 32),
            };
            let t = f.text(item, &p, "fee_ocur_time", true, 32);
            if !t.is_empty() {
                match rfc3339_of(&t) {
                    Some(t) => latest = Some(latest.map_or(t, |l| l.max(t))),
                    None => f.v.add(format!("{p}.fee_ocur_time"), "must be yyyy-MM-dd HH:mm:ss (Beijing time)"),
                }
            }
            sum = sum.zip(signed_fen(&line.det_item_fee_sumamt)).map(|(a, b)| a + b);
            claim.lines.push(line);
        }
        // The visit's time is its latest fee: the same details give the same claim however often
        // they are sent (a resend is idempotent on msgid).
        if let Some(t) = latest {
            claim.setl_time = t.to_rfc3339();
        }
        if let (Some(m), Some(s)) = (medfee, sum)
            && m != s
        {
            f.v.add(
                "input.data.medfee_sumamt",
                format!("{} is not the sum of input.feedetail[].det_item_fee_sumamt ({})", fmt_yuan(m), fmt_yuan(s)),
            );
        }
    }
    if !v.0.is_empty() {
        return Err(invalid(v));
    }
    Ok((claim, sns))
}

async fn settle(clients: &Clients, call: &Call<'_>, record: bool) -> Answer {
    let (claim, sns) = match claim_of(call.env) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let mut c = ClearingClient::new(clients.channel.clone());
    let r = if record { c.settle_claim(call.request(claim)).await } else { c.preview_claim(call.request(claim)).await };
    match r {
        Ok(s) => Answer::done(settlement_output(&s.into_inner(), &sns)),
        Err(st) => from_status(&st, claim_field),
    }
}

/// `output` of 2206/2207/2208: `setlinfo` (every amount), `setldetail` (fund payments by type),
/// `detlcutinfo` (each line's split), and our explanation.
fn settlement_output(s: &pb::Settlement, sns: &[String]) -> Value {
    let zero = "0.00";
    let setlinfo = json!({
        "setl_id": s.setl_id,
        "mdtrt_id": "",
        "psn_no": s.psn_no,
        "insutype": EMPLOYEE_BASIC,
        "psn_type": s.psn_type,
        "setl_time": s.setl_time,
        "clr_date": s.clr_date,
        "med_type": s.med_type,
        "medfee_sumamt": s.medfee_sumamt,
        "fulamt_ownpay_amt": s.fulamt_ownpay_amt,
        "overlmt_selfpay": s.overlmt_selfpay,
        "preselfpay_amt": s.preselfpay_amt,
        "inscp_scp_amt": s.inscp_scp_amt,
        "act_pay_dedc": s.act_pay_dedc,
        "hifp_pay": s.hifp_pay,
        "pool_prop_selfpay": s.pool_prop_selfpay,
        "cvlserv_pay": zero,
        "hifes_pay": zero,
        "hifmi_pay": zero,
        "hifob_pay": zero,
        "maf_pay": zero,
        "oth_pay": zero,
        "fund_pay_sumamt": s.fund_pay_sumamt,
        "psn_part_amt": s.psn_part_amt,
        "acct_pay": s.acct_pay,
        "acct_mulaid_pay": s.acct_mulaid_pay,
        "psn_cash_pay": s.psn_cash_pay,
        "hosp_part_amt": zero,
        "balc": s.balc,
        "medins_setl_id": s.msgid,
        "clr_optins": s.insuplc_admdvs,
        "insuplc_admdvs": s.insuplc_admdvs,
        "mdtrtarea_admvs": s.mdtrt_admdvs,
        "fixmedins_code": s.fixmedins_code,
        "hosp_lv": s.hosp_lv,
        "hifp_ratio": s.hifp_ratio,
        "refd_setl_flag": if s.refd_setl_flag { "1" } else { "0" },
        "orig_setl_id": s.orig_setl_id,
        "recorded": s.recorded,
    });
    let setldetail = json!([{
        "fund_pay_type": "310100",
        "fund_pay_type_name": "职工基本医疗保险统筹基金",
        "inscp_scp_amt": s.inscp_scp_amt,
        "fund_payamt": s.hifp_pay,
    }]);
    let lines: Vec<Value> = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "feedetl_sn": sns.get(i).cloned().unwrap_or_default(),
                "med_list_codg": l.hilist_code,
                "hilist_name": l.hilist_name,
                "chrgitm_lv": l.chrgitm_lv,
                "selfpay_prop": l.selfpay_prop,
                "det_item_fee_sumamt": l.det_item_fee_sumamt,
                "fulamt_ownpay_amt": l.fulamt_ownpay_amt,
                "overlmt_amt": l.overlmt_selfpay,
                "preselfpay_amt": l.preselfpay_amt,
                "inscp_scp_amt": l.inscp_scp_amt,
            })
        })
        .collect();
    json!({ "setlinfo": setlinfo, "setldetail": setldetail, "detlcutinfo": lines, "explanation": s.explanation })
}

// ---------------------------------------------------------------------------------------------------
// The hospital's flow: 2201 register, 2204 upload details, 2205 cancel details, 2202 cancel, then
// 2206/2207 with data.mdtrt_id.

fn has_mdtrt_id(env: &Envelope) -> bool {
    matches!(env.input.get("data"), Some(Value::Object(d)) if text(d.get("mdtrt_id")).is_some_and(|m| !m.is_empty()))
}

fn register_field(f: &str) -> String {
    match f {
        "msgid" | "insuplc_admdvs" | "fixmedins_code" => f.into(),
        "mdtrt_admdvs" => "mdtrtarea_admvs".into(),
        "dise_code" => "input.data.dise_codg".into(),
        _ => format!("input.data.{f}"),
    }
}

fn visit_data_field(f: &str) -> String {
    match f {
        "msgid" => "msgid".into(),
        _ => format!("input.data.{f}"),
    }
}

fn upload_field(f: &str) -> String {
    if let Some(rest) = f.strip_prefix("details") {
        return format!("input.feedetail{}", rest.replace(".hilist_code", ".med_list_codg"));
    }
    match f {
        "mdtrt_id" => "input.feedetail[].mdtrt_id".into(),
        _ => format!("input.{f}"),
    }
}

/// A required time "yyyy-MM-dd HH:mm:ss" (Beijing time) or RFC 3339, as RFC 3339.
fn time_of(f: &mut Fields<'_>, m: &Map<String, Value>, path: &str, name: &str) -> String {
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

fn check_insutype(f: &mut Fields<'_>, d: &Map<String, Value>) {
    let insutype = f.text(d, "input.data", "insutype", false, 8);
    if !insutype.is_empty() && insutype != EMPLOYEE_BASIC {
        f.v.add("input.data.insutype", "only 310 (employee basic medical insurance) is settled here");
    }
}

async fn register_visit(clients: &Clients, call: &Call<'_>) -> Answer {
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
        Err(st) => from_status(&st, register_field),
    }
}

async fn upload_fee_details(clients: &Clients, call: &Call<'_>) -> Answer {
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
                    })
                })
                .collect();
            Answer::done(json!({ "result": result, "mdtrt_id": r.mdtrt_id, "medfee_sumamt": r.medfee_sumamt }))
        }
        Err(st) => from_status(&st, upload_field),
    }
}

fn visit_summary(v: &pb::Visit) -> Value {
    json!({ "mdtrt_id": v.mdtrt_id, "status": v.status, "medfee_sumamt": v.medfee_sumamt, "details": v.details.len() })
}

async fn cancel_fee_details(clients: &Clients, call: &Call<'_>) -> Answer {
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
        Err(st) => from_status(&st, visit_data_field),
    }
}

async fn cancel_visit(clients: &Clients, call: &Call<'_>) -> Answer {
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
        Err(st) => from_status(&st, visit_data_field),
    }
}

/// 2206/2207 of a registered visit: the uploaded details are the claim's lines.
async fn settle_visit(clients: &Clients, call: &Call<'_>, record: bool) -> Answer {
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
            let mut out = settlement_output(&s.into_inner(), &sns);
            out["setlinfo"]["mdtrt_id"] = json!(mdtrt_id);
            Answer::done(out)
        }
        Err(st) => from_status(&st, visit_data_field),
    }
}

// ---------------------------------------------------------------------------------------------------
// 2208: cancel a settlement

fn reverse_field(f: &str) -> String {
    match f {
        "msgid" => "msgid".into(),
        "reason" => "input.data.memo".into(),
        _ => format!("input.data.{f}"),
    }
}

async fn reverse(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut req = pb::ReverseClaimRequest { msgid: call.env.msgid.clone(), ..Default::default() };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        req.setl_id = f.text(d, "input.data", "setl_id", true, MAX_FIELD_LEN);
        req.reason = f.text(d, "input.data", "memo", false, 256);
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match ClearingClient::new(clients.channel.clone()).reverse_claim(call.request(req)).await {
        Ok(s) => Answer::done(settlement_output(&s.into_inner(), &[])),
        Err(st) => from_status(&st, reverse_field),
    }
}

// ---------------------------------------------------------------------------------------------------
// 1101: member information

fn member_field(f: &str) -> String {
    match f {
        "insuplc_admdvs" => "insuplc_admdvs".into(),
        _ => format!("input.data.{f}"),
    }
}

async fn member_info(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut q = pb::GetMemberRequest { insuplc_admdvs: call.env.insuplc_admdvs.clone(), ..Default::default() };
    if q.insuplc_admdvs.is_empty() {
        f.v.add("insuplc_admdvs", "required for 1101");
    }
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        q.psn_no = f.text(d, "input.data", "psn_no", true, MAX_FIELD_LEN);
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match RegistryClient::new(clients.channel.clone()).get_member(call.request(q)).await {
        Ok(m) => {
            let m = m.into_inner();
            Answer::done(json!({
                "baseinfo": { "psn_no": m.psn_no, "insuplc_admdvs": m.insuplc_admdvs },
                "insuinfo": [{
                    "insutype": EMPLOYEE_BASIC,
                    "psn_type": m.psn_type,
                    "psn_insu_stas": "1",
                    "balc": m.acct_balc,
                    "insuplc_admdvs": m.insuplc_admdvs,
                    "retire_date": m.retire_date,
                    "pooling_only": if m.pooling_only { "1" } else { "0" },
                }],
                "filings": m.filings.iter().map(|f| json!({ "mdtrtarea_admdvs": f.mdtrt_admdvs, "begndate": f.begndate, "enddate": f.enddate })).collect::<Vec<_>>(),
                "cuminfo": m.accumulators.iter().map(|a| json!({
                    "year": a.year, "benefit": a.benefit, "deductible_used": a.deductible_used, "fund_paid": a.fund_paid, "visits": a.visits,
                })).collect::<Vec<_>>(),
            }))
        }
        Err(st) => from_status(&st, member_field),
    }
}

// ---------------------------------------------------------------------------------------------------
// 1312: catalogue query

fn catalogue_field(f: &str) -> String {
    match f {
        "admdvs" => "mdtrtarea_admvs".into(),
        "date" => "input.data.query_date".into(),
        _ => format!("input.data.{f}"),
    }
}

async fn catalogue(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let empty = Map::new();
    let d = match call.env.input.get("data") {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    let p = "input.data";
    let mut q = pb::ListCatalogueItemsRequest { admdvs: call.env.mdtrtarea_admvs.clone(), ..Default::default() };
    q.date = f.text(d, p, "query_date", false, 10);
    if q.date.is_empty() {
        q.date = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).date_naive().to_string();
    }
    let num = |f: &mut Fields<'_>, name: &str, default: u32| {
        let s = f.text(d, p, name, false, 6);
        if s.is_empty() {
            return default;
        }
        s.parse::<u32>().ok().filter(|n| *n > 0).unwrap_or_else(|| {
            f.v.add(format!("{p}.{name}"), "must be a positive whole number");
            default
        })
    };
    q.page_num = num(&mut f, "page_num", 1);
    q.page_size = num(&mut f, "page_size", clearing_edge::limits::DEFAULT_PAGE_SIZE);
    if !v.0.is_empty() {
        return invalid(v);
    }
    let (page_num, page_size) = (q.page_num, q.page_size);
    match CatalogueClient::new(clients.channel.clone()).list_catalogue_items(call.request(q)).await {
        Ok(r) => {
            let r = r.into_inner();
            let data: Vec<Value> = r
                .items
                .iter()
                .map(|i| {
                    json!({
                        "hilist_code": i.hilist_code, "hilist_name": i.hilist_name, "chrgitm_lv": i.chrgitm_lv,
                        "selfpay_prop": i.selfpay_prop, "pric_uplmt_amt": i.pric_uplmt_amt, "list_type": i.list_type,
                        "begndate": i.begndate, "enddate": i.enddate, "insu_admdvs": call.env.mdtrtarea_admvs,
                    })
                })
                .collect();
            Answer::done(json!({
                "page_num": page_num, "page_size": page_size, "size": data.len(),
                "last_page": r.next_page_token.is_empty(), "sample": r.sample, "data": data,
            }))
        }
        Err(st) => from_status(&st, catalogue_field),
    }
}

// ---------------------------------------------------------------------------------------------------
// 3201 / 3202: reconciliation of the caller's service location for one clearing day

fn reconcile_field(f: &str) -> String {
    if let Some(rest) = f.strip_prefix("items") {
        return format!("input.detail{rest}");
    }
    match f {
        "mdtrt_admdvs" => "mdtrtarea_admvs".into(),
        "clr_date" => "input.data.stmt_begndate".into(),
        "count" => "input.data.fixmedins_setl_cnt".into(),
        _ => format!("input.data.{f}"),
    }
}

/// The clearing day of a reconciliation: `stmt_begndate` = `stmt_enddate` (one window per call).
fn stmt_day(f: &mut Fields<'_>, d: &Map<String, Value>) -> String {
    let p = "input.data";
    let b = f.text(d, p, "stmt_begndate", true, 10);
    let e = f.text(d, p, "stmt_enddate", false, 10);
    if !e.is_empty() && e != b {
        f.v.add("input.data.stmt_enddate", "one clearing day per call: must equal stmt_begndate");
    }
    b
}

fn stmt_output(env: &Envelope, r: &pb::ReconcileResult) -> Value {
    let diffs: Vec<Value> = r
        .differences
        .iter()
        .map(|d| json!({ "kind": d.kind, "setl_id": d.setl_id, "field": d.field, "ours": d.ours, "theirs": d.theirs }))
        .collect();
    json!({
        "stmtinfo": {
            "setl_optins": env.mdtrtarea_admvs,
            "stmt_rslt": if r.matched { "0" } else { "1" },
            "stmt_rslt_dscr": if r.matched { "matched".to_string() } else { format!("{} differences", r.differences_total) },
        },
        "compared": r.compared,
        "differences_total": r.differences_total,
        "differences": diffs,
    })
}

async fn reconcile_totals(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut q = pb::ReconcileTotalsRequest { mdtrt_admdvs: call.env.mdtrtarea_admvs.clone(), ..Default::default() };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        let p = "input.data";
        q.clr_date = stmt_day(&mut f, d);
        q.medfee_sumamt = f.text(d, p, "medfee_sumamt", true, 32);
        q.fund_pay_sumamt = f.text(d, p, "fund_pay_sumamt", true, 32);
        q.acct_pay = f.text(d, p, "acct_pay", true, 32);
        let cnt = f.text(d, p, "fixmedins_setl_cnt", true, 12);
        match cnt.parse::<i64>() {
            Ok(n) => q.count = n,
            Err(_) if cnt.is_empty() => {}
            Err(_) => f.v.add("input.data.fixmedins_setl_cnt", "must be a whole number"),
        }
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match NettingClient::new(clients.channel.clone()).reconcile_totals(call.request(q)).await {
        Ok(r) => Answer::done(stmt_output(call.env, &r.into_inner())),
        Err(st) => from_status(&st, reconcile_field),
    }
}

async fn reconcile_detail(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut msg = pb::ReconcileDetailRequest { mdtrt_admdvs: call.env.mdtrtarea_admvs.clone(), ..Default::default() };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        msg.clr_date = stmt_day(&mut f, d);
    }
    if let Some(items) = f.list(&call.env.input, "input", "detail") {
        if items.len() > MAX_RECONCILE_ITEMS {
            f.v.add("input.detail", format!("at most {MAX_RECONCILE_ITEMS} items per call"));
        }
        for (i, it) in items.iter().take(MAX_RECONCILE_ITEMS).enumerate() {
            let p = format!("input.detail[{i}]");
            let Value::Object(it) = it else {
                f.v.add(p, "must be an object");
                continue;
            };
            msg.items.push(pb::ReconcileItem {
                setl_id: f.text(it, &p, "setl_id", true, MAX_FIELD_LEN),
                medfee_sumamt: f.text(it, &p, "medfee_sumamt", true, 32),
                fund_pay_sumamt: f.text(it, &p, "fund_pay_sumamt", true, 32),
                acct_pay: f.text(it, &p, "acct_pay", true, 32),
            });
        }
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    let stream = tokio_stream::iter([msg]);
    match NettingClient::new(clients.channel.clone()).reconcile_detail(call.request(stream)).await {
        Ok(r) => Answer::done(stmt_output(call.env, &r.into_inner())),
        Err(st) => from_status(&st, reconcile_field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(input: Value) -> Envelope {
        Envelope {
            infno: "2207".into(),
            msgid: "H42130200746202403100930000001".into(),
            mdtrtarea_admvs: "421300".into(),
            insuplc_admdvs: "360100".into(),
            fixmedins_code: "H42130200746".into(),
            input: input.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn a_2207_input_becomes_a_claim_and_its_problems_are_named_by_national_path() {
        let good = json!({
            "data": { "psn_no": "NC1", "med_type": "11", "medfee_sumamt": 30.5, "acct_used_flag": "1", "insutype": "310" },
            "feedetail": [
                { "feedetl_sn": "1", "med_list_codg": "001201000010000", "cnt": 1, "pric": "20.5", "det_item_fee_sumamt": "20.50", "fee_ocur_time": "2024-03-10 09:30:00" },
                { "feedetl_sn": "2", "med_list_codg": "001201000010000", "cnt": "1", "pric": 10, "det_item_fee_sumamt": 10, "fee_ocur_time": "2024-03-10 09:40:00" }
            ]
        });
        let (c, sns) = claim_of(&env(good)).unwrap();
        assert_eq!((c.lines.len(), c.setl_time.as_str(), c.acct_used_flag, c.hosp_lv), (2, "2024-03-10T09:40:00+08:00", true, 0));
        assert_eq!((c.lines[0].cnt.as_str(), c.lines[1].pric.as_str()), ("1", "10"));
        assert_eq!(sns, ["1", "2"]);
        let bad = json!({
            "data": { "psn_no": "NC1", "med_type": "11", "medfee_sumamt": "31.00", "insutype": "390" },
            "feedetail": [
                { "feedetl_sn": "1", "med_list_codg": "001201000010000", "cnt": 1, "pric": "20.5", "det_item_fee_sumamt": "20.50", "fee_ocur_time": "2024-03-10 09:30:00" },
                { "feedetl_sn": "1", "cnt": 1, "pric": 10, "det_item_fee_sumamt": 10, "fee_ocur_time": "yesterday" }
            ]
        });
        let e = claim_of(&env(bad)).unwrap_err().err_msg;
        for want in [
            "input.data.insutype",
            "input.feedetail[1].feedetl_sn: 1 appears twice",
            "input.feedetail[1].med_list_codg: required",
            "input.feedetail[1].fee_ocur_time",
            "input.data.medfee_sumamt: 31.00 is not the sum of input.feedetail[].det_item_fee_sumamt (30.50)",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        assert_eq!(claim_field("lines[2].hilist_code"), "input.feedetail[2].med_list_codg");
        assert_eq!(claim_field("lines[2].cnt"), "input.feedetail[2].cnt");
        assert_eq!(claim_field("mdtrt_admdvs"), "mdtrtarea_admvs");
    }
}
