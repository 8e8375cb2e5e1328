//! Dispatch: which instances and activities are ready, which are leased to which worker stream,
//! and how many more items each stream may take.
//!
//! This state lives in memory only. A lease belongs to one open GetWorkItems stream of this
//! process, so none survives a restart: after a restart every pending event and queued activity
//! is simply ready again. Nothing here touches the store; callers keep the store's lock order
//! (store thread first, then this lock, never the reverse).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::Notify;

use super::filters::WorkFilter;
use super::time::Micros;
use crate::durabletask::proto;

/// Identifies one GetWorkItems stream.
pub type WorkerId = u64;

/// An orchestrator work item handed to a worker.
#[derive(Debug, Clone)]
pub struct OrchestrationLease {
    /// The instance.
    pub instance_id: String,
    /// The execution the work item was built for.
    pub execution_id: String,
    /// The inbox rows the work item delivered; removed when it completes.
    pub event_ids: Vec<i64>,
    /// The new events as delivered, committed to history when it completes.
    pub new_events: Vec<proto::HistoryEvent>,
    /// The stream it was sent on.
    pub worker: WorkerId,
    /// When it is taken back if not completed.
    pub expires_at: Micros,
}

/// An activity work item handed to a worker.
#[derive(Debug, Clone)]
pub struct ActivityLease {
    /// The `activities` row.
    pub activity_id: i64,
    /// The instance that scheduled it.
    pub instance_id: String,
    /// Its task id within that instance.
    pub task_id: i32,
    /// The stream it was sent on.
    pub worker: WorkerId,
    /// When it is taken back if not completed.
    pub expires_at: Micros,
}

struct Worker {
    orchestration_credits: u32,
    activity_credits: u32,
    notify: Arc<Notify>,
    filter: Arc<WorkFilter>,
    /// Instances and activities its filter refused; left for other workers.
    skipped_instances: HashSet<String>,
    skipped_activities: HashSet<i64>,
}

#[derive(Default)]
struct InFlight {
    /// Something new arrived for the instance while it was out; look again when it returns.
    dirty: bool,
}

/// The dispatch state. See the module documentation.
#[derive(Default)]
pub struct Dispatch {
    ready: VecDeque<String>,
    ready_set: HashSet<String>,
    in_flight: HashMap<String, InFlight>,
    orchestration_leases: HashMap<String, OrchestrationLease>,
    activities: VecDeque<i64>,
    activity_leases: HashMap<String, ActivityLease>,
    workers: HashMap<WorkerId, Worker>,
    next_worker: WorkerId,
    /// Every outstanding lease by expiry, so that one timer entry covers them all.
    expiries: BTreeSet<(Micros, String)>,
    /// When the next lease sweep is scheduled, if one is.
    sweep_at: Option<Micros>,
    /// A sweep time the caller must schedule with the timer task.
    sweep_request: Option<Micros>,
}

fn credits(max: i32) -> u32 {
    if max <= 0 { u32::MAX } else { max as u32 }
}

impl Dispatch {
    /// Registers a stream that may hold this many items of each kind (0 or less: no limit).
    pub fn add_worker(
        &mut self,
        max_orchestrations: i32,
        max_activities: i32,
        filter: WorkFilter,
    ) -> (WorkerId, Arc<Notify>) {
        self.next_worker += 1;
        let notify = Arc::new(Notify::new());
        self.workers.insert(
            self.next_worker,
            Worker {
                orchestration_credits: credits(max_orchestrations),
                activity_credits: credits(max_activities),
                notify: notify.clone(),
                filter: Arc::new(filter),
                skipped_instances: HashSet::new(),
                skipped_activities: HashSet::new(),
            },
        );
        (self.next_worker, notify)
    }

    /// Forgets a stream that went away and takes back every item it held.
    pub fn remove_worker(&mut self, worker: WorkerId) {
        self.workers.remove(&worker);
        let tokens: Vec<String> = self
            .orchestration_leases
            .iter()
            .filter(|(_, lease)| lease.worker == worker)
            .map(|(token, _)| token.clone())
            .collect();
        for token in tokens {
            if let Some(lease) = self.orchestration_leases.remove(&token) {
                self.expiries.remove(&(lease.expires_at, token));
                self.finish(&lease.instance_id, true);
            }
        }
        let tokens: Vec<String> = self
            .activity_leases
            .iter()
            .filter(|(_, lease)| lease.worker == worker)
            .map(|(token, _)| token.clone())
            .collect();
        for token in tokens {
            if let Some(lease) = self.activity_leases.remove(&token) {
                self.expiries.remove(&(lease.expires_at, token));
                self.activities.push_front(lease.activity_id);
            }
        }
        self.notify_all();
    }

    /// Wakes every stream to look for work.
    pub fn notify_all(&self) {
        for worker in self.workers.values() {
            worker.notify.notify_one();
        }
    }

    /// Notes that an instance has deliverable events.
    pub fn mark_ready(&mut self, instance_id: &str) {
        if let Some(flight) = self.in_flight.get_mut(instance_id) {
            flight.dirty = true;
        } else if self.ready_set.insert(instance_id.to_owned()) {
            self.ready.push_back(instance_id.to_owned());
        }
    }

    /// True while a work item for the instance is being built or is out with a worker.
    pub fn is_in_flight(&self, instance_id: &str) -> bool {
        self.in_flight.contains_key(instance_id)
    }

    /// Takes the next ready instance for `worker`, if it has credit, and marks it in flight.
    pub fn reserve_orchestration(&mut self, worker: WorkerId) -> Option<String> {
        let slot = self.workers.get_mut(&worker)?;
        if slot.orchestration_credits == 0 {
            return None;
        }
        loop {
            let position = self
                .ready
                .iter()
                .position(|id| !slot.skipped_instances.contains(id))?;
            let instance_id = self.ready.remove(position).expect("position is in range");
            self.ready_set.remove(&instance_id);
            if let Some(flight) = self.in_flight.get_mut(&instance_id) {
                flight.dirty = true;
                continue;
            }
            slot.orchestration_credits -= 1;
            self.in_flight
                .insert(instance_id.clone(), InFlight::default());
            return Some(instance_id);
        }
    }

    /// The work-item filter of a stream.
    pub fn filter(&self, worker: WorkerId) -> Arc<WorkFilter> {
        self.workers
            .get(&worker)
            .map(|slot| slot.filter.clone())
            .unwrap_or_default()
    }

    /// Gives back a reserved instance that the stream's filter refuses; other streams may take
    /// it, this one will not be offered it again.
    pub fn skip_orchestration(&mut self, instance_id: &str, worker: WorkerId) {
        if let Some(slot) = self.workers.get_mut(&worker) {
            slot.skipped_instances.insert(instance_id.to_owned());
        }
        self.unreserve_orchestration(instance_id, worker);
        self.mark_ready(instance_id);
        self.notify_all();
    }

    /// Gives back a reserved activity that the stream's filter refuses.
    pub fn skip_activity(&mut self, activity_id: i64, worker: WorkerId) {
        if let Some(slot) = self.workers.get_mut(&worker) {
            slot.skipped_activities.insert(activity_id);
        }
        self.unreserve_activity(activity_id, worker, true);
    }

    /// Records the work item sent for a reserved instance. False (and the instance is ready
    /// again) when the stream went away meanwhile.
    pub fn lease_orchestration(&mut self, token: String, lease: OrchestrationLease) -> bool {
        if !self.workers.contains_key(&lease.worker) {
            self.finish(&lease.instance_id, true);
            return false;
        }
        self.track_expiry(lease.expires_at, &token);
        self.orchestration_leases.insert(token, lease);
        true
    }

    /// Gives back a reservation that produced no work item.
    pub fn unreserve_orchestration(&mut self, instance_id: &str, worker: WorkerId) {
        self.give_credit(worker, true);
        self.finish(instance_id, false);
    }

    /// Removes the lease named by `token` if it is for `instance_id`, returning the stream's
    /// credit. The instance stays in flight until [`Dispatch::finish`].
    pub fn take_orchestration(
        &mut self,
        token: &str,
        instance_id: &str,
    ) -> Option<OrchestrationLease> {
        let lease = self.orchestration_leases.get(token)?;
        if !instance_id.is_empty() && lease.instance_id != instance_id {
            return None;
        }
        let lease = self.orchestration_leases.remove(token)?;
        self.expiries.remove(&(lease.expires_at, token.to_owned()));
        self.give_credit(lease.worker, true);
        Some(lease)
    }

    /// Ends an instance's time in flight; it is ready again if something arrived meanwhile or
    /// `requeue` says so.
    pub fn finish(&mut self, instance_id: &str, requeue: bool) {
        let dirty = self
            .in_flight
            .remove(instance_id)
            .is_some_and(|flight| flight.dirty);
        if dirty || requeue {
            self.mark_ready(instance_id);
            self.notify_all();
        }
    }

    /// Queues an activity.
    pub fn push_activity(&mut self, activity_id: i64) {
        self.activities.push_back(activity_id);
    }

    /// Takes the next queued activity for `worker`, if it has credit.
    pub fn reserve_activity(&mut self, worker: WorkerId) -> Option<i64> {
        let slot = self.workers.get_mut(&worker)?;
        if slot.activity_credits == 0 {
            return None;
        }
        let position = self
            .activities
            .iter()
            .position(|id| !slot.skipped_activities.contains(id))?;
        let id = self
            .activities
            .remove(position)
            .expect("position is in range");
        slot.activity_credits -= 1;
        Some(id)
    }

    /// Gives back a reserved activity that was not sent (`requeue`) or no longer exists.
    pub fn unreserve_activity(&mut self, activity_id: i64, worker: WorkerId, requeue: bool) {
        self.give_credit(worker, false);
        if requeue {
            self.activities.push_front(activity_id);
            self.notify_all();
        }
    }

    /// Records the activity work item sent. False (and the activity is queued again) when the
    /// stream went away meanwhile.
    pub fn lease_activity(&mut self, token: String, lease: ActivityLease) -> bool {
        if !self.workers.contains_key(&lease.worker) {
            self.activities.push_front(lease.activity_id);
            self.notify_all();
            return false;
        }
        self.track_expiry(lease.expires_at, &token);
        self.activity_leases.insert(token, lease);
        true
    }

    /// Removes the activity lease named by `token` if it is for `instance_id` (any when empty),
    /// returning the stream's credit.
    pub fn take_activity(&mut self, token: &str, instance_id: &str) -> Option<ActivityLease> {
        let lease = self.activity_leases.get(token)?;
        if !instance_id.is_empty() && lease.instance_id != instance_id {
            return None;
        }
        let lease = self.activity_leases.remove(token)?;
        self.expiries.remove(&(lease.expires_at, token.to_owned()));
        self.give_credit(lease.worker, false);
        Some(lease)
    }

    /// Takes back every lease whose time ran out by `now`; returns how many, and when the next
    /// sweep is due (the caller schedules it).
    pub fn expire_due(&mut self, now: Micros) -> (usize, Option<Micros>) {
        let mut expired = 0;
        while let Some((at, token)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(lease) = self.orchestration_leases.remove(&token) {
                self.give_credit(lease.worker, true);
                self.finish(&lease.instance_id, true);
                expired += 1;
            } else if let Some(lease) = self.activity_leases.remove(&token) {
                self.unreserve_activity(lease.activity_id, lease.worker, true);
                expired += 1;
            }
        }
        self.sweep_at = self.expiries.first().map(|(at, _)| *at);
        (expired, self.sweep_at)
    }

    /// A lease sweep the caller must schedule, if a new lease needs an earlier one.
    pub fn take_sweep_request(&mut self) -> Option<Micros> {
        self.sweep_request.take()
    }

    fn track_expiry(&mut self, at: Micros, token: &str) {
        self.expiries.insert((at, token.to_owned()));
        if self.sweep_at.is_none_or(|scheduled| at < scheduled) {
            self.sweep_at = Some(at);
            self.sweep_request = Some(at);
        }
    }

    /// Drops the lease of an instance that is being replaced, so its late completion is stale.
    pub fn forget_instance(&mut self, instance_id: &str) {
        let token = self
            .orchestration_leases
            .iter()
            .find(|(_, lease)| lease.instance_id == instance_id)
            .map(|(token, _)| token.clone());
        if let Some(token) = token
            && let Some(lease) = self.orchestration_leases.remove(&token)
        {
            self.expiries.remove(&(lease.expires_at, token));
            self.give_credit(lease.worker, true);
            self.in_flight.remove(instance_id);
        }
    }

    fn give_credit(&mut self, worker: WorkerId, orchestration: bool) {
        if let Some(slot) = self.workers.get_mut(&worker) {
            let credit = if orchestration {
                &mut slot.orchestration_credits
            } else {
                &mut slot.activity_credits
            };
            *credit = credit.saturating_add(1);
            slot.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(instance_id: &str, worker: WorkerId) -> OrchestrationLease {
        OrchestrationLease {
            instance_id: instance_id.into(),
            execution_id: "e".into(),
            event_ids: vec![],
            new_events: vec![],
            worker,
            expires_at: 100,
        }
    }

    #[test]
    fn one_work_item_per_instance_and_events_meanwhile_requeue() {
        let mut d = Dispatch::default();
        let (w, _) = d.add_worker(10, 10, WorkFilter::default());
        d.mark_ready("a");
        assert_eq!(d.reserve_orchestration(w).as_deref(), Some("a"));
        assert!(d.lease_orchestration("t1".into(), lease("a", w)));

        d.mark_ready("a");
        assert_eq!(d.reserve_orchestration(w), None, "a is in flight");

        assert!(
            d.take_orchestration("t1", "other").is_none(),
            "wrong instance"
        );
        assert!(d.take_orchestration("t1", "a").is_some());
        assert!(d.take_orchestration("t1", "a").is_none(), "token used");
        d.finish("a", false);
        assert_eq!(d.reserve_orchestration(w).as_deref(), Some("a"));
    }

    #[test]
    fn credits_limit_items_per_stream() {
        let mut d = Dispatch::default();
        let (w, _) = d.add_worker(1, 1, WorkFilter::default());
        d.mark_ready("a");
        d.mark_ready("b");
        d.push_activity(1);
        d.push_activity(2);
        assert!(d.reserve_orchestration(w).is_some());
        assert!(d.reserve_orchestration(w).is_none());
        assert_eq!(d.reserve_activity(w), Some(1));
        assert_eq!(d.reserve_activity(w), None);
        d.unreserve_activity(1, w, true);
        assert_eq!(d.reserve_activity(w), Some(1));
    }

    #[test]
    fn a_lost_stream_gives_everything_back() {
        let mut d = Dispatch::default();
        let (w1, _) = d.add_worker(0, 0, WorkFilter::default());
        let (w2, _) = d.add_worker(0, 0, WorkFilter::default());
        d.mark_ready("a");
        d.push_activity(7);
        let a = d.reserve_orchestration(w1).unwrap();
        d.lease_orchestration("t1".into(), lease(&a, w1));
        let act = d.reserve_activity(w1).unwrap();
        d.lease_activity(
            "t2".into(),
            ActivityLease {
                activity_id: act,
                instance_id: "a".into(),
                task_id: 1,
                worker: w1,
                expires_at: 100,
            },
        );

        d.remove_worker(w1);
        assert!(d.take_orchestration("t1", "a").is_none());
        assert!(d.take_activity("t2", "a").is_none());
        assert_eq!(d.reserve_orchestration(w2).as_deref(), Some("a"));
        assert_eq!(d.reserve_activity(w2), Some(7));
    }

    #[test]
    fn leases_expire_only_when_due() {
        let mut d = Dispatch::default();
        let (w, _) = d.add_worker(0, 0, WorkFilter::default());
        d.mark_ready("a");
        let a = d.reserve_orchestration(w).unwrap();
        d.lease_orchestration("t1".into(), lease(&a, w));
        assert_eq!(
            d.take_sweep_request(),
            Some(100),
            "the first lease asks for a sweep"
        );
        assert_eq!(d.expire_due(99), (0, Some(100)));
        assert_eq!(d.expire_due(100), (1, None));
        assert!(d.take_orchestration("t1", "a").is_none());
        assert_eq!(d.reserve_orchestration(w).as_deref(), Some("a"));
    }
}
