//! The timer task: one task that sleeps until the earliest thing due (an inbox event becoming
//! visible, such as a durable timer or a scheduled start, or a lease running out) and then hands
//! it to the hub. Nothing polls: a new, earlier entry wakes the task through its channel.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::time::{self, Micros};

/// Something that becomes due at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    /// An instance's inbox has an event that is now visible.
    Instance(String),
    /// The earliest outstanding lease may have run out.
    Leases,
}

/// A handle for adding entries to the timer task.
#[derive(Clone)]
pub struct Timers {
    tx: mpsc::UnboundedSender<(Micros, Wake)>,
}

impl Timers {
    /// Starts the timer task; `on_due` runs on the task for every entry that falls due.
    pub fn spawn(
        on_due: impl Fn(Wake) + Send + 'static,
        mut shutdown: watch::Receiver<bool>,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Micros, Wake)>();
        tokio::spawn(async move {
            let mut heap: BinaryHeap<Reverse<(Micros, Wake)>> = BinaryHeap::new();
            loop {
                let delay = heap
                    .peek()
                    .map(|Reverse((at, _))| Duration::from_micros((at - time::now()).max(0) as u64))
                    .unwrap_or(Duration::from_secs(3600));
                tokio::select! {
                    entry = rx.recv() => match entry {
                        Some(entry) => heap.push(Reverse(entry)),
                        None => break,
                    },
                    () = tokio::time::sleep(delay) => {
                        let now = time::now();
                        while heap.peek().is_some_and(|Reverse((at, _))| *at <= now) {
                            let Reverse((_, wake)) = heap.pop().expect("peeked");
                            on_due(wake);
                        }
                    }
                    _ = shutdown.changed() => break,
                }
            }
        });
        Self { tx }
    }

    /// Runs `wake` at `at` (at once if that is past).
    pub fn at(&self, at: Micros, wake: Wake) {
        let _ = self.tx.send((at, wake));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_fire_in_time_order() {
        let (_stop, shutdown) = watch::channel(false);
        let (fired_tx, mut fired) = mpsc::unbounded_channel();
        let timers = Timers::spawn(
            move |wake| {
                let _ = fired_tx.send(wake);
            },
            shutdown,
        );
        let now = time::now();
        timers.at(now + 30_000, Wake::Instance("late".into()));
        timers.at(now - 1, Wake::Instance("past".into()));
        timers.at(now + 10_000, Wake::Instance("soon".into()));

        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(fired.recv().await.unwrap());
        }
        assert_eq!(
            order,
            ["past", "soon", "late"]
                .map(|s| Wake::Instance(s.into()))
                .to_vec()
        );
    }
}
