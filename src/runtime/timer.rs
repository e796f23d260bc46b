//! Per-worker timers: a binary heap of (deadline, task, park generation).
//!
//! A timer entry wakes its task only if the task is still in the park the
//! entry was made for (`park_gen` unchanged). Entries for parks that ended
//! early are not removed; they are dropped when they reach the top of the heap.
//! That keeps arming a timer O(log n) with no cancellation bookkeeping, at the
//! cost of holding stale entries until their deadline (see ARCHITECTURE.md).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::Acquire;
use std::sync::Arc;
use std::time::Instant;

use super::task::Task;

struct Entry {
    deadline: Instant,
    seq: u64,
    gen: u64,
    task: Arc<Task>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap, we want the earliest deadline on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .deadline
            .cmp(&self.deadline)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Timers {
    /// Wake `task` at `deadline` if it is still in park number `gen`.
    pub(crate) fn insert(&mut self, deadline: Instant, task: Arc<Task>, gen: u64) {
        self.seq += 1;
        self.heap.push(Entry {
            deadline,
            seq: self.seq,
            gen,
            task,
        });
    }

    /// The earliest deadline, if any (possibly of a stale entry: waking early
    /// is harmless, the worker just finds nothing to do).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Unparks the tasks whose deadline has passed. Returns how many woke.
    pub(crate) fn fire(&mut self, now: Instant) -> usize {
        let mut woke = 0;
        while let Some(top) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            let e = self.heap.pop().expect("peeked");
            if e.task.park_gen.load(Acquire) == e.gen {
                e.task.unpark();
                woke += 1;
            }
        }
        woke
    }
}
