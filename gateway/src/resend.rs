//! The gateway's channel to clearing, sending a call again when the connection under it closed before
//! any answer came.
//!
//! `clearing serve` asks every client to reconnect after `clearing_edge::limits::MAX_CONNECTION_AGE` (a
//! GOAWAY, so a revoked certificate meets the CRL again), and a restarted or failed-over clearing closes
//! its connections. A call caught on such a connection fails in the gateway without clearing having
//! answered it, and its HIS got 504 or 503 ("retry with the same msgid"); under steady load a few calls
//! every two minutes met the GOAWAY alone. Every call the gateway forwards is idempotent: a settlement,
//! reversal or visit step by its msgid (a resend gets the stored answer), the rest reads. So a call that
//! got no response head is sent again on a fresh connection, at most `MAX_RESENDS` more times, all inside
//! the gateway's deadline. Once a response has begun nothing is sent again. A call no connection
//! answered is UNAVAILABLE (503 "retry with the same msgid"), never an internal error.
//!
//! The request body is held to be sent again; the gateway's calls are single messages (or one-message
//! streams) it built in memory, bounded by `MAX_BODY_BYTES`.

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
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let mut resent = 0;
            loop {
                let mut attempt = http::Request::new(Body::new(http_body_util::Full::new(bytes.clone())));
                *attempt.method_mut() = parts.method.clone();
                *attempt.uri_mut() = parts.uri.clone();
                *attempt.version_mut() = parts.version;
                *attempt.headers_mut() = parts.headers.clone();
                *attempt.extensions_mut() = parts.extensions.clone();
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
