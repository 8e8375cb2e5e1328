//! History-driven tests of the replay engine.
//!
//! A small simulated backend turns each response's actions into history events the way a real
//! backend does, and feeds results back as new events. Every scenario is checked twice: turn by
//! turn (incremental), and as one full replay of the whole history, which must give the same final
//! answer.

mod sim;

use std::time::Duration;

use super::*;
use crate::durabletask::proto::history_event::EventType as E;
use crate::durabletask::time::to_timestamp;

use sim::*;

#[test]
fn activity_success_completes_with_its_result() {
    let registry = registry_with(|ctx, name: Option<String>| async move {
        let greeting: String = ctx.call_activity("Greet", &name).await?;
        Ok(format!("{greeting}!"))
    });
    let mut sim = Sim::start(registry, "Orch", Some("\"Ada\""));

    let first = sim.turn();
    assert_eq!(kinds(&first), [(0, "task")]);
    match first.actions[0].orchestrator_action_type.as_ref().unwrap() {
        Action::ScheduleTask(task) => {
            assert_eq!(task.name, "Greet");
            assert_eq!(task.input.as_deref(), Some("\"Ada\""));
        }
        other => panic!("{other:?}"),
    }

    sim.complete(0, "\"Hello Ada\"");
    let second = sim.turn();
    assert_eq!(status_of(&second), OrchestrationStatus::Completed);
    assert_eq!(
        completion_of(&second).result.as_deref(),
        Some("\"Hello Ada!\"")
    );
    sim.assert_full_replay_matches();
}

#[test]
fn activity_failure_fails_the_orchestration_with_its_details() {
    let registry = registry_with(|ctx, _: ()| async move {
        ctx.call_activity::<_, ()>("Explode", &()).await?;
        Ok(())
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.fail(0, "Boom", false);

    let done = sim.turn();
    assert_eq!(status_of(&done), OrchestrationStatus::Failed);
    let failure = completion_of(&done).failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, "Boom");
    assert_eq!(failure.error_message, "it broke");
    sim.assert_full_replay_matches();
}

#[test]
fn retries_wait_on_durable_timers_then_succeed() {
    let registry = registry_with(|ctx, _: ()| async move {
        let mut policy = RetryPolicy::new(3, Duration::from_secs(5));
        policy.backoff_coefficient = 2.0;
        let value: u32 = ctx.call_activity_with_retry("Flaky", &(), &policy).await?;
        Ok(value)
    });
    let mut sim = Sim::start(registry, "Orch", None);
    assert_eq!(kinds(&sim.turn()), [(0, "task")]);

    sim.fail(0, "Transient", false);
    let backoff = sim.turn();
    assert_eq!(kinds(&backoff), [(1, "timer")]);
    assert_eq!(sim.timers[&1], to_timestamp(at(5)));

    sim.advance(5);
    sim.fire(1);
    assert_eq!(kinds(&sim.turn()), [(2, "task")]);

    sim.fail(2, "Transient", false);
    assert_eq!(kinds(&sim.turn()), [(3, "timer")]);
    assert_eq!(sim.timers[&3], to_timestamp(at(15)), "second wait doubles");

    sim.advance(10);
    sim.fire(3);
    assert_eq!(kinds(&sim.turn()), [(4, "task")]);
    sim.complete(4, "7");
    let done = sim.turn();
    assert_eq!(completion_of(&done).result.as_deref(), Some("7"));
    sim.assert_full_replay_matches();
}

#[test]
fn retries_stop_at_max_attempts_and_on_non_retriable_failures() {
    let registry = registry_with(|ctx, _: ()| async move {
        let policy = RetryPolicy::new(2, Duration::from_secs(1));
        ctx.call_activity_with_retry::<_, ()>("Flaky", &(), &policy)
            .await
    });

    let mut sim = Sim::start(registry.clone(), "Orch", None);
    sim.turn();
    sim.fail(0, "Transient", false);
    sim.turn();
    sim.fire(1);
    sim.turn();
    sim.fail(2, "Transient", false);
    let done = sim.turn();
    assert_eq!(status_of(&done), OrchestrationStatus::Failed);
    sim.assert_full_replay_matches();

    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.fail(0, "Terminal", true);
    let done = sim.turn();
    assert_eq!(kinds(&done), [(1, "complete")], "no retry timer");
    assert_eq!(status_of(&done), OrchestrationStatus::Failed);
}

#[test]
fn timer_fires_at_orchestration_time_plus_delay() {
    let registry = registry_with(|ctx, _: ()| async move {
        ctx.create_timer_after(Duration::from_secs(30)).await;
        Ok(ctx.current_time().timestamp())
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.advance(100);
    let first = sim.turn();
    assert_eq!(kinds(&first), [(0, "timer")]);
    assert_eq!(sim.timers[&0], to_timestamp(at(130)));

    sim.advance(30);
    sim.fire(0);
    let done = sim.turn();
    let expected = at(130).timestamp().to_string();
    assert_eq!(
        completion_of(&done).result.as_deref(),
        Some(expected.as_str())
    );
    sim.assert_full_replay_matches();
}

#[test]
fn event_raised_before_the_wait_is_buffered() {
    let registry = registry_with(|ctx, _: ()| async move {
        ctx.call_activity::<_, ()>("First", &()).await?;
        let approval: String = ctx.wait_for_external_event("Approval").await?;
        Ok(approval)
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.raise("APPROVAL", "\"early\"");
    assert!(
        sim.turn().actions.is_empty(),
        "still waiting for the activity"
    );

    sim.complete(0, "null");
    let done = sim.turn();
    assert_eq!(completion_of(&done).result.as_deref(), Some("\"early\""));
    sim.assert_full_replay_matches();
}

#[test]
fn event_raised_after_the_wait_completes_it_and_waiters_are_fifo() {
    let registry = registry_with(|ctx, _: ()| async move {
        let first = ctx.wait_for_external_event::<u32>("vote");
        let second = ctx.wait_for_external_event::<u32>("Vote");
        let (a, b) = futures::join!(first, second);
        Ok((a?, b?))
    });
    let mut sim = Sim::start(registry, "Orch", None);
    assert!(sim.turn().actions.is_empty());

    sim.raise("VOTE", "1");
    sim.raise("vote", "2");
    let done = sim.turn();
    assert_eq!(completion_of(&done).result.as_deref(), Some("[1,2]"));
    sim.assert_full_replay_matches();
}

fn approval_race() -> Registry {
    registry_with(|ctx, _: ()| async move {
        let timer = ctx.create_timer_after(Duration::from_secs(60));
        let approval = ctx.wait_for_external_event::<bool>("Approval");
        let first = match race(approval, timer).await {
            Either::Left(approved) => format!("approved={}", approved?),
            Either::Right(()) => "timed out".to_owned(),
        };
        // A second waiter after the race: the loser above must not have taken its event.
        let late: String = ctx.wait_for_external_event("Approval").await?;
        Ok(format!("{first}; then {late}"))
    })
}

#[test]
fn event_wins_the_race_against_the_timer() {
    let mut sim = Sim::start(approval_race(), "Orch", None);
    assert_eq!(kinds(&sim.turn()), [(0, "timer")]);

    sim.raise("Approval", "true");
    assert!(sim.turn().actions.is_empty());
    sim.raise("Approval", "\"second\"");
    let done = sim.turn();
    assert_eq!(
        completion_of(&done).result.as_deref(),
        Some("\"approved=true; then second\"")
    );
    sim.assert_full_replay_matches();
}

#[test]
fn timer_wins_the_race_and_the_losing_waiter_takes_no_later_event() {
    let mut sim = Sim::start(approval_race(), "Orch", None);
    sim.turn();

    sim.advance(60);
    sim.fire(0);
    assert!(sim.turn().actions.is_empty(), "waiting for the late event");
    sim.raise("Approval", "\"late\"");
    let done = sim.turn();
    assert_eq!(
        completion_of(&done).result.as_deref(),
        Some("\"timed out; then late\"")
    );
    sim.assert_full_replay_matches();
}

#[test]
fn a_timer_that_lost_a_race_is_not_sent_with_the_completion() {
    let registry = registry_with(|ctx, _: ()| async move {
        let timer = ctx.create_timer_after(Duration::from_secs(60));
        let event = ctx.wait_for_external_event::<u32>("Go");
        match race(event, timer).await {
            Either::Left(value) => value,
            Either::Right(()) => Ok(0),
        }
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.raise("Go", "5");
    let done = sim.turn();
    assert_eq!(kinds(&done), [(1, "complete")]);
    assert_eq!(completion_of(&done).result.as_deref(), Some("5"));

    // A TimerFired for the dropped timer is ignored by a later replay.
    sim.push(E::TimerFired(proto::TimerFiredEvent {
        fire_at: Some(to_timestamp(at(60))),
        timer_id: 0,
    }));
    let again = sim.turn();
    assert_eq!(kinds(&again), [(1, "complete")]);
}

#[test]
fn when_any_returns_the_first_finished_task() {
    let registry = registry_with(|ctx, _: ()| async move {
        let tasks = vec![
            ctx.call_activity::<_, String>("Slow", &()),
            ctx.call_activity::<_, String>("Fast", &()),
        ];
        let (index, output) = when_any(tasks).await;
        Ok((index, output?))
    });
    let mut sim = Sim::start(registry, "Orch", None);
    assert_eq!(kinds(&sim.turn()), [(0, "task"), (1, "task")]);
    sim.complete(1, "\"fast\"");
    let done = sim.turn();
    assert_eq!(completion_of(&done).result.as_deref(), Some("[1,\"fast\"]"));
    sim.assert_full_replay_matches();
}

#[test]
fn changed_code_is_a_nondeterminism_failure() {
    let v1 = registry_with(|ctx, _: ()| async move {
        ctx.call_activity::<_, ()>("Original", &()).await?;
        ctx.call_activity::<_, ()>("Next", &()).await?;
        Ok(())
    });
    let mut sim = Sim::start(v1, "Orch", None);
    sim.turn();
    sim.complete(0, "null");

    sim.registry = registry_with(|ctx, _: ()| async move {
        ctx.call_activity::<_, ()>("Renamed", &()).await?;
        Ok(())
    });
    let done = sim.turn();
    assert_eq!(kinds(&done), [(1, "complete")]);
    assert_eq!(status_of(&done), OrchestrationStatus::Failed);
    let failure = completion_of(&done).failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, NONDETERMINISM_ERROR_TYPE);
    assert!(
        failure.error_message.contains("`Original`"),
        "{}",
        failure.error_message
    );
    assert!(
        failure.error_message.contains("`Renamed`"),
        "{}",
        failure.error_message
    );
    assert!(failure.is_non_retriable);
}

#[test]
fn history_with_an_action_the_code_never_creates_is_nondeterministic() {
    let registry = registry_with(|ctx, _: ()| async move {
        ctx.create_timer_after(Duration::from_secs(1)).await;
        Ok(())
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.history.push(HistoryEvent {
        event_id: 7,
        timestamp: None,
        event_type: Some(E::TaskScheduled(proto::TaskScheduledEvent {
            name: "Ghost".into(),
            ..Default::default()
        })),
    });
    let done = sim.turn();
    let failure = completion_of(&done).failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, NONDETERMINISM_ERROR_TYPE);
    assert!(failure.error_message.contains("Ghost"));
}

#[test]
fn termination_completes_as_terminated_with_its_output() {
    let registry = registry_with(|ctx, _: ()| async move {
        ctx.set_custom_status("waiting").unwrap();
        ctx.wait_for_external_event::<()>("Never").await?;
        Ok(())
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.push(E::ExecutionTerminated(proto::ExecutionTerminatedEvent {
        input: Some("\"stopped by admin\"".into()),
        recurse: false,
    }));
    let done = sim.turn();
    assert_eq!(status_of(&done), OrchestrationStatus::Terminated);
    assert_eq!(
        completion_of(&done).result.as_deref(),
        Some("\"stopped by admin\"")
    );
    assert_eq!(done.custom_status.as_deref(), Some("\"waiting\""));
}

#[test]
fn custom_status_is_sent_with_every_response() {
    let registry = registry_with(|ctx, _: ()| async move {
        ctx.set_custom_status(&serde_json::json!({"stage": "running"}))
            .unwrap();
        ctx.call_activity::<_, ()>("Work", &()).await?;
        ctx.set_custom_status(&serde_json::json!({"stage": "waiting"}))
            .unwrap();
        ctx.wait_for_external_event::<()>("Go").await?;
        Ok(())
    });
    let mut sim = Sim::start(registry, "Orch", None);
    assert_eq!(
        sim.turn().custom_status.as_deref(),
        Some(r#"{"stage":"running"}"#)
    );
    sim.complete(0, "null");
    assert_eq!(
        sim.turn().custom_status.as_deref(),
        Some(r#"{"stage":"waiting"}"#)
    );
    sim.raise("Other", "1");
    assert_eq!(
        sim.turn().custom_status.as_deref(),
        Some(r#"{"stage":"waiting"}"#),
        "a turn that changes nothing still carries the status"
    );
    sim.raise("Go", "null");
    sim.turn();
    sim.assert_full_replay_matches();
}

#[test]
fn suspended_instances_hold_events_until_resumed() {
    let registry = registry_with(|ctx, _: ()| async move {
        let value: u32 = ctx.wait_for_external_event("Go").await?;
        Ok(value)
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.push(E::ExecutionSuspended(Default::default()));
    sim.raise("Go", "3");
    assert!(sim.turn().actions.is_empty(), "no progress while suspended");

    sim.push(E::ExecutionResumed(Default::default()));
    let done = sim.turn();
    assert_eq!(completion_of(&done).result.as_deref(), Some("3"));
    sim.assert_full_replay_matches();
}

#[test]
fn unknown_orchestrator_fails_clearly() {
    let mut sim = Sim::start(Registry::new(), "Missing", None);
    let done = sim.turn();
    assert_eq!(status_of(&done), OrchestrationStatus::Failed);
    let failure = completion_of(&done).failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, "OrchestratorNotFound");
    assert!(failure.error_message.contains("Missing"));
}

#[test]
fn replay_flag_clock_and_guids_are_deterministic() {
    let registry = registry_with(|ctx, _: ()| async move {
        let before = (ctx.is_replaying(), ctx.new_guid());
        ctx.create_timer_after(Duration::from_secs(1)).await;
        let after = (
            ctx.is_replaying(),
            ctx.new_guid(),
            ctx.current_time().timestamp(),
        );
        Ok((before, after))
    });
    let mut sim = Sim::start(registry, "Orch", None);
    sim.turn();
    sim.advance(1);
    sim.fire(0);
    let done = sim.turn();
    let (before, after): ((bool, uuid::Uuid), (bool, uuid::Uuid, i64)) =
        serde_json::from_str(completion_of(&done).result.as_deref().unwrap()).unwrap();
    assert!(
        before.0,
        "the first step replays from history in the second turn"
    );
    assert!(!after.0, "the step after the new TimerFired is live");
    assert_ne!(before.1, after.1);
    assert_eq!(after.2, at(1).timestamp());
    // No full-replay check here: in a full replay every event is new, so is_replaying differs.
}

#[test]
fn oversized_activity_input_fails_with_the_limit_named() {
    let registry = registry_with(|ctx, _: ()| async move {
        let big = "x".repeat(crate::durabletask::payload::MAX_PAYLOAD_BYTES + 10);
        ctx.call_activity::<_, ()>("Work", &big).await?;
        Ok(())
    });
    let mut sim = Sim::start(registry, "Orch", None);
    let done = sim.turn();
    assert_eq!(kinds(&done), [(0, "complete")], "nothing is scheduled");
    let failure = completion_of(&done).failure_details.as_ref().unwrap();
    assert!(
        failure.error_message.contains("1048576"),
        "{}",
        failure.error_message
    );
}
