//! Compiles `clearinghouse/v1/*.proto` with protox (pure Rust): no protoc on a fresh machine. Also
//! writes the encoded descriptor set for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "clearinghouse/v1/clearing.proto",
        "clearinghouse/v1/registry.proto",
        "clearinghouse/v1/catalogue.proto",
        "clearinghouse/v1/netting.proto",
        "clearinghouse/v1/adapter.proto",
        "clearinghouse/v1/supervision.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("clearinghouse_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        // JSON with the proto field names for the operator client (`clearing settle --file claim.json`).
        .type_attribute(".clearinghouse.v1", "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]")
        .compile_fds(fds)?;
    Ok(())
}
