//! Starting the gRPC server: the clearinghouse services plus standard health checking and server
//! reflection. Takes its listener and shutdown signal as arguments so tests start it on port 0 and
//! stop it cleanly.

use crate::adapter::AdapterApi;
use crate::authz::Gate;
use crate::grpc::Api;
use crate::limits::{MAX_CALL_DURATION, MAX_MESSAGE_BYTES, MAX_STREAMS_PER_CONNECTION};
use crate::settle::Clearinghouse;
use crate::store::Store;
use crate::tls::ListenerSecurity;
use proto::v1::catalogue_server::CatalogueServer;
use proto::v1::clearing_server::ClearingServer;
use proto::v1::netting_server::NettingServer;
use proto::v1::region_adapter_server::RegionAdapterServer;
use proto::v1::registry_server::RegistryServer;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Serves until `shutdown` resolves, then drains requests in flight.
pub async fn serve<S: Store>(
    core: Arc<Clearinghouse<S>>,
    listener: TcpListener,
    security: ListenerSecurity,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let api = Api { core, gate: Arc::new(Gate::new(security.mode)) };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ClearingServer<Api<S>>>().await;
    health.set_serving::<RegistryServer<Api<S>>>().await;
    health.set_serving::<CatalogueServer<Api<S>>>().await;
    health.set_serving::<NettingServer<Api<S>>>().await;
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    builder(security.tls)?
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ClearingServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(RegistryServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(CatalogueServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        // Reconciliation batches are larger than claims: 16 MiB per streamed message.
        .add_service(NettingServer::new(api).max_decoding_message_size(16 * 1024 * 1024).max_encoding_message_size(64 * 1024 * 1024))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// `region-adapter serve`: the `RegionAdapter` service plus health and reflection.
pub async fn serve_adapter(
    api: AdapterApi,
    listener: TcpListener,
    security: ListenerSecurity,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let api = api.with_gate(Gate::new(security.mode));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RegionAdapterServer<AdapterApi>>().await;
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    builder(security.tls)?
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(RegionAdapterServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// Limits every listener shares: a deadline for calls that bring none, bounded streams per
/// connection, TLS when configured.
fn builder(
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<tonic::transport::Server<tower::layer::util::Stack<crate::metrics::RpcMetricsLayer, tower::layer::util::Identity>>> {
    let mut b = tonic::transport::Server::builder()
        .trace_fn(crate::telemetry::request_span)
        .timeout(MAX_CALL_DURATION)
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION as u32))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)));
    if let Some(t) = tls {
        b = b.tls_config(t)?;
    }
    Ok(b.layer(crate::metrics::RpcMetricsLayer))
}

type Reflection<T> = tonic_reflection::server::v1::ServerReflectionServer<T>;

/// Both reflection versions: grpcurl and older tools still ask v1alpha first.
#[allow(clippy::type_complexity)]
fn reflection() -> anyhow::Result<(
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
