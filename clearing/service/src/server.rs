//! Starting the clearing service's gRPC server: its services plus standard health checking and server
//! reflection (the builder and its limits are `clearing_edge::server`). Takes its listener and
//! shutdown signal as arguments so tests start it on port 0 and stop it cleanly.

use crate::core::Clearinghouse;
use crate::grpc::Api;
use crate::store::Store;
use clearing_edge::authz::Gate;
use clearing_edge::limits::{MAX_MESSAGE_BYTES, MAX_NETTING_ANSWER_BYTES};
use clearing_edge::server::{builder, reflection, serve as serve_routes};
use clearing_edge::tls::ListenerSecurity;
use proto::v1::catalogue_server::CatalogueServer;
use proto::v1::clearing_server::ClearingServer;
use proto::v1::netting_server::NettingServer;
use proto::v1::registry_server::RegistryServer;
use proto::v1::supervision_server::SupervisionServer;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

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
    health.set_serving::<SupervisionServer<Api<S>>>().await;
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    let routes = builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ClearingServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(RegistryServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(CatalogueServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        // A month's indicators of every institution of the country is a large answer.
        .add_service(
            SupervisionServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(256 * 1024 * 1024),
        )
        // Reconciliation batches are larger than claims: 16 MiB per streamed message.
        .add_service(
            NettingServer::new(api).max_decoding_message_size(16 * 1024 * 1024).max_encoding_message_size(MAX_NETTING_ANSWER_BYTES),
        );
    serve_routes(routes, listener, security.tls, shutdown).await
}
