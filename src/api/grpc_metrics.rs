//! A tower layer counting and timing every gRPC call by method and status code.
//!
//! The status is read from the response headers (trailers-only errors) or the trailers, so a
//! call is recorded when its response body ends or is dropped: a streaming call is timed over
//! its whole life. Unknown paths are labelled `unknown` so a client cannot grow the label set.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prost::Message as _;
use tower::{Layer, Service};

use crate::metric_names;

/// Adds [`GrpcMetrics`] around the server's routes.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    known: Arc<HashSet<String>>,
}

impl GrpcMetricsLayer {
    /// Learns the method paths from the descriptor sets the server registers for reflection.
    pub fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut known = HashSet::new();
        for bytes in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*bytes) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for svc in file.service {
                    let name = svc.name.unwrap_or_default();
                    for m in svc.method {
                        let method = m.name.unwrap_or_default();
                        let full = if package.is_empty() {
                            format!("/{name}/{method}")
                        } else {
                            format!("/{package}.{name}/{method}")
                        };
                        known.insert(full);
                    }
                }
            }
        }
        Self {
            known: Arc::new(known),
        }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            known: self.known.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] makes.
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    known: Arc<HashSet<String>>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path();
        let method: Arc<str> = if self.known.contains(path) {
            Arc::from(path.trim_start_matches('/'))
        } else {
            Arc::from("unknown")
        };
        ResponseFuture {
            inner: self.inner.call(req),
            call: Some(Call {
                method,
                started: Instant::now(),
                code: None,
            }),
        }
    }
}

/// One call in flight; records itself when dropped (body finished, failed or abandoned).
struct Call {
    method: Arc<str>,
    started: Instant,
    code: Option<&'static str>,
}

impl Drop for Call {
    fn drop(&mut self) {
        // No status at all: the client went away before the server finished.
        let code = self.code.unwrap_or("CANCELLED");
        let labels = [
            ("method", self.method.to_string()),
            ("code", code.to_string()),
        ];
        metrics::counter!(metric_names::GRPC_REQUESTS, &labels).increment(1);
        metrics::histogram!(metric_names::GRPC_DURATION, &labels)
            .record(self.started.elapsed().as_secs_f64());
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<&'static str> {
    let v = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(code_name(tonic::Code::from(v)))
}

/// The canonical upper-case gRPC status name, as other gRPC tooling prints it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

pin_project_lite::pin_project! {
    /// Waits for the inner response, then hands the call record to the body.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, B, E> std::future::Future for ResponseFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<MeteredBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        let mut call = this.call.take();
        match res {
            Ok(resp) => {
                if let Some(c) = call.as_mut() {
                    c.code = status_of(resp.headers());
                }
                Poll::Ready(Ok(resp.map(|inner| MeteredBody { inner, call })))
            }
            Err(e) => {
                if let Some(c) = call.as_mut() {
                    c.code = Some("UNKNOWN");
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that notes the trailers' status and records the call when done.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(t), Some(c)) = (frame.trailers_ref(), this.call.as_mut()) {
                    if let Some(code) = status_of(t) {
                        c.code = Some(code);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(c) = this.call.as_mut() {
                    c.code.get_or_insert("UNKNOWN");
                }
            }
            Poll::Ready(None) => {
                this.call.take();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_our_methods_from_the_descriptors() {
        let layer = GrpcMetricsLayer::new(&[
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        assert!(layer
            .known
            .contains("/audiencesync.v1.IngestService/IngestBatch"));
        assert!(layer.known.contains("/grpc.health.v1.Health/Check"));
        assert!(!layer.known.contains("/x.Y/Z"));
    }
}
