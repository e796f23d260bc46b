//! An idle runtime uses no CPU: workers block in epoll with no timeout.
//! (Its own test binary, so no other test's work is counted.)

use std::time::Duration;

fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn idle_runtime_uses_under_10ms_cpu_per_second() {
    let rt = greenhouse::runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    // Warm up: start every worker once.
    rt.run(|| {
        let hs: Vec<_> = (0..4).map(|_| greenhouse::thread::spawn(|| ())).collect();
        greenhouse::thread::join_all(hs);
    });
    let before = process_cpu();
    // The runtime is idle; this OS thread just sleeps.
    std::thread::sleep(Duration::from_secs(1));
    let used = process_cpu() - before;
    assert!(
        used < Duration::from_millis(10),
        "idle runtime used {used:?} CPU in 1 s"
    );
    drop(rt);
}
