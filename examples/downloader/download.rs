//! Downloading a list of URLs: one after another, on OS threads, or on green
//! threads. The per-URL code ([`fetch`]) is the same in every mode; only the
//! HTTP agent's sockets and the spawn function differ.
//!
//! Files are written with `greenhouse::fs`: from a green thread each call
//! runs on the blocking pool (a slow disk or an `fsync` would otherwise
//! stall every download on the worker); from an OS thread it is std's call,
//! in place.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenhouse::fs::{self, File, OpenOptions};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use ureq::tls::RootCerts;

use super::common::http;
use super::common::mode::{Green, Mode, Threads};

/// How the downloads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunMode {
    /// One after another on this thread.
    Sequential,
    /// One OS thread per URL (at most `-c` at once).
    Threads,
    /// One green thread per URL (at most `-c` at once).
    Green,
    /// As `green`, but through ureq's own `std::net` transport — the code
    /// the threads mode runs — made green by `greenhouse::monkey::patch_all`
    /// (which this mode calls).
    Patched,
}

impl RunMode {
    /// The mode's name in tables.
    pub fn label(self) -> &'static str {
        match self {
            RunMode::Sequential => "sequential",
            RunMode::Threads => "OS thread per file",
            RunMode::Green => "green thread per file",
            RunMode::Patched => "green, std + patch_all",
        }
    }
}

/// What every download needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory the files go to (created if missing).
    pub out_dir: PathBuf,
    /// At most this many downloads at once (`None`: all at once).
    pub concurrency: Option<usize>,
    /// Time limit per URL, redirects included.
    pub timeout: Option<Duration>,
    /// How to run them.
    pub mode: RunMode,
    /// Print each failure to stderr as it happens.
    pub report_failures: bool,
    /// Certificates to trust for https instead of the built-in roots.
    pub tls_roots: Option<RootCerts>,
}

/// A file written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where.
    pub path: PathBuf,
    /// Its length.
    pub bytes: u64,
    /// Its SHA-256, computed while streaming.
    pub sha256: [u8; 32],
}

/// The result for one URL.
#[derive(Debug)]
pub struct Outcome {
    /// The URL as given.
    pub url: String,
    /// The saved file, or why there is none.
    pub result: Result<Saved, String>,
}

/// Hands out file names in the output directory: from the URL, made safe,
/// never one already taken (in this run or on disk).
#[derive(Debug, Default)]
pub struct Names {
    taken: Mutex<HashSet<String>>,
}

/// The base name a URL's file gets: its path's last segment with anything
/// but `[A-Za-z0-9._-]` replaced by `_`, no leading dots, at most 100 bytes;
/// `index.html` when that leaves nothing. It never contains a path
/// separator and is never `.` or `..`, so it always names a file inside the
/// output directory.
pub fn base_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let last = path.rsplit('/').next().unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    name = name.trim_start_matches('.').to_string();
    name.truncate(100);
    if name.is_empty() {
        "index.html".to_string()
    } else {
        name
    }
}

impl Names {
    /// Creates a new, empty file for `url` in `dir` and returns it with its
    /// path: `name.ext`, else `name-1.ext`, `name-2.ext`, …
    ///
    /// # Errors
    /// If the file cannot be created.
    pub fn create(&self, dir: &Path, url: &str) -> io::Result<(File, PathBuf)> {
        let base = base_name(url);
        let (stem, ext) = match base.rfind('.') {
            Some(i) if i > 0 => (&base[..i], &base[i..]),
            _ => (base.as_str(), ""),
        };
        for n in 0u32.. {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{stem}-{n}{ext}")
            };
            if !self.taken.lock().unwrap().insert(name.clone()) {
                continue;
            }
            let path = dir.join(&name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => return Ok((f, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("u32 names run out")
    }
}

/// Downloads one URL with `agent` into a new file in `dir`, streaming the
/// body to disk and hashing it on the way. A failed download leaves no file.
///
/// # Errors
/// A message naming what failed: the request (status, connection, time-out)
/// or the file.
pub fn fetch(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    names: &Names,
    progress: &ProgressBar,
) -> Result<Saved, String> {
    check_url(url)?;
    let mut resp = agent.get(url).call().map_err(|e| describe(&e))?;
    let (mut file, path) = names
        .create(dir, url)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    // No fsync: like curl and wget, a download is done when the kernel has
    // the bytes (an fsync per file made the demo time the shared disk).
    let copied = copy_hashing(&mut resp.body_mut().as_reader(), &mut file, progress);
    match copied {
        Ok((bytes, sha256)) => Ok(Saved {
            path,
            bytes,
            sha256,
        }),
        Err(e) => {
            drop(file);
            let _ = fs::remove_file(&path);
            Err(e.to_string())
        }
    }
}

/// Refuses what is not an http(s) URL with a host and a valid port, before
/// the client sees it: the client's own messages for these are terse
/// ("http: invalid uri character"), and it takes a port over 65535 for
/// no port at all (and connects to 80).
///
/// # Errors
/// A message saying what is wrong with the URL.
pub fn check_url(url: &str) -> Result<(), String> {
    if !url.contains("://") {
        return Err("bad URL: no scheme (give http://… or https://…)".into());
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("bad URL (not an http or https URL: {e})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "bad URL: unsupported scheme {other}:// (only http and https)"
            ))
        }
        None => return Err("bad URL: no scheme (give http://… or https://…)".into()),
    }
    if uri.host().map_or(true, str::is_empty) {
        return Err("bad URL: no host".into());
    }
    // `Uri::port` is `None` for a port that does not fit a u16: look at the
    // authority's text (after any user info and any `[IPv6]` literal).
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    if let Some(port) = after_host.strip_prefix(':') {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("bad URL: port {port} is not 1-65535"));
        }
    }
    Ok(())
}

/// The client's error, with a hint where the fix is the user's.
fn describe(e: &ureq::Error) -> String {
    let msg = e.to_string();
    if msg.to_lowercase().contains("unknownissuer") {
        format!("{msg} (the server's certificate is not signed by a trusted CA; --ca-cert FILE adds one)")
    } else {
        msg
    }
}

/// Copies `from` into `to`, returning the byte count and SHA-256.
fn copy_hashing(
    from: &mut impl Read,
    to: &mut impl Write,
    progress: &ProgressBar,
) -> io::Result<(u64, [u8; 32])> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut hash = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        hash.update(&buf[..n]);
        total += n as u64;
        progress.inc(n as u64);
    }
    to.flush()?;
    Ok((total, hash.finalize().into()))
}

/// Downloads every URL the way `opts.mode` says; the outcomes come back in
/// the order of `urls`, whatever order the downloads finished in.
///
/// # Errors
/// Only if the output directory cannot be created; a URL that fails is an
/// `Err` in its [`Outcome`] and the others go on.
pub fn download_all(
    urls: &[String],
    opts: &Options,
    progress: &ProgressBar,
) -> io::Result<Vec<Outcome>> {
    fs::create_dir_all(&opts.out_dir)?;
    let job = Arc::new(Job {
        urls: urls.to_vec(),
        opts: opts.clone(),
        names: Names::default(),
        next: AtomicUsize::new(0),
        results: Mutex::new((0..urls.len()).map(|_| None).collect()),
        progress: progress.clone(),
    });
    let (timeout, roots) = (opts.timeout, opts.tls_roots.clone());
    match opts.mode {
        RunMode::Sequential => {
            let agent = http::std_agent(timeout, roots.as_ref());
            job.work(&agent);
        }
        RunMode::Threads => {
            let agent = http::std_agent(timeout, roots.as_ref());
            run_concurrently::<Threads>(job.clone(), agent)?;
        }
        RunMode::Green => {
            let j = job.clone();
            Green::enter(move || green_per_url(j, http::green_agent(timeout, roots.as_ref())))?;
        }
        RunMode::Patched => {
            greenhouse::monkey::patch_all()?;
            let j = job.clone();
            Green::enter(move || green_per_url(j, http::patched_agent(timeout, roots.as_ref())))?;
        }
    }
    let job = Arc::try_unwrap(job).map_err(|_| io::Error::other("a download is still running"))?;
    Ok(job
        .results
        .into_inner()
        .unwrap()
        .into_iter()
        .zip(urls)
        .map(|(r, url)| Outcome {
            url: url.clone(),
            result: r.unwrap_or_else(|| Err("not attempted".into())),
        })
        .collect())
}

/// The shared state of one `download_all`.
struct Job {
    urls: Vec<String>,
    opts: Options,
    names: Names,
    next: AtomicUsize,
    results: Mutex<Vec<Option<Result<Saved, String>>>>,
    progress: ProgressBar,
}

impl Job {
    /// Downloads URL `i` and records the outcome: the per-URL code of every
    /// mode.
    fn run_one(&self, agent: &ureq::Agent, i: usize) {
        let url = &self.urls[i];
        let r = fetch(agent, url, &self.opts.out_dir, &self.names, &self.progress);
        if let Err(e) = &r {
            if self.opts.report_failures {
                self.progress.suspend(|| eprintln!("FAILED {url}: {e}"));
            }
        }
        self.results.lock().unwrap()[i] = Some(r);
    }

    /// Takes URLs off the list until none is left (the sequential loop, and
    /// each OS thread's).
    fn work(&self, agent: &ureq::Agent) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.urls.len() {
                return;
            }
            self.run_one(agent, i);
        }
    }
}

/// One green thread per URL (green and patched modes); with a concurrency cap, spawned through a
/// `greenhouse::pool::Pool` of that size (gevent's `Pool`: `spawn` waits
/// while the pool is full).
fn green_per_url(job: Arc<Job>, agent: ureq::Agent) -> io::Result<()> {
    let n = job.urls.len();
    let spawn = |i: usize| {
        let (job, agent) = (job.clone(), agent.clone());
        move || job.run_one(&agent, i)
    };
    match job.opts.concurrency {
        Some(cap) => {
            let pool = greenhouse::pool::Pool::new(cap.max(1));
            for i in 0..n {
                pool.spawn(spawn(i));
            }
            pool.join();
        }
        None => {
            let handles: Vec<_> = (0..n)
                .map(|i| greenhouse::thread::spawn(spawn(i)))
                .collect();
            for h in handles {
                h.join().map_err(|e| io::Error::other(e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// Spawns `min(concurrency, urls)` threads of mode `M` (one per URL when
/// uncapped), each running [`Job::work`], and joins them.
fn run_concurrently<M: Mode>(job: Arc<Job>, agent: ureq::Agent) -> io::Result<()> {
    let n = job.urls.len();
    let workers = job.opts.concurrency.unwrap_or(n).clamp(1, n.max(1));
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let (job, agent) = (job.clone(), agent.clone());
        tasks.push(M::spawn(&format!("download-{w}"), move || {
            job.work(&agent)
        })?);
    }
    for t in tasks {
        t.join().map_err(io::Error::other)?;
    }
    Ok(())
}
