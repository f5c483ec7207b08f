//! Mutual TLS and the authorization matrix (clearing/edge/src/authz.rs), over real TLS connections to the
//! real binaries, with certificates generated here. Also: plain text is refused off loopback and
//! without `--plaintext`, and strangers (no certificate, another CA, an expired certificate) get nowhere.

use proto::v1 as pb;
use proto::v1::netting_client::NettingClient;
use proto::v1::region_adapter_client::RegionAdapterClient;
use std::process::Command;
use tests::pki::{Pem, Pki, tls_channel};
use tests::*;
use tonic::Code;
use tonic::transport::Channel;

struct Who {
    ch: Channel,
}

impl Who {
    async fn new(c: &Clearing, pki: &Pki, pem: &Pem) -> Who {
        Who { ch: tls_channel(c.addr, &pki.ca(), Some(pem)).await.expect("TLS connect") }
    }
    fn clearing(&self) -> ClearingClient<Channel> {
        ClearingClient::new(self.ch.clone())
    }
    fn registry(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.ch.clone())
    }
    fn netting(&self) -> NettingClient<Channel> {
        NettingClient::new(self.ch.clone())
    }
    fn catalogue(&self) -> CatalogueClient<Channel> {
        CatalogueClient::new(self.ch.clone())
    }
    fn supervision(&self) -> SupervisionClient<Channel> {
        SupervisionClient::new(self.ch.clone())
    }
}

fn denied<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>, what: &str) {
    match r {
        Err(s) if s.code() == Code::PermissionDenied => {}
        other => panic!("{what}: expected PERMISSION_DENIED, got {other:?}"),
    }
}

fn ok<T>(r: Result<tonic::Response<T>, tonic::Status>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}")).into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_at_the_door() {
    let pki = Pki::new("clearinghouse");
    let c = Clearing::start_with(&pki.server_args(&pki.server("clearing")).iter().map(String::as_str).collect::<Vec<_>>());
    let good = pki.client("hubei-platform", Some("platform:420000"), false);
    let expired = pki.client("old-platform", Some("platform:420000"), true);
    let other_ca = Pki::new("impostor");
    let foreign = other_ca.client("hubei-platform", Some("platform:420000"), false);
    let no_role = pki.client("nobody", None, false);

    // The right certificate works.
    let ch = tls_channel(c.addr, &pki.ca(), Some(&good)).await.unwrap();
    ok(CatalogueClient::new(ch).list_regions(pb::ListRegionsRequest {}).await, "valid certificate");

    // No certificate, another CA's certificate, an expired certificate: no call gets through.
    for (what, client) in [("no certificate", None), ("another CA", Some(&foreign)), ("expired", Some(&expired))] {
        let r = match tls_channel(c.addr, &pki.ca(), client).await {
            Err(_) => continue, // refused during the handshake
            Ok(ch) => CatalogueClient::new(ch).list_regions(pb::ListRegionsRequest {}).await,
        };
        assert!(r.is_err(), "{what}: a call got through");
    }
    // Plain text to a TLS listener.
    let plain = Channel::from_shared(c.url()).unwrap().connect().await;
    if let Ok(ch) = plain {
        assert!(CatalogueClient::new(ch).list_regions(pb::ListRegionsRequest {}).await.is_err(), "plain text got through");
    }
    // The CLI's health check (the chart's exec probe) over mutual TLS, by the server's name.
    let health = |who: &Pem| {
        Command::new(bin("clearing"))
            .args(["health", "--addr", &format!("https://127.0.0.1:{}", c.addr.port())])
            .env("CLEARING_CA", pki.ca())
            .env("CLEARING_CLIENT_CERT", &who.cert)
            .env("CLEARING_CLIENT_KEY", &who.key)
            .env("CLEARING_TLS_SERVER_NAME", "localhost")
            .output()
            .unwrap()
    };
    let out = health(&good);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SERVING"), "{out:?}");
    assert!(!health(&expired).status.success(), "an expired certificate passed the health check");
    // A certificate of our CA that names no role and region.
    let ch = tls_channel(c.addr, &pki.ca(), Some(&no_role)).await.unwrap();
    denied(CatalogueClient::new(ch).list_regions(pb::ListRegionsRequest {}).await, "no role");
    assert!(c.log().contains("certificate without a usable identity"), "{}", c.log());
}

#[test]
fn plain_text_only_on_loopback_and_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let run = |bin_name: &str, args: &[&str]| {
        let out = Command::new(bin(bin_name)).args(args).env("RUST_LOG", "error").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();
    let (okay, err) = run("clearing", &["serve", "--listen", "0.0.0.0:0", "--plaintext", "--data-dir", data]);
    assert!(!okay && err.contains("only allowed on a loopback"), "{err}");
    let (okay, err) = run("clearing", &["serve", "--listen", "127.0.0.1:0", "--data-dir", data]);
    assert!(!okay && err.contains("no transport security"), "{err}");
    let (okay, err) = run("region-adapter", &["serve", "--listen", "0.0.0.0:0", "--plaintext"]);
    assert!(!okay && err.contains("only allowed on a loopback"), "{err}");
    let (okay, err) = run("region-adapter", &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!okay && err.contains("no transport security"), "{err}");
    let (okay, err) = run("clearing", &["serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent", "--data-dir", data]);
    assert!(!okay && err.contains("all three"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_over_tls() {
    let pki = Pki::new("clearinghouse");
    // Suizhou's pricing and policy run on Hubei's own adapter, reached over mTLS as role `clearing`.
    let adapter_args = pki.server_args(&pki.server("hubei-adapter"));
    let hubei_adapter = Adapter::start_with(&["421300"], &adapter_args.iter().map(String::as_str).collect::<Vec<_>>());
    let me = pki.client("clearing", Some("clearing:000000"), false);
    let mut args = pki.server_args(&pki.server("clearing"));
    args.extend([
        "--route".into(),
        format!("420000=https://localhost:{}", hubei_adapter.addr.port()),
        "--adapter-tls-ca".into(),
        pki.ca().display().to_string(),
        "--adapter-tls-cert".into(),
        me.cert.display().to_string(),
        "--adapter-tls-key".into(),
        me.key.display().to_string(),
    ]);
    let c = Clearing::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let hubei = Who::new(&c, &pki, &pki.client("hubei-platform", Some("platform:420000"), false)).await;
    let suizhou = Who::new(&c, &pki, &pki.client("suizhou-hospitals", Some("mdtrt:421300"), false)).await;
    let nanchang = Who::new(&c, &pki, &pki.client("nanchang-fund", Some("insured:360100"), false)).await;
    let jiangsu = Who::new(&c, &pki, &pki.client("jiangsu-platform", Some("platform:320000"), false)).await;
    let national = Who::new(&c, &pki, &pki.client("national-netting", Some("national:000000"), false)).await;
    let operator = Who::new(&c, &pki, &pki.client("ops", Some("operator:000000"), false)).await;

    // Members: only the insured side's platform.
    ok(nanchang.registry().upsert_member(member("360100", "SECNC1", "11", &[])).await, "nanchang upserts its member");
    ok(hubei.registry().upsert_member(member("421300", "SECSZ1", "11", &["360000"])).await, "hubei upserts its member");
    denied(suizhou.registry().upsert_member(member("421300", "SECSZ9", "11", &[])).await, "service-location role upserts");
    denied(nanchang.registry().upsert_member(member("421300", "SECSZ8", "11", &[])).await, "nanchang upserts a Suizhou member");
    let q = |ins: &str, psn: &str| pb::GetMemberRequest { insuplc_admdvs: ins.into(), psn_no: psn.into(), year: 2024 };
    ok(nanchang.registry().get_member(q("360100", "SECNC1")).await, "nanchang reads its member");
    // A service-location platform reads a member of another region only when the member filed for it
    // (1101 at the treating institution); any other member looks exactly like one that does not exist.
    let hidden = hubei.registry().get_member(q("360100", "SECNC1")).await.unwrap_err();
    let missing = hubei.registry().get_member(q("360100", "SECNC9")).await.unwrap_err();
    assert_eq!((hidden.code(), hidden.message()), (Code::NotFound, missing.message()), "hubei reads an unfiled Nanchang member");
    let jiangxi = Who::new(&c, &pki, &pki.client("jiangxi-platform", Some("platform:360000"), false)).await;
    ok(jiangxi.registry().get_member(q("421300", "SECSZ1")).await, "jiangxi reads a Suizhou member filed for Jiangxi");
    assert_eq!(jiangsu.registry().get_member(q("421300", "SECSZ1")).await.unwrap_err().code(), Code::NotFound, "jiangsu: not filed there");
    // The filing rule is for service locations only: an insured-side platform of another region is refused.
    denied(nanchang.registry().get_member(q("421300", "SECSZ1")).await, "nanchang's insured role reads a Suizhou member");
    denied(national.registry().get_member(q("360100", "SECNC1")).await, "national reads a member");
    denied(operator.registry().get_member(q("360100", "SECNC1")).await, "operator reads a member");
    // Nothing was written by the refused upserts.
    let e = hubei.registry().get_member(q("421300", "SECSZ9")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Settling: the service location's platform, for claims of its region only.
    let k = claim("SEC1", "360100", "SECNC1", "421300", 2, "2024-03-01", 100);
    let s = ok(suizhou.clearing().settle_claim(k).await, "suizhou settles a Suizhou claim");
    assert!(s.recorded);
    ok(hubei.clearing().settle_claim(claim("SEC2", "360100", "SECNC1", "421300", 2, "2024-03-02", 100)).await, "province covers city");
    ok(suizhou.clearing().preview_claim(claim("SEC3", "360100", "SECNC1", "421300", 2, "2024-03-02", 100)).await, "preview");
    for (who, name) in [(&nanchang, "insured side"), (&jiangsu, "other province"), (&national, "national"), (&operator, "operator")] {
        denied(who.clearing().settle_claim(claim("SEC4", "360100", "SECNC1", "421300", 2, "2024-03-03", 100)).await, name);
        denied(who.clearing().preview_claim(claim("SEC4", "360100", "SECNC1", "421300", 2, "2024-03-03", 100)).await, name);
    }
    denied(suizhou.clearing().settle_claim(claim("SEC5", "421300", "SECSZ1", "360100", 2, "2024-03-03", 100)).await, "other location");
    // Nothing was written by the refused settlements: two visits (SEC1, SEC2), and SEC4's msgid is unused.
    let m = ok(nanchang.registry().get_member(q("360100", "SECNC1")).await, "read back");
    assert_eq!(m.accumulators[0].visits, 2);
    ok(suizhou.clearing().settle_claim(claim("SEC4", "360100", "SECNC1", "421300", 2, "2024-03-03", 100)).await, "SEC4 unused");

    // Reading settlements: either side's platforms, and the national role.
    let get = || pb::GetSettlementRequest { setl_id: s.setl_id.clone() };
    ok(suizhou.clearing().get_settlement(get()).await, "service side reads");
    ok(nanchang.clearing().get_settlement(get()).await, "insured side reads");
    ok(national.clearing().get_settlement(get()).await, "national reads");
    // A caller that may not see a settlement gets exactly the answer for one that does not exist (no
    // existence oracle); the refusal is still audited.
    let missing_id = format!("{}ffffffffff", &s.setl_id[..14]);
    let absent = national.clearing().get_settlement(pb::GetSettlementRequest { setl_id: missing_id.clone() }).await.unwrap_err();
    assert_eq!(absent.code(), Code::NotFound);
    for (who, name) in [(&jiangsu, "uninvolved province reads"), (&operator, "operator reads personal data")] {
        let e = who.clearing().get_settlement(get()).await.unwrap_err();
        assert_eq!((e.code(), bad_fields(&e)), (Code::NotFound, vec!["setl_id".to_string()]), "{name}: {e:?}");
        assert_eq!(e.message().replace(&s.setl_id, "ID"), absent.message().replace(&missing_id, "ID"), "{name}");
    }

    // Reversal: the service location of the original only.
    let rev = |msgid: &str| pb::ReverseClaimRequest { setl_id: s.setl_id.clone(), msgid: msgid.into(), reason: "test".into() };
    denied(nanchang.clearing().reverse_claim(rev("REV1")).await, "insured side reverses");
    let e = jiangsu.clearing().reverse_claim(rev("REV1")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "a province that may not see the original learns nothing of it: {e:?}");
    let r = ok(suizhou.clearing().reverse_claim(rev("REV1")).await, "service side reverses");
    assert!(r.refd_setl_flag);

    // Supervision: everyone sees only their part; person numbers only of their own members.
    let mut big = claim("SEC6", "360100", "SECNC1", "421300", 3, "2024-03-05", 2500);
    big.fixmedins_code = "H42130000001".into();
    let flagged = ok(suizhou.clearing().settle_claim(big).await, "a claim over the cost threshold");
    assert_eq!(flagged.flags.iter().map(|f| f.kind.as_str()).collect::<Vec<_>>(), ["high_cost"]);
    let list = |who: &Who| {
        let mut c = who.supervision();
        async move {
            c.list_flagged_settlements(pb::ListFlaggedSettlementsRequest { month: "202403".into(), ..Default::default() })
                .await
                .map(|r| r.into_inner().settlements.into_iter().map(|f| (f.setl_id, f.psn_no)).collect::<Vec<_>>())
        }
    };
    let id = flagged.setl_id.clone();
    for (who, name, expected) in [
        (&national, "national", vec![(id.clone(), "SECNC1".to_string())]),
        (&nanchang, "the insured side", vec![(id.clone(), "SECNC1".to_string())]),
        (&hubei, "the service location's province", vec![(id.clone(), String::new())]),
        (&suizhou, "the service location", vec![(id.clone(), String::new())]),
        (&operator, "operator", vec![(id.clone(), String::new())]),
        (&jiangsu, "an uninvolved province", vec![]),
    ] {
        assert_eq!(list(who).await.unwrap_or_else(|e| panic!("{name}: {e}")), expected, "{name}");
    }
    let indicators = |who: &Who| {
        let mut c = who.supervision();
        async move {
            let i = c.get_indicators(pb::GetIndicatorsRequest { month: "202403".into(), ..Default::default() }).await.unwrap().into_inner();
            (i.institutions.into_iter().map(|x| x.fixmedins_code).collect::<Vec<_>>(), i.pairs.len())
        }
    };
    // Suizhou's two listed institutions the month's claims went to (level 2 and level 3).
    let both = vec!["H42130000001".to_string(), "H42130000002".to_string()];
    assert_eq!(indicators(&suizhou).await, (both.clone(), 1), "the service location: its institutions and pair");
    assert_eq!(indicators(&nanchang).await, (vec![], 1), "the insured side: its pair, no institutions elsewhere");
    assert_eq!(indicators(&jiangsu).await, (vec![], 0), "an uninvolved province: nothing");
    assert_eq!(indicators(&national).await, (both, 1));
    let clearing_role = Who::new(&c, &pki, &me).await;
    denied(
        clearing_role.supervision().get_indicators(pb::GetIndicatorsRequest { month: "202403".into(), ..Default::default() }).await,
        "clearing",
    );

    // Netting, windows and advances: the national role; reads also for operators.
    let today = s.clr_date.clone();
    ok(national.netting().list_windows(pb::ListWindowsRequest {}).await, "national lists windows");
    ok(operator.netting().list_windows(pb::ListWindowsRequest {}).await, "operator lists windows");
    ok(operator.netting().get_window(pb::GetWindowRequest { clr_date: today.clone() }).await, "operator reads a window");
    for (who, name) in [(&hubei, "platform"), (&suizhou, "mdtrt"), (&nanchang, "insured")] {
        denied(who.netting().list_windows(pb::ListWindowsRequest {}).await, name);
        denied(who.netting().close_window(pb::CloseWindowRequest { clr_date: "2024-01-01".into() }).await, name);
        denied(who.netting().set_advance(pb::SetAdvanceRequest { admdvs: "421300".into(), amount: "1000.00".into() }).await, name);
    }
    denied(operator.netting().close_window(pb::CloseWindowRequest { clr_date: "2024-01-01".into() }).await, "operator closes");
    ok(national.netting().close_window(pb::CloseWindowRequest { clr_date: "2024-01-01".into() }).await, "national closes");

    // The catalogue is for every verified caller.
    for who in [&hubei, &suizhou, &nanchang, &national, &operator] {
        let list = ok(who.catalogue().list_regions(pb::ListRegionsRequest {}).await, "catalogue");
        assert!(list.regions.iter().any(|r| r.admdvs == "421300" && r.route.starts_with("https://")));
    }

    // The adapter computes only for the clearing role.
    let direct =
        tls_channel(hubei_adapter.addr, &pki.ca(), Some(&pki.client("hubei-platform", Some("platform:420000"), false))).await.unwrap();
    let q = pb::PriceLinesRequest {
        mdtrt_admdvs: "421300".into(),
        date: "2024-03-01".into(),
        lines: vec![pb::AdapterLine { hilist_code: CLASS_A_NO_CAP.into(), cnt: "1".into(), pric: "1.00".into(), amount_fen: 100 }],
    };
    denied(RegionAdapterClient::new(direct.clone()).price_lines(q.clone()).await, "platform calls the adapter");
    ok(RegionAdapterClient::new(direct).list_regions(pb::ListRegionsRequest {}).await, "platform lists the adapter's regions");
    let as_clearing = tls_channel(hubei_adapter.addr, &pki.ca(), Some(&me)).await.unwrap();
    ok(RegionAdapterClient::new(as_clearing).price_lines(q).await, "clearing calls the adapter");

    // Every refusal left one audit line naming the certificate, never a person.
    let log = c.log();
    let audit: Vec<&str> = log.lines().filter(|l| l.contains("audit") && l.contains("permission denied")).collect();
    assert!(audit.len() >= 25, "{} audit lines:\n{log}", audit.len());
    assert!(audit.iter().any(|l| l.contains("jiangsu-platform") && l.contains("GetSettlement")));
    assert!(audit.iter().any(|l| l.contains("ops") && l.contains("GetSettlement")), "the hidden refusal is audited");
    assert!(person_numbers_in(&log).is_empty());
}

#[test]
fn the_log_check_finds_person_numbers() {
    // The check every started service runs on its log when dropped (tests/src/lib.rs).
    let _ = member("421300", "CANARY0001", "11", &[]);
    assert_eq!(person_numbers_in("INFO settled psn=CANARY0001 ok"), vec!["CANARY0001".to_string()]);
    assert!(person_numbers_in("INFO settled CANARY00011 XCANARY0001").is_empty());
}
