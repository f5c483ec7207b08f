//! Transport security of both binaries: mutual TLS (rustls) on every listener, or plain text — only on
//! a loopback address and only when asked for with `--plaintext`. The service refuses to start
//! otherwise. Also the client side: `clearing` calling `https://` region adapters with its own
//! certificate, and the operator CLI.

use crate::authz::AuthMode;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

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
    /// Serve plain text without client authentication. Refused unless the listen address is loopback.
    #[arg(long, env = "CLEARING_PLAINTEXT")]
    pub plaintext: bool,
}

/// How a listener is secured.
pub struct ListenerSecurity {
    pub tls: Option<ServerTlsConfig>,
    pub mode: AuthMode,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

/// Decides how to listen on `addr`: mTLS when the three files are given; plain text only when
/// `plaintext` is set and `addr` is loopback; otherwise an error that says what to give.
pub fn listener_security(
    cert: Option<&Path>,
    key: Option<&Path>,
    client_ca: Option<&Path>,
    plaintext: bool,
    addr: SocketAddr,
) -> anyhow::Result<ListenerSecurity> {
    match (cert, key, client_ca) {
        (Some(c), Some(k), Some(ca)) => {
            if plaintext {
                anyhow::bail!("--plaintext and TLS files given together: choose one");
            }
            let identity = Identity::from_pem(read(c, "tls_cert")?, read(k, "tls_key")?);
            let tls = ServerTlsConfig::new()
                .identity(identity)
                .client_ca_root(Certificate::from_pem(read(ca, "tls_client_ca")?))
                .client_auth_optional(false)
                .timeout(HANDSHAKE_TIMEOUT);
            Ok(ListenerSecurity { tls: Some(tls), mode: AuthMode::MutualTls })
        }
        (None, None, None) if plaintext => {
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

/// Client TLS for outgoing calls: the CA that issued the server's certificate, and our own identity.
pub fn client_tls(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<ClientTlsConfig> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca, "CA")?))
        .identity(Identity::from_pem(read(cert, "client certificate")?, read(key, "client key")?))
        .timeout(HANDSHAKE_TIMEOUT))
}

/// The operator CLI's TLS from `CLEARING_CA`, `CLEARING_CLIENT_CERT`, `CLEARING_CLIENT_KEY`.
pub fn cli_tls_from_env() -> anyhow::Result<Option<ClientTlsConfig>> {
    let get = |k: &str| std::env::var_os(k).map(PathBuf::from);
    match (get("CLEARING_CA"), get("CLEARING_CLIENT_CERT"), get("CLEARING_CLIENT_KEY")) {
        (Some(ca), Some(c), Some(k)) => Ok(Some(client_tls(&ca, &c, &k)?)),
        (None, None, None) => Ok(None),
        _ => anyhow::bail!("set all of CLEARING_CA, CLEARING_CLIENT_CERT and CLEARING_CLIENT_KEY for an https:// address"),
    }
}
