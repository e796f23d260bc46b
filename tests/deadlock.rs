//! Deadlock reports: when every green thread is parked and nothing can wake
//! any of them, `run` reports who waits on what instead of hanging.

use std::time::{Duration, Instant};

use greenhouse::runtime::{RunError, Runtime};
use greenhouse::thread;

#[test]
fn all_parked_forever_is_reported_with_names_and_reasons() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let start = Instant::now();
    let err = rt
        .try_run(|| {
            // Two green threads join each other's partner forever: a cycle.
            let a = thread::Builder::new()
                .name("waits-forever".into())
                .spawn(thread::park)
                .unwrap();
            let b = thread::Builder::new()
                .name("joins-a".into())
                .spawn(move || a.join().is_ok())
                .unwrap();
            b.join().unwrap()
        })
        .unwrap_err();
    let RunError::Deadlock(report) = err else {
        panic!("expected a deadlock report, got {err:?}");
    };
    assert!(report.contains("deadlock"), "{report}");
    assert!(report.contains("'main'"), "{report}");
    assert!(
        report.contains("'waits-forever'") && report.contains("park()"),
        "{report}"
    );
    assert!(
        report.contains("'joins-a'") && report.contains("join"),
        "{report}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn run_panics_with_the_report() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run(thread::park)));
    let payload = r.unwrap_err();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(msg.contains("deadlock"), "{msg}");
}

#[test]
fn a_sleeper_or_an_outside_handle_is_not_a_deadlock() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    // Parked, but a timer will wake it: no report.
    rt.run(|| thread::sleep(Duration::from_millis(400)));
    // Parked with no timer, but an OS thread holding a Handle unparks it.
    let handle = rt.handle();
    let me_slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = me_slot.clone();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        let t: greenhouse::thread::Thread = slot.lock().unwrap().take().unwrap();
        t.unpark();
        drop(handle);
    });
    rt.run(move || {
        *me_slot.lock().unwrap() = Some(thread::current());
        thread::park();
    });
    waker.join().unwrap();
}

#[test]
fn parked_background_threads_between_runs_are_not_a_deadlock() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    // A background green thread parks with nothing to wake it — yet. No run
    // is waiting, so the runtime's owner may still wake it with the next run.
    let bg = rt.run(|| thread::spawn(thread::park));
    std::thread::sleep(Duration::from_millis(400));
    // Not killed: the next run wakes it and it finishes normally.
    let joined = rt.run(move || {
        bg.thread().unpark();
        bg.join()
    });
    assert!(
        joined.is_ok(),
        "background green thread was killed: {joined:?}"
    );
}
