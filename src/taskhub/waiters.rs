//! Notifications for long polls: a waiter on an instance is woken whenever that instance's state
//! changes, then reads the state again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Per-instance notifications. An entry exists only while someone waits.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    /// The notification of an instance; call [`Waiters::release`] when done with it.
    pub fn subscribe(&self, instance_id: &str) -> Arc<Notify> {
        let mut map = self.map.lock().expect("waiters lock");
        map.entry(instance_id.to_owned()).or_default().clone()
    }

    /// Drops the entry when no one else waits on it.
    pub fn release(&self, instance_id: &str, notify: Arc<Notify>) {
        let mut map = self.map.lock().expect("waiters lock");
        drop(notify);
        if map
            .get(instance_id)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            map.remove(instance_id);
        }
    }

    /// Wakes everyone waiting on these instances.
    pub fn notify<'a>(&self, instance_ids: impl IntoIterator<Item = &'a String>) {
        let map = self.map.lock().expect("waiters lock");
        for id in instance_ids {
            if let Some(notify) = map.get(id) {
                notify.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_a_subscribed_waiter_and_entries_are_freed() {
        let waiters = Waiters::default();
        let notify = waiters.subscribe("a");
        {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            waiters.notify([&"a".to_owned()]);
            notified.await;
        }
        waiters.release("a", notify);
        assert!(waiters.map.lock().unwrap().is_empty());
    }
}
