//! A Durable Task SDK: the protocol, a client, a worker and a replay engine.
//!
//! It depends on nothing else of this crate and could be published on its own. It speaks the
//! `TaskHubSidecarService` gRPC protocol, so the same code runs against the Durable Task
//! Scheduler, its emulator, the embedded task hub and the Python SDK's in-memory test backend.
//!
//! # Glossary
//!
//! - **Instance**: one run of an orchestration, named by an instance id chosen by whoever
//!   schedules it. Its state is its history; its status is a [`client::RuntimeStatus`].
//! - **History event**: one durable fact about an instance (started, task scheduled, task
//!   completed, timer fired, event raised, …), appended by the backend and never changed.
//! - **Action**: what an orchestrator asks for in one turn (schedule an activity, create a
//!   timer, complete). The backend turns each action into the history event with the action's
//!   id as its `eventId`.
//! - **Work item**: a unit of work the backend streams to a worker: an orchestration turn (the
//!   past and new history events of one instance) or one activity call.
//! - **Completion token**: the opaque string that comes with a work item and must come back
//!   with its Complete* or Abandon* call, so the backend knows which delivery is being answered.
//!   A token the backend no longer knows (NotFound) means the item was redelivered elsewhere.
//!
//! # Layout
//!
//! [`connection`] parses connection strings; [`auth`] turns their `Authentication` into a
//! credential and caches its tokens ([`auth::TokenSource`], reusable for any Entra scope);
//! [`channel`] builds the tonic channel and stamps every call with `taskhub`, `x-user-agent`,
//! `workerid` and `authorization`. [`client`] and [`worker`] sit on that channel; [`replay`] is
//! the engine the worker calls for orchestration turns, free of I/O.
//!
//! # Client
//!
//! [`client::Client`] is a cheap-to-clone handle whose methods are one unary RPC each. Payloads
//! are serde values encoded as JSON ([`payload`]); gRPC codes become [`error::ClientError`]
//! variants that say whether a retry can help. Waits (`wait_for_start`, `wait_for_completion`)
//! are long polls bounded by the gRPC deadline, so a timeout reads as `DeadlineExceeded`.
//!
//! # Worker
//!
//! [`worker::Worker::start`] spawns one connection loop: Hello with a deadline, then a
//! `GetWorkItems` stream, each item handed to its own task under a local semaphore (the
//! backend's concurrency numbers are only credits). An orchestration item is replayed by
//! [`replay::execute`] on a blocking thread; an activity item runs its registered function.
//! Every item ends with Complete* (carrying its completion token) or, when it cannot be
//! processed here, Abandon*; transient faults are retried a few times, and NotFound is taken to
//! mean the item was already redelivered. Errors inside user code are data: an activity error
//! becomes failure details, an orchestrator error fails the orchestration, and an answer larger
//! than the completion limit fails it with a clear message rather than looping.
//!
//! The loop ends only by the owner's [`worker::WorkerHandle::shutdown`]: any other end of the
//! stream (a peer reset, a backend restart, a watchdog timeout when nothing arrives for the
//! silent-disconnect period) leads to a reconnect after full-jitter exponential backoff, and
//! repeated transport failures rebuild the channel. The connection state is observable as a
//! `watch` of [`worker::ConnectionState`] for health checks.
//!
//! Not supported: entities (their work items are abandoned), history streaming is followed
//! when the backend asks but not advertised, and large-payload externalization.

pub mod auth;
pub mod channel;
pub mod client;
pub mod connection;
pub mod error;
pub mod failure;
pub mod payload;
pub mod proto;
pub mod registry;
pub mod replay;
pub mod time;
pub mod worker;

pub use failure::FailureDetails;
pub use registry::{ActivityContext, Registry};
pub use replay::{OrchestrationContext, RetryPolicy};
