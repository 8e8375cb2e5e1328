//! The replay engine: an orchestrator work item's history in, actions out, with no I/O.
//!
//! Every work item replays the orchestrator from the start. The past events are applied with
//! `is_replaying` set, then the new ones without it. After each event the orchestrator future is
//! polled until it makes no more progress; the actions it created that history has not confirmed
//! are this turn's new actions, sent in id order, with the completion last when the orchestrator
//! returned.
//!
//! Matching is by id: each action takes the next number of a per-execution sequence, the backend
//! records it as the `eventId` of TaskScheduled / TimerCreated / …, and results name it through
//! `taskScheduledId` or `timerId`. An event that records an action the code did not create the
//! same way is a [`NonDeterminism`] and fails the orchestration with a clear message.

mod combinators;
mod context;
mod error;
mod retry;
mod state;
mod tasks;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

pub use combinators::{Either, race, when_all, when_any};
pub use context::OrchestrationContext;
pub use error::{NONDETERMINISM_ERROR_TYPE, NonDeterminism};
pub use retry::RetryPolicy;
pub use tasks::{ActivityTask, EventTask, TimerTask};

use super::failure::FailureDetails;
use super::proto::history_event::EventType;
use super::proto::orchestrator_action::OrchestratorActionType as Action;
use super::proto::{self, HistoryEvent, OrchestrationStatus};
use super::registry::{OrchestratorFuture, OrchestratorOutput, Registry};
use state::ReplayState;

/// How the orchestration ended in this turn, if it did.
enum Ending {
    Returned(OrchestratorOutput),
    Terminated(Option<String>),
    Failed(FailureDetails),
}

/// Replays one orchestrator work item and answers it: instance id, new actions and custom status.
/// The completion token is left for the caller to fill in.
pub fn execute(
    registry: &Registry,
    request: &proto::OrchestratorRequest,
) -> proto::OrchestratorResponse {
    let state = Rc::new(RefCell::new(ReplayState::new(request.instance_id.clone())));
    let mut replay = Replay {
        registry,
        state: state.clone(),
        future: None,
        ending: None,
        suspended: false,
        held: Vec::new(),
        woken: Arc::new(Flag::default()),
    };

    let past = request.past_events.iter().map(|event| (event, true));
    let new = request.new_events.iter().map(|event| (event, false));
    for (event, replaying) in past.chain(new) {
        state.borrow_mut().is_replaying = replaying;
        replay.handle(event);
        if replay.ending_is_final() {
            break;
        }
    }

    // Drop the orchestrator before reading the state, so that cancelled tasks have cleaned up.
    let ending = replay.ending.take();
    let suspended = replay.suspended;
    drop(replay);
    let mut state = state.borrow_mut();
    let actions = match ending {
        _ if suspended => Vec::new(),
        None => state.take_pending(),
        Some(Ending::Returned(output)) => {
            let mut actions = state.take_pending_for_completion();
            let completion = match output {
                Ok(result) => completion(OrchestrationStatus::Completed, result, None),
                Err(failure) => completion(OrchestrationStatus::Failed, None, Some(failure)),
            };
            actions.push(with_id(state.next_action_id(), completion));
            actions
        }
        Some(Ending::Terminated(output)) => {
            let completion = completion(OrchestrationStatus::Terminated, output, None);
            vec![with_id(state.next_action_id(), completion)]
        }
        Some(Ending::Failed(failure)) => {
            let completion = completion(OrchestrationStatus::Failed, None, Some(failure));
            vec![with_id(state.next_action_id(), completion)]
        }
    };

    proto::OrchestratorResponse {
        instance_id: request.instance_id.clone(),
        actions,
        custom_status: state.custom_status.clone(),
        ..Default::default()
    }
}

/// The driver of one replay.
struct Replay<'a> {
    registry: &'a Registry,
    state: Rc<RefCell<ReplayState>>,
    future: Option<OrchestratorFuture>,
    ending: Option<Ending>,
    suspended: bool,
    /// Events that arrived while suspended, applied in order on resume.
    held: Vec<HistoryEvent>,
    woken: Arc<Flag>,
}

impl Replay<'_> {
    /// True once nothing later in history can change the answer.
    fn ending_is_final(&self) -> bool {
        matches!(self.ending, Some(Ending::Terminated(_) | Ending::Failed(_)))
    }

    fn handle(&mut self, event: &HistoryEvent) {
        let Some(kind) = &event.event_type else {
            return;
        };
        match kind {
            EventType::ExecutionTerminated(terminated) => {
                self.ending = Some(Ending::Terminated(terminated.input.clone()));
            }
            EventType::ExecutionSuspended(_) => self.suspended = true,
            EventType::ExecutionResumed(_) => {
                self.suspended = false;
                for held in std::mem::take(&mut self.held) {
                    self.handle(&held);
                }
            }
            _ if self.suspended => self.held.push(event.clone()),
            EventType::ExecutionStarted(started) => self.start(started),
            _ => {
                let applied = self.state.borrow_mut().apply(event);
                if let Err(err) = applied {
                    let failure = FailureDetails::new(NONDETERMINISM_ERROR_TYPE, err.to_string());
                    self.ending = Some(Ending::Failed(failure.non_retriable()));
                    return;
                }
                self.run();
            }
        }
    }

    fn start(&mut self, started: &proto::ExecutionStartedEvent) {
        let Some(orchestrator) = self.registry.orchestrator(&started.name) else {
            let failure = FailureDetails::new(
                "OrchestratorNotFound",
                format!(
                    "no orchestrator named `{}` is registered with this worker",
                    started.name
                ),
            );
            self.ending = Some(Ending::Failed(failure.non_retriable()));
            return;
        };
        let input = started.input.clone().filter(|input| !input.is_empty());
        let ctx = OrchestrationContext::new(self.state.clone());
        self.future = Some(orchestrator(ctx, input));
        self.run();
    }

    /// Polls the orchestrator until it finishes or stops making progress.
    fn run(&mut self) {
        if self.ending.is_some() {
            return;
        }
        let Some(future) = self.future.as_mut() else {
            return;
        };
        let waker = Waker::from(self.woken.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            self.woken.0.store(false, Ordering::SeqCst);
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                self.future = None;
                self.ending = Some(Ending::Returned(output));
                return;
            }
            if !self.woken.0.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

/// A waker that only records that something was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn completion(
    status: OrchestrationStatus,
    result: Option<String>,
    failure: Option<FailureDetails>,
) -> Action {
    Action::CompleteOrchestration(proto::CompleteOrchestrationAction {
        orchestration_status: status as i32,
        result,
        failure_details: failure.map(Into::into),
        ..Default::default()
    })
}

fn with_id(id: i32, action: Action) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(action),
    }
}
