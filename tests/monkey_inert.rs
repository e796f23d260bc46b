//! Proof 4, unpatched half: in a process that links the hooks but never
//! calls `patch_all`, std socket and sleep code behaves exactly as with libc
//! alone — on plain threads and in green threads (which then block their
//! worker, as without the feature).

mod monkey_common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monkey_common::*;

/// The executable defines `recv` itself (the hooks are linked in), and it is
/// not libc's.
#[test]
fn hooks_are_linked_but_not_patched() {
    assert!(!greenhouse::monkey::is_patched());
    // SAFETY: dlopen/dlsym with NUL-terminated names; RTLD_NOLOAD only looks
    // up the already loaded libc.
    unsafe {
        let libc_handle = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY);
        assert!(!libc_handle.is_null());
        let libcs = libc::dlsym(libc_handle, c"recv".as_ptr());
        let seen = libc::dlsym(libc::RTLD_DEFAULT, c"recv".as_ptr());
        assert!(!libcs.is_null() && !seen.is_null());
        assert_ne!(
            libcs, seen,
            "the process resolves recv to libc: hooks not linked"
        );
    }
}

#[test]
fn std_code_on_a_plain_thread_behaves_as_with_libc() {
    let seen = within(Duration::from_secs(30), || {
        std::thread::spawn(observe_std).join().unwrap()
    });
    assert_eq!(seen, expected_std());
}

#[test]
fn std_code_in_a_green_thread_blocks_its_worker_before_patching() {
    assert!(!greenhouse::monkey::is_patched());
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let other = greenhouse::thread::spawn(move || r.store(true, SeqCst));
            let t = Instant::now();
            std::thread::sleep(Duration::from_millis(30));
            assert!(t.elapsed() >= Duration::from_millis(30));
            assert!(!ran.load(SeqCst), "a hook switched before patch_all");
            // Everything else std does is libc's too.
            assert_eq!(observe_std(), expected_std());
            other.join().unwrap();
        })
    });
}
