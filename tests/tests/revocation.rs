//! Credentials withdrawn while everything runs (issue 33): a client certificate revoked by a CRL is
//! refused at its next handshake (clearing's listener, and the adapter's), others keep working; a region
//! adapter whose server certificate is revoked is no longer called by clearing; a paasid removed from
//! the gateway's paas file is refused, a rotated token works with both tokens during the overlap and only
//! the new one after; a broken file (CRL or paas) is refused whole and the one in force stays. Real
//! processes, a PKI made here (rcgen signs the certificates and CRLs; `openssl ca -gencrl` makes one CRL
//! as an operator would), files changed on disk.

use proto::v1 as pb;
use serde_json::json;
use std::path::Path;
use tests::gateway::*;
use tests::pki::{Pem, Pki, tls_channel};
use tests::*;
use tonic::Code;

/// Whether `who` gets a call through to the TLS listener at `addr` (a handshake refused, or a call
/// failed, is `false`).
async fn gets_through(addr: std::net::SocketAddr, pki: &Pki, who: &Pem) -> bool {
    match tls_channel(addr, &pki.ca(), Some(who)).await {
        Err(_) => false,
        Ok(ch) => CatalogueClient::new(ch).list_regions(pb::ListRegionsRequest {}).await.is_ok(),
    }
}

/// The same at a region adapter's listener (its RegionAdapter service).
async fn adapter_gets_through(addr: std::net::SocketAddr, pki: &Pki, who: &Pem) -> bool {
    match tls_channel(addr, &pki.ca(), Some(who)).await {
        Err(_) => false,
        Ok(ch) => proto::v1::region_adapter_client::RegionAdapterClient::new(ch).list_regions(pb::ListRegionsRequest {}).await.is_ok(),
    }
}

/// `clearing serve` over mutual TLS with `--tls-crl` (an empty CRL at first): the service, the directory
/// holding the CRL file, and the file.
fn clearing_with_crl(pki: &Pki) -> (Clearing, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let crl = dir.path().join("clients.crl");
    std::fs::write(&crl, pki.crl(1, &[], false)).unwrap();
    let mut serve = pki.server_args(&pki.server("clearing"));
    serve.extend(["--tls-crl".into(), path(&crl)]);
    (Clearing::start_with(&args(&serve)), dir, crl)
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_while_the_service_runs_is_refused_at_its_next_handshake() {
    let pki = Pki::new("clearinghouse");
    let (c, _dir, crl) = clearing_with_crl(&pki);
    let hubei = pki.client("hubei-platform", Some("platform:420000"), false);
    let jiangxi = pki.client("jiangxi-platform", Some("platform:360000"), false);
    assert!(gets_through(c.addr, &pki, &hubei).await && gets_through(c.addr, &pki, &jiangxi).await);
    let jiangxi_open = tls_channel(c.addr, &pki.ca(), Some(&jiangxi)).await.unwrap();

    // Hubei's key is stolen: its certificate is revoked in the file the service watches.
    std::fs::write(&crl, pki.crl(2, &[&hubei], false)).unwrap();
    eventually("the revoked certificate is refused", PATIENCE, || async { (!gets_through(c.addr, &pki, &hubei).await).then_some(()) })
        .await;
    assert!(gets_through(c.addr, &pki, &jiangxi).await, "another certificate keeps working");
    let still = CatalogueClient::new(jiangxi_open.clone()).list_regions(pb::ListRegionsRequest {}).await;
    assert!(still.is_ok(), "an open connection of another caller was not dropped: {still:?}");
    let log = c.log();
    assert!(log.contains("client certificate CRL reloaded") && log.contains("serials_added"), "an audit line of the reload:\n{log}");
    assert!(log.contains("client certificate refused at the handshake"), "the refusal is audited:\n{log}");

    // A broken file is refused whole: the CRLs in force stay.
    std::fs::write(&crl, b"-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n").unwrap();
    eventually("the broken CRL file is refused", PATIENCE, || async {
        c.log().contains("client certificate CRL refused; the previous CRLs stay in force").then_some(())
    })
    .await;
    assert!(!gets_through(c.addr, &pki, &hubei).await, "the revocation stayed in force");
    assert!(gets_through(c.addr, &pki, &jiangxi).await);

    // DER works too, and SIGHUP reads the file at once.
    std::fs::write(&crl, pki.crl(3, &[&hubei, &jiangxi], true)).unwrap();
    c.signal("HUP");
    eventually("the DER CRL revokes the second certificate", PATIENCE, || async {
        (!gets_through(c.addr, &pki, &jiangxi).await).then_some(())
    })
    .await;

    // A CRL made by openssl (`openssl ca -gencrl`) revoking Hubei alone: Jiangxi is reinstated.
    std::fs::write(&crl, pki.openssl_crl(&[&hubei])).unwrap();
    eventually("openssl's CRL is in force", PATIENCE, || async { gets_through(c.addr, &pki, &jiangxi).await.then_some(()) }).await;
    assert!(!gets_through(c.addr, &pki, &hubei).await, "openssl's CRL revokes Hubei");
}

/// The adapter's listener checks its callers against a CRL, and clearing checks the adapter's server
/// certificate against the adapters' CRL: an adapter whose certificate is revoked is not called once
/// its connection is made again (here: the adapter restarts), and the claim is answered UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_stops_calling_an_adapter_whose_certificate_is_revoked() {
    let pki = Pki::new("clearinghouse");
    let dir = tempfile::tempdir().unwrap();
    let (clients_crl, adapters_crl) = (dir.path().join("clients.crl"), dir.path().join("adapters.crl"));
    std::fs::write(&clients_crl, pki.crl(1, &[], false)).unwrap();
    std::fs::write(&adapters_crl, pki.crl(1, &[], true)).unwrap();
    let adapter_cert = pki.server("hubei-adapter");
    let mut adapter_args = pki.server_args(&adapter_cert);
    adapter_args.extend(["--tls-crl".into(), path(&clients_crl)]);
    let mut adapter = Adapter::start_with(&["421300"], &args(&adapter_args));
    let me = pki.client("clearing", Some("clearing:000000"), false);
    let mut serve = pki.server_args(&pki.server("clearing"));
    serve.extend([
        "--route".into(),
        format!("421300=https://localhost:{}", adapter.addr.port()),
        "--adapter-tls-ca".into(),
        path(&pki.ca()),
        "--adapter-tls-cert".into(),
        path(&me.cert),
        "--adapter-tls-key".into(),
        path(&me.key),
        "--adapter-tls-crl".into(),
        path(&adapters_crl),
    ]);
    let c = Clearing::start_with(&args(&serve));
    let hubei = tls_channel(c.addr, &pki.ca(), Some(&pki.client("hubei-platform", Some("platform:420000"), false))).await.unwrap();
    RegistryClient::new(hubei.clone()).upsert_member(member("421300", "SZREV1", "11", &["360000"])).await.unwrap();
    let jiangxi = tls_channel(c.addr, &pki.ca(), Some(&pki.client("jiangxi-platform", Some("platform:360000"), false))).await.unwrap();
    let mut cl = ClearingClient::new(jiangxi);
    // Suizhou's policy runs on the adapter: the claim goes through it.
    cl.settle_claim(claim("REV-1", "421300", "SZREV1", "360100", 2, "2024-03-10", 300)).await.unwrap();
    // A client of the adapter revoked there is refused at the adapter's own door.
    let stranger = pki.client("ops", Some("operator:000000"), false);
    assert!(adapter_gets_through(adapter.addr, &pki, &stranger).await);
    std::fs::write(&clients_crl, pki.crl(2, &[&stranger], false)).unwrap();
    eventually("the adapter refuses the revoked client", PATIENCE, || async {
        (!adapter_gets_through(adapter.addr, &pki, &stranger).await).then_some(())
    })
    .await;

    // The adapter's own certificate is revoked; once its connection is made again, clearing refuses it.
    std::fs::write(&adapters_crl, pki.crl(2, &[&adapter_cert], true)).unwrap();
    eventually("clearing reloads the adapters' CRL", PATIENCE, || async {
        c.log().contains("server certificate CRL reloaded").then_some(())
    })
    .await;
    adapter.stop();
    adapter.restart();
    let rev2 = claim("REV-2", "421300", "SZREV1", "360100", 2, "2024-03-11", 300);
    let refused = cl.settle_claim(rev2.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // The CRL, not the restart, refused it: with the certificate reinstated the same claim settles.
    std::fs::write(&adapters_crl, pki.crl(3, &[], true)).unwrap();
    eventually("the adapter is called again once its certificate is reinstated", PATIENCE, || {
        let (mut cl, rev2) = (cl.clone(), rev2.clone());
        async move { cl.settle_claim(rev2).await.ok() }
    })
    .await;
}

/// The token a rotation hands a HIS next.
const NEXT: &str = "rotated-token-of-his_1-9876543210";

fn paas_text(callers: &[(&str, &str, Option<&str>)]) -> String {
    let mut s = String::new();
    for (id, token, next) in callers {
        s += &format!("[[paas]]\npaasid = \"{id}\"\ntoken = \"{token}\"\nrole = \"platform\"\nadmdvs = \"360000\"\n");
        if let Some(n) = next {
            s += &format!("next_token = \"{n}\"\n");
        }
        s += "\n";
    }
    s
}

/// 1312 (a catalogue page): the cheapest signed call; `true` when the gateway let it through.
async fn accepted(his: &His) -> bool {
    let w = Where { mdtrtarea_admvs: "360100".into(), insuplc_admdvs: "421300".into(), fixmedins_code: "H36010200001".into() };
    let r = his.call("1312", &format!("ROT-{}", nonce()), &w, json!({ "data": { "page_num": "1", "page_size": "1" } })).await;
    match r.status {
        200 => true,
        401 => false,
        other => panic!("unexpected HTTP {other}: {:?}", r.body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_paasid_and_a_rotated_token_take_effect_without_a_restart() {
    let c = Clearing::start();
    let dir = tempfile::tempdir().unwrap();
    let paas = dir.path().join("paas.toml");
    let old = token_of("his_1");
    std::fs::write(&paas, paas_text(&[("his_1", &old, None), ("his_2", &token_of("his_2"), None)])).unwrap();
    let g = Gateway::start(&c.url(), &paas, &[]);
    let (with_old, with_next, other) =
        (His::with_token(&g.url(), "his_1", &old), His::with_token(&g.url(), "his_1", NEXT), His::new(&g.url(), "his_2"));
    assert!(accepted(&with_old).await && !accepted(&with_next).await && accepted(&other).await);

    // The overlap: the successor is added; both tokens work.
    std::fs::write(&paas, paas_text(&[("his_1", &old, Some(NEXT)), ("his_2", &token_of("his_2"), None)])).unwrap();
    eventually("the successor token works", PATIENCE, || async { accepted(&with_next).await.then_some(()) }).await;
    assert!(accepted(&with_old).await, "the old token still works during the overlap");

    // The rotation ends: only the new token.
    std::fs::write(&paas, paas_text(&[("his_1", NEXT, None), ("his_2", &token_of("his_2"), None)])).unwrap();
    eventually("the old token is refused", PATIENCE, || async { (!accepted(&with_old).await).then_some(()) }).await;
    assert!(accepted(&with_next).await);

    // A broken file (a token too short) is refused whole: everything in force stays.
    std::fs::write(&paas, paas_text(&[("his_1", "short", None)])).unwrap();
    eventually("the broken paas file is refused", PATIENCE, || async {
        g.log().contains("paas file refused; the callers in force stay").then_some(())
    })
    .await;
    assert!(g.log().contains("paas[0].token"), "the error names the problem:\n{}", g.log());
    assert!(accepted(&with_next).await && accepted(&other).await);

    // his_2 leaves: refused from then on, his_1 unaffected.
    std::fs::write(&paas, paas_text(&[("his_1", NEXT, None)])).unwrap();
    eventually("the removed paasid is refused", PATIENCE, || async { (!accepted(&other).await).then_some(()) }).await;
    assert!(accepted(&with_next).await);

    let log = g.log();
    assert!(log.contains("paas file reloaded") && log.contains("rotated=[\"his_1\"]") && log.contains("removed=[\"his_2\"]"), "{log}");
    for secret in [old.as_str(), NEXT, "short"] {
        assert!(!log.contains(secret), "a token reached the log");
    }
}

/// A revoked certificate cannot ride a resumed TLS session (a resumption carries the certificate of the
/// first handshake without checking it again): our listeners resume nothing, so every connection of a
/// client that keeps its session cache is a full handshake, checked against the CRLs in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_a_full_handshake_so_a_revocation_cannot_be_resumed_around() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let pki = Pki::new("clearinghouse");
    let (c, _dir, _crl) = clearing_with_crl(&pki);
    let me = pki.client("hubei-platform", Some("platform:420000"), false);
    // One client configuration, with rustls's default session cache, for every connection.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.ca()).unwrap()).unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&me.cert).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(&me.key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        // Read the server's first frames (and any session ticket) before the next connection.
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), tokio::io::AsyncReadExt::read(&mut tls, &mut buf)).await;
        kinds.push(tls.get_ref().1.handshake_kind());
    }
    assert!(kinds.iter().all(|k| *k == Some(rustls::HandshakeKind::Full)), "a session was resumed: {kinds:?}");
}
