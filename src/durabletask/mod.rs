//! A Durable Task SDK: the protocol, a client, a worker and a replay engine.
//!
//! It depends on nothing else of this crate and could be published on its own.

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
