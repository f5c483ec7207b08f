//! The `clearinghouse.v1` gRPC contract, generated at build time from `clearinghouse/v1/*.proto`
//! with protox (no protoc needed).
#![allow(clippy::all)]
#![forbid(unsafe_code)]

pub mod v1 {
    tonic::include_proto!("clearinghouse.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/clearinghouse_descriptor.bin"));
