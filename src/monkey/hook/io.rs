//! Data calls: `read`, `readv`, `recv`, `recvfrom`, `recvmsg`, `write`,
//! `writev`, `send`, `sendto`, `sendmsg`, `accept`, `accept4`, `connect`,
//! `sendfile`, `splice`.
//!
//! In a green thread, on a descriptor the user keeps blocking:
//! - sockets get `MSG_DONTWAIT` per call (`read`/`readv`/`write`/`writev`
//!   become `recv`/`recvmsg`/`send`/`sendmsg`, which the kernel treats
//!   alike on sockets) — the file's own flags are never touched, so other
//!   threads sharing it see nothing;
//! - pipes and other pollable files use `preadv2`/`pwritev2` with
//!   `RWF_NOWAIT`, or where the kernel lacks that for the file (named FIFOs,
//!   terminals) wait for `poll(2)` readiness and then make the call;
//! - `accept`, `connect`, `sendfile`, `splice` have no per-call flag:
//!   `O_NONBLOCK` is set around the one system call and cleared after.
//!
//! `EAGAIN` parks the green thread until the descriptor is ready (or the
//! socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` expires: `EAGAIN`, `EINPROGRESS` for
//! `connect`, as the blocking call reports it). Writes on stream sockets and
//! pipes complete the whole buffer before returning, as blocking writes do,
//! and return the partial count when stopped after some progress.
//!
//! Standard output and error (fds 1 and 2) always pass through: std's
//! `Stdout`/`Stderr` locks are re-entrant per OS thread, so a green thread
//! switched out in the middle of a `println!` would let another green thread
//! on the same worker into the same borrowed buffer.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use libc::{size_t, socklen_t, ssize_t};

use super::{green, patched};
use crate::monkey::fds::{self, FdState, Kind};
use crate::monkey::green::{deadline, errno, retry, set_errno, with_nonblock, Outcome, TOGGLE_GEN};
use crate::monkey::real;
use crate::runtime::io::Interest;

/// The entry of `fd` if a green call on it should wait: a socket or
/// pollable file the user keeps blocking.
fn waitable(fd: c_int) -> Option<Arc<FdState>> {
    let e = fds::get_or_classify(fd)?;
    if e.kind == Kind::Passthrough || e.user_nonblock.load(Relaxed) {
        return None;
    }
    Some(e)
}

/// Finishes a green call: the C return value, errno set on failure and left
/// as the caller had it on success.
fn finish(saved_errno: c_int, out: Outcome) -> isize {
    match out {
        Outcome::Done(n) => {
            set_errno(saved_errno);
            n
        }
        failed => failed.ret(),
    }
}

fn is_stream(e: &FdState) -> bool {
    matches!(e.kind, Kind::Socket { stream: true })
}

// ---- reads ---------------------------------------------------------------

/// A socket receive made non-blocking with `MSG_DONTWAIT`; MSG_WAITALL on a
/// stream socket keeps receiving until `n` bytes, end of stream or an error.
unsafe fn green_recv(
    e: &FdState,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> isize {
    let saved = errno();
    let dl = deadline(e.timeout(true));
    let waitall = flags & libc::MSG_WAITALL != 0 && is_stream(e);
    let flags = (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT;
    let mut total = 0usize;
    loop {
        let out = retry(e, Interest::Read, dl, || {
            real::recvfrom(
                e.fd,
                (buf as *mut u8).add(total) as *mut c_void,
                n - total,
                flags,
                addr,
                len,
            )
        });
        match out {
            Outcome::Done(r) if waitall && r > 0 && total + (r as usize) < n => total += r as usize,
            Outcome::Done(r) => return finish(saved, Outcome::Done(total as isize + r)),
            Outcome::Failed(_) if total > 0 => return finish(saved, Outcome::Done(total as isize)),
            failed => return finish(saved, failed),
        }
    }
}

unsafe fn green_recvmsg(e: &FdState, msg: *mut libc::msghdr, flags: c_int) -> isize {
    let saved = errno();
    let dl = deadline(e.timeout(true));
    let flags = flags | libc::MSG_DONTWAIT;
    finish(
        saved,
        retry(e, Interest::Read, dl, || real::recvmsg(e.fd, msg, flags)),
    )
}

/// A read from a pipe or other pollable file without blocking.
unsafe fn pollable_read(e: &FdState, iov: *const libc::iovec, cnt: c_int) -> isize {
    let saved = errno();
    finish(
        saved,
        retry(e, Interest::Read, None, || {
            nowait_or_ready(
                e,
                libc::POLLIN,
                || real::preadv2(e.fd, iov, cnt, -1, libc::RWF_NOWAIT),
                || real::readv(e.fd, iov, cnt),
            )
        }),
    )
}

/// `RWF_NOWAIT` where the file supports it; else the blocking call once
/// `poll(2)` says it will not block (`EAGAIN` otherwise).
fn nowait_or_ready(
    e: &FdState,
    events: libc::c_short,
    nowait: impl FnOnce() -> isize,
    blocking: impl FnOnce() -> isize,
) -> isize {
    if e.nowait.load(Relaxed) {
        let r = nowait();
        if r >= 0 || errno() != libc::EOPNOTSUPP {
            return r;
        }
        e.nowait.store(false, Relaxed);
    }
    let mut p = libc::pollfd {
        fd: e.fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a raw ppoll that never reaches the hooks.
    let n = unsafe { crate::sys::poll(&mut p, 1, 0) };
    if n > 0 {
        blocking()
    } else {
        if n == 0 {
            set_errno(libc::EAGAIN);
        }
        -1
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::read(fd, buf, n);
    }
    read_patched(fd, buf, n)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn read_patched(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::read(fd, buf, n);
    }
    read_green(fd, buf, n)
}

#[inline(never)]
unsafe extern "C" fn read_green(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    let Some(e) = waitable(fd) else {
        return real::read(fd, buf, n);
    };
    match e.kind {
        Kind::Socket { .. } => {
            green_recv(&e, buf, n, 0, std::ptr::null_mut(), std::ptr::null_mut())
        }
        _ => {
            let iov = libc::iovec {
                iov_base: buf,
                iov_len: n,
            };
            pollable_read(&e, &iov, 1)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::readv(fd, iov, cnt);
    }
    readv_patched(fd, iov, cnt)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn readv_patched(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::readv(fd, iov, cnt);
    }
    readv_green(fd, iov, cnt)
}

#[inline(never)]
unsafe extern "C" fn readv_green(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    let Some(e) = waitable(fd) else {
        return real::readv(fd, iov, cnt);
    };
    match e.kind {
        Kind::Socket { .. } => {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov as *mut libc::iovec;
            msg.msg_iovlen = cnt.max(0) as _;
            if cnt < 0 {
                return real::readv(fd, iov, cnt);
            }
            green_recvmsg(&e, &mut msg, 0)
        }
        _ => pollable_read(&e, iov, cnt),
    }
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::recv(fd, buf, n, flags);
    }
    recv_patched(fd, buf, n, flags)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn recv_patched(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::recv(fd, buf, n, flags);
    }
    recv_green(fd, buf, n, flags)
}

#[inline(never)]
unsafe extern "C" fn recv_green(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return real::recv(fd, buf, n, flags);
    }
    match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => green_recv(
            &e,
            buf,
            n,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ),
        _ => real::recv(fd, buf, n, flags),
    }
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::recvfrom(fd, buf, n, flags, addr, len);
    }
    recvfrom_patched(fd, buf, n, flags, addr, len)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn recvfrom_patched(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::recvfrom(fd, buf, n, flags, addr, len);
    }
    recvfrom_green(fd, buf, n, flags, addr, len)
}

#[inline(never)]
unsafe extern "C" fn recvfrom_green(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return real::recvfrom(fd, buf, n, flags, addr, len);
    }
    match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => {
            green_recv(&e, buf, n, flags, addr, len)
        }
        _ => real::recvfrom(fd, buf, n, flags, addr, len),
    }
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::recvmsg(fd, msg, flags);
    }
    recvmsg_patched(fd, msg, flags)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn recvmsg_patched(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::recvmsg(fd, msg, flags);
    }
    recvmsg_green(fd, msg, flags)
}

#[inline(never)]
unsafe extern "C" fn recvmsg_green(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return real::recvmsg(fd, msg, flags);
    }
    match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => green_recvmsg(&e, msg, flags),
        _ => real::recvmsg(fd, msg, flags),
    }
}

// ---- writes --------------------------------------------------------------

/// The iovecs of `iov` with the first `skip` bytes removed.
unsafe fn skip_iov(iov: *const libc::iovec, cnt: c_int, mut skip: usize) -> Vec<libc::iovec> {
    let all = std::slice::from_raw_parts(iov, cnt.max(0) as usize);
    let mut out = Vec::with_capacity(all.len());
    for v in all {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        out.push(libc::iovec {
            iov_base: (v.iov_base as *mut u8).add(skip) as *mut c_void,
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    out
}

unsafe fn iov_len(iov: *const libc::iovec, cnt: c_int) -> usize {
    std::slice::from_raw_parts(iov, cnt.max(0) as usize)
        .iter()
        .fold(0usize, |a, v| a.saturating_add(v.iov_len))
}

/// Writes all `len` bytes, as a blocking write on a stream socket or pipe
/// does: `attempt(done, more)` writes from byte `done` (`more`: something was
/// written already, so a later failure returns the count instead). Stops
/// after the first attempt when `whole` is false (datagrams).
fn write_all(
    e: &FdState,
    len: usize,
    whole: bool,
    dl: Option<std::time::Instant>,
    mut attempt: impl FnMut(usize, bool) -> isize,
) -> isize {
    let saved = errno();
    let mut done = 0usize;
    loop {
        let out = retry(e, Interest::Write, dl, || attempt(done, done > 0));
        match out {
            Outcome::Done(r) => {
                done += r as usize;
                if !whole || done >= len || r == 0 {
                    return finish(saved, Outcome::Done(done as isize));
                }
            }
            Outcome::Failed(_) if done > 0 => return finish(saved, Outcome::Done(done as isize)),
            failed => return finish(saved, failed),
        }
    }
}

/// A socket send of `len` bytes through `msg` (whose iovecs are advanced for
/// later attempts), made non-blocking.
unsafe fn green_sendmsg(e: &FdState, msg: &libc::msghdr, flags: c_int) -> isize {
    let len = iov_len(msg.msg_iov, msg.msg_iovlen as c_int);
    let dl = deadline(e.timeout(false));
    write_all(e, len, is_stream(e), dl, |done, more| {
        let mut m = *msg;
        let rest;
        if done > 0 {
            rest = skip_iov(msg.msg_iov, msg.msg_iovlen as c_int, done);
            m.msg_iov = rest.as_ptr() as *mut libc::iovec;
            m.msg_iovlen = rest.len() as _;
        }
        let extra = if more { libc::MSG_NOSIGNAL } else { 0 };
        real::sendmsg(e.fd, &m, flags | extra | libc::MSG_DONTWAIT)
    })
}

unsafe fn green_sendto(
    e: &FdState,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: socklen_t,
) -> isize {
    let dl = deadline(e.timeout(false));
    write_all(e, n, is_stream(e), dl, |done, more| {
        let extra = if more { libc::MSG_NOSIGNAL } else { 0 };
        real::sendto(
            e.fd,
            (buf as *const u8).add(done) as *const c_void,
            n - done,
            flags | extra | libc::MSG_DONTWAIT,
            addr,
            alen,
        )
    })
}

unsafe fn pollable_write(e: &FdState, iov: *const libc::iovec, cnt: c_int) -> isize {
    let len = iov_len(iov, cnt);
    write_all(e, len, true, None, |done, _| {
        let rest;
        let (v, c) = if done > 0 {
            rest = skip_iov(iov, cnt, done);
            (rest.as_ptr(), rest.len() as c_int)
        } else {
            (iov, cnt)
        };
        nowait_or_ready(
            e,
            libc::POLLOUT,
            || real::pwritev2(e.fd, v, c, -1, libc::RWF_NOWAIT),
            || real::writev(e.fd, v, c),
        )
    })
}

/// Standard output and error pass through (module docs).
fn is_stdio_out(fd: c_int) -> bool {
    fd == 1 || fd == 2
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::write(fd, buf, n);
    }
    write_patched(fd, buf, n)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn write_patched(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::write(fd, buf, n);
    }
    write_green(fd, buf, n)
}

#[inline(never)]
unsafe extern "C" fn write_green(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if is_stdio_out(fd) {
        return real::write(fd, buf, n);
    }
    let Some(e) = waitable(fd) else {
        return real::write(fd, buf, n);
    };
    match e.kind {
        Kind::Socket { .. } => green_sendto(&e, buf, n, 0, std::ptr::null(), 0),
        _ => {
            let iov = libc::iovec {
                iov_base: buf as *mut c_void,
                iov_len: n,
            };
            pollable_write(&e, &iov, 1)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::writev(fd, iov, cnt);
    }
    writev_patched(fd, iov, cnt)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn writev_patched(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::writev(fd, iov, cnt);
    }
    writev_green(fd, iov, cnt)
}

#[inline(never)]
unsafe extern "C" fn writev_green(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    if is_stdio_out(fd) || cnt < 0 {
        return real::writev(fd, iov, cnt);
    }
    let Some(e) = waitable(fd) else {
        return real::writev(fd, iov, cnt);
    };
    match e.kind {
        Kind::Socket { .. } => {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov as *mut libc::iovec;
            msg.msg_iovlen = cnt as _;
            green_sendmsg(&e, &msg, 0)
        }
        _ => pollable_write(&e, iov, cnt),
    }
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::send(fd, buf, n, flags);
    }
    send_patched(fd, buf, n, flags)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn send_patched(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::send(fd, buf, n, flags);
    }
    send_green(fd, buf, n, flags)
}

#[inline(never)]
unsafe extern "C" fn send_green(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return real::send(fd, buf, n, flags);
    }
    match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => {
            green_sendto(&e, buf, n, flags, std::ptr::null(), 0)
        }
        _ => real::send(fd, buf, n, flags),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: socklen_t,
) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::sendto(fd, buf, n, flags, addr, alen);
    }
    sendto_patched(fd, buf, n, flags, addr, alen)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn sendto_patched(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: socklen_t,
) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::sendto(fd, buf, n, flags, addr, alen);
    }
    sendto_green(fd, buf, n, flags, addr, alen)
}

#[inline(never)]
unsafe extern "C" fn sendto_green(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: socklen_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return real::sendto(fd, buf, n, flags, addr, alen);
    }
    match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => {
            green_sendto(&e, buf, n, flags, addr, alen)
        }
        _ => real::sendto(fd, buf, n, flags, addr, alen),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    // Unpatched, this is a load, a test and a tail call: everything else is
    // out of line (the thread-local access alone would make this frame save
    // registers).
    if !patched() {
        return real::sendmsg(fd, msg, flags);
    }
    sendmsg_patched(fd, msg, flags)
}

/// After `patch_all`: libc's call unless the caller may switch (a small
/// frame of its own, so the green path's big one is not set up for plain
/// threads).
#[inline(never)]
unsafe extern "C" fn sendmsg_patched(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    if !crate::monkey::green::may_switch() {
        return real::sendmsg(fd, msg, flags);
    }
    sendmsg_green(fd, msg, flags)
}

#[inline(never)]
unsafe extern "C" fn sendmsg_green(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 || msg.is_null() {
        return real::sendmsg(fd, msg, flags);
    }
    match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => green_sendmsg(&e, &*msg, flags),
        _ => real::sendmsg(fd, msg, flags),
    }
}

// ---- accept and connect --------------------------------------------------

/// Records an accepted socket (after `patch_all`, from any thread).
fn note_accepted(listener: c_int, fd: c_int, flags: c_int) {
    if fd < 0 {
        return;
    }
    let stream = match fds::get(listener) {
        Some(l) => is_stream(&l),
        None => {
            fds::remove(fd);
            return;
        }
    };
    fds::created(
        fd,
        Kind::Socket { stream },
        flags & libc::SOCK_NONBLOCK != 0,
    );
    if let Some(e) = fds::get(fd) {
        // Accepted sockets copy the listener's timeouts at handshake time.
        e.rcv_timeout
            .store(fds::sock_timeout(fd, libc::SO_RCVTIMEO), Relaxed);
        e.snd_timeout
            .store(fds::sock_timeout(fd, libc::SO_SNDTIMEO), Relaxed);
    }
}

unsafe fn any_accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if !patched() {
        return real::accept4(fd, addr, len, flags);
    }
    if !crate::monkey::green::may_switch() {
        let r = plain_blocking(fd, || real::accept4(fd, addr, len, flags) as isize) as c_int;
        note_accepted(fd, r, flags);
        return r;
    }
    let Some(e) = waitable(fd) else {
        let r = real::accept4(fd, addr, len, flags);
        note_accepted(fd, r, flags);
        return r;
    };
    let saved = errno();
    let dl = deadline(e.timeout(true));
    let out = retry(&e, Interest::Read, dl, || {
        with_nonblock(&e, || real::accept4(fd, addr, len, flags) as isize)
    });
    let r = finish(saved, out) as c_int;
    note_accepted(fd, r, flags);
    r
}

/// A blocking call from a thread the hooks do not switch, on a descriptor a
/// green thread may be holding non-blocking for one system call right now:
/// an `EAGAIN` caused by that window is retried, so the caller sees the
/// blocking call it made.
fn plain_blocking(fd: c_int, mut call: impl FnMut() -> isize) -> isize {
    loop {
        let gen = TOGGLE_GEN.load(SeqCst);
        let r = call();
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
        let ours = match fds::get(fd) {
            Some(e) => {
                !e.user_nonblock.load(Relaxed)
                    && (e.toggling.load(SeqCst) != 0 || TOGGLE_GEN.load(SeqCst) != gen)
            }
            None => false,
        };
        if !ours {
            set_errno(libc::EAGAIN);
            return r;
        }
        std::thread::yield_now();
    }
}

#[no_mangle]
pub unsafe extern "C" fn accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    any_accept(fd, addr, len, 0)
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    any_accept(fd, addr, len, flags)
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const libc::sockaddr, len: socklen_t) -> c_int {
    if !green() {
        return real::connect(fd, addr, len);
    }
    let e = match waitable(fd) {
        Some(e) if matches!(e.kind, Kind::Socket { .. }) => e,
        _ => return real::connect(fd, addr, len),
    };
    let saved = errno();
    let dl = deadline(e.timeout(false));
    // Unix sockets say EAGAIN while the listener's backlog is full: wait and
    // try again. TCP says EINPROGRESS: wait for the outcome.
    let out = retry(&e, Interest::Write, dl, || {
        with_nonblock(&e, || real::connect(fd, addr, len) as isize)
    });
    let out = match out {
        Outcome::Failed(libc::EINPROGRESS) => {
            let done = retry(&e, Interest::Write, dl, || {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; raw ppoll.
                match crate::sys::poll(&mut p, 1, 0) {
                    0 => {
                        set_errno(libc::EAGAIN);
                        -1
                    }
                    n => n as isize,
                }
            });
            match done {
                Outcome::Done(_) => match fds::sock_error(fd) {
                    0 => Outcome::Done(0),
                    err => Outcome::Failed(err),
                },
                // The blocking call's timeout leaves the connection in progress.
                Outcome::Failed(libc::EAGAIN) => Outcome::Failed(libc::EINPROGRESS),
                failed => failed,
            }
        }
        Outcome::Failed(libc::EAGAIN) if dl.is_some() => Outcome::Failed(libc::EAGAIN),
        other => other,
    };
    finish(saved, out) as c_int
}

// ---- zero-copy transfers -------------------------------------------------

/// `sendfile` to a blocking socket or pipe: wait until it is writable, then
/// send with `O_NONBLOCK` set for the call; keeps going until `count` bytes
/// are sent or the input ends, as the blocking call does.
unsafe fn green_sendfile(e: &FdState, call: &mut dyn FnMut(usize) -> isize, count: usize) -> isize {
    let dl = deadline(e.timeout(false));
    write_all(e, count, true, dl, |done, _| {
        with_nonblock(e, || call(count - done))
    })
}

#[no_mangle]
pub unsafe extern "C" fn sendfile(
    out: c_int,
    inp: c_int,
    off: *mut libc::off_t,
    n: size_t,
) -> ssize_t {
    if !green() || is_stdio_out(out) {
        return real::sendfile(out, inp, off, n);
    }
    match waitable(out) {
        Some(e) => green_sendfile(&e, &mut |left| real::sendfile(out, inp, off, left), n),
        None => real::sendfile(out, inp, off, n),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    inp: c_int,
    off: *mut libc::off64_t,
    n: size_t,
) -> ssize_t {
    if !green() || is_stdio_out(out) {
        return real::sendfile64(out, inp, off, n);
    }
    match waitable(out) {
        Some(e) => green_sendfile(&e, &mut |left| real::sendfile64(out, inp, off, left), n),
        None => real::sendfile64(out, inp, off, n),
    }
}

/// `splice` between a pipe and a blocking socket or pipe: like a blocking
/// splice it returns once some data moved (or end of input), waiting first
/// for the input to be readable and then for the output to be writable.
#[no_mangle]
pub unsafe extern "C" fn splice(
    fin: c_int,
    offin: *mut libc::loff_t,
    fout: c_int,
    offout: *mut libc::loff_t,
    n: size_t,
    flags: c_uint,
) -> ssize_t {
    if !green() || flags & libc::SPLICE_F_NONBLOCK != 0 || is_stdio_out(fout) {
        return real::splice(fin, offin, fout, offout, n, flags);
    }
    let (ein, eout) = (waitable(fin), waitable(fout));
    if ein.is_none() && eout.is_none() {
        return real::splice(fin, offin, fout, offout, n, flags);
    }
    let saved = errno();
    let attempt = || {
        let call = || real::splice(fin, offin, fout, offout, n, flags | libc::SPLICE_F_NONBLOCK);
        match (&ein, &eout) {
            (Some(a), Some(b)) => with_nonblock(a, || with_nonblock(b, call)),
            (Some(a), None) => with_nonblock(a, call),
            (None, Some(b)) => with_nonblock(b, call),
            (None, None) => call(),
        }
    };
    let out = match (&ein, &eout) {
        (Some(a), Some(b)) => {
            // First until the input has data, then until the output takes it.
            let dl = deadline(a.timeout(true));
            let readable = retry(a, Interest::Read, dl, || {
                if ready_now(fin, libc::POLLIN) {
                    0
                } else {
                    set_errno(libc::EAGAIN);
                    -1
                }
            });
            match readable {
                Outcome::Done(_) => retry(b, Interest::Write, deadline(b.timeout(false)), attempt),
                failed => failed,
            }
        }
        (Some(a), None) => retry(a, Interest::Read, deadline(a.timeout(true)), attempt),
        (None, Some(b)) => retry(b, Interest::Write, deadline(b.timeout(false)), attempt),
        (None, None) => unreachable!("checked above"),
    };
    finish(saved, out)
}

fn ready_now(fd: c_int, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd; raw ppoll.
    unsafe { crate::sys::poll(&mut p, 1, 0) > 0 }
}
