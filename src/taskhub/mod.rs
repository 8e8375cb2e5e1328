//! The embedded task hub: a durable Durable Task backend stored in SQLite, serving the
//! `TaskHubSidecarService` gRPC protocol to Durable Task workers and clients.
//!
//! Data flow: client RPCs ([`hub`] client operations) write instances and inbox events to the
//! [`store`]; [`dispatch`] knows which instances are ready and hands each, one work item at a
//! time, to a worker stream with credit; a completion commits the turn and its actions in one
//! transaction; [`timers`] wakes instances whose timers or scheduled starts fall due and takes
//! back expired leases.

mod dispatch;
mod error;
mod events;
mod hub;
mod server;
mod service;
mod store;
mod time;
mod timers;
mod waiters;

pub use error::TaskHubError;
pub use server::{
    DEFAULT_DATA_DIR, DEFAULT_LISTEN, RunningTaskHub, Storage, TaskHubOptions, serve,
};
