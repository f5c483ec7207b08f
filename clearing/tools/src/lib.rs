//! The operator and benchmark tools behind `clearing`'s commands, kept out of the service library:
//! the operator client (`client`: settle, preview, reverse, get, member, health), the netting CLI with
//! its JSON/CSV/SVG report (`netcli`), the load generator and synthetic rule packs (`bench`), the netting bench and the Redis ceiling's keys (`netbench`), and the
//! minimal gRPC echo server that is the benchmarks' ceiling (`echo`).
#![forbid(unsafe_code)]

pub mod bench;
pub mod client;
pub mod echo;
pub mod national;
pub mod netbench;
pub mod netcli;
pub mod supervise;
