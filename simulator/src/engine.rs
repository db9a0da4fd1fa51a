//! The discrete-event core: a clock plus a priority queue of timed events.
//!
//! A model schedules events in the future and the queue hands them back in time order. Ties
//! break on insertion order, never on memory addresses or hash order, which is what makes two
//! runs with one seed byte-identical. The queue is generic over the event type so each service
//! model keeps its own small `enum` of events (16 to 32 bytes) and the heap stays cache-friendly:
//! that is most of what the benchmark's millions of events per second come from.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::SimTime;

/// One scheduled event.
struct Scheduled<E> {
    at: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    /// Reversed so that `BinaryHeap`, a max-heap, pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// The clock and the agenda of one simulation.
///
/// # Examples
/// ```
/// use kgate_sim::engine::EventQueue;
/// use kgate_sim::SimTime;
///
/// let mut q = EventQueue::new();
/// q.schedule_at(SimTime::from_millis(5), "late");
/// q.schedule_at(SimTime::from_millis(1), "early");
/// assert_eq!(q.pop(), Some((SimTime::from_millis(1), "early")));
/// assert_eq!(q.now(), SimTime::from_millis(1));
/// ```
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    now: SimTime,
    seq: u64,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty agenda at time zero.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            now: SimTime::ZERO,
            seq: 0,
            popped: 0,
        }
    }

    /// The current simulated time: the time of the last event popped.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at `at`; a time in the past is moved to now, so causality holds.
    pub fn schedule_at(&mut self, at: SimTime, event: E) {
        let at = at.max(self.now);
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    /// Schedules `event` after `delay`.
    pub fn schedule_in(&mut self, delay: SimTime, event: E) {
        self.schedule_at(self.now.plus(delay), event);
    }

    /// Removes the earliest event and advances the clock to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let s = self.heap.pop()?;
        self.now = s.at;
        self.popped += 1;
        Some((s.at, s.event))
    }

    /// Advances the clock to `at` for an event handled without being queued: the next item of
    /// a stream already sorted by time (the workload's messages), due no later than
    /// [`EventQueue::peek_time`]. It counts as handled. A time in the past leaves the clock.
    pub fn advance_to(&mut self, at: SimTime) {
        self.now = self.now.max(at);
        self.popped += 1;
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|s| s.at)
    }

    /// How many events are waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// How many events have been handled so far: the benchmark's unit of work.
    pub fn events_handled(&self) -> u64 {
        self.popped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_at_one_instant_come_out_in_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..100 {
            q.schedule_at(SimTime::from_millis(7), i);
        }
        let order: Vec<i32> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn scheduling_in_the_past_lands_at_now() {
        let mut q = EventQueue::new();
        q.schedule_at(SimTime::from_secs(2), 'a');
        q.pop();
        q.schedule_at(SimTime::from_secs(1), 'b');
        assert_eq!(q.pop(), Some((SimTime::from_secs(2), 'b')));
    }
}
