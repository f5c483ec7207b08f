//! Callers bound to institutions (issue 29): a HIS's token (role `institution`) and an institution's
//! certificate act only as their own institutions — settle, preview, register, read, reverse and
//! reconcile — and learn nothing of a neighbour's settlements and visits. Clearing runs on Redis behind
//! mutual TLS; the gateway forwards with its own certificate.

use proto::v1 as pb;
use proto::v1::catalogue_client::CatalogueClient;
use proto::v1::clearing_client::ClearingClient;
use proto::v1::netting_client::NettingClient;
use proto::v1::registry_client::RegistryClient;
use serde_json::json;
use tests::gateway::*;
use tests::pki::{Pki, tls_channel};
use tests::*;
use tonic::Code;

const A: &str = "H36010000001";
const B: &str = "H36010000002";

fn at(code: &str) -> Where {
    Where { mdtrtarea_admvs: "360100".into(), insuplc_admdvs: "421300".into(), fixmedins_code: code.into() }
}

/// A claim of `psn_no` at institution `code` of Nanchang (A is listed at level 3, B at level 2).
fn claim_at(msgid: &str, psn_no: &str, code: &str, yuan: u32) -> pb::Claim {
    let lv = if code == A { 3 } else { 2 };
    let mut k = claim(msgid, "421300", psn_no, "360100", lv, "2024-03-12", yuan);
    k.fixmedins_code = code.into();
    k
}

/// `err_msg` with the id it names replaced, to compare the answer for a hidden object with the answer
/// for one that does not exist.
fn shape(r: &Reply, id: &str) -> (u16, i64, String) {
    (r.status, r.infcode(), r.err_msg().replace(id, "<id>"))
}

/// A well-formed id of the same shard that names nothing.
fn absent(id: &str) -> String {
    let last = if id.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &id[..id.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_acts_only_as_itself_through_the_gateway_and_over_grpc() {
    let r = Redis::start();
    let pki = Pki::new("clearinghouse");
    let mut args = pki.server_args(&pki.server("clearing"));
    args.extend(["--store".into(), "redis".into(), "--redis-url".into(), r.url()]);
    let c = Clearing::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let gw_cert = pki.client("national-gateway", Some("gateway:000000"), false);
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(
        dir.path(),
        &[("his_a", &format!("institution:{A}"), "360100"), ("his_b", &format!("institution:{B}"), "360100"), ("jx", "platform", "360000")],
    );
    let g = Gateway::start(
        &format!("https://localhost:{}", c.addr.port()),
        &paas,
        &[
            "--clearing-tls-ca",
            pki.ca().to_str().unwrap(),
            "--clearing-tls-cert",
            gw_cert.cert.to_str().unwrap(),
            "--clearing-tls-key",
            gw_cert.key.to_str().unwrap(),
        ],
    );
    let (his_a, his_b, jx) = (His::new(&g.url(), "his_a"), His::new(&g.url(), "his_b"), His::new(&g.url(), "jx"));
    let hubei = tls_channel(c.addr, &pki.ca(), Some(&pki.client("hubei-platform", Some("platform:420000"), false))).await.unwrap();
    for p in ["INST1", "INST2"] {
        RegistryClient::new(hubei.clone()).upsert_member(funded(member("421300", p, "11", &["360000"]), "300.00")).await.unwrap();
    }

    // Each HIS settles as itself; the same msgid at two institutions is two messages (the msgid key is
    // the institution's), and the platform settles for any listed institution of its region.
    let sa = his_a.call("2207", "SAME-1", &at(A), national_input(&claim_at("SAME-1", "INST1", A, 100), false)).await.ok();
    let sb = his_b.call("2207", "SAME-1", &at(B), national_input(&claim_at("SAME-1", "INST1", B, 200), false)).await.ok();
    let (setl_a, setl_b) = (sa.setl("setl_id"), sb.setl("setl_id"));
    assert_ne!(setl_a, setl_b);
    jx.call("2207", "JX-1", &at(B), national_input(&claim_at("JX-1", "INST2", B, 50), false)).await.ok();

    // 1101 at the treating institution: a member filed for its region is read, another is not.
    let m = his_a.call("1101", "Q-1", &at(A), json!({ "data": { "psn_no": "INST1" } })).await.ok();
    assert_eq!(m.output()["baseinfo"]["psn_no"], "INST1");
    RegistryClient::new(hubei.clone()).upsert_member(member("421300", "INST3", "11", &[])).await.unwrap();
    let unfiled = his_a.call("1101", "Q-2", &at(A), json!({ "data": { "psn_no": "INST3" } })).await;
    let nobody = his_a.call("1101", "Q-3", &at(A), json!({ "data": { "psn_no": "INST9" } })).await;
    assert_eq!(shape(&unfiled, "INST3"), shape(&nobody, "INST9"), "{}", unfiled.body);
    assert_eq!(unfiled.infcode(), -1);

    // A's token cannot act as B in any transaction: refused before clearing is called, and audited.
    let as_b = [
        ("2206", national_input(&claim_at("X-1", "INST1", B, 10), false)),
        ("2207", national_input(&claim_at("X-2", "INST1", B, 10), false)),
        ("2201", json!({ "data": { "psn_no": "INST1", "insutype": "310", "begntime": "2024-03-12 10:00:00", "med_type": "11" } })),
        ("2208", json!({ "data": { "setl_id": setl_b } })),
        ("3202", json!({ "data": { "stmt_begndate": "2024-03-12" }, "detail": [] })),
    ];
    for (infno, input) in as_b {
        let r = his_a.call(infno, &format!("AS-B-{infno}"), &at(B), input).await;
        assert_eq!((r.status, r.infcode()), (403, -1), "{infno}: {}", r.body);
        assert!(r.err_msg().starts_with("fixmedins_code:"), "{infno}: {}", r.err_msg());
    }
    assert!(g.log().contains("acting as another institution refused"), "the refusal is audited");

    // As itself, A cannot reach B's settlement: 2208 on it is answered exactly like an id that names
    // nothing, and nothing is reversed.
    let hidden = his_a.call("2208", "REV-B", &at(A), json!({ "data": { "setl_id": setl_b } })).await;
    let missing_id = absent(&setl_b);
    let missing = his_a.call("2208", "REV-NONE", &at(A), json!({ "data": { "setl_id": missing_id } })).await;
    assert_eq!(shape(&hidden, &setl_b), shape(&missing, &missing_id), "{} vs {}", hidden.body, missing.body);
    // 5203 likewise: B's settlement is not A's to read.
    let q = |id: &str| json!({ "data": { "psn_no": "INST1", "setl_id": id } });
    let (h, m) = (his_a.call("5203", "Q5-B", &at(A), q(&setl_b)).await, his_a.call("5203", "Q5-N", &at(A), q(&missing_id)).await);
    assert_eq!(shape(&h, &setl_b), shape(&m, &missing_id), "{}", h.body);
    assert_eq!(his_b.call("5203", "Q5-B2", &at(B), q(&setl_b)).await.ok().setl("setl_id"), setl_b);
    his_b.call("2208", "REV-B2", &at(B), json!({ "data": { "setl_id": setl_b } })).await.ok();

    // 3202 with an empty list names A's own settlement as missing there, never B's.
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive().to_string();
    let r = his_a.call("3202", "REC-A", &at(A), json!({ "data": { "stmt_begndate": today }, "detail": [] })).await.ok();
    let listed: Vec<&str> = r.output()["differences"].as_array().unwrap().iter().map(|d| d["setl_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [setl_a.as_str()], "{}", r.body);
    // 3201: A's totals are A's settlement alone.
    let totals = json!({ "data": { "stmt_begndate": today, "medfee_sumamt": sa.setl("medfee_sumamt"),
        "fund_pay_sumamt": sa.setl("fund_pay_sumamt"), "acct_pay": sa.setl("acct_pay"), "fixmedins_setl_cnt": 1 } });
    assert_eq!(his_a.call("3201", "TOT-A", &at(A), totals).await.ok().output()["stmtinfo"]["stmt_rslt"], "0");

    // B's visit: A cannot upload to it, settle or cancel it; the answers are those for a visit that
    // does not exist.
    let reg = his_b
        .call(
            "2201",
            "REG-B",
            &at(B),
            json!({ "data": { "psn_no": "INST2", "insutype": "310", "begntime": "2024-03-12 10:00:00", "med_type": "11" } }),
        )
        .await
        .ok();
    let mdtrt_id = reg.output()["data"]["mdtrt_id"].as_str().unwrap().to_string();
    // The same msgid at A registers A's own visit (a registration's msgid is the institution's too).
    let reg_a = his_a
        .call(
            "2201",
            "REG-B",
            &at(A),
            json!({ "data": { "psn_no": "INST2", "insutype": "310", "begntime": "2024-03-12 10:00:00", "med_type": "11" } }),
        )
        .await
        .ok();
    assert_ne!(reg_a.output()["data"]["mdtrt_id"].as_str().unwrap(), mdtrt_id);
    let no_visit = absent(&mdtrt_id);
    let detail = |id: &str| {
        json!({ "feedetail": [{ "feedetl_sn": "0001", "mdtrt_id": id, "chrg_bchno": "B1", "med_list_codg": CLASS_A_NO_CAP,
            "cnt": "1", "pric": "10.00", "det_item_fee_sumamt": "10.00", "fee_ocur_time": "2024-03-12 10:00:00" }] })
    };
    let up_hidden = his_a.call("2204", "UP-B", &at(A), detail(&mdtrt_id)).await;
    let up_missing = his_a.call("2204", "UP-NONE", &at(A), detail(&no_visit)).await;
    assert_eq!(up_hidden.infcode(), -1, "{}", up_hidden.body);
    assert_eq!(shape(&up_hidden, &mdtrt_id), shape(&up_missing, &no_visit));
    let cancel = |id: &str| json!({ "data": { "mdtrt_id": id, "psn_no": "INST2" } });
    let c_hidden = his_a.call("2202", "CAN-B", &at(A), cancel(&mdtrt_id)).await;
    let c_missing = his_a.call("2202", "CAN-NONE", &at(A), cancel(&no_visit)).await;
    assert_eq!(shape(&c_hidden, &mdtrt_id), shape(&c_missing, &no_visit));
    his_b.call("2204", "UP-B2", &at(B), detail(&mdtrt_id)).await.ok();

    // 2601: a 2207 whose answer was lost is reversed by its msgid, once, and only by its institution.
    let lost = his_a.call("2207", "LOST-1", &at(A), national_input(&claim_at("LOST-1", "INST1", A, 40), false)).await.ok();
    let undo = |omsgid: &str| json!({ "data": { "psn_no": "INST1", "omsgid": omsgid, "oinfno": "2207" } });
    let by_b = his_b.call("2601", "UNDO-B", &at(B), undo("LOST-1")).await;
    let never = his_b.call("2601", "UNDO-N", &at(B), undo("NEVER-1")).await;
    assert_eq!(shape(&by_b, "LOST-1"), shape(&never, "NEVER-1"), "{}", by_b.body);
    assert!(by_b.err_msg().starts_with("input.data.omsgid"), "{}", by_b.body);
    assert_eq!(his_a.call("2601", "UNDO-A", &at(A), undo("LOST-1")).await.ok().output(), &json!({}));
    his_a.call("2601", "UNDO-A", &at(A), undo("LOST-1")).await.ok();
    let again = his_a.call("2208", "UNDO-A2", &at(A), json!({ "data": { "setl_id": lost.setl("setl_id") } })).await;
    assert!(again.infcode() == -1 && again.err_msg().contains("reversed"), "reversed once: {}", again.body);
    let other = his_a.call("2601", "UNDO-X", &at(A), json!({ "data": { "psn_no": "INST1", "omsgid": "REG-B", "oinfno": "2201" } })).await;
    assert!(other.err_msg().starts_with("input.data.oinfno"), "{}", other.body);

    // Over gRPC with an institution's certificate: the same rules.
    let cert = pki.client("his-a", Some(&format!("institution:360100:{A}")), false);
    let ch = tls_channel(c.addr, &pki.ca(), Some(&cert)).await.unwrap();
    let mut cl = ClearingClient::new(ch.clone());
    let e = cl.settle_claim(claim_at("G-1", "INST1", B, 10)).await.unwrap_err();
    assert_eq!((e.code(), bad_fields(&e)), (Code::PermissionDenied, vec!["fixmedins_code".to_string()]), "{e:?}");
    let e = cl.preview_claim(claim_at("G-2", "INST1", B, 10)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let own = cl.settle_claim(claim_at("G-3", "INST1", A, 10)).await.unwrap().into_inner();
    assert_eq!(
        cl.get_settlement(pb::GetSettlementRequest { setl_id: own.setl_id.clone() }).await.unwrap().into_inner().setl_id,
        own.setl_id
    );
    let get = |id: &str| pb::GetSettlementRequest { setl_id: id.into() };
    let (h, m) = (cl.get_settlement(get(&setl_b)).await.unwrap_err(), cl.get_settlement(get(&missing_id)).await.unwrap_err());
    assert_eq!((h.code(), h.message().replace(&setl_b, "<id>")), (m.code(), m.message().replace(&missing_id, "<id>")));
    let rev = |id: &str| pb::ReverseClaimRequest { setl_id: id.into(), msgid: format!("G-REV-{id}"), ..Default::default() };
    let (h, m) = (cl.reverse_claim(rev(&setl_a)).await, cl.reverse_claim(rev(&missing_id)).await.unwrap_err());
    assert!(h.is_ok(), "A reverses its own: {h:?}");
    let h = cl.reverse_claim(rev(&sb.setl("setl_id"))).await.unwrap_err();
    assert_eq!((h.code(), h.message().replace(&setl_b, "<id>")), (m.code(), m.message().replace(&missing_id, "<id>")));
    let visit = cl.get_visit(pb::GetVisitRequest { mdtrt_id: mdtrt_id.clone() }).await.unwrap_err();
    assert_eq!(visit.code(), Code::NotFound);
    // Reconciliation names its institution; the whole service location is the platform's.
    let mut n = NettingClient::new(ch.clone());
    let zero = || "0.00".to_string();
    let whole = pb::ReconcileTotalsRequest {
        clr_date: today.clone(),
        mdtrt_admdvs: "360100".into(),
        medfee_sumamt: zero(),
        fund_pay_sumamt: zero(),
        acct_pay: zero(),
        ..Default::default()
    };
    assert_eq!(n.reconcile_totals(whole.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let mine = pb::ReconcileTotalsRequest { fixmedins_code: A.into(), ..whole };
    let r = n.reconcile_totals(mine).await.unwrap().into_inner();
    assert_eq!(
        r.differences.iter().find(|d| d.field == "count").map(|d| d.ours.as_str()),
        Some("1"),
        "A's settlement, its reversal and G-3: {r:?}"
    );
    // An institution does not write the list (its own level least of all).
    let relist = pb::Institution {
        fixmedins_code: A.into(),
        fixmedins_name: "x".into(),
        fixmedins_type: "1".into(),
        hosp_lv: 1,
        ..Default::default()
    };
    assert_eq!(CatalogueClient::new(ch).upsert_institution(relist).await.unwrap_err().code(), Code::PermissionDenied);
    // A certificate naming an institution outside its region carries no identity.
    let bad = pki.client("his-x", Some(&format!("institution:420000:{A}")), false);
    let e =
        ClearingClient::new(tls_channel(c.addr, &pki.ca(), Some(&bad)).await.unwrap()).settle_claim(claim_at("G-4", "INST1", A, 10)).await;
    assert_eq!(e.unwrap_err().code(), Code::PermissionDenied);
}

/// A member of Suizhou with a (synthetic) resident ID number, filed for Jiangxi or not.
fn person(psn_no: &str, certno: &str, name: &str, filed: bool) -> pb::Member {
    let mut m = funded(member("421300", psn_no, "11", if filed { &["360000"] } else { &[] }), "100.00");
    (m.psn_cert_type, m.certno, m.psn_name) = ("01".into(), certno.into(), name.into());
    m
}

/// 1101 by certificate (issue 30): the national ways of naming a person (02 ID card, 03 social security
/// card, 01 e-voucher with its decoded number) find the member through an index of keyed hashes; the
/// service-location rule holds (an unfiled member, a wrong name and an unknown number are answered
/// alike); a changed certificate no longer finds the member; and no Redis key or index entry spells a
/// certificate number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_found_by_certificate_through_a_keyed_index() {
    const ID1: &str = "421302198503030012";
    const ID2: &str = "421302197007070029";
    const ID3: &str = "421302199912310036";
    const UNKNOWN: &str = "421302196001010047";
    let r = Redis::start();
    let c = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[("his_a", &format!("institution:{A}"), "360100")]);
    let g = Gateway::start(&c.url(), &paas, &[]);
    let his = His::new(&g.url(), "his_a");
    let anywhere = Where { insuplc_admdvs: String::new(), ..at(A) };
    registered(&c, &[person("CERT1", ID1, "张一", true), person("CERT2", ID2, "张二", false)]).await;

    let by = |kind: &str, no: &str, extra: serde_json::Value| {
        let mut data =
            json!({ "mdtrt_cert_type": kind, "mdtrt_cert_no": no, "card_sn": "", "psn_cert_type": "", "certno": "", "psn_name": "" });
        data.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "data": data })
    };
    let id_card = his.call("1101", "C-1", &anywhere, by("02", ID1, json!({}))).await.ok();
    let base = &id_card.output()["baseinfo"];
    assert_eq!((base["psn_no"].as_str(), base["certno"].as_str(), base["psn_name"].as_str()), (Some("CERT1"), Some(ID1), Some("张一")));
    assert_eq!((base["brdy"].as_str(), base["gend"].as_str()), (Some("1985-03-03"), Some("")), "brdy from the number; gend not on record");
    assert_eq!(id_card.output()["insuinfo"][0]["insuplc_admdvs"], "421300");
    let card = his.call("1101", "C-2", &anywhere, by("03", &ID1.to_lowercase(), json!({ "card_sn": "J0001" }))).await.ok();
    assert_eq!(card.output()["baseinfo"]["psn_no"], "CERT1");
    let voucher = his
        .call("1101", "C-3", &anywhere, by("01", "ecTokenXYZ", json!({ "psn_cert_type": "01", "certno": ID1, "psn_name": "张一" })))
        .await;
    assert_eq!(voucher.ok().output()["baseinfo"]["psn_no"], "CERT1");
    let no_card_sn = his.call("1101", "C-4", &anywhere, by("03", ID1, json!({}))).await;
    assert!(no_card_sn.err_msg().starts_with("input.data.card_sn:"), "{}", no_card_sn.body);

    // Unfiled, wrong name, unknown number: one answer, naming the field that carried the number.
    let unknown = his.call("1101", "C-5", &anywhere, by("02", UNKNOWN, json!({}))).await;
    assert_eq!(unknown.infcode(), -1);
    assert!(unknown.err_msg().starts_with("input.data.mdtrt_cert_no:"), "{}", unknown.body);
    let unfiled = his.call("1101", "C-6", &anywhere, by("02", ID2, json!({}))).await;
    let wrong_name = his.call("1101", "C-7", &anywhere, by("02", ID1, json!({ "psn_name": "李四" }))).await;
    for r in [&unfiled, &wrong_name] {
        assert_eq!(shape(r, "x"), shape(&unknown, "x"), "{}", r.body);
    }

    // A bad number is refused naming the field, without repeating it.
    let mut bad = person("CERT9", &ID1.replace("12", "13"), "张九", true);
    bad.certno.truncate(17);
    bad.certno.push('9');
    let st = c.registry().await.upsert_member(bad.clone()).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("certno") && !st.message().contains(&bad.certno[..17]), "{}", st.message());

    // A changed certificate: the old number finds nothing (its index entry is stale), the new one does.
    registered(&c, &[person("CERT1", ID3, "张一", true)]).await;
    let old = his.call("1101", "C-8", &anywhere, by("02", ID1, json!({}))).await;
    assert_eq!(shape(&old, "x"), shape(&unknown, "x"), "{}", old.body);
    let new = his.call("1101", "C-9", &anywhere, by("02", ID3, json!({}))).await.ok();
    assert_eq!(new.output()["baseinfo"]["psn_no"], "CERT1");

    // The index spells no number: keys are keyed hashes, entries are member keys.
    let keys = r.cli(&["--scan"]);
    let index: Vec<&str> = keys.lines().filter(|k| k.contains("member-identity:")).collect();
    assert_eq!(index.len(), 3, "three certificates indexed: {keys}");
    for k in &index {
        let entries = r.cli(&["HGETALL", k]);
        assert!(entries.contains("421300:CERT"), "{k}: {entries}");
        for id in [ID1, ID2, ID3] {
            assert!(!k.contains(id) && !entries.contains(id), "{k}: {entries}");
        }
    }
    assert!(![ID1, ID2, ID3].iter().any(|id| keys.contains(id)), "{keys}");
}
