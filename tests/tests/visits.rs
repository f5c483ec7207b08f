//! The hospital's flow (issue 17): register a visit, upload fee details, cancel some, settle by
//! `mdtrt_id` — over gRPC and through the national gateway (2201/2204/2205/2202 → 2206/2207), on the
//! embedded store and on Redis with two replicas, across a restart, and the expiry sweep.

use proto::v1 as pb;
use serde_json::json;
use std::collections::BTreeMap;
use tests::gateway::*;
use tests::*;
use tonic::Code;

fn amounts(s: &pb::Settlement) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("medfee_sumamt", s.medfee_sumamt.clone()),
        ("fulamt_ownpay_amt", s.fulamt_ownpay_amt.clone()),
        ("overlmt_selfpay", s.overlmt_selfpay.clone()),
        ("preselfpay_amt", s.preselfpay_amt.clone()),
        ("inscp_scp_amt", s.inscp_scp_amt.clone()),
        ("act_pay_dedc", s.act_pay_dedc.clone()),
        ("hifp_pay", s.hifp_pay.clone()),
        ("fund_pay_sumamt", s.fund_pay_sumamt.clone()),
        ("acct_pay", s.acct_pay.clone()),
        ("psn_cash_pay", s.psn_cash_pay.clone()),
        ("balc", s.balc.clone()),
    ])
}

fn national_amounts(r: &Reply) -> BTreeMap<&'static str, String> {
    [
        "medfee_sumamt",
        "fulamt_ownpay_amt",
        "overlmt_selfpay",
        "preselfpay_amt",
        "inscp_scp_amt",
        "act_pay_dedc",
        "hifp_pay",
        "fund_pay_sumamt",
        "acct_pay",
        "psn_cash_pay",
        "balc",
    ]
    .into_iter()
    .map(|k| (k, r.setl(k)))
    .collect()
}

fn details(k: &pb::Claim, batch: &str) -> Vec<pb::FeeDetail> {
    k.lines
        .iter()
        .enumerate()
        .map(|(i, l)| pb::FeeDetail {
            feedetl_sn: format!("{:04}", i + 1),
            chrg_bchno: batch.into(),
            hilist_code: l.hilist_code.clone(),
            cnt: l.cnt.clone(),
            pric: l.pric.clone(),
            det_item_fee_sumamt: l.det_item_fee_sumamt.clone(),
            fee_ocur_time: k.setl_time.clone(),
        })
        .collect()
}

fn registration(k: &pb::Claim, msgid: &str) -> pb::RegisterVisitRequest {
    pb::RegisterVisitRequest {
        msgid: msgid.into(),
        psn_no: k.psn_no.clone(),
        insuplc_admdvs: k.insuplc_admdvs.clone(),
        mdtrt_admdvs: k.mdtrt_admdvs.clone(),
        fixmedins_code: k.fixmedins_code.clone(),
        med_type: k.med_type.clone(),
        begntime: k.setl_time.clone(),
        ipt_otp_no: "MZ0001".into(),
        ..Default::default()
    }
}

fn settle_req(k: &pb::Claim, mdtrt_id: &str) -> pb::SettleVisitRequest {
    let total: i64 = k.lines.iter().map(|l| fen(&l.det_item_fee_sumamt)).sum();
    pb::SettleVisitRequest {
        mdtrt_id: mdtrt_id.into(),
        msgid: k.msgid.clone(),
        medfee_sumamt: format!("{}.{:02}", total / 100, total % 100),
        acct_used_flag: k.acct_used_flag,
        ..Default::default()
    }
}

/// A request as a given caller (the forwarded identity clearing honours on a plain-text listener).
fn as_caller<T>(msg: T, who: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("x-clearing-forwarded", who.parse().unwrap());
    r
}

const JIANGXI: &str = "platform:360000:jiangxi_platform";
const HUBEI: &str = "platform:420000:hubei_platform";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_settles_exactly_what_settle_claim_settles_over_grpc_and_through_the_gateway() {
    let c = Clearing::start();
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(&c.url(), &paas_file(dir.path(), &[("jiangxi_platform", "platform", "360000")]), &[]);
    let jx = His::new(&g.url(), "jiangxi_platform");
    registered(&c, &["SZV1", "SZV2", "SZV3"].iter().map(|p| funded(member("421300", p, "11", &["360000"]), "300.00")).collect::<Vec<_>>())
        .await;
    let mut cl = c.clearing().await;
    for ((direct, over_grpc), national) in
        golden_visits("D", "SZV1").into_iter().zip(golden_visits("G", "SZV2")).zip(golden_visits("N", "SZV3"))
    {
        let want = amounts(&cl.settle_claim(direct).await.unwrap().into_inner());

        // Over gRPC: register, upload in two parts (the first resent), preview, settle.
        let v = cl
            .register_visit(as_caller(registration(&over_grpc, &format!("{}-reg", over_grpc.msgid)), JIANGXI))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((v.status.as_str(), v.hosp_lv), ("open", over_grpc.hosp_lv), "the level comes from the institution list");
        let all = details(&over_grpc, "B1");
        let (head, tail) = all.split_at(all.len() / 2 + 1);
        for part in [head, head, tail].into_iter().filter(|p| !p.is_empty()) {
            let up = pb::UploadFeeDetailsRequest { mdtrt_id: v.mdtrt_id.clone(), details: part.to_vec() };
            let r = cl.upload_fee_details(as_caller(up, JIANGXI)).await.unwrap().into_inner();
            assert_eq!(r.results.len(), part.len());
        }
        let req = settle_req(&over_grpc, &v.mdtrt_id);
        let pre = cl.preview_visit(as_caller(req.clone(), JIANGXI)).await.unwrap().into_inner();
        let done = cl.settle_visit(as_caller(req.clone(), JIANGXI)).await.unwrap().into_inner();
        assert_eq!(amounts(&done), want, "SettleVisit vs SettleClaim for {}", over_grpc.msgid);
        assert_eq!(amounts(&pre), want);
        // A resend of the settlement is the same answer.
        assert_eq!(cl.settle_visit(as_caller(req, JIANGXI)).await.unwrap().into_inner(), done);
        let after = cl.get_visit(as_caller(pb::GetVisitRequest { mdtrt_id: v.mdtrt_id.clone() }, JIANGXI)).await.unwrap().into_inner();
        assert_eq!((after.status.as_str(), after.setl_id.as_str()), ("settled", done.setl_id.as_str()));

        // Through the gateway: 2201, 2204, 2206, 2207 with mdtrt_id.
        let w = Where::of(&national);
        let t = chrono::DateTime::parse_from_rfc3339(&national.setl_time).unwrap().format("%Y-%m-%d %H:%M:%S").to_string();
        let reg = jx
            .call(
                "2201",
                &format!("{}-reg", national.msgid),
                &w,
                json!({ "data": { "psn_no": national.psn_no, "insutype": "310", "begntime": t, "med_type": "11", "ipt_otp_no": "MZ1" } }),
            )
            .await
            .ok();
        let mdtrt_id = reg.output()["data"]["mdtrt_id"].as_str().unwrap().to_string();
        let input = national_input(&national, false);
        let mut feedetail = input["feedetail"].as_array().unwrap().clone();
        for d in &mut feedetail {
            d["mdtrt_id"] = json!(mdtrt_id);
            d["chrg_bchno"] = json!("B1");
        }
        let up = jx.call("2204", &format!("{}-up", national.msgid), &w, json!({ "feedetail": feedetail })).await.ok();
        let result = up.output()["result"].as_array().unwrap();
        assert_eq!(result.len(), national.lines.len());
        // Each line's verdict at once: class, self-pay share, cap and the four-way split.
        let split = cl.preview_claim(national.clone()).await.unwrap().into_inner().lines;
        assert_eq!(split.len(), result.len());
        for (r, l) in result.iter().zip(&split) {
            for (ours, theirs) in [
                ("inscp_scp_amt", &l.inscp_scp_amt),
                ("overlmt_amt", &l.overlmt_selfpay),
                ("preselfpay_amt", &l.preselfpay_amt),
                ("fulamt_ownpay_amt", &l.fulamt_ownpay_amt),
                ("chrgitm_lv", &l.chrgitm_lv),
                ("selfpay_prop", &l.selfpay_prop),
            ] {
                assert_eq!(r[ours].as_str(), Some(theirs.as_str()), "{ours} of {}", l.hilist_code);
            }
        }
        // The catalogue's price cap comes with each verdict where the item has one.
        // The example's 苯磺酸氨氯地平片 has a cap in Nanchang's sample catalogue: 1.26.
        if national.lines.len() > 1 {
            let capped = result.iter().find(|r| r["med_list_codg"] == "XC08CAA017A0").expect("the example's capped drug");
            assert_eq!(capped["pric_uplmt_amt"], "1.26");
        }
        let settle_input = json!({ "data": { "mdtrt_id": mdtrt_id, "medfee_sumamt": input["data"]["medfee_sumamt"], "acct_used_flag": input["data"]["acct_used_flag"], "chrg_bchno": "B1" } });
        let pre = jx.call("2206", &format!("{}-pre", national.msgid), &w, settle_input.clone()).await.ok();
        let done = jx.call("2207", &national.msgid, &w, settle_input).await.ok();
        assert_eq!(national_amounts(&done), want, "2207 by mdtrt_id vs SettleClaim for {}", national.msgid);
        assert_eq!(national_amounts(&pre), want);
        assert_eq!(done.setl("mdtrt_id"), mdtrt_id);
        assert_eq!(done.output()["detlcutinfo"][0]["feedetl_sn"], "0001");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_a_his_relies_on_are_kept_and_a_refusal_changes_nothing() {
    let c = Clearing::start();
    registered(&c, &[funded(member("421300", "SZR1", "11", &["360000"]), "300.00")]).await;
    let mut cl = c.clearing().await;
    let k = golden_visits("R", "SZR1").remove(0);
    let v = cl.register_visit(as_caller(registration(&k, "R-reg"), JIANGXI)).await.unwrap().into_inner();
    let id = v.mdtrt_id.clone();
    let get = |cl: &mut ClearingClient<tonic::transport::Channel>| {
        let mut cl = cl.clone();
        let id = id.clone();
        async move { cl.get_visit(as_caller(pb::GetVisitRequest { mdtrt_id: id }, JIANGXI)).await.unwrap().into_inner() }
    };
    // Registration is idempotent on msgid; other content under the same msgid is refused.
    assert_eq!(cl.register_visit(as_caller(registration(&k, "R-reg"), JIANGXI)).await.unwrap().into_inner().mdtrt_id, id);
    let mut other = registration(&k, "R-reg");
    other.ipt_otp_no = "MZ9".into();
    assert_eq!(cl.register_visit(as_caller(other, JIANGXI)).await.unwrap_err().code(), Code::AlreadyExists);
    // Only the service location's platform touches a visit: another region cannot register there, and
    // cannot see one (answered like a visit that does not exist).
    assert_eq!(cl.register_visit(as_caller(registration(&k, "R-hb"), HUBEI)).await.unwrap_err().code(), Code::PermissionDenied);
    let up = |d: Vec<pb::FeeDetail>| pb::UploadFeeDetailsRequest { mdtrt_id: id.clone(), details: d };
    let foreign = cl.upload_fee_details(as_caller(up(details(&k, "B1")), HUBEI)).await.unwrap_err();
    let missing = cl.get_visit(as_caller(pb::GetVisitRequest { mdtrt_id: format!("{}ff", &id[..22]) }, JIANGXI)).await.unwrap_err();
    assert_eq!((foreign.code(), bad_fields(&foreign)), (Code::NotFound, bad_fields(&missing)));
    assert!(get(&mut cl).await.details.is_empty(), "a refused upload wrote something");

    // feedetl_sn: the same content again is accepted, other content refused (the whole upload).
    cl.upload_fee_details(as_caller(up(details(&k, "B1")[..3].to_vec()), JIANGXI)).await.unwrap();
    let before = get(&mut cl).await;
    let mut changed = details(&k, "B1")[1..5].to_vec();
    changed[1].cnt = "2".into();
    let twice = 2 * fen(&changed[1].pric);
    changed[1].det_item_fee_sumamt = format!("{}.{:02}", twice / 100, twice % 100);
    let e = cl.upload_fee_details(as_caller(up(changed), JIANGXI)).await.unwrap_err();
    assert_eq!((e.code(), bad_fields(&e)), (Code::InvalidArgument, vec!["details[1].feedetl_sn".to_string()]));
    assert_eq!(get(&mut cl).await, before, "a refused upload changed the visit");
    // A bad line is named by its place in the upload.
    let mut bad = details(&k, "B1")[3..5].to_vec();
    bad[1].cnt = "-1".into();
    let e = cl.upload_fee_details(as_caller(up(bad), JIANGXI)).await.unwrap_err();
    assert!(bad_fields(&e).iter().any(|f| f.starts_with("details[1].")), "{e:?}");
    assert_eq!(get(&mut cl).await, before);
    // 2205: a batch leaves the visit; then the whole claim is uploaded as batch B2.
    cl.upload_fee_details(as_caller(up(details(&k, "B1")), JIANGXI)).await.unwrap();
    let cancel = pb::CancelFeeDetailsRequest { mdtrt_id: id.clone(), chrg_bchno: "B1".into(), feedetl_sn: vec![] };
    assert!(cl.cancel_fee_details(as_caller(cancel, JIANGXI)).await.unwrap().into_inner().details.is_empty());
    cl.upload_fee_details(as_caller(up(details(&k, "B2")), JIANGXI)).await.unwrap();

    // The total sent with the settlement must be the uploaded details' sum, naming both numbers.
    let mut req = settle_req(&k, &id);
    let right = req.medfee_sumamt.clone();
    req.medfee_sumamt = "1.00".into();
    let e = cl.settle_visit(as_caller(req.clone(), JIANGXI)).await.unwrap_err();
    assert_eq!(bad_fields(&e), vec!["medfee_sumamt".to_string()]);
    assert!(e.message().contains("1.00") && e.message().contains(&right), "{}", e.message());
    req.medfee_sumamt = right;
    let s = cl.settle_visit(as_caller(req, JIANGXI)).await.unwrap().into_inner();
    let (version, _) = member_state(&c, "SZR1").await;

    // A settled visit: its details cannot change, it cannot be cancelled (reverse instead).
    let settled = get(&mut cl).await;
    for e in [
        cl.upload_fee_details(as_caller(up(details(&k, "B3")), JIANGXI)).await.unwrap_err(),
        cl.cancel_visit(as_caller(pb::CancelVisitRequest { mdtrt_id: id.clone() }, JIANGXI)).await.unwrap_err(),
        cl.cancel_fee_details(as_caller(
            pb::CancelFeeDetailsRequest { mdtrt_id: id.clone(), chrg_bchno: "B2".into(), feedetl_sn: vec![] },
            JIANGXI,
        ))
        .await
        .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }
    assert!(
        cl.cancel_visit(as_caller(pb::CancelVisitRequest { mdtrt_id: id.clone() }, JIANGXI))
            .await
            .unwrap_err()
            .message()
            .contains("reverse the settlement")
    );
    assert_eq!(get(&mut cl).await, settled);
    assert_eq!(settled.setl_id, s.setl_id);
    // Another settlement msgid on a settled visit is refused, nothing settled twice.
    let mut again = settle_req(&k, &id);
    again.msgid = "R-other".into();
    assert_eq!(cl.settle_visit(as_caller(again, JIANGXI)).await.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(member_state(&c, "SZR1").await.0, version);

    // A cancelled visit accepts nothing.
    let k2 = golden_visits("R2", "SZR1").remove(1);
    let v2 = cl.register_visit(as_caller(registration(&k2, "R2-reg"), JIANGXI)).await.unwrap().into_inner();
    cl.cancel_visit(as_caller(pb::CancelVisitRequest { mdtrt_id: v2.mdtrt_id.clone() }, JIANGXI)).await.unwrap();
    let e = cl
        .upload_fee_details(as_caller(pb::UploadFeeDetailsRequest { mdtrt_id: v2.mdtrt_id.clone(), details: details(&k2, "B1") }, JIANGXI))
        .await
        .unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("cancelled"), "{e:?}");
    assert_eq!(cl.settle_visit(as_caller(settle_req(&k2, &v2.mdtrt_id), JIANGXI)).await.unwrap_err().code(), Code::FailedPrecondition);

    // 1101 at the treating institution: a member filed nowhere is readable by a service location only
    // while it has an open visit there.
    // SZR9's filing for Jiangxi covered 2024 (the visit) but has ended: no filing in force today.
    let mut r9 = member("421300", "SZR9", "11", &["360000"]);
    r9.filings[0].enddate = "2024-12-31".into();
    registered(&c, &[r9]).await;
    let read = |who: &'static str| {
        let c_url = c.url();
        async move {
            let ch = tonic::transport::Channel::from_shared(c_url).unwrap().connect().await.unwrap();
            let q = pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZR9".into(), year: 0 };
            RegistryClient::new(ch).get_member(as_caller(q, who)).await.map(|_| ()).map_err(|e| e.code())
        }
    };
    assert_eq!(read(JIANGXI).await, Err(Code::NotFound));
    let mut k9 = golden_visits("R9", "SZR9").remove(1);
    k9.psn_no = "SZR9".into();
    let v9 = cl.register_visit(as_caller(registration(&k9, "R9-reg"), JIANGXI)).await.unwrap().into_inner();
    assert_eq!(read(JIANGXI).await, Ok(()));
    assert_eq!(read("platform:320000:jiangsu_platform").await, Err(Code::NotFound), "the visit is in Nanchang, not in Jiangsu");
    assert_eq!(read(HUBEI).await, Ok(()), "the insured side reads its member");
    cl.cancel_visit(as_caller(pb::CancelVisitRequest { mdtrt_id: v9.mdtrt_id }, JIANGXI)).await.unwrap();
    assert_eq!(read(JIANGXI).await, Err(Code::NotFound));

    // Open visits are bounded per institution (3: one caller cannot lock a member out) and per member (10).
    let at = |code: &str, n: usize| {
        let mut r = registration(&k2, &format!("R-{code}-{n}"));
        r.fixmedins_code = code.into();
        r
    };
    for n in 0..3 {
        cl.register_visit(as_caller(at("H36010000001", n), JIANGXI)).await.unwrap();
    }
    let e = cl.register_visit(as_caller(at("H36010000001", 3), JIANGXI)).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("at one institution"), "{e:?}");
    let mut opened = 3;
    let refused = loop {
        let code = ["H36010000002", "H36010000003", "H36010200001", "H36010200746"][(opened - 3) / 3];
        match cl.register_visit(as_caller(at(code, opened), JIANGXI)).await {
            Ok(_) => opened += 1,
            Err(e) => break e,
        }
        assert!(opened <= 10, "no bound on open visits");
    };
    assert_eq!((opened, refused.code()), (10, Code::FailedPrecondition), "{refused:?}");
    assert!(refused.message().contains("the most open visits allowed (10)"), "{refused:?}");
}

/// Issue 29 item 5: registration is not a side door. A member whose region pays visits elsewhere only
/// with a filing (Suizhou art. 10) and who has none in force here is answered exactly like a member that
/// does not exist; with the filing, the same registration is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_answers_an_unfiled_member_like_a_missing_one() {
    let c = Clearing::start();
    registered(&c, &[member("421300", "SZU1", "11", &[]), member("421300", "SZU2", "11", &["360000"])]).await;
    let mut cl = c.clearing().await;
    let mut k = golden_visits("U1", "SZU1").remove(1);
    let unfiled = cl.register_visit(registration(&k, "U1-reg")).await.unwrap_err();
    k.psn_no = "SZNOBODY".into();
    let missing = cl.register_visit(registration(&k, "U0-reg")).await.unwrap_err();
    assert_eq!((unfiled.code(), unfiled.message(), bad_fields(&unfiled)), (missing.code(), missing.message(), bad_fields(&missing)));
    assert_eq!(unfiled.code(), Code::NotFound);
    k.psn_no = "SZU2".into();
    cl.register_visit(registration(&k, "U2-reg")).await.expect("a filed member registers");
}

/// Issue 30: a chronic-disease visit the national way — 2201 (no medical type: ordinary), 2203 sets 14
/// and the disease before the details, 2204, 2207 — settles exactly what SettleClaim settles for the same
/// claim as 14; a 2207 naming another medical type than the visit's is refused, never settled as it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chronic_disease_visit_is_settled_as_its_2203_says_and_never_as_another_type() {
    let c = Clearing::start();
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(&c.url(), &paas_file(dir.path(), &[("hubei_platform", "platform", "420000")]), &[]);
    let hb = His::new(&g.url(), "hubei_platform");
    registered(&c, &["NCC1", "NCC2"].iter().map(|p| funded(member("360100", p, "11", &[]), "100.00")).collect::<Vec<_>>()).await;
    // The claim as SettleClaim takes it: a Nanchang member with hypertension (M03900), in Suizhou.
    let mut k = claim("CHR-1", "360100", "NCC1", "421300", 3, "2024-03-12", 300);
    k.med_type = "14".into();
    k.dise_code = "M03900".into();
    let mut twin = k.clone();
    (twin.msgid, twin.psn_no) = ("CHR-G".into(), "NCC2".into());
    let want = amounts(&c.clearing().await.settle_claim(twin).await.unwrap().into_inner());
    let w = Where::of(&k);
    let t = "2024-03-12 10:00:00";
    let reg = hb.call("2201", "CHR-reg", &w, json!({ "data": { "psn_no": "NCC1", "insutype": "310", "begntime": t } })).await.ok();
    let id = reg.output()["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let info = |med_type: &str, dise: &str| {
        json!({ "mdtrtinfo": { "mdtrt_id": id, "psn_no": "NCC1", "med_type": med_type, "begntime": t, "dise_codg": dise, "dise_name": "" },
                "diseinfo": [{ "diag_type": "1", "diag_srt_no": 1, "diag_code": "I10.x00", "diag_name": "", "diag_dept": "", "dise_dor_no": "D1",
                               "dise_dor_name": "", "diag_time": t, "vali_flag": "1" }] })
    };
    let r = hb.call("2203", "CHR-i0", &w, info("14", "")).await;
    assert!(r.infcode() == -1 && r.err_msg().starts_with("input.mdtrtinfo.dise_codg"), "{}", r.body);
    assert_eq!(hb.call("2203", "CHR-i1", &w, info("14", "M03900")).await.ok().output(), &json!({}));
    let mut feedetail = national_input(&k, false)["feedetail"].as_array().unwrap().clone();
    for d in &mut feedetail {
        d["mdtrt_id"] = json!(id);
    }
    hb.call("2204", "CHR-up", &w, json!({ "feedetail": feedetail })).await.ok();
    // After the details the medical type no longer changes, and a settlement as another type is refused.
    let late = hb.call("2203", "CHR-i2", &w, info("11", "")).await;
    assert!(late.infcode() == -1 && late.err_msg().contains("2203 comes before 2204"), "{}", late.body);
    let before = member_state(&c, "NCC1").await;
    let settle = |med_type: &str| {
        let mut d = json!({ "mdtrt_id": id, "medfee_sumamt": national_input(&k, false)["data"]["medfee_sumamt"], "acct_used_flag": "0", "insutype": "310" });
        d["med_type"] = json!(med_type);
        json!({ "data": d })
    };
    let wrong = hb.call("2207", "CHR-11", &w, settle("11")).await;
    assert!(wrong.infcode() == -1 && wrong.err_msg().starts_with("input.data.med_type: the visit is med_type 14"), "{}", wrong.body);
    assert_eq!(member_state(&c, "NCC1").await, before, "a refused settlement wrote something");
    let done = hb.call("2207", "CHR-14", &w, settle("14")).await.ok();
    assert_eq!(national_amounts(&done), want, "2203 + 2207 vs SettleClaim as 14");
    // 5203 and 5204 read it back (a HIS after a fault); another member's number finds nothing.
    let setl_id = done.setl("setl_id");
    let q = |psn: &str| json!({ "data": { "psn_no": psn, "setl_id": setl_id, "mdtrt_id": id } });
    let info = hb.call("5203", "CHR-q1", &w, q("NCC1")).await.ok();
    assert_eq!(
        (info.setl("setl_id"), info.setl("med_type"), info.setl("psn_pay")),
        (setl_id.clone(), "14".into(), done.setl("psn_part_amt"))
    );
    assert_eq!(info.output()["setldetail"][0]["fund_payamt"], done.output()["setldetail"][0]["fund_payamt"]);
    let other = hb.call("5203", "CHR-q2", &w, q("NCC2")).await;
    assert_eq!((other.infcode(), other.err_msg()), (-1, format!("input.data.setl_id: settlement {setl_id} not found").as_str()));
    let rows = hb.call("5204", "CHR-q3", &w, q("NCC1")).await.ok();
    let rows = rows.output().as_array().unwrap().clone();
    assert_eq!(rows.len(), k.lines.len());
    assert_eq!(
        (rows[0]["setl_id"].as_str(), rows[0]["feedetl_sn"].as_str()),
        (Some(setl_id.as_str()), feedetail[0]["feedetl_sn"].as_str())
    );
}

async fn member_state(c: &Clearing, psn: &str) -> (u64, Vec<pb::Accumulator>) {
    // Suizhou's members, and Nanchang's (NC…).
    let insured = if psn.starts_with("NC") { "360100" } else { "421300" };
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: insured.into(), psn_no: psn.into(), year: 0 })
        .await
        .unwrap()
        .into_inner();
    (m.version, m.accumulators)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_redis_finish_each_others_visits_and_a_restart_loses_nothing() {
    let r = Redis::start();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let mut b = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    registered(
        &a,
        &[funded(member("421300", "SZRR1", "11", &["360000"]), "300.00"), funded(member("421300", "SZRR2", "11", &["360000"]), "300.00")],
    )
    .await;
    let (mut ca, mut cb) = (a.clearing().await, b.clearing().await);
    for (k, twin) in golden_visits("RR", "SZRR1").into_iter().zip(golden_visits("RT", "SZRR2")) {
        let want = amounts(&ca.settle_claim(twin).await.unwrap().into_inner());
        // A registers and uploads half; B uploads the rest; B restarts; A previews, B settles.
        let v = ca.register_visit(as_caller(registration(&k, &format!("{}-reg", k.msgid)), JIANGXI)).await.unwrap().into_inner();
        let all = details(&k, "B1");
        let (head, tail) = all.split_at(all.len() / 2);
        if !head.is_empty() {
            ca.upload_fee_details(as_caller(pb::UploadFeeDetailsRequest { mdtrt_id: v.mdtrt_id.clone(), details: head.to_vec() }, JIANGXI))
                .await
                .unwrap();
        }
        cb.upload_fee_details(as_caller(pb::UploadFeeDetailsRequest { mdtrt_id: v.mdtrt_id.clone(), details: tail.to_vec() }, JIANGXI))
            .await
            .unwrap();
        b.crash();
        b.restart();
        cb = b.clearing().await;
        let req = settle_req(&k, &v.mdtrt_id);
        assert_eq!(amounts(&ca.preview_visit(as_caller(req.clone(), JIANGXI)).await.unwrap().into_inner()), want);
        let s = cb.settle_visit(as_caller(req, JIANGXI)).await.unwrap().into_inner();
        assert_eq!(amounts(&s), want, "{}", k.msgid);
        let seen = ca.get_visit(as_caller(pb::GetVisitRequest { mdtrt_id: v.mdtrt_id.clone() }, JIANGXI)).await.unwrap().into_inner();
        assert_eq!((seen.status.as_str(), seen.details.len()), ("settled", k.lines.len()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_survives_a_restart_of_the_embedded_store_and_expired_ones_are_swept() {
    let mut c = Clearing::start_with(&["--visit-ttl-secs", "3", "--visit-sweep-secs", "1"]);
    registered(&c, &[funded(member("421300", "SZE1", "11", &["360000"]), "300.00")]).await;
    let mut cl = c.clearing().await;
    let ks = golden_visits("E", "SZE1");
    let (settled, left) = (&ks[1], &ks[2]);
    let v_settled = cl.register_visit(as_caller(registration(settled, "E-1"), JIANGXI)).await.unwrap().into_inner();
    let v_left = cl.register_visit(as_caller(registration(left, "E-2"), JIANGXI)).await.unwrap().into_inner();
    for (v, k) in [(&v_settled, settled), (&v_left, left)] {
        cl.upload_fee_details(as_caller(pb::UploadFeeDetailsRequest { mdtrt_id: v.mdtrt_id.clone(), details: details(k, "B1") }, JIANGXI))
            .await
            .unwrap();
    }
    // A restart in the middle of a visit: it is all still there, and settles.
    c.crash();
    c.restart();
    let mut cl = c.clearing().await;
    let s = cl.settle_visit(as_caller(settle_req(settled, &v_settled.mdtrt_id), JIANGXI)).await.unwrap().into_inner();
    assert!(fen(&s.medfee_sumamt) > 0);
    // The unsettled visit expires and is swept; the settled one stays.
    let get = |id: String| {
        let mut cl = cl.clone();
        async move { cl.get_visit(as_caller(pb::GetVisitRequest { mdtrt_id: id }, JIANGXI)).await }
    };
    eventually("the expired visit is swept", PATIENCE, || async {
        matches!(get(v_left.mdtrt_id.clone()).await, Err(e) if e.code() == Code::NotFound).then_some(())
    })
    .await;
    let kept = get(v_settled.mdtrt_id.clone()).await.unwrap().into_inner();
    assert_eq!((kept.status.as_str(), kept.setl_id.as_str()), ("settled", s.setl_id.as_str()));
    assert!(c.log().contains("expired visits swept"));
}

/// Issue 27: a visit left `settling` (a crash between the settlement's commit and the visit's own update,
/// and the HIS never resent) is resolved by the sweep: settled from the stored answer when its msgid
/// committed, reopened when it did not, so it settles again. The crash's state is written into the
/// stopped service's embedded store, the sweep's staleness already passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_left_settling_by_a_crash_is_finished_or_reopened_by_the_sweep() {
    use clearing_service::store::features::names::visit as visit_key;
    use clearing_service::store::{RecordWrite, VisitRecords, embedded::EmbeddedStore};
    let mut c = Clearing::start_with(&["--visit-sweep-secs", "1"]);
    registered(&c, &[funded(member("421300", "SZST1", "11", &["360000"]), "300.00")]).await;
    let mut cl = c.clearing().await;
    let ks = golden_visits("ST", "SZST1");
    let (old, done, undone) = (&ks[0], &ks[1], &ks[2]);
    let v_old = cl.register_visit(as_caller(registration(old, "ST-0"), JIANGXI)).await.unwrap().into_inner();
    let v_done = cl.register_visit(as_caller(registration(done, "ST-1"), JIANGXI)).await.unwrap().into_inner();
    let v_undone = cl.register_visit(as_caller(registration(undone, "ST-2"), JIANGXI)).await.unwrap().into_inner();
    for (v, k) in [(&v_old, old), (&v_done, done), (&v_undone, undone)] {
        cl.upload_fee_details(as_caller(pb::UploadFeeDetailsRequest { mdtrt_id: v.mdtrt_id.clone(), details: details(k, "B1") }, JIANGXI))
            .await
            .unwrap();
    }
    let s = cl.settle_visit(as_caller(settle_req(done, &v_done.mdtrt_id), JIANGXI)).await.unwrap().into_inner();
    c.stop();
    {
        // `done` committed but its visit still settling; `undone` frozen under a msgid that never committed,
        // both long ago; `old` settling in a record from before the time was kept (0): maybe still running.
        let store = EmbeddedStore::open(&c.data_dir()).unwrap();
        for (id, msgid, since) in
            [(&v_done.mdtrt_id, done.msgid.as_str(), 1), (&v_undone.mdtrt_id, "ST-NEVER", 1), (&v_old.mdtrt_id, "ST-OLD", 0)]
        {
            let shard = u16::from_str_radix(&id[..2], 16).unwrap();
            let key = visit_key(id);
            let rec = store.visit_records(shard, std::slice::from_ref(&key)).await.unwrap().remove(0).expect("the visit");
            let mut v: serde_json::Value = serde_json::from_str(&rec.data).unwrap();
            v["status"] = json!("settling");
            v["setl_id"] = json!("");
            v["setl_msgid"] = json!(msgid);
            v["settling_since_ms"] = json!(since);
            let write = RecordWrite { key, expected: rec.version, data: Some(v.to_string()) };
            assert!(store.put_visit_records(shard, vec![write]).await.unwrap());
        }
    }
    c.restart();
    let cl = c.clearing().await;
    let status = |id: String| {
        let mut cl = cl.clone();
        async move {
            let v = cl.get_visit(as_caller(pb::GetVisitRequest { mdtrt_id: id }, JIANGXI)).await.unwrap().into_inner();
            (v.status, v.setl_id)
        }
    };
    eventually("the sweep resolves both visits", PATIENCE, || async {
        let (a, b) = (status(v_done.mdtrt_id.clone()).await, status(v_undone.mdtrt_id.clone()).await);
        (a.0 != "settling" && b.0 != "settling").then_some(())
    })
    .await;
    assert_eq!(status(v_done.mdtrt_id.clone()).await, ("settled".to_string(), s.setl_id.clone()), "finished from its stored answer");
    assert_eq!(status(v_undone.mdtrt_id.clone()).await, ("open".to_string(), String::new()), "reopened");
    assert_eq!(status(v_old.mdtrt_id.clone()).await.0, "settling", "a record without the time is given fifteen minutes from now");
    assert_eq!(c.log().matches("a visit left settling was resolved").count(), 2, "{}", c.log());
    // The reopened visit settles, once.
    let mut cl = c.clearing().await;
    let s2 = cl.settle_visit(as_caller(settle_req(undone, &v_undone.mdtrt_id), JIANGXI)).await.unwrap().into_inner();
    assert_eq!(status(v_undone.mdtrt_id.clone()).await, ("settled".to_string(), s2.setl_id));
}

/// Issue 29 item 5: a preview (2206) is no oracle of a member's account. A service location's platform
/// sees the balance, the member's type and the explanation only for a member it may read (1101's rule:
/// a filing in force there, or an open visit); for any other member, the claim's amounts alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_shows_the_balance_only_to_callers_that_may_read_the_member() {
    let c = Clearing::start();
    let funded = |psn: &str, filings: &[&str]| {
        let mut m = member("421300", psn, "11", filings);
        m.acct_balc = "300.00".into();
        m
    };
    registered(&c, &[funded("SZP1", &["360000"]), funded("SZP2", &[])]).await;
    let mut cl = c.clearing().await;
    for (psn, readable) in [("SZP1", true), ("SZP2", false)] {
        let mut k = claim(&format!("PV-{psn}"), "421300", psn, "360100", 1, "2024-03-10", 100);
        k.acct_used_flag = true;
        let s = cl.preview_claim(as_caller(k.clone(), JIANGXI)).await.unwrap().into_inner();
        assert_eq!((s.medfee_sumamt.as_str(), s.acct_pay.as_str()), ("100.00", "100.00"), "{psn}: the claim's amounts are shown");
        let hidden = s.explanation.iter().any(|e| e.contains("shown only to callers that may read the member"));
        assert_eq!((s.balc.is_empty(), s.psn_type.is_empty(), hidden), (!readable, !readable, !readable), "{psn}: {s:?}");
        // Without a forwarded identity (plain text, a developer's machine) everything is shown.
        let all = cl.preview_claim(k).await.unwrap().into_inner();
        assert_eq!(all.balc, "200.00");
    }
}
