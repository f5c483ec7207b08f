//! The clearing service end to end: the real `clearing` binary on a free port with a temporary data
//! directory, driven over gRPC. The golden cases of the engine through the wire, idempotency,
//! reversal, restart, and every kind of bad input.

use prost::Message;
use proto::v1 as pb;
use tests::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_first_claim_with_the_cli() {
    // The README's first claim, run exactly as the README says, through the operator client.
    let c = Clearing::start();
    let addr = c.addr.to_string();
    let root = repo_root();
    let (ok, out, err) =
        clearing_cli(&["member", "upsert", "--file", root.join("examples/member.json").to_str().unwrap(), "--addr", &addr]);
    assert!(ok, "{err}");
    assert!(out.contains("\"version\": 1"), "{out}");
    let (ok, out, err) = clearing_cli(&["settle", "--file", root.join("examples/claim.json").to_str().unwrap(), "--addr", &addr]);
    assert!(ok, "{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Priced with Nanchang's sample catalogue; paid under Suizhou's policy (003 art. 8): in scope
    // 778.88, deductible 500.00, (778.88 − 500.00) × 80% = 223.10; account 300.00 of 904.50.
    for (k, v) in [
        ("medfee_sumamt", "1127.60"),
        ("inscp_scp_amt", "778.88"),
        ("act_pay_dedc", "500.00"),
        ("hifp_pay", "223.10"),
        ("acct_pay", "300.00"),
        ("psn_cash_pay", "604.50"),
        ("balc", "0.00"),
    ] {
        assert_eq!(s[k], v, "{k}");
    }
    let setl_id = s["setl_id"].as_str().unwrap();
    let (ok, out, _) = clearing_cli(&["get", setl_id, "--addr", &addr]);
    assert!(ok && out.contains("223.10"));
    let (ok, out, _) = clearing_cli(&["member", "get", "--insuplc-admdvs", "421300", "--psn-no", "421300000000000001", "--addr", &addr]);
    assert!(ok && out.contains("\"fund_paid\": \"223.10\"") && out.contains("\"acct_balc\": \"0.00\""), "{out}");
    // A bad claim is refused by the CLI with the field named.
    let bad = c.dir.path().join("bad.json");
    std::fs::write(&bad, std::fs::read_to_string(root.join("examples/claim.json")).unwrap().replace("\"hosp_lv\": 1", "\"hosp_lv\": 7"))
        .unwrap();
    let (ok, _, err) = clearing_cli(&["settle", "--file", bad.to_str().unwrap(), "--addr", &addr]);
    assert!(!ok && err.contains("InvalidArgument") && err.contains("hosp_lv"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cases_through_the_wire() {
    let c = Clearing::start();
    registered(
        &c,
        &[
            member("421300", "SZ1", "11", &["360000"]),
            member("421300", "SZ2", "12", &["360000"]),
            member("421300", "SZ3", "11", &[]),
            member("360100", "NC1", "11", &[]),
            member("360100", "NC2", "12", &[]),
            member("150500", "TL1", "11", &[]),
        ],
    )
    .await;
    let mut cl = c.clearing().await;
    let mut n = 0;
    let mut settle = |ins: &str, psn: &str, mdtrt: &str, lv: u32, date: &str, yuan: u32| {
        n += 1;
        claim(&format!("G{n}"), ins, psn, mdtrt, lv, date, yuan)
    };
    // (claim, expected hifp_pay, expected act_pay_dedc), worked out in the engine's golden tests.
    let cases = [
        (settle("421300", "SZ1", "360100", 3, "2023-03-10", 800), "180.00", "500.00"), // (800−500)×60%
        (settle("421300", "SZ2", "360100", 2, "2023-03-10", 800), "300.00", "400.00"), // (800−400)×75%
        (settle("421300", "SZ3", "360100", 1, "2023-03-10", 800), "0.00", "0.00"),     // unfiled: art. 10
        (settle("360100", "NC1", "421300", 2, "2023-04-01", 1000), "220.00", "600.00"), // 400×55%
        (settle("360100", "NC2", "421300", 3, "2023-04-01", 1000), "220.00", "600.00"), // 400×55%
        (settle("150500", "TL1", "421300", 1, "2023-04-01", 1000), "0.00", "0.00"),    // Q5: level ≥ 2
        (settle("150500", "TL1", "421300", 2, "2023-04-02", 1000), "600.00", "0.00"),  // 1000×60%
    ];
    for (claim, hifp, dedc) in cases {
        let s = cl.settle_claim(claim.clone()).await.unwrap_or_else(|e| panic!("{}: {e}", claim.msgid)).into_inner();
        assert_eq!((s.hifp_pay.as_str(), s.act_pay_dedc.as_str()), (hifp, dedc), "{}", claim.msgid);
        assert!(s.recorded && !s.setl_id.is_empty() && !s.clr_date.is_empty());
    }
    // Suizhou's cap of 1300 across visits, then a new year (003 art. 8, 9): SZ1 already has 180.00
    // fund pay and the whole deductible used in 2023.
    let s = cl.settle_claim(claim("CAP1", "421300", "SZ1", "360100", 1, "2023-05-01", 2000)).await.unwrap().into_inner();
    assert_eq!(s.hifp_pay, "1120.00"); // min(2000×80% = 1600, 1300 − 180)
    let s = cl.settle_claim(claim("CAP2", "421300", "SZ1", "360100", 1, "2023-06-01", 500)).await.unwrap().into_inner();
    assert_eq!(s.hifp_pay, "0.00");
    let s = cl.settle_claim(claim("CAP3", "421300", "SZ1", "360100", 1, "2024-01-03", 2000)).await.unwrap().into_inner();
    assert_eq!((s.act_pay_dedc.as_str(), s.hifp_pay.as_str(), s.year), ("500.00", "1200.00", 2024));
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZ1".into(), year: 2023 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.accumulators.len(), 1);
    assert_eq!(
        (m.accumulators[0].fund_paid.as_str(), m.accumulators[0].deductible_used.as_str(), m.accumulators[0].visits),
        ("1300.00", "500.00", 3)
    );
    // A pharmacy filling a level-2 prescription (003 art. 11): (800 − 400... SZ2 is retired, deductible
    // used) → 800 × 75%.
    // The prescriber is named by code and its listed level applies (a level sent must agree).
    let mut p = claim("PH1", "421300", "SZ2", "360100", 1, "2023-03-11", 800);
    p.med_type = "41".into();
    p.fixmedins_code = listed_pharmacy("360100", true);
    p.hosp_lv = 0;
    p.prescribing_fixmedins_code = listed_institution("360100", 2);
    let s = cl.settle_claim(p.clone()).await.unwrap().into_inner();
    assert_eq!((s.hifp_pay.as_str(), s.ratio_hosp_lv, s.hifp_ratio.as_str()), ("600.00", 2, "0.75"));
    // The same fill at a pharmacy not designated for outpatient pooling: no fund pay, said why.
    let mut q = p.clone();
    q.msgid = "PH2".into();
    q.fixmedins_code = listed_pharmacy("360100", false);
    let s = cl.settle_claim(q).await.unwrap().into_inner();
    assert_eq!((s.hifp_pay.as_str(), s.psn_cash_pay.as_str()), ("0.00", "800.00"));
    assert!(s.explanation.iter().any(|e| e.contains("not designated for outpatient pooling")), "{:?}", s.explanation);
    // A prescriber's level that is not the listed one, or no prescriber, is refused by name.
    let mut r = p.clone();
    r.msgid = "PH3".into();
    r.prescribing_hosp_lv = 1;
    assert_eq!(bad_fields(&cl.settle_claim(r.clone()).await.unwrap_err()), ["prescribing_hosp_lv"]);
    r.prescribing_hosp_lv = 0;
    r.prescribing_fixmedins_code.clear();
    assert_eq!(bad_fields(&cl.settle_claim(r).await.unwrap_err()), ["prescribing_fixmedins_code"]);
    // A retail pharmacy has no level: hosp_lv is ignored for a fill (the settlement shows none), and
    // the explanation cites the region's rule (003 art. 11).
    assert_eq!(s.hosp_lv, 0);
    assert!(
        s.explanation.iter().any(|e| e.contains("pharmacy fill: paid at the prescribing institution's level 2") && e.contains("art. 11")),
        "{:?}",
        s.explanation
    );
    for (msgid, lv) in [("PH2", 0), ("PH3", 3)] {
        let mut q = p.clone();
        q.msgid = msgid.into();
        q.hosp_lv = lv;
        let pre = cl.preview_claim(q).await.unwrap().into_inner();
        assert_eq!((pre.ratio_hosp_lv, pre.hifp_ratio.as_str(), pre.hosp_lv), (2, "0.75", 0), "hosp_lv {lv} sent");
    }
    // Retiree terms from the month after retirement (003 art. 12).
    let mut r = member("421300", "SZ4", "12", &["360000"]);
    r.retire_date = "2023-05-20".into();
    registered(&c, &[r]).await;
    let s = cl.settle_claim(claim("RT1", "421300", "SZ4", "360100", 1, "2023-05-25", 800)).await.unwrap().into_inner();
    assert_eq!((s.psn_type.as_str(), s.hifp_pay.as_str()), ("11", "240.00"));
    let s = cl.settle_claim(claim("RT2", "421300", "SZ4", "360100", 1, "2023-06-02", 800)).await.unwrap().into_inner();
    assert_eq!((s.psn_type.as_str(), s.hifp_pay.as_str()), ("12", "680.00")); // deductible already met at 500 > 400: 800 × 85%
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_is_idempotent_and_conflicting_resend_is_refused() {
    let c = Clearing::start();
    registered(&c, &[member("360100", "NC1", "11", &[])]).await;
    let mut cl = c.clearing().await;
    let first = cl.settle_claim(claim("M1", "360100", "NC1", "421300", 1, "2023-04-01", 1000)).await.unwrap().into_inner();
    let again = cl.settle_claim(claim("M1", "360100", "NC1", "421300", 1, "2023-04-01", 1000)).await.unwrap().into_inner();
    assert_eq!(first.encode_to_vec(), again.encode_to_vec(), "a resend returns the stored settlement, byte for byte");
    let other = cl.settle_claim(claim("M1", "360100", "NC1", "421300", 1, "2023-04-01", 999)).await.unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    assert_eq!(bad_fields(&other), vec!["msgid"]);
    // Only one settlement counted.
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "360100".into(), psn_no: "NC1".into(), year: 2023 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((m.accumulators[0].visits, m.accumulators[0].fund_paid.as_str()), (1, "240.00"));
    // Preview computes the same numbers and records nothing.
    let p = cl.preview_claim(claim("M2", "360100", "NC1", "421300", 1, "2023-04-01", 1000)).await.unwrap().into_inner();
    assert!(!p.recorded && p.setl_id.is_empty());
    assert_eq!(p.act_pay_dedc, "0.00"); // deductible already met by M1
    assert_eq!(p.hifp_pay, "600.00");
    let m2 = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "360100".into(), psn_no: "NC1".into(), year: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m2.version, m.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversal_restores_state_once() {
    let c = Clearing::start();
    let mut m = member("421300", "SZ1", "11", &["360000"]);
    m.acct_balc = "300.00".into();
    registered(&c, &[m]).await;
    let mut cl = c.clearing().await;
    let mut k = claim("R1", "421300", "SZ1", "360100", 1, "2023-03-10", 800);
    k.acct_used_flag = true;
    let s = cl.settle_claim(k).await.unwrap().into_inner();
    assert_eq!((s.hifp_pay.as_str(), s.acct_pay.as_str(), s.balc.as_str()), ("240.00", "300.00", "0.00"));
    let req = pb::ReverseClaimRequest { setl_id: s.setl_id.clone(), msgid: "R1-REV".into(), reason: "patient refund".into() };
    let r = cl.reverse_claim(req.clone()).await.unwrap().into_inner();
    assert!(r.refd_setl_flag);
    assert_eq!(r.orig_setl_id, s.setl_id);
    assert_ne!(r.setl_id, s.setl_id);
    for (got, want) in [
        (&r.medfee_sumamt, "-800.00"),
        (&r.hifp_pay, "-240.00"),
        (&r.act_pay_dedc, "-500.00"),
        (&r.acct_pay, "-300.00"),
        (&r.psn_cash_pay, "-260.00"),
        (&r.balc, "300.00"),
    ] {
        assert_eq!(got, want);
    }
    // Idempotent on msgid; a second reversal of the same settlement is refused.
    let again = cl.reverse_claim(req).await.unwrap().into_inner();
    assert_eq!(again.encode_to_vec(), r.encode_to_vec());
    let twice = cl
        .reverse_claim(pb::ReverseClaimRequest { setl_id: s.setl_id.clone(), msgid: "R1-REV2".into(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let of_rev = cl
        .reverse_claim(pb::ReverseClaimRequest { setl_id: r.setl_id.clone(), msgid: "R1-REV3".into(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(of_rev.code(), Code::FailedPrecondition);
    // Accumulators and the account are back where they were.
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZ1".into(), year: 2023 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.acct_balc, "300.00");
    assert_eq!(
        (m.accumulators[0].fund_paid.as_str(), m.accumulators[0].deductible_used.as_str(), m.accumulators[0].visits),
        ("0.00", "0.00", 0)
    );
    // The original now says who reversed it.
    let orig = cl.get_settlement(pb::GetSettlementRequest { setl_id: s.setl_id.clone() }).await.unwrap().into_inner();
    assert_eq!(orig.reversed_by_setl_id, r.setl_id);
    // The same visit settles again from scratch.
    let s2 = cl.settle_claim(claim("R2", "421300", "SZ1", "360100", 1, "2023-03-10", 800)).await.unwrap().into_inner();
    assert_eq!((s2.act_pay_dedc.as_str(), s2.hifp_pay.as_str()), ("500.00", "240.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_crash_lose_nothing_acknowledged() {
    let mut c = Clearing::start();
    registered(&c, &[member("360100", "NC1", "11", &[])]).await;
    let mut acked = Vec::new();
    {
        let mut cl = c.clearing().await;
        for i in 0..20 {
            acked.push(
                cl.settle_claim(claim(&format!("K{i}"), "360100", "NC1", "421300", 1 + i % 3, "2023-04-01", 100 + i))
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
    }
    // Graceful stop (SIGTERM) exits cleanly; then a crash (SIGKILL) after more work.
    assert!(c.stop().success());
    c.restart();
    {
        let mut cl = c.clearing().await;
        for i in 20..40 {
            acked.push(
                cl.settle_claim(claim(&format!("K{i}"), "360100", "NC1", "421300", 1 + i % 3, "2023-04-01", 100 + i))
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
    }
    c.crash();
    c.restart();
    let mut cl = c.clearing().await;
    for s in &acked {
        let mut got = cl.get_settlement(pb::GetSettlementRequest { setl_id: s.setl_id.clone() }).await.unwrap().into_inner();
        got.reversed_by_setl_id.clear();
        assert_eq!(got.encode_to_vec(), s.encode_to_vec(), "{} changed across restarts", s.setl_id);
    }
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "360100".into(), psn_no: "NC1".into(), year: 2023 })
        .await
        .unwrap()
        .into_inner();
    let fund: i64 = acked.iter().map(|s| fen(&s.hifp_pay)).sum();
    assert_eq!(m.accumulators[0].visits, 40);
    assert_eq!(fen(&m.accumulators[0].fund_paid), fund);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_and_nothing_written() {
    let c = Clearing::start();
    let mut payer = member("421300", "SZP", "11", &["360000"]);
    payer.acct_balc = "500.00".into();
    registered(&c, &[member("421300", "SZ1", "11", &["360000"]), payer]).await;
    let mut cl = c.clearing().await;
    let good = || claim("B1", "421300", "SZ1", "360100", 1, "2023-03-10", 800);
    let mut cases: Vec<(&str, pb::Claim, Code, &str)> = Vec::new();
    let mut k = good();
    k.insuplc_admdvs = "990000".into();
    cases.push(("malformed region", k, Code::InvalidArgument, "insuplc_admdvs"));
    let mut k = good();
    k.mdtrt_admdvs = "440300".into();
    cases.push(("unknown region", k, Code::InvalidArgument, "mdtrt_admdvs"));
    let mut k = good();
    k.lines[0].hilist_code = "ABC".into();
    cases.push(("malformed code", k, Code::InvalidArgument, "lines[0].hilist_code"));
    let mut k = good();
    k.setl_time = "2023-13-40".into();
    cases.push(("malformed date", k, Code::InvalidArgument, "setl_time"));
    let mut k = good();
    k.lines[0].det_item_fee_sumamt = "799.99".into();
    cases.push(("amount ≠ cnt × pric", k, Code::InvalidArgument, "lines[0].det_item_fee_sumamt"));
    let mut k = good();
    k.lines[0].pric = "-800.00".into();
    k.lines[0].det_item_fee_sumamt = "-800.00".into();
    cases.push(("negative amount", k, Code::InvalidArgument, "lines[0].det_item_fee_sumamt"));
    let mut k = good();
    k.lines[0].cnt = "1".into();
    k.lines[0].pric = "99999999999.00".into();
    k.lines[0].det_item_fee_sumamt = "99999999999.00".into();
    cases.push(("absurd amount", k, Code::InvalidArgument, "lines[0].det_item_fee_sumamt"));
    let mut k = good();
    // Decimal::MAX: once overflowed the fen conversion (found by clearing/service/tests/fuzz.rs).
    k.lines[0].det_item_fee_sumamt = "79228162514264337593543950335".into();
    cases.push(("amount beyond any decimal", k, Code::InvalidArgument, "lines[0].det_item_fee_sumamt"));
    let mut k = good();
    k.lines[0].cnt = "1.0000000000000000000000000001".into();
    cases.push(("quantity with 28 decimals", k, Code::InvalidArgument, "lines[0].cnt"));
    let mut k = good();
    k.lines[0].hilist_code = "X".repeat(10_000);
    cases.push(("code of 10,000 characters", k, Code::InvalidArgument, "lines[0].hilist_code"));
    let mut k = good();
    k.lines = (0..101).map(|_| k.lines[0].clone()).collect();
    cases.push(("too many lines", k, Code::InvalidArgument, "lines"));
    let mut k = good();
    k.setl_time = "2022-06-01T10:00:00+08:00".into();
    cases.push(("date outside any policy version", k, Code::InvalidArgument, "setl_time"));
    let mut k = good();
    k.setl_time = "2099-06-01T10:00:00+08:00".into();
    cases.push(("date in the future", k, Code::InvalidArgument, "setl_time"));
    let mut k = good();
    k.psn_no = "NOBODY".into();
    cases.push(("unknown member", k, Code::NotFound, "psn_no"));
    let mut k = good();
    k.acct_payer_psn_no = "SZP".into();
    k.acct_used_flag = true;
    cases.push(("family payer without the link", k, Code::PermissionDenied, "acct_payer_psn_no"));
    let mut k = good();
    k.fixmedins_code = "H42130200746".into();
    cases.push(("institution outside the service location", k, Code::InvalidArgument, "fixmedins_code"));
    let mut k = good();
    k.hosp_lv = if k.hosp_lv == 1 { 2 } else { 1 };
    cases.push(("a level that is not the listed one", k, Code::InvalidArgument, "hosp_lv"));
    let mut k = good();
    k.fixmedins_code = format!("H{}99999", k.mdtrt_admdvs);
    cases.push(("an institution on no list", k, Code::InvalidArgument, "fixmedins_code"));
    let mut k = good();
    k.med_type = "14".into();
    cases.push(("chronic claim without disease", k, Code::InvalidArgument, "dise_code"));
    let mut k = good();
    k.med_type = "14".into();
    k.dise_code = "M03900".into();
    cases.push(("disease not on the insured region's list", k, Code::InvalidArgument, "dise_code"));
    let mut k = good();
    k.msgid = "has space".into();
    cases.push(("malformed msgid", k, Code::InvalidArgument, "msgid"));
    for (what, k, code, field) in cases {
        let e = cl.settle_claim(k).await.expect_err(what);
        assert_eq!(e.code(), code, "{what}: {e:?}");
        assert!(bad_fields(&e).iter().any(|f| f == field), "{what}: fields {:?}, message {}", bad_fields(&e), e.message());
    }
    // Nothing was written: no accumulators, balances untouched, versions unchanged.
    let mut reg = c.registry().await;
    for psn in ["SZ1", "SZP"] {
        let m = reg
            .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: psn.into(), year: 0 })
            .await
            .unwrap()
            .into_inner();
        assert!(m.accumulators.is_empty(), "{psn}");
        assert_eq!(m.version, 1, "{psn}");
    }
    // With the link, the family account pays (家庭共济) and acct_mulaid_pay says so.
    let mut p = member("421300", "SZP", "11", &["360000"]);
    p.mulaid_beneficiaries = vec![pb::MulaidBeneficiary { psn_no: "SZ1".into(), relation: "parent".into() }];
    reg.upsert_member(p).await.unwrap();
    let mut k = good();
    k.acct_payer_psn_no = "SZP".into();
    k.acct_used_flag = true;
    let s = cl.settle_claim(k).await.unwrap().into_inner();
    assert_eq!((s.acct_pay.as_str(), s.acct_mulaid_pay.as_str(), s.balc.as_str()), ("500.00", "500.00", "0.00"));
    // Bad members and bad lookups too.
    let mut m = member("421300", "SZ9", "13", &["36"]);
    m.mulaid_beneficiaries = vec![pb::MulaidBeneficiary { psn_no: "X".into(), relation: "cousin".into() }];
    let e = reg.upsert_member(m).await.unwrap_err();
    let f = bad_fields(&e);
    for want in ["psn_type", "filings[0].mdtrt_admdvs", "mulaid_beneficiaries[0].relation"] {
        assert!(f.iter().any(|x| x == want), "{want} in {f:?}");
    }
    assert_eq!(cl.get_settlement(pb::GetSettlementRequest { setl_id: "nope".into() }).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(cl.get_settlement(pb::GetSettlementRequest { setl_id: "00".repeat(12) }).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_catalogue() {
    let c = Clearing::start();
    let mut h = tonic_health::pb::health_client::HealthClient::new(c.channel().await);
    let st = h.check(tonic_health::pb::HealthCheckRequest { service: "clearinghouse.v1.Clearing".into() }).await.unwrap().into_inner();
    assert_eq!(st.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
    // Server reflection lists the services (what `grpcurl -plaintext localhost:50051 list` asks).
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let mut r = ServerReflectionClient::new(c.channel().await);
    let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut stream = r.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("no service list") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["clearinghouse.v1.Clearing", "clearinghouse.v1.Registry", "clearinghouse.v1.Catalogue", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let mut cat = c.catalogue().await;
    let regions = cat.list_regions(pb::ListRegionsRequest {}).await.unwrap().into_inner().regions;
    assert_eq!(regions.iter().map(|r| r.admdvs.as_str()).collect::<Vec<_>>(), vec!["140100", "150500", "320100", "360100", "421300"]);
    assert!(regions.iter().all(|r| r.route == "local" && r.catalogue_sample && r.catalogue_items >= 40));
    let p = cat.get_policy(pb::GetPolicyRequest { admdvs: "421300".into(), date: "2023-06-01".into() }).await.unwrap().into_inner();
    let ded = p.parameters.iter().find(|x| x.key == "retired.deductible").unwrap();
    assert_eq!((ded.value.as_str(), ded.source.as_str(), ded.assumption.as_str()), ("400.00", "003_a9d74b92acd07a75.txt art. 8", ""));
    assert!(p.parameters.iter().all(|x| x.source.is_empty() != x.assumption.is_empty()), "each parameter has exactly one provenance");
    let t = cat.get_policy(pb::GetPolicyRequest { admdvs: "150500".into(), date: "2023-06-01".into() }).await.unwrap().into_inner();
    // Issue 31: Tongliao's deductible is not in its seed: a placeholder, and said to be the most generous value.
    let tl = t.parameters.iter().find(|x| x.key == "in_service.deductible").unwrap();
    assert!(tl.placeholder && tl.assumption.starts_with("placeholder") && tl.assumption.contains("most generous"), "{tl:?}");
    let pension = t.parameters.iter().find(|x| x.key.ends_with(".average_pension_monthly")).unwrap();
    assert!(pension.placeholder && pension.value == "3000.00", "{pension:?}");
    assert!(!p.parameters.iter().any(|x| x.placeholder && x.key.contains("deductible")), "Suizhou's deductibles are sourced");
    // `clearing serve` says at start which placeholders are in force.
    let log = c.log();
    assert!(
        log.lines().any(|l| l.contains("placeholder in force") && l.contains("150500") && l.contains("in_service.deductible")),
        "{log}"
    );
    assert_eq!(
        cat.get_policy(pb::GetPolicyRequest { admdvs: "421300".into(), date: "2021-01-01".into() }).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // Paging through a catalogue returns every item once.
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = cat
            .list_catalogue_items(pb::ListCatalogueItemsRequest {
                admdvs: "360100".into(),
                date: "2024-06-01".into(),
                page_size: 7,
                page_token: token.clone(),
                page_num: 0,
                hilist_code: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.items.len() <= 7 && page.sample);
        seen.extend(page.items.into_iter().map(|i| i.hilist_code));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
    assert!(seen.len() >= 40);
    let e = cat
        .list_catalogue_items(pb::ListCatalogueItemsRequest {
            admdvs: "360100".into(),
            date: "2024-06-01".into(),
            page_size: 10_000,
            page_token: String::new(),
            page_num: 0,
            hilist_code: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&e), vec!["page_size"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_claims_settles_each_as_the_unary_call_would() {
    let c = Clearing::start();
    // Ten members per side, four claims each: claims of one member race in the stream as they would
    // from concurrent unary calls.
    let members: Vec<pb::Member> = (0..10)
        .flat_map(|k| [member("421300", &format!("STA{k}"), "11", &["360000"]), member("360100", &format!("STB{k}"), "11", &[])])
        .collect();
    registered(&c, &members).await;
    let mut claims: Vec<pb::Claim> = (0..40)
        .map(|i| {
            let k = i / 4;
            if i % 2 == 0 {
                claim(&format!("S{i}"), "421300", &format!("STA{k}"), "360100", 2, "2024-03-01", 100)
            } else {
                claim(&format!("S{i}"), "360100", &format!("STB{k}"), "421300", 2, "2024-03-01", 100)
            }
        })
        .collect();
    let mut bad = claim("SBAD", "360100", "STB0", "421300", 2, "2024-03-01", 100);
    bad.lines[0].hilist_code = "NOPE".into();
    claims.push(bad);
    claims.push(claim("S0", "421300", "STA0", "360100", 2, "2024-03-01", 100)); // a resend, same content
    let mut answers = c.clearing().await.settle_claim_stream(tokio_stream::iter(claims.clone())).await.unwrap().into_inner();
    let mut got = std::collections::BTreeMap::new();
    let mut resend = None;
    while let Some(a) = answers.message().await.unwrap() {
        if a.msgid == "S0" && got.contains_key("S0") {
            resend = Some(a);
        } else {
            got.insert(a.msgid.clone(), a);
        }
    }
    assert_eq!(got.len(), 41, "one answer per msgid");
    let bad = &got["SBAD"];
    assert_eq!((bad.code, bad.settlement.is_none()), (tonic::Code::InvalidArgument as i32, true), "{bad:?}");
    assert!(bad.message.contains("hilist_code"), "{}", bad.message);
    // Every answer is what GetSettlement returns, and the resend got the same settlement.
    let mut cl = c.clearing().await;
    for i in 0..40 {
        let answer = &got[&format!("S{i}")];
        let a = answer.settlement.clone().unwrap_or_else(|| panic!("{answer:?}"));
        let stored = cl.get_settlement(pb::GetSettlementRequest { setl_id: a.setl_id.clone() }).await.unwrap().into_inner();
        assert_eq!(stored, a);
    }
    let resend = resend.expect("two answers for S0");
    assert_eq!(resend.settlement.expect("the stored settlement").setl_id, got["S0"].settlement.as_ref().unwrap().setl_id);
    // Year-to-date state counts each claim once: two visits per member.
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "STA0".into(), year: 2024 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.accumulators[0].visits, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_never_pays_public_health_fitness_or_wellness() {
    // Suizhou art. 16: 个人账户不得用于公共卫生费用、体育健身或养生保健消费. A Suizhou member (account
    // 300.00) treated in Nanchang: 100.00 in scope (all within the deductible, fund 0) and a
    // 50.00 wellness item the catalogue marks (丙类, all self-paid). The patient's part is 150.00; the
    // account may pay 150.00 − 50.00 = 100.00, cash 50.00.
    let c = Clearing::start();
    let mut m = member("421300", "SZWELL1", "11", &["360000"]);
    m.acct_balc = "300.00".into();
    registered(&c, &[m]).await;
    let mut k = claim("WELL1", "421300", "SZWELL1", "360100", 1, "2024-03-10", 100);
    k.acct_used_flag = true;
    k.lines.push(pb::ClaimLine {
        hilist_code: "004600000010000".into(),
        cnt: "1".into(),
        pric: "50.00".into(),
        det_item_fee_sumamt: "50.00".into(),
    });
    let s = c.clearing().await.settle_claim(k).await.unwrap().into_inner();
    assert_eq!((s.medfee_sumamt.as_str(), s.hifp_pay.as_str(), s.psn_part_amt.as_str()), ("150.00", "0.00", "150.00"));
    assert_eq!((s.acct_pay.as_str(), s.psn_cash_pay.as_str(), s.balc.as_str()), ("100.00", "50.00", "200.00"));
    assert_eq!(s.lines.iter().map(|l| l.acct_excluded).collect::<Vec<_>>(), vec![false, true]);
    assert!(
        s.explanation.iter().any(|e| e.contains("the account pays nothing for lines[1]") && e.contains("art. 16")),
        "{:?}",
        s.explanation
    );
    // The catalogue says so too.
    let items = c
        .catalogue()
        .await
        .list_catalogue_items(pb::ListCatalogueItemsRequest {
            admdvs: "360100".into(),
            date: "2024-03-10".into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(items.iter().find(|i| i.hilist_code == "004600000010000").unwrap().account_excluded, "wellness");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_while_contributions_are_unpaid_gets_no_fund_pay() {
    // Suizhou art. 27(三): 未按参保缴费相关规定按时缴费发生的门诊费用，基金不予支付. The account and cash
    // still pay. A member with contributions unpaid 2024-03-01..2024-03-31, account 300.00: a 1000.00
    // visit on 03-10 gets no fund pay, the account pays 300.00 and cash 700.00; the same visit on 04-10
    // is paid as usual (deductible then ratio).
    let c = Clearing::start();
    let mut m = member("421300", "SZARR1", "11", &["360000"]);
    m.acct_balc = "300.00".into();
    m.arrears = vec![pb::Period { begndate: "2024-03-01".into(), enddate: "2024-03-31".into() }];
    registered(&c, &[m]).await;
    let mut cl = c.clearing().await;
    let mut k = claim("ARR1", "421300", "SZARR1", "360100", 1, "2024-03-10", 1000);
    k.acct_used_flag = true;
    let s = cl.settle_claim(k).await.unwrap().into_inner();
    assert_eq!((s.hifp_pay.as_str(), s.acct_pay.as_str(), s.psn_cash_pay.as_str()), ("0.00", "300.00", "700.00"));
    assert!(
        s.explanation.iter().any(|e| e.contains("contributions were not paid on time") && e.contains("art. 27(三)")),
        "{:?}",
        s.explanation
    );
    let later = cl.preview_claim(claim("ARR2", "421300", "SZARR1", "360100", 1, "2024-04-10", 1000)).await.unwrap().into_inner();
    assert!(fen(&later.hifp_pay) > 0, "{later:?}");
    let got = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZARR1".into(), year: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.arrears, vec![pb::Period { begndate: "2024-03-01".into(), enddate: "2024-03-31".into() }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filing_records_which_group_of_art_10_the_member_files_as() {
    // Suizhou art. 10: 异地安置退休人员、异地长期居住人员、常驻异地工作人员 may file (备案).
    let c = Clearing::start();
    let mut m = member("421300", "SZGRP1", "11", &["360000"]);
    m.filings[0].group = "posted_worker".into();
    registered(&c, &[m.clone()]).await;
    let got = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZGRP1".into(), year: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.filings[0].group, "posted_worker");
    let s = c.clearing().await.settle_claim(claim("GRP1", "421300", "SZGRP1", "360100", 1, "2024-03-10", 100)).await.unwrap().into_inner();
    assert!(
        s.explanation.iter().any(|e| e.contains("filing for 360000 (常驻异地工作人员) covers the service location")),
        "{:?}",
        s.explanation
    );
    m.filings[0].group = "tourist".into();
    let e = c.registry().await.upsert_member(m).await.unwrap_err();
    assert_eq!(bad_fields(&e), vec!["filings[0].group".to_string()]);
}
