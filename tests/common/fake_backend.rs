//! A scripted fake of `TaskHubSidecarService` on 127.0.0.1, for the faults the in-memory
//! backend cannot produce: hanging Hello, silent streams, health pings, peer cancellation and
//! completion errors. It reports every call it receives, in order, on a channel.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use evalgate::durabletask::proto::task_hub_sidecar_service_server::{
    TaskHubSidecarService, TaskHubSidecarServiceServer,
};
use evalgate::durabletask::proto::{self, history_event, work_item};
use futures::Stream;
use tokio::sync::mpsc;
use tonic::{Code, Request, Response, Status};

type ItemStream = Pin<Box<dyn Stream<Item = Result<proto::WorkItem, Status>> + Send>>;
type HistoryStream = Pin<Box<dyn Stream<Item = Result<proto::HistoryChunk, Status>> + Send>>;

/// What the fake backend received or did, in order.
#[derive(Debug)]
pub enum Seen {
    /// A Hello call, with the connection it came on.
    Hello {
        remote: Option<SocketAddr>,
        headers: tonic::metadata::MetadataMap,
    },
    /// A GetWorkItems call.
    GetWorkItems {
        headers: tonic::metadata::MetadataMap,
        request: proto::GetWorkItemsRequest,
    },
    /// The fake sent its n-th health ping on the current stream.
    PingSent(u32),
    CompleteActivity(proto::ActivityResponse),
    CompleteOrchestration(proto::OrchestratorResponse),
    AbandonActivity(String),
    AbandonOrchestration(String),
}

/// One step of a scripted GetWorkItems stream.
pub enum Step {
    /// Send this work item.
    Item(Box<proto::WorkItem>),
    /// Send `count` health pings, one every `every`.
    Pings { count: u32, every: Duration },
    /// End the stream with this error.
    Fail(Status),
    /// End the stream cleanly (status OK), as a backend drain does.
    End,
}

/// A backend that follows a script and reports everything it sees.
pub struct Fake {
    seen: mpsc::UnboundedSender<Seen>,
    /// How many Hello calls hang before they start answering.
    hanging_hellos: Mutex<u32>,
    /// One script per GetWorkItems call; once they run out, streams stay open and silent.
    sessions: Mutex<VecDeque<Vec<Step>>>,
    /// Codes returned by successive Complete* calls; `Ok` once they run out.
    completion_codes: Mutex<VecDeque<Code>>,
}

fn next_code(codes: &Mutex<VecDeque<Code>>) -> Result<(), Status> {
    match codes.lock().unwrap().pop_front() {
        None | Some(Code::Ok) => Ok(()),
        Some(code) => Err(Status::new(code, "scripted failure")),
    }
}

macro_rules! fake_service {
    ({ $($custom:tt)* } unimplemented { $($name:ident($req:ty) -> $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl TaskHubSidecarService for Fake {
            $($custom)*
            $(
                async fn $name(&self, _request: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(Status::unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

fake_service! {
    {
        type GetWorkItemsStream = ItemStream;
        type StreamInstanceHistoryStream = HistoryStream;

        async fn hello(&self, request: Request<()>) -> Result<Response<()>, Status> {
            let _ = self.seen.send(Seen::Hello {
                remote: request.remote_addr(),
                headers: request.metadata().clone(),
            });
            let hang = {
                let mut hanging = self.hanging_hellos.lock().unwrap();
                let hang = *hanging > 0;
                *hanging = hanging.saturating_sub(1);
                hang
            };
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(Response::new(()))
        }

        async fn get_work_items(
            &self,
            request: Request<proto::GetWorkItemsRequest>,
        ) -> Result<Response<ItemStream>, Status> {
            let headers = request.metadata().clone();
            let _ = self.seen.send(Seen::GetWorkItems { headers, request: request.into_inner() });
            let steps = self.sessions.lock().unwrap().pop_front().unwrap_or_default();
            let (items, stream) = mpsc::channel(16);
            let seen = self.seen.clone();
            tokio::spawn(async move {
                for step in steps {
                    match step {
                        Step::Item(item) => {
                            let _ = items.send(Ok(*item)).await;
                        }
                        Step::Fail(status) => {
                            let _ = items.send(Err(status)).await;
                            return;
                        }
                        Step::End => return,
                        Step::Pings { count, every } => {
                            let mut ticks = tokio::time::interval(every);
                            for n in 1..=count {
                                ticks.tick().await;
                                let _ = seen.send(Seen::PingSent(n));
                                let ping = proto::WorkItem {
                                    request: Some(work_item::Request::HealthPing(proto::HealthPing {})),
                                    completion_token: String::new(),
                                };
                                let _ = items.send(Ok(ping)).await;
                            }
                        }
                    }
                }
                // Keep the stream open and silent until the worker drops it.
                items.closed().await;
            });
            let stream = tokio_stream::wrappers::ReceiverStream::new(stream);
            Ok(Response::new(Box::pin(stream)))
        }

        async fn complete_activity_task(
            &self,
            request: Request<proto::ActivityResponse>,
        ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
            let _ = self.seen.send(Seen::CompleteActivity(request.into_inner()));
            next_code(&self.completion_codes).map(|()| Response::new(proto::CompleteTaskResponse {}))
        }

        async fn complete_orchestrator_task(
            &self,
            request: Request<proto::OrchestratorResponse>,
        ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
            let _ = self.seen.send(Seen::CompleteOrchestration(request.into_inner()));
            next_code(&self.completion_codes).map(|()| Response::new(proto::CompleteTaskResponse {}))
        }

        async fn abandon_task_activity_work_item(
            &self,
            request: Request<proto::AbandonActivityTaskRequest>,
        ) -> Result<Response<proto::AbandonActivityTaskResponse>, Status> {
            let _ = self.seen.send(Seen::AbandonActivity(request.into_inner().completion_token));
            Ok(Response::new(proto::AbandonActivityTaskResponse {}))
        }

        async fn abandon_task_orchestrator_work_item(
            &self,
            request: Request<proto::AbandonOrchestrationTaskRequest>,
        ) -> Result<Response<proto::AbandonOrchestrationTaskResponse>, Status> {
            let token = request.into_inner().completion_token;
            let _ = self.seen.send(Seen::AbandonOrchestration(token));
            Ok(Response::new(proto::AbandonOrchestrationTaskResponse {}))
        }
    }
    unimplemented {
        start_instance(proto::CreateInstanceRequest) -> proto::CreateInstanceResponse;
        get_instance(proto::GetInstanceRequest) -> proto::GetInstanceResponse;
        rewind_instance(proto::RewindInstanceRequest) -> proto::RewindInstanceResponse;
        restart_instance(proto::RestartInstanceRequest) -> proto::RestartInstanceResponse;
        wait_for_instance_start(proto::GetInstanceRequest) -> proto::GetInstanceResponse;
        wait_for_instance_completion(proto::GetInstanceRequest) -> proto::GetInstanceResponse;
        raise_event(proto::RaiseEventRequest) -> proto::RaiseEventResponse;
        terminate_instance(proto::TerminateRequest) -> proto::TerminateResponse;
        suspend_instance(proto::SuspendRequest) -> proto::SuspendResponse;
        resume_instance(proto::ResumeRequest) -> proto::ResumeResponse;
        query_instances(proto::QueryInstancesRequest) -> proto::QueryInstancesResponse;
        list_instance_ids(proto::ListInstanceIdsRequest) -> proto::ListInstanceIdsResponse;
        purge_instances(proto::PurgeInstancesRequest) -> proto::PurgeInstancesResponse;
        complete_entity_task(proto::EntityBatchResult) -> proto::CompleteTaskResponse;
        stream_instance_history(proto::StreamInstanceHistoryRequest) -> HistoryStream;
        create_task_hub(proto::CreateTaskHubRequest) -> proto::CreateTaskHubResponse;
        delete_task_hub(proto::DeleteTaskHubRequest) -> proto::DeleteTaskHubResponse;
        signal_entity(proto::SignalEntityRequest) -> proto::SignalEntityResponse;
        get_entity(proto::GetEntityRequest) -> proto::GetEntityResponse;
        query_entities(proto::QueryEntitiesRequest) -> proto::QueryEntitiesResponse;
        clean_entity_storage(proto::CleanEntityStorageRequest) -> proto::CleanEntityStorageResponse;
        abandon_task_entity_work_item(proto::AbandonEntityTaskRequest) -> proto::AbandonEntityTaskResponse;
        skip_graceful_orchestration_terminations(proto::SkipGracefulOrchestrationTerminationsRequest)
            -> proto::SkipGracefulOrchestrationTerminationsResponse;
    }
}

impl Step {
    /// An activity work item for instance `inst-1`.
    pub fn activity(name: &str, input: &str, task_id: i32, token: &str) -> Self {
        Step::Item(Box::new(proto::WorkItem {
            completion_token: token.into(),
            request: Some(work_item::Request::ActivityRequest(
                proto::ActivityRequest {
                    name: name.into(),
                    input: Some(input.into()),
                    orchestration_instance: Some(proto::OrchestrationInstance {
                        instance_id: "inst-1".into(),
                        execution_id: None,
                    }),
                    task_id,
                    ..Default::default()
                },
            )),
        }))
    }

    /// The first turn of `orchestrator` for instance `inst-o`, without input.
    pub fn first_turn(orchestrator: &str, token: &str) -> Self {
        let event = |event_type| proto::HistoryEvent {
            event_id: -1,
            timestamp: Some(prost_types::Timestamp::default()),
            event_type: Some(event_type),
        };
        Step::Item(Box::new(proto::WorkItem {
            completion_token: token.into(),
            request: Some(work_item::Request::OrchestratorRequest(
                proto::OrchestratorRequest {
                    instance_id: "inst-o".into(),
                    new_events: vec![
                        event(history_event::EventType::OrchestratorStarted(
                            proto::OrchestratorStartedEvent {},
                        )),
                        event(history_event::EventType::ExecutionStarted(
                            proto::ExecutionStartedEvent {
                                name: orchestrator.into(),
                                input: Some(String::new()),
                                ..Default::default()
                            },
                        )),
                    ],
                    ..Default::default()
                },
            )),
        }))
    }
}

/// A running fake backend; the server stops when this is dropped.
pub struct FakeBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything it received, in order.
    pub seen: mpsc::UnboundedReceiver<Seen>,
    server: tokio::task::JoinHandle<()>,
}

/// What the fake should do, call by call.
#[derive(Default)]
pub struct Script {
    /// How many Hello calls hang before Hello answers.
    pub hanging_hellos: u32,
    /// One list of steps per GetWorkItems call.
    pub sessions: Vec<Vec<Step>>,
    /// Codes for successive Complete* calls.
    pub completion_codes: Vec<Code>,
}

impl FakeBackend {
    /// Starts the fake on a free loopback port.
    pub async fn start(script: Script) -> Self {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let fake = Fake {
            seen: seen_tx,
            hanging_hellos: Mutex::new(script.hanging_hellos),
            sessions: Mutex::new(script.sessions.into()),
            completion_codes: Mutex::new(script.completion_codes.into()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TaskHubSidecarServiceServer::new(fake))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        Self { addr, seen, server }
    }

    /// The endpoint, for a connection string.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next thing the fake saw, failing the test after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Seen {
        tokio::time::timeout(timeout, self.seen.recv())
            .await
            .expect("the fake backend saw nothing more in time")
            .expect("the fake backend is running")
    }

    /// Expects a Hello next; returns the peer it came from.
    pub async fn expect_hello(&mut self, timeout: Duration) -> Option<SocketAddr> {
        match self.next(timeout).await {
            Seen::Hello { remote, .. } => remote,
            other => panic!("expected Hello, saw {other:?}"),
        }
    }

    /// Expects a GetWorkItems next; returns its request.
    pub async fn expect_get_work_items(&mut self, timeout: Duration) -> proto::GetWorkItemsRequest {
        match self.next(timeout).await {
            Seen::GetWorkItems { request, .. } => request,
            other => panic!("expected GetWorkItems, saw {other:?}"),
        }
    }

    /// Everything seen and not yet taken. After the worker has shut down, this is all it sent.
    pub fn rest(&mut self) -> Vec<Seen> {
        std::iter::from_fn(|| self.seen.try_recv().ok()).collect()
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        self.server.abort();
    }
}
