//! The service's metrics, as OpenTelemetry instruments (exported over OTLP when configured; the API's
//! no-ops otherwise). Labels are provinces, regions, RPC names and outcomes: never a person.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `clearing.settlements` | counter | `insured_province`, `mdtrt_province`, `outcome` (settled, previewed, replayed, reversed, refused) |
//! | `clearing.fund_pay` | up-down counter, fen | `insured_province`, `mdtrt_province` (reversals subtract) |
//! | `clearing.account_pay` | up-down counter, fen | `insured_province`, `mdtrt_province` |
//! | `rpc.server.duration` | histogram, s | `rpc.method`, `rpc.grpc.status_code` |
//! | `clearing.commit.conflicts` | counter | `reason` (a member changed, window moved, …) |
//! | `clearing.commit.retries` | counter | – |
//! | `clearing.store.errors` | counter | `op` |
//! | `clearing.adapter.calls` | counter | `region`, `outcome` |
//! | `clearing.netting.duration` | histogram, s | – |
//! | `clearing.window.settlements`, `clearing.window.pairs` | gauge | `clr_date` |
//! | `clearing.advance.usage` | gauge, basis points of the advance | `admdvs` |

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, UpDownCounter};
use std::sync::LazyLock;
use std::time::Instant;
use tonic::codegen::http;

pub struct Metrics {
    pub settlements: Counter<u64>,
    pub fund_pay: UpDownCounter<i64>,
    pub account_pay: UpDownCounter<i64>,
    pub rpc_duration: Histogram<f64>,
    pub commit_conflicts: Counter<u64>,
    pub commit_retries: Counter<u64>,
    pub store_errors: Counter<u64>,
    pub adapter_calls: Counter<u64>,
    pub netting_duration: Histogram<f64>,
    pub window_settlements: Gauge<u64>,
    pub window_pairs: Gauge<u64>,
    pub advance_usage: Gauge<u64>,
}

/// Created on first use, after `telemetry::init` installed the meter provider.
pub static M: LazyLock<Metrics> = LazyLock::new(|| {
    let m = opentelemetry::global::meter("clearinghouse");
    Metrics {
        settlements: m.u64_counter("clearing.settlements").with_description("Claims by outcome").build(),
        fund_pay: m.i64_up_down_counter("clearing.fund_pay").with_unit("fen").with_description("Fund pay settled").build(),
        account_pay: m
            .i64_up_down_counter("clearing.account_pay")
            .with_unit("fen")
            .with_description("Personal-account pay settled")
            .build(),
        rpc_duration: m
            .f64_histogram("rpc.server.duration")
            .with_unit("s")
            .with_description("Server-side latency per RPC")
            .with_boundaries(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            .build(),
        commit_conflicts: m.u64_counter("clearing.commit.conflicts").with_description("Commit attempts that found state changed").build(),
        commit_retries: m.u64_counter("clearing.commit.retries").with_description("Settlements recomputed after a conflict").build(),
        store_errors: m.u64_counter("clearing.store.errors").with_description("Store operations that failed").build(),
        adapter_calls: m.u64_counter("clearing.adapter.calls").with_description("Calls to remote region adapters").build(),
        netting_duration: m
            .f64_histogram("clearing.netting.duration")
            .with_unit("s")
            .with_description("Close → report of a window")
            .build(),
        window_settlements: m.u64_gauge("clearing.window.settlements").with_description("Settlements in a netted window").build(),
        window_pairs: m.u64_gauge("clearing.window.pairs").with_description("Region pairs in a netted window").build(),
        advance_usage: m
            .u64_gauge("clearing.advance.usage")
            .with_unit("bp")
            .with_description("Net payable as a share of the advance")
            .build(),
    }
});

/// `42` for `421300`.
pub fn province(admdvs: &str) -> String {
    admdvs.get(..2).unwrap_or("").to_string()
}

pub fn pair(insured: &str, mdtrt: &str) -> [KeyValue; 2] {
    [KeyValue::new("insured_province", province(insured)), KeyValue::new("mdtrt_province", province(mdtrt))]
}

/// A tower layer recording `rpc.server.duration` for every call (ours, health, reflection), refusals
/// included: the time until the response head, with the gRPC status when the head carries it
/// (errors), else OK. Paths outside our services are labelled `other`, so that a caller cannot grow
/// the label set.
#[derive(Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics(inner)
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S>(S);

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let method: String = if path.starts_with("/clearinghouse.v1.") || path.starts_with("/grpc.") {
            path.trim_start_matches('/').into()
        } else {
            "other".into()
        };
        let started = Instant::now();
        let fut = self.0.call(req);
        Box::pin(async move {
            let r = fut.await;
            let code = match &r {
                Ok(resp) => resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<i64>().ok()).unwrap_or(0),
                Err(_) => tonic::Code::Unknown as i64,
            };
            M.rpc_duration.record(
                started.elapsed().as_secs_f64(),
                &[KeyValue::new("rpc.method", method), KeyValue::new("rpc.grpc.status_code", code)],
            );
            r
        })
    }
}
