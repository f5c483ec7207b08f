//! `service RegionAdapter` served by `region-adapter serve`: the engine over the rule packs in force,
//! behind the same gate, limits and telemetry as `clearing` (the shared edge).

use crate::catalogue;
use crate::local::{local_apply_policy, local_price};
use crate::wire::{outcome_pb, parse_policy_request, parse_price_request, priced_pb};
use clearing_edge::authz::{Action, AuthMode, Gate};
use clearing_edge::limits::MAX_MESSAGE_BYTES;
use clearing_edge::server::{builder, reflection, serve as serve_routes};
use clearing_edge::tls::ListenerSecurity;
use proto::v1 as pb;
use proto::v1::region_adapter_server::{RegionAdapter, RegionAdapterServer};
use region_adapter::{LineInput, RuleSet};
use std::future::Future;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Request, Response, Status};

/// `RegionAdapter` over the rule packs in force (replaced whole on reload).
#[derive(Clone)]
pub struct AdapterApi {
    rules: Arc<RwLock<Arc<RuleSet>>>,
    gate: Arc<Gate>,
}

impl AdapterApi {
    pub fn new(rules: RuleSet) -> AdapterApi {
        AdapterApi { rules: Arc::new(RwLock::new(Arc::new(rules))), gate: Arc::new(Gate::new(AuthMode::PlaintextLoopback)) }
    }
    /// The same rules (reloads reach both) behind another gate.
    pub fn with_gate(self, gate: Gate) -> AdapterApi {
        AdapterApi { rules: self.rules, gate: Arc::new(gate) }
    }
    fn enter<T>(&self, req: &Request<T>, rpc: &str, action: Action<'_>) -> Result<OwnedSemaphorePermit, Status> {
        self.gate.enter(req, rpc, action).map(|(_, p)| p).map_err(Status::from)
    }
    fn snapshot(&self) -> Arc<RuleSet> {
        self.rules.read().expect("rules lock").clone()
    }
    /// Replaces the rule packs; requests in flight keep the set they started with.
    pub fn replace(&self, rules: RuleSet) {
        *self.rules.write().expect("rules lock") = Arc::new(rules);
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// At debug level: the deadline and trace context a call arrived with (no request content).
fn log_call<T>(rpc: &str, req: &Request<T>) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let md = req.metadata();
        let get = |h: &str| md.get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        tracing::debug!(rpc, grpc_timeout = %get("grpc-timeout"), traceparent = %get("traceparent"), "adapter call");
    }
}

#[tonic::async_trait]
impl RegionAdapter for AdapterApi {
    async fn price_lines(&self, req: Request<pb::PriceLinesRequest>) -> Reply<pb::PriceLinesResponse> {
        let _slot = self.enter(&req, "PriceLines", Action::AdapterCompute)?;
        log_call("price_lines", &req);
        let rules = self.snapshot();
        let r = (|| {
            let (mdtrt, date, lines) = parse_price_request(req.get_ref(), &|a| rules.region(a).is_some())?;
            let inputs: Vec<LineInput<'_>> =
                lines.iter().map(|l| LineInput { code: &l.code, qty: l.qty, unit_price: l.unit_price, amount_fen: l.amount_fen }).collect();
            local_price(&rules, mdtrt, date, &inputs).map(|p| priced_pb(&p))
        })();
        r.map(Response::new).map_err(Status::from)
    }

    async fn apply_policy(&self, req: Request<pb::ApplyPolicyRequest>) -> Reply<pb::ApplyPolicyResponse> {
        let _slot = self.enter(&req, "ApplyPolicy", Action::AdapterCompute)?;
        log_call("apply_policy", &req);
        let rules = self.snapshot();
        let r = (|| {
            let p = parse_policy_request(req.get_ref(), &|a| rules.region(a).is_some())?;
            local_apply_policy(&rules, &p.call()).map(|o| outcome_pb(&o))
        })();
        r.map(Response::new).map_err(Status::from)
    }

    async fn list_regions(&self, req: Request<pb::ListRegionsRequest>) -> Reply<pb::ListRegionsResponse> {
        let _slot = self.enter(&req, "ListRegions", Action::ReadCatalogue)?;
        let rules = self.snapshot();
        let regions = rules.regions.values().map(|p| catalogue::region_pb(p, "local".into())).collect();
        Ok(Response::new(pb::ListRegionsResponse { regions, routes: Vec::new() }))
    }

    async fn get_policy(&self, req: Request<pb::GetPolicyRequest>) -> Reply<pb::Policy> {
        let _slot = self.enter(&req, "GetPolicy", Action::ReadCatalogue)?;
        catalogue::get_policy(&self.snapshot(), req.get_ref()).map(Response::new).map_err(Status::from)
    }

    async fn list_catalogue_items(&self, req: Request<pb::ListCatalogueItemsRequest>) -> Reply<pb::ListCatalogueItemsResponse> {
        let _slot = self.enter(&req, "ListCatalogueItems", Action::ReadCatalogue)?;
        catalogue::list_catalogue_items(&self.snapshot(), req.get_ref()).map(Response::new).map_err(Status::from)
    }
}

/// `region-adapter serve`: the `RegionAdapter` service plus health and reflection.
pub async fn serve(
    api: AdapterApi,
    listener: TcpListener,
    security: ListenerSecurity,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let api = api.with_gate(Gate::new(security.mode));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RegionAdapterServer<AdapterApi>>().await;
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    let routes = builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(RegionAdapterServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES));
    serve_routes(routes, listener, security.tls, shutdown).await
}
