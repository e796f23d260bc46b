//! Names shared by the harness and its child processes: who competes, what
//! one child process runs, and what some jobs return.

use std::time::Duration;

/// A runtime (or the lack of one) being measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Contender {
    /// This crate.
    Greenhouse,
    /// may: stackful coroutines, the closest peer.
    May,
    /// tokio: async tasks.
    Tokio,
    /// One OS thread per task.
    Std,
}

impl Contender {
    /// Every contender, in table order.
    pub const ALL: [Contender; 4] = [
        Contender::Greenhouse,
        Contender::May,
        Contender::Tokio,
        Contender::Std,
    ];

    /// Its name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Greenhouse => "greenhouse",
            Contender::May => "may",
            Contender::Tokio => "tokio",
            Contender::Std => "std",
        }
    }
}

/// What a user selects with `--workloads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// (1) spawn + join of an empty task, from inside the runtime.
    Spawn,
    /// (2) yield in a loop.
    Yield,
    /// (3) channel ping-pong between two tasks.
    Pingpong,
    /// (4) 100,000 tasks each sleeping 100 ms: wall time and peak RSS.
    Sleepers,
    /// (5) TCP echo over loopback, 64-byte round trips.
    Echo,
    /// (6) HTTP hello world.
    Http,
    /// 1,000,000 tasks parked in a sleep: spawn rate, RSS per task, lateness.
    Scale,
    /// Spawn and switch cost at 1k, 10k, 100k, 1M live tasks.
    Cost,
}

/// What one child process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Job {
    /// Workload 1.
    Spawn,
    /// Workload 2.
    Yield,
    /// Workload 3.
    Pingpong,
    /// Workload 4.
    Sleepers,
    /// Workloads 5 and 6: serve `--proto` until stdin closes.
    Serve,
    /// The 1M-sleeper scale run.
    ScaleSleep,
    /// Ramp to `--n` live parked tasks, then time spawn+join and yield.
    CostSpawn,
    /// `--n` live tasks yielding round-robin.
    CostSwitch,
}

/// Timings of the scale run, from the start of spawning.
#[derive(Clone, Copy, Debug)]
pub struct ScaleTimes {
    /// The spawn loop finished.
    pub spawned: Duration,
    /// Every task had started and parked.
    pub all_started: Duration,
}

/// Results of the cost-at-scale run.
#[derive(Clone, Copy, Debug)]
pub struct CostOut {
    /// Spawning the live tasks, per task, until all had started (ns).
    pub ramp_ns: f64,
    /// Spawn + join of an empty task with the live ones parked (ns).
    pub spawn_join_ns: f64,
    /// One yield with the live ones parked (ns).
    pub yield_ns: f64,
}
