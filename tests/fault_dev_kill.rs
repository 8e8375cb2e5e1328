//! `handler dev` killed with SIGKILL at seeded random moments during a stream of submissions and
//! approvals, and restarted on the same data directory each time. Every submission must end
//! approved exactly once with its own decision: none lost, none duplicated.
//!
//! Retried submissions carry an `Idempotency-Key`, so a submission whose 202 was lost to a kill
//! finds its instance again instead of starting a second one. The seed is printed; set
//! `EVALGATE_FAULT_SEED` to replay a run.

mod common;
mod fault_common;

use std::time::Duration;

use common::stack::DevStack;
use fault_common::{Chaos, Victim, kill_plan, seeded_rng, stream};

/// Submissions in the stream.
const SUBMISSIONS: usize = 40;
/// Kills spread over the stream's operations.
const KILLS: usize = 10;

impl Victim for DevStack {
    fn api(&self) -> String {
        self.api.clone()
    }

    fn kill(&mut self) {
        DevStack::kill(self);
    }

    fn restart(&mut self) {
        DevStack::restart(self);
    }

    fn api_survives(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_during_submissions_and_approvals_loses_and_duplicates_nothing() {
    let mut rng = seeded_rng();
    let ops = stream(SUBMISSIONS, 4);
    let kills = kill_plan(&mut rng, ops.len(), KILLS, Duration::from_millis(200));

    let dir = tempfile::tempdir().unwrap();
    let stack = DevStack::start(dir.path(), &[("APPROVAL_TIMEOUT", "1h")]);
    let mut chaos = Chaos::new(stack);
    for (index, op) in ops.iter().enumerate() {
        chaos.run(*op, kills.get(&index).copied()).await;
    }
    chaos.check_exactly_once(SUBMISSIONS).await;
}
