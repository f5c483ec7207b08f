//! Building our gRPC servers: the limits every listener shares (a deadline for calls that bring none,
//! bounded streams per connection, keep-alive, TLS when configured), request spans and RPC metrics,
//! standard health checking and server reflection, accepted connections without Nagle's delay, and
//! the shutdown signal. Each server takes its listener and its shutdown future as arguments, so tests
//! start it on port 0 and stop it cleanly.

use crate::limits::{MAX_CALL_DURATION, MAX_CONNECTION_AGE, MAX_STREAMS_PER_CONNECTION};
use crate::rpc_metrics::RpcMetricsLayer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// A server builder with our limits, spans and metrics.
pub type Builder = tonic::transport::Server<tower::layer::util::Stack<RpcMetricsLayer, tower::layer::util::Identity>>;

/// A builder's routes, ready to serve (`serve`).
pub type Routes = tonic::transport::server::Router<tower::layer::util::Stack<RpcMetricsLayer, tower::layer::util::Identity>>;

/// Limits every listener shares: a deadline for calls that bring none, bounded streams per connection,
/// connections that live at most `MAX_CONNECTION_AGE` (so a revoked certificate meets the CRL again at
/// the next handshake).
pub fn builder() -> Builder {
    tonic::transport::Server::builder()
        .trace_fn(crate::telemetry::request_span)
        .timeout(MAX_CALL_DURATION)
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION as u32))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        // Graceful (GOAWAY, requests in flight finish); tonic's "grace" would instead cut the
        // connection at age + grace without a GOAWAY.
        .max_connection_age(MAX_CONNECTION_AGE)
        .layer(RpcMetricsLayer)
}

/// Serves `routes` on `listener` until `shutdown` resolves, then drains requests in flight: over mutual
/// TLS (our acceptor, with its reloading CRLs) when `tls` is given, plain text otherwise.
pub async fn serve(
    routes: Routes,
    listener: TcpListener,
    tls: Option<crate::tls::ServerTls>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    match tls {
        Some(tls) => routes.serve_with_incoming_shutdown(crate::tls::tls_incoming(listener, tls), shutdown).await?,
        None => routes.serve_with_incoming_shutdown(incoming(listener), shutdown).await?,
    }
    Ok(())
}

type Reflection<T> = tonic_reflection::server::v1::ServerReflectionServer<T>;

/// Both reflection versions: grpcurl and older tools still ask v1alpha first.
#[allow(clippy::type_complexity)]
pub fn reflection() -> anyhow::Result<(
    Reflection<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// Accepted connections with Nagle's algorithm off. tonic sets TCP_NODELAY only on listeners it binds
/// itself; without it, small responses wait for the peer's delayed ACK (~40 ms per request).
pub fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
