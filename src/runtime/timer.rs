//! Per-worker timers: a hierarchical timing wheel with 1 ms ticks.
//!
//! Six levels of 64 slots; a slot of level `l` spans `64^l` ticks, so the
//! wheel covers 64^6 ms (over two years; later deadlines are parked at the
//! far end and re-armed when reached). Arming a timer is a push onto a slot's
//! `Vec`; time advancing takes whole slots, fires the entries that are due and
//! moves the others down a level (each entry moves at most five times).
//! Both are O(1) per entry and touch memory sequentially, where the binary
//! heap this replaces paid O(log n) scattered cache misses per pop — which
//! dominated waking 100,000 sleepers at once.
//!
//! Deadlines are rounded up to whole ticks: a timer never fires early and at
//! most about a millisecond late (`epoll_wait` has millisecond resolution
//! anyway).
//!
//! Entries are not removed when a park ends early. Each carries the sequence
//! number its task had when it was armed; the worker drops entries whose task
//! has armed a newer one (see `worker.rs`), and a task whose pending entry is
//! due no later than its next park's deadline reuses it instead of arming
//! another. [`Wheel::compact`] sweeps stale entries when they pile up.

use std::time::{Duration, Instant};

use super::task::TaskRef;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// The farthest a timer may be armed ahead, in ticks.
const MAX_TICKS: u64 = (1 << (SLOT_BITS as usize * LEVELS)) - 1;

/// One armed timer.
pub(crate) struct Entry {
    /// Deadline in ticks since the wheel's start.
    when: u64,
    /// The task's `timer_seq` when this entry was armed.
    pub(crate) seq: u32,
    pub(crate) task: TaskRef,
}

struct Level {
    /// Bit `i` set when `slots[i]` is not empty.
    occupied: u64,
    slots: [Vec<Entry>; SLOTS],
}

impl Level {
    fn new() -> Level {
        Level {
            occupied: 0,
            slots: std::array::from_fn(|_| Vec::new()),
        }
    }
}

/// A worker's timers.
pub(crate) struct Wheel {
    start: Instant,
    /// Ticks processed: every slot up to here has fired.
    elapsed: u64,
    levels: Box<[Level]>,
    len: usize,
    /// A slot's vector, kept to swap in for the next slot taken (its
    /// capacity is reused).
    spare: Vec<Entry>,
    /// Entries known to be stale (their task armed a newer one).
    pub(crate) stale: usize,
}

/// Which slot expires next, and at which tick.
#[derive(Clone, Copy)]
struct Expiration {
    level: usize,
    slot: usize,
    deadline: u64,
}

fn slot_range(level: usize) -> u64 {
    1 << (SLOT_BITS as usize * level)
}

/// The level an entry due at `when` belongs to while the wheel is at
/// `elapsed`: the highest 6-bit group in which the two differ.
fn level_for(elapsed: u64, when: u64) -> usize {
    let mut masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    if masked >= MAX_TICKS {
        masked = MAX_TICKS - 1;
    }
    let significant = 63 - masked.leading_zeros() as usize;
    significant / SLOT_BITS as usize
}

impl Wheel {
    pub(crate) fn new(start: Instant) -> Wheel {
        Wheel {
            start,
            elapsed: 0,
            levels: (0..LEVELS).map(|_| Level::new()).collect(),
            len: 0,
            spare: Vec::new(),
            stale: 0,
        }
    }

    /// Ticks from the start to `t`, rounded up.
    fn tick_ceil(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.start);
        d.as_secs() * 1000 + u64::from(d.subsec_nanos().div_ceil(1_000_000))
    }

    /// Ticks from the start to `t`, rounded down.
    fn tick_floor(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.start);
        d.as_secs() * 1000 + u64::from(d.subsec_millis())
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer that hands `task` back from [`take_due`](Wheel::take_due)
    /// at `deadline` or up to a tick later.
    pub(crate) fn insert(&mut self, deadline: Instant, task: TaskRef, seq: u32) {
        let when = self
            .tick_ceil(deadline)
            .clamp(self.elapsed + 1, self.elapsed + MAX_TICKS);
        self.len += 1;
        self.push(Entry { when, seq, task });
    }

    fn push(&mut self, e: Entry) {
        let level = level_for(self.elapsed, e.when);
        let slot = ((e.when >> (SLOT_BITS as usize * level)) as usize) & (SLOTS - 1);
        let lv = &mut self.levels[level];
        lv.occupied |= 1 << slot;
        lv.slots[slot].push(e);
    }

    fn next_expiration(&self) -> Option<Expiration> {
        for (level, lv) in self.levels.iter().enumerate() {
            if lv.occupied == 0 {
                continue;
            }
            let range = slot_range(level);
            let now_slot = self.elapsed / range;
            let slot = (lv.occupied.rotate_right(now_slot as u32).trailing_zeros() as u64
                + now_slot) as usize
                % SLOTS;
            let level_range = range * SLOTS as u64;
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + slot as u64 * range;
            if deadline <= self.elapsed && level == LEVELS - 1 {
                // The top level wraps around: its slots behind the current
                // one hold the next rotation. (Lower levels only hold slots
                // ahead of the current one.)
                deadline += level_range;
            }
            return Some(Expiration {
                level,
                slot,
                deadline,
            });
        }
        None
    }

    /// The earliest instant at which [`take_due`](Wheel::take_due) may have
    /// something to hand back (possibly a slot that only moves its entries
    /// down a level: waking then is harmless).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let e = self.next_expiration()?;
        Some(self.start + Duration::from_millis(e.deadline))
    }

    /// Moves every entry due by `now` into `out` (in deadline order).
    pub(crate) fn take_due(&mut self, now: Instant, out: &mut Vec<Entry>) {
        let now_tick = self.tick_floor(now);
        while let Some(exp) = self.next_expiration() {
            if exp.deadline > now_tick {
                break;
            }
            let lv = &mut self.levels[exp.level];
            lv.occupied &= !(1 << exp.slot);
            let spare = std::mem::take(&mut self.spare);
            let mut entries = std::mem::replace(&mut lv.slots[exp.slot], spare);
            self.elapsed = exp.deadline;
            for e in entries.drain(..) {
                if e.when <= exp.deadline {
                    self.len -= 1;
                    out.push(e);
                } else {
                    self.push(e);
                }
            }
            self.spare = entries;
        }
        self.elapsed = self.elapsed.max(now_tick);
    }

    /// Drops every entry for which `live` returns false.
    pub(crate) fn compact(&mut self, mut live: impl FnMut(&Entry) -> bool) {
        let mut removed = 0;
        for lv in self.levels.iter_mut() {
            for (i, slot) in lv.slots.iter_mut().enumerate() {
                let before = slot.len();
                slot.retain(&mut live);
                removed += before - slot.len();
                if slot.is_empty() {
                    lv.occupied &= !(1 << i);
                }
            }
        }
        self.len -= removed;
        self.stale = 0;
    }
}
