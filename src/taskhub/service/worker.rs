//! GetWorkItems: one stream per worker connection, fed by a task that sends work items while
//! the worker has credit, a health ping at a fixed interval, and nothing else. When the stream
//! goes away (the worker disconnected), every item it held is taken back at once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;

use crate::durabletask::proto::{self, work_item::Request};
use crate::taskhub::dispatch::WorkerId;
use crate::taskhub::filters::WorkFilter;
use crate::taskhub::hub::Hub;

/// The response stream of one GetWorkItems call.
pub struct WorkItemStream {
    rx: mpsc::Receiver<Result<proto::WorkItem, tonic::Status>>,
    _guard: WorkerGuard,
}

impl Stream for WorkItemStream {
    type Item = Result<proto::WorkItem, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Unregisters the worker, taking back its leases, when the stream is dropped.
struct WorkerGuard {
    hub: Arc<Hub>,
    id: WorkerId,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.hub.dispatch().remove_worker(self.id);
        tracing::info!(worker.id = self.id, "worker stream closed");
    }
}

/// Opens a work-item stream for a worker that asked with `request`.
pub fn open(
    hub: Arc<Hub>,
    request: &proto::GetWorkItemsRequest,
    ping_every: Duration,
) -> WorkItemStream {
    let (id, notify) = hub.dispatch().add_worker(
        request.max_concurrent_orchestration_work_items,
        request.max_concurrent_activity_work_items,
        WorkFilter::from_request(request.work_item_filters.as_ref()),
    );
    tracing::info!(
        worker.id = id,
        max_orchestrations = request.max_concurrent_orchestration_work_items,
        max_activities = request.max_concurrent_activity_work_items,
        filtered = request.work_item_filters.is_some(),
        "worker stream opened"
    );

    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(feed(hub.clone(), id, notify, tx, ping_every));
    WorkItemStream {
        rx,
        _guard: WorkerGuard { hub, id },
    }
}

type Sender = mpsc::Sender<Result<proto::WorkItem, tonic::Status>>;

async fn feed(hub: Arc<Hub>, id: WorkerId, notify: Arc<Notify>, tx: Sender, ping_every: Duration) {
    let stopped = hub.stopped();
    tokio::pin!(stopped);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        if !send_available(&hub, id, &tx).await {
            return;
        }
        tokio::select! {
            () = notify.notified() => {}
            _ = ping.tick() => {
                let item = proto::WorkItem {
                    request: Some(Request::HealthPing(proto::HealthPing {})),
                    completion_token: String::new(),
                };
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
            () = &mut stopped => return,
        }
    }
}

/// How many work items of one kind are read from the store in one go.
const CLAIM_BATCH: usize = 64;

/// Sends every item the worker has credit for; false when the stream is gone.
async fn send_available(hub: &Arc<Hub>, id: WorkerId, tx: &Sender) -> bool {
    loop {
        let mut sent = false;
        for orchestration in [true, false] {
            let claimed = if orchestration {
                hub.claim_orchestrations(id, CLAIM_BATCH).await
            } else {
                hub.claim_activities(id, CLAIM_BATCH).await
            };
            match claimed {
                Ok(items) => {
                    for item in items {
                        if tx.send(Ok(item)).await.is_err() {
                            return false;
                        }
                        sent = true;
                    }
                }
                Err(err) => {
                    tracing::warn!(worker.id = id, error = %err, "cannot build work items");
                }
            }
        }
        if !sent {
            return true;
        }
    }
}
