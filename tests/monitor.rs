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

#[test]
fn a_green_thread_that_blocks_its_worker_is_reported_by_name() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
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
    let log = LOG.lock().unwrap();
    let reports: Vec<_> = log.iter().filter(|l| l.contains("switch point")).collect();
    assert_eq!(reports.len(), 1, "{log:?}");
    assert!(
        reports[0].starts_with("WARN") && reports[0].contains("'cpu-hog'"),
        "{log:?}"
    );
}
