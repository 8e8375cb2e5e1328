//! The code-evaluation workflow: the orchestration and its run-code activity.
//!
//! One submission is one orchestration instance. It runs the code through the `RunCode` activity
//! (retrying session failures that may pass), publishes the evaluation as its custom status, then
//! races the `HumanApproval` event against a durable timer at the approval deadline. The first to
//! arrive decides; nobody answering in time means rejected.

pub mod activity;
pub mod model;
pub mod orchestrator;

use std::sync::Arc;

pub use activity::{CodeRunner, RunError};

use crate::durabletask::Registry;

/// The orchestrator's registered name.
pub const ORCHESTRATOR: &str = "CodeEvaluation";
/// The activity's registered name.
pub const RUN_CODE_ACTIVITY: &str = "RunCode";
/// The event a reviewer's decision arrives as.
pub const HUMAN_APPROVAL_EVENT: &str = "HumanApproval";

/// Registers the orchestrator and the activity, which runs code through `runner`.
pub fn register(registry: &mut Registry, runner: Arc<dyn CodeRunner>) {
    registry.add_orchestrator(ORCHESTRATOR, orchestrator::evaluate_code);
    registry.add_activity(RUN_CODE_ACTIVITY, move |ctx, input| {
        activity::run_code(runner.clone(), ctx, input)
    });
}
