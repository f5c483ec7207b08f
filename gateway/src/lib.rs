//! `national-gateway`: the clearinghouse behind the national interface. HIS programs and platforms
//! `POST /fsi/api/rsfComIfsService/callService` a JSON envelope signed with x-tif headers; the gateway
//! authenticates the caller (auth.rs), dispatches on `infno` (tx/) to `clearing` over gRPC with its
//! own `gateway` certificate and the caller's role and region forwarded, and answers in the national
//! envelope (envelope.rs, with the one table of refusals). Stateless: run as many replicas as needed
//! (nonces shared through Redis when `--redis-url` is given).
#![forbid(unsafe_code)]

pub mod auth;
pub mod conformance;
pub mod envelope;
pub mod files;
pub mod limits;
pub mod paas;
pub mod resend;
pub mod sandbox;
pub mod server;
pub mod tx;
