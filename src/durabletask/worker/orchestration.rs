//! Running one orchestration work item: fetch streamed history if asked, replay it with the
//! engine, and complete with the new actions — or fail the orchestration when the engine panics
//! or its answer is too large to send. (An unknown orchestrator is the engine's to fail.)

use std::sync::Arc;

use futures::StreamExt;
use prost::Message;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::super::failure::FailureDetails;
use super::super::proto;
use super::super::replay;
use super::activity::panic_message;
use super::complete::{self, Delivery};
use super::item::ItemContext;

/// Runs the orchestration turn under `limit` and sends its actions (or abandons it).
pub(super) async fn run(
    ctx: Arc<ItemContext>,
    limit: Arc<Semaphore>,
    request: proto::OrchestratorRequest,
    token: String,
) {
    let span = tracing::debug_span!(
        "work_item",
        work_item.kind = "orchestration",
        instance.id = %request.instance_id,
    );

    async move {
        let Some(_permit) = ctx.permit(&limit).await else {
            return give_back(&ctx, &token).await;
        };

        let response = tokio::select! {
            response = execute(&ctx, request) => response,
            () = ctx.abandoned() => return give_back(&ctx, &token).await,
        };
        let Some(mut response) = response else {
            return give_back(&ctx, &token).await;
        };
        response.completion_token = token.clone();
        enforce_size_limit(&mut response, ctx.max_completion_bytes);
        tracing::debug!(
            actions = response.actions.len(),
            "orchestration turn replayed"
        );

        let delivery = complete::orchestration(&ctx.grpc, response).await;
        complete::log("CompleteOrchestratorTask", &delivery);
        if let Delivery::Failed(_) = delivery {
            give_back(&ctx, &token).await;
        }
    }
    .instrument(span)
    .await
}

/// The engine's answer, or `None` when the item must be given back (its history could not be
/// fetched).
async fn execute(
    ctx: &ItemContext,
    mut request: proto::OrchestratorRequest,
) -> Option<proto::OrchestratorResponse> {
    if request.requires_history_streaming {
        match fetch_history(ctx, &request).await {
            Ok(events) => request.past_events = events,
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "cannot stream history");
                return None;
            }
        }
    }

    let instance_id = request.instance_id.clone();
    // The engine is synchronous and may run user code for a while, so it gets its own thread;
    // a panic there fails the orchestration instead of the worker.
    let registry = ctx.registry.clone();
    match tokio::task::spawn_blocking(move || replay::execute(&registry, &request)).await {
        Ok(response) => Some(response),
        Err(join) if join.is_panic() => {
            let message = panic_message(&join.into_panic());
            let failure = FailureDetails::new(
                "OrchestratorPanicked",
                format!("the orchestrator panicked: {message}"),
            )
            .non_retriable();
            Some(failed(instance_id, Vec::new(), failure))
        }
        Err(_) => None,
    }
}

async fn fetch_history(
    ctx: &ItemContext,
    request: &proto::OrchestratorRequest,
) -> Result<Vec<proto::HistoryEvent>, tonic::Status> {
    let history = proto::StreamInstanceHistoryRequest {
        instance_id: request.instance_id.clone(),
        execution_id: request.execution_id.clone(),
        for_work_item_processing: true,
    };
    let mut chunks = ctx
        .grpc
        .clone()
        .stream_instance_history(history)
        .await?
        .into_inner();
    let mut events = Vec::new();
    while let Some(chunk) = chunks.next().await {
        events.extend(chunk?.events);
    }
    Ok(events)
}

/// Replaces an answer too large to send with one that fails the orchestration and says why.
fn enforce_size_limit(response: &mut proto::OrchestratorResponse, limit: usize) {
    let size = response.encoded_len();
    if size <= limit {
        return;
    }

    tracing::warn!(
        size,
        limit,
        "orchestration answer over the size limit; failing it"
    );
    let failure = FailureDetails::new(
        "ResponseTooLarge",
        format!("the orchestration's answer is {size} bytes, over the limit of {limit} bytes"),
    )
    .non_retriable();
    let token = std::mem::take(&mut response.completion_token);
    let actions = std::mem::take(&mut response.actions);
    *response = failed(std::mem::take(&mut response.instance_id), actions, failure);
    response.completion_token = token;
}

/// An answer that ends the orchestration as failed. `previous` are the actions it replaces;
/// the completion takes the id after theirs.
fn failed(
    instance_id: String,
    previous: Vec<proto::OrchestratorAction>,
    failure: FailureDetails,
) -> proto::OrchestratorResponse {
    use proto::orchestrator_action::OrchestratorActionType;
    let id = previous.iter().map(|a| a.id + 1).max().unwrap_or(1);
    let complete = proto::CompleteOrchestrationAction {
        orchestration_status: proto::OrchestrationStatus::Failed as i32,
        failure_details: Some(failure.into()),
        ..Default::default()
    };
    proto::OrchestratorResponse {
        instance_id,
        actions: vec![proto::OrchestratorAction {
            id,
            orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(complete)),
        }],
        ..Default::default()
    }
}

async fn give_back(ctx: &ItemContext, token: &str) {
    tracing::debug!("abandoning orchestration");
    let delivery = complete::abandon_orchestration(&ctx.grpc, token).await;
    complete::log("AbandonTaskOrchestratorWorkItem", &delivery);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::orchestrator_action::OrchestratorActionType;

    fn schedule(id: i32, input: String) -> proto::OrchestratorAction {
        proto::OrchestratorAction {
            id,
            orchestrator_action_type: Some(OrchestratorActionType::ScheduleTask(
                proto::ScheduleTaskAction {
                    name: "big".into(),
                    input: Some(input),
                    ..Default::default()
                },
            )),
        }
    }

    #[test]
    fn an_oversized_answer_fails_the_orchestration_clearly() {
        let mut response = proto::OrchestratorResponse {
            instance_id: "i".into(),
            actions: vec![schedule(1, "x".repeat(600)), schedule(2, "y".repeat(600))],
            custom_status: Some("\"status\"".into()),
            completion_token: "7".into(),
            ..Default::default()
        };
        enforce_size_limit(&mut response, 1000);

        assert_eq!(response.instance_id, "i");
        assert_eq!(response.completion_token, "7");
        assert_eq!(response.actions.len(), 1);
        assert_eq!(response.actions[0].id, 3);
        let Some(OrchestratorActionType::CompleteOrchestration(done)) =
            &response.actions[0].orchestrator_action_type
        else {
            panic!("expected a completion, got {:?}", response.actions[0]);
        };
        assert_eq!(
            done.orchestration_status,
            proto::OrchestrationStatus::Failed as i32
        );
        let details = done.failure_details.as_ref().unwrap();
        assert_eq!(details.error_type, "ResponseTooLarge");
        assert!(
            details.error_message.contains("1000 bytes"),
            "{}",
            details.error_message
        );
        assert!(details.is_non_retriable);
    }

    #[test]
    fn an_answer_within_the_limit_is_left_alone() {
        let mut response = proto::OrchestratorResponse {
            actions: vec![schedule(1, "x".into())],
            ..Default::default()
        };
        let before = response.clone();
        enforce_size_limit(&mut response, 1000);
        assert_eq!(response, before);
    }
}
