//! Running one activity work item: look up the activity, run it, complete with its result or
//! its failure. An activity error is data for the orchestration, never a stream error.

use std::sync::Arc;

use futures::FutureExt;
use prost::Message;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::super::failure::FailureDetails;
use super::super::proto;
use super::super::registry::ActivityContext;
use super::complete::{self, Delivery};
use super::item::ItemContext;

/// Runs the activity under `limit` and sends its result (or abandons it at shutdown).
pub(super) async fn run(
    ctx: Arc<ItemContext>,
    limit: Arc<Semaphore>,
    request: proto::ActivityRequest,
    token: String,
) {
    let instance_id = request
        .orchestration_instance
        .as_ref()
        .map(|i| i.instance_id.clone())
        .unwrap_or_default();
    let span = tracing::debug_span!(
        "work_item",
        work_item.kind = "activity",
        instance.id = %instance_id,
        task.id = request.task_id,
        activity.name = %request.name,
    );

    async move {
        let Some(_permit) = ctx.permit(&limit).await else {
            return give_back(&ctx, &token).await;
        };
        let task_id = request.task_id;

        let outcome = tokio::select! {
            outcome = execute(&ctx, &instance_id, request) => outcome,
            () = ctx.abandoned() => return give_back(&ctx, &token).await,
        };
        let response = respond(&ctx, instance_id, task_id, outcome, token.clone());

        let delivery = complete::activity(&ctx.grpc, response).await;
        complete::log("CompleteActivityTask", &delivery);
        if let Delivery::Failed(_) = delivery {
            give_back(&ctx, &token).await;
        }
    }
    .instrument(span)
    .await
}

async fn execute(
    ctx: &ItemContext,
    instance_id: &str,
    request: proto::ActivityRequest,
) -> Result<Option<String>, FailureDetails> {
    let Some(activity) = ctx.registry.activity(&request.name) else {
        return Err(FailureDetails::new(
            "ActivityTaskNotFound",
            format!(
                "no activity named `{}` is registered with this worker",
                request.name
            ),
        )
        .non_retriable());
    };
    let activity_ctx = ActivityContext {
        instance_id: instance_id.to_owned(),
        task_id: request.task_id,
        name: request.name.clone(),
    };

    tracing::debug!("activity started");
    let future = activity(activity_ctx, request.input);
    // A panic fails this activity only; the worker carries on.
    match std::panic::AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => Err(FailureDetails::new(
            "ActivityPanicked",
            format!(
                "activity `{}` panicked: {}",
                request.name,
                panic_message(&panic)
            ),
        )),
    }
}

fn respond(
    ctx: &ItemContext,
    instance_id: String,
    task_id: i32,
    outcome: Result<Option<String>, FailureDetails>,
    completion_token: String,
) -> proto::ActivityResponse {
    let mut response = proto::ActivityResponse {
        instance_id,
        task_id,
        result: None,
        failure_details: None,
        completion_token,
    };
    match outcome {
        Ok(result) => response.result = result,
        Err(failure) => {
            let mut details: proto::TaskFailureDetails = failure.into();
            // Backends read an empty message as success.
            if details.error_message.is_empty() {
                details.error_message = "(no message)".to_owned();
            }
            response.failure_details = Some(details);
        }
    }

    let size = response.encoded_len();
    if size > ctx.max_completion_bytes {
        response.result = None;
        response.failure_details = Some(
            FailureDetails::new(
                "ResultTooLarge",
                format!(
                    "the activity's completion is {size} bytes, over the limit of {} bytes",
                    ctx.max_completion_bytes
                ),
            )
            .non_retriable()
            .into(),
        );
    }
    response
}

async fn give_back(ctx: &ItemContext, token: &str) {
    tracing::debug!("abandoning activity");
    let delivery = complete::abandon_activity(&ctx.grpc, token).await;
    complete::log("AbandonTaskActivityWorkItem", &delivery);
}

/// The text of a panic payload, when it has one.
pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
