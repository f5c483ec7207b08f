//! The clearing service: the gRPC services of `clearinghouse.v1` (`grpc`, `server`), the orchestration
//! of one claim (`settle` around the pure `plan`), the store (`store`: embedded by default, Redis),
//! the institution lists (`institutions`), windows, netting and reconciliation (`windows`, `netting`, `calendar`), and routing to region
//! adapters (`router`, `remote`). The shared edge (TLS, identities, authorization, telemetry) is
//! `clearing_edge`; the operator and benchmark tools are `clearing_tools`.
#![forbid(unsafe_code)]

pub use clearing_store as store;
pub use clearing_store::ids;

pub mod calendar;
pub mod closure;
pub mod config;
pub mod credits;
pub mod grpc;
pub mod institutions;
pub mod limits;
pub mod metrics;
pub mod netting;
pub mod plan;
pub mod remote;
pub mod router;
pub mod server;
pub mod settle;
pub mod supervision;
pub mod visits;
pub mod windows;
pub mod wire;
