//! Region adapters as separate processes: `clearing` routes pricing to the service location's adapter
//! and policy to the insured region's adapter over gRPC. Hubei's adapter serves Suizhou (421300),
//! Jiangxi's serves Nanchang (360100); everything else stays in process. Real binaries, real TCP.

use proto::v1 as pb;
use std::time::Duration;
use tests::*;
use tonic::Code;

fn members() -> Vec<pb::Member> {
    let mut v = vec![
        member("421300", "SZ1", "11", &["360000"]),
        member("421300", "SZ2", "12", &["360000"]),
        member("421300", "SZ3", "11", &[]),
        member("360100", "NC1", "11", &[]),
        member("360100", "NC2", "12", &[]),
        member("150500", "TL1", "11", &[]),
    ];
    let mut retiring = member("421300", "SZ4", "12", &["360000"]);
    retiring.retire_date = "2023-05-20".into();
    v.push(retiring);
    let mut with_account = member("360100", "NC3", "11", &[]);
    with_account.acct_balc = "300.00".into();
    v.push(with_account);
    let mut payer = member("421300", "SZP", "11", &["360000"]);
    payer.acct_balc = "500.00".into();
    payer.mulaid_beneficiaries = vec![pb::MulaidBeneficiary { psn_no: "SZ1".into(), relation: "spouse".into() }];
    v.push(payer);
    v
}

/// Five lines from a catalogue page, priced around each item's cap so that every pricing branch
/// (in scope, 乙类 self-pay first, over the cap, 丙类, not in the catalogue) shows up.
fn catalogue_claim(msgid: &str, insured: &str, psn: &str, mdtrt: &str, date: &str, items: &[pb::CatalogueItem], k: usize) -> pb::Claim {
    let mut c = claim(msgid, insured, psn, mdtrt, 2, date, 1);
    c.lines.clear();
    for j in 0..5 {
        let it = &items[(k * 5 + j) % items.len()];
        // At the cap, or 0.25 above it (over-cap self-pay); 37.50 when the item has no cap.
        let unit = match it.pric_uplmt_amt.as_str() {
            "" => 3750,
            cap => fen(cap) + if j % 2 == 1 { 25 } else { 0 },
        };
        let qty = (j + 1) as i64;
        let amount = unit * qty;
        let yuan = |f: i64| format!("{}.{:02}", f / 100, f % 100);
        let price = yuan(unit);
        c.lines.push(pb::ClaimLine {
            hilist_code: it.hilist_code.clone(),
            cnt: qty.to_string(),
            pric: price,
            det_item_fee_sumamt: yuan(amount),
        });
    }
    if k.is_multiple_of(3) {
        // A code no catalogue has: full self-pay.
        c.lines.push(pb::ClaimLine {
            hilist_code: "XZ99ZZZ999A0".into(),
            cnt: "1".into(),
            pric: "12.34".into(),
            det_item_fee_sumamt: "12.34".into(),
        });
    }
    c
}

/// The claims settled on both sides: the golden cases of the clearing service, pharmacy, retiree,
/// chronic disease, own and family account, and multi-line claims from both catalogues.
async fn claims(local: &Clearing) -> Vec<pb::Claim> {
    let mut v = vec![
        claim("G1", "421300", "SZ1", "360100", 3, "2023-03-10", 800),
        claim("G2", "421300", "SZ2", "360100", 2, "2023-03-10", 800),
        claim("G3", "421300", "SZ3", "360100", 1, "2023-03-10", 800),
        claim("G4", "360100", "NC1", "421300", 2, "2023-04-01", 1000),
        claim("G5", "360100", "NC2", "421300", 3, "2023-04-01", 1000),
        claim("G6", "150500", "TL1", "421300", 1, "2023-04-01", 1000),
        claim("G7", "150500", "TL1", "421300", 2, "2023-04-02", 1000),
        claim("CAP1", "421300", "SZ1", "360100", 1, "2023-05-01", 2000),
        claim("CAP2", "421300", "SZ1", "360100", 1, "2023-06-01", 500),
        claim("CAP3", "421300", "SZ1", "360100", 1, "2024-01-03", 2000),
        claim("RT1", "421300", "SZ4", "360100", 1, "2023-05-25", 800),
        claim("RT2", "421300", "SZ4", "360100", 1, "2023-06-02", 800),
    ];
    let mut p = claim("PH1", "421300", "SZ2", "360100", 1, "2023-03-11", 800);
    p.med_type = "41".into();
    p.fixmedins_code = listed_pharmacy("360100", true);
    p.hosp_lv = 0;
    p.prescribing_hosp_lv = 2;
    p.prescribing_fixmedins_code = listed_institution("360100", 2);
    v.push(p);
    let mut ch = claim("CH1", "360100", "NC1", "421300", 2, "2023-07-01", 3000);
    ch.med_type = "14".into();
    ch.dise_code = "M03900".into();
    v.push(ch);
    let mut acct = claim("AC1", "360100", "NC3", "421300", 2, "2023-07-02", 900);
    acct.acct_used_flag = true;
    v.push(acct);
    let mut fam = claim("FM1", "421300", "SZ1", "360100", 2, "2024-02-01", 700);
    fam.acct_used_flag = true;
    fam.acct_payer_psn_no = "SZP".into();
    v.push(fam);
    let mut cat = local.catalogue().await;
    for (mdtrt, insured, psn, date) in [("360100", "421300", "SZ2", "2024-03-01"), ("421300", "360100", "NC2", "2024-03-02")] {
        let items = cat
            .list_catalogue_items(pb::ListCatalogueItemsRequest {
                admdvs: mdtrt.into(),
                date: date.into(),
                page_size: 500,
                page_token: String::new(),
                page_num: 0,
                hilist_code: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .items;
        assert!(items.len() >= 40, "{mdtrt}: {} items", items.len());
        for k in 0..8 {
            v.push(catalogue_claim(&format!("L{mdtrt}{k}"), insured, psn, mdtrt, date, &items, k));
        }
    }
    v
}

fn routes_to(hubei: &Adapter, jiangxi: &Adapter) -> Vec<String> {
    vec!["--route".into(), format!("420000={}", hubei.url()), "--route".into(), format!("360100={}", jiangxi.url())]
}

fn start_routed(hubei: &Adapter, jiangxi: &Adapter) -> Clearing {
    let args = routes_to(hubei, jiangxi);
    Clearing::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_adapters_settle_byte_identically_to_the_in_process_engine() {
    let hubei = Adapter::start(&["421300"]);
    let jiangxi = Adapter::start(&["360100"]);
    let routed = start_routed(&hubei, &jiangxi);
    let local = Clearing::start();
    registered(&routed, &members()).await;
    registered(&local, &members()).await;
    let (mut r, mut l) = (routed.clearing().await, local.clearing().await);
    let claims = claims(&local).await;
    let mut hops = 0;
    let mut routed_answers = Vec::new();
    for c in &claims {
        // Preview: no id, no state; the whole message must be the same bytes.
        let pr = r.preview_claim(c.clone()).await.unwrap_or_else(|e| panic!("{} routed: {e}", c.msgid)).into_inner();
        let pl = l.preview_claim(c.clone()).await.unwrap_or_else(|e| panic!("{} local: {e}", c.msgid)).into_inner();
        assert_eq!(prost::Message::encode_to_vec(&pr), prost::Message::encode_to_vec(&pl), "preview {}", c.msgid);
        // Settle: the same bytes apart from the settlement id each service assigns.
        let mut sr = r.settle_claim(c.clone()).await.unwrap_or_else(|e| panic!("{} routed: {e}", c.msgid)).into_inner();
        let mut sl = l.settle_claim(c.clone()).await.unwrap_or_else(|e| panic!("{} local: {e}", c.msgid)).into_inner();
        assert!(!sr.setl_id.is_empty() && sr.recorded);
        routed_answers.push(sr.clone());
        sr.setl_id.clear();
        sl.setl_id.clear();
        assert_eq!(prost::Message::encode_to_vec(&sr), prost::Message::encode_to_vec(&sl), "settlement {}", c.msgid);
        if c.insuplc_admdvs != "150500" || c.mdtrt_admdvs != "150500" {
            hops += 1;
        }
    }
    assert!(hops >= 30, "{hops} claims crossed an adapter");
    // Spot values (worked out in clearing_service.rs's golden test): the numbers are right, not just equal.
    let spot = |msgid: &str| routed_answers.iter().find(|s| s.msgid == msgid).map(|s| (s.hifp_pay.clone(), s.act_pay_dedc.clone()));
    assert_eq!(spot("G1"), Some(("180.00".into(), "500.00".into()))); // Suizhou policy on Hubei's adapter, Nanchang prices on Jiangxi's
    assert_eq!(spot("G4"), Some(("220.00".into(), "600.00".into()))); // Nanchang policy on Jiangxi's, Suizhou prices on Hubei's
    assert_eq!(spot("CAP1"), Some(("1120.00".into(), "0.00".into()))); // Suizhou's cap across visits
    // The state both sides keep is the same.
    let (mut rr, mut lr) = (routed.registry().await, local.registry().await);
    for m in members() {
        for year in [2023, 2024] {
            let q = pb::GetMemberRequest { insuplc_admdvs: m.insuplc_admdvs.clone(), psn_no: m.psn_no.clone(), year };
            let a = rr.get_member(q.clone()).await.unwrap().into_inner();
            let b = lr.get_member(q).await.unwrap().into_inner();
            assert_eq!((&a.accumulators, &a.acct_balc), (&b.accumulators, &b.acct_balc), "{} {year}", m.psn_no);
        }
    }
    // Both adapters were called (their logs show calls), and the catalogue views match.
    assert!(hubei.log().contains("price_lines") && hubei.log().contains("apply_policy"), "{}", hubei.log());
    assert!(jiangxi.log().contains("price_lines") && jiangxi.log().contains("apply_policy"), "{}", jiangxi.log());
    let (mut rc, mut lc) = (routed.catalogue().await, local.catalogue().await);
    for a in ["421300", "360100", "150500"] {
        let q = pb::GetPolicyRequest { admdvs: a.into(), date: "2024-06-01".into() };
        assert_eq!(rc.get_policy(q.clone()).await.unwrap().into_inner(), lc.get_policy(q).await.unwrap().into_inner(), "{a}");
        let q = pb::ListCatalogueItemsRequest {
            admdvs: a.into(),
            date: "2024-06-01".into(),
            page_size: 7,
            page_token: "7".into(),
            ..Default::default()
        };
        assert_eq!(rc.list_catalogue_items(q.clone()).await.unwrap().into_inner(), lc.list_catalogue_items(q).await.unwrap().into_inner());
    }
    // ListRegions says where each region is served.
    let list = rc.list_regions(pb::ListRegionsRequest {}).await.unwrap().into_inner();
    let route = |a: &str| list.regions.iter().find(|r| r.admdvs == a).map(|r| r.route.clone());
    assert_eq!(route("421300"), Some(hubei.url()));
    assert_eq!(route("360100"), Some(jiangxi.url()));
    assert_eq!(route("150500").as_deref(), Some("local"));
    assert_eq!(route("320100").as_deref(), Some("local"));
    assert_eq!(list.regions.len(), 5);
    assert!(list.routes.iter().all(|r| r.reachable), "{:?}", list.routes);
    // Refusals of a remote adapter reach the caller with the field, as in process.
    let mut bad = claim("BAD1", "421300", "SZ1", "360100", 2, "2024-03-01", 100);
    bad.lines[0].hilist_code = "NOT-A-CODE".into();
    let (er, el) = (r.settle_claim(bad.clone()).await.unwrap_err(), l.settle_claim(bad).await.unwrap_err());
    assert_eq!((er.code(), bad_fields(&er)), (el.code(), bad_fields(&el)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_adapter_fails_only_its_regions_and_writes_nothing() {
    let mut hubei = Adapter::start(&["421300"]);
    let jiangxi = Adapter::start(&["360100"]);
    let routed = start_routed(&hubei, &jiangxi);
    registered(&routed, &members()).await;
    let mut c = routed.clearing().await;
    // The caller's deadline and trace context travel to the adapter.
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut req = tonic::Request::new(claim("T1", "421300", "SZ1", "360100", 2, "2024-03-01", 100));
    req.set_timeout(Duration::from_secs(7));
    req.metadata_mut().insert("traceparent", trace.parse().unwrap());
    c.settle_claim(req).await.unwrap();
    for log in [hubei.log(), jiangxi.log()] {
        let line = log.lines().find(|l| l.contains(trace)).unwrap_or_else(|| panic!("no traceparent in adapter log:\n{log}"));
        let t = line.split("grpc_timeout=").nth(1).and_then(|t| t.split_whitespace().next()).unwrap_or_else(|| panic!("{line}"));
        let t = clearing_service::routing::remote::parse_grpc_timeout(t).unwrap_or_else(|| panic!("{line}"));
        assert!(t > Duration::ZERO && t <= Duration::from_secs(7), "{line}");
    }

    hubei.stop();
    // Suizhou's policy and Suizhou's catalogue are both behind the stopped adapter.
    for k in [claim("D1", "421300", "SZ1", "360100", 2, "2024-03-01", 100), claim("D2", "360100", "NC1", "421300", 2, "2024-03-01", 100)] {
        let e = c.settle_claim(k.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{}: {e}", k.msgid);
        assert!(e.message().contains(&hubei.url()), "{e}");
    }
    // Every other region keeps working: Jiangxi's adapter and the in-process regions.
    c.settle_claim(claim("OK1", "360100", "NC2", "150500", 2, "2024-03-01", 100)).await.unwrap();
    c.settle_claim(claim("OK2", "150500", "TL1", "320100", 2, "2024-03-01", 100)).await.unwrap();
    let list = routed.catalogue().await.list_regions(pb::ListRegionsRequest {}).await.unwrap().into_inner();
    let down: Vec<_> = list.routes.iter().filter(|r| !r.reachable).collect();
    assert_eq!(down.len(), 1, "{:?}", list.routes);
    assert_eq!((down[0].admdvs.as_str(), down[0].target.clone()), ("420000", hubei.url()));
    assert!(!list.regions.iter().any(|r| r.admdvs == "421300"));
    // Nothing was written for the failed claims: no accumulator moved in 2024 except T1's.
    let mut reg = routed.registry().await;
    let nc1 = reg.get_member(pb::GetMemberRequest { insuplc_admdvs: "360100".into(), psn_no: "NC1".into(), year: 2024 }).await.unwrap();
    assert!(nc1.into_inner().accumulators.is_empty());
    let sz1 = reg.get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZ1".into(), year: 2024 }).await.unwrap();
    assert_eq!(sz1.into_inner().accumulators[0].visits, 1);

    // Back up: the same msgids settle now (they were never consumed), through the reconnected channel.
    hubei.restart();
    let s = eventually("the restarted adapter to answer", PATIENCE, || {
        let mut c = c.clone();
        async move {
            match c.settle_claim(claim("D1", "421300", "SZ1", "360100", 2, "2024-03-01", 100)).await {
                Ok(s) => Some(s.into_inner()),
                Err(e) if e.code() == Code::Unavailable => None,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert!(s.recorded && !s.setl_id.is_empty());
    c.settle_claim(claim("D2", "360100", "NC1", "421300", 2, "2024-03-01", 100)).await.unwrap();
    let sz1 = reg.get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "SZ1".into(), year: 2024 }).await.unwrap();
    assert_eq!(sz1.into_inner().accumulators[0].visits, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_reloads_on_sighup_without_a_restart() {
    let mut hubei = Adapter::start(&["421300"]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("clearing.toml");
    std::fs::write(&cfg, format!("version = 1\n[routes]\n420000 = \"{}\"\n", hubei.url())).unwrap();
    let routed = Clearing::start_with(&["--config", cfg.to_str().unwrap()]);
    registered(&routed, &members()).await;
    let mut cat = routed.catalogue().await;
    let route_of = |l: &pb::ListRegionsResponse, a: &str| l.regions.iter().find(|r| r.admdvs == a).map(|r| r.route.clone());
    let list = cat.list_regions(pb::ListRegionsRequest {}).await.unwrap().into_inner();
    assert_eq!(route_of(&list, "421300"), Some(hubei.url()));

    // A broken file is refused and changes nothing.
    std::fs::write(&cfg, "version = 1\n[routes]\n420000 = \"ftp://nowhere\"\n").unwrap();
    routed.signal("HUP");
    eventually("the refusal of the broken file in the log", PATIENCE, || async { routed.log().contains("reload refused").then_some(()) })
        .await;
    let list = cat.list_regions(pb::ListRegionsRequest {}).await.unwrap().into_inner();
    assert_eq!(route_of(&list, "421300"), Some(hubei.url()));

    // Hubei back to local; the adapter can go away and Suizhou's claims still settle.
    std::fs::write(&cfg, "version = 1\n[routes]\n420000 = \"local\"\n").unwrap();
    routed.signal("HUP");
    let list = eventually("the route back to local", PATIENCE, || {
        let mut cat = cat.clone();
        async move {
            let list = cat.list_regions(pb::ListRegionsRequest {}).await.unwrap().into_inner();
            (route_of(&list, "421300").as_deref() == Some("local")).then_some(list)
        }
    })
    .await;
    assert_eq!(list.routes.len(), 1);
    hubei.stop();
    let s = routed.clearing().await.settle_claim(claim("R1", "421300", "SZ1", "360100", 2, "2024-03-01", 100)).await.unwrap().into_inner();
    assert!(s.recorded);
}
