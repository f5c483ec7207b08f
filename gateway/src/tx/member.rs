//! 1101 (member information) and 1312 (catalogue query).

use super::*;

/// 1101 by person number or by certificate number (`certno`, 01's decoded number): its fields by
/// their national path.
pub(crate) const MEMBER: FieldPaths = FieldPaths { named: &[("insuplc_admdvs", "insuplc_admdvs")], list: None, rest: "input.data" };
/// 1101 by the number on the card (02, 03): `certno` is `mdtrt_cert_no`.
const MEMBER_BY_CARD: FieldPaths =
    FieldPaths { named: &[("insuplc_admdvs", "insuplc_admdvs"), ("certno", "input.data.mdtrt_cert_no")], list: None, rest: "input.data" };

/// The resident ID card's certificate type (psn_cert_type 01), which mdtrt_cert_type 02 and 03 carry.
const RESIDENT_ID: &str = "01";

/// 1312's fields by their national path.
pub(crate) const CATALOGUE: FieldPaths =
    FieldPaths { named: &[("admdvs", "mdtrtarea_admvs"), ("date", "input.data.query_date")], list: None, rest: "input.data" };

/// How 1101 names the person: by certificate (the national way), or by our `psn_no`.
enum Who {
    Certificate(pb::FindMemberRequest, &'static FieldPaths),
    PsnNo(pb::GetMemberRequest),
}

/// Reads 1101's input: `mdtrt_cert_type` 02 (居民身份证) and 03 (社会保障卡) carry the resident ID number
/// in `mdtrt_cert_no`; 01 (电子凭证) carries a token only the national e-voucher centre resolves, so the
/// HIS sends the decoded `psn_cert_type` and `certno` beside it. A `psn_no` (ours) is read as before.
fn who(call: &Call<'_>, v: &mut Violations) -> Who {
    let mut f = Fields { v };
    let empty = Map::new();
    let d = f.obj(&call.env.input, "input", "data").unwrap_or(&empty);
    let p = "input.data";
    let psn_no = f.text(d, p, "psn_no", false, MAX_FIELD_LEN);
    let cert_type = f.text(d, p, "mdtrt_cert_type", false, 3);
    let cert_no = f.text(d, p, "mdtrt_cert_no", false, 50);
    let card_sn = f.text(d, p, "card_sn", false, 32);
    let psn_cert_type = f.text(d, p, "psn_cert_type", false, 6);
    let certno = f.text(d, p, "certno", false, 50);
    let psn_name = f.text(d, p, "psn_name", false, 50);
    let insuplc_admdvs = call.env.insuplc_admdvs.clone();
    if !psn_no.is_empty() {
        if insuplc_admdvs.is_empty() {
            f.v.add("insuplc_admdvs", "required for 1101 by psn_no");
        }
        return Who::PsnNo(pb::GetMemberRequest { insuplc_admdvs, psn_no, year: 0 });
    }
    let find = |psn_cert_type: String, certno: String| pb::FindMemberRequest {
        psn_cert_type,
        certno,
        psn_name: psn_name.clone(),
        insuplc_admdvs: insuplc_admdvs.clone(),
        year: 0,
    };
    match cert_type.as_str() {
        "02" | "03" => {
            if cert_no.is_empty() {
                f.v.add(format!("{p}.mdtrt_cert_no"), format!("required: the resident ID number (mdtrt_cert_type {cert_type})"));
            }
            if cert_type == "03" && card_sn.is_empty() {
                f.v.add(format!("{p}.card_sn"), "required with mdtrt_cert_type 03 (社会保障卡)");
            }
            if !psn_cert_type.is_empty() && psn_cert_type != RESIDENT_ID {
                f.v.add(format!("{p}.psn_cert_type"), format!("must be 01 (居民身份证) or absent with mdtrt_cert_type {cert_type}"));
            }
            if !certno.is_empty() && !certno.eq_ignore_ascii_case(&cert_no) {
                f.v.add(format!("{p}.certno"), "differs from mdtrt_cert_no");
            }
            Who::Certificate(find(RESIDENT_ID.into(), cert_no), &MEMBER_BY_CARD)
        }
        "01" => {
            if cert_no.is_empty() {
                f.v.add(format!("{p}.mdtrt_cert_no"), "required: the e-voucher token (mdtrt_cert_type 01)");
            }
            for (name, value) in [("psn_cert_type", &psn_cert_type), ("certno", &certno)] {
                if value.is_empty() {
                    f.v.add(
                        format!("{p}.{name}"),
                        "required with mdtrt_cert_type 01: the e-voucher token is resolved by the national e-voucher centre, not here; send the decoded psn_cert_type and certno",
                    );
                }
            }
            Who::Certificate(find(psn_cert_type, certno), &MEMBER)
        }
        "" => {
            f.v.add(format!("{p}.mdtrt_cert_type"), "required: 01 (电子凭证), 02 (居民身份证) or 03 (社会保障卡)");
            Who::Certificate(find(String::new(), String::new()), &MEMBER)
        }
        _ => {
            f.v.add(format!("{p}.mdtrt_cert_type"), "must be 01 (电子凭证), 02 (居民身份证) or 03 (社会保障卡)");
            Who::Certificate(find(String::new(), String::new()), &MEMBER)
        }
    }
}

pub(crate) async fn member_info(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let who = who(call, &mut v);
    if !v.0.is_empty() {
        return invalid(v);
    }
    let mut registry = RegistryClient::new(clients.channel.clone());
    let (members, paths) = match who {
        Who::PsnNo(q) => match registry.get_member(call.request(q)).await {
            Ok(m) => (vec![m.into_inner()], &MEMBER),
            Err(st) => return from_status(&st, &MEMBER),
        },
        Who::Certificate(q, paths) => match registry.find_member(call.request(q)).await {
            Ok(r) => (r.into_inner().members, paths),
            Err(st) => return from_status(&st, paths),
        },
    };
    let Some(first) = members.first() else {
        return from_status(&tonic::Status::not_found("member not found"), paths);
    };
    Answer::done(member_output(first, &members))
}

/// Age in whole years on `today`.
fn age_on(brdy: chrono::NaiveDate, today: chrono::NaiveDate) -> u32 {
    use chrono::Datelike;
    let mut years = today.year() - brdy.year();
    if (today.month(), today.day()) < (brdy.month(), brdy.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// Who the member is, as 1101's `baseinfo` (5201's rows too): `age` in whole years today (Beijing),
/// `null` when the birth date is not on record.
pub(crate) fn baseinfo(m: &pb::Member) -> Value {
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).date_naive();
    let age = chrono::NaiveDate::parse_from_str(&m.brdy, "%Y-%m-%d").ok().map(|b| Value::from(age_on(b, today)));
    json!({
        "psn_no": m.psn_no, "psn_cert_type": m.psn_cert_type, "certno": m.certno, "psn_name": m.psn_name,
        "gend": m.gend, "naty": m.naty, "brdy": m.brdy, "age": age, "exp_content": "",
        "insuplc_admdvs": m.insuplc_admdvs,
    })
}

/// 1101's `output`: `baseinfo` of the person (the first membership), one `insuinfo` row per insured
/// region, no `idetinfo`; `filings` and `cuminfo` (ours) of the first membership.
fn member_output(m: &pb::Member, all: &[pb::Member]) -> Value {
    json!({
        "baseinfo": baseinfo(m),
        "insuinfo": all.iter().map(|m| json!({
            "balc": m.acct_balc,
            "insutype": EMPLOYEE_BASIC,
            "psn_type": m.psn_type,
            "psn_insu_stas": "1",
            "psn_insu_date": "",
            "paus_insu_date": "",
            "cvlserv_flag": "0",
            "insuplc_admdvs": m.insuplc_admdvs,
            "emp_name": "",
            "psn_no": m.psn_no,
            "retire_date": m.retire_date,
            "pooling_only": if m.pooling_only { "1" } else { "0" },
        })).collect::<Vec<_>>(),
        "idetinfo": [],
        "filings": m.filings.iter().map(|f| json!({ "mdtrtarea_admdvs": f.mdtrt_admdvs, "begndate": f.begndate, "enddate": f.enddate })).collect::<Vec<_>>(),
        "cuminfo": m.accumulators.iter().map(|a| json!({
            "year": a.year, "benefit": a.benefit, "deductible_used": a.deductible_used, "fund_paid": a.fund_paid, "visits": a.visits,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn catalogue(clients: &Clients, call: &Call<'_>) -> Answer {
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
    q.hilist_code = f.text(d, p, "hilist_code", false, 64);
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
                        "med_chrgitm_type": i.med_chrgitm_type, "lmt_used_flag": i.lmt_used_flag,
                    })
                })
                .collect();
            Answer::done(json!({
                "page_num": page_num, "page_size": page_size, "size": data.len(),
                "last_page": r.next_page_token.is_empty(), "sample": r.sample, "data": data,
            }))
        }
        Err(st) => from_status(&st, &CATALOGUE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_years() {
        let b = chrono::NaiveDate::from_ymd_opt(1980, 6, 15).unwrap();
        assert_eq!(age_on(b, chrono::NaiveDate::from_ymd_opt(2026, 6, 14).unwrap()), 45);
        assert_eq!(age_on(b, chrono::NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()), 46);
    }
}
