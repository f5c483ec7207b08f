//! Where each region's rules are evaluated: the routing table. Pricing goes to the service location's
//! adapter, policy to the insured region's adapter, each either in process (`local`, the bundled or
//! `--rules` packs) or a remote `region-adapter` over gRPC. A route names a region (`421300`) or a
//! province (`420000`, covering every `42xxxx`); the longest match wins and anything unmatched is
//! local. The table and the rule packs are swapped whole on reload; each request works on one
//! snapshot from start to end.

use crate::routing::remote::{CallCtx, RemoteAdapter};
use chrono::NaiveDate;
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self as wire, Violations};
use clearing_edge::tls::ClientTls;
use proto::v1 as pb;
use region_adapter::{Admdvs, LineInput, RuleSet};
use region_adapter_server::catalogue;
pub use region_adapter_server::local::{PolicyCall, PolicyOutcome, PricedClaim, local_apply_policy, local_price};
use region_adapter_server::wire as adapter;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One line of the routing table as configured: `421300 = "local"`, `420000 = "http://hubei:50061"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub admdvs: String,
    pub target: String,
}

impl RouteSpec {
    /// `ADMDVS=TARGET` (the `--route` flag).
    pub fn parse_flag(s: &str) -> Result<RouteSpec, String> {
        let (a, t) = s.split_once('=').ok_or_else(|| format!("route {s:?}: expected ADMDVS=local or ADMDVS=http://host:port"))?;
        Ok(RouteSpec { admdvs: a.trim().into(), target: t.trim().into() })
    }
}

/// Where a route sends its regions.
#[derive(Debug, Clone)]
pub enum Target {
    Local,
    Remote(RemoteAdapter),
}

#[derive(Debug, Clone)]
struct Route {
    admdvs: Admdvs,
    /// Digits of the code that must match: 2 for a province, 4 for a city, 6 for a district.
    digits: u32,
    target: Target,
}

impl Route {
    fn matches(&self, a: Admdvs) -> bool {
        let scale = 10u32.pow(6 - self.digits);
        self.admdvs.as_u32() / scale == a.as_u32() / scale
    }
}

/// One snapshot: the local rule packs and the routing table.
#[derive(Debug)]
pub struct Routing {
    pub rules: Arc<RuleSet>,
    /// Longest prefix first.
    routes: Vec<Route>,
}

const LOCAL: Target = Target::Local;

impl Routing {
    /// Where `a`'s rules are served.
    pub fn target(&self, a: Admdvs) -> &Target {
        self.routes.iter().find(|r| r.matches(a)).map_or(&LOCAL, |r| &r.target)
    }

    /// Whether a claim may name `a`: a local region must have a pack loaded; a remote region is
    /// judged by its adapter (which answers INVALID_ARGUMENT for a region it does not serve).
    pub fn knows(&self, a: Admdvs) -> bool {
        match self.target(a) {
            Target::Local => self.rules.region(a).is_some(),
            Target::Remote(_) => true,
        }
    }

    /// "local" or the endpoint.
    pub fn route_name(&self, a: Admdvs) -> String {
        match self.target(a) {
            Target::Local => "local".into(),
            Target::Remote(r) => r.endpoint().into(),
        }
    }

    /// Builds a table from its specs, reusing the clients (and connections) of `previous` for
    /// endpoints that stay.
    fn build(rules: Arc<RuleSet>, specs: &[RouteSpec], previous: Option<&Routing>, tls: Option<&ClientTls>) -> Result<Routing, String> {
        let mut reuse: HashMap<String, RemoteAdapter> = HashMap::new();
        if let Some(p) = previous {
            for r in &p.routes {
                if let Target::Remote(a) = &r.target {
                    reuse.insert(a.endpoint().to_string(), a.clone());
                }
            }
        }
        let mut routes: Vec<Route> = Vec::with_capacity(specs.len());
        for s in specs {
            let admdvs = Admdvs::parse(&s.admdvs)
                .filter(|a| *a != Admdvs::CENTRAL)
                .ok_or_else(|| format!("routes.{}: not a 6-digit region or province code", s.admdvs))?;
            let n = admdvs.as_u32();
            let digits = if n % 10_000 == 0 {
                2
            } else if n % 100 == 0 {
                4
            } else {
                6
            };
            if routes.iter().any(|r| r.admdvs == admdvs) {
                return Err(format!("routes.{}: given twice", s.admdvs));
            }
            let target = match s.target.as_str() {
                "local" => Target::Local,
                url if url.starts_with("http://") || url.starts_with("https://") => {
                    let adapter = match reuse.get(url) {
                        Some(a) => a.clone(),
                        None => RemoteAdapter::new(url, tls).map_err(|e| format!("routes.{}: {e}", s.admdvs))?,
                    };
                    reuse.insert(url.to_string(), adapter.clone());
                    Target::Remote(adapter)
                }
                other => return Err(format!("routes.{}: {other:?} is neither \"local\" nor an http(s):// endpoint", s.admdvs)),
            };
            routes.push(Route { admdvs, digits, target });
        }
        routes.sort_by(|a, b| b.digits.cmp(&a.digits).then(a.admdvs.cmp(&b.admdvs)));
        Ok(Routing { rules, routes })
    }
}

/// The regions a remote adapter serves that the table routes to it, asked with at most a second's
/// patience.
async fn remote_regions(ctx: &CallCtx, routing: &Routing, a: &RemoteAdapter, route: Admdvs) -> Result<Vec<pb::Region>, ServiceError> {
    let patience = ctx.remaining(Duration::from_secs(1)).min(Duration::from_secs(1));
    let short = CallCtx { deadline: Some(std::time::Instant::now() + patience), ..ctx.clone() };
    let list =
        a.call(&short, "regions", &route.to_string(), pb::ListRegionsRequest {}, |mut c, q| async move { c.list_regions(q).await }).await?;
    let served_here =
        |code: &str| Admdvs::parse(code).is_some_and(|x| matches!(routing.target(x), Target::Remote(t) if t.endpoint() == a.endpoint()));
    Ok(list
        .regions
        .into_iter()
        .filter(|r| served_here(&r.admdvs))
        .map(|mut r| {
            r.route = a.endpoint().to_string();
            r
        })
        .collect())
}

/// The routing table in force. Swapped whole on reload.
pub struct Router {
    state: RwLock<Arc<Routing>>,
    /// Our client TLS towards `https://` adapters.
    tls: Option<ClientTls>,
}

impl Router {
    /// Every region local.
    pub fn new(rules: RuleSet) -> Router {
        Router { state: RwLock::new(Arc::new(Routing { rules: Arc::new(rules), routes: Vec::new() })), tls: None }
    }

    pub fn with_routes(rules: RuleSet, specs: &[RouteSpec], tls: Option<ClientTls>) -> Result<Router, String> {
        let routing = Routing::build(Arc::new(rules), specs, None, tls.as_ref())?;
        Ok(Router { state: RwLock::new(Arc::new(routing)), tls })
    }

    /// The snapshot in force now.
    pub fn current(&self) -> Arc<Routing> {
        self.state.read().expect("routing lock").clone()
    }

    /// The local rule packs in force now.
    pub fn snapshot(&self) -> Arc<RuleSet> {
        self.current().rules.clone()
    }

    /// Replaces the routing table and, when given, the local rule packs. A bad table changes nothing.
    pub fn reload(&self, rules: Option<RuleSet>, specs: &[RouteSpec]) -> Result<(), String> {
        let prev = self.current();
        let rules = rules.map(Arc::new).unwrap_or_else(|| prev.rules.clone());
        let next = Routing::build(rules, specs, Some(&prev), self.tls.as_ref())?;
        *self.state.write().expect("routing lock") = Arc::new(next);
        Ok(())
    }

    /// Prices lines with the service location's catalogue, wherever it is served.
    pub async fn price(
        &self,
        ctx: &CallCtx,
        routing: &Routing,
        mdtrt: Admdvs,
        date: NaiveDate,
        lines: &[LineInput<'_>],
    ) -> Result<PricedClaim, ServiceError> {
        match routing.target(mdtrt) {
            Target::Local => local_price(&routing.rules, mdtrt, date, lines),
            Target::Remote(a) => {
                let region = mdtrt.to_string();
                let req = adapter::price_request(mdtrt, date, lines);
                let r = a.call(ctx, "pricing", &region, req, |mut c, r| async move { c.price_lines(r).await }).await?;
                adapter::checked_priced(r, lines).map_err(|why| a.inconsistent("pricing", &region, why))
            }
        }
    }

    /// Applies the insured region's policy, wherever it is served.
    pub async fn apply_policy(&self, ctx: &CallCtx, routing: &Routing, call: &PolicyCall<'_>) -> Result<PolicyOutcome, ServiceError> {
        match routing.target(call.insured) {
            Target::Local => local_apply_policy(&routing.rules, call),
            Target::Remote(a) => {
                let region = call.insured.to_string();
                let req = adapter::policy_request(call);
                let r = a.call(ctx, "policy", &region, req, |mut c, r| async move { c.apply_policy(r).await }).await?;
                adapter::checked_outcome(r, call.priced, &call.visit).map_err(|why| a.inconsistent("policy", &region, why))
            }
        }
    }

    /// Every region with where it is served, and the routing table with each remote's reachability.
    /// A remote adapter that does not answer within a second is listed as unreachable; its regions are
    /// then missing from the list (they are not known here).
    pub async fn list_regions(&self, ctx: &CallCtx) -> pb::ListRegionsResponse {
        let routing = self.current();
        let mut regions: Vec<pb::Region> = routing
            .rules
            .regions
            .values()
            .filter(|p| matches!(routing.target(p.admdvs), Target::Local))
            .map(|p| catalogue::region_pb(p, "local".into()))
            .collect();
        let mut routes = Vec::with_capacity(routing.routes.len());
        // Each remote endpoint is asked once, however many routes name it.
        let mut asked: HashMap<String, Result<(), String>> = HashMap::new();
        for r in &routing.routes {
            let (target, status) = match &r.target {
                Target::Local => ("local".to_string(), Ok(())),
                Target::Remote(a) => {
                    if !asked.contains_key(a.endpoint()) {
                        let status = match remote_regions(ctx, &routing, a, r.admdvs).await {
                            Ok(list) => {
                                regions.extend(list);
                                Ok(())
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        asked.insert(a.endpoint().to_string(), status);
                    }
                    (a.endpoint().to_string(), asked[a.endpoint()].clone())
                }
            };
            routes.push(pb::Route {
                admdvs: r.admdvs.to_string(),
                target,
                reachable: status.is_ok(),
                error: status.err().unwrap_or_default(),
            });
        }
        regions.sort_by(|a, b| a.admdvs.cmp(&b.admdvs));
        pb::ListRegionsResponse { regions, routes }
    }

    fn routed(&self, field: &str, admdvs: &str) -> Result<(Arc<Routing>, Admdvs), ServiceError> {
        let routing = self.current();
        let mut v = Violations::default();
        let a = wire::check_region(&mut v, field, admdvs, &|a| routing.knows(a));
        v.into_result(())?;
        Ok((routing, a.expect("checked")))
    }

    pub async fn get_policy(&self, ctx: &CallCtx, q: &pb::GetPolicyRequest) -> Result<pb::Policy, ServiceError> {
        let (routing, a) = self.routed("admdvs", &q.admdvs)?;
        match routing.target(a) {
            Target::Local => catalogue::get_policy(&routing.rules, q),
            Target::Remote(r) => r.call(ctx, "policy listing", &q.admdvs, q.clone(), |mut c, q| async move { c.get_policy(q).await }).await,
        }
    }

    pub async fn list_catalogue_items(
        &self,
        ctx: &CallCtx,
        q: &pb::ListCatalogueItemsRequest,
    ) -> Result<pb::ListCatalogueItemsResponse, ServiceError> {
        let (routing, a) = self.routed("admdvs", &q.admdvs)?;
        match routing.target(a) {
            Target::Local => catalogue::list_catalogue_items(&routing.rules, q),
            Target::Remote(r) => {
                r.call(ctx, "catalogue listing", &q.admdvs, q.clone(), |mut c, q| async move { c.list_catalogue_items(q).await }).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(a: &str, t: &str) -> RouteSpec {
        RouteSpec { admdvs: a.into(), target: t.into() }
    }

    #[tokio::test]
    async fn longest_prefix_wins_and_unmatched_is_local() {
        let rules = region_adapter::bundled::rules().unwrap();
        let r = Router::with_routes(
            rules,
            &[spec("420000", "http://127.0.0.1:1"), spec("421300", "local"), spec("360100", "http://127.0.0.1:2"), spec("320000", "local")],
            None,
        )
        .unwrap();
        let t = r.current();
        let name = |s: &str| t.route_name(Admdvs::parse(s).unwrap());
        assert_eq!(name("421300"), "local");
        assert_eq!(name("420100"), "http://127.0.0.1:1");
        assert_eq!(name("360100"), "http://127.0.0.1:2");
        assert_eq!(name("360200"), "local");
        assert_eq!(name("150500"), "local");
        // A remote region is judged by its adapter; a local one needs a pack.
        assert!(t.knows(Admdvs::parse("420100").unwrap()));
        assert!(!t.knows(Admdvs::parse("360200").unwrap()));
    }

    #[tokio::test]
    async fn bad_tables_are_refused_and_change_nothing() {
        let r = Router::new(region_adapter::bundled::rules().unwrap());
        for (specs, needle) in [
            (vec![spec("42", "local")], "routes.42"),
            (vec![spec("420000", "ftp://x")], "neither"),
            (vec![spec("420000", "local"), spec("420000", "local")], "twice"),
            (vec![spec("000000", "local")], "routes.000000"),
        ] {
            let e = r.reload(None, &specs).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        assert_eq!(r.current().route_name(Admdvs::parse("421300").unwrap()), "local");
        r.reload(None, &[spec("421300", "http://127.0.0.1:9")]).unwrap();
        assert_eq!(r.current().route_name(Admdvs::parse("421300").unwrap()), "http://127.0.0.1:9");
    }
}
