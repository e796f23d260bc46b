//! The stuck-worker monitor reports a green thread that holds its worker
//! without reaching a switch point (gevent's max_blocking_time). Its own test
//! binary: it installs a global logger to capture the report.

use std::sync::Mutex;
use std::time::Duration;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;
impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOG.lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Stuck-worker reports naming `name`.
fn reports_naming(name: &str) -> Vec<String> {
    LOG.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("switch point") && l.contains(&format!("'{name}'")))
        .cloned()
        .collect()
}

/// Runs a green thread named `name` that blocks its worker's OS thread for
/// `block`, on a one-worker runtime with the given monitor threshold.
fn block_worker(name: &str, threshold: Option<Duration>, block: Duration) {
    let rt = greenhouse::runtime::Runtime::builder()
        .workers(1)
        .monitor_threshold(threshold)
        .build()
        .unwrap();
    let name = name.to_string();
    rt.run(move || {
        greenhouse::thread::Builder::new()
            .name(name)
            .spawn(move || std::thread::sleep(block))
            .unwrap()
            .join()
            .unwrap();
    });
}

#[test]
fn the_monitor_can_be_turned_off() {
    install_logger();
    block_worker("unwatched", None, Duration::from_millis(400));
    assert!(reports_naming("unwatched").is_empty());
}

#[test]
fn the_threshold_is_configurable() {
    install_logger();
    // Blocking for 400 ms is not stuck under a 2 s threshold...
    block_worker(
        "patient",
        Some(Duration::from_secs(2)),
        Duration::from_millis(400),
    );
    assert!(reports_naming("patient").is_empty());
    // ...and is under a 50 ms one, reported with the threshold.
    block_worker(
        "impatient",
        Some(Duration::from_millis(50)),
        Duration::from_millis(400),
    );
    let r = reports_naming("impatient");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("over 50 ms"), "{r:?}");
}

#[test]
fn a_green_thread_that_blocks_its_worker_is_reported_by_name() {
    install_logger();
    let rt = greenhouse::runtime::Runtime::builder()
        .workers(1)
        .monitor_threshold(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    rt.run(|| {
        let h = greenhouse::thread::Builder::new()
            .name("cpu-hog".into())
            .spawn(|| {
                // A blocking call that does not switch: stalls the worker.
                std::thread::sleep(Duration::from_millis(400));
            })
            .unwrap();
        h.join().unwrap();
        // A well-behaved green thread of the same length is not reported.
        greenhouse::thread::Builder::new()
            .name("polite".into())
            .spawn(|| greenhouse::thread::sleep(Duration::from_millis(400)))
            .unwrap()
            .join()
            .unwrap();
    });
    let reports = reports_naming("cpu-hog");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].starts_with("WARN"), "{reports:?}");
    assert!(reports_naming("polite").is_empty());
}
