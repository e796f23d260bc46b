//! A green thread that overflows its stack is reported by name and size and
//! the process aborts — never silent memory corruption. The overflow runs in
//! a child process (this test binary re-executed).

mod overflow_support;
use overflow_support::recurse;

use std::process::Command;

const CHILD_ENV: &str = "GREENHOUSE_OVERFLOW_CHILD";

#[test]
fn overflow_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful as the child of the test below
    }
    let rt = greenhouse::runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    rt.run(|| {
        greenhouse::thread::Builder::new()
            .name("deep-recursion".into())
            .stack_size(64 * 1024)
            .spawn(|| recurse(0, &mut [0; 1024]))
            .unwrap()
            .join()
            .ok();
    });
}

#[test]
fn stack_overflow_names_the_green_thread_and_aborts() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("green thread 'deep-recursion' has overflowed its stack (64 KiB)"),
        "stderr: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status: {:?}",
        out.status
    );
}
