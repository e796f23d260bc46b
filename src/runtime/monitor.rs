//! The monitor thread: reports green threads that hold their worker too long
//! without reaching a switch point (gevent's `max_blocking_time`), and
//! deadlocks — every green thread parked with nothing left that could wake
//! any of them (gevent's "would block forever", Go's "all goroutines are
//! asleep").
//!
//! It wakes every `period` (a quarter of the stuck threshold, at most 50 ms):
//! a few microseconds of CPU each time, so an idle runtime stays idle.

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::blocking::jobs_in_flight;
use super::task::{WaitReason, PARKED};
use super::worker::{active_foreign_threads, Shared};

/// How long the monitor waits for the workers to list their green threads.
const CENSUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Tells the monitor thread to stop.
pub(crate) struct MonitorStop {
    pub(crate) stop: Mutex<bool>,
    pub(crate) cv: Condvar,
}

/// One worker as the monitor last saw it.
#[derive(Clone, Copy, Default)]
struct Seen {
    switches: u64,
    task: usize,
    since: Option<Instant>,
    reported: bool,
}

pub(crate) fn run_monitor(shared: Arc<Shared>, stop: Arc<MonitorStop>) {
    super::worker::mark_runtime_thread();
    let threshold = shared.config.monitor_threshold;
    let period = threshold
        .map(|t| (t / 4).max(Duration::from_millis(1)))
        .unwrap_or(Duration::from_millis(50))
        .min(Duration::from_millis(50));
    let mut seen = vec![Seen::default(); shared.workers.len()];
    let mut deadlock_streak = 0u32;
    let mut last_switch_sum = u64::MAX;
    loop {
        {
            let g = stop.stop.lock().unwrap_or_else(|e| e.into_inner());
            if *g {
                return;
            }
            let (g, _) = stop
                .cv
                .wait_timeout(g, period)
                .unwrap_or_else(|e| e.into_inner());
            if *g {
                return;
            }
        }
        if let Some(threshold) = threshold {
            check_stuck(&shared, &mut seen, threshold);
        }
        if shared.config.deadlock_detection {
            let sum: u64 = shared
                .workers
                .iter()
                .map(|w| w.stats.switches.load(Relaxed))
                .sum();
            if deadlocked(&shared) && sum == last_switch_sum {
                deadlock_streak += 1;
            } else {
                deadlock_streak = 0;
            }
            last_switch_sum = sum;
            // The condition must hold, with no switch in between, across
            // checks spanning at least 100 ms: wake-ups in flight settle.
            if deadlock_streak as u128 * period.as_millis() >= 100 && deadlock_streak >= 2 {
                report_deadlock(&shared);
                deadlock_streak = 0;
            }
        }
    }
}

fn check_stuck(shared: &Shared, seen: &mut [Seen], threshold: Duration) {
    let now = Instant::now();
    for (i, w) in shared.workers.iter().enumerate() {
        let switches = w.stats.switches.load(Relaxed);
        let task = w.stats.running.load(Relaxed) as usize;
        let s = &mut seen[i];
        if task == 0 || switches != s.switches || task != s.task {
            *s = Seen {
                switches,
                task,
                since: Some(now),
                reported: false,
            };
            continue;
        }
        let since = *s.since.get_or_insert(now);
        if !s.reported && now.duration_since(since) >= threshold {
            s.reported = true;
            let name = match w.running_name() {
                Some((id, name)) if id == task => name,
                _ => "<finished meanwhile>".to_string(),
            };
            log::warn!(
                "greenhouse: green thread '{name}' has run for over {} ms on worker {i} without \
                 reaching a switch point; every other green thread on that worker waits. Move \
                 CPU-heavy or blocking work to spawn_blocking, call yield_now in long loops, or \
                 use greenhouse's green I/O instead of blocking calls",
                threshold.as_millis()
            );
        }
    }
}

/// True when every live green thread is parked and nothing could wake one.
fn deadlocked(shared: &Shared) -> bool {
    let live = shared.live();
    let (parked, timed) = shared.parked();
    live > 0
        && shared.runs_waiting.load(SeqCst) > 0
        && !shared.shutting_down.load(SeqCst)
        && parked == live
        && timed == 0
        && super::io::io_waiting(shared) == 0
        && shared.external_handles.load(SeqCst) == 0
        && jobs_in_flight() == 0
        && active_foreign_threads() == 0
        && shared.injector.is_empty()
        && shared.workers.iter().all(|w| w.inbox.is_empty())
}

/// Confirms the deadlock with the workers' own lists, writes the report, then
/// kills every parked green thread so that `run` returns (with the report)
/// instead of hanging.
fn report_deadlock(shared: &Shared) {
    let Some(tasks) = shared.census(CENSUS_TIMEOUT) else {
        return;
    };
    let confirmed = tasks.len() as u64 == shared.live()
        && tasks
            .iter()
            .all(|e| !e.timed && e.task.state.load(SeqCst) == PARKED)
        && deadlocked(shared);
    if !confirmed {
        return;
    }
    let mut report = format!(
        "greenhouse: deadlock: all {} green threads are parked and nothing can wake any of \
         them (no timer, no socket, no blocking-pool job, no thread or handle outside the \
         runtime):",
        tasks.len()
    );
    for e in &tasks {
        let t = &e.task;
        let reason = WaitReason::from_u8(t.reason.load(Relaxed));
        report.push_str(&format!(
            "\n  green thread '{}' (id {}) waits on {}",
            t.display_name(),
            t.id,
            reason.describe()
        ));
    }
    log::error!("{report}");
    *shared.deadlock.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    for e in tasks {
        e.task.kill();
    }
}
