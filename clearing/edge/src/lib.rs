//! The shared edge of our gRPC servers (`clearing`, `region-adapter`, and the gateway to come): who
//! the caller is (TLS, identities) and what it may do (the authorization gate), how a refusal reaches
//! it (one error → status mapping, field checks with paths), what we record (telemetry, RPC metrics),
//! and how a server is built (limits, health, reflection, shutdown). Nothing here knows a store.
#![forbid(unsafe_code)]

pub mod authz;
pub mod error;
pub mod fields;
pub mod limits;
pub mod reload;
pub mod rpc_metrics;
pub mod server;
pub mod telemetry;
pub mod tls;
