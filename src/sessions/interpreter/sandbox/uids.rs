//! Host uids for sessions of a root service: one per live session, never shared.
//!
//! A uid is claimed process-wide (several interpreters may run in one process, as in tests),
//! and only when no process on the host runs under it already, which keeps two services on
//! one machine, or a session's lingering leftovers, from sharing a uid. Sharing would merge
//! their process budgets and let one session's clean-up kill the other's processes. Among the
//! leftovers: each bubblewrap run leaves a zombie that the host's init may reap late, and a
//! zombie still counts toward its uid's `RLIMIT_NPROC`, so uids rotate instead of being reused
//! at once.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::limits::processes_of;

static CLAIMED: Mutex<Option<HashSet<u32>>> = Mutex::new(None);
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A uid of the range `base..base + count` held for one session until dropped.
#[derive(Debug)]
pub(crate) struct UidClaim(u32);

impl UidClaim {
    /// Claims a free uid of the range, or `None` when every one is taken.
    pub fn claim(base: u32, count: u32) -> Option<Self> {
        let count = count.max(1);
        // Start each process at a random point of the range, so services rarely race.
        let _ = NEXT.compare_exchange(
            u32::MAX,
            rand::random::<u32>() % count,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        let mut claimed = CLAIMED.lock().expect("lock");
        let claimed = claimed.get_or_insert_with(HashSet::new);
        for _ in 0..count {
            let uid = base + NEXT.fetch_add(1, Ordering::Relaxed) % count;
            if !claimed.contains(&uid) && processes_of(uid) == 0 {
                claimed.insert(uid);
                return Some(Self(uid));
            }
        }
        None
    }

    pub fn uid(&self) -> u32 {
        self.0
    }
}

impl Drop for UidClaim {
    fn drop(&mut self) {
        if let Some(claimed) = CLAIMED.lock().expect("lock").as_mut() {
            claimed.remove(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_distinct_uids_and_releases_them() {
        let first = UidClaim::claim(300_000, 2).unwrap();
        let second = UidClaim::claim(300_000, 2).unwrap();
        assert_ne!(first.uid(), second.uid());
        assert!(UidClaim::claim(300_000, 2).is_none());
        drop(first);
        assert!(UidClaim::claim(300_000, 2).is_some());
    }
}
