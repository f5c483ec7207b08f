//! The national gateway end to end: `national-gateway` in front of `clearing` (embedded store, Redis,
//! mutual TLS), driven by a HIS-like client that signs its calls itself (tests/src/gateway.rs) and, over
//! HTTPS, by the README's Python script.

use proto::v1 as pb;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tests::gateway::*;
use tests::pki::{Pki, tls_channel};
use tests::*;
use tonic::Code;

/// The amounts of a settlement that must agree between the gateway and gRPC.
const AMOUNTS: &[&str] = &[
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "pool_selfpay_amt",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "acct_mulaid_pay",
    "psn_cash_pay",
    "balc",
];

fn grpc_amounts(s: &pb::Settlement) -> BTreeMap<&'static str, String> {
    let v = [
        &s.medfee_sumamt,
        &s.fulamt_ownpay_amt,
        &s.overlmt_selfpay,
        &s.preselfpay_amt,
        &s.inscp_scp_amt,
        &s.act_pay_dedc,
        &s.hifp_pay,
        &s.pool_prop_selfpay,
        &s.fund_pay_sumamt,
        &s.psn_part_amt,
        &s.acct_pay,
        &s.acct_mulaid_pay,
        &s.psn_cash_pay,
        &s.balc,
    ];
    AMOUNTS.iter().copied().zip(v.into_iter().cloned()).collect()
}

fn national_amounts(r: &Reply) -> BTreeMap<&'static str, String> {
    AMOUNTS.iter().map(|k| (*k, r.setl(k))).collect()
}

fn here(mdtrt: &str, insured: &str, fixmedins: &str) -> Where {
    Where { mdtrtarea_admvs: mdtrt.into(), insuplc_admdvs: insured.into(), fixmedins_code: fixmedins.into() }
}

async fn member_version(c: &Clearing, insured: &str, psn_no: &str) -> (u64, Vec<pb::Accumulator>) {
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: insured.into(), psn_no: psn_no.into(), year: 0 })
        .await
        .unwrap()
        .into_inner();
    (m.version, m.accumulators)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_interface_in_front_of_the_embedded_store() {
    every_transaction(Clearing::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_interface_in_front_of_redis() {
    let r = Redis::start();
    every_transaction(Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()])).await;
}

/// Every transaction through the gateway in front of `c`, with the refusals and authentication failures.
async fn every_transaction(c: Clearing) {
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(
        dir.path(),
        &[
            ("jiangxi_platform", "platform", "360000"),
            ("hubei_platform", "platform", "420000"),
            ("jiangsu_platform", "platform", "320000"),
            ("nanchang_his", "institution:H36010000001,H36010299999", "360100"),
        ],
    );
    let g = Gateway::start(&c.url(), &paas, &[]);
    let jx = His::new(&g.url(), "jiangxi_platform");
    let hubei = His::new(&g.url(), "hubei_platform");
    let jiangsu = His::new(&g.url(), "jiangsu_platform");
    let his = His::new(&g.url(), "nanchang_his");
    registered(
        &c,
        &[
            funded(member("421300", "SZGW1", "11", &["360000"]), "300.00"),
            funded(member("421300", "SZGW2", "11", &["360000"]), "300.00"),
            member("320100", "NJGW1", "11", &[]),
        ],
    )
    .await;

    // 2207 through the gateway and SettleClaim over gRPC give the same amounts for the same claims
    // (two members with the same facts, one claim sequence each: deductible, ratio and account).
    let mut ours: Vec<(String, Reply, String)> = Vec::new();
    for (via_gw, via_grpc) in golden_visits("GW", "SZGW1").into_iter().zip(golden_visits("RPC", "SZGW2")) {
        let w = Where::of(&via_gw);
        // 2206 first: the same numbers, nothing written.
        let before = member_version(&c, "421300", "SZGW1").await;
        let pre = jx.call("2206", &format!("{}-pre", via_gw.msgid), &w, national_input(&via_gw, false)).await.ok();
        assert_eq!(member_version(&c, "421300", "SZGW1").await, before, "2206 wrote something");
        let done = jx.call("2207", &via_gw.msgid, &w, national_input(&via_gw, false)).await.ok();
        let direct = c.clearing().await.settle_claim(via_grpc).await.unwrap().into_inner();
        assert_eq!(national_amounts(&done), grpc_amounts(&direct), "gateway vs gRPC for {}", via_gw.msgid);
        assert_eq!(national_amounts(&pre), national_amounts(&done), "2206 vs 2207 for {}", via_gw.msgid);
        assert_eq!(done.setl("hosp_lv"), direct.hosp_lv.to_string(), "the level came from the institution list");
        // National formats: datetimes yyyy-MM-dd HH:mm:ss (Beijing), the pooled-fund ratio num(5,4), the
        // clearing agency, type and way.
        let t = done.setl("setl_time");
        assert!(chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S").is_ok(), "setl_time {t}");
        let ratio = done.setl("pool_prop_selfpay");
        assert_eq!(ratio.split_once('.').map(|(_, f)| f.len()), Some(4), "{ratio}");
        assert_eq!(ratio.trim_end_matches('0').trim_end_matches('.'), direct.hifp_ratio.trim_end_matches('0').trim_end_matches('.'));
        assert_eq!(
            (done.setl("clr_optins"), done.setl("clr_type"), done.setl("clr_way")),
            (direct.mdtrt_admdvs.clone(), "11".into(), "1".into())
        );
        assert_eq!(done.output()["detlcutinfo"].as_array().unwrap().len(), via_gw.lines.len());
        assert_eq!(done.output()["detlcutinfo"][0]["feedetl_sn"], "0001");
        assert_eq!(done.output()["setldetail"][0]["fund_payamt"].as_str().unwrap(), direct.hifp_pay);
        ours.push((via_gw.msgid.clone(), done, via_gw.fixmedins_code.clone()));
    }

    // A resend of a msgid with the same content is the same answer; with other content it is refused.
    let first = golden_visits("GW", "SZGW1").remove(0);
    let again = jx.call("2207", &first.msgid, &Where::of(&first), national_input(&first, false)).await.ok();
    assert_eq!(again.output(), ours[0].1.output());
    let mut other = first.clone();
    other.lines.truncate(2);
    let reused = jx.call("2207", &first.msgid, &Where::of(&other), national_input(&other, false)).await;
    assert_eq!((reused.status, reused.infcode(), reused.err_msg()), (200, -1, "msgid: already used with other content"));

    // 1101: the insured side reads its member; a service location reads a member filed for it and no
    // other (the unfiled one is answered exactly like one that does not exist).
    let nc = here("360100", "421300", "H36010000001");
    let m = jx.call("1101", "q1", &nc, json!({ "data": { "psn_no": "SZGW1" } })).await.ok();
    assert_eq!(m.output()["baseinfo"]["psn_no"], "SZGW1");
    assert_eq!(m.output()["insuinfo"][0]["psn_type"], "11");
    assert_eq!(m.output()["cuminfo"][0]["visits"], 3);
    hubei.call("1101", "q2", &here("421300", "421300", "H42130000001"), json!({ "data": { "psn_no": "SZGW1" } })).await.ok();
    let hidden = jx.call("1101", "q3", &here("360100", "320100", "H36010000001"), json!({ "data": { "psn_no": "NJGW1" } })).await;
    let missing = jx.call("1101", "q4", &here("360100", "320100", "H36010000001"), json!({ "data": { "psn_no": "NJGW9" } })).await;
    assert_eq!((hidden.status, hidden.infcode()), (200, -1));
    assert_eq!(hidden.err_msg(), missing.err_msg(), "an unfiled member looks like a missing one");
    assert!(hidden.err_msg().starts_with("input.data.psn_no"), "{}", hidden.err_msg());

    // A platform of one province cannot settle for another's institutions.
    let foreign = golden_visits("HB", "SZGW1").remove(1);
    let refused = hubei.call("2207", "HB-1", &Where::of(&foreign), national_input(&foreign, false)).await;
    assert_eq!((refused.status, refused.infcode()), (403, -1), "{:?}", refused.body);
    assert!(refused.err_msg().starts_with("mdtrtarea_admvs"), "{}", refused.err_msg());

    // The list decides: an institution on no list is refused, whatever level it claims, until its
    // region's platform upserts it; then the listed level applies and another is refused by name.
    let mut unlisted = golden_visits("UL", "SZGW1").remove(1);
    unlisted.fixmedins_code = "H36010299999".into();
    for (msgid, with_level) in [("UL-1", false), ("UL-2", true)] {
        let r = his.call("2206", msgid, &Where::of(&unlisted), national_input(&unlisted, with_level)).await;
        assert!(r.infcode() == -1 && r.err_msg().starts_with("fixmedins_code: H36010299999 is on no institution list"), "{:?}", r.body);
    }
    let inst = pb::Institution {
        fixmedins_code: "H36010299999".into(),
        fixmedins_name: "新医院".into(),
        fixmedins_type: "1".into(),
        hosp_lv: 2,
        ..Default::default()
    };
    c.catalogue().await.upsert_institution(inst).await.unwrap();
    let listed = his.call("2206", "UL-3", &Where::of(&unlisted), national_input(&unlisted, false)).await.ok();
    assert_eq!(listed.setl("hosp_lv"), "2");
    let mut claimed = unlisted.clone();
    claimed.hosp_lv = 1;
    let r = his.call("2206", "UL-4", &Where::of(&claimed), national_input(&claimed, true)).await;
    assert!(r.infcode() == -1 && r.err_msg().starts_with("input.data.hosp_lv: 1 is not H36010299999's listed level 2"), "{:?}", r.body);

    // Field errors name the national path; nothing is written.
    let before = member_version(&c, "421300", "SZGW1").await;
    let mut bad = national_input(&golden_visits("BAD", "SZGW1")[0], false);
    bad["feedetail"][2]["cnt"] = json!("-1");
    let r = jx.call("2207", "BAD-1", &nc, bad).await;
    assert!(r.infcode() == -1 && r.err_msg().contains("input.feedetail[2].cnt"), "{:?}", r.body);
    let mut bad = national_input(&golden_visits("BAD", "SZGW1")[0], false);
    bad["data"]["medfee_sumamt"] = json!("1.00");
    let r = jx.call("2207", "BAD-2", &nc, bad).await;
    assert!(
        r.err_msg().contains("input.data.medfee_sumamt: 1.00 is not the sum of input.feedetail[].det_item_fee_sumamt (1127.60)"),
        "{:?}",
        r.body
    );
    let r = jx.call("9999", "BAD-3", &nc, json!({})).await;
    assert_eq!(
        r.err_msg(),
        "infno: 9999 is not served here; this gateway serves 1101, 1312, 2201, 2202, 2203, 2204, 2205, 2206, 2207, 2208, 2601, 3201, 3202, 5201, 5203, 5204, 9001, 9002, 9101, 9102"
    );
    let mut env = envelope("2207", "BAD-4", &nc, national_input(&golden_visits("BAD", "SZGW1")[0], false));
    env.as_object_mut().unwrap().remove("opter_name");
    let signed = |h: &His| x_tif(&h.paasid, &h.token, chrono::Utc::now().timestamp(), &nonce());
    let r = jx.post(&signed(&jx), "application/json", serde_json::to_vec(&env).unwrap()).await;
    assert_eq!((r.status, r.infcode(), r.err_msg()), (200, -1, "opter_name: required"));
    let r = jx.post(&signed(&jx), "application/json", b"{\"infno\": ".to_vec()).await;
    assert!(r.status == 400 && r.err_msg().starts_with("body: not JSON"), "{:?}", r.body);
    let r = jx.post(&signed(&jx), "application/xml", b"{}".to_vec()).await;
    assert_eq!((r.status, r.infcode()), (415, -1));
    // JSON labelled text/plain (as some HIS programs send 9102) is read as JSON.
    let env = envelope("9001", "CT-1", &nc, json!({}));
    let r = jx.post(&signed(&jx), "text/plain;charset=utf-8", serde_json::to_vec(&env).unwrap()).await;
    assert_eq!((r.status, r.infcode()), (200, 0), "{}", r.body);
    let r = jx.post(&signed(&jx), "application/json", vec![b' '; 5 * 1024 * 1024]).await;
    assert_eq!((r.status, r.infcode()), (413, -1));
    assert_eq!(member_version(&c, "421300", "SZGW1").await, before, "a refused call wrote something");

    // Authentication like the national gateway: each failure is 401 with nothing forwarded.
    let probe = golden_visits("AUTH", "SZGW1").remove(1);
    let body = serde_json::to_vec(&envelope("2207", "AUTH-1", &Where::of(&probe), national_input(&probe, false))).unwrap();
    let now = chrono::Utc::now().timestamp();
    let token = token_of("jiangxi_platform");
    let replayed = nonce();
    jx.post(
        &x_tif("jiangxi_platform", &token, now, &replayed),
        "application/json",
        serde_json::to_vec(&envelope("9001", "S1", &nc, json!({}))).unwrap(),
    )
    .await
    .ok();
    for (headers, why) in [
        (x_tif("nobody", &token, now, &nonce()), "unknown paasid"),
        (x_tif("jiangxi_platform", "not-the-token-000000", now, &nonce()), "x-tif-signature does not match"),
        (x_tif("jiangxi_platform", &token, now - 301, &nonce()), "x-tif-timestamp outside the accepted window"),
        (x_tif("jiangxi_platform", &token, now, &replayed), "x-tif-nonce already used"),
        (x_tif("jiangxi_platform", &token, now, &nonce())[..3].to_vec(), "missing or malformed header x-tif-signature"),
    ] {
        // One answer for every failure; the audit line keeps the reason.
        let r = jx.post(&headers, "application/json", body.clone()).await;
        assert_eq!(
            (r.status, r.infcode(), r.err_msg()),
            (401, -1, "authentication failed: check x-tif-paasid, x-tif-timestamp, x-tif-nonce and x-tif-signature")
        );
        eventually("the reason audited", PATIENCE, || {
            std::future::ready(
                g.log().lines().any(|l| l.contains("authentication refused") && l.contains(&format!("reason={why}"))).then_some(()),
            )
        })
        .await;
    }
    assert_eq!(member_version(&c, "421300", "SZGW1").await, before, "an unauthenticated call wrote something");
    let log = g.log();
    assert!(!log.contains(&token) && !log.contains("not-the-token"), "a token reached the log");

    // 1312: pages of the service location's catalogue.
    let p1 = his.call("1312", "C1", &nc, json!({ "data": { "query_date": "2024-03-10", "page_num": 1, "page_size": 5 } })).await.ok();
    let p2 = his.call("1312", "C2", &nc, json!({ "data": { "query_date": "2024-03-10", "page_num": "2", "page_size": "5" } })).await.ok();
    let codes = |r: &Reply| {
        r.output()["data"].as_array().unwrap().iter().map(|i| i["hilist_code"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!((codes(&p1).len(), codes(&p2).len()), (5, 5));
    assert!(codes(&p1).iter().all(|c| !codes(&p2).contains(c)), "pages overlap");
    assert_eq!(p1.output()["last_page"], false);
    // 1312 by hilist_code: that item alone.
    let one = &codes(&p1)[2];
    let q = his.call("1312", "C3", &nc, json!({ "data": { "query_date": "2024-03-10", "hilist_code": one } })).await.ok();
    assert_eq!(codes(&q), std::slice::from_ref(one));

    // 2208 cancels a settlement (negated amounts); a second cancellation is refused.
    let (msgid, last, _) = ours.last().unwrap();
    let setl_id = last.setl("setl_id");
    let rev = jx.call("2208", &format!("{msgid}-R"), &nc, json!({ "data": { "setl_id": setl_id, "psn_no": "SZGW1" } })).await.ok();
    assert_eq!(rev.setl("refd_setl_flag"), "1");
    assert_eq!(fen(&rev.setl("hifp_pay")), -fen(&last.setl("hifp_pay")));
    let twice = jx.call("2208", &format!("{msgid}-R2"), &nc, json!({ "data": { "setl_id": setl_id } })).await;
    assert_eq!(twice.infcode(), -1);
    // The insured side sees the settlement but may not cancel it; a region that may not even see it
    // learns nothing about it.
    let insured_side = hubei.call("2208", "HB-R", &here("421300", "", "H42130000001"), json!({ "data": { "setl_id": setl_id } })).await;
    assert_eq!((insured_side.status, insured_side.infcode()), (403, -1));
    let hidden = jiangsu.call("2208", "JS-R", &here("320100", "", "H32010000001"), json!({ "data": { "setl_id": setl_id } })).await;
    assert_eq!((hidden.infcode(), hidden.err_msg()), (-1, format!("input.data.setl_id: settlement {setl_id} not found").as_str()));

    // 3201/3202 for Nanchang's window of today: the totals of everything the envelope's institution
    // settled there (a hospital reconciles its own settlements, issue 29).
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive().to_string();
    let mut settled: Vec<Reply> = ours.iter().filter(|(_, _, code)| *code == nc.fixmedins_code).map(|(_, r, _)| r.clone()).collect();
    let elsewhere = ours.len() - settled.len();
    assert!(elsewhere > 0, "the golden visits include another institution's, which 3201 leaves out");
    for msgid in ["RPC-1", "RPC-2", "RPC-3"] {
        let s = c
            .clearing()
            .await
            .settle_claim(golden_visits("RPC", "SZGW2").into_iter().find(|x| x.msgid == *msgid).unwrap())
            .await
            .unwrap()
            .into_inner();
        if s.fixmedins_code != nc.fixmedins_code {
            continue;
        }
        settled.push(Reply { status: 200, body: json!({ "output": { "setlinfo": { "setl_id": s.setl_id, "medfee_sumamt": s.medfee_sumamt, "fund_pay_sumamt": s.fund_pay_sumamt, "acct_pay": s.acct_pay } } }) });
    }
    let reversed_here = ours.last().unwrap().2 == nc.fixmedins_code;
    if reversed_here {
        settled.push(rev);
    }
    // Settlements minus reversals.
    let count = settled.len() as i64 - if reversed_here { 2 } else { 0 };
    let sum = |f: &str| settled.iter().map(|r| fen(&r.setl(f))).sum::<i64>();
    let yuan = |f: i64| format!("{}{}.{:02}", if f < 0 { "-" } else { "" }, f.abs() / 100, f.abs() % 100);
    let totals = json!({ "data": { "stmt_begndate": today, "stmt_enddate": today, "medfee_sumamt": yuan(sum("medfee_sumamt")),
        "fund_pay_sumamt": yuan(sum("fund_pay_sumamt")), "acct_pay": yuan(sum("acct_pay")), "fixmedins_setl_cnt": count } });
    let r = his.call("3201", "R1", &nc, totals.clone()).await.ok();
    assert_eq!(r.output()["stmtinfo"]["stmt_rslt"], "0", "{:?}", r.body);
    // A range (stmt_begndate to stmt_enddate) with the fields HIS code groups by: the same totals.
    let week_ago = (chrono::NaiveDate::parse_from_str(&today, "%Y-%m-%d").unwrap() - chrono::Days::new(6)).to_string();
    let mut ranged = totals.clone();
    for (k, v) in
        [("stmt_begndate", week_ago.as_str()), ("insutype", "310"), ("clr_type", "11"), ("setl_optins", "360100"), ("refd_setl_flag", "0")]
    {
        ranged["data"][k] = json!(v);
    }
    assert_eq!(his.call("3201", "R1r", &nc, ranged.clone()).await.ok().output()["stmtinfo"]["stmt_rslt"], "0");
    for (k, v, path) in [
        ("clr_type", "41", "input.data.clr_type"),
        ("setl_optins", "421300", "input.data.setl_optins"),
        ("insutype", "390", "input.data.insutype"),
        ("stmt_begndate", "2020-01-01", "input.data.stmt_enddate"),
    ] {
        let mut bad = ranged.clone();
        bad["data"][k] = json!(v);
        let r = his.call("3201", &format!("R1-{k}"), &nc, bad).await;
        assert!(r.infcode() == -1 && r.err_msg().starts_with(path), "{k}: {}", r.body);
    }
    let mut off = totals;
    off["data"]["fund_pay_sumamt"] = json!("0.01");
    assert_eq!(his.call("3201", "R2", &nc, off).await.ok().output()["stmtinfo"]["stmt_rslt"], "1");
    let detail: Vec<Value> = settled
        .iter()
        .map(|r| json!({ "setl_id": r.setl("setl_id"), "medfee_sumamt": r.setl("medfee_sumamt"), "fund_pay_sumamt": r.setl("fund_pay_sumamt"), "acct_pay": r.setl("acct_pay") }))
        .collect();
    let r = his.call("3202", "R3", &nc, json!({ "data": { "stmt_begndate": today }, "detail": detail })).await.ok();
    assert_eq!(
        (r.output()["stmtinfo"]["stmt_rslt"].as_str(), r.output()["compared"].as_i64()),
        (Some("0"), Some(settled.len() as i64)),
        "{:?}",
        r.body
    );
    let r = his.call("3202", "R4", &nc, json!({ "data": { "stmt_begndate": today }, "detail": detail[1..] })).await.ok();
    assert_eq!(r.output()["differences"][0]["kind"], "missing_there");
    // Hubei may not reconcile Nanchang's window.
    assert_eq!(hubei.call("3201", "R5", &nc, json!({ "data": { "stmt_begndate": today, "medfee_sumamt": "0", "fund_pay_sumamt": "0", "acct_pay": "0", "fixmedins_setl_cnt": 0 } })).await.status, 403);

    // 9001/9002.
    let s = his.call("9001", "S2", &nc, json!({ "signIn": { "opter_no": "001", "mac": "", "ip": "" } })).await.ok();
    assert_eq!(s.output()["signinoutb"]["sign_no"].as_str().unwrap().len(), 32);
    his.call("9002", "S3", &nc, json!({ "signOut": { "sign_no": s.output()["signinoutb"]["sign_no"] } })).await.ok();

    // The caller's trace context continues into clearing (one trace).
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut h = signed(&jx);
    h.push(("traceparent".into(), format!("00-{trace}-00f067aa0ba902b7-01")));
    let traced = golden_visits("TRACE", "SZGW1").remove(1);
    jx.post(&h, "application/json", serde_json::to_vec(&envelope("2207", "TRACE-1", &nc, national_input(&traced, false))).unwrap())
        .await
        .ok();
    eventually("clearing logs the caller's trace id", PATIENCE, || async { c.log().contains(trace).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_redis_share_nonces_and_a_killed_gateway_loses_nothing() {
    let r = Redis::start();
    let c = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[("jiangxi_platform", "platform", "360000"), ("nanchang_platform", "platform", "360100")]);
    let mut a = Gateway::start(&c.url(), &paas, &["--redis-url", &r.url()]);
    let b = Gateway::start(&c.url(), &paas, &["--redis-url", &r.url()]);
    let members: Vec<String> = (0..8).map(|i| format!("SZRK{i}")).collect();
    registered(&c, &members.iter().map(|p| funded(member("421300", p, "11", &["360000"]), "500.00")).collect::<Vec<_>>()).await;
    registered(&c, &[member("421300", "SZRKX", "11", &["360000"])]).await;

    // A nonce used at one replica is refused at the other.
    let ha = His::new(&a.url(), "jiangxi_platform");
    let hb = His::new(&b.url(), "jiangxi_platform");
    let nc = here("360100", "421300", "H36010000001");
    let body = serde_json::to_vec(&envelope("9001", "N1", &nc, json!({}))).unwrap();
    let h = x_tif("jiangxi_platform", &token_of("jiangxi_platform"), chrono::Utc::now().timestamp(), &nonce());
    ha.post(&h, "application/json", body.clone()).await.ok();
    let replay = hb.post(&h, "application/json", body).await;
    assert_eq!(replay.status, 401);
    eventually("the replay audited at the second replica", PATIENCE, || {
        std::future::ready(b.log().contains("reason=x-tif-nonce already used").then_some(()))
    })
    .await;
    // The nonces are the paasid's own keyspace; soon after start a replica also writes and honours the
    // key of the builds before (a rolling update leaves no replay window in either direction).
    assert_eq!(r.cli(&["zcard", "gw:nonces:{jiangxi_platform}"]).trim(), "1");
    let used_before = nonce();
    r.cli(&["set", &format!("gw:nonce:jiangxi_platform:{used_before}"), "1", "EX", "600"]);
    let h2 = x_tif("jiangxi_platform", &token_of("jiangxi_platform"), chrono::Utc::now().timestamp(), &used_before);
    let body = serde_json::to_vec(&envelope("9001", "N2", &nc, json!({}))).unwrap();
    assert_eq!(ha.post(&h2, "application/json", body).await.status, 401, "a nonce an older replica recorded");
    let fresh = nonce();
    let h3 = x_tif("jiangxi_platform", &token_of("jiangxi_platform"), chrono::Utc::now().timestamp(), &fresh);
    ha.post(&h3, "application/json", serde_json::to_vec(&envelope("9001", "N3", &nc, json!({}))).unwrap()).await.ok();
    assert_eq!(r.cli(&["exists", &format!("gw:nonce:jiangxi_platform:{fresh}")]).trim(), "1", "written for older replicas");

    // 2207 on Redis equals SettleClaim for the same claim.
    let via_gw = golden_visits("RK", "SZRK0").remove(0);
    let mut via_grpc = via_gw.clone();
    via_grpc.msgid = "RK-grpc".into();
    via_grpc.psn_no = "SZRKX".into();
    let done = ha.call("2207", &via_gw.msgid, &Where::of(&via_gw), national_input(&via_gw, false)).await.ok();
    let mut twin = c.registry().await;
    twin.upsert_member(funded(member("421300", "SZRKX", "11", &["360000"]), "500.00")).await.unwrap();
    let direct = c.clearing().await.settle_claim(via_grpc).await.unwrap().into_inner();
    assert_eq!(national_amounts(&done), grpc_amounts(&direct));

    // 3202 the national way across replicas: the detail file uploaded (9101, a Java byte array, not
    // zipped) at A, reconciled at B, the result downloaded (9102) at A; another caller cannot read it.
    let (day, w) = (done.setl("clr_date"), Where::of(&via_gw));
    let row = ["setl_id", "mdtrt_id", "medfee_sumamt", "fund_pay_sumamt", "acct_pay"].map(|k| done.setl(k));
    let detail = format!("{}\t{}\tSZRK0\t{}\t{}\t{}\t0\n", row[0], row[1], row[2], row[3], row[4]);
    let bytes: Vec<Value> = detail.bytes().map(|b| json!(b as i8)).collect();
    let up = ha
        .call("9101", "F-1", &w, json!({ "fsUploadIn": { "in": bytes, "filename": "d.txt", "fixmedins_code": via_gw.fixmedins_code } }))
        .await
        .ok();
    let no = up.output()["file_qury_no"].as_str().unwrap().to_string();
    assert!(no.starts_with("fsi/gw/") && r.cli(&["--scan", "--pattern", "gw:file:*"]).contains(&no), "kept in Redis: {}", up.body);
    let stmt = hb.call("3202", "F-2", &w, json!({ "data": { "stmt_begndate": day, "file_qury_no": no } })).await.ok();
    let result_no = stmt.output()["fileinfo"]["file_qury_no"].as_str().unwrap().to_string();
    let file =
        ha.call("9102", "F-3", &w, json!({ "fsDownloadIn": { "file_qury_no": result_no, "filename": "", "fixmedins_code": "plc" } })).await;
    let text = String::from_utf8(national_gateway::files::unzipped(&hex::decode(file.body["raw_hex"].as_str().unwrap()).unwrap()).unwrap())
        .unwrap();
    let mine = text.lines().find(|l| l.contains(&row[0])).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(mine.split('\t').nth(4), Some("0"), "matched: {text}");
    let other = His::new(&b.url(), "nanchang_platform");
    let theirs = other.call("9102", "F-4", &w, json!({ "fsDownloadIn": { "file_qury_no": result_no } })).await;
    assert!(theirs.infcode() == -1 && theirs.err_msg().starts_with("input.fsDownloadIn.file_qury_no: no file"), "{}", theirs.body);

    // A load of signed 2207 calls at gateway A, killed with SIGKILL in the middle; every claim is then
    // resent with its msgid (through B and the restarted A): the same answers, nothing settled twice.
    let claims: Vec<pb::Claim> = (0..160)
        .map(|i| {
            let mut k =
                claim(&format!("LOAD-{i}"), "421300", &members[i % members.len()], "360100", 3, "2024-04-01", 50 + (i as u32 % 7) * 30);
            k.fixmedins_code = "H36010000001".into();
            k
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let load = {
        let claims = claims.clone();
        let ha = ha.clone();
        tokio::spawn(async move {
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
            let mut tasks = Vec::new();
            for k in claims {
                let (ha, tx, sem) = (ha.clone(), tx.clone(), sem.clone());
                tasks.push(tokio::spawn(async move {
                    let _p = sem.acquire().await.unwrap();
                    let body = serde_json::to_vec(&envelope("2207", &k.msgid, &Where::of(&k), national_input(&k, false))).unwrap();
                    let h = x_tif(&ha.paasid, &ha.token, chrono::Utc::now().timestamp(), &nonce());
                    let r = tokio::time::timeout(std::time::Duration::from_secs(20), ha.post_try(&h, body)).await;
                    if let Ok(Some(r)) = r {
                        let _ = tx.send((k.msgid.clone(), r));
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    let mut before_kill: BTreeMap<String, Reply> = BTreeMap::new();
    while before_kill.len() < 40 {
        let (m, r) = rx.recv().await.expect("answers before the kill");
        before_kill.insert(m, r);
    }
    a.crash();
    load.await.unwrap();
    while let Ok((m, r)) = rx.try_recv() {
        before_kill.insert(m, r);
    }
    a.restart();
    let ha = His::new(&a.url(), "jiangxi_platform");
    for (i, k) in claims.iter().enumerate() {
        let via = if i % 2 == 0 { &ha } else { &hb };
        let r = via.call("2207", &k.msgid, &Where::of(k), national_input(k, false)).await.ok();
        if let Some(first) = before_kill.get(&k.msgid).filter(|r| r.status == 200) {
            assert_eq!(first.output(), r.output(), "{}: a resend answered differently", k.msgid);
        }
    }
    // Each member's year-to-date visits count every claim exactly once.
    for p in &members {
        let (_, acc) = member_version(&c, "421300", p).await;
        let visits: u32 = acc.iter().filter(|a| a.year == 2024).map(|a| a.visits).sum();
        let expected = claims.iter().filter(|k| &k.psn_no == p).count() as u32 + u32::from(p == "SZRK0");
        assert_eq!(visits, expected, "{p}: settled twice or lost");
    }
    assert!(before_kill.len() >= 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_with_mutual_tls_to_clearing_the_forwarded_identity_has_no_hole() {
    let pki = Pki::new("clearinghouse");
    let c = Clearing::start_with(&pki.server_args(&pki.server("clearing")).iter().map(String::as_str).collect::<Vec<_>>());
    let gw_cert = pki.client("national-gateway", Some("gateway:000000"), false);
    let platform = pki.client("hubei-platform", Some("platform:420000"), false);
    let jiangxi = pki.client("jiangxi-platform", Some("platform:360000"), false);
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[("jiangxi_platform", "platform", "360000")]);
    let server = pki.server("gateway");
    let g = Gateway::start(
        &format!("https://localhost:{}", c.addr.port()),
        &paas,
        &[
            "--tls-cert",
            server.cert.to_str().unwrap(),
            "--tls-key",
            server.key.to_str().unwrap(),
            "--clearing-tls-ca",
            pki.ca().to_str().unwrap(),
            "--clearing-tls-cert",
            gw_cert.cert.to_str().unwrap(),
            "--clearing-tls-key",
            gw_cert.key.to_str().unwrap(),
        ],
    );
    // Members registered by their insured region's platform.
    let hubei = tls_channel(c.addr, &pki.ca(), Some(&platform)).await.unwrap();
    RegistryClient::new(hubei.clone()).upsert_member(funded(member("421300", "SZTLS1", "11", &["360000"]), "300.00")).await.unwrap();

    // The README's Python client over HTTPS (trusting the test CA).
    std::fs::write(dir.path().join("token"), token_of("jiangxi_platform")).unwrap();
    let py = |k: &pb::Claim| {
        let input = dir.path().join(format!("{}.json", k.msgid));
        std::fs::write(&input, serde_json::to_vec(&national_input(k, false)).unwrap()).unwrap();
        let out = std::process::Command::new("python3")
            .arg(repo_root().join("scripts/his_call.py"))
            .args(["--url", &format!("https://localhost:{}", g.addr.port()), "--paasid", "jiangxi_platform"])
            .args(["--token-file", dir.path().join("token").to_str().unwrap(), "--infno", "2207", "--input", input.to_str().unwrap()])
            .args(["--msgid", &k.msgid, "--mdtrtarea", &k.mdtrt_admdvs, "--insuplc", &k.insuplc_admdvs, "--fixmedins", &k.fixmedins_code])
            .args(["--cafile", pki.ca().to_str().unwrap()])
            .output()
            .expect("python3 (scripts/test.sh installs it)");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        v
    };
    let answer = py(&example_claim("TLS-1", "SZTLS1"));
    assert_eq!(answer["infcode"], 0, "{answer}");
    // Refused as the forwarded caller (Jiangxi at a Hubei institution), and audited with both identities.
    let mut elsewhere = claim("TLS-X", "421300", "SZTLS1", "421300", 3, "2024-03-10", 100);
    elsewhere.insuplc_admdvs = "360100".into();
    let refused = py(&elsewhere);
    assert_eq!(refused["infcode"], -1, "{refused}");
    eventually("clearing audits the forwarded caller and the gateway", PATIENCE, || async {
        c.log().lines().any(|l| l.contains("permission denied") && l.contains("jiangxi_platform via national-gateway")).then_some(())
    })
    .await;
    let setl_id = answer["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string();
    // Clearing audited the request as the forwarded caller, via the gateway.
    let s = ClearingClient::new(tls_channel(c.addr, &pki.ca(), Some(&jiangxi)).await.unwrap())
        .get_settlement(pb::GetSettlementRequest { setl_id: setl_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.hifp_pay, answer["output"]["setlinfo"]["hifp_pay"].as_str().unwrap());

    // The gateway's own certificate may not settle (it only forwards).
    let as_gateway = tls_channel(c.addr, &pki.ca(), Some(&gw_cert)).await.unwrap();
    let mut k = example_claim("TLS-2", "SZTLS1");
    let r = ClearingClient::new(as_gateway.clone()).settle_claim(k.clone()).await;
    assert_eq!(r.unwrap_err().code(), Code::PermissionDenied);
    // Forwarded identity from any other certificate is refused and audited, even naming a role the
    // certificate itself has.
    let mut req = tonic::Request::new(k.clone());
    req.metadata_mut().insert("x-clearing-forwarded", "platform:360000:someone".parse().unwrap());
    let r = ClearingClient::new(hubei.clone()).settle_claim(req).await;
    assert_eq!(r.unwrap_err().code(), Code::PermissionDenied);
    eventually("the refusal is audited", PATIENCE, || async { c.log().contains("forwarded identity refused").then_some(()) }).await;
    // The gateway certificate cannot forward itself more rights than a platform has.
    let mut req = tonic::Request::new(k.clone());
    req.metadata_mut().insert("x-clearing-forwarded", "national:000000:someone".parse().unwrap());
    assert_eq!(ClearingClient::new(as_gateway.clone()).settle_claim(req).await.unwrap_err().code(), Code::PermissionDenied);
    // A forwarded platform settles exactly what it may settle directly.
    k.msgid = "TLS-3".into();
    let mut req = tonic::Request::new(k);
    req.metadata_mut().insert("x-clearing-forwarded", "platform:360000:jiangxi_platform".parse().unwrap());
    ClearingClient::new(as_gateway).settle_claim(req).await.expect("forwarded platform of the service location");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_national_interface_steps() {
    // README, "The national interface": the first member, a gateway with the development callers, and
    // the same visit settled by the Python client as a HIS would; the numbers of "Your first claim".
    let c = Clearing::start();
    let root = repo_root();
    remember_person("421300000000000001");
    let (ok, _, err) =
        clearing_cli(&["member", "upsert", "--file", root.join("examples/member.json").to_str().unwrap(), "--addr", &c.addr.to_string()]);
    assert!(ok, "{err}");
    let g = Gateway::start(&c.url(), &root.join("examples/national/paas.toml"), &[]);
    let out = std::process::Command::new("python3")
        .current_dir(&root)
        .args(["scripts/his_call.py", "--url", &g.url(), "--paasid", "jiangxi_platform"])
        .args(["--token-file", "examples/national/jiangxi.token", "--infno", "2207", "--input", "examples/national/2207.json"])
        .args(["--mdtrtarea", "360100", "--insuplc", "421300", "--fixmedins", "H36010200001"])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let a: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (k, v) in [("hifp_pay", "223.10"), ("acct_pay", "300.00"), ("psn_cash_pay", "604.50"), ("medfee_sumamt", "1127.60")] {
        assert_eq!(a["output"]["setlinfo"][k], v, "{k}");
    }
    // `national-gateway sign` prints headers that authenticate.
    let sign = std::process::Command::new(bin("national-gateway"))
        .args(["sign", "--paasid", "jiangxi_platform", "--token-file", root.join("examples/national/jiangxi.token").to_str().unwrap()])
        .output()
        .unwrap();
    let headers: Vec<(String, String)> = String::from_utf8(sign.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    assert_eq!(headers.len(), 4);
    let w = here("360100", "421300", "H36010200001");
    let his = His::with_token(&g.url(), "jiangxi_platform", "unused");
    his.post(&headers, "application/json", serde_json::to_vec(&envelope("9001", "S1", &w, json!({}))).unwrap()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_the_his_through_the_gateway_into_clearing() {
    use tests::otlp::{Otlp, sum_value};
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const CALLER_SPAN: &str = "b7ad6b7169203331";
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let otlp = Otlp::start().await;
    let env = |name: &str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), otlp.endpoint()),
            ("OTEL_SERVICE_NAME".to_string(), name.to_string()),
            ("OTEL_TRACES_SAMPLER".to_string(), "parentbased_always_on".to_string()),
            ("OTEL_BSP_SCHEDULE_DELAY".to_string(), "100".to_string()),
            ("OTEL_METRIC_EXPORT_INTERVAL".to_string(), "300".to_string()),
        ]
    };
    let borrow = |v: &Vec<(String, String)>| v.iter().map(|(k, x)| (k.clone(), x.clone())).collect::<Vec<_>>();
    let (ec, eg) = (borrow(&env("clearing-test")), borrow(&env("gateway-test")));
    let c = Clearing::start_with_env(&[], &ec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[("jiangxi_platform", "platform", "360000")]);
    let g = Gateway::start_with_env(&c.url(), &paas, &[], &eg.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
    registered(&c, &[funded(member("421300", "SZOT1", "11", &["360000"]), "100.00")]).await;
    let k = golden_visits("OT", "SZOT1").remove(1);
    let jx = His::new(&g.url(), "jiangxi_platform");
    let mut h = x_tif("jiangxi_platform", &jx.token, chrono::Utc::now().timestamp(), &nonce());
    h.push(("traceparent".into(), format!("00-{TRACE}-{CALLER_SPAN}-01")));
    jx.post(&h, "application/json", serde_json::to_vec(&envelope("2207", "OT-1", &Where::of(&k), national_input(&k, false))).unwrap())
        .await
        .ok();

    // The gateway's span is the caller's child; clearing's server span is the gateway's child.
    let spans = eventually("spans of the gateway and clearing", PATIENCE, || {
        std::future::ready({
            let s: Vec<_> = otlp.spans().into_iter().filter(|(_, s)| hex(&s.trace_id) == TRACE).collect();
            let services: std::collections::BTreeSet<&str> = s.iter().map(|(svc, _)| svc.as_str()).collect();
            (services.contains("gateway-test") && s.iter().any(|(_, x)| x.name == "clearinghouse.v1.Clearing/SettleClaim")).then_some(s)
        })
    })
    .await;
    let gw = spans
        .iter()
        .find(|(svc, s)| svc == "gateway-test" && s.name == "callService" && tests::otlp::attr(&s.attributes, "infno") == "2207")
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("no gateway span: {:?}", spans.iter().map(|(a, s)| (a, &s.name)).collect::<Vec<_>>()));
    assert_eq!(hex(&gw.parent_span_id), CALLER_SPAN);
    let server =
        spans.iter().find(|(svc, s)| svc == "clearing-test" && s.name == "clearinghouse.v1.Clearing/SettleClaim").unwrap().1.clone();
    assert_eq!(hex(&server.parent_span_id), hex(&gw.span_id), "clearing continues the gateway's span");
    // Metrics per infno and infcode.
    eventually("gateway.requests{2207, 0}", PATIENCE, || {
        std::future::ready(
            otlp.latest_metric("gateway-test", "gateway.requests")
                .and_then(|m| sum_value(&m, &[("infno", "2207"), ("infcode", "0")]))
                .filter(|n| *n >= 1),
        )
    })
    .await;
}

/// Issue 30: `national-gateway sandbox` starts clearing and the gateway in one command and prints a
/// `curl` line that settles its sample claim; run twice (signed anew), it is the same settlement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_starts_in_one_command_and_its_curl_line_settles() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin("national-gateway"))
        .args(["sandbox", "--dir"])
        .arg(dir.path().join("sandbox"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("sandbox.log")).unwrap())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let curl = loop {
        let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("no curl line; printed {printed:?}"));
        if line.starts_with("curl ") {
            break line;
        }
        printed.push(line);
    };
    assert!(printed.iter().any(|l| l.starts_with("url: http://127.0.0.1:")), "{printed:?}");
    assert!(printed.iter().any(|l| l == "paasid: sandbox_his") && printed.iter().any(|l| l.starts_with("token: ")), "{printed:?}");
    let run = || {
        let out = std::process::Command::new("sh").arg("-c").arg(&curl).output().expect("sh and curl (scripts/test.sh installs curl)");
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|_| panic!("{curl}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let first = run();
    assert_eq!(first["infcode"], 0, "{first}");
    assert!(fen(first["output"]["setlinfo"]["hifp_pay"].as_str().unwrap()) > 0, "the fund pays: {first}");
    let again = run();
    assert_eq!(again["output"]["setlinfo"]["setl_id"], first["output"]["setlinfo"]["setl_id"], "a resend is the same settlement");
    // SIGTERM: the sandbox stops, and its clearing with it.
    std::process::Command::new("kill").arg(child.id().to_string()).status().unwrap();
    let stopped = poll_until(PATIENCE, || child.try_wait().ok().flatten());
    assert!(stopped.is_some(), "the sandbox did not stop");
}

/// Issue 30: the corpus of requests shaped as hospitals send them (examples/national/requests) passes
/// through gateway → clearing on both stores with no difference, as `national-gateway conformance`
/// reports it; the visit's 2207 pays what SettleClaim pays for the same claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_passes_on_both_stores_and_its_settlement_equals_settle_claim() {
    let r = Redis::start();
    // The embedded store's gateway serves HTTPS (the kit verifies it against the test CA), Redis's HTTP.
    let pki = tests::pki::Pki::new("corpus");
    let server = pki.server("gateway");
    let https = ["--tls-cert", server.cert.to_str().unwrap(), "--tls-key", server.key.to_str().unwrap()];
    for (c, tls) in [(Clearing::start(), true), (Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]), false)] {
        let dir = tempfile::tempdir().unwrap();
        let paas = paas_file(
            dir.path(),
            &[
                ("sandbox_his", "institution:H36010000001,P36010000001", "360100"),
                ("sandbox_his_suizhou", "institution:H42130000001", "421300"),
            ],
        );
        let g = Gateway::start(&c.url(), &paas, if tls { &https } else { &[] });
        let url = if tls { format!("https://localhost:{}", g.addr.port()) } else { g.url() };
        // The sandbox's members, and twins of SANDBOX1 and SANDBOX2 for SettleClaim.
        let mut members = national_gateway::sandbox::members().unwrap();
        members.push(funded(member("421300", "SANDBOXT", "11", &["360000"]), "500.00"));
        members.push(funded(member("360100", "SANDBOXC", "11", &["420000"]), "500.00"));
        registered(&c, &members).await;
        let answers = dir.path().join("answers");
        let suizhou_token = dir.path().join("token-suizhou");
        std::fs::write(&suizhou_token, token_of("sandbox_his_suizhou")).unwrap();
        let kit = |callers: bool| {
            let mut cmd = std::process::Command::new(bin("national-gateway"));
            cmd.args(["conformance", "--url", &url, "--paasid", "sandbox_his", "--token", &token_of("sandbox_his"), "--corpus"])
                .arg(repo_root().join("examples/national/requests"))
                .arg("--answers")
                .arg(&answers);
            if tls {
                cmd.arg("--ca").arg(pki.ca());
            }
            if callers {
                cmd.arg("--caller").arg(format!("suizhou=sandbox_his_suizhou:{}", suizhou_token.display()));
            }
            cmd.output().unwrap()
        };
        let out = kit(true);
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
        assert!(printed.trim_end().ends_with("transactions, 0 with differences"), "{printed}");
        assert!(printed.lines().count() >= 30 && !printed.contains("skipped"), "{printed}");
        // The visit's settlement (2201 → 2203 → 2204 → 2207) against SettleClaim of the same lines.
        let done: Value = serde_json::from_slice(&std::fs::read(answers.join("08-2207-settle.answer.json")).unwrap()).unwrap();
        let reply = Reply { status: 200, body: done };
        let mut twin = claim("TWIN-1", "421300", "SANDBOXT", "360100", 3, "2024-03-12", 500);
        twin.fixmedins_code = "H36010000001".into();
        twin.setl_time = chrono::DateTime::parse_from_rfc3339(&chrono::Utc::now().to_rfc3339()).unwrap().to_rfc3339();
        twin.acct_used_flag = true;
        let line = |cnt: &str, pric: &str, sum: &str| pb::ClaimLine {
            hilist_code: CLASS_A_NO_CAP.into(),
            cnt: cnt.into(),
            pric: pric.into(),
            det_item_fee_sumamt: sum.into(),
        };
        twin.lines = vec![line("1", "500.00", "500.00"), line("2", "150.00", "300.00"), line("1", "80.00", "80.00")];
        let direct = c.clearing().await.settle_claim(twin).await.unwrap().into_inner();
        assert_eq!(national_amounts(&reply), grpc_amounts(&direct), "the corpus's 2207 vs SettleClaim");
        // The chronic-disease visit (hypertension, 14) of SANDBOX2 in Suizhou, against SettleClaim as 14.
        let done: Value =
            serde_json::from_slice(&std::fs::read(answers.join("18f-2207-chronic-settle@suizhou.answer.json")).unwrap()).unwrap();
        let mut twin = claim("TWIN-C", "360100", "SANDBOXC", "421300", 3, "2024-03-12", 300);
        (twin.fixmedins_code, twin.med_type, twin.dise_code) = ("H42130000001".into(), "14".into(), "M03900".into());
        twin.setl_time = chrono::Utc::now().to_rfc3339();
        let direct = c.clearing().await.settle_claim(twin).await.unwrap().into_inner();
        assert_eq!(national_amounts(&Reply { status: 200, body: done }), grpc_amounts(&direct), "the corpus's chronic 2207 vs SettleClaim");
        // Run again at once against the same state (as a developer does): new msgids, the same verdict.
        let again = kit(true);
        let printed_again = String::from_utf8_lossy(&again.stdout);
        assert!(again.status.success() && printed_again.trim_end().ends_with("0 with differences"), "{printed_again}");
    }
    // Without the second caller its files are skipped, said so, and not counted.
    let out = {
        let c = Clearing::start();
        let dir = tempfile::tempdir().unwrap();
        let g =
            Gateway::start(&c.url(), &paas_file(dir.path(), &[("sandbox_his", "institution:H36010000001,P36010000001", "360100")]), &[]);
        registered(&c, &national_gateway::sandbox::members().unwrap()).await;
        std::process::Command::new(bin("national-gateway"))
            .args([
                "conformance",
                "--url",
                &g.url(),
                "--paasid",
                "sandbox_his",
                "--token",
                &token_of("sandbox_his"),
                "--only",
                "1101",
                "--corpus",
            ])
            .arg(repo_root().join("examples/national/requests"))
            .output()
            .unwrap()
    };
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.contains("1 skipped (no caller suizhou)") && printed.contains("4 transactions, 0 with differences"),
        "{printed}"
    );
}
