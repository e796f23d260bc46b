//! Runs one case for one contender in a child process (the harness
//! re-executes itself with `child …`) and gathers its metrics. Network cases
//! drive the child's server with the load generator from this process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::loadgen::{self, LoadSpec};
use crate::measure::percentile;
use crate::osutil;
use crate::plan::Case;
use crate::workload::{Contender, Job};
use crate::Opts;

/// A child's named results.
pub type Metrics = BTreeMap<String, f64>;

/// Why a run has no numbers.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The contender cannot run this job (the reason).
    Unsupported(String),
    /// The run broke (the error).
    Failed(String),
}

/// A value's spelling on the command line.
fn arg<T: clap::ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .expect("every value has a name")
        .get_name()
        .to_string()
}

fn child_command(case: &Case, c: Contender, o: &Opts) -> Command {
    let exe = std::env::current_exe().expect("own executable");
    let mut cmd = Command::new(exe);
    cmd.arg("child")
        .args(["--contender", &arg(c)])
        .args(["--job", &arg(case.job)])
        .args(["--workers", &case.workers.to_string()])
        .args(["--n", &case.n.to_string()])
        .args(["--ms", &case.ms.to_string()])
        .args(["--batch-ms", &o.batch_ms.to_string()])
        .args(["--batches", &o.batches.to_string()])
        .args(["--proto", &arg(case.proto)])
        .stderr(Stdio::inherit());
    if case.pin {
        cmd.args(["--pin-cpu", "0"]);
    }
    cmd
}

/// Runs `case` on contender `c` once.
pub fn run(case: &Case, c: Contender, o: &Opts) -> Result<Metrics, Failure> {
    if case.job == Job::Serve {
        serve(case, c, o)
    } else {
        batch(case, c, o)
    }
}

fn parse_result(line: &str) -> Metrics {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn wait_or_kill(child: &mut Child, limit: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(Failure::Failed(format!("child {status}"))),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Failed(format!(
                    "no result after {limit:?}; killed"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Failure::Failed(e.to_string())),
        }
    }
}

fn batch(case: &Case, c: Contender, o: &Opts) -> Result<Metrics, Failure> {
    let mut child = child_command(case, c, o)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Failed(format!("cannot start child: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let waited = wait_or_kill(&mut child, Duration::from_secs(o.child_timeout_s));
    let text = reader.join().unwrap_or_default();
    waited?;
    for line in text.lines() {
        if line.starts_with("RESULT") {
            return Ok(parse_result(line));
        }
        if let Some(why) = line.strip_prefix("UNSUPPORTED ") {
            return Err(Failure::Unsupported(why.to_string()));
        }
    }
    Err(Failure::Failed(format!(
        "no result in the child's output: {text:?}"
    )))
}

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl Server {
    fn line(&mut self) -> Result<String, Failure> {
        match self.lines.next() {
            Some(Ok(l)) => Ok(l),
            _ => Err(Failure::Failed("the server process ended".into())),
        }
    }

    /// (VmRSS KiB, VmHWM KiB, CPU time ns) of the server.
    fn rss(&mut self) -> Result<(u64, u64, u64), Failure> {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "rss")
            .and_then(|()| stdin.flush())
            .map_err(|e| Failure::Failed(format!("server control: {e}")))?;
        let l = self.line()?;
        let mut it = l.split_whitespace().skip(1).filter_map(|v| v.parse().ok());
        match (it.next(), it.next(), it.next()) {
            (Some(r), Some(h), Some(c)) => Ok((r, h, c)),
            _ => Err(Failure::Failed(format!("bad RSS reply {l:?}"))),
        }
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = wait_or_kill(&mut self.child, Duration::from_secs(30));
    }
}

fn serve(case: &Case, c: Contender, o: &Opts) -> Result<Metrics, Failure> {
    let mut child = child_command(case, c, o)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Failed(format!("cannot start child: {e}")))?;
    let stdin = child.stdin.take();
    let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut server = Server {
        child,
        stdin,
        lines,
    };
    let result = drive_server(&mut server, case, o);
    server.stop();
    result
}

fn drive_server(server: &mut Server, case: &Case, o: &Opts) -> Result<Metrics, Failure> {
    let first = server.line()?;
    let addr = first
        .strip_prefix("LISTENING ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| Failure::Failed(format!("server said {first:?}")))?;
    let spec = LoadSpec {
        addr,
        conns: case.conns,
        proto: case.proto,
        threads: if case.pin { 1 } else { case.workers },
        pin_cpu: case.pin.then_some(1),
        warmup: Duration::from_secs_f64(o.warmup_secs),
        measure: Duration::from_secs_f64(o.secs),
    };
    let (base_rss, _, _) = server.rss()?;
    let base_kernel = osutil::kernel_kib();
    let mut idle: Result<(u64, u64, u64), Failure> = Err(Failure::Failed("never idle".into()));
    let load = loadgen::run(&spec, || {
        idle = server
            .rss()
            .map(|(r, _, cpu)| (r, osutil::kernel_kib(), cpu));
    })
    .map_err(|e| Failure::Failed(format!("load generator: {e}")))?;
    let (idle_rss, idle_kernel, idle_cpu) = idle?;
    let (_, hwm, cpu) = server.rss()?;
    if load.errors * 10 > case.conns as u64 {
        return Err(Failure::Failed(format!(
            "{} of {} connections failed under load",
            load.errors, case.conns
        )));
    }
    let per_conn = |after: u64, before: u64| {
        after.saturating_sub(before) as f64 * 1024.0 / case.conns.max(1) as f64
    };
    let rss_pc = per_conn(idle_rss, base_rss);
    let kernel_pc = per_conn(idle_kernel, base_kernel);
    Ok(Metrics::from([
        ("rps".into(), load.completed as f64 / load.secs),
        (
            "p50_us".into(),
            percentile(&load.latencies_ns, 50.0).map_or(f64::NAN, |ns| ns as f64 / 1e3),
        ),
        (
            "p99_us".into(),
            percentile(&load.latencies_ns, 99.0).map_or(f64::NAN, |ns| ns as f64 / 1e3),
        ),
        ("idle_rss_per_conn".into(), rss_pc),
        ("idle_kernel_per_conn".into(), kernel_pc),
        ("idle_total_per_conn".into(), rss_pc + kernel_pc),
        ("hwm_mib".into(), hwm as f64 / 1024.0),
        // CPU the server spent per round trip over the whole load (warm-up
        // included): on a shared machine wall-clock throughput mostly
        // measures the share of the cores a process got, this its cost.
        (
            "cpu_us".into(),
            cpu.saturating_sub(idle_cpu) as f64 / 1e3 / load.total.max(1) as f64,
        ),
        ("connect_s".into(), load.connect_secs),
        ("errors".into(), load.errors as f64),
    ]))
}
