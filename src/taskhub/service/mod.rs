//! The `TaskHubSidecarService` gRPC service: each RPC delegates to a hub operation. RPCs this
//! backend does not implement (entities, rewind, restart, task hub management) answer
//! UNIMPLEMENTED and say so.

mod client;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use crate::durabletask::proto::{self, task_hub_sidecar_service_server::TaskHubSidecarService};
use crate::taskhub::hub::{Hub, WaitFor};

/// How many history events go into one HistoryChunk.
const HISTORY_CHUNK: usize = 100;

/// The gRPC service over a hub.
pub struct Service {
    hub: Arc<Hub>,
    ping_every: Duration,
}

impl Service {
    /// A service over `hub` that pings idle worker streams every `ping_every`.
    pub fn new(hub: Arc<Hub>, ping_every: Duration) -> Self {
        Self { hub, ping_every }
    }
}

fn unsupported<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "this task hub backend does not support {what}"
    )))
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TaskHubSidecarService for Service {
    async fn hello(&self, _: Request<()>) -> Answer<()> {
        Ok(Response::new(()))
    }

    async fn start_instance(
        &self,
        request: Request<proto::CreateInstanceRequest>,
    ) -> Answer<proto::CreateInstanceResponse> {
        let instance_id = self.hub.start(request.into_inner()).await?;
        Ok(Response::new(proto::CreateInstanceResponse { instance_id }))
    }

    async fn get_instance(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Answer<proto::GetInstanceResponse> {
        let request = request.into_inner();
        let state = self
            .hub
            .get(request.instance_id, request.get_inputs_and_outputs)
            .await?;
        Ok(Response::new(proto::GetInstanceResponse {
            exists: state.is_some(),
            orchestration_state: state,
        }))
    }

    async fn rewind_instance(
        &self,
        _: Request<proto::RewindInstanceRequest>,
    ) -> Answer<proto::RewindInstanceResponse> {
        unsupported("RewindInstance")
    }

    async fn restart_instance(
        &self,
        _: Request<proto::RestartInstanceRequest>,
    ) -> Answer<proto::RestartInstanceResponse> {
        unsupported("RestartInstance")
    }

    async fn wait_for_instance_start(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Answer<proto::GetInstanceResponse> {
        self.wait(request, WaitFor::Start).await
    }

    async fn wait_for_instance_completion(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Answer<proto::GetInstanceResponse> {
        self.wait(request, WaitFor::Completion).await
    }

    async fn raise_event(
        &self,
        request: Request<proto::RaiseEventRequest>,
    ) -> Answer<proto::RaiseEventResponse> {
        self.hub.raise_event(request.into_inner()).await?;
        Ok(Response::new(proto::RaiseEventResponse {}))
    }

    async fn terminate_instance(
        &self,
        request: Request<proto::TerminateRequest>,
    ) -> Answer<proto::TerminateResponse> {
        self.hub.terminate(request.into_inner()).await?;
        Ok(Response::new(proto::TerminateResponse {}))
    }

    async fn suspend_instance(
        &self,
        request: Request<proto::SuspendRequest>,
    ) -> Answer<proto::SuspendResponse> {
        let request = request.into_inner();
        self.hub
            .suspend_or_resume(request.instance_id, request.reason, true)
            .await?;
        Ok(Response::new(proto::SuspendResponse {}))
    }

    async fn resume_instance(
        &self,
        request: Request<proto::ResumeRequest>,
    ) -> Answer<proto::ResumeResponse> {
        let request = request.into_inner();
        self.hub
            .suspend_or_resume(request.instance_id, request.reason, false)
            .await?;
        Ok(Response::new(proto::ResumeResponse {}))
    }

    async fn query_instances(
        &self,
        request: Request<proto::QueryInstancesRequest>,
    ) -> Answer<proto::QueryInstancesResponse> {
        let (filter, limit, token, payloads) = client::query(request.into_inner());
        let page = self
            .hub
            .query(filter, client::QUERY_ORDER, limit, token)
            .await?;
        Ok(Response::new(proto::QueryInstancesResponse {
            orchestration_state: page.rows.iter().map(|row| row.to_state(payloads)).collect(),
            continuation_token: page.next,
        }))
    }

    async fn list_instance_ids(
        &self,
        request: Request<proto::ListInstanceIdsRequest>,
    ) -> Answer<proto::ListInstanceIdsResponse> {
        let (filter, size, token) = client::list(request.into_inner());
        let page = self
            .hub
            .query(filter, crate::taskhub::store::Order::Completed, size, token)
            .await?;
        Ok(Response::new(proto::ListInstanceIdsResponse {
            instance_ids: page.rows.into_iter().map(|row| row.instance_id).collect(),
            last_instance_key: page.next,
        }))
    }

    async fn purge_instances(
        &self,
        request: Request<proto::PurgeInstancesRequest>,
    ) -> Answer<proto::PurgeInstancesResponse> {
        let request = request.into_inner();
        let recursive = request.recursive;
        let (instance_id, filter) = client::purge(request)?;
        let deleted = self.hub.purge(instance_id, filter, recursive).await?;
        Ok(Response::new(proto::PurgeInstancesResponse {
            deleted_instance_count: deleted as i32,
            is_complete: Some(true),
        }))
    }

    type GetWorkItemsStream = worker::WorkItemStream;

    async fn get_work_items(
        &self,
        request: Request<proto::GetWorkItemsRequest>,
    ) -> Answer<Self::GetWorkItemsStream> {
        let stream = worker::open(self.hub.clone(), request.get_ref(), self.ping_every);
        Ok(Response::new(stream))
    }

    async fn complete_activity_task(
        &self,
        request: Request<proto::ActivityResponse>,
    ) -> Answer<proto::CompleteTaskResponse> {
        self.hub.complete_activity(request.into_inner()).await?;
        Ok(Response::new(proto::CompleteTaskResponse {}))
    }

    async fn complete_orchestrator_task(
        &self,
        request: Request<proto::OrchestratorResponse>,
    ) -> Answer<proto::CompleteTaskResponse> {
        let response = request.into_inner();
        if response.is_partial {
            return unsupported("chunked (partial) orchestrator responses");
        }
        self.hub.complete_orchestration(response).await?;
        Ok(Response::new(proto::CompleteTaskResponse {}))
    }

    async fn complete_entity_task(
        &self,
        _: Request<proto::EntityBatchResult>,
    ) -> Answer<proto::CompleteTaskResponse> {
        unsupported("entities (CompleteEntityTask)")
    }

    type StreamInstanceHistoryStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<proto::HistoryChunk, Status>>>;

    async fn stream_instance_history(
        &self,
        request: Request<proto::StreamInstanceHistoryRequest>,
    ) -> Answer<Self::StreamInstanceHistoryStream> {
        let events = self.hub.history(request.into_inner().instance_id).await?;
        let chunks: Vec<_> = events
            .chunks(HISTORY_CHUNK)
            .map(|chunk| {
                Ok(proto::HistoryChunk {
                    events: chunk.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn create_task_hub(
        &self,
        _: Request<proto::CreateTaskHubRequest>,
    ) -> Answer<proto::CreateTaskHubResponse> {
        unsupported("CreateTaskHub (it serves one task hub)")
    }

    async fn delete_task_hub(
        &self,
        _: Request<proto::DeleteTaskHubRequest>,
    ) -> Answer<proto::DeleteTaskHubResponse> {
        unsupported("DeleteTaskHub (it serves one task hub)")
    }

    async fn signal_entity(
        &self,
        _: Request<proto::SignalEntityRequest>,
    ) -> Answer<proto::SignalEntityResponse> {
        unsupported("entities (SignalEntity)")
    }

    async fn get_entity(
        &self,
        _: Request<proto::GetEntityRequest>,
    ) -> Answer<proto::GetEntityResponse> {
        unsupported("entities (GetEntity)")
    }

    async fn query_entities(
        &self,
        _: Request<proto::QueryEntitiesRequest>,
    ) -> Answer<proto::QueryEntitiesResponse> {
        unsupported("entities (QueryEntities)")
    }

    async fn clean_entity_storage(
        &self,
        _: Request<proto::CleanEntityStorageRequest>,
    ) -> Answer<proto::CleanEntityStorageResponse> {
        unsupported("entities (CleanEntityStorage)")
    }

    async fn abandon_task_activity_work_item(
        &self,
        request: Request<proto::AbandonActivityTaskRequest>,
    ) -> Answer<proto::AbandonActivityTaskResponse> {
        self.hub
            .abandon_activity(&request.into_inner().completion_token)?;
        Ok(Response::new(proto::AbandonActivityTaskResponse {}))
    }

    async fn abandon_task_orchestrator_work_item(
        &self,
        request: Request<proto::AbandonOrchestrationTaskRequest>,
    ) -> Answer<proto::AbandonOrchestrationTaskResponse> {
        self.hub
            .abandon_orchestration(&request.into_inner().completion_token)?;
        Ok(Response::new(proto::AbandonOrchestrationTaskResponse {}))
    }

    async fn abandon_task_entity_work_item(
        &self,
        _: Request<proto::AbandonEntityTaskRequest>,
    ) -> Answer<proto::AbandonEntityTaskResponse> {
        unsupported("entities (AbandonTaskEntityWorkItem)")
    }

    async fn skip_graceful_orchestration_terminations(
        &self,
        _: Request<proto::SkipGracefulOrchestrationTerminationsRequest>,
    ) -> Answer<proto::SkipGracefulOrchestrationTerminationsResponse> {
        unsupported("SkipGracefulOrchestrationTerminations")
    }
}

impl Service {
    async fn wait(
        &self,
        request: Request<proto::GetInstanceRequest>,
        what: WaitFor,
    ) -> Answer<proto::GetInstanceResponse> {
        let timeout = client::deadline(&request);
        let request = request.into_inner();
        let state = self
            .hub
            .wait(
                request.instance_id,
                request.get_inputs_and_outputs,
                what,
                timeout,
            )
            .await?;
        Ok(Response::new(proto::GetInstanceResponse {
            exists: state.is_some(),
            orchestration_state: state,
        }))
    }
}
