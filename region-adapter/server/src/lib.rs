//! The engine served over gRPC: `region-adapter serve` (binary `region-adapter`) for a province that
//! keeps its rules and catalogue on its own platform, and what both ends of that hop share with
//! `clearing`: the engine run in process (`local`), the adapter protocol with its checks (`wire`), the
//! national amounts on every wire (`national`), the catalogue and policy views (`catalogue`), and where
//! rule packs come from (`rules`). Stateless; links no store.
#![forbid(unsafe_code)]

pub mod api;
pub mod catalogue;
pub mod local;
pub mod national;
pub mod rules;
pub mod wire;
