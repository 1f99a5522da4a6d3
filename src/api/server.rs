//! The gRPC server: our services plus standard health checking and reflection.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use super::admin::AdminApi;
use super::audience::AudienceApi;
use super::ingest::IngestApi;
use super::Context;
use crate::proto::v1::admin_service_server::AdminServiceServer;
use crate::proto::v1::audience_service_server::AudienceServiceServer;
use crate::proto::v1::ingest_service_server::IngestServiceServer;

/// Why the server stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built from our descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Serves every service on `listener` until `shutdown` resolves, then finishes in-flight calls.
pub async fn serve(
    listener: TcpListener,
    ctx: Context,
    max_message_bytes: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<IngestServiceServer<IngestApi>>()
        .await;
    health_reporter
        .set_serving::<AudienceServiceServer<AudienceApi>>()
        .await;
    health_reporter
        .set_serving::<AdminServiceServer<AdminApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            IngestServiceServer::new(IngestApi::new(ctx.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            AudienceServiceServer::new(AudienceApi::new(ctx.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            AdminServiceServer::new(AdminApi::new(ctx))
                .max_decoding_message_size(max_message_bytes),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
