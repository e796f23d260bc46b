//! The downloader's built-in demo: an embedded HTTP server with generated
//! files, downloaded each way, measured side by side.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::common::fixture::{file_specs, FixtureConfig, FixtureServer};
use super::common::procstat::{self, human_bytes, PeakSampler};
use super::download::{download_all, Options, RunMode};

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The files and the delay.
    pub fixture: FixtureConfig,
    /// The modes to compare, in order.
    pub modes: Vec<RunMode>,
    /// Cap on concurrent downloads in the concurrent modes.
    pub concurrency: Option<usize>,
    /// Run the server, and each mode, in a process of its own (this program
    /// re-run with hidden flags), so that each row's threads and memory are
    /// that mode's alone; otherwise everything runs in this process.
    pub isolate: bool,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The mode.
    pub mode: RunMode,
    /// Files downloaded whose length and checksum matched.
    pub verified: usize,
    /// Files attempted.
    pub files: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Wall time.
    pub wall: Duration,
    /// Most OS threads alive at once in this process.
    pub peak_threads: u64,
    /// Peak resident memory of this process during the mode.
    pub peak_rss: u64,
}

/// The embedded server, wherever it runs.
enum Server {
    Child { child: Child, addr: SocketAddr },
    InProcess(FixtureServer),
}

impl Server {
    fn start(cfg: &FixtureConfig, isolate: bool) -> io::Result<Server> {
        if !isolate {
            return FixtureServer::start(cfg.clone()).map(Server::InProcess);
        }
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve-fixture")
            .args(fixture_args(cfg))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("the server child said {line:?}")))?;
        Ok(Server::Child { child, addr })
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Server::Child { addr, .. } => *addr,
            Server::InProcess(s) => s.addr(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Child { child, .. } = self {
            // Closing its stdin tells the child to exit.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// The command-line flags that describe `cfg` to a child process.
fn fixture_args(cfg: &FixtureConfig) -> Vec<String> {
    vec![
        "--files".into(),
        cfg.files.to_string(),
        "--delay-ms".into(),
        cfg.delay.as_millis().to_string(),
        "--seed".into(),
        cfg.seed.to_string(),
    ]
}

/// Serves the fixture until standard input closes (the server process of an
/// isolated demo).
///
/// # Errors
/// If the server cannot start.
pub fn serve_fixture(cfg: FixtureConfig) -> io::Result<()> {
    let server = FixtureServer::start(cfg)?;
    println!("listening on {}", server.addr());
    io::stdout().flush()?;
    io::copy(&mut io::stdin().lock(), &mut io::sink())?;
    drop(server);
    Ok(())
}

/// Runs the demo and returns one row per mode.
///
/// # Errors
/// If the server cannot start, a child process fails, or a temporary
/// directory cannot be made.
pub fn run_demo(cfg: &DemoConfig) -> io::Result<Vec<Row>> {
    let server = Server::start(&cfg.fixture, cfg.isolate)?;
    let mut rows = Vec::new();
    for &mode in &cfg.modes {
        rows.push(if cfg.isolate {
            measure_in_child(cfg, mode, server.addr())?
        } else {
            measure(cfg, mode, server.addr())?
        });
    }
    Ok(rows)
}

/// Runs `mode` in a child process (`--measure MODE --server-addr ADDR`) and
/// reads its row.
fn measure_in_child(cfg: &DemoConfig, mode: RunMode, addr: SocketAddr) -> io::Result<Row> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([
        "--measure",
        mode_flag(mode),
        "--server-addr",
        &addr.to_string(),
    ])
    .args(fixture_args(&cfg.fixture));
    if let Some(c) = cfg.concurrency {
        cmd.args(["-c", &c.to_string()]);
    }
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find_map(|l| l.strip_prefix("ROW "))
        .and_then(|l| parse_row(mode, l))
        .ok_or_else(|| {
            io::Error::other(format!(
                "the {} child failed ({}) and said {text:?}",
                mode.label(),
                out.status
            ))
        })?;
    Ok(row)
}

fn mode_flag(mode: RunMode) -> &'static str {
    match mode {
        RunMode::Sequential => "sequential",
        RunMode::Threads => "threads",
        RunMode::Green => "green",
        RunMode::Patched => "patched",
    }
}

/// A row as a child prints it: `verified files bytes wall_ns threads rss`.
pub fn format_row(r: &Row) -> String {
    format!(
        "{} {} {} {} {} {}",
        r.verified,
        r.files,
        r.bytes,
        r.wall.as_nanos(),
        r.peak_threads,
        r.peak_rss
    )
}

fn parse_row(mode: RunMode, line: &str) -> Option<Row> {
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [verified, files, bytes, wall, threads, rss] = v[..] else {
        return None;
    };
    Some(Row {
        mode,
        verified: verified as usize,
        files: files as usize,
        bytes,
        wall: Duration::from_nanos(wall),
        peak_threads: threads,
        peak_rss: rss,
    })
}

/// Downloads every file of the fixture at `addr` in `mode`, in this
/// process, and measures it.
///
/// # Errors
/// If the temporary directory cannot be made.
pub fn measure(cfg: &DemoConfig, mode: RunMode, addr: SocketAddr) -> io::Result<Row> {
    let specs = file_specs(&cfg.fixture);
    let total: u64 = specs.iter().map(|f| f.size).sum();
    let urls: Vec<String> = specs
        .iter()
        .map(|f| format!("http://{addr}/files/{}", f.name))
        .collect();
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "greenhouse-downloader-{}-{}",
        std::process::id(),
        mode_flag(mode)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let bar = if cfg.progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>22} [{bar:30}] {bytes:>10}/{total_bytes:<10} {elapsed}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(mode.label());
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: cfg.concurrency,
        timeout: None,
        mode,
        report_failures: true,
        tls_roots: None,
    };
    let _ = procstat::reset_peak_rss(None);
    let sampler = PeakSampler::start(None, Duration::from_millis(5));
    let start = Instant::now();
    let outcomes = download_all(&urls, &opts, &bar);
    let wall = start.elapsed();
    let peaks = sampler.finish();
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&dir);
    let outcomes = outcomes?;
    let mut verified = 0;
    let mut bytes = 0;
    for (o, spec) in outcomes.iter().zip(&specs) {
        if let Ok(saved) = &o.result {
            bytes += saved.bytes;
            if saved.bytes == spec.size && saved.sha256 == spec.sha256 {
                verified += 1;
            }
        }
    }
    Ok(Row {
        mode,
        verified,
        files: specs.len(),
        bytes,
        wall,
        peak_threads: peaks.threads,
        peak_rss: procstat::peak_rss(None).unwrap_or(0).max(peaks.rss),
    })
}

/// Prints the table.
pub fn print_table(rows: &[Row], cfg: &DemoConfig, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{} files, {} in all, {} ms server delay per response{}",
        cfg.fixture.files,
        human_bytes(rows.first().map_or(0, |r| r.bytes)),
        cfg.fixture.delay.as_millis(),
        cfg.concurrency
            .map_or(String::new(), |c| format!(", at most {c} at once")),
    )?;
    writeln!(
        out,
        "{:<22} {:>9} {:>12} {:>10} {:>16} {:>10}",
        "mode", "files ok", "wall time", "throughput", "peak OS threads", "peak RSS"
    )?;
    for r in rows {
        let secs = r.wall.as_secs_f64();
        writeln!(
            out,
            "{:<22} {:>9} {:>10.2} s {:>8}/s {:>16} {:>10}",
            r.mode.label(),
            format!("{}/{}", r.verified, r.files),
            secs,
            human_bytes((r.bytes as f64 / secs.max(1e-9)) as u64),
            r.peak_threads,
            human_bytes(r.peak_rss),
        )?;
    }
    Ok(())
}
