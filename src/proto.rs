//! Generated gRPC types and services for `audiencesync.v1`.

/// The `audiencesync.v1` package: events, ingest, audience, admin and insight services.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("audiencesync.v1");
}

/// Encoded `FileDescriptorSet` of our protos (with imports), served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/audiencesync_descriptor.bin"));

/// Our descriptors, decoded once (for proto JSON).
fn pool() -> Option<&'static prost_reflect::DescriptorPool> {
    static POOL: std::sync::OnceLock<Option<prost_reflect::DescriptorPool>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET).ok())
        .as_ref()
}

/// A message of ours (`name` without the package, e.g. `LiftReport`) as JSON through its
/// descriptor, so the output follows the proto field names and the documented JSON mapping
/// (adjusted by `options`). `Null` only if `name` is not one of our messages.
pub fn to_json<M: prost::Message>(
    m: &M,
    name: &str,
    options: &prost_reflect::SerializeOptions,
) -> serde_json::Value {
    pool()
        .and_then(|pool| pool.get_message_by_name(&format!("audiencesync.v1.{name}")))
        .and_then(|desc| {
            prost_reflect::DynamicMessage::decode(desc, m.encode_to_vec().as_slice()).ok()
        })
        .and_then(|d| {
            d.serialize_with_options(serde_json::value::Serializer, options)
                .ok()
        })
        .unwrap_or(serde_json::Value::Null)
}
