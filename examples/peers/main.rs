//! greenhouse side by side with may, tokio and one OS thread per task.
//!
//! One command runs every workload on every contender back to back, each
//! run in its own process, and prints a table of medians and ratios:
//!
//! ```text
//! cargo run --release --example peers                      # everything (~25 min)
//! cargo run --release --example peers -- --quick           # tiny sizes, a smoke run
//! cargo run --release --example peers -- --workloads spawn,yield --reps 9
//! cargo run --release --example peers -- --help
//! ```
//!
//! Workloads: (1) spawn + join of an empty task from inside the runtime;
//! (2) yield in a loop; (3) channel ping-pong between two tasks; (4) 100,000
//! tasks each sleeping 100 ms; (5) TCP echo over loopback, 64-byte round
//! trips; (6) HTTP hello world (httparse on every server). Scale: 1,000,000
//! tasks parked in a sleep; spawn and switch cost at 1k … 1M live tasks.
//!
//! The load for (5) and (6) comes from one closed-loop generator in this
//! process (`loadgen.rs`, mio on OS threads), the same for every server.
//! It runs as many OS threads as the server has workers; `--pin` pins a
//! one-worker server to CPU 0 and the generator to CPU 1.
//! Results go to `--out` (default `target/peers/`): `results.md`, `raw.tsv`,
//! `peers.svg`, `scale.svg`.
//!
//! Linux only. As root the harness raises `vm.max_map_count` (two maps per
//! guarded stack: 1M green threads need over 2,000,000) and `kernel.pid_max`
//! (100,000 OS threads); otherwise it scales down and says so. It raises the
//! open-files soft limit to the hard one for 10,000 connections.

mod child;
mod greenhouse_peer;
mod loadgen;
mod may_peer;
mod measure;
mod osutil;
mod plan;
mod proto;
mod report;
mod runner;
mod std_peer;
mod tokio_peer;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};

use workload::{Contender, Workload};

/// greenhouse side by side with may, tokio and one OS thread per task.
#[derive(Parser, Debug)]
#[command(name = "peers", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    child: Option<Sub>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// One contender running one job (the harness runs itself this way).
    #[command(hide = true)]
    Child(child::ChildArgs),
    /// Drive a running server with the load generator (for profiling a
    /// server started with `child --job serve`).
    #[command(hide = true)]
    Load(LoadArgs),
}

/// Arguments of the hidden `load` subcommand.
#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// The server.
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 100)]
    conns: usize,
    /// Protocol.
    #[arg(long, value_enum, default_value = "echo")]
    proto: proto::Proto,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
}

fn load(a: LoadArgs) {
    osutil::raise_nofile();
    let spec = loadgen::LoadSpec {
        addr: a.addr,
        conns: a.conns,
        proto: a.proto,
        threads: a.threads,
        pin_cpu: None,
        warmup: std::time::Duration::ZERO,
        measure: std::time::Duration::from_secs_f64(a.secs),
    };
    match loadgen::run(&spec, || ()) {
        Ok(r) => println!(
            "{:.0} round trips/s, p99 {:.0} µs, {} errors",
            r.completed as f64 / r.secs,
            measure::percentile(&r.latencies_ns, 99.0).unwrap_or(0) as f64 / 1e3,
            r.errors
        ),
        Err(e) => {
            eprintln!("peers: load: {e}");
            std::process::exit(1);
        }
    }
}

/// What to run and at which sizes.
#[derive(clap::Args, Debug, Clone)]
pub struct Opts {
    /// Workloads to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "spawn,yield,pingpong,sleepers,echo,http,scale,cost"
    )]
    pub workloads: Vec<Workload>,
    /// Contenders to run (ratios need greenhouse).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "greenhouse,may,tokio,std"
    )]
    pub contenders: Vec<Contender>,
    /// Repetitions of each workload (the table shows medians).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Repetitions of the scale and cost runs.
    #[arg(long, default_value_t = 3)]
    pub scale_reps: usize,
    /// Tiny sizes and one repetition: checks that everything runs.
    #[arg(long)]
    pub quick: bool,
    /// Worker counts for workloads 1–3, 5, 6 (tokio: current-thread runtime for 1).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Connection counts for the echo workload.
    #[arg(long, value_delimiter = ',', default_value = "100,10000")]
    pub echo_conns: Vec<usize>,
    /// Connection counts for the HTTP workload.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub http_conns: Vec<usize>,
    /// Measurement window of each network run, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub secs: f64,
    /// Load before the measurement window, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_secs: f64,
    /// Tasks in the sleepers workload.
    #[arg(long, default_value_t = 100_000)]
    pub sleepers: usize,
    /// Their sleep, ms.
    #[arg(long, default_value_t = 100)]
    pub sleep_ms: u64,
    /// Tasks parked in the scale run.
    #[arg(long, default_value_t = 1_000_000)]
    pub scale: usize,
    /// Their sleep, ms (long enough for all to be parked at once: spawning a
    /// million stackful tasks takes 10–20 s on a loaded 2-core machine).
    #[arg(long, default_value_t = 30_000)]
    pub scale_sleep_ms: u64,
    /// Live-task levels of the cost runs.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,10000,100000,1000000"
    )]
    pub levels: Vec<usize>,
    /// Target length of one timed batch in workloads 1–3, ms.
    #[arg(long, default_value_t = 20)]
    pub batch_ms: u64,
    /// Timed batches per measurement in workloads 1–3.
    #[arg(long, default_value_t = 9)]
    pub batches: usize,
    /// Pin one-worker servers to CPU 0 and the load generator to CPU 1 (off
    /// by default: on a shared machine a pinned process cannot move off a
    /// core another job took, which puts that job's time slices into p99).
    #[arg(long)]
    pub pin: bool,
    /// Nice value for the harness and its children (negative needs root): on a
    /// shared machine it keeps other jobs from preempting the measured processes.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub nice: i32,
    /// Kill a child that runs longer than this, seconds.
    #[arg(long, default_value_t = 600)]
    pub child_timeout_s: u64,
    /// Where results.md, raw.tsv, peers.svg and scale.svg go.
    #[arg(long, default_value = "target/peers")]
    pub out: PathBuf,
}

impl Opts {
    /// `--quick`: sizes small enough for a smoke run.
    fn quickened(mut self) -> Opts {
        if self.quick {
            self.reps = 1;
            self.scale_reps = 1;
            self.workers = vec![1];
            self.echo_conns = vec![10];
            self.http_conns = vec![10];
            self.secs = 0.3;
            self.warmup_secs = 0.1;
            self.sleepers = 2_000;
            self.sleep_ms = 20;
            self.scale = 5_000;
            self.scale_sleep_ms = 500;
            self.levels = vec![100, 1_000];
            self.batch_ms = 2;
            self.batches = 3;
        }
        self
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.child {
        Some(Sub::Child(a)) => child::main(a),
        Some(Sub::Load(a)) => return load(a),
        None => {}
    }
    let o = cli.opts.quickened();
    if o.nice != 0 {
        osutil::reexec_in_own_session();
    }
    if let Err(e) = harness(&o) {
        eprintln!("peers: {e}");
        std::process::exit(1);
    }
}

fn harness(o: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    if o.nice != 0 {
        if let Err(e) = osutil::set_nice(o.nice) {
            eprintln!("peers: cannot set nice {}: {e}", o.nice);
        }
    }
    let nofile = osutil::raise_nofile();
    let wants_10k = o.workloads.contains(&Workload::Echo)
        && o.echo_conns.iter().any(|&c| c as u64 + 100 > nofile);
    let (cases, mut notes) = plan::cases(o);
    if wants_10k {
        notes.push(format!(
            "open files are limited to {nofile}: the largest echo runs may fail"
        ));
    }
    let started = Instant::now();
    let load_before = osutil::load_average();
    let date = osutil::utc_now();
    eprintln!(
        "peers: {} cases × contenders, {} reps; {}",
        cases.len(),
        o.reps,
        osutil::machine()
    );
    for n in &notes {
        eprintln!("peers: note: {n}");
    }
    let mut runs: Vec<BTreeMap<Contender, Vec<_>>> = vec![BTreeMap::new(); cases.len()];
    let max_reps = cases.iter().map(|c| c.reps).max().unwrap_or(0);
    for rep in 0..max_reps {
        for (i, case) in cases.iter().enumerate() {
            if rep >= case.reps {
                continue;
            }
            // Rotate the order each repetition so no contender always runs
            // first (or right after a heavy one).
            let k = case.contenders.len().max(1);
            for j in 0..k {
                let c = case.contenders[(j + rep) % k];
                let t = Instant::now();
                let r = runner::run(case, c, o);
                eprintln!(
                    "peers: [rep {}/{}] {} / {}: {} ({:.1} s)",
                    rep + 1,
                    case.reps,
                    case.title,
                    c.name(),
                    match &r {
                        Ok(m) => m
                            .iter()
                            .map(|(k, v)| format!("{k}={}", report::sig3(*v)))
                            .collect::<Vec<_>>()
                            .join(" "),
                        Err(e) => format!("{e:?}"),
                    },
                    t.elapsed().as_secs_f64()
                );
                runs[i].entry(c).or_default().push(r);
            }
        }
    }
    let results = report::Results { cases, runs };
    let load_after = osutil::load_average();
    let command = std::iter::once("cargo run --release --example peers --".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let subtitle = format!("{date}, median of {} runs", o.reps);
    let mut md = String::new();
    md.push_str(&format!(
        "Machine: {}.\nDate: {date}. Command: `{}`.\nRepetitions: {} (scale and cost: {}); every run in its own process{}; load average {load_before:.2} before, {load_after:.2} after; took {:.0} s.\n",
        osutil::machine(),
        command.trim_end_matches(" --"),
        o.reps,
        o.scale_reps,
        if o.nice != 0 {
            format!(
                " at nice {} in its own session ({})",
                osutil::nice(),
                std::fs::read_to_string("/proc/self/autogroup")
                    .unwrap_or_default()
                    .trim()
            )
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    ));
    for n in &notes {
        md.push_str(&format!("\nNote: {n}\n"));
    }
    md.push_str(&report::markdown(&results, &o.contenders));
    println!("{md}");
    std::fs::create_dir_all(&o.out)?;
    std::fs::write(o.out.join("results.md"), &md)?;
    std::fs::write(o.out.join("raw.tsv"), report::raw_tsv(&results))?;
    report::advantage_chart(&results, &o.out.join("peers.svg"), &subtitle)?;
    report::scale_chart(&results, &o.out.join("scale.svg"), &subtitle)?;
    eprintln!(
        "peers: wrote {}/{{results.md,raw.tsv,peers.svg,scale.svg}}",
        o.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Smoke checks run by `cargo test` (tiny sizes, in this process): each
    //! contender's code runs and gives sane numbers, servers answer the
    //! load generator correctly. The measurements themselves are the
    //! harness's job, not the tests'.

    use super::*;
    use crate::measure::Sampler;
    use crate::proto::Proto;
    use std::time::Duration;

    const TINY: Sampler = Sampler {
        target: Duration::from_millis(1),
        batches: 2,
    };

    #[test]
    fn micro_workloads_give_positive_costs() {
        for ns in [
            greenhouse_peer::spawn_join(1, &TINY),
            greenhouse_peer::yield_now(1, &TINY),
            greenhouse_peer::pingpong(2, &TINY).unwrap(),
            tokio_peer::spawn_join(1, &TINY),
            tokio_peer::yield_now(2, &TINY),
            tokio_peer::pingpong(1, &TINY).unwrap(),
            std_peer::yield_now(&TINY),
            std_peer::pingpong(&TINY).unwrap(),
        ] {
            assert!(ns.is_finite() && ns > 0.0, "{ns}");
        }
    }

    #[test]
    fn sleepers_take_at_least_their_sleep() {
        let d = Duration::from_millis(20);
        assert!(greenhouse_peer::sleepers(2, 500, d) >= d);
        assert!(tokio_peer::sleepers(1, 500, d) >= d);
        assert!(std_peer::sleepers(20, d).unwrap() >= d);
    }

    fn serve_and_load(
        serve: fn(usize, Proto, std::sync::mpsc::Sender<std::net::SocketAddr>),
        proto: Proto,
    ) -> loadgen::LoadResult {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || serve(1, proto, tx));
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let spec = loadgen::LoadSpec {
            addr,
            conns: 8,
            proto,
            threads: 2,
            pin_cpu: None,
            warmup: Duration::from_millis(20),
            measure: Duration::from_millis(150),
        };
        let mut idle_called = false;
        let r = loadgen::run(&spec, || idle_called = true).unwrap();
        assert!(idle_called);
        r
    }

    #[test]
    fn servers_answer_the_load_generator() {
        type Serve = fn(usize, Proto, std::sync::mpsc::Sender<std::net::SocketAddr>);
        let servers: [(&str, Serve); 3] = [
            ("greenhouse", greenhouse_peer::serve),
            ("tokio", tokio_peer::serve),
            ("std", |_, p, tx| std_peer::serve(p, tx)),
        ];
        for (name, serve) in servers {
            for proto in [Proto::Echo, Proto::Http] {
                let r = serve_and_load(serve, proto);
                assert_eq!(r.errors, 0, "{name} {proto:?}");
                assert!(r.completed > 0, "{name} {proto:?}: no round trips");
                assert_eq!(r.latencies_ns.len() as u64, r.completed);
                assert!(r.latencies_ns.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    #[test]
    fn http_parser_counts_pipelined_requests_and_rejects_garbage() {
        let two = [proto::HTTP_REQUEST, proto::HTTP_REQUEST, b"GET / HT"].concat();
        assert_eq!(
            proto::http_requests(&two).unwrap(),
            (2, 2 * proto::HTTP_REQUEST.len())
        );
        assert!(proto::http_requests(b"\x01\x02 nonsense\r\n\r\n").is_err());
        let resp = proto::HTTP_RESPONSE;
        let req = proto::request(Proto::Http);
        assert_eq!(
            proto::response_len(Proto::Http, &req, resp).unwrap(),
            Some(resp.len())
        );
        assert_eq!(
            proto::response_len(Proto::Http, &req, &resp[..resp.len() - 1]).unwrap(),
            None
        );
        let echo = proto::request(Proto::Echo);
        assert!(proto::response_len(Proto::Echo, &echo, &[b'z'; 64]).is_err());
    }

    #[test]
    fn may_runs_in_its_own_process_only() {
        // may's scheduler is process-global and configured once; the harness
        // runs it in child processes. Here: its ping-pong gives a number.
        let ns = may_peer::pingpong(1, &TINY).unwrap();
        assert!(ns.is_finite() && ns > 0.0);
    }

    #[test]
    fn lateness_and_percentiles() {
        let l = measure::Lateness::new(4);
        l.record(0, Duration::from_millis(1));
        l.record(1, Duration::from_millis(3));
        l.record(3, Duration::from_millis(2));
        let (p50, p99, max) = l.summary();
        assert_eq!((p50, p99, max), (2.0, 3.0, 3.0));
        assert_eq!(measure::percentile::<u64>(&[], 99.0), None);
        assert_eq!(measure::median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(plan::thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn pinning_restricts_the_thread_to_one_cpu() {
        std::thread::spawn(|| {
            osutil::pin_to_cpu(0).unwrap();
            // SAFETY: a zeroed cpu_set_t is valid; the call writes into it.
            let count = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(
                    libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                    0
                );
                libc::CPU_COUNT(&set)
            };
            assert_eq!(count, 1);
        })
        .join()
        .unwrap();
    }
}
