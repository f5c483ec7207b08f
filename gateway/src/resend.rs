//! The gateway's channel to clearing, sending a call again when the connection under it closed before
//! any answer came.
//!
//! `clearing serve` asks every client to reconnect after `clearing_edge::limits::MAX_CONNECTION_AGE` (a
//! GOAWAY, so a revoked certificate meets the CRL again), and a restarted or failed-over clearing closes
//! its connections. A call caught on such a connection failed in the gateway without an answer, and its
//! HIS got 500 "internal error". The calls in `RESENDABLE` are idempotent: a settlement, reversal or
//! visit step by its msgid (a resend gets the stored answer; a fee upload skips the details it has; a
//! cancel or an update done twice is done once), the rest reads. Such a call that got no response head
//! is sent again on a fresh connection, at most `MAX_RESENDS` more times, all inside the gateway's
//! deadline, each with the time that is left of it. Once a response has begun nothing is sent again. A
//! call no connection answered is UNAVAILABLE (503 "retry with the same msgid"). Any other call (one added
//! later, before someone decides it may be repeated) goes through as it is.
//!
//! The request body of a resendable call is held to be sent again: single messages, or the one-message
//! stream of a 3202 detail, that the gateway built in memory within its own limits.

use crate::limits::MAX_RESENDS;
use axum::http;
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::transport::Channel;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// A `grpc-timeout` header's duration (digits and a unit: H, M, S, m, u or n).
fn grpc_timeout(v: &str) -> Option<std::time::Duration> {
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => std::time::Duration::from_secs(n.checked_mul(3600)?),
        "M" => std::time::Duration::from_secs(n.checked_mul(60)?),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    })
}

/// The gRPC methods the gateway calls that may be sent twice with one effect (see the module's comment):
/// a method added to the gateway is resent only once it is listed here.
pub const RESENDABLE: &[&str] = &[
    "/clearinghouse.v1.Clearing/SettleClaim",
    "/clearinghouse.v1.Clearing/PreviewClaim",
    "/clearinghouse.v1.Clearing/ReverseClaim",
    "/clearinghouse.v1.Clearing/GetSettlement",
    "/clearinghouse.v1.Clearing/FindSettlementByMsgid",
    "/clearinghouse.v1.Clearing/RegisterVisit",
    "/clearinghouse.v1.Clearing/UploadFeeDetails",
    "/clearinghouse.v1.Clearing/CancelFeeDetails",
    "/clearinghouse.v1.Clearing/CancelVisit",
    "/clearinghouse.v1.Clearing/SettleVisit",
    "/clearinghouse.v1.Clearing/PreviewVisit",
    "/clearinghouse.v1.Clearing/GetVisit",
    "/clearinghouse.v1.Clearing/UpdateVisitInfo",
    "/clearinghouse.v1.Registry/GetMember",
    "/clearinghouse.v1.Registry/FindMember",
    "/clearinghouse.v1.Catalogue/ListCatalogueItems",
    "/clearinghouse.v1.Netting/ReconcileTotals",
    "/clearinghouse.v1.Netting/ReconcileDetail",
];

/// A `Channel` to clearing whose calls are sent again after a connection closed under them.
#[derive(Clone, Debug)]
pub struct Resending {
    channel: Channel,
}

impl Resending {
    pub fn new(channel: Channel) -> Resending {
        Resending { channel }
    }
}

impl Service<http::Request<Body>> for Resending {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>>;

    /// Ready at once: each attempt waits for the channel's readiness itself (`oneshot`).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        if !RESENDABLE.contains(&req.uri().path()) {
            return Box::pin(async move { channel.oneshot(req).await.map_err(Into::into) });
        }
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let (parts, body) = req.into_parts();
            let deadline = parts.headers.get(GRPC_TIMEOUT).and_then(|v| grpc_timeout(v.to_str().ok()?));
            let bytes = body.collect().await?.to_bytes();
            let mut resent = 0;
            loop {
                let mut attempt = http::Request::new(Body::new(http_body_util::Full::new(bytes.clone())));
                *attempt.method_mut() = parts.method.clone();
                *attempt.uri_mut() = parts.uri.clone();
                *attempt.version_mut() = parts.version;
                *attempt.headers_mut() = parts.headers.clone();
                *attempt.extensions_mut() = parts.extensions.clone();
                // Clearing gives each attempt only what is left of the call's deadline.
                if let Some(d) = deadline {
                    let left = d.saturating_sub(started.elapsed()).as_millis().max(1);
                    attempt.headers_mut().insert(GRPC_TIMEOUT, http::HeaderValue::from_str(&format!("{left}m"))?);
                }
                match channel.clone().oneshot(attempt).await {
                    // An error here means no response head came: the connection failed or closed first.
                    Err(e) if resent < MAX_RESENDS => {
                        resent += 1;
                        tracing::info!(error = %e, path = %parts.uri.path(), resent, "the connection to clearing closed before an answer; sending the call again");
                    }
                    Ok(response) => return Ok(response),
                    // Still no answer: clearing is unreachable for now, which the HIS hears as 503 "retry
                    // with the same msgid" (tonic reads the status out of the error).
                    Err(e) => {
                        tracing::warn!(error = %e, path = %parts.uri.path(), "no connection to clearing answered the call");
                        let status: BoxError = Box::new(tonic::Status::unavailable(format!("clearing did not answer: {e}")));
                        return Err(status);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grpc_timeout_reads_in_every_unit_and_nothing_else() {
        let d = std::time::Duration::from_millis;
        assert_eq!(grpc_timeout("30000m"), Some(d(30_000)));
        assert_eq!(grpc_timeout("2S"), Some(d(2_000)));
        assert_eq!(grpc_timeout("1M"), Some(d(60_000)));
        assert_eq!(grpc_timeout("1H"), Some(d(3_600_000)));
        assert_eq!(grpc_timeout("5000u"), Some(d(5)));
        assert_eq!(grpc_timeout("7000000n"), Some(d(7)));
        for bad in ["", "m", "12", "12x", "-1S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
