//! 3201/3202: reconciliation of the caller's service location for one clearing day.

use super::*;

/// 3201/3202's fields by their national path.
pub(crate) const RECONCILE: FieldPaths = FieldPaths {
    named: &[
        ("mdtrt_admdvs", "mdtrtarea_admvs"),
        ("fixmedins_code", "fixmedins_code"),
        ("clr_date", "input.data.stmt_begndate"),
        ("clr_date_end", "input.data.stmt_enddate"),
        ("count", "input.data.fixmedins_setl_cnt"),
    ],
    list: Some(("items", "input.detail", &[])),
    rest: "input.data",
};

/// The clearing day of a reconciliation: `stmt_begndate` = `stmt_enddate` (one window per call).
pub(crate) fn stmt_day(f: &mut Fields<'_>, d: &Map<String, Value>) -> String {
    let p = "input.data";
    let b = f.text(d, p, "stmt_begndate", true, 10);
    let e = f.text(d, p, "stmt_enddate", false, 10);
    if !e.is_empty() && e != b {
        f.v.add("input.data.stmt_enddate", "one clearing day per call: must equal stmt_begndate");
    }
    b
}

pub(crate) fn stmt_output(env: &Envelope, r: &pb::ReconcileResult) -> Value {
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

pub(crate) async fn reconcile_totals(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    // The institution of the envelope: 3201 reconciles one institution's settlements.
    let mut q = pb::ReconcileTotalsRequest {
        mdtrt_admdvs: call.env.mdtrtarea_admvs.clone(),
        fixmedins_code: call.env.fixmedins_code.clone(),
        ..Default::default()
    };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        let p = "input.data";
        // A range of days (stmt_begndate to stmt_enddate, at most a month).
        q.clr_date = f.text(d, p, "stmt_begndate", true, 10);
        q.clr_date_end = f.text(d, p, "stmt_enddate", false, 10);
        // One group per call, as HIS code groups its settlements: employee insurance (310) only; the
        // clearing category is the institution's (11 outpatient at a hospital, 41 at a pharmacy); the
        // agency is the clr_optins our 2207 answered (the service location).
        let insutype = f.text(d, p, "insutype", false, 8);
        if !insutype.is_empty() && insutype != EMPLOYEE_BASIC {
            f.v.add("input.data.insutype", "only 310 (employee basic medical insurance) is settled here");
        }
        let clr_type = f.text(d, p, "clr_type", false, 8);
        let ours = if call.env.fixmedins_code.starts_with('P') { "41" } else { "11" };
        if !clr_type.is_empty() && clr_type != ours {
            f.v.add("input.data.clr_type", format!("{} settles clr_type {ours} here", call.env.fixmedins_code));
        }
        let optins = f.text(d, p, "setl_optins", false, 8);
        if !optins.is_empty() && optins != call.env.mdtrtarea_admvs {
            f.v.add(
                "input.data.setl_optins",
                format!("the clearing agency of these settlements is {} (clr_optins of 2207)", call.env.mdtrtarea_admvs),
            );
        }
        // refd_setl_flag (either case) is accepted and ignored: reversals are always in the totals,
        // as negative settlements.
        f.text(d, p, "refd_setl_flag", false, 3);
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
        Err(st) => from_status(&st, &RECONCILE),
    }
}

pub(crate) async fn reconcile_detail(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut msg = pb::ReconcileDetailRequest {
        mdtrt_admdvs: call.env.mdtrtarea_admvs.clone(),
        fixmedins_code: call.env.fixmedins_code.clone(),
        ..Default::default()
    };
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
        Err(st) => from_status(&st, &RECONCILE),
    }
}
