//! Generates the Rust code for kvraft's `.proto` files with prost + tonic.
//!
//! protoc comes from the `protoc-bin-vendored` crate, so building needs nothing but cargo.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos =
        ["proto/kvraft/v1/kv.proto", "proto/kvraft/v1/peer.proto", "proto/kvraft/v1/frames.proto"];
    let includes = ["proto"];

    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    // Handed to prost-build directly rather than through the PROTOC environment variable, so
    // that the build script does not mutate its process environment.
    config.protoc_executable(&protoc);

    tonic_prost_build::configure()
        // `bytes::Bytes` for every `bytes` field: entry and snapshot payloads are not copied.
        .bytes(".")
        .compile_with_config(config, &protos.map(PathBuf::from), &includes.map(PathBuf::from))?;

    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
