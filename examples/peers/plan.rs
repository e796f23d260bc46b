//! What a run measures: the cases (one job at one size on one worker count),
//! which contenders run each, which metrics become table rows, and the
//! issue's targets for each row.

use crate::osutil;
use crate::proto::Proto;
use crate::workload::{Contender, Job, Workload};
use crate::Opts;

/// How a value reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Operations per second.
    PerSec,
    /// Bytes.
    Bytes,
    /// Mebibytes.
    MiB,
}

/// Which direction is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Less is better (time, memory).
    Lower,
    /// More is better (throughput).
    Higher,
}

/// One of the targets for a row.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// greenhouse's advantage over the peer (peer's cost / greenhouse's, or
    /// greenhouse's throughput / peer's) is at least this.
    Beat(Contender, f64),
    /// greenhouse's value is at most this.
    AtMost(f64),
}

/// One table row: a metric of a case.
#[derive(Clone, Debug)]
pub struct Row {
    /// Key in the child's or runner's results.
    pub metric: &'static str,
    /// What the row says, after the case's title.
    pub label: &'static str,
    /// Unit of the values.
    pub unit: Unit,
    /// Direction.
    pub better: Better,
    /// The targets.
    pub targets: Vec<Target>,
    /// Drawn in the chart.
    pub chart: bool,
}

/// Which table a case belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Workloads 1–6.
    Workloads,
    /// 1M sleepers and cost growth.
    Scale,
}

/// One job at one size on one worker count, run by each contender.
#[derive(Clone, Debug)]
pub struct Case {
    /// Table.
    pub section: Section,
    /// Human title, e.g. "spawn + join, 1 worker".
    pub title: String,
    /// What each child runs.
    pub job: Job,
    /// Worker threads.
    pub workers: usize,
    /// Size (tasks, live tasks).
    pub n: usize,
    /// Connections (network cases).
    pub conns: usize,
    /// A duration, ms.
    pub ms: u64,
    /// Protocol (network cases).
    pub proto: Proto,
    /// Pin server to CPU 0 and load generator to CPU 1.
    pub pin: bool,
    /// Who runs it.
    pub contenders: Vec<Contender>,
    /// Repetitions.
    pub reps: usize,
    /// Rows it feeds.
    pub rows: Vec<Row>,
}

fn row(metric: &'static str, label: &'static str, unit: Unit, better: Better) -> Row {
    Row {
        metric,
        label,
        unit,
        better,
        targets: Vec::new(),
        chart: false,
    }
}

impl Row {
    fn beats(mut self, peers: &[(Contender, f64)]) -> Row {
        self.targets
            .extend(peers.iter().map(|&(c, x)| Target::Beat(c, x)));
        self
    }
    fn at_most(mut self, v: f64) -> Row {
        self.targets.push(Target::AtMost(v));
        self
    }
    fn charted(mut self) -> Row {
        self.chart = true;
        self
    }
}

const FASTER: [(Contender, f64); 2] = [(Contender::May, 1.0), (Contender::Tokio, 1.0)];

fn workers_label(w: usize) -> String {
    if w == 1 {
        "1 worker".into()
    } else {
        format!("{w} workers")
    }
}

/// The cases `opts` asks for, and notes on what was scaled down or left out.
pub fn cases(o: &Opts) -> (Vec<Case>, Vec<String>) {
    use Better::*;
    use Unit::*;
    let mut notes = Vec::new();
    let mut out = Vec::new();
    let all: Vec<Contender> = o.contenders.clone();
    let green: Vec<Contender> = all
        .iter()
        .copied()
        .filter(|&c| c != Contender::Std)
        .collect();
    let pin_ok = o.pin && osutil::cpus() >= 2;
    let base = |title: String, job: Job, workers: usize| Case {
        section: Section::Workloads,
        title,
        job,
        workers,
        n: 0,
        conns: 0,
        ms: 0,
        proto: Proto::Echo,
        pin: false,
        contenders: all.clone(),
        reps: o.reps,
        rows: Vec::new(),
    };
    for &wl in &o.workloads {
        match wl {
            Workload::Spawn => {
                for &w in &o.workers {
                    let mut c = base(
                        format!("(1) spawn + join, {}", workers_label(w)),
                        Job::Spawn,
                        w,
                    );
                    c.rows = vec![row("ns", "per task", Ns, Lower)
                        .beats(&FASTER)
                        .beats(&[(Contender::Std, 100.0)])
                        .charted()];
                    out.push(c);
                }
            }
            Workload::Yield => {
                for &w in &o.workers {
                    let mut c = base(format!("(2) yield, {}", workers_label(w)), Job::Yield, w);
                    c.rows = vec![row("ns", "per yield", Ns, Lower).beats(&FASTER).charted()];
                    out.push(c);
                }
            }
            Workload::Pingpong => {
                for &w in &o.workers {
                    let mut c = base(
                        format!("(3) channel ping-pong, {}", workers_label(w)),
                        Job::Pingpong,
                        w,
                    );
                    c.rows = vec![row("ns", "per round trip", Ns, Lower)
                        .beats(&FASTER)
                        .charted()];
                    out.push(c);
                }
            }
            Workload::Sleepers => {
                let w = osutil::cpus();
                let mut c = base(
                    format!(
                        "(4) {} tasks sleep {} ms, {}",
                        thousands(o.sleepers),
                        o.sleep_ms,
                        workers_label(w)
                    ),
                    Job::Sleepers,
                    w,
                );
                c.n = o.sleepers;
                c.ms = o.sleep_ms;
                if all.contains(&Contender::Std) {
                    // One OS thread each: a pid and two maps per thread.
                    let pids = osutil::ensure_sysctl(osutil::PID_MAX, 2 * o.sleepers as u64);
                    osutil::ensure_sysctl(osutil::MAP_COUNT, 2 * o.sleepers as u64 + 200_000);
                    if pids < o.sleepers as u64 + 10_000 {
                        notes.push(format!(
                            "kernel.pid_max is {pids} and cannot be raised (not root): one OS thread per task cannot start {} threads.",
                            thousands(o.sleepers)
                        ));
                    }
                }
                c.rows = vec![
                    row("wall_ms", "wall time", Ms, Lower)
                        .at_most(1.3 * o.sleep_ms as f64)
                        .charted(),
                    row("hwm_mib", "peak RSS", MiB, Lower).charted(),
                ];
                out.push(c);
            }
            Workload::Echo | Workload::Http => {
                let (proto, conns, name) = if wl == Workload::Echo {
                    (Proto::Echo, &o.echo_conns, "(5) TCP echo 64 B")
                } else {
                    (Proto::Http, &o.http_conns, "(6) HTTP hello")
                };
                for &n in conns {
                    for &w in &o.workers {
                        let mut c = base(
                            format!("{name}, {} conns, {}", thousands(n), workers_label(w)),
                            Job::Serve,
                            w,
                        );
                        c.conns = n;
                        c.proto = proto;
                        c.pin = w == 1 && pin_ok;
                        c.rows = vec![
                            row(
                                "rps",
                                if proto == Proto::Echo {
                                    "round trips/s"
                                } else {
                                    "requests/s"
                                },
                                PerSec,
                                Higher,
                            )
                            .beats(&FASTER)
                            .charted(),
                            row("p99_us", "p99 latency", Us, Lower)
                                .beats(&FASTER)
                                .charted(),
                            row("cpu_us", "server CPU per round trip", Us, Lower).charted(),
                        ];
                        if n >= 10_000 && proto == Proto::Echo && w == o.workers[0] {
                            c.rows.extend([
                                row(
                                    "idle_total_per_conn",
                                    "memory per idle conn, RSS + kernel",
                                    Bytes,
                                    Lower,
                                )
                                .beats(&[(Contender::Std, 5.0)])
                                .charted(),
                                row(
                                    "idle_rss_per_conn",
                                    "memory per idle conn, RSS only",
                                    Bytes,
                                    Lower,
                                )
                                .beats(&[(Contender::Std, 5.0)]),
                            ]);
                        }
                        out.push(c);
                    }
                }
            }
            Workload::Scale => {
                let n = fit_scale(o.scale, &green, &mut notes, "the scale run");
                let w = osutil::cpus();
                let mut c = base(
                    format!(
                        "{} tasks parked in sleep({}), {}",
                        thousands(n),
                        crate::report::fmt_value(o.scale_sleep_ms as f64, Ms),
                        workers_label(w)
                    ),
                    Job::ScaleSleep,
                    w,
                );
                c.section = Section::Scale;
                c.n = n;
                c.ms = o.scale_sleep_ms;
                c.contenders = green.clone();
                c.reps = o.scale_reps;
                c.rows = vec![
                    row("spawn_per_s", "spawn rate", PerSec, Higher),
                    row("rss_per_task", "RSS per parked task", Bytes, Lower).at_most(8192.0),
                    row("late_p50_ms", "wake-up lateness p50", Ms, Lower),
                    row("late_p99_ms", "wake-up lateness p99", Ms, Lower),
                    row("late_max_ms", "wake-up lateness max", Ms, Lower),
                ];
                if o.contenders.contains(&Contender::Std) {
                    notes.push(format!(
                        "One OS thread per task is left out of the scale runs: {} threads exceed this machine's limits (threads-max, pid_max, memory).",
                        thousands(n)
                    ));
                }
                out.push(c);
            }
            Workload::Cost => {
                for &level in &o.levels {
                    let l = fit_scale(level, &green, &mut notes, "a cost level");
                    for job in [Job::CostSpawn, Job::CostSwitch] {
                        let mut c = base(format!("{} live tasks, 1 worker", thousands(l)), job, 1);
                        c.section = Section::Scale;
                        c.n = l;
                        c.contenders = green.clone();
                        c.reps = o.scale_reps;
                        c.rows = if job == Job::CostSpawn {
                            vec![
                                row("ramp_ns", "spawn until all parked, per task", Ns, Lower),
                                row("spawn_join_ns", "spawn + join among them", Ns, Lower),
                                row("yield_ns", "yield among them (they stay parked)", Ns, Lower),
                            ]
                        } else {
                            vec![row("switch_ns", "switch, all of them yielding", Ns, Lower)]
                        };
                        out.push(c);
                    }
                }
            }
        }
    }
    (out, notes)
}

/// Stackful contenders need two memory maps per task and some KiB of RSS:
/// raises `vm.max_map_count` when root, else (or when memory is short)
/// scales `n` down and says so.
fn fit_scale(n: usize, who: &[Contender], notes: &mut Vec<String>, what: &str) -> usize {
    let stackful = who
        .iter()
        .any(|&c| c == Contender::Greenhouse || c == Contender::May);
    if !stackful {
        return n;
    }
    let maps = osutil::ensure_sysctl(osutil::MAP_COUNT, 2 * n as u64 + 200_000);
    let by_maps = (maps.saturating_sub(200_000) / 2) as usize;
    // Budget 12 KiB per stackful task (the target is 8 KiB) and keep a third
    // of the machine's available memory for the other engineers' builds.
    let avail = osutil::meminfo_kib("MemAvailable") as usize * 1024;
    let by_mem = avail * 2 / 3 / (12 * 1024);
    let fit = n.min(by_maps).min(by_mem);
    if fit < n {
        let why = if by_maps < by_mem {
            format!("vm.max_map_count is {maps} and cannot be raised (not root)")
        } else {
            format!("only {} MiB of memory is available", avail >> 20)
        };
        notes.push(format!(
            "{what}: {} tasks scaled down to {} because {why}.",
            thousands(n),
            thousands(fit)
        ));
    }
    fit
}

/// `1000000` → `1,000,000`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
