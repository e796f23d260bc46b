//! A process's thread count and memory, from Linux's /proc.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `pid`, or this process when `None`, as a /proc path component.
fn who(pid: Option<u32>) -> String {
    pid.map_or_else(|| "self".to_string(), |p| p.to_string())
}

/// One `Key:  value kB` field of /proc/PID/status (the number only).
fn status_field(pid: Option<u32>, key: &str) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{}/status", who(pid)))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {key} in /proc/{}/status", who(pid))))
}

/// Number of OS threads of the process.
pub fn threads(pid: Option<u32>) -> io::Result<u64> {
    status_field(pid, "Threads")
}

/// Resident memory now, in bytes.
pub fn rss(pid: Option<u32>) -> io::Result<u64> {
    Ok(status_field(pid, "VmRSS")? * 1024)
}

/// Peak resident memory since start or the last [`reset_peak_rss`], in bytes.
pub fn peak_rss(pid: Option<u32>) -> io::Result<u64> {
    Ok(status_field(pid, "VmHWM")? * 1024)
}

/// Resets the peak that [`peak_rss`] reports to the current RSS (Linux ≥ 4.0;
/// needs permission to write the process's clear_refs).
pub fn reset_peak_rss(pid: Option<u32>) -> io::Result<()> {
    fs::write(format!("/proc/{}/clear_refs", who(pid)), "5")
}

/// Samples a process's thread count and RSS on a helper OS thread (every
/// `every`) and remembers the peaks: threads come and go too fast to catch
/// with one look at the end.
pub struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak_threads: Arc<AtomicU64>,
    peak_rss: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`PeakSampler`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Peaks {
    /// Most threads seen at once (the sampler's own thread excluded when
    /// sampling this process).
    pub threads: u64,
    /// Most resident bytes seen.
    pub rss: u64,
}

impl PeakSampler {
    /// Starts sampling `pid` (this process when `None`).
    pub fn start(pid: Option<u32>, every: Duration) -> PeakSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_threads = Arc::new(AtomicU64::new(0));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let (s, t, r) = (stop.clone(), peak_threads.clone(), peak_rss.clone());
        let own = u64::from(pid.is_none());
        let thread = std::thread::Builder::new()
            .name("peak-sampler".into())
            .spawn(move || loop {
                if let Ok(n) = threads(pid) {
                    t.fetch_max(n.saturating_sub(own), Ordering::Relaxed);
                }
                if let Ok(b) = rss(pid) {
                    r.fetch_max(b, Ordering::Relaxed);
                }
                if s.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(every);
            })
            .ok();
        PeakSampler {
            stop,
            peak_threads,
            peak_rss,
            thread,
        }
    }

    /// Stops sampling and returns the peaks (after one last sample).
    pub fn finish(mut self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Peaks {
            threads: self.peak_threads.load(Ordering::Relaxed),
            rss: self.peak_rss.load(Ordering::Relaxed),
        }
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bytes as a short human string (`12.3 MB`, decimal units).
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}
