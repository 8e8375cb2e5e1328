//! Running code in a session: the client of the Azure Container Apps session-pool data plane,
//! and the local code interpreter that serves the same API on loopback.
//!
//! [`SessionClient`] posts one execution to a pool (or the local interpreter) and returns a
//! typed [`Execution`], whatever the contract's response shape. It never retries on its own:
//! the orchestration's durable retry policy owns retries, guided by
//! [`SessionError::is_retryable`].

mod client;
mod contract;
mod error;
mod execution;
pub mod interpreter;

pub use client::{SessionClient, SessionClientOptions};
pub use contract::ApiContract;
pub use error::SessionError;
pub use execution::{ExecuteRequest, Execution, ExecutionStatus, InvalidSessionId, SessionId};
