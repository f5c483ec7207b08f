//! The clearing service, one room per feature (ARCHITECTURE.md): `settlement` (plan, settle, reversal),
//! `visits` (the hospital's flow), `windows` (closing, netting, reconciliation, advances, statements),
//! `supervision` (flag rules, indicators, reads); below them `core` (the `Clearinghouse` and the one
//! commit loop), then `registry` (institutions, members by certificate: 1101, account credits),
//! `routing` (in process or remote region adapters), `turns` (one settlement at a time per member),
//! `calendar`, `claim` (a claim as sent and its checks), `record` (the stored formats that are protobuf
//! encodings) and `limits`; on top `grpc` and `server`. The store is `clearing_store` (re-exported as `store`); the shared edge (TLS,
//! identities, authorization, telemetry) is `clearing_edge`; the operator and benchmark tools are
//! `clearing_tools`.
#![forbid(unsafe_code)]

pub use clearing_store as store;
pub use clearing_store::ids;

pub mod calendar;
pub mod claim;
pub mod config;
pub mod core;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod record;
pub mod registry;
pub mod routing;
pub mod server;
pub mod settlement;
pub mod supervision;
pub mod turns;
pub mod visits;
pub mod windows;
