//! The replay engine (being written): history in, actions out, free of I/O.

use super::proto;
use super::registry::Registry;

/// The orchestration's view of its durable state.
#[derive(Clone)]
pub struct OrchestrationContext {}

/// Replays one orchestrator work item and answers it. The completion token is left for the caller.
pub fn execute(
    _registry: &Registry,
    request: &proto::OrchestratorRequest,
) -> proto::OrchestratorResponse {
    proto::OrchestratorResponse {
        instance_id: request.instance_id.clone(),
        ..Default::default()
    }
}
