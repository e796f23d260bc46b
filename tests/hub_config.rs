//! The runtime's settings and entry points: `greenhouse::run` and what
//! happens to green threads still running when its closure returns, the
//! builder's stack size and name prefix, `Handle`'s auto traits, the panic
//! message naming the green thread, green-locals outside green threads.
//! Checks that need a process of their own (an overflow aborts; the panic
//! message goes to stderr) re-run this test binary as a child.

mod overflow_support;
use overflow_support::recurse;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::runtime::{Handle, Runtime};
use greenhouse::thread;

const CHILD_ENV: &str = "GREENHOUSE_HUB_CONFIG_CHILD";

/// Runs the test `name` of this binary in a child process with CHILD_ENV set
/// to `role`; returns its stderr and exit status.
fn child(name: &str, role: &str) -> (String, std::process::ExitStatus) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status,
    )
}

fn role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

struct CountOnDrop(Arc<AtomicUsize>);
impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// `greenhouse::run` kills the green threads still running when its closure
/// returns: started ones unwind (destructors run, code after their blocking
/// call does not), unstarted ones never run.
#[test]
fn run_kills_stragglers_when_its_closure_returns() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let ran_past_sleep = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (d, r, s) = (dropped.clone(), ran_past_sleep.clone(), started.clone());
    let start = Instant::now();
    greenhouse::run(move || {
        for _ in 0..20 {
            // Captured, so it is dropped whether the straggler started
            // (unwound from its sleep) or not (dropped without running).
            let g = CountOnDrop(d.clone());
            let (r, s) = (r.clone(), s.clone());
            thread::spawn(move || {
                let _g = g;
                s.fetch_add(1, SeqCst);
                thread::sleep(Duration::from_secs(60));
                r.fetch_add(1, SeqCst);
            });
        }
        // Let some of them start (on one worker or several).
        while s.load(SeqCst) == 0 {
            thread::yield_now();
        }
    });
    // Every straggler is gone by the time run returns: the started ones
    // unwound from their sleep, the others were dropped without running
    // (their closure, holding the guard, dropped too).
    assert_eq!(dropped.load(SeqCst), 20);
    assert_eq!(ran_past_sleep.load(SeqCst), 0);
    assert!(started.load(SeqCst) >= 1);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn handle_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Handle>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<thread::JoinHandle<String>>();
    send_sync::<thread::Thread>();
}

#[test]
fn workers_are_named_with_the_prefix() {
    let rt = Runtime::builder()
        .workers(2)
        .name_prefix("crawler")
        .build()
        .unwrap();
    let names = rt.run(|| {
        let hs: Vec<_> = (0..8)
            .map(|_| thread::spawn(|| std::thread::current().name().map(String::from)))
            .collect();
        thread::join_all(hs)
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect::<Vec<_>>()
    });
    for n in names {
        assert!(n.starts_with("crawler-worker-"), "{n}");
    }
}

#[test]
fn builder_stack_size_child() {
    if role().as_deref() != Some("stack") {
        return; // only meaningful as the child of the test below
    }
    let rt = Runtime::builder()
        .workers(1)
        .stack_size(96 * 1024)
        .build()
        .unwrap();
    rt.run(|| {
        // No per-thread size: the runtime's default applies.
        thread::spawn(|| recurse(0, &mut [0; 1024])).join().ok();
    });
}

/// The builder's stack size is what green threads get: the overflow report
/// names it.
#[test]
fn builder_stack_size_is_the_green_threads_default() {
    let (stderr, status) = child("builder_stack_size_child", "stack");
    assert!(
        stderr.contains("has overflowed its stack (96 KiB)"),
        "stderr: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
}

#[test]
fn panic_message_child() {
    if role().as_deref() != Some("panic") {
        return;
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let h = thread::Builder::new()
            .name("parser-7".into())
            .spawn(|| -> u32 { panic!("bad input at byte 12") })
            .unwrap();
        assert!(h.join().unwrap_err().is_panic());
        // Other green threads carry on.
        assert_eq!(thread::spawn(|| 5).join().unwrap(), 5);
        eprintln!("after the panic");
    });
}

/// A panicking green thread is reported like std reports a panicking
/// thread, naming the green thread (not the worker OS thread it ran on).
#[test]
fn panic_message_names_the_green_thread() {
    let (stderr, status) = child("panic_message_child", "panic");
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains("green thread 'parser-7' panicked at"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("bad input at byte 12"), "stderr: {stderr}");
    assert!(!stderr.contains("worker-"), "stderr: {stderr}");
    assert!(stderr.contains("after the panic"), "stderr: {stderr}");
}

greenhouse::green_local! {
    static COUNTER: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

/// Outside green threads a green-local is per OS thread.
#[test]
fn green_local_outside_green_threads_is_per_os_thread() {
    COUNTER.with(|c| c.set(7));
    let other = std::thread::spawn(|| {
        let first = COUNTER.with(|c| c.get());
        COUNTER.with(|c| c.set(1));
        first
    })
    .join()
    .unwrap();
    assert_eq!(other, 0);
    assert_eq!(COUNTER.with(|c| c.get()), 7);
    // And a green thread does not see the OS thread's value.
    let inside = greenhouse::run(|| COUNTER.with(|c| c.get()));
    assert_eq!(inside, 0);
}

#[test]
fn sleep_until_waits_for_the_deadline_and_returns_at_once_past_it() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let until = Instant::now() + Duration::from_millis(30);
                thread::sleep_until(until);
                assert!(Instant::now() >= until);
                let t = Instant::now();
                thread::sleep_until(t - Duration::from_millis(1));
                thread::sleep(Duration::ZERO);
                assert!(t.elapsed() < Duration::from_secs(2));
            });
    }
}
