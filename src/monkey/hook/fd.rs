//! Bookkeeping: `socket`, `socketpair`, `pipe`, `pipe2`, `close`, `dup`,
//! `dup2`, `dup3`, `fcntl`, `ioctl(FIONBIO)`, `setsockopt`. After
//! `patch_all` these keep the descriptor table true in every thread (green or
//! not, patched section or not): they never wait, and they return exactly
//! what libc returns.
//!
//! `fcntl` and `ioctl` are variadic in C. Stable Rust cannot define variadic
//! functions, so these are defined with one word-sized third argument: on the
//! x86-64 and AArch64 Linux calling conventions a variadic caller passes it in
//! the same register as a fixed one, and the hook forwards it unchanged
//! (garbage for commands that take none, which libc ignores).

use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering::*;

use libc::socklen_t;

use super::patched;
use crate::monkey::fds::{self, Kind};
use crate::monkey::real;

fn socket_kind(ty: c_int) -> Kind {
    Kind::Socket {
        stream: ty & 0xf == libc::SOCK_STREAM,
    }
}

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    let fd = real::socket(domain, ty, proto);
    if fd >= 0 && patched() {
        fds::created(fd, socket_kind(ty), ty & libc::SOCK_NONBLOCK != 0);
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    proto: c_int,
    sv: *mut c_int,
) -> c_int {
    let r = real::socketpair(domain, ty, proto, sv);
    if r == 0 && patched() {
        for i in 0..2 {
            fds::created(*sv.add(i), socket_kind(ty), ty & libc::SOCK_NONBLOCK != 0);
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pipe(fds_out: *mut c_int) -> c_int {
    let r = real::pipe(fds_out);
    if r == 0 && patched() {
        for i in 0..2 {
            fds::created(*fds_out.add(i), Kind::Pollable, false);
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pipe2(fds_out: *mut c_int, flags: c_int) -> c_int {
    let r = real::pipe2(fds_out, flags);
    if r == 0 && patched() {
        for i in 0..2 {
            fds::created(
                *fds_out.add(i),
                Kind::Pollable,
                flags & libc::O_NONBLOCK != 0,
            );
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if patched() {
        // Before the real close: the number may be reused the moment it
        // returns, and the poll must forget this file first.
        fds::remove(fd);
    }
    real::close(fd)
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let r = real::dup(fd);
    if r >= 0 && patched() {
        // A stale entry of a number closed behind our back; the duplicate is
        // classified from the kernel when a green thread first uses it.
        fds::remove(r);
    }
    r
}

/// `dup2`/`dup3` close `new` first: its readiness interest goes now (unless
/// `old` is invalid, when the call fails without touching `new`).
unsafe fn before_replace(old: c_int, new: c_int) {
    if patched() && old != new && fds::get(new).is_some() && real::fcntl(old, libc::F_GETFD, 0) >= 0
    {
        fds::remove(new);
    }
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    before_replace(old, new);
    real::dup2(old, new)
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    before_replace(old, new);
    real::dup3(old, new, flags)
}

/// Records the user's blocking mode from `F_SETFL`, and makes `F_DUPFD*`
/// bookkeeping like `dup`.
unsafe fn after_fcntl(fd: c_int, cmd: c_int, arg: usize, r: c_int) -> c_int {
    if r < 0 || !patched() {
        return r;
    }
    match cmd {
        libc::F_SETFL => {
            if let Some(e) = fds::get(fd) {
                e.user_nonblock
                    .store(arg as c_int & libc::O_NONBLOCK != 0, Relaxed);
            }
        }
        libc::F_GETFL => {
            // A green call may hold O_NONBLOCK for one system call right now:
            // the user still sees the mode they chose.
            if let Some(e) = fds::get(fd) {
                if e.toggling.load(SeqCst) != 0 && !e.user_nonblock.load(Relaxed) {
                    return r & !libc::O_NONBLOCK;
                }
            }
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => fds::remove(r),
        _ => {}
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    let r = real::fcntl(fd, cmd, arg);
    after_fcntl(fd, cmd, arg, r)
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    let r = real::fcntl64(fd, cmd, arg);
    after_fcntl(fd, cmd, arg, r)
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: libc::c_ulong, arg: usize) -> c_int {
    let r = real::ioctl(fd, req, arg);
    if r == 0 && req == libc::FIONBIO && arg != 0 && patched() {
        if let Some(e) = fds::get(fd) {
            e.user_nonblock.store(*(arg as *const c_int) != 0, Relaxed);
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let r = real::setsockopt(fd, level, name, val, len);
    if r == 0
        && patched()
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
    {
        if let Some(e) = fds::get(fd) {
            // Read back what the kernel stored (it rounds to its tick).
            let ns = fds::sock_timeout(fd, name);
            if name == libc::SO_RCVTIMEO {
                e.rcv_timeout.store(ns, Relaxed);
            } else {
                e.snd_timeout.store(ns, Relaxed);
            }
        }
    }
    r
}
