//! Sending a work item's result back: Complete* and Abandon*, retried on transient faults.

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Status};

use super::super::channel::SidecarClient;
use super::super::proto;

/// How many times a completion or abandon is sent before giving up.
const ATTEMPTS: u32 = 5;
/// The first pause between attempts; it doubles each time.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// What became of a completion.
#[derive(Debug)]
pub(super) enum Delivery {
    /// The backend took it.
    Delivered,
    /// The backend no longer knows the token: the item's lock expired and it was redelivered.
    AlreadyRedelivered,
    /// It could not be delivered.
    Failed(Status),
}

fn is_transient(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Internal | Code::Unknown)
}

/// Runs `call` until it succeeds, fails for good, or runs out of attempts.
async fn with_retries<F, Fut>(what: &'static str, first_pause: Duration, mut call: F) -> Delivery
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let mut pause = first_pause;
    for attempt in 1..=ATTEMPTS {
        match call().await {
            Ok(()) => return Delivery::Delivered,
            Err(status) if status.code() == Code::NotFound => {
                return Delivery::AlreadyRedelivered;
            }
            Err(status) if is_transient(status.code()) && attempt < ATTEMPTS => {
                tracing::warn!(rpc = what, attempt, code = ?status.code(), message = status.message(), "retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(status) => return Delivery::Failed(status),
        }
    }
    unreachable!("the last attempt always returns")
}

/// Sends an orchestrator's response.
pub(super) async fn orchestration(
    grpc: &SidecarClient,
    response: proto::OrchestratorResponse,
) -> Delivery {
    with_retries("CompleteOrchestratorTask", FIRST_PAUSE, || {
        let mut grpc = grpc.clone();
        let response = response.clone();
        async move { grpc.complete_orchestrator_task(response).await.map(drop) }
    })
    .await
}

/// Sends an activity's result.
pub(super) async fn activity(grpc: &SidecarClient, response: proto::ActivityResponse) -> Delivery {
    with_retries("CompleteActivityTask", FIRST_PAUSE, || {
        let mut grpc = grpc.clone();
        let response = response.clone();
        async move { grpc.complete_activity_task(response).await.map(drop) }
    })
    .await
}

/// Gives an orchestration work item back for redelivery.
pub(super) async fn abandon_orchestration(grpc: &SidecarClient, token: &str) -> Delivery {
    with_retries("AbandonTaskOrchestratorWorkItem", FIRST_PAUSE, || {
        let mut grpc = grpc.clone();
        let request = proto::AbandonOrchestrationTaskRequest {
            completion_token: token.to_owned(),
        };
        async move {
            grpc.abandon_task_orchestrator_work_item(request)
                .await
                .map(drop)
        }
    })
    .await
}

/// Gives an activity work item back for redelivery.
pub(super) async fn abandon_activity(grpc: &SidecarClient, token: &str) -> Delivery {
    with_retries("AbandonTaskActivityWorkItem", FIRST_PAUSE, || {
        let mut grpc = grpc.clone();
        let request = proto::AbandonActivityTaskRequest {
            completion_token: token.to_owned(),
        };
        async move {
            grpc.abandon_task_activity_work_item(request)
                .await
                .map(drop)
        }
    })
    .await
}

/// Logs how a delivery ended, at the level its outcome deserves.
pub(super) fn log(what: &'static str, delivery: &Delivery) {
    match delivery {
        Delivery::Delivered => tracing::debug!(rpc = what, "delivered"),
        Delivery::AlreadyRedelivered => {
            tracing::info!(
                rpc = what,
                "the backend no longer holds this work item; it was redelivered"
            )
        }
        Delivery::Failed(status) => tracing::error!(
            rpc = what,
            code = ?status.code(),
            message = status.message(),
            "could not deliver"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn run(codes: Vec<Code>) -> (Delivery, u32) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let delivery = with_retries("Test", Duration::ZERO, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            let code = codes.get(n).copied().unwrap_or(Code::Ok);
            async move {
                if code == Code::Ok {
                    Ok(())
                } else {
                    Err(Status::new(code, "x"))
                }
            }
        })
        .await;
        (delivery, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn transient_faults_are_retried() {
        let (delivery, calls) = run(vec![Code::Unavailable, Code::Internal]).await;
        assert!(matches!(delivery, Delivery::Delivered), "{delivery:?}");
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn not_found_means_redelivered_and_is_not_retried() {
        let (delivery, calls) = run(vec![Code::NotFound]).await;
        assert!(
            matches!(delivery, Delivery::AlreadyRedelivered),
            "{delivery:?}"
        );
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn permanent_faults_and_exhausted_retries_fail() {
        let (delivery, calls) = run(vec![Code::InvalidArgument]).await;
        assert!(matches!(delivery, Delivery::Failed(s) if s.code() == Code::InvalidArgument));
        assert_eq!(calls, 1);

        let (delivery, calls) = run(vec![Code::Unavailable; 10]).await;
        assert!(matches!(delivery, Delivery::Failed(s) if s.code() == Code::Unavailable));
        assert_eq!(calls, ATTEMPTS);
    }
}
