//! Run: `cargo run --example downloader` (the demo), or
//! `cargo run --example downloader -- [-o DIR] [-c N] [--mode green|threads|sequential|patched] [--ca-cert FILE] URL...`
//!
//! The seeds' gevent downloader (seed 003 §3.3: `monkey.patch_all()`, then
//! `joinall([spawn(downloader, name, url), …])`), grown into a real program.
//!
//! With no URLs it needs no network: it starts an HTTP server on 127.0.0.1
//! with generated files, each response delayed like a far-away server's,
//! downloads them every way — one after another, one OS thread per file,
//! one green thread per file, and one green thread per file running ureq's
//! unmodified `std::net` transport under `monkey::patch_all` — checks every
//! checksum and prints wall time, throughput, peak OS threads and peak
//! memory side by side.
//!
//! With URLs it is a downloader: http and https (ureq with rustls, over
//! greenhouse's sockets in green mode), redirects followed, bodies streamed
//! to disk, safe de-duplicated names inside `-o DIR`, a time limit per URL,
//! failures reported while the others go on, a summary, and a non-zero exit
//! status if anything failed.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

#[path = "../common/mod.rs"]
pub mod common;
#[path = "demo.rs"]
pub mod demo;
#[path = "download.rs"]
pub mod download;

use common::fixture::FixtureConfig;
use common::http;
use common::procstat::human_bytes;
use demo::DemoConfig;
use download::{download_all, Options, RunMode};

/// Download files concurrently on green threads (or OS threads, or one
/// after another). With no URL: a self-contained demo comparing the three.
#[derive(Debug, Parser)]
#[command(name = "downloader", version)]
pub struct Cli {
    /// URLs to download (http or https). None: run the demo.
    pub urls: Vec<String>,
    /// Read more URLs from FILE, one per line (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Directory to save into.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "downloads"
    )]
    pub out_dir: PathBuf,
    /// At most N downloads at once (default: all at once).
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// How to run the downloads.
    #[arg(long, value_enum, default_value_t = RunMode::Green)]
    pub mode: RunMode,
    /// Trust the certificates in this PEM file for https, instead of the
    /// built-in (Mozilla) roots.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Time limit per URL in seconds, redirects included.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Demo: number of generated files.
    #[arg(long, default_value_t = 200)]
    pub files: usize,
    /// Demo: the server's delay before each response, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub delay_ms: u64,
    /// Demo: seed of the generated files.
    #[arg(long, default_value_t = FixtureConfig::default().seed)]
    pub seed: u64,
    /// Demo: only these modes (repeatable; default all four).
    #[arg(long = "demo-mode", value_enum, value_name = "MODE")]
    pub demo_modes: Vec<RunMode>,
    /// Demo: run the server and every mode in this one process, rather than
    /// each in a process of its own (the table's threads and memory then mix).
    #[arg(long)]
    pub single_process: bool,
    /// Internal: be the demo's server process.
    #[arg(long, hide = true)]
    pub serve_fixture: bool,
    /// Internal: be the demo's process for one mode.
    #[arg(long, hide = true, value_enum, requires = "server_addr")]
    pub measure: Option<RunMode>,
    /// Internal: the demo server's address, for `--measure`.
    #[arg(long, hide = true)]
    pub server_addr: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("downloader: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the program as the command line says.
///
/// # Errors
/// Set-up failures (unreadable input file, server that cannot start…);
/// failed downloads are not errors but exit status 1.
pub fn run(cli: Cli) -> io::Result<ExitCode> {
    let fixture = FixtureConfig {
        files: cli.files,
        delay: Duration::from_millis(cli.delay_ms),
        seed: cli.seed,
        ..FixtureConfig::default()
    };
    if cli.serve_fixture {
        demo::serve_fixture(fixture)?;
        return Ok(ExitCode::SUCCESS);
    }
    let demo_cfg = |modes| DemoConfig {
        fixture: fixture.clone(),
        modes,
        concurrency: cli.concurrency.map(|c| c as usize),
        isolate: !cli.single_process,
        progress: true,
    };
    if let (Some(mode), Some(addr)) = (cli.measure, cli.server_addr) {
        let row = demo::measure(&demo_cfg(vec![mode]), mode, addr)?;
        println!("ROW {}", demo::format_row(&row));
        return Ok(ExitCode::SUCCESS);
    }
    let mut urls = cli.urls.clone();
    if let Some(path) = &cli.input {
        urls.extend(read_url_list(path)?);
    }
    if urls.is_empty() && cli.input.is_none() {
        let modes = if cli.demo_modes.is_empty() {
            vec![
                RunMode::Sequential,
                RunMode::Threads,
                RunMode::Green,
                RunMode::Patched,
            ]
        } else {
            cli.demo_modes.clone()
        };
        let cfg = demo_cfg(modes);
        let rows = demo::run_demo(&cfg)?;
        demo::print_table(&rows, &cfg, &mut io::stdout())?;
        let all_ok = rows.iter().all(|r| r.verified == r.files);
        if !all_ok {
            eprintln!("downloader: some files were missing or had wrong checksums");
        }
        return Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if !(cli.timeout > 0.0 && cli.timeout.is_finite()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--timeout must be a positive number of seconds",
        ));
    }
    let tls_roots = cli.ca_cert.as_deref().map(http::load_roots).transpose()?;
    let opts = Options {
        out_dir: cli.out_dir.clone(),
        concurrency: cli.concurrency.map(|c| c as usize),
        timeout: Some(Duration::from_secs_f64(cli.timeout)),
        mode: cli.mode,
        report_failures: true,
        tls_roots,
    };
    let failed = download_urls(&urls, &opts, &mut io::stdout())?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The URLs in a list file: one per line, blank lines and `#` comments
/// skipped.
///
/// # Errors
/// If the file cannot be read.
pub fn read_url_list(path: &std::path::Path) -> io::Result<Vec<String>> {
    let f = std::fs::File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut urls = Vec::new();
    for line in io::BufReader::new(f).lines() {
        let line = line?;
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            urls.push(line.to_string());
        }
    }
    Ok(urls)
}

/// Downloads `urls`, prints one line per URL and a summary to `out`, and
/// returns how many failed.
///
/// # Errors
/// If the output directory cannot be created or `out` cannot be written.
pub fn download_urls(urls: &[String], opts: &Options, out: &mut impl Write) -> io::Result<usize> {
    let bar = ProgressBar::new(urls.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes:>10} {bytes_per_sec:>12} {elapsed}")
            .expect("valid template"),
    );
    let start = Instant::now();
    let outcomes = download_all(urls, opts, &bar)?;
    bar.finish_and_clear();
    let (mut ok, mut bytes) = (0, 0);
    for o in &outcomes {
        match &o.result {
            Ok(s) => {
                ok += 1;
                bytes += s.bytes;
                writeln!(
                    out,
                    "ok     {} -> {} ({})",
                    o.url,
                    s.path.display(),
                    human_bytes(s.bytes)
                )?;
            }
            Err(e) => writeln!(out, "FAILED {}: {e}", o.url)?,
        }
    }
    let failed = outcomes.len() - ok;
    writeln!(
        out,
        "{ok} downloaded, {failed} failed, {} in {:.2} s ({} mode) into {}",
        human_bytes(bytes),
        start.elapsed().as_secs_f64(),
        opts.mode.label(),
        opts.out_dir.display()
    )?;
    Ok(failed)
}
