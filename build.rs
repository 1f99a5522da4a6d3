//! Compiles `proto/` with protox (pure Rust), so building needs no system `protoc`.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "proto/audiencesync/v1/events.proto",
        "proto/audiencesync/v1/ingest.proto",
        "proto/audiencesync/v1/audience.proto",
        "proto/audiencesync/v1/admin.proto",
        "proto/audiencesync/v1/insight.proto",
    ];
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("audiencesync_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure().compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
