//! The HTTP side: the national interface's one path, authentication of each call (auth.rs), the
//! dispatch on `infno` (tx/), the answer in the national envelope (envelope.rs); TLS, connection age
//! and the accept loop.

use crate::auth::{self, Authenticator, Nonces, Refusal};
use crate::envelope::{Answer, Envelope};
use crate::files::FileStore;
use crate::{envelope, paas, tx};
use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_rustls::rustls;
use tracing::Instrument;

/// The national interface's one path.
pub const CALL_SERVICE: &str = "/fsi/api/rsfComIfsService/callService";
pub use crate::limits::{HANDSHAKE_TIMEOUT, MAX_BODY_BYTES, MAX_IN_FLIGHT_PER_PAASID};

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The clearing service: http://host:port (plain text, loopback) or https://host:port (mutual TLS).
    #[arg(long, env = "GATEWAY_CLEARING", default_value = "http://127.0.0.1:50051")]
    pub clearing: String,
    /// The callers: TOML with one [[paas]] table per caller (paasid, token or token_file, role, admdvs).
    #[arg(long, env = "GATEWAY_PAAS")]
    pub paas: PathBuf,
    /// Serve plain HTTP. Refused unless the listen address is loopback.
    #[arg(long, env = "GATEWAY_PLAINTEXT")]
    pub plaintext: bool,
    /// Server certificate chain (PEM) for HTTPS.
    #[arg(long, env = "GATEWAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "GATEWAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA of client certificates (PEM); when given, every HTTPS client must present one.
    #[arg(long, env = "GATEWAY_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// CRLs of the client CA (PEM or DER): a revoked client certificate fails its handshake. Re-read when
    /// the file changes, or on SIGHUP.
    #[arg(long, env = "GATEWAY_TLS_CRL")]
    pub tls_crl: Option<PathBuf>,
    /// CA of clearing's server certificate (for an https:// --clearing).
    #[arg(long, env = "GATEWAY_CLEARING_TLS_CA")]
    pub clearing_tls_ca: Option<PathBuf>,
    /// The gateway's client certificate towards clearing (role `gateway`).
    #[arg(long, env = "GATEWAY_CLEARING_TLS_CERT")]
    pub clearing_tls_cert: Option<PathBuf>,
    #[arg(long, env = "GATEWAY_CLEARING_TLS_KEY")]
    pub clearing_tls_key: Option<PathBuf>,
    /// CRLs of clearing's CA: a clearing whose certificate is revoked is not called. Re-read when the
    /// file changes, or on SIGHUP.
    #[arg(long, env = "GATEWAY_CLEARING_TLS_CRL")]
    pub clearing_tls_crl: Option<PathBuf>,
    /// Redis shared by the replicas for used nonces (redis://host:port; several, comma-separated, are the
    /// seed nodes of a Redis Cluster); in memory when absent.
    #[arg(long = "redis-url", env = "GATEWAY_REDIS_URL", value_delimiter = ',')]
    pub redis_url: Vec<String>,
    /// Accepted distance of x-tif-timestamp from this server's clock, seconds.
    #[arg(long, env = "GATEWAY_TIMESTAMP_WINDOW", default_value_t = 300)]
    pub timestamp_window_secs: u64,
    /// How long one call may take, clearing included, seconds.
    #[arg(long, env = "GATEWAY_DEADLINE", default_value_t = 30)]
    pub deadline_secs: u64,
    /// Seconds a client has to send a request's headers (idle connections are closed after it).
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", default_value_t = crate::limits::HEADER_READ_TIMEOUT.as_secs())]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole body after its headers.
    #[arg(long, env = "GATEWAY_BODY_READ_TIMEOUT", default_value_t = crate::limits::BODY_READ_TIMEOUT.as_secs())]
    pub body_read_timeout_secs: u64,
    /// Connections open at once; beyond, new ones are closed at once.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = crate::limits::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Requests per second one paasid may make (all transactions); beyond: HTTP 429.
    #[arg(long, env = "GATEWAY_RATE_PER_PAASID", default_value_t = crate::limits::RATE_PER_PAASID)]
    pub rate_per_paasid: u32,
    /// Log format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: clearing_edge::telemetry::LogFormat,
}

struct Gateway {
    auth: Authenticator,
    clients: tx::Clients,
    deadline: Duration,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    body_timeout: Duration,
    rate: RateLimit,
}

/// Requests per paasid per second: a counter per paasid and second (a fixed window; a burst at a
/// second's edge may reach twice the rate for an instant, which a limit against floods tolerates).
struct RateLimit {
    per_second: u32,
    seen: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimit {
    /// Counts one request of `paasid` now; `false` when it is over the rate.
    fn admit(&self, paasid: &str) -> bool {
        let now = chrono::Utc::now().timestamp();
        let mut seen = self.seen.lock().expect("rate lock");
        if seen.len() > 100_000 {
            // Only authenticated paasids are counted, so this is a table of the callers; never unbounded.
            seen.retain(|_, (second, _)| *second == now);
        }
        let e = seen.entry(paasid.to_string()).or_insert((now, 0));
        if e.0 != now {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= self.per_second
    }
}

struct Metrics {
    requests: opentelemetry::metrics::Counter<u64>,
    duration: opentelemetry::metrics::Histogram<f64>,
}

/// `gateway.requests` {infno, infcode, http_status} and `gateway.request.duration` {infno}; infno is
/// one of the served ones or "other", so a caller cannot grow the label set.
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = opentelemetry::global::meter("national-gateway");
    Metrics {
        requests: m.u64_counter("gateway.requests").with_description("National-interface calls by infno and infcode").build(),
        duration: m
            .f64_histogram("gateway.request.duration")
            .with_unit("s")
            .with_boundaries(vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            .build(),
    }
});

fn infno_label(infno: &str) -> &'static str {
    tx::served().find(|s| *s == infno).unwrap_or("other")
}

fn respond(a: &Answer, refmsg_time: &str) -> Response {
    if let Some((name, bytes)) = &a.file {
        // 9102: the file itself (HIS programs write the body straight to disk).
        // The name as ASCII (others replaced) and, for a Chinese name, as UTF-8 too (RFC 6266/5987).
        let ascii: String = name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
        let encoded: String = name
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
        return (
            a.http,
            [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_DISPOSITION, disposition)],
            bytes.clone(),
        )
            .into_response();
    }
    let body = envelope::Body {
        infcode: a.infcode,
        inf_refmsgid: envelope::ref_msgid(),
        refmsg_time,
        respond_time: envelope::national_time(),
        err_msg: &a.err_msg,
        output: &a.output,
    };
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"infcode\":-1,\"err_msg\":\"internal error\"}".to_vec());
    (a.http, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], json).into_response()
}

async fn call_service(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    let received = envelope::national_time();
    let started = Instant::now();
    let span = tracing::info_span!(
        "callService",
        otel.kind = "server",
        infno = tracing::field::Empty,
        paasid = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    clearing_edge::telemetry::continue_trace(&span, &headers);
    let (answer, infno) = handle(&gw, &headers, body, &span).instrument(span.clone()).await;
    let label = infno_label(&infno);
    let code = answer.infcode.to_string();
    METRICS.requests.add(
        1,
        &[KeyValue::new("infno", label), KeyValue::new("infcode", code), KeyValue::new("http_status", answer.http.as_u16() as i64)],
    );
    METRICS.duration.record(started.elapsed().as_secs_f64(), &[KeyValue::new("infno", label)]);
    span.in_scope(|| {
        tracing::info!(
            infno = label,
            infcode = answer.infcode,
            http = answer.http.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    respond(&answer, &received)
}

/// Reads the body, at most `MAX_BODY_BYTES`; `None` when it is larger. A larger body is still read
/// (and dropped) up to twice the limit, so the refusal reaches the caller instead of a connection reset
/// while it is still sending; beyond that the connection is closed.
async fn read_body(body: Body) -> Option<Bytes> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return None };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > 2 * MAX_BODY_BYTES {
                return None;
            }
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(&data);
            }
        }
    }
    (seen <= MAX_BODY_BYTES).then(|| Bytes::from(buf))
}

/// Everything between the HTTP request and the national answer; returns the infno for the metrics.
async fn handle(gw: &Gateway, headers: &HeaderMap, body: Body, span: &tracing::Span) -> (Answer, String) {
    let too_large = || Answer::refused(StatusCode::PAYLOAD_TOO_LARGE, format!("body: larger than {MAX_BODY_BYTES} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > 2 * MAX_BODY_BYTES) {
        return (too_large(), String::new());
    }
    // The headers authenticate the caller before a byte of the body is read: a caller without a valid
    // signature costs nothing but its headers (the connection is closed after the refusal).
    let now = chrono::Utc::now().timestamp();
    let paas = match gw.auth.authenticate(headers, now).await {
        Ok(p) => p,
        Err((why, paasid)) => {
            tracing::warn!(target: "audit", paasid = paasid.as_deref().unwrap_or("-"), reason = %why.reason(), "authentication refused");
            // One answer for every authentication failure (which header was wrong helps only a prober);
            // the audit line keeps the reason. A nonce store away is not the caller's failure.
            let answer = if why == Refusal::NonceStoreUnavailable {
                Answer::refused(StatusCode::SERVICE_UNAVAILABLE, why.reason())
            } else if why == Refusal::TooManyNonces {
                // Only a caller with a valid signature gets this far.
                Answer::refused(StatusCode::TOO_MANY_REQUESTS, why.reason())
            } else {
                Answer::refused(StatusCode::UNAUTHORIZED, crate::auth::AUTHENTICATION_FAILED)
            };
            return (answer, String::new());
        }
    };
    span.record("paasid", paas.paasid.as_str());
    if !gw.rate.admit(&paas.paasid) {
        return (
            Answer::refused(StatusCode::TOO_MANY_REQUESTS, "more requests per second than this paasid may make; retry later"),
            String::new(),
        );
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // JSON, as the national interface has it; some HIS programs label the same JSON text/plain (9102).
    let ct_lower = ct.trim_start().to_ascii_lowercase();
    if !ct_lower.starts_with("application/json") && !ct_lower.starts_with("text/plain") {
        return (
            Answer::refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-type: must be application/json (or text/plain holding JSON), not {ct:?}"),
            ),
            String::new(),
        );
    }
    // A body that stalls or drips is cut off: at most `MAX_BODY_BYTES` held for `body_timeout`.
    let bytes = match tokio::time::timeout(gw.body_timeout, read_body(body)).await {
        Ok(Some(b)) => b,
        Ok(None) => return (too_large(), String::new()),
        Err(_) => {
            tracing::warn!(target: "audit", paasid = %paas.paasid, "body not received in time; connection closed");
            return (Answer::refused(StatusCode::REQUEST_TIMEOUT, "body: not received in time"), String::new());
        }
    };
    let mut json: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => return (Answer::refused(StatusCode::BAD_REQUEST, "body: must be a JSON object (the national envelope)"), String::new()),
        Err(e) => return (Answer::refused(StatusCode::BAD_REQUEST, format!("body: not JSON: {e}")), String::new()),
    };
    let env = match Envelope::parse(&mut json) {
        Ok(e) => e,
        Err(a) => {
            let infno = envelope::text(json.get("infno")).unwrap_or_default();
            return (a, infno);
        }
    };
    span.record("infno", env.infno.as_str());
    // A caller bound to institutions acts only as them (clearing checks the forwarded identity again).
    if !paas.acts_as(&env.fixmedins_code) {
        tracing::warn!(target: "audit", paasid = %paas.paasid, fixmedins_code = %env.fixmedins_code, infno = %env.infno, "acting as another institution refused");
        let a = Answer::refused(
            StatusCode::FORBIDDEN,
            format!("fixmedins_code: this caller may not act as institution {:?}", env.fixmedins_code),
        );
        return (a, env.infno);
    }
    let sem = {
        let mut m = gw.in_flight.lock().expect("in-flight lock");
        m.entry(paas.paasid.clone()).or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_PAASID))).clone()
    };
    let Ok(_slot) = sem.try_acquire_owned() else {
        let a = Answer::refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("more than {MAX_IN_FLIGHT_PER_PAASID} requests in flight for this paasid; retry later"),
        );
        return (a, env.infno);
    };
    let call = tx::Call { paas: &paas, env: &env, headers, deadline: gw.deadline };
    let answer = match tokio::time::timeout(gw.deadline, tx::dispatch(&gw.clients, &call)).await {
        Ok(a) => a,
        Err(_) => Answer::refused(StatusCode::GATEWAY_TIMEOUT, "no answer in time, retry with the same msgid"),
    };
    (answer, env.infno.clone())
}

async fn not_found() -> Response {
    let a = Answer::refused(StatusCode::NOT_FOUND, format!("path: the national interface is POST {CALL_SERVICE}"));
    respond(&a, &envelope::national_time())
}

/// HTTPS configuration, or `None` for plain HTTP (only on loopback, only with --plaintext).
fn server_tls(a: &ServeArgs) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => {
            if a.plaintext {
                anyhow::bail!("--plaintext and --tls-cert/--tls-key given together: choose one");
            }
            let (certs, key) = (clearing_edge::tls::pem_certs(c, "tls_cert")?, clearing_edge::tls::pem_key(k, "tls_key")?);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
            let builder = match &a.tls_client_ca {
                None if a.tls_crl.is_some() => anyhow::bail!("--tls-crl needs --tls-client-ca (the CRLs are of the client CA)"),
                None => builder.with_no_client_auth(),
                Some(ca) => builder.with_client_cert_verifier(clearing_edge::tls::reloading_client_verifier(ca, a.tls_crl.as_deref())?),
            };
            let mut cfg = builder.with_single_cert(certs, key).context("tls_cert/tls_key")?;
            cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            clearing_edge::tls::no_resumption(&mut cfg);
            Ok(Some(Arc::new(cfg)))
        }
        (None, None) if a.plaintext => {
            if !a.listen.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to serve plain HTTP on {}: plain text is only allowed on a loopback address; give --tls-cert and --tls-key",
                    a.listen
                );
            }
            tracing::warn!(addr = %a.listen, "plain HTTP on loopback: no TLS");
            Ok(None)
        }
        (None, None) => anyhow::bail!(
            "no transport security configured: give --tls-cert and --tls-key (HTTPS), or --plaintext on a loopback address for local use"
        ),
        _ => anyhow::bail!("HTTPS needs both --tls-cert and --tls-key"),
    }
}

/// The channel to clearing: lazy (the gateway starts, and answers 503, while clearing is away).
fn clearing_channel(a: &ServeArgs) -> anyhow::Result<tonic::transport::Channel> {
    match (&a.clearing_tls_ca, &a.clearing_tls_cert, &a.clearing_tls_key) {
        (Some(ca), Some(c), Some(k)) => {
            if !a.clearing.starts_with("https://") {
                anyhow::bail!("--clearing-tls-* given but --clearing is not https://");
            }
            clearing_edge::tls::ClientTls::new(ca, c, k, a.clearing_tls_crl.as_deref())?.channel(&a.clearing, Duration::from_secs(5))
        }
        (None, None, None) => {
            if a.clearing.starts_with("https://") {
                anyhow::bail!(
                    "an https:// --clearing needs --clearing-tls-ca, --clearing-tls-cert and --clearing-tls-key (the gateway's certificate, role gateway)"
                );
            }
            if a.clearing_tls_crl.is_some() {
                anyhow::bail!("--clearing-tls-crl needs --clearing-tls-ca, --clearing-tls-cert and --clearing-tls-key");
            }
            tracing::warn!(clearing = %a.clearing, "calling clearing in plain text: it authorizes the forwarded caller, but nothing proves this is the gateway");
            Ok(tonic::transport::Endpoint::from_shared(a.clearing.clone())
                .with_context(|| format!("--clearing {:?} is not a URL", a.clearing))?
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
                .connect_lazy())
        }
        _ => anyhow::bail!("give all of --clearing-tls-ca, --clearing-tls-cert and --clearing-tls-key"),
    }
}

/// Serves the national interface until SIGTERM or Ctrl-C.
pub async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let _telemetry = clearing_edge::telemetry::init("national-gateway", a.log_format)?;
    let paas = paas::load_and_watch(&a.paas)?;
    tracing::info!(callers = paas.read().expect("paas lock").len(), "paas table loaded; watching it for changes");
    let tls = server_tls(&a)?;
    // Nonces and files (9101/9102) live in the same place: this process, or the replicas' Redis.
    let (nonces, files) = match a.redis_url.as_slice() {
        [] => {
            tracing::warn!("nonces and files are kept in this process: run one replica, or give --redis-url");
            (Nonces::memory(), FileStore::memory())
        }
        [url] => {
            let client = redis::Client::open(url.as_str()).context("--redis-url")?;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(2)));
            let c = redis::aio::ConnectionManager::new_with_config(client, cfg).await.context("--redis-url: cannot connect")?;
            (Nonces::redis(c.clone()), FileStore::redis(c))
        }
        seeds => {
            let client = redis::cluster::ClusterClient::builder(seeds.to_vec())
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(2))
                .build()
                .context("--redis-url")?;
            let c = client.get_async_connection().await.context("--redis-url: cannot connect to the cluster")?;
            (Nonces::cluster(c.clone()), FileStore::cluster(c))
        }
    };
    let gw = Arc::new(Gateway {
        auth: Authenticator { paas, window: Duration::from_secs(a.timestamp_window_secs), nonces },
        clients: tx::Clients { channel: crate::resend::Resending::new(clearing_channel(&a)?), files: Arc::new(files) },
        deadline: Duration::from_secs(a.deadline_secs.max(1)),
        in_flight: Mutex::new(HashMap::new()),
        body_timeout: Duration::from_secs(a.body_read_timeout_secs.max(1)),
        rate: RateLimit { per_second: a.rate_per_paasid.max(1), seen: Mutex::new(HashMap::new()) },
    });
    let app = axum::Router::new()
        .route(CALL_SERVICE, axum::routing::post(call_service))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(not_found)
        .with_state(gw);
    let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    println!("national-gateway listening on {addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, https = tls.is_some(), clearing = %a.clearing, "serving the national interface");
    let limits =
        ConnLimits { header_read: Duration::from_secs(a.header_read_timeout_secs.max(1)), max_connections: a.max_connections.max(1) };
    accept_loop(listener, tls.map(tokio_rustls::TlsAcceptor::from), app, limits, clearing_edge::server::shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Accepts connections until `shutdown`, then lets the open ones finish their requests (at most 10 s).
/// A connection lives at most `MAX_CONNECTION_AGE` (then it is closed gracefully after its request in
/// progress), so a client certificate revoked meanwhile meets the CRL at its next handshake.
/// What one connection may hold: how long it may take to send headers, and how many may be open.
struct ConnLimits {
    header_read: Duration,
    max_connections: usize,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Each connection task holds a sender; all dropped = all connections closed.
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_read);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, mostly: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Beyond the cap a connection is closed at once: it costs a socket for an instant, never a task.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let (builder, tls, stop, open) = (builder.clone(), tls.clone(), stop_rx.clone(), open_tx.clone());
        let header_read = limits.header_read;
        tokio::spawn(async move {
            let _open = (open, slot);
            let served = match tls {
                None => {
                    // A client that sends nothing is closed after the header timeout (hyper's own timer
                    // starts only once the protocol is known, which takes the client's first bytes).
                    match tokio::time::timeout(header_read, tcp.peek(&mut [0u8; 1])).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => {
                            tracing::debug!(%peer, "closed: nothing sent");
                            return;
                        }
                    }
                    serve_connection(&builder, TokioIo::new(tcp), service, stop).await
                }
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        // The same after the handshake: the first request's bytes within the header
                        // timeout, or the connection goes (what was read is served from the buffer).
                        let mut stream = tokio::io::BufReader::new(stream);
                        match tokio::time::timeout(header_read, tokio::io::AsyncBufReadExt::fill_buf(&mut stream)).await {
                            Ok(Ok(b)) if !b.is_empty() => {}
                            _ => {
                                tracing::debug!(%peer, "closed: nothing sent after the TLS handshake");
                                return;
                            }
                        }
                        serve_connection(&builder, TokioIo::new(stream), service, stop).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    tokio::select! {
        _ = open_rx.recv() => {},
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10 s; stopping"),
    }
}

/// One connection, closed gracefully when it reaches its maximum age or the gateway stops.
async fn serve_connection<IO>(
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    io: TokioIo<IO>,
    service: hyper_util::service::TowerToHyperService<axum::Router>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let age = tokio::time::sleep(clearing_edge::limits::MAX_CONNECTION_AGE);
    tokio::pin!(age);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            _ = &mut age => {
                if closing {
                    return Ok(());
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
                // Requests in flight get the grace period, then the connection goes (a client that
                // trickles its body forever does not keep it).
                age.as_mut().reset(tokio::time::Instant::now() + clearing_edge::limits::MAX_CONNECTION_AGE_GRACE);
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
                age.as_mut().reset(tokio::time::Instant::now() + clearing_edge::limits::MAX_CONNECTION_AGE_GRACE);
            }
        }
    }
}

pub fn sign(paasid: &str, token_file: &Path, curl: bool) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file).with_context(|| format!("token file {}", token_file.display()))?;
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = {
        use sha2::Digest;
        let seed = format!("{paasid}{}{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(), std::process::id());
        hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..12])
    };
    let headers = [
        (auth::H_PAASID, paasid.to_string()),
        (auth::H_TIMESTAMP, ts.clone()),
        (auth::H_NONCE, nonce.clone()),
        (auth::H_SIGNATURE, auth::signature(&ts, token.trim().as_bytes(), &nonce)),
    ];
    if curl {
        // One line of curl arguments without spaces inside a value (a paasid has none; the rest is
        // digits and hex), so that `$(…)` splits it into exactly these arguments.
        println!("{}", headers.iter().map(|(h, v)| format!("-H{h}:{v}")).collect::<Vec<_>>().join(" "));
    } else {
        for (h, v) in headers {
            println!("{h}: {v}");
        }
    }
    Ok(())
}
