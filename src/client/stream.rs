//! The windowed `StreamEvents` client shared by `import` and `feed`: one call, a bounded window
//! of batches sent and not yet acknowledged, and the in-order acks matched back to the batches
//! they answer.
//!
//! The sending half and the ack-reading half run concurrently on the same [`Window`] (the
//! server may hold the response headers until it has seen the first batch). What each caller
//! keeps per batch (send time, source rows) rides along as the window's tag and comes back
//! with the batch's ack.

use std::collections::VecDeque;

use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::Auth;
use crate::proto::v1::ingest_service_client::IngestServiceClient;
use crate::proto::v1::{BatchAck, Event, EventBatch};

/// The ingest client with the optional bearer token attached to every call.
pub type IngestClient = IngestServiceClient<InterceptedService<Channel, Auth>>;

/// Why the ack side of a stream stopped; each caller words it for its own report.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The call failed or the daemon ended it with an error status.
    #[error("{}: {}", .0.code(), .0.message())]
    Rpc(tonic::Status),
    /// An ack arrived with no batch outstanding.
    #[error("ack for batch {batch_id} with no batch outstanding")]
    Unexpected {
        /// The `batch_id` in the ack.
        batch_id: u64,
    },
    /// Acks must come in order, one per batch.
    #[error("acks out of order: expected batch {expected}, got {got}")]
    OutOfOrder {
        /// The oldest unacknowledged batch.
        expected: u64,
        /// The `batch_id` in the ack.
        got: u64,
    },
}

/// Batches sent and not yet acknowledged, with what the caller keeps for each.
pub struct Window<T> {
    /// One permit per batch that may still be sent before an ack comes back.
    permits: Semaphore,
    /// Batches sent and not yet acknowledged, oldest first (acks come in order).
    pending: parking_lot::Mutex<VecDeque<(u64, T)>>,
}

impl<T> Window<T> {
    /// A window of `in_flight` unacknowledged batches.
    pub fn new(in_flight: usize) -> Self {
        Self {
            permits: Semaphore::new(in_flight),
            pending: parking_lot::Mutex::new(VecDeque::with_capacity(in_flight)),
        }
    }

    /// Waits until one more batch may be sent and takes its place; false once the ack reader
    /// has closed the window (the response stream is over).
    pub async fn reserve(&self) -> bool {
        match self.permits.acquire().await {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Sends one batch in a place taken with [`Window::reserve`], keeping `tag` until its ack.
    /// False when tonic dropped the request stream: the call failed and the ack reader says
    /// why.
    pub async fn send(
        &self,
        tx: &mpsc::Sender<EventBatch>,
        batch_id: u64,
        events: Vec<Event>,
        tag: T,
    ) -> bool {
        self.pending.lock().push_back((batch_id, tag));
        if tx.send(EventBatch { batch_id, events }).await.is_err() {
            self.pending.lock().pop_back();
            return false;
        }
        true
    }

    /// Batches sent and not acknowledged.
    pub fn unacked(&self) -> usize {
        self.pending.lock().len()
    }

    /// Opens the call on the batches of `rx` and hands each ack, with its batch's tag, to
    /// `on_ack` until the server ends the response stream. The batch's place in the window
    /// is freed after `on_ack` returns. At the end the window is closed, which wakes a sender
    /// waiting for a place that will never come.
    pub async fn read_acks<E: From<AckError>>(
        &self,
        client: &mut IngestClient,
        rx: mpsc::Receiver<EventBatch>,
        mut on_ack: impl FnMut(&BatchAck, T) -> Result<(), E>,
    ) -> Result<(), E> {
        let result = async {
            let mut acks = client
                .stream_events(ReceiverStream::new(rx))
                .await
                .map_err(AckError::Rpc)?
                .into_inner();
            while let Some(ack) = acks.message().await.map_err(AckError::Rpc)? {
                let Some((batch_id, tag)) = self.pending.lock().pop_front() else {
                    return Err(AckError::Unexpected {
                        batch_id: ack.batch_id,
                    }
                    .into());
                };
                if ack.batch_id != batch_id {
                    return Err(AckError::OutOfOrder {
                        expected: batch_id,
                        got: ack.batch_id,
                    }
                    .into());
                }
                on_ack(&ack, tag)?;
                self.permits.add_permits(1);
            }
            Ok(())
        }
        .await;
        self.permits.close();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch is remembered until its ack; one the request stream refused is forgotten.
    #[tokio::test]
    async fn a_batch_stays_pending_only_if_it_was_sent() {
        let window = Window::new(2);
        let (tx, mut rx) = mpsc::channel(2);
        assert!(window.reserve().await);
        assert!(window.send(&tx, 1, Vec::new(), "first").await);
        assert_eq!(window.unacked(), 1);
        assert_eq!(rx.recv().await.map(|b| b.batch_id), Some(1));
        drop(rx);
        assert!(window.reserve().await);
        assert!(!window.send(&tx, 2, Vec::new(), "second").await);
        assert_eq!(window.unacked(), 1);
    }
}
