//! Issue 29 item 3: the gateway holds under hostile clients, over real sockets. The headers authenticate
//! before a byte of the body is read; a stalled or dripping body, idle connections, a flood without a
//! token and a caller over its rate cost bounded time and memory; a signed caller is answered
//! throughout. The gateway runs with 1-second header and body timeouts so the cuts come quickly.
//! And towards clearing: a call whose connection closes unanswered is sent again, settling once.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::gateway::*;
use tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PAASID: &str = "jiangxi_platform";

fn start(header_secs: &str, extra: &[&str]) -> (Clearing, Gateway, tempfile::TempDir) {
    let c = Clearing::start();
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[(PAASID, "platform", "360000")]);
    let mut args = vec!["--header-read-timeout-secs", header_secs, "--body-read-timeout-secs", "1"];
    args.extend_from_slice(extra);
    let g = Gateway::start(&c.url(), &paas, &args);
    (c, g, dir)
}

fn nanchang() -> Where {
    Where { mdtrtarea_admvs: "360100".into(), insuplc_admdvs: "421300".into(), fixmedins_code: "H36010000001".into() }
}

/// A signed 9001 answered, and how long it took.
async fn signed_call_answers(g: &Gateway, msgid: &str) -> Duration {
    let t = Instant::now();
    let r = His::new(&g.url(), PAASID).call("9001", msgid, &nanchang(), json!({ "signIn": { "opter_no": "001" } })).await;
    assert_eq!((r.status, r.infcode()), (200, 0), "{:?}", r.body);
    t.elapsed()
}

/// The request line and headers of a POST announcing `length` bytes, signed or not.
fn head(length: usize, signed: bool) -> Vec<u8> {
    let mut s = format!("POST {CALL_SERVICE} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n");
    if signed {
        for (k, v) in x_tif(PAASID, &token_of(PAASID), chrono::Utc::now().timestamp(), &nonce()) {
            s += &format!("{k}: {v}\r\n");
        }
    }
    s += "\r\n";
    s.into_bytes()
}

/// Everything the gateway sends on `tcp` until it closes it, waiting at most `patience`; `None` when the
/// connection is still open then.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(tcp: &mut S, patience: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(patience, async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|_| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_stall_or_drip_and_callers_without_a_token_cost_bounded_time() {
    let (_c, g, _dir) = start("1", &[]);
    // Without a token: refused on its headers, the 4 MiB it announced never read, the connection closed.
    let mut tcp = TcpStream::connect(g.addr).await.unwrap();
    tcp.write_all(&head(4 * 1024 * 1024 - 1, false)).await.unwrap();
    let _ = tcp.write_all(&vec![b' '; 60 * 1024]).await;
    let answer = until_closed(&mut tcp, Duration::from_secs(10)).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Signed, announcing 4 MB, sending 60 KB, then stalling: 408 and closed after the body timeout.
    let mut tcp = TcpStream::connect(g.addr).await.unwrap();
    tcp.write_all(&head(4_000_000, true)).await.unwrap();
    tcp.write_all(&vec![b' '; 60 * 1024]).await.unwrap();
    let t = Instant::now();
    let answer = until_closed(&mut tcp, Duration::from_secs(10)).await.expect("a stalled body is cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(5), "cut after {:?}", t.elapsed());

    // Signed, dripping a byte every 50 ms: cut off the same way, however long it would go on.
    let tcp = TcpStream::connect(g.addr).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    wr.write_all(&head(100_000, true)).await.unwrap();
    let drip = tokio::spawn(async move {
        let mut sent = 0;
        while wr.write_all(b" ").await.is_ok() && sent < 2_000 {
            sent += 1;
            tokio::time::sleep(Duration::from_millis(50)).await; // the client's pace, not a wait for an outcome
        }
        sent
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "a dripping body is cut off");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&got));
    let sent = drip.await.unwrap();
    assert!(sent < 2_000, "the gateway closed the connection while the client still dripped ({sent} bytes)");

    // A connection that sends nothing is closed after the header timeout.
    let mut idle = TcpStream::connect(g.addr).await.unwrap();
    assert!(until_closed(&mut idle, Duration::from_secs(10)).await.is_some(), "an idle connection is closed");
    // And the signed caller was never kept waiting.
    assert!(signed_call_answers(&g, "EDGE-1").await < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_a_flood_without_a_token_leave_signed_callers_answered() {
    let (_c, g, _dir) = start("1", &[]);
    // 2,000 idle connections.
    let mut idle = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(g.addr).await.unwrap());
    }
    assert!(signed_call_answers(&g, "EDGE-2").await < Duration::from_secs(10), "answered beside 2,000 idle connections");
    // A flood of unsigned requests (a client that keeps its connections): every one refused, 401.
    let flood: Vec<_> = (0..8)
        .map(|i| {
            let g_url = g.url();
            tokio::spawn(async move {
                let his = His::with_token(&g_url, PAASID, "not-the-token-000000");
                let mut refused = 0;
                for k in 0..50 {
                    let headers =
                        x_tif(PAASID, "not-the-token-000000", chrono::Utc::now().timestamp(), &format!("flood-{i}-{k}-{}", nonce()));
                    if his.post(&headers, "application/json", b"{}".to_vec()).await.status == 401 {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    let during = signed_call_answers(&g, "EDGE-3").await;
    let mut refused = 0;
    for f in flood {
        refused += f.await.unwrap();
    }
    assert_eq!(refused, 400, "every unsigned request is refused");
    assert!(during < Duration::from_secs(10), "a signed caller was answered during the flood in {during:?}");
    // The idle connections were closed by the header timeout.
    for tcp in idle.iter_mut().take(20) {
        assert!(until_closed(tcp, Duration::from_secs(10)).await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_a_new_connection_is_closed_at_once() {
    let (_c, g, _dir) = start("60", &["--max-connections", "50"]);
    let mut open = Vec::new();
    for _ in 0..50 {
        open.push(TcpStream::connect(g.addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(g.addr).await.unwrap();
    let _ = extra.write_all(&head(2, true)).await;
    assert_eq!(until_closed(&mut extra, Duration::from_secs(10)).await.as_deref(), Some(""), "closed without an answer");
    eventually("the refusal logged", PATIENCE, || std::future::ready(g.log().contains("connection refused: too many open").then_some(())))
        .await;
    // A slot freed is a connection served again.
    drop(open.pop());
    eventually("served again", PATIENCE, || {
        let url = g.url();
        async move {
            let r = His::new(&url, PAASID)
                .post_try(&x_tif(PAASID, &token_of(PAASID), chrono::Utc::now().timestamp(), &nonce()), b"{}".to_vec())
                .await;
            r.map(|r| r.status != 0).unwrap_or(false).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_gets_429_and_then_is_answered_again() {
    let (_c, g, _dir) = start("10", &["--rate-per-paasid", "20"]);
    let his = His::new(&g.url(), PAASID);
    let started = chrono::Utc::now().timestamp();
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let his = his.clone();
            tokio::spawn(async move { his.call("9001", &format!("RATE-{i}"), &nanchang(), json!({})).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    let seconds = (chrono::Utc::now().timestamp() - started + 1) as usize;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(admitted <= 20 * seconds && admitted < 60, "{admitted} admitted in {seconds} s: {statuses:?}");
    // The next second admits it again.
    eventually("admitted again", PATIENCE, || {
        let his = his.clone();
        async move { (his.call("9002", &format!("RATE-OK-{}", nonce()), &nanchang(), json!({})).await.status == 200).then_some(()) }
    })
    .await;
}

/// Over HTTPS, a client that completes the TLS handshake and then sends nothing is closed after the
/// header timeout like a plain one; one that sends its request after the handshake is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_client_silent_after_the_handshake_is_closed() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let pki = tests::pki::Pki::new("gateway-edge");
    let server = pki.server("gateway");
    let (_c, g, _dir) = start("1", &["--tls-cert", server.cert.to_str().unwrap(), "--tls-key", server.key.to_str().unwrap()]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.ca()).unwrap()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let connect = || async {
        let tcp = TcpStream::connect(g.addr).await.unwrap();
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
    };
    let mut silent = connect().await;
    assert_eq!(
        until_closed(&mut silent, Duration::from_secs(10)).await.as_deref(),
        Some(""),
        "closed without a word after the header timeout"
    );
    // A request sent after the handshake is served (what was read while waiting is not lost).
    let mut talking = connect().await;
    talking.write_all(&head(2, false)).await.unwrap();
    talking.write_all(b"{}").await.unwrap();
    let answer = until_closed(&mut talking, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// A TCP proxy to `upstream` whose connections carry bytes both ways, except that once `cut` is set the
/// next bytes from the gateway (a request) close that connection unanswered, as a GOAWAY race or a
/// clearing restart does. Counts the connections it accepted.
async fn cutting_proxy(upstream: std::net::SocketAddr, cut: Arc<AtomicBool>, accepted: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut up) = TcpStream::connect(upstream).await else { return };
                let (mut dr, mut dw) = down.split();
                let (mut ur, mut uw) = up.split();
                let (mut from_gw, mut from_clearing) = ([0u8; 16384], [0u8; 16384]);
                loop {
                    tokio::select! {
                        r = dr.read(&mut from_gw) => match r {
                            Ok(n) if n > 0 && !cut.swap(false, Ordering::SeqCst) => {
                                if uw.write_all(&from_gw[..n]).await.is_err() { return }
                            }
                            _ => return,
                        },
                        r = ur.read(&mut from_clearing) => match r {
                            Ok(n) if n > 0 => if dw.write_all(&from_clearing[..n]).await.is_err() { return },
                            _ => return,
                        },
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_connection_to_clearing_closes_unanswered_is_sent_again_and_settles_once() {
    let c = Clearing::start();
    registered(&c, &[funded(member("421300", "GWCUT1", "11", &["360000"]), "300.00")]).await;
    let (cut, accepted) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let upstream = c.url().trim_start_matches("http://").parse().unwrap();
    let proxy = cutting_proxy(upstream, cut.clone(), accepted.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[(PAASID, "platform", "360000")]);
    let g = Gateway::start(&format!("http://{proxy}"), &paas, &[]);
    let jx = His::new(&g.url(), PAASID);
    let claim = example_claim("GWCUT-1", "GWCUT1");
    let w = Where::of(&claim);
    let member_query = json!({ "data": { "psn_no": "GWCUT1" } });
    // The gateway's connection to clearing is up (a read went through it).
    jx.call("1101", "cut-q1", &w, member_query.clone()).await.ok();
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The settlement's request closes that connection unanswered: the gateway sends it again on a new
    // one, and the HIS gets the settlement, not a 503/504.
    cut.store(true, Ordering::SeqCst);
    let done = jx.call("2207", &claim.msgid, &w, national_input(&claim, false)).await.ok();
    assert!(!cut.load(Ordering::SeqCst), "the request reached the cut");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "sent again on a new connection");
    assert!(g.log().contains("sending the call again"), "{}", g.log());
    // Settled once: the member's year has one visit, and a resend of the msgid is the same settlement.
    let m = jx.call("1101", "cut-q2", &w, member_query).await.ok();
    assert_eq!(m.output()["cuminfo"][0]["visits"], 1);
    let again = jx.call("2207", &claim.msgid, &w, national_input(&claim, false)).await.ok();
    assert_eq!(again.setl("setl_id"), done.setl("setl_id"));
}
