//! The clearing service: the gRPC API of `clearinghouse.v1`, the orchestration of one claim (validate,
//! price, apply policy, commit), the store (embedded by default), and the operator tools.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod adapter;
pub mod authz;
pub mod bench;
pub mod catalogue;
pub mod client;
pub mod config;
pub mod echo;
pub mod error;
pub mod grpc;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod netcli;
pub mod netting;
pub mod remote;
pub mod router;
pub mod server;
pub mod settle;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod window;
pub mod windows;
pub mod wire;
