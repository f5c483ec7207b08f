//! 2206/2207 (a claim sent whole: pre-settle and settle) and 2208 (cancel a settlement).

use super::*;

/// A claim's fields (2206/2207) by their national path.
pub(crate) const CLAIM: FieldPaths = FieldPaths {
    named: &[
        ("msgid", "msgid"),
        ("insuplc_admdvs", "insuplc_admdvs"),
        ("fixmedins_code", "fixmedins_code"),
        ("mdtrt_admdvs", "mdtrtarea_admvs"),
        ("setl_time", "input.feedetail[].fee_ocur_time"),
        ("dise_code", "input.data.dise_codg"),
        ("", "input"),
    ],
    list: Some(("lines", "input.feedetail", &[("hilist_code", "med_list_codg")])),
    rest: "input.data",
};

/// 2208's fields by their national path.
pub(crate) const REVERSE: FieldPaths =
    FieldPaths { named: &[("msgid", "msgid"), ("reason", "input.data.memo")], list: None, rest: "input.data" };

/// The claim of a 2206/2207 input, or every problem with it. Returns the lines' `feedetl_sn`s too.
pub(crate) fn claim_of(env: &Envelope) -> Result<(pb::Claim, Vec<String>), Answer> {
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
        claim.prescribing_fixmedins_code = f.text(d, p, "prescribing_fixmedins_code", false, MAX_FIELD_LEN);
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

pub(crate) async fn settle(clients: &Clients, call: &Call<'_>, record: bool) -> Answer {
    let (claim, sns) = match claim_of(call.env) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let mut c = ClearingClient::new(clients.channel.clone());
    let r = if record { c.settle_claim(call.request(claim)).await } else { c.preview_claim(call.request(claim)).await };
    match r {
        Ok(s) => Answer::done(settlement_output(&s.into_inner(), &sns)),
        Err(st) => from_status(&st, &CLAIM),
    }
}

/// `output` of 2206/2207/2208: `setlinfo` (every amount), `setldetail` (fund payments by type),
/// `detlcutinfo` (each line's split), and our explanation.
/// A datetime as the national interface writes it, `yyyy-MM-dd HH:mm:ss` in Beijing time, from our
/// RFC 3339 (the text as it is when it is not RFC 3339).
pub(crate) fn national_datetime(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).format("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// A ratio as the national num(5,4): four decimals (`"0.85"` → `"0.8500"`); ours have at most four.
pub(crate) fn ratio4(r: &str) -> String {
    let (int, frac) = r.split_once('.').unwrap_or((r, ""));
    let int = if int.is_empty() { "0" } else { int };
    format!("{int}.{:0<4}", &frac[..frac.len().min(4)])
}

pub(crate) fn settlement_output(s: &pb::Settlement, sns: &[String]) -> Value {
    let zero = "0.00";
    // 清算类别: 11 outpatient, 41 a pharmacy purchase (national dictionary).
    let clr_type = if s.med_type == "41" { "41" } else { "11" };
    let mut setlinfo = json!({
        "setl_id": s.setl_id,
        "mdtrt_id": "",
        "psn_no": s.psn_no,
        "insutype": EMPLOYEE_BASIC,
        "psn_type": s.psn_type,
        "setl_time": national_datetime(&s.setl_time),
        "clr_date": s.clr_date,
        "med_type": s.med_type,
        "medfee_sumamt": s.medfee_sumamt,
        "fulamt_ownpay_amt": s.fulamt_ownpay_amt,
        "overlmt_selfpay": s.overlmt_selfpay,
        "preselfpay_amt": s.preselfpay_amt,
        "inscp_scp_amt": s.inscp_scp_amt,
        "act_pay_dedc": s.act_pay_dedc,
        "hifp_pay": s.hifp_pay,
        // National: the pooled fund's payment ratio, num(5,4). Our amount of the ratio's self-paid share
        // (gRPC `pool_prop_selfpay`) is `pool_selfpay_amt`.
        "pool_prop_selfpay": ratio4(&s.hifp_ratio),
        "pool_selfpay_amt": s.pool_prop_selfpay,
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
        // The clearing agency is the treatment side's (public HIS records of remote settlements show the
        // service location's code there, docs/national-interface-research.md); we settle as it.
        "clr_optins": s.mdtrt_admdvs,
        "insuplc_admdvs": s.insuplc_admdvs,
        "mdtrtarea_admvs": s.mdtrt_admdvs,
        "fixmedins_code": s.fixmedins_code,
        "hosp_lv": s.hosp_lv,
        "hifp_ratio": s.hifp_ratio,
        "refd_setl_flag": if s.refd_setl_flag { "1" } else { "0" },
        "orig_setl_id": s.orig_setl_id,
        "recorded": s.recorded,
    });
    setlinfo["clr_type"] = json!(clr_type);
    setlinfo["clr_way"] = json!("1");
    let setldetail = json!([{
        "fund_pay_type": "310100",
        "fund_pay_type_name": "职工基本医疗保险统筹基金",
        "inscp_scp_amt": s.inscp_scp_amt,
        "crt_payb_lmt_amt": Value::Null,
        "fund_payamt": s.hifp_pay,
        "setl_proc_info": "",
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

pub(crate) async fn reverse(clients: &Clients, call: &Call<'_>) -> Answer {
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
        Err(st) => from_status(&st, &REVERSE),
    }
}

/// 2601's fields by their national path.
pub(crate) const REVERSAL: FieldPaths = FieldPaths {
    named: &[("msgid", "input.data.omsgid"), ("insuplc_admdvs", "insuplc_admdvs"), ("setl_id", "input.data.omsgid")],
    list: None,
    rest: "input.data",
};

/// 2601 冲正: undo the transaction this institution sent under `omsgid`, e.g. a 2207 whose answer never
/// came. Served for `oinfno` 2207 (the settlement is reversed as by 2208, under this request's msgid, so
/// a resend is the same reversal); a registration is cancelled with 2202, details with 2205. A 2207 that
/// never arrived has nothing to undo: answered -1 naming `input.data.omsgid`. Output: none.
pub(crate) async fn reversal(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let env = call.env;
    let mut find = pb::FindSettlementByMsgidRequest {
        mdtrt_admdvs: env.mdtrtarea_admvs.clone(),
        fixmedins_code: env.fixmedins_code.clone(),
        insuplc_admdvs: env.insuplc_admdvs.clone(),
        ..Default::default()
    };
    if env.insuplc_admdvs.is_empty() {
        f.v.add("insuplc_admdvs", "required for 2601 (the member's insured region)");
    }
    if let Some(d) = f.obj(&env.input, "input", "data") {
        let p = "input.data";
        find.psn_no = f.text(d, p, "psn_no", true, MAX_FIELD_LEN);
        find.msgid = f.text(d, p, "omsgid", true, MAX_FIELD_LEN);
        let oinfno = f.text(d, p, "oinfno", true, 6);
        if !oinfno.is_empty() && oinfno != "2207" {
            f.v.add("input.data.oinfno", "2601 reverses a 2207 here; cancel a registration with 2202 and fee details with 2205");
        }
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    let mut c = ClearingClient::new(clients.channel.clone());
    let original = match c.find_settlement_by_msgid(call.request(find.clone())).await {
        Ok(s) => s.into_inner(),
        Err(st) => return from_status(&st, &REVERSAL),
    };
    let req =
        pb::ReverseClaimRequest { setl_id: original.setl_id, msgid: env.msgid.clone(), reason: format!("2601 of 2207 {}", find.msgid) };
    match c.reverse_claim(call.request(req)).await {
        Ok(_) => Answer::done(json!({})),
        // Here `msgid` is this request's own (a reuse with other content).
        Err(st) => from_status(&st, &REVERSE),
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
        assert_eq!(CLAIM.path("lines[2].hilist_code"), "input.feedetail[2].med_list_codg");
        assert_eq!(CLAIM.path("lines[2].cnt"), "input.feedetail[2].cnt");
        assert_eq!(CLAIM.path("mdtrt_admdvs"), "mdtrtarea_admvs");
    }
}
