//! The client: schedules, reads, signals, waits for and purges orchestration instances.
//!
//! Every method is one unary RPC on `TaskHubSidecarService`. Payloads are serde values sent as
//! JSON. gRPC codes become [`ClientError`] variants so callers can tell "no such instance" from
//! "try again".

mod instance;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tonic::transport::Channel;

use super::auth::{DTS_SCOPE, TokenSource, credential_for};
use super::channel::{CallMetadata, SidecarClient, connect_lazy, sidecar_client};
use super::connection::ConnectionString;
pub use super::error::{ClientError, ConnectError};
use super::payload;
use super::proto;
use super::time::to_timestamp;
pub use instance::{
    InstanceQuery, InstanceState, PurgeFilter, PurgeResult, QueryPage, RuntimeStatus,
};

/// How [`Client::schedule_new_orchestration`] starts an instance.
#[derive(Debug, Clone, Default)]
pub struct ScheduleOptions {
    /// The instance id; a random one when `None`.
    pub instance_id: Option<String>,
    /// When the orchestration should start; at once when `None`.
    pub start_at: Option<DateTime<Utc>>,
    /// Statuses of an existing instance with the same id that may be replaced. Empty means an
    /// existing id is refused with [`ClientError::AlreadyExists`].
    pub reuse_statuses: Vec<RuntimeStatus>,
}

/// A client of one task hub. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    grpc: SidecarClient,
}

impl Client {
    /// A client for the backend and task hub of `connection`. Connects on first use.
    pub fn new(connection: &ConnectionString) -> Result<Self, ConnectError> {
        let tokens = credential_for(connection)?.map(|c| TokenSource::new(c, DTS_SCOPE));
        let channel = connect_lazy(&connection.endpoint)?;
        Ok(Self::from_channel(
            channel,
            CallMetadata::new(&connection.task_hub, tokens),
        ))
    }

    /// A client over an existing channel, with `metadata` on every call.
    pub fn from_channel(channel: Channel, metadata: CallMetadata) -> Self {
        Self {
            grpc: sidecar_client(channel, metadata),
        }
    }

    /// Checks that the backend answers.
    pub async fn hello(&self) -> Result<(), ClientError> {
        self.grpc.clone().hello(()).await?;
        Ok(())
    }

    /// Schedules a new instance of orchestrator `name` with `input`; returns its instance id.
    pub async fn schedule_new_orchestration<I: Serialize + ?Sized>(
        &self,
        name: &str,
        input: &I,
        options: ScheduleOptions,
    ) -> Result<String, ClientError> {
        let instance_id = options
            .instance_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let reuse =
            (!options.reuse_statuses.is_empty()).then(|| proto::OrchestrationIdReusePolicy {
                replaceable_status: options
                    .reuse_statuses
                    .iter()
                    .map(|s| s.to_proto() as i32)
                    .collect(),
            });
        let request = proto::CreateInstanceRequest {
            instance_id,
            name: name.to_owned(),
            input: Some(payload::encode(input)?),
            scheduled_start_timestamp: options.start_at.map(to_timestamp),
            orchestration_id_reuse_policy: reuse,
            request_time: Some(to_timestamp(Utc::now())),
            ..Default::default()
        };

        let response = self.grpc.clone().start_instance(request).await?;
        Ok(response.into_inner().instance_id)
    }

    /// The instance's current state, or `None` when there is no such instance. Inputs and
    /// outputs are included only when `fetch_payloads` is set.
    pub async fn get_instance(
        &self,
        instance_id: &str,
        fetch_payloads: bool,
    ) -> Result<Option<InstanceState>, ClientError> {
        let request = get_request(instance_id, fetch_payloads);
        let response = self.grpc.clone().get_instance(request).await?.into_inner();
        existing(response).transpose()
    }

    /// Waits until the instance has started (left Pending), at most `timeout`.
    pub async fn wait_for_start(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<InstanceState, ClientError> {
        let mut request = tonic::Request::new(get_request(instance_id, true));
        request.set_timeout(timeout);
        let response = self.grpc.clone().wait_for_instance_start(request).await?;
        required(instance_id, response.into_inner())
    }

    /// Waits until the instance reaches a terminal status, at most `timeout`. The state
    /// includes payloads.
    pub async fn wait_for_completion(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<InstanceState, ClientError> {
        let mut request = tonic::Request::new(get_request(instance_id, true));
        request.set_timeout(timeout);
        let response = self
            .grpc
            .clone()
            .wait_for_instance_completion(request)
            .await?;
        required(instance_id, response.into_inner())
    }

    /// Sends external event `name` with `payload` to the instance.
    pub async fn raise_event<P: Serialize + ?Sized>(
        &self,
        instance_id: &str,
        name: &str,
        payload: &P,
    ) -> Result<(), ClientError> {
        let request = proto::RaiseEventRequest {
            instance_id: instance_id.to_owned(),
            name: name.to_owned(),
            input: Some(payload::encode(payload)?),
        };
        self.grpc.clone().raise_event(request).await?;
        Ok(())
    }

    /// Ends the instance as Terminated with `output`. The worker applies it on its next turn.
    pub async fn terminate<O: Serialize + ?Sized>(
        &self,
        instance_id: &str,
        output: &O,
    ) -> Result<(), ClientError> {
        let request = proto::TerminateRequest {
            instance_id: instance_id.to_owned(),
            output: Some(payload::encode(output)?),
            recursive: false,
        };
        self.grpc.clone().terminate_instance(request).await?;
        Ok(())
    }

    /// Pauses the instance: later events wait until it is resumed.
    pub async fn suspend(&self, instance_id: &str, reason: &str) -> Result<(), ClientError> {
        let request = proto::SuspendRequest {
            instance_id: instance_id.to_owned(),
            reason: (!reason.is_empty()).then(|| reason.to_owned()),
        };
        self.grpc.clone().suspend_instance(request).await?;
        Ok(())
    }

    /// Resumes a suspended instance.
    pub async fn resume(&self, instance_id: &str, reason: &str) -> Result<(), ClientError> {
        let request = proto::ResumeRequest {
            instance_id: instance_id.to_owned(),
            reason: (!reason.is_empty()).then(|| reason.to_owned()),
        };
        self.grpc.clone().resume_instance(request).await?;
        Ok(())
    }

    /// Deletes a terminal instance and its history.
    pub async fn purge(&self, instance_id: &str) -> Result<PurgeResult, ClientError> {
        self.purge_request(proto::purge_instances_request::Request::InstanceId(
            instance_id.to_owned(),
        ))
        .await
    }

    /// Deletes every terminal instance that matches `filter`.
    pub async fn purge_where(&self, filter: &PurgeFilter) -> Result<PurgeResult, ClientError> {
        self.purge_request(
            proto::purge_instances_request::Request::PurgeInstanceFilter(filter.to_proto()),
        )
        .await
    }

    async fn purge_request(
        &self,
        which: proto::purge_instances_request::Request,
    ) -> Result<PurgeResult, ClientError> {
        let request = proto::PurgeInstancesRequest {
            request: Some(which),
            recursive: false,
            is_orchestration: true,
        };
        let response = self
            .grpc
            .clone()
            .purge_instances(request)
            .await?
            .into_inner();
        Ok(PurgeResult {
            deleted: u32::try_from(response.deleted_instance_count).unwrap_or(0),
            complete: response.is_complete.unwrap_or(true),
        })
    }

    /// One page of the instances matching `query`.
    pub async fn query(&self, query: &InstanceQuery) -> Result<QueryPage, ClientError> {
        let request = proto::QueryInstancesRequest {
            query: Some(query.to_proto()),
        };
        let response = self
            .grpc
            .clone()
            .query_instances(request)
            .await?
            .into_inner();
        let instances = response
            .orchestration_state
            .into_iter()
            .map(InstanceState::from_proto)
            .collect::<Result<_, _>>()?;
        Ok(QueryPage {
            instances,
            continuation: response.continuation_token.filter(|t| !t.is_empty()),
        })
    }
}

fn get_request(instance_id: &str, fetch_payloads: bool) -> proto::GetInstanceRequest {
    proto::GetInstanceRequest {
        instance_id: instance_id.to_owned(),
        get_inputs_and_outputs: fetch_payloads,
    }
}

fn existing(response: proto::GetInstanceResponse) -> Option<Result<InstanceState, ClientError>> {
    if !response.exists {
        return None;
    }
    Some(
        response
            .orchestration_state
            .ok_or_else(|| ClientError::InvalidResponse("instance exists but has no state".into()))
            .and_then(InstanceState::from_proto),
    )
}

fn required(
    instance_id: &str,
    response: proto::GetInstanceResponse,
) -> Result<InstanceState, ClientError> {
    existing(response)
        .unwrap_or_else(|| Err(ClientError::NotFound(format!("instance {instance_id}"))))
}
