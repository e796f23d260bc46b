//! Timing helpers: calibrated batches for per-operation costs, medians and
//! percentiles, a wake-up lateness recorder.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Runs an operation in batches sized so each batch takes about `target`,
/// and reports the median cost of one operation over `batches` batches.
#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    /// How long one timed batch should take.
    pub target: Duration,
    /// How many timed batches (after calibration).
    pub batches: usize,
}

impl Sampler {
    /// `batch(n)` performs the operation `n` times and returns how long that
    /// took (measured inside the contender's runtime, so runtime entry is not
    /// counted). Returns the median nanoseconds per operation.
    pub fn ns_per_op(&self, mut batch: impl FnMut(u64) -> Duration) -> f64 {
        // Calibrate (this also warms pools and caches): grow n until a batch
        // takes a good fraction of the target, then scale to the target.
        let mut n: u64 = 1;
        let per_op = loop {
            let d = batch(n);
            if d >= self.target / 4 || n >= 1 << 32 {
                break d.as_secs_f64() / n as f64;
            }
            n = if d < self.target / 100 { n * 10 } else { n * 2 };
        };
        let n = ((self.target.as_secs_f64() / per_op.max(1e-12)) as u64).max(1);
        let mut v: Vec<f64> = (0..self.batches.max(1))
            .map(|_| batch(n).as_nanos() as f64 / n as f64)
            .collect();
        median(&mut v)
    }
}

/// The median of `v` (sorts it); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The `p`-th percentile (0–100) of an ascending slice, nearest rank; `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// How late each of `n` sleepers woke, in microseconds (saturating at
/// `u32::MAX`). Allocated before the sleepers so its pages are not counted
/// as theirs.
pub struct Lateness(Vec<AtomicU32>);

impl Lateness {
    /// Room for `n` sleepers, every page touched now.
    pub fn new(n: usize) -> Lateness {
        Lateness((0..n).map(|_| AtomicU32::new(u32::MAX)).collect())
    }

    /// Sleeper `i` woke `late` after its due time.
    pub fn record(&self, i: usize, late: Duration) {
        let us = late.as_micros().min(u32::MAX as u128 - 1) as u32;
        self.0[i].store(us, Relaxed);
    }

    /// (p50, p99, max) lateness in milliseconds over the sleepers that woke.
    pub fn summary(&self) -> (f64, f64, f64) {
        let mut v: Vec<u32> = self
            .0
            .iter()
            .map(|a| a.load(Relaxed))
            .filter(|&us| us != u32::MAX)
            .collect();
        v.sort_unstable();
        let ms = |us: Option<u32>| us.map_or(f64::NAN, |us| f64::from(us) / 1000.0);
        (
            ms(percentile(&v, 50.0)),
            ms(percentile(&v, 99.0)),
            ms(v.last().copied()),
        )
    }
}

/// Counts tasks arriving at a point and remembers when the last one did
/// (so "all started" and "all done" are timed by the tasks themselves, not by
/// how often a waiter polls).
pub struct Countdown {
    n: usize,
    count: AtomicUsize,
    last: Mutex<Option<Instant>>,
}

impl Countdown {
    /// Waits for `n` arrivals.
    pub fn new(n: usize) -> Countdown {
        Countdown {
            n,
            count: AtomicUsize::new(0),
            last: Mutex::new(None),
        }
    }

    /// One task arrived.
    pub fn arrive(&self) {
        if self.count.fetch_add(1, AcqRel) + 1 == self.n {
            *self.last.lock().unwrap() = Some(Instant::now());
        }
    }

    /// When the last of the `n` arrived, if it has.
    pub fn finished_at(&self) -> Option<Instant> {
        if self.count.load(Acquire) < self.n {
            return None;
        }
        *self.last.lock().unwrap()
    }
}
