//! `rpc.server.duration` for every call of every server of ours (our services, health, reflection),
//! refusals included, as an OpenTelemetry histogram (a no-op unless telemetry exports metrics).

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use std::sync::LazyLock;
use std::time::Instant;
use tonic::codegen::http;

/// Created on first use, after `telemetry::init` installed the meter provider.
static RPC_DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    opentelemetry::global::meter("clearinghouse")
        .f64_histogram("rpc.server.duration")
        .with_unit("s")
        .with_description("Server-side latency per RPC")
        .with_boundaries(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        .build()
});

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
            RPC_DURATION.record(
                started.elapsed().as_secs_f64(),
                &[KeyValue::new("rpc.method", method), KeyValue::new("rpc.grpc.status_code", code)],
            );
            r
        })
    }
}

/// `credentials.in_force` {kind}: how many credentials of a kind are in force now (`paas` callers of the
/// gateway, `paas_successor_tokens`, serials revoked by a CRL), set at start and at every reload.
pub fn credentials_in_force(kind: &str, n: usize) {
    static GAUGE: LazyLock<opentelemetry::metrics::Gauge<u64>> = LazyLock::new(|| {
        opentelemetry::global::meter("clearinghouse")
            .u64_gauge("credentials.in_force")
            .with_description("Credentials in force by kind: gateway callers, successor tokens, revoked certificate serials")
            .build()
    });
    GAUGE.record(n as u64, &[KeyValue::new("kind", kind.to_string())]);
}
