//! The registry: orchestrators and activities by name, with their payloads typed by serde.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::failure::FailureDetails;
use super::payload::{self, PayloadError};
use super::replay::OrchestrationContext;

/// What an orchestrator returns: its JSON output, or why it failed.
pub type OrchestratorOutput = Result<Option<String>, FailureDetails>;

/// A running orchestrator. It is polled only inside one replay and never crosses threads.
pub type OrchestratorFuture = Pin<Box<dyn Future<Output = OrchestratorOutput>>>;

/// An orchestrator with its payloads erased to JSON strings.
pub type OrchestratorFn =
    Arc<dyn Fn(OrchestrationContext, Option<String>) -> OrchestratorFuture + Send + Sync>;

/// An activity with its payloads erased to JSON strings.
pub type ActivityFn = Arc<
    dyn Fn(
            ActivityContext,
            Option<String>,
        ) -> BoxFuture<'static, Result<Option<String>, FailureDetails>>
        + Send
        + Sync,
>;

/// What an activity knows about the task it runs for.
#[derive(Debug, Clone)]
pub struct ActivityContext {
    /// The orchestration instance that scheduled the activity.
    pub instance_id: String,
    /// The activity's task id within that instance; with the instance id it names one call.
    pub task_id: i32,
    /// The activity's registered name.
    pub name: String,
}

/// Orchestrators and activities by name. Cheap to clone; shared by every work item of a worker.
#[derive(Clone, Default)]
pub struct Registry {
    orchestrators: HashMap<String, OrchestratorFn>,
    activities: HashMap<String, ActivityFn>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an orchestrator: an async function of a context and a typed input.
    pub fn add_orchestrator<I, O, F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, FailureDetails>> + 'static,
    {
        let f = Arc::new(f);
        let erased: OrchestratorFn = Arc::new(move |ctx, input| {
            let f = f.clone();
            Box::pin(async move {
                let input: I = payload::decode(input.as_deref()).map_err(input_error)?;
                let output = f(ctx, input).await?;
                payload::encode(&output).map(Some).map_err(output_error)
            })
        });
        self.orchestrators.insert(name.into(), erased);
        self
    }

    /// Registers an activity: an async function of a context and a typed input.
    pub fn add_activity<I, O, F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, FailureDetails>> + Send + 'static,
    {
        let f = Arc::new(f);
        let erased: ActivityFn = Arc::new(move |ctx, input| {
            let f = f.clone();
            Box::pin(async move {
                let input: I = payload::decode(input.as_deref()).map_err(input_error)?;
                let output = f(ctx, input).await?;
                payload::encode(&output).map(Some).map_err(output_error)
            })
        });
        self.activities.insert(name.into(), erased);
        self
    }

    /// The orchestrator registered under `name`.
    pub fn orchestrator(&self, name: &str) -> Option<&OrchestratorFn> {
        self.orchestrators.get(name)
    }

    /// The activity registered under `name`.
    pub fn activity(&self, name: &str) -> Option<&ActivityFn> {
        self.activities.get(name)
    }

    /// The names of every registered orchestrator, for work-item filters.
    pub fn orchestrator_names(&self) -> impl Iterator<Item = &str> {
        self.orchestrators.keys().map(String::as_str)
    }

    /// The names of every registered activity, for work-item filters.
    pub fn activity_names(&self) -> impl Iterator<Item = &str> {
        self.activities.keys().map(String::as_str)
    }
}

fn input_error(err: PayloadError) -> FailureDetails {
    FailureDetails::new("PayloadError", format!("input: {err}")).non_retriable()
}

fn output_error(err: PayloadError) -> FailureDetails {
    FailureDetails::new("PayloadError", format!("output: {err}")).non_retriable()
}
