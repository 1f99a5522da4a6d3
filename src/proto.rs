//! Generated gRPC types and services for `audiencesync.v1`.

/// The `audiencesync.v1` package: events, ingest, audience, admin and insight services.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("audiencesync.v1");
}

/// Encoded `FileDescriptorSet` of our protos (with imports), served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/audiencesync_descriptor.bin"));
