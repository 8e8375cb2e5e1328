//! The futures an orchestrator awaits: activity results, timers and external events.
//!
//! Each one reads its outcome from the replay state when polled. Dropping one before it finishes
//! cancels it locally: a timer's later TimerFired is ignored, and an event waiter leaves its queue,
//! so it never takes an event meant for a later waiter.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use super::state::{Outcome, ReplayState};
use crate::durabletask::failure::FailureDetails;
use crate::durabletask::payload;

/// A scheduled action with an id whose outcome comes from history.
struct Scheduled {
    state: Rc<RefCell<ReplayState>>,
    id: i32,
    finished: bool,
}

impl Scheduled {
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        match self.state.borrow_mut().poll_task(self.id, cx.waker()) {
            Some(outcome) => {
                self.finished = true;
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Scheduled {
    fn drop(&mut self) {
        // try_borrow: a panic inside a borrow must not turn into a second panic here.
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.forget_task(self.id);
        }
    }
}

/// The result of an activity call, decoded as `O`.
#[must_use = "an activity result does nothing unless awaited"]
pub struct ActivityTask<O> {
    inner: Result<Scheduled, Option<FailureDetails>>,
    output: PhantomData<fn() -> O>,
}

impl<O> ActivityTask<O> {
    pub(crate) fn scheduled(state: Rc<RefCell<ReplayState>>, id: i32) -> Self {
        Self {
            inner: Ok(Scheduled {
                state,
                id,
                finished: false,
            }),
            output: PhantomData,
        }
    }

    /// A call that failed before it could be scheduled, such as an input over the size limit.
    pub(crate) fn failed(failure: FailureDetails) -> Self {
        Self {
            inner: Err(Some(failure)),
            output: PhantomData,
        }
    }
}

impl<O: DeserializeOwned> Future for ActivityTask<O> {
    type Output = Result<O, FailureDetails>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let scheduled = match &mut this.inner {
            Ok(scheduled) => scheduled,
            Err(failure) => {
                let failure = failure
                    .take()
                    .expect("ActivityTask polled after completion");
                return Poll::Ready(Err(failure));
            }
        };
        scheduled.poll_outcome(cx).map(|outcome| match outcome {
            Outcome::Completed(result) => payload::decode(result.as_deref()).map_err(|err| {
                FailureDetails::new("PayloadError", format!("activity result: {err}"))
                    .non_retriable()
            }),
            Outcome::Failed(failure) => Err(failure),
            Outcome::Fired => Err(FailureDetails::new(
                "NonDeterministicOrchestration",
                "a timer event completed an activity task",
            )
            .non_retriable()),
        })
    }
}

/// A durable timer; completes when the backend reports that it fired.
#[must_use = "a timer does nothing unless awaited"]
pub struct TimerTask {
    inner: Scheduled,
}

impl TimerTask {
    pub(crate) fn scheduled(state: Rc<RefCell<ReplayState>>, id: i32) -> Self {
        Self {
            inner: Scheduled {
                state,
                id,
                finished: false,
            },
        }
    }
}

impl Future for TimerTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().inner.poll_outcome(cx).map(|_| ())
    }
}

/// An external event's payload, decoded as `T`.
#[must_use = "an event waiter does nothing unless awaited"]
pub struct EventTask<T> {
    state: Rc<RefCell<ReplayState>>,
    waiter: u64,
    finished: bool,
    payload: PhantomData<fn() -> T>,
}

impl<T> EventTask<T> {
    pub(crate) fn new(state: Rc<RefCell<ReplayState>>, waiter: u64) -> Self {
        Self {
            state,
            waiter,
            finished: false,
            payload: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Future for EventTask<T> {
    type Output = Result<T, FailureDetails>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let delivered = this.state.borrow_mut().poll_waiter(this.waiter, cx.waker());
        match delivered {
            Some(payload) => {
                this.finished = true;
                Poll::Ready(payload::decode(payload.as_deref()).map_err(|err| {
                    FailureDetails::new("PayloadError", format!("event payload: {err}"))
                        .non_retriable()
                }))
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for EventTask<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.remove_waiter(self.waiter);
        }
    }
}
