//! Monthly personal-account credits (issue 18 item 1), run as an operator runs them: `clearing credit
//! --region R --month YYYYMM` against the real service. The amounts are worked out from the seeds in
//! the comments; credits are at most once per member-month, also under concurrent runs, on both stores.

use proto::v1 as pb;
use proto::v1::netting_client::NettingClient;
use tests::*;
use tonic::Code;

fn with_facts(mut m: pb::Member, base: &str, pension: &str, combined: u32, insured: u32) -> pb::Member {
    m.contribution_base = base.into();
    m.own_pension = pension.into();
    m.combined_years = combined;
    m.insured_years = insured;
    m.acct_balc = "0.00".into();
    m
}

fn reached(mut m: pb::Member, years: bool) -> pb::Member {
    m.reached_required_years = Some(years);
    m
}

fn retired(mut m: pb::Member) -> pb::Member {
    m.psn_type = "12".into();
    m.retire_date = "2015-06-01".into();
    m
}

fn credit(c: &Clearing, region: &str, month: &str) -> String {
    let (ok, out, err) = clearing_cli(&["credit", "--region", region, "--month", month, "--addr", &c.addr.to_string()]);
    assert!(ok, "clearing credit {region} {month}: {err}");
    assert!(err.contains(&format!("credit {region} {month}:")), "a progress line: {err}");
    out
}

async fn credited(c: &Clearing, insured: &str, psn: &str) -> (String, Vec<(String, String)>) {
    let m = c
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: insured.into(), psn_no: psn.into(), year: 0 })
        .await
        .unwrap()
        .into_inner();
    (m.acct_balc, m.credits.into_iter().map(|c| (c.month, c.amount)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_regions_rule_credits_what_its_seed_says() {
    let c = Clearing::start();
    registered(
        &c,
        &[
            // 003 art. 14(一): in service, 2% of the monthly contribution base: 6,000.00 × 2% = 120.00.
            with_facts(member("421300", "CRSZ1", "11", &[]), "6000.00", "", 0, 0),
            // 003 art. 14(二): retired, a fixed 70.00 a month.
            retired(with_facts(member("421300", "CRSZ2", "12", &[]), "", "", 0, 0)),
            // 003 art. 14(三): retired after 10 of 25 years under 统账结合, the required years reached
            // (退休后达到缴费年限的): 70.00 × 10/25 = 28.00.
            reached(retired(with_facts(member("421300", "CRSZ3", "12", &[]), "", "", 10, 25)), true),
            // The same without reaching them: the article credits no one else, so nothing.
            reached(retired(with_facts(member("421300", "CRSZ8", "12", &[]), "", "", 10, 25)), false),
            // 003 art. 14(四): pooling only (单建统筹): no personal account, nothing.
            {
                let mut m = with_facts(member("421300", "CRSZ4", "11", &[]), "6000.00", "", 0, 0);
                m.pooling_only = true;
                m
            },
            // In service with no contribution base on record: nothing, and said why.
            with_facts(member("421300", "CRSZ5", "11", &[]), "", "", 0, 0),
            // 002 §4(三)1: Nanchang retired, 2.5% of the average pension; 002 §五(一) projects 942 yuan a year
            // per retiree, so the pension is 942 / 12 / 2.5% = 3,140.00 and the credit 78.50.
            retired(with_facts(member("360100", "CRNC1", "12", &[]), "", "", 0, 0)),
            // 004 Q6: Tongliao retired, 2% of the (assumed) average pension 3,000.00 = 60.00.
            retired(with_facts(member("150500", "CRTL1", "12", &[]), "", "", 0, 0)),
            // 001 §二(三): Taiyuan retired, 2% of the (assumed) average pension 3,300.00 = 66.00.
            retired(with_facts(member("140100", "CRTY1", "12", &[]), "", "", 0, 0)),
            // Jiangsu (000 §三 Q5): 2023 keeps the member's own 2022 monthly credit, a registry fact
            // (120.00 here); from 2024 2.5% of the (placeholder) average pension 3,600.00 = 90.00.
            {
                let mut m = retired(with_facts(member("320100", "CRNJ1", "12", &[]), "", "3000.00", 0, 0));
                m.monthly_credit_2022 = "120.00".into();
                m
            },
        ],
    )
    .await;

    let out = credit(&c, "421300", "202403");
    assert!(out.contains("members: 6") && out.contains("credited: 3, total 218.00"), "{out}");
    assert!(out.contains("skipped 1: retired, alternated 统账结合 and 单建统筹 without reaching the required contribution years"), "{out}");
    assert!(out.contains("skipped 1: pooling-only (单建统筹): no personal account (art. 14(四) [003_a9d74b92acd07a75.txt])"), "{out}");
    assert!(out.contains("skipped 1: in service without a contribution base on record"), "{out}");
    assert!(out.contains("rule: in service: 0.02 × the contribution base (art. 14(一) [003_a9d74b92acd07a75.txt])"), "{out}");
    assert!(out.contains("pro rata to the years under 统账结合 (art. 14(三) [003_a9d74b92acd07a75.txt])"), "{out}");
    for (psn, amount) in [("CRSZ1", "120.00"), ("CRSZ2", "70.00"), ("CRSZ3", "28.00")] {
        assert_eq!(credited(&c, "421300", psn).await, (amount.to_string(), vec![("202403".to_string(), amount.to_string())]), "{psn}");
    }
    assert_eq!(credited(&c, "421300", "CRSZ4").await, ("0.00".to_string(), vec![]));
    for (region, psn, amount) in [("360100", "CRNC1", "78.50"), ("150500", "CRTL1", "60.00"), ("140100", "CRTY1", "66.00")] {
        credit(&c, region, "202403");
        assert_eq!(credited(&c, region, psn).await.0, amount, "{region}");
    }
    // Jiangsu's transition, month by month (Nanjing's pack is in force from 2023).
    for month in ["202301", "202401"] {
        credit(&c, "320100", month);
    }
    let (balance, months) = credited(&c, "320100", "CRNJ1").await;
    assert_eq!(months, [("202301", "120.00"), ("202401", "90.00")].map(|(m, a)| (m.to_string(), a.to_string())));
    assert_eq!(balance, "210.00");

    // A second run of a month changes nothing.
    let again = credit(&c, "421300", "202403");
    assert!(again.contains("credited: 0, total 0.00") && again.contains("credited before (left as they were): 3"), "{again}");
    assert_eq!(credited(&c, "421300", "CRSZ1").await.0, "120.00");

    // Only the national role and the region's insured platform run credits; a month ahead is refused.
    let mut r = c.registry().await;
    let mut req =
        tonic::Request::new(pb::CreditAccountsRequest { insuplc_admdvs: "360100".into(), month: "202404".into(), ..Default::default() });
    req.metadata_mut().insert("x-clearing-forwarded", "platform:420000:hubei_platform".parse().unwrap());
    assert_eq!(r.credit_accounts(req).await.unwrap_err().code(), Code::PermissionDenied);
    let e = r
        .credit_accounts(pb::CreditAccountsRequest { insuplc_admdvs: "421300".into(), month: "209901".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&e), vec!["month".to_string()]);
}

/// Two runs of one month at once (and a third after them) credit every member exactly once.
async fn concurrent_runs_credit_once(a: &Clearing, b: &Clearing, tag: &str) {
    let n = 1_200;
    let members: Vec<pb::Member> = (0..n)
        .map(|i| {
            let m = member("421300", &format!("{tag}{i:05}"), "11", &[]);
            if i % 3 == 0 { retired(with_facts(m, "", "", 0, 0)) } else { with_facts(m, &format!("{}.00", 3000 + (i % 7) * 500), "", 0, 0) }
        })
        .collect();
    registered(a, &members).await;
    let (addr_a, addr_b) = (a.addr.to_string(), b.addr.to_string());
    let runs = [addr_a.clone(), addr_b]
        .map(|addr| std::thread::spawn(move || clearing_cli(&["credit", "--region", "421300", "--month", "202405", "--addr", &addr])));
    for r in runs {
        let (ok, _, err) = r.join().unwrap();
        assert!(ok, "{err}");
    }
    let (ok, out, _) = clearing_cli(&["credit", "--region", "421300", "--month", "202405", "--addr", &addr_a]);
    assert!(ok && out.contains("credited: 0,"), "{out}");
    let mut reg = a.registry().await;
    for (i, m) in members.iter().enumerate() {
        let got = reg
            .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: m.psn_no.clone(), year: 0 })
            .await
            .unwrap()
            .into_inner();
        // In service: 2% of the base; retired: 70.00 (003 art. 14).
        let want = if i % 3 == 0 { 7_000 } else { (3000 + (i as i64 % 7) * 500) * 2 };
        assert_eq!(fen(&got.acct_balc), want, "{}: credited twice or not at all", m.psn_no);
        assert_eq!(got.credits.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_on_the_embedded_store_credit_each_member_month_once() {
    let c = Clearing::start();
    concurrent_runs_credit_once(&c, &c, "CCE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_on_two_redis_replicas_credit_each_member_month_once() {
    let r = Redis::start();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let b = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    concurrent_runs_credit_once(&a, &b, "CCR").await;
}

/// A member skipped for a missing fact stays creditable (issue 27): a Suizhou retiree whose years under
/// 统账结合 are not on record (0 of 25) is skipped with that reason, not credited a pro-rated 0 that would
/// close the month for good; once the insured platform records 10 years, the same month credits
/// 70.00 × 10/25 = 28.00 (003 art. 14(二), 14(三)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_skipped_for_a_missing_fact_is_credited_once_it_arrives() {
    let c = Clearing::start();
    // Suizhou art. 14(三) needs whether the retiree reached the required years; Jiangsu 2023 (000 §三 Q5)
    // needs the member's own 2022 credit. Neither on record: both skipped, named.
    let sz = |fact: Option<bool>| {
        let mut m = retired(with_facts(member("421300", "CRSZ6", "12", &[]), "", "", 10, 25));
        m.reached_required_years = fact;
        m
    };
    let nj = |credit_2022: &str| {
        let mut m = retired(with_facts(member("320100", "CRNJ2", "12", &[]), "", "4000.00", 0, 0));
        m.monthly_credit_2022 = credit_2022.into();
        m
    };
    registered(&c, &[sz(None), nj("")]).await;
    let out = credit(&c, "421300", "202403");
    assert!(out.contains("credited: 0, total 0.00"), "{out}");
    assert!(out.contains("skipped 1: retired, alternated 统账结合 and 单建统筹: whether the required contribution years were reached is not on record (registry fact reached_required_years) (art. 14(三)"), "{out}");
    let out = credit(&c, "320100", "202306");
    assert!(out.contains("credited: 0, total 0.00"), "{out}");
    assert!(out.contains("not on record (registry fact monthly_credit_2022)") && out.contains("§三 Q5"), "{out}");
    assert_eq!(credited(&c, "421300", "CRSZ6").await, ("0.00".to_string(), vec![]));
    // The facts arrive (validated: an amount in yuan); the next runs credit the same months.
    let e = c.registry().await.upsert_member(nj("12.345")).await.unwrap_err();
    assert_eq!(bad_fields(&e), vec!["monthly_credit_2022".to_string()]);
    registered(&c, &[sz(Some(true)), nj("137.45")]).await;
    let out = credit(&c, "421300", "202403");
    assert!(out.contains("credited: 1, total 28.00"), "{out}");
    assert_eq!(credited(&c, "421300", "CRSZ6").await, ("28.00".to_string(), vec![("202403".to_string(), "28.00".to_string())]));
    let out = credit(&c, "320100", "202306");
    assert!(out.contains("credited: 1, total 137.45"), "{out}");
}

/// Issue 31: the in-service credit is the member's own contribution (003 art. 14(一): 由个人缴纳的基本医疗
/// 保险费计入), so a month in arrears gets none, said with the article; the months around it are credited
/// as usual: 6,000.00 × 2% = 120.00 for February and April, nothing for March.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_in_service_credit_for_a_month_in_arrears() {
    let c = Clearing::start();
    let mut m = with_facts(member("421300", "CRSZ7", "11", &[]), "6000.00", "", 0, 0);
    m.arrears = vec![pb::Period { begndate: "2024-03-10".into(), enddate: "2024-03-20".into() }];
    registered(&c, &[m]).await;
    for month in ["202402", "202404"] {
        let out = credit(&c, "421300", month);
        assert!(out.contains("credited: 1, total 120.00"), "{month}: {out}");
    }
    let out = credit(&c, "421300", "202403");
    assert!(out.contains("credited: 0, total 0.00"), "{out}");
    assert!(out.contains("in arrears this month: no contribution paid, no credit (art. 14(一) [003_a9d74b92acd07a75.txt])"), "{out}");
    let (balance, months) = credited(&c, "421300", "CRSZ7").await;
    assert_eq!((balance.as_str(), months.len()), ("240.00", 2));
}

/// Issue 31: Suizhou 003 art. 17 — on death the balance is paid once to the heirs (on emigration to the
/// member). `clearing member close` pays 321.45 out as a recorded settlement of the pair 421300 → 421300
/// (acct_pay 321.45, fund 0), so the window, reconciliation and netting see it and no fund pays another;
/// then every claim, credit, change and reversal of the member is refused, and a resend answers the same
/// record.
async fn closing_an_account_pays_the_balance_out_once(c: &Clearing) {
    let today = clearing_service::calendar::today().to_string();
    let mut m = with_facts(member("421300", "CLOSE1", "11", &["360000"]), "6000.00", "", 0, 0);
    m.acct_balc = "321.45".into();
    registered(c, &[m.clone()]).await;
    // A claim settled before closure (account not used) stays as it was.
    let before =
        c.clearing().await.settle_claim(claim("CL-BEFORE", "421300", "CLOSE1", "360100", 1, &today, 100)).await.unwrap().into_inner();

    // Only the insured side (or the national role) closes an account: a service location may not.
    let mut req = tonic::Request::new(pb::CloseAccountRequest {
        insuplc_admdvs: "421300".into(),
        psn_no: "CLOSE1".into(),
        reason: "death".into(),
        msgid: "CLOSE-X".into(),
    });
    req.metadata_mut().insert("x-clearing-forwarded", "platform:360000:jiangxi_platform".parse().unwrap());
    assert_eq!(c.registry().await.close_account(req).await.unwrap_err().code(), Code::PermissionDenied);
    let addr = c.addr.to_string();
    let close = |msgid: &str, reason: &str| {
        clearing_cli(&[
            "member",
            "close",
            "--insuplc-admdvs",
            "421300",
            "--psn-no",
            "CLOSE1",
            "--reason",
            reason,
            "--msgid",
            msgid,
            "--addr",
            &addr,
        ])
    };
    let (ok, out, err) = close("CLOSE-1", "death");
    assert!(ok, "{err}");
    let s: pb::Settlement = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s.acct_pay.as_str(), s.balc.as_str(), s.fund_pay_sumamt.as_str(), s.medfee_sumamt.as_str()),
        ("321.45", "0.00", "0.00", "321.45")
    );
    assert_eq!((s.account_closure.as_str(), s.mdtrt_admdvs.as_str(), s.clr_date.as_str()), ("death", "421300", today.as_str()));
    assert!(s.explanation[0].contains("heirs") && s.explanation[0].contains("art. 17"), "{:?}", s.explanation);
    // A resend answers the same record; a new request for a closed account is refused, naming why.
    let (ok, again, _) = close("CLOSE-1", "death");
    assert!(ok);
    assert_eq!(serde_json::from_str::<pb::Settlement>(&again).unwrap().setl_id, s.setl_id);
    let (ok, _, err) = close("CLOSE-2", "emigration");
    assert!(!ok && err.contains("closed on") && err.contains("death"), "{err}");
    let (ok, _, err) = close("CLOSE-3", "moved");
    assert!(!ok && err.contains("reason"), "{err}");

    let (balance, _) = credited(c, "421300", "CLOSE1").await;
    assert_eq!(balance, "0.00");
    // Afterwards: no claim, no change, no credit, no reversal of an earlier claim.
    let e = c.clearing().await.settle_claim(claim("CL-AFTER", "421300", "CLOSE1", "360100", 1, &today, 100)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("closed"), "{e:?}");
    let e = c.registry().await.upsert_member(m).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = c
        .clearing()
        .await
        .reverse_claim(pb::ReverseClaimRequest { setl_id: before.setl_id.clone(), msgid: "CL-REV".into(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let out = credit(c, "421300", "202403");
    assert!(out.contains("credited: 0,") && out.contains("skipped 1: account closed"), "{out}");
    assert_eq!(credited(c, "421300", "CLOSE1").await.0, "0.00");

    // The window sees both records; reconciliation of the insured region's own pair matches the payout;
    // netting moves nothing for it (a fund does not pay itself).
    let mut n = NettingClient::new(c.channel().await);
    let r = n
        .reconcile_totals(pb::ReconcileTotalsRequest {
            clr_date: today.clone(),
            mdtrt_admdvs: "421300".into(),
            count: 1,
            medfee_sumamt: "321.45".into(),
            fund_pay_sumamt: "0.00".into(),
            acct_pay: "321.45".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.matched, "{r:?}");
    n.close_window(pb::CloseWindowRequest { clr_date: today.clone() }).await.unwrap();
    let report = n.get_netting_report(pb::GetNettingReportRequest { clr_date: today }).await.unwrap().into_inner();
    assert_eq!((report.settlement_count, report.complete), (2, true));
    assert_eq!(fen(&report.acct_total), 32_145);
    assert!(report.instructions.iter().all(|i| fen(&i.amount) == fen(&before.fund_pay_sumamt)), "{:?}", report.instructions);
    assert!(report.obligations.iter().all(|o| o.from_admdvs != o.to_admdvs), "{:?}", report.obligations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_account_on_the_embedded_store() {
    closing_an_account_pays_the_balance_out_once(&Clearing::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_account_on_redis() {
    let r = Redis::start();
    closing_an_account_pays_the_balance_out_once(&Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()])).await;
}
