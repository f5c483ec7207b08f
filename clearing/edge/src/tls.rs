//! Transport security of our servers and clients: mutual TLS (rustls) on every listener, or plain text —
//! only on a loopback address and only when asked for with `--plaintext`. The service refuses to start
//! otherwise. Also the client side: `clearing` calling `https://` region adapters and the gateway calling
//! `clearing`, each with its own certificate, and the operator CLI.
//!
//! Credentials can be withdrawn while a server runs (issue 33): with `--tls-crl FILE` (one or several
//! CRLs of the CA, PEM or DER) every handshake checks the peer's certificate against the CRLs in force,
//! and the file is read again when it changes (polled every `CREDENTIAL_RELOAD_POLL`) or on SIGHUP; a
//! file that does not parse is refused whole and the previous CRLs stay in force. Connections live at
//! most `MAX_CONNECTION_AGE`, so a certificate revoked while its connection is open meets the CRL at its
//! next handshake. Our clients check the server's chain against the CRLs the same way.

use crate::authz::AuthMode;
use crate::limits::{CREDENTIAL_RELOAD_POLL, MAX_PENDING_HANDSHAKES};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A TLS handshake that has not finished after this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Listener security flags, shared by `clearing serve` and `region-adapter serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Server certificate chain (PEM).
    #[arg(long, env = "CLEARING_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "CLEARING_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA that issues client certificates (PEM); every client must present one.
    #[arg(long, env = "CLEARING_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Certificate revocation lists of the client CA (PEM or DER, one or several): a revoked client
    /// certificate fails its handshake. Re-read when the file changes, or on SIGHUP.
    #[arg(long, env = "CLEARING_TLS_CRL")]
    pub tls_crl: Option<PathBuf>,
    /// Serve plain text without client authentication. Refused unless the listen address is loopback.
    #[arg(long, env = "CLEARING_PLAINTEXT")]
    pub plaintext: bool,
}

/// How a listener is secured.
pub struct ListenerSecurity {
    pub tls: Option<ServerTls>,
    pub mode: AuthMode,
}

/// A mutual-TLS listener's configuration: the acceptor (ALPN `h2`) and its reloadable client verifier.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file.
pub fn pem_certs(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(&read(path, what)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{what} {}: not PEM certificates: {e}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{what} {}: no certificate in it", path.display());
    Ok(certs)
}

/// The private key of a PEM file.
pub fn pem_key(path: &Path, what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(&read(path, what)?).map_err(|e| anyhow::anyhow!("{what} {}: not a PEM private key: {e}", path.display()))
}

/// A CA file as trust roots, with the subjects (raw DER names) of its certificates: a CRL must be
/// issued by one of them.
struct Ca {
    roots: Arc<rustls::RootCertStore>,
    subjects: Vec<Vec<u8>>,
}

fn ca(path: &Path, what: &str) -> anyhow::Result<Ca> {
    let mut roots = rustls::RootCertStore::empty();
    let mut subjects = Vec::new();
    for c in pem_certs(path, what)? {
        let (_, parsed) = x509_parser::parse_x509_certificate(c.as_ref()).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
        subjects.push(parsed.subject().as_raw().to_vec());
        roots.add(c).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    }
    Ok(Ca { roots: Arc::new(roots), subjects })
}

/// The CRLs of a file's bytes (PEM blocks `X509 CRL`, or one DER CRL), with the serial numbers they
/// revoke (hex, for audit lines). Every CRL must parse and be issued by one of `issuers` (the CA's
/// subjects): a CRL of another CA would revoke nothing here, silently.
pub fn parse_crls(bytes: &[u8], issuers: &[Vec<u8>]) -> anyhow::Result<(Vec<CertificateRevocationListDer<'static>>, BTreeSet<String>)> {
    let pem: Vec<_> =
        CertificateRevocationListDer::pem_slice_iter(bytes).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("not PEM CRLs: {e}"))?;
    let crls = if pem.is_empty() { vec![CertificateRevocationListDer::from(bytes.to_vec())] } else { pem };
    let mut serials = BTreeSet::new();
    for (i, crl) in crls.iter().enumerate() {
        let (_, parsed) = x509_parser::parse_x509_crl(crl.as_ref()).map_err(|e| anyhow::anyhow!("CRL {i}: not a CRL: {e}"))?;
        anyhow::ensure!(
            issuers.iter().any(|s| s.as_slice() == parsed.issuer().as_raw()),
            "CRL {i}: issued by {}, not by the CA it is given for",
            parsed.issuer()
        );
        serials.extend(parsed.iter_revoked_certificates().map(|r| r.raw_serial_as_string()));
    }
    Ok((crls, serials))
}

/// CRLs in force, read again from their file while running; `apply` builds what uses them.
struct CrlFile {
    path: PathBuf,
    /// Subjects of the CA the CRLs must come from.
    issuers: Vec<Vec<u8>>,
    /// The file's bytes last seen (applied, or refused), so a change is noticed once.
    seen: Vec<u8>,
    serials: BTreeSet<String>,
    what: &'static str,
}

impl CrlFile {
    fn load(
        path: &Path,
        what: &'static str,
        issuers: Vec<Vec<u8>>,
    ) -> anyhow::Result<(CrlFile, Vec<CertificateRevocationListDer<'static>>)> {
        let bytes = read(path, what)?;
        let (crls, serials) = parse_crls(&bytes, &issuers).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
        tracing::info!(target: "audit", file = %path.display(), crls = crls.len(), revoked = serials.len(), "{what} in force");
        crate::rpc_metrics::credentials_in_force(what, serials.len());
        Ok((CrlFile { path: path.to_path_buf(), issuers, seen: bytes, serials, what }, crls))
    }

    /// Reads the file; when it changed, `apply` gets the new CRLs. A file that fails (unreadable, not a
    /// CRL, refused by `apply`) leaves the previous CRLs in force, with one error line naming the problem.
    fn reload(&mut self, apply: &mut dyn FnMut(Vec<CertificateRevocationListDer<'static>>) -> anyhow::Result<()>) {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %e, "{} unreadable; the previous CRLs stay in force", self.what);
                return;
            }
        };
        if bytes == self.seen {
            return;
        }
        self.seen = bytes;
        let applied = parse_crls(&self.seen, &self.issuers).and_then(|(crls, serials)| apply(crls).map(|()| serials));
        match applied {
            Ok(serials) => {
                let added: Vec<&String> = serials.difference(&self.serials).collect();
                let removed: Vec<&String> = self.serials.difference(&serials).collect();
                tracing::info!(
                    target: "audit",
                    file = %self.path.display(),
                    revoked = serials.len(),
                    serials_added = ?added,
                    serials_removed = ?removed,
                    "{} reloaded",
                    self.what
                );
                crate::rpc_metrics::credentials_in_force(self.what, serials.len());
                self.serials = serials;
            }
            Err(e) => tracing::error!(
                file = %self.path.display(),
                error = %format!("{e:#}"),
                "{} refused; the previous CRLs stay in force",
                self.what
            ),
        }
    }

    /// Watches the file in the background (every `CREDENTIAL_RELOAD_POLL`, and at once on SIGHUP).
    fn watch(mut self, mut apply: impl FnMut(Vec<CertificateRevocationListDer<'static>>) -> anyhow::Result<()> + Send + 'static) {
        crate::reload::every_tick_or_hangup(CREDENTIAL_RELOAD_POLL, move || self.reload(&mut apply));
    }
}

/// The client verifier of a listener: webpki's, rebuilt whenever the CRLs change. Handshakes in
/// progress keep the verifier they started with.
#[derive(Debug)]
pub struct ReloadingClientVerifier {
    current: RwLock<Arc<dyn ClientCertVerifier>>,
    /// The CA subjects offered to clients (from the roots, which do not change).
    hints: Vec<DistinguishedName>,
}

fn client_verifier(
    roots: &Arc<rustls::RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut b = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
    if !crls.is_empty() {
        // The leaf is what a CRL of our single-level PKI names; a chain through a CA without a CRL here
        // is not refused for that alone.
        b = b.with_crls(crls).only_check_end_entity_revocation().allow_unknown_revocation_status();
    }
    Ok(b.build()?)
}

impl ReloadingClientVerifier {
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.current.read().expect("verifier lock").clone()
    }
}

impl ClientCertVerifier for ReloadingClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = self.current().verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &r {
            let subject = crate::authz::subject_of_cert(end_entity.as_ref());
            tracing::warn!(target: "audit", subject = %subject, reason = %e, "client certificate refused at the handshake");
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// A reloading client verifier for `client_ca`, with the CRLs of `crl` when given (watched from now on).
pub fn reloading_client_verifier(client_ca: &Path, crl: Option<&Path>) -> anyhow::Result<Arc<ReloadingClientVerifier>> {
    let Ca { roots, subjects } = ca(client_ca, "tls_client_ca")?;
    let (file, crls) = match crl {
        Some(p) => {
            let (f, c) = CrlFile::load(p, "client certificate CRL", subjects)?;
            (Some(f), c)
        }
        None => (None, Vec::new()),
    };
    let verifier = Arc::new(ReloadingClientVerifier { current: RwLock::new(client_verifier(&roots, crls)?), hints: roots.subjects() });
    if let Some(file) = file {
        let v = verifier.clone();
        file.watch(move |crls| {
            *v.current.write().expect("verifier lock") = client_verifier(&roots, crls)?;
            Ok(())
        });
    }
    Ok(verifier)
}

/// No TLS session resumption on our listeners: a resumed session carries the client certificate of its
/// first handshake without verifying it again, so a revoked certificate would keep working through
/// tickets. Every handshake is a full one, checked against the CRLs in force.
pub fn no_resumption(cfg: &mut rustls::ServerConfig) {
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
}

/// Decides how to listen on `addr`: mTLS when the three files are given (and the CRL file when given);
/// plain text only when `plaintext` is set and `addr` is loopback; otherwise an error that says what to
/// give.
pub fn listener_security(t: &TlsArgs, addr: SocketAddr) -> anyhow::Result<ListenerSecurity> {
    match (&t.tls_cert, &t.tls_key, &t.tls_client_ca) {
        (Some(c), Some(k), Some(ca)) => {
            if t.plaintext {
                anyhow::bail!("--plaintext and TLS files given together: choose one");
            }
            let verifier = reloading_client_verifier(ca, t.tls_crl.as_deref())?;
            let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_client_cert_verifier(verifier)
                .with_single_cert(pem_certs(c, "tls_cert")?, pem_key(k, "tls_key")?)
                .map_err(|e| anyhow::anyhow!("tls_cert/tls_key: {e}"))?;
            cfg.alpn_protocols = vec![b"h2".to_vec()];
            no_resumption(&mut cfg);
            Ok(ListenerSecurity {
                tls: Some(ServerTls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)) }),
                mode: AuthMode::MutualTls,
            })
        }
        (None, None, None) if t.plaintext => {
            if t.tls_crl.is_some() {
                anyhow::bail!("--tls-crl given without TLS: a CRL needs --tls-cert, --tls-key and --tls-client-ca");
            }
            if !addr.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to serve plain text on {addr}: plain text is only allowed on a loopback address; give --tls-cert, --tls-key and --tls-client-ca"
                );
            }
            tracing::warn!(%addr, "plain text on loopback: no TLS, no client authentication, every caller may call everything");
            Ok(ListenerSecurity { tls: None, mode: AuthMode::PlaintextLoopback })
        }
        (None, None, None) => anyhow::bail!(
            "no transport security configured: give --tls-cert, --tls-key and --tls-client-ca (mutual TLS), or --plaintext on a loopback address for local use"
        ),
        _ => anyhow::bail!("mutual TLS needs all three of --tls-cert, --tls-key and --tls-client-ca"),
    }
}

/// Accepted TLS connections of `listener`: each handshake runs on its own task (at most
/// `MAX_PENDING_HANDSHAKES` at once, each within `HANDSHAKE_TIMEOUT`), so a slow or refused client holds
/// up nobody. The stream ends when the server stops taking connections.
pub fn tls_incoming(
    listener: TcpListener,
    tls: ServerTls,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => s.expect("never closed"),
                _ = tx.closed() => return,
            };
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors, mostly: pause rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let (tx, acceptor) = (tx.clone(), tls.acceptor.clone());
            tokio::spawn(async move {
                let _slot = slot;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Client TLS for our outgoing gRPC calls (gateway → clearing, clearing → remote adapters): the CA of
/// the server's certificate, the CRLs of that CA when given (watched like a listener's), and our own
/// certificate. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<RwLock<Arc<rustls::ClientConfig>>>,
}

fn client_config(
    roots: &Arc<rustls::RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut v = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider());
    if !crls.is_empty() {
        v = v.with_crls(crls).only_check_end_entity_revocation().allow_unknown_revocation_status();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(v.build()?)
        .with_client_auth_cert(certs.to_vec(), key.clone_key())
        .map_err(|e| anyhow::anyhow!("client certificate/key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    // Every connection verifies the server's chain against the CRLs in force (see `no_resumption`).
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

impl ClientTls {
    /// From the server's CA, our certificate and key, and optionally the CA's CRLs.
    pub fn new(ca: &Path, cert: &Path, key: &Path, crl: Option<&Path>) -> anyhow::Result<ClientTls> {
        let Ca { roots, subjects } = self::ca(ca, "CA")?;
        let (certs, key) = (pem_certs(cert, "client certificate")?, pem_key(key, "client key")?);
        let (file, crls) = match crl {
            Some(p) => {
                let (f, c) = CrlFile::load(p, "server certificate CRL", subjects)?;
                (Some(f), c)
            }
            None => (None, Vec::new()),
        };
        let tls = ClientTls { config: Arc::new(RwLock::new(client_config(&roots, crls, &certs, &key)?)) };
        if let Some(file) = file {
            let config = tls.config.clone();
            file.watch(move |crls| {
                *config.write().expect("client tls lock") = client_config(&roots, crls, &certs, &key)?;
                Ok(())
            });
        }
        Ok(tls)
    }

    /// A lazy channel to `url` (`https://host:port`) over this TLS, with our clients' usual settings
    /// (no Nagle delay, HTTP/2 keep-alive): every new connection verifies the server's chain against
    /// the CRLs in force then.
    pub fn channel(&self, url: &str, connect_timeout: Duration) -> anyhow::Result<tonic::transport::Channel> {
        let uri: tonic::transport::Uri = url.parse().map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
        anyhow::ensure!(uri.scheme_str() == Some("https"), "{url}: TLS needs an https:// address");
        let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("{url}: no host"))?.clone();
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let name = ServerName::try_from(host.clone()).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        // tonic would add its own TLS to an https:// endpoint: it is given the plain-text form, and the
        // connector below speaks TLS itself.
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let config = self.config.clone();
        let connector = tower::service_fn(move |_: tonic::transport::Uri| {
            let (host, name, config) = (host.clone(), name.clone(), config.read().expect("client tls lock").clone());
            async move {
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                let _ = tcp.set_nodelay(true);
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        });
        Ok(endpoint.connect_with_connector_lazy(connector))
    }
}

/// The operator CLI's TLS (tonic's own; the CLI does not watch CRLs): the CA that issued the server's
/// certificate, and our own identity.
fn tonic_client_tls(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<ClientTlsConfig> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca, "CA")?))
        .identity(Identity::from_pem(read(cert, "client certificate")?, read(key, "client key")?))
        .timeout(HANDSHAKE_TIMEOUT))
}

/// The operator CLI's TLS from `CLEARING_CA`, `CLEARING_CLIENT_CERT`, `CLEARING_CLIENT_KEY`.
pub fn cli_tls_from_env() -> anyhow::Result<Option<ClientTlsConfig>> {
    let get = |k: &str| std::env::var_os(k).map(PathBuf::from);
    match (get("CLEARING_CA"), get("CLEARING_CLIENT_CERT"), get("CLEARING_CLIENT_KEY")) {
        (Some(ca), Some(c), Some(k)) => Ok(Some(tonic_client_tls(&ca, &c, &k)?)),
        (None, None, None) => Ok(None),
        _ => anyhow::bail!("set all of CLEARING_CA, CLEARING_CLIENT_CERT and CLEARING_CLIENT_KEY for an https:// address"),
    }
}
