//! What every work item shares: the backend, the registry, the limits, and the abandon signal.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::super::channel::SidecarClient;
use super::super::registry::Registry;

/// Everything a work item task needs, shared by all of them.
pub(super) struct ItemContext {
    /// The backend, as it was when the item arrived.
    pub grpc: SidecarClient,
    /// The orchestrators and activities.
    pub registry: Arc<Registry>,
    /// The largest completion the worker sends.
    pub max_completion_bytes: usize,
    /// Becomes true when shutdown gives up waiting: unfinished items are abandoned.
    pub abandon: watch::Receiver<bool>,
}

impl ItemContext {
    /// Resolves once shutdown asks unfinished items to give their work back.
    pub async fn abandoned(&self) {
        let mut abandon = self.abandon.clone();
        // An error means the worker is gone, which also means: give the work back.
        let _ = abandon.wait_for(|abandon| *abandon).await;
    }

    /// A permit of `limit`, or `None` if shutdown abandons the item first.
    pub async fn permit(&self, limit: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            permit = limit.clone().acquire_owned() => permit.ok(),
            () = self.abandoned() => None,
        }
    }
}
