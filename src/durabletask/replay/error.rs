//! Nondeterminism: a history that does not match what the orchestrator code does now.

/// The error type recorded when an orchestration fails because its history and its code disagree.
pub const NONDETERMINISM_ERROR_TYPE: &str = "NonDeterministicOrchestration";

/// The history records an action that the orchestrator, replayed, did not take the same way.
///
/// This happens when orchestrator code changes while instances are in flight, or when it reads
/// something other than its context (the wall clock, random numbers, I/O). Retrying cannot help:
/// the orchestration fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonDeterminism {
    /// History has an action with an id the replay never created.
    #[error(
        "history records {recorded} `{name}` with id {id}, but the orchestrator code no longer \
         creates an action with that id"
    )]
    MissingAction {
        /// The action id in history.
        id: i32,
        /// The kind of history event.
        recorded: &'static str,
        /// The name in history, if the kind has one.
        name: String,
    },
    /// The action with that id is of another kind or has another name.
    #[error(
        "history records {recorded} `{recorded_name}` with id {id}, but the orchestrator code now \
         creates {created} `{created_name}` with that id"
    )]
    Mismatch {
        /// The action id.
        id: i32,
        /// The kind of history event.
        recorded: &'static str,
        /// The name in history.
        recorded_name: String,
        /// What the code created with that id.
        created: &'static str,
        /// The name the code used.
        created_name: String,
    },
}
