//! System calls the runtime makes itself, issued as raw syscalls so that they
//! never go through greenhouse's own libc interposition hooks (feature
//! `monkey`), whatever the hooks do.

/// `poll(2)` through the raw `ppoll` system call.
///
/// # Safety
/// `fds` must point to `nfds` valid, writable `pollfd`s.
pub(crate) unsafe fn poll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout_ms: libc::c_int,
) -> libc::c_int {
    let ts;
    let tsp = if timeout_ms < 0 {
        std::ptr::null()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as libc::time_t,
            tv_nsec: ((timeout_ms % 1000) as libc::c_long) * 1_000_000,
        };
        &ts as *const libc::timespec
    };
    libc::syscall(
        libc::SYS_ppoll,
        fds,
        nfds,
        tsp,
        std::ptr::null::<libc::sigset_t>(),
        0usize,
    ) as libc::c_int
}
