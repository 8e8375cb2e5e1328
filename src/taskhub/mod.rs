//! The embedded task hub: a durable Durable Task backend stored in SQLite, serving the
//! `TaskHubSidecarService` gRPC protocol to Durable Task workers and clients.
//!
//! Data flow: client RPCs ([`hub`] client operations) write instances and inbox events to the
//! [`store`]; [`dispatch`] knows which instances are ready and hands each, one work item at a
//! time, to a worker stream with credit; a completion commits the turn and its actions in one
//! transaction; [`timers`] wakes instances whose timers or scheduled starts fall due and takes
//! back expired leases.
//!
//! Guarantees:
//! * every change an RPC acknowledges is committed (WAL, `synchronous=FULL`) before the answer;
//! * one orchestrator work item per instance at a time; events that arrive meanwhile go into
//!   the next one;
//! * every delivery has its own completion token; a completion or abandon with a token that is
//!   not outstanding gets NOT_FOUND and changes nothing;
//! * a lease ends when its worker's stream goes away or after `lease_timeout`, and the item is
//!   delivered again (activities are therefore at-least-once);
//! * after a restart, pending events and queued activities are delivered again, and timers that
//!   fell due meanwhile fire at once.
//!
//! Limits, each answered or logged where it applies: entities, rewind, restart, task hub
//! management, purge by instance batch and chunked responses answer UNIMPLEMENTED; entity
//! filters are ignored; leases are kept in memory, since a lease belongs to a stream of this
//! process.

mod dispatch;
mod error;
mod events;
mod filters;
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
