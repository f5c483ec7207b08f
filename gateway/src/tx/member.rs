//! 1101 (member information) and 1312 (catalogue query).

use super::*;

/// 1101's fields by their national path.
pub(crate) const MEMBER: FieldPaths = FieldPaths { named: &[("insuplc_admdvs", "insuplc_admdvs")], list: None, rest: "input.data" };

/// 1312's fields by their national path.
pub(crate) const CATALOGUE: FieldPaths =
    FieldPaths { named: &[("admdvs", "mdtrtarea_admvs"), ("date", "input.data.query_date")], list: None, rest: "input.data" };

pub(crate) async fn member_info(clients: &Clients, call: &Call<'_>) -> Answer {
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
        Err(st) => from_status(&st, &MEMBER),
    }
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
