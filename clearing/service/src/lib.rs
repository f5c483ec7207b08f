//! The clearing service: the gRPC services of `clearinghouse.v1` (`grpc`, `server`), the orchestration
//! of one claim (`settle` around the pure `plan`), the store (`store`: embedded by default, Redis),
//! the institution lists (`institutions`), windows, netting and reconciliation (`windows`, `netting`, `calendar`), and routing to region
//! adapters (`router`, `remote`). The shared edge (TLS, identities, authorization, telemetry) is
//! `clearing_edge`; the operator and benchmark tools are `clearing_tools`.
#![forbid(unsafe_code)]

pub use clearing_store as store;
pub use clearing_store::ids;

pub mod calendar;
pub mod config;
pub mod core;
pub mod grpc;
pub mod institutions;
pub mod limits;
pub mod metrics;
pub mod registry;
pub mod routing;
pub mod server;
pub mod settlement;
pub mod supervision;
pub mod visits;
pub mod windows;
pub mod wire;
