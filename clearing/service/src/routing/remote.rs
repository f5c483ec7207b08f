//! Calls to remote region adapters: what a call carries to the next hop (the caller's deadline and
//! W3C trace context), bounded retries of calls that are safe to repeat, and the mapping of the
//! adapter's failures to ours.
//!
//! Every `RegionAdapter` RPC is a pure function of its request, so repeating one is always safe; it is
//! repeated only when the adapter could not be reached (`UNAVAILABLE`), at most
//! `MAX_ADAPTER_RETRIES` times, and never past the caller's deadline. An adapter's refusal of the
//! claim (`INVALID_ARGUMENT` with field details) reaches the caller unchanged.

use clearing_edge::error::ServiceError;
use clearing_edge::tls::ClientTls;
use opentelemetry::KeyValue;
use proto::v1::region_adapter_client::RegionAdapterClient;
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tracing::Instrument;

/// Deadline of an adapter call when the caller gave none.
pub const DEFAULT_ADAPTER_TIMEOUT: Duration = Duration::from_secs(2);
/// Connection attempts to an adapter give up after this long (the call then fails `UNAVAILABLE`).
pub const ADAPTER_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Repeats of an adapter call that could not reach the adapter.
pub const MAX_ADAPTER_RETRIES: u32 = 2;

/// The W3C trace-context headers passed from the caller to the hops behind us.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// What one incoming call carries to the calls it makes.
#[derive(Debug, Clone, Default)]
pub struct CallCtx {
    /// When the caller stops waiting (from its `grpc-timeout`).
    pub deadline: Option<Instant>,
    /// Trace context headers as received.
    pub trace: Vec<(&'static str, AsciiMetadataValue)>,
}

impl CallCtx {
    pub fn of<T>(req: &Request<T>) -> CallCtx {
        CallCtx::from_metadata(req.metadata())
    }

    pub fn from_metadata(md: &MetadataMap) -> CallCtx {
        let now = Instant::now();
        let deadline = md.get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout).map(|d| now + d);
        let trace = TRACE_HEADERS.iter().filter_map(|h| md.get(*h).map(|v| (*h, v.clone()))).collect();
        CallCtx { deadline, trace }
    }

    /// Until when a commit may wait for a store that went away: `STORE_OUTAGE_PATIENCE` from now, or
    /// a little before the caller's deadline when that comes first (so the answer still reaches it).
    pub fn store_patience(&self) -> Instant {
        let patience = Instant::now() + crate::limits::STORE_OUTAGE_PATIENCE;
        match self.deadline {
            Some(d) => patience.min(d.checked_sub(Duration::from_millis(100)).unwrap_or(d)),
            None => patience,
        }
    }

    /// Time left before the deadline (or `default` when the caller set none).
    pub fn remaining(&self, default: Duration) -> Duration {
        match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => default,
        }
    }

    /// Puts the deadline and trace context on an outgoing request.
    /// Puts the deadline and trace context on an outgoing request: the current span's context when
    /// traces are exported (so the adapter's span is a child of ours), else the caller's headers as
    /// received.
    pub fn decorate<T>(&self, req: &mut Request<T>, timeout: Duration) {
        req.set_timeout(timeout);
        if !clearing_edge::telemetry::inject_current(req.metadata_mut()) {
            for (h, v) in &self.trace {
                req.metadata_mut().insert(*h, v.clone());
            }
        }
    }
}

fn adapter_call(region: &str, outcome: &'static str) {
    crate::metrics::M.adapter_calls.add(1, &[KeyValue::new("region", region.to_string()), KeyValue::new("outcome", outcome)]);
}

/// `grpc-timeout` as the gRPC spec writes it: up to 8 digits and a unit (H M S m u n).
pub fn parse_grpc_timeout(s: &str) -> Option<Duration> {
    if s.len() < 2 || s.len() > 9 {
        return None;
    }
    let (digits, unit) = s.split_at(s.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// One remote `region-adapter`, connected lazily and reconnected by the channel after failures.
#[derive(Clone)]
pub struct RemoteAdapter {
    endpoint: String,
    client: RegionAdapterClient<Channel>,
}

impl std::fmt::Debug for RemoteAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteAdapter({})", self.endpoint)
    }
}

impl RemoteAdapter {
    /// A client of `endpoint` (`http://host:port`); nothing is connected until the first call.
    /// `https://` endpoints need `tls` (our client certificate and the adapters' CA).
    pub fn new(endpoint: &str, tls: Option<&ClientTls>) -> Result<RemoteAdapter, String> {
        let channel = if endpoint.starts_with("https://") {
            let tls = tls
                .ok_or_else(|| format!("{endpoint}: an https:// route needs --adapter-tls-ca, --adapter-tls-cert and --adapter-tls-key"))?;
            tls.channel(endpoint, ADAPTER_CONNECT_TIMEOUT).map_err(|e| format!("{endpoint}: {e:#}"))?
        } else {
            Endpoint::from_shared(endpoint.to_string())
                .map_err(|e| format!("{endpoint:?} is not an endpoint URL: {e}"))?
                .connect_timeout(ADAPTER_CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
                .connect_lazy()
        };
        let client = RegionAdapterClient::new(channel)
            .max_decoding_message_size(clearing_edge::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(clearing_edge::limits::MAX_MESSAGE_BYTES);
        Ok(RemoteAdapter { endpoint: endpoint.to_string(), client })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Calls the adapter with the caller's deadline and trace context; repeats only calls that could
    /// not reach it, while time is left.
    pub async fn call<Q, R, F, Fut>(&self, ctx: &CallCtx, what: &str, region: &str, req: Q, rpc: F) -> Result<R, ServiceError>
    where
        Q: Clone,
        F: Fn(RegionAdapterClient<Channel>, Request<Q>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let deadline = Instant::now() + ctx.remaining(DEFAULT_ADAPTER_TIMEOUT);
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.deadline_exceeded(what, region));
            }
            let span = tracing::debug_span!("adapter.call", otel.kind = "client", what, region, endpoint = %self.endpoint, attempt);
            let mut r = Request::new(req.clone());
            // Inside the call's span, so the adapter's server span becomes its child.
            span.in_scope(|| ctx.decorate(&mut r, left));
            let status = match tokio::time::timeout(left, rpc(self.client.clone(), r)).instrument(span).await {
                Err(_) => {
                    adapter_call(region, "deadline");
                    return Err(self.deadline_exceeded(what, region));
                }
                Ok(Ok(resp)) => {
                    adapter_call(region, "ok");
                    return Ok(resp.into_inner());
                }
                Ok(Err(s)) => s,
            };
            adapter_call(region, if status.code() == Code::Unavailable { "unavailable" } else { "refused" });
            match status.code() {
                Code::Unavailable if attempt < MAX_ADAPTER_RETRIES => {
                    attempt += 1;
                    tracing::debug!(endpoint = %self.endpoint, attempt, "region adapter unreachable; retrying");
                    tokio::time::sleep(Duration::from_millis(5 << attempt).min(left)).await;
                }
                Code::Unavailable | Code::Unknown | Code::Cancelled | Code::ResourceExhausted => {
                    tracing::warn!(endpoint = %self.endpoint, region, what, code = ?status.code(), "region adapter unavailable");
                    return Err(ServiceError::Unavailable(format!(
                        "region adapter for {region} at {} is unavailable ({what}): {}",
                        self.endpoint,
                        status.message()
                    )));
                }
                Code::DeadlineExceeded => return Err(self.deadline_exceeded(what, region)),
                // The adapter's own verdict on the request (a refused claim, an unknown code): unchanged.
                _ => return Err(ServiceError::Remote(status)),
            }
        }
    }

    fn deadline_exceeded(&self, what: &str, region: &str) -> ServiceError {
        ServiceError::DeadlineExceeded(format!("region adapter for {region} at {} did not answer {what} in time", self.endpoint))
    }

    /// An answer that failed our checks: the adapter is broken; nothing is committed.
    pub fn inconsistent(&self, what: &str, region: &str, why: String) -> ServiceError {
        tracing::error!(endpoint = %self.endpoint, region, what, why, "region adapter answered inconsistently; claim refused");
        ServiceError::Internal(format!("region adapter for {region} at {} gave an inconsistent {what} answer: {why}", self.endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
    }
}
