//! The test's own OTLP/gRPC receiver: trace and metrics services that keep what they are sent, so a
//! test can assert on the spans and metric points our binaries export. A real gRPC server on a
//! loopback port, speaking the OpenTelemetry protocol.

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Received {
    /// (service.name, span)
    spans: Vec<(String, Span)>,
    /// (service.name, metric) of every export, in order.
    metrics: Vec<(String, Metric)>,
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Received>>);

fn service_name(attrs: &[KeyValue]) -> String {
    attrs.iter().find(|a| a.key == "service.name").map(|a| text(a.value.as_ref())).unwrap_or_default()
}

/// A string, int or bool attribute value as text.
pub fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

pub fn attr(attrs: &[KeyValue], key: &str) -> String {
    attrs.iter().find(|a| a.key == key).map(|a| text(a.value.as_ref())).unwrap_or_default()
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(&self, req: Request<ExportTraceServiceRequest>) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut r = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let name = service_name(rs.resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]));
            for ss in rs.scope_spans {
                r.spans.extend(ss.spans.into_iter().map(|s| (name.clone(), s)));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(&self, req: Request<ExportMetricsServiceRequest>) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut r = self.0.lock().unwrap();
        for rm in req.into_inner().resource_metrics {
            let name = service_name(rm.resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]));
            for sm in rm.scope_metrics {
                r.metrics.extend(sm.metrics.into_iter().map(|m| (name.clone(), m)));
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

pub struct Otlp {
    pub addr: std::net::SocketAddr,
    sink: Sink,
    _server: tokio::task::JoinHandle<()>,
}

impl Otlp {
    pub async fn start() -> Otlp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink::default();
        let (t, m) = (TraceServiceServer::new(sink.clone()), MetricsServiceServer::new(sink.clone()));
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(t)
                .add_service(m)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        Otlp { addr, sink, _server: server }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, with its service name.
    pub fn spans(&self) -> Vec<(String, Span)> {
        self.sink.0.lock().unwrap().spans.clone()
    }

    /// The most recent export of metric `name` by `service` (exports are cumulative).
    pub fn latest_metric(&self, service: &str, name: &str) -> Option<Metric> {
        self.sink.0.lock().unwrap().metrics.iter().rev().find(|(s, m)| s == service && m.name == name).map(|(_, m)| m.clone())
    }
}

/// The value of a sum metric's data point whose attributes include all of `labels`.
pub fn sum_value(m: &Metric, labels: &[(&str, &str)]) -> Option<i64> {
    let Some(metric::Data::Sum(s)) = &m.data else { return None };
    s.data_points.iter().find(|p| labels.iter().all(|(k, v)| attr(&p.attributes, k) == *v)).map(number)
}

fn number(p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> i64 {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    match p.value {
        Some(Value::AsInt(i)) => i,
        Some(Value::AsDouble(d)) => d as i64,
        None => 0,
    }
}

/// The count of a histogram's data point whose attributes include all of `labels`.
pub fn histogram_count(m: &Metric, labels: &[(&str, &str)]) -> Option<u64> {
    let Some(metric::Data::Histogram(h)) = &m.data else { return None };
    h.data_points.iter().find(|p| labels.iter().all(|(k, v)| attr(&p.attributes, k) == *v)).map(|p| p.count)
}

/// The value of a gauge's data point whose attributes include all of `labels`.
pub fn gauge_value(m: &Metric, labels: &[(&str, &str)]) -> Option<i64> {
    let Some(metric::Data::Gauge(g)) = &m.data else { return None };
    g.data_points.iter().find(|p| labels.iter().all(|(k, v)| attr(&p.attributes, k) == *v)).map(number)
}
