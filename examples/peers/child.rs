//! One contender running one job in its own process (so each has its own
//! peak RSS and nothing left over from another runtime). Results go to
//! stdout as `RESULT key=value …`; `UNSUPPORTED why` when a contender cannot
//! run the job; servers print `LISTENING addr`, answer `rss` on stdin with
//! `RSS <VmRSS KiB> <VmHWM KiB> <CPU time ns>`, and exit when stdin closes.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use crate::measure::{Lateness, Sampler};
use crate::osutil;
use crate::proto::Proto;
use crate::workload::{Contender, Job};
use crate::{greenhouse_peer as gh, may_peer, std_peer, tokio_peer};

/// The hidden `child` subcommand's arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ChildArgs {
    /// Who runs.
    #[arg(long)]
    pub contender: Contender,
    /// What runs.
    #[arg(long)]
    pub job: Job,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Size: tasks, live tasks.
    #[arg(long, default_value_t = 0)]
    pub n: usize,
    /// A duration in ms (sleep length).
    #[arg(long, default_value_t = 0)]
    pub ms: u64,
    /// Protocol for `serve`.
    #[arg(long, value_enum, default_value = "echo")]
    pub proto: Proto,
    /// Pin the whole process to this CPU.
    #[arg(long)]
    pub pin_cpu: Option<usize>,
    /// Target length of one timed batch, ms.
    #[arg(long, default_value_t = 20)]
    pub batch_ms: u64,
    /// Timed batches per measurement.
    #[arg(long, default_value_t = 9)]
    pub batches: usize,
}

/// Runs the job and exits the process (without tearing down runtimes that
/// may hold a million parked tasks).
pub fn main(a: ChildArgs) -> ! {
    osutil::raise_nofile();
    if let Some(cpu) = a.pin_cpu {
        if let Err(e) = osutil::pin_to_cpu(cpu) {
            eprintln!("peers: cannot pin to CPU {cpu}: {e}");
        }
    }
    let out = match run(&a) {
        Ok(line) => line,
        Err(why) => format!("UNSUPPORTED {why}"),
    };
    println!("{out}");
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

fn sampler(a: &ChildArgs) -> Sampler {
    Sampler {
        target: Duration::from_millis(a.batch_ms),
        batches: a.batches,
    }
}

fn result(pairs: &[(&str, f64)]) -> String {
    let mut s = String::from("RESULT");
    for (k, v) in pairs {
        let _ = write!(s, " {k}={v}");
    }
    s
}

fn run(a: &ChildArgs) -> Result<String, String> {
    use Contender::*;
    let (w, s) = (a.workers, sampler(a));
    let dur = Duration::from_millis(a.ms);
    match a.job {
        Job::Spawn => Ok(result(&[(
            "ns",
            match a.contender {
                Greenhouse => gh::spawn_join(w, &s),
                May => may_peer::spawn_join(w, &s),
                Tokio => tokio_peer::spawn_join(w, &s),
                Std => std_peer::spawn_join(&s),
            },
        )])),
        Job::Yield => Ok(result(&[(
            "ns",
            match a.contender {
                Greenhouse => gh::yield_now(w, &s),
                May => may_peer::yield_now(w, &s),
                Tokio => tokio_peer::yield_now(w, &s),
                Std => std_peer::yield_now(&s),
            },
        )])),
        Job::Pingpong => {
            let ns = match a.contender {
                Greenhouse => gh::pingpong(w, &s),
                May => may_peer::pingpong(w, &s),
                Tokio => tokio_peer::pingpong(w, &s),
                Std => std_peer::pingpong(&s),
            };
            ns.map(|ns| result(&[("ns", ns)]))
                .ok_or_else(|| "no channel".to_string())
        }
        Job::Sleepers => {
            let before = osutil::status_kib("VmRSS");
            let wall = match a.contender {
                Greenhouse => gh::sleepers(w, a.n, dur),
                May => may_peer::sleepers(w, a.n, dur),
                Tokio => tokio_peer::sleepers(w, a.n, dur),
                Std => std_peer::sleepers(a.n, dur)?,
            };
            let hwm = osutil::status_kib("VmHWM");
            Ok(result(&[
                ("wall_ms", wall.as_secs_f64() * 1e3),
                ("hwm_mib", hwm as f64 / 1024.0),
                (
                    "per_task_bytes",
                    hwm.saturating_sub(before) as f64 * 1024.0 / a.n.max(1) as f64,
                ),
            ]))
        }
        Job::Serve => serve(a),
        Job::ScaleSleep => scale_sleep(a, dur),
        Job::CostSpawn => {
            let c = match a.contender {
                Greenhouse => gh::cost_spawn(w, a.n, s),
                May => may_peer::cost_spawn(w, a.n, s),
                Tokio => tokio_peer::cost_spawn(w, a.n, s),
                Std => return Err("one OS thread per task is not run at scale".into()),
            };
            Ok(result(&[
                ("ramp_ns", c.ramp_ns),
                ("spawn_join_ns", c.spawn_join_ns),
                ("yield_ns", c.yield_ns),
            ]))
        }
        Job::CostSwitch => {
            // About four million switches in all, at least four per task.
            let k = (4_000_000 / a.n.max(1)).max(4);
            let ns = match a.contender {
                Greenhouse => gh::cost_switch(w, a.n, k),
                May => may_peer::cost_switch(w, a.n, k),
                Tokio => tokio_peer::cost_switch(w, a.n, k),
                Std => return Err("one OS thread per task is not run at scale".into()),
            };
            Ok(result(&[("switch_ns", ns)]))
        }
    }
}

fn scale_sleep(a: &ChildArgs, dur: Duration) -> Result<String, String> {
    let n = a.n;
    let late = Arc::new(Lateness::new(n));
    let parked_kib = Arc::new(AtomicU64::new(0));
    let before = osutil::status_kib("VmRSS");
    let pk = parked_kib.clone();
    let on_parked = move || pk.store(osutil::status_kib("VmRSS"), SeqCst);
    let l = late.clone();
    let t = match a.contender {
        Contender::Greenhouse => gh::scale_sleep(a.workers, n, dur, l, on_parked),
        Contender::May => may_peer::scale_sleep(a.workers, n, dur, l, on_parked),
        Contender::Tokio => tokio_peer::scale_sleep(a.workers, n, dur, l, on_parked),
        Contender::Std => return Err("one OS thread per task is not run at scale".into()),
    };
    let (p50, p99, max) = late.summary();
    let parked = parked_kib.load(SeqCst);
    Ok(result(&[
        ("n", n as f64),
        ("spawn_per_s", n as f64 / t.spawned.as_secs_f64()),
        ("all_started_s", t.all_started.as_secs_f64()),
        // Every task was parked at once only if the last one started before
        // the first one was due.
        ("concurrent", f64::from(u8::from(t.all_started < dur))),
        (
            "rss_per_task",
            parked.saturating_sub(before) as f64 * 1024.0 / n.max(1) as f64,
        ),
        ("parked_rss_mib", parked as f64 / 1024.0),
        ("late_p50_ms", p50),
        ("late_p99_ms", p99),
        ("late_max_ms", max),
    ]))
}

fn serve(a: &ChildArgs) -> ! {
    let (tx, rx) = std::sync::mpsc::channel();
    let (c, w, proto) = (a.contender, a.workers, a.proto);
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || match c {
            Contender::Greenhouse => gh::serve(w, proto, tx),
            Contender::May => may_peer::serve(w, proto, tx),
            Contender::Tokio => tokio_peer::serve(w, proto, tx),
            Contender::Std => std_peer::serve(proto, tx),
        })
        .expect("server thread");
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not start");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "LISTENING {addr}");
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        match line.as_deref() {
            Ok("rss") => {
                let _ = writeln!(
                    out,
                    "RSS {} {} {}",
                    osutil::status_kib("VmRSS"),
                    osutil::status_kib("VmHWM"),
                    osutil::cpu_time_ns()
                );
                let _ = out.flush();
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    std::process::exit(0)
}
