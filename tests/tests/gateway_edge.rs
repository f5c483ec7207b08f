//! Issue 29 item 3: the gateway holds under hostile clients, over real sockets. The headers authenticate
//! before a byte of the body is read; a stalled or dripping body, idle connections, a flood without a
//! token and a caller over its rate cost bounded time and memory; a signed caller is answered
//! throughout. The gateway runs with 1-second header and body timeouts so the cuts come quickly.
//! And towards clearing: a call whose connection closes unanswered is sent again, settling once.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
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

/// What the proxy does to the next call (`Cut`): nothing, drop the call's request unforwarded (clearing
/// never sees it), or forward it and drop clearing's answer (clearing settled it; the gateway never hears).
const PASS: u8 = 0;
const DROP_REQUEST: u8 = 1;
const DROP_ANSWER: u8 = 2;

/// Whether a chunk from clearing starts the HEADERS frame of an answer, following the HTTP/2 frames
/// across chunks (`partial`: a frame header's first bytes; `skip`: the payload left of the current frame).
fn answer_begins(chunk: &[u8], partial: &mut Vec<u8>, skip: &mut usize) -> bool {
    let (mut i, mut begins) = (0, false);
    while i < chunk.len() {
        if *skip > 0 {
            let n = (*skip).min(chunk.len() - i);
            (i, *skip) = (i + n, *skip - n);
            continue;
        }
        partial.push(chunk[i]);
        i += 1;
        if partial.len() == 9 {
            let len = (partial[0] as usize) << 16 | (partial[1] as usize) << 8 | partial[2] as usize;
            let stream = u32::from_be_bytes([partial[5], partial[6], partial[7], partial[8]]) & 0x7fff_ffff;
            begins |= partial[3] == 0x1 && stream != 0;
            (*skip, *partial) = (len, Vec::new());
        }
    }
    begins
}

/// A TCP proxy to `upstream` whose connections carry bytes both ways, except that the call made while
/// `cut` is set loses its request or its answer, and its connection closes, as a GOAWAY race or a
/// clearing restart does. Counts the connections it accepted.
async fn cutting_proxy(upstream: std::net::SocketAddr, cut: Arc<AtomicU8>, accepted: Arc<AtomicUsize>) -> std::net::SocketAddr {
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
                let (mut partial, mut skip) = (Vec::new(), 0usize);
                loop {
                    tokio::select! {
                        r = dr.read(&mut from_gw) => match r {
                            Ok(n) if n > 0 => {
                                if cut.compare_exchange(DROP_REQUEST, PASS, Ordering::SeqCst, Ordering::SeqCst).is_ok() { return }
                                if uw.write_all(&from_gw[..n]).await.is_err() { return }
                            }
                            _ => return,
                        },
                        r = ur.read(&mut from_clearing) => match r {
                            Ok(n) if n > 0 => {
                                if answer_begins(&from_clearing[..n], &mut partial, &mut skip)
                                    && cut.compare_exchange(DROP_ANSWER, PASS, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                                {
                                    return;
                                }
                                if dw.write_all(&from_clearing[..n]).await.is_err() { return }
                            }
                            _ => return,
                        },
                    }
                }
            });
        }
    });
    addr
}

/// The visits of GWCUT1's year, read through the gateway (1101).
async fn visits(jx: &His, w: &Where, msgid: &str) -> i64 {
    let m = jx.call("1101", msgid, w, json!({ "data": { "psn_no": "GWCUT1" } })).await.ok();
    m.output()["cuminfo"].as_array().map_or(0, |years| years.iter().map(|y| y["visits"].as_i64().unwrap_or(0)).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_connection_to_clearing_closes_unanswered_is_sent_again_and_settles_once() {
    let c = Clearing::start();
    registered(&c, &[funded(member("421300", "GWCUT1", "11", &["360000"]), "300.00")]).await;
    let (cut, accepted) = (Arc::new(AtomicU8::new(PASS)), Arc::new(AtomicUsize::new(0)));
    let upstream = c.url().trim_start_matches("http://").parse().unwrap();
    let proxy = cutting_proxy(upstream, cut.clone(), accepted.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let paas = paas_file(dir.path(), &[(PAASID, "platform", "360000")]);
    let g = Gateway::start(&format!("http://{proxy}"), &paas, &[]);
    let jx = His::new(&g.url(), PAASID);
    let w = Where::of(&example_claim("GWCUT-0", "GWCUT1"));
    // The gateway's connection to clearing is up (a read went through it).
    assert_eq!(visits(&jx, &w, "cut-q0").await, 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // A settlement whose request is lost with its connection (clearing never saw it), then one whose
    // answer is (clearing settled it): each is sent again on a new connection, and the HIS gets the
    // settlement, not a 500 or a 503.
    for (n, how) in [(1, DROP_REQUEST), (2, DROP_ANSWER)] {
        let claim = example_claim(&format!("GWCUT-{n}"), "GWCUT1");
        cut.store(how, Ordering::SeqCst);
        let done = jx.call("2207", &claim.msgid, &w, national_input(&claim, false)).await.ok();
        assert_eq!(cut.load(Ordering::SeqCst), PASS, "call {n} met the cut");
        assert_eq!(accepted.load(Ordering::SeqCst), 1 + n, "call {n} was sent again on a new connection");
        // Settled once: a resend of the msgid is the same settlement, and the year counts one visit more.
        let again = jx.call("2207", &claim.msgid, &w, national_input(&claim, false)).await.ok();
        assert_eq!(again.setl("setl_id"), done.setl("setl_id"));
        assert_eq!(visits(&jx, &w, &format!("cut-q{n}")).await, n as i64);
    }
    assert_eq!(g.log().matches("sending the call again").count(), 2, "{}", g.log());
}
