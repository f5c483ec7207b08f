//! Logs, traces and metrics of both binaries.
//!
//! - Logs: text or JSON on stderr, filtered by `RUST_LOG`; inside a request, every line carries the
//!   request span's `trace_id`.
//! - Traces and metrics: OTLP/gRPC, configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`
//!   or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `…_METRICS_ENDPOINT`,
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`(`_ARG`),
//!   `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_SDK_DISABLED`). Off unless an endpoint is set:
//!   then no OpenTelemetry layer is installed and the metric instruments are the API's no-ops.
//! - W3C trace context: taken from incoming gRPC metadata (`traceparent`, `tracestate`) by the
//!   server's request span, and injected into calls to remote region adapters.
//!
//! No attribute, metric label or log field carries a person number; regions and codes only.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written: text for a terminal, JSON for a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Flushes and stops the exporters when dropped (at the end of `main`).
pub struct Telemetry {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    meter: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

impl Telemetry {
    pub fn exporting(&self) -> bool {
        self.tracer.is_some() || self.meter.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

fn env_set(k: &str) -> bool {
    std::env::var(k).is_ok_and(|v| !v.trim().is_empty())
}

/// Whether a signal is exported: an endpoint for it (or the common one) and the SDK not disabled.
fn exporting(signal: &str) -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let exporter_off = std::env::var(format!("OTEL_{signal}_EXPORTER")).is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled && !exporter_off && (env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
}

fn resource(default_name: &'static str) -> opentelemetry_sdk::Resource {
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    let b = opentelemetry_sdk::Resource::builder();
    if env_set("OTEL_SERVICE_NAME") { b.build() } else { b.with_service_name(default_name).build() }
}

/// Installs logging and, when configured, trace and metric export. Call once, first thing in `main`
/// (inside the Tokio runtime: the exporters run on it).
pub fn init(service: &'static str, format: LogFormat) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).boxed(),
    };
    let mut t = Telemetry { tracer: None, meter: None };
    let otel_layer = if exporting("TRACES") {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        let provider =
            opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource(service)).build();
        let tracer = provider.tracer(service);
        t.tracer = Some(provider);
        // The exporter's own gRPC client must not trace itself.
        // Our inner spans (pricing, policy, store, adapter calls, netting) are DEBUG so that a text log
        // at INFO does not pay for formatting them; the trace exports them.
        let quiet = EnvFilter::new(
            "info,clearing=debug,clearing_service=debug,clearing_edge=debug,region_adapter_server=debug,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry=off",
        );
        Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(quiet))
    } else {
        None
    };
    if exporting("METRICS") {
        let exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic().build()?;
        let reader = opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(reader).with_resource(resource(service)).build();
        opentelemetry::global::set_meter_provider(provider.clone());
        t.meter = Some(provider);
    }
    tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otel_layer).init();
    if t.exporting() {
        tracing::info!(traces = t.tracer.is_some(), metrics = t.meter.is_some(), "OpenTelemetry export on");
    }
    Ok(t)
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), value.parse()) {
            self.0.insert(k, v);
        }
    }
}

/// The server's span of one request, child of the caller's trace context when it sent one. Its
/// `trace_id` field puts the trace id on every log line written inside the request.
pub fn request_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    let (service, method) = path.trim_start_matches('/').rsplit_once('/').unwrap_or(("", path));
    let span = tracing::info_span!(
        "rpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, req.headers());
    span
}

/// Makes `span` a child of the W3C trace context in `headers` (`traceparent`, `tracestate`) when the
/// caller sent one, and records its trace id in the span's `trace_id` field (declared empty).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    let _ = span.set_parent(parent.clone());
    let mut trace_id = span.context().span().span_context().trace_id();
    if trace_id == opentelemetry::trace::TraceId::INVALID {
        // Export off: the caller's trace id still correlates our logs with theirs.
        trace_id = parent.span().span_context().trace_id();
    }
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Injects the current span's trace context into an outgoing call. Returns false when there is no
/// valid context to inject (export off), so the caller can pass the incoming headers on instead.
pub fn inject_current(md: &mut tonic::metadata::MetadataMap) -> bool {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return false;
    }
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Metadata(md)));
    true
}
