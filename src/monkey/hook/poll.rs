//! Readiness calls: `poll`, `ppoll`, `select`, `pselect`, `epoll_wait`,
//! `epoll_pwait`. In a green thread a call with a non-zero timeout first
//! checks without waiting; if nothing is ready it parks until one of the
//! descriptors may be ready (or the timeout), then checks again. One
//! descriptor waits through its own registration; several wait through a
//! short-lived epoll instance holding them all, itself registered with the
//! worker. Calls with a signal mask pass through (a mask cannot be applied
//! to a parked green thread).

use std::ffi::c_int;
use std::time::{Duration, Instant};

use super::green;
use crate::monkey::fds::{self, FdState, Kind};
use crate::monkey::green::{errno, retry, set_errno, Outcome};
use crate::monkey::real;
use crate::runtime::io::Interest;

/// A poll(2)-style timeout in milliseconds as a deadline (negative: none).
fn ms_deadline(ms: c_int) -> Option<Instant> {
    if ms < 0 {
        None
    } else {
        Instant::now().checked_add(Duration::from_millis(ms as u64))
    }
}

fn ts_deadline(ts: *const libc::timespec) -> Result<Option<Instant>, ()> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null timespec from the caller.
    let ts = unsafe { &*ts };
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(());
    }
    Ok(Instant::now().checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)))
}

fn is_zero(d: Option<Instant>) -> bool {
    d.is_some_and(|d| d <= Instant::now())
}

/// The interest a pollfd's events wait for, if it is just one direction.
fn single_interest(events: libc::c_short) -> Option<Interest> {
    let rd = events & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) != 0;
    let wr = events & libc::POLLOUT != 0;
    match (rd, wr) {
        (true, false) => Some(Interest::Read),
        (false, true) => Some(Interest::Write),
        _ => None,
    }
}

/// A real poll that does not wait, as an attempt for `retry`: `EAGAIN` when
/// nothing is ready.
unsafe fn poll_now(fds: *mut libc::pollfd, n: libc::nfds_t) -> isize {
    match real::poll(fds, n, 0) {
        0 => {
            set_errno(libc::EAGAIN);
            -1
        }
        r => r as isize,
    }
}

/// poll(2) for a green thread; the caller checked `fds`/`n` are usable.
unsafe fn green_poll(fds: *mut libc::pollfd, n: libc::nfds_t, dl: Option<Instant>) -> c_int {
    let saved = errno();
    if n == 0 {
        // poll(NULL, 0, t) is a sleep.
        let _ = crate::monkey::green::catch_cancel(|| match dl {
            Some(d) => {
                while Instant::now() < d {
                    crate::runtime::park::park_until(
                        Some(d),
                        crate::runtime::task::WaitReason::Sleep,
                    );
                }
            }
            None => loop {
                crate::runtime::park::park_until(None, crate::runtime::task::WaitReason::Sleep);
            },
        });
        set_errno(saved);
        return 0;
    }
    let first = real::poll(fds, n, 0);
    if first != 0 {
        return first;
    }
    let out = if n == 1 {
        let p = &*fds;
        match (single_interest(p.events), fds::get_or_classify(p.fd)) {
            (Some(i), Some(e)) if e.kind != Kind::Passthrough => {
                retry(&e, i, dl, || poll_now(fds, n))
            }
            _ => poll_many(fds, n, dl),
        }
    } else {
        poll_many(fds, n, dl)
    };
    match out {
        Outcome::Done(r) => {
            set_errno(saved);
            r as c_int
        }
        // The deadline passed: nothing ready (revents were zeroed by the
        // last real poll).
        Outcome::Failed(libc::EAGAIN) => {
            set_errno(saved);
            0
        }
        failed => failed.ret() as c_int,
    }
}

/// Waits on several descriptors through a temporary epoll instance.
unsafe fn poll_many(fds: *mut libc::pollfd, n: libc::nfds_t, dl: Option<Instant>) -> Outcome {
    let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
    if ep < 0 {
        return Outcome::Failed(errno());
    }
    for p in std::slice::from_raw_parts(fds, n as usize) {
        if p.fd < 0 {
            continue;
        }
        let mut ev = libc::epoll_event {
            events: (p.events as u16 as u32)
                & (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLOUT | libc::EPOLLRDHUP) as u32,
            u64: 0,
        };
        if libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, p.fd, &mut ev) != 0 && errno() == libc::EEXIST {
            // The same descriptor twice: wait for the union.
            let mut all = libc::epoll_event {
                events: ev.events
                    | (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLOUT | libc::EPOLLRDHUP) as u32,
                u64: 0,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, p.fd, &mut all);
        }
    }
    let holder = FdState::new(ep, Kind::Pollable, false);
    let out = retry(&holder, Interest::Read, dl, || poll_now(fds, n));
    holder.source.deregister();
    drop(holder);
    real::close(ep);
    out
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 || !green() || (fds.is_null() && n != 0) {
        return real::poll(fds, n, timeout);
    }
    green_poll(fds, n, ms_deadline(timeout))
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !mask.is_null() || !green() || (fds.is_null() && n != 0) {
        return real::ppoll(fds, n, ts, mask);
    }
    match ts_deadline(ts) {
        Ok(dl) if !is_zero(dl) => green_poll(fds, n, dl),
        _ => real::ppoll(fds, n, ts, mask),
    }
}

/// select(2) as poll(2): the sets become pollfds and back. Like Linux's,
/// the timeout is updated to the time not slept.
unsafe fn green_select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    dl: Option<Instant>,
) -> c_int {
    let mut pfds = Vec::new();
    for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
        let mut events = 0;
        if !r.is_null() && libc::FD_ISSET(fd, r) {
            events |= libc::POLLIN;
        }
        if !w.is_null() && libc::FD_ISSET(fd, w) {
            events |= libc::POLLOUT;
        }
        if !e.is_null() && libc::FD_ISSET(fd, e) {
            events |= libc::POLLPRI;
        }
        if events != 0 {
            pfds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    let n = green_poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, dl);
    if n < 0 {
        return n;
    }
    if pfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
        set_errno(libc::EBADF);
        return -1;
    }
    for set in [r, w, e] {
        if !set.is_null() {
            libc::FD_ZERO(set);
        }
    }
    let mut count = 0;
    for p in &pfds {
        let rv = p.revents;
        if !r.is_null()
            && p.events & libc::POLLIN != 0
            && rv & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
        {
            libc::FD_SET(p.fd, r);
            count += 1;
        }
        if !w.is_null()
            && p.events & libc::POLLOUT != 0
            && rv & (libc::POLLOUT | libc::POLLERR) != 0
        {
            libc::FD_SET(p.fd, w);
            count += 1;
        }
        if !e.is_null() && p.events & libc::POLLPRI != 0 && rv & libc::POLLPRI != 0 {
            libc::FD_SET(p.fd, e);
            count += 1;
        }
    }
    count
}

fn remaining(dl: Option<Instant>) -> Duration {
    dl.map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or_default()
}

#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    t: *mut libc::timeval,
) -> c_int {
    if !green() {
        return real::select(nfds, r, w, e, t);
    }
    let dl = if t.is_null() {
        None
    } else {
        let tv = &*t;
        if tv.tv_sec < 0
            || !(0..1_000_000).contains(&tv.tv_usec)
            || (tv.tv_sec == 0 && tv.tv_usec == 0)
        {
            return real::select(nfds, r, w, e, t);
        }
        Instant::now().checked_add(Duration::from_nanos(fds::timeval_nanos(tv)))
    };
    let n = green_select(nfds, r, w, e, dl);
    if !t.is_null() {
        let left = remaining(dl);
        (*t).tv_sec = left.as_secs() as libc::time_t;
        (*t).tv_usec = left.subsec_micros() as libc::suseconds_t;
    }
    n
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    t: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !mask.is_null() || !green() {
        return real::pselect(nfds, r, w, e, t, mask);
    }
    match ts_deadline(t) {
        Ok(dl) if !is_zero(dl) => green_select(nfds, r, w, e, dl),
        _ => real::pselect(nfds, r, w, e, t, mask),
    }
}

unsafe fn green_epoll_wait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let Some(e) = fds::get_or_classify(ep).filter(|e| e.kind == Kind::Pollable) else {
        return real::epoll_wait(ep, ev, max, timeout);
    };
    let saved = errno();
    let out = retry(
        &e,
        Interest::Read,
        ms_deadline(timeout),
        || match real::epoll_wait(ep, ev, max, 0) {
            0 => {
                set_errno(libc::EAGAIN);
                -1
            }
            n => n as isize,
        },
    );
    match out {
        Outcome::Done(n) => {
            set_errno(saved);
            n as c_int
        }
        Outcome::Failed(libc::EAGAIN) => {
            set_errno(saved);
            0
        }
        failed => failed.ret() as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    if timeout == 0 || !green() {
        return real::epoll_wait(ep, ev, max, timeout);
    }
    green_epoll_wait(ep, ev, max, timeout)
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    if timeout == 0 || !mask.is_null() || !green() {
        return real::epoll_pwait(ep, ev, max, timeout, mask);
    }
    green_epoll_wait(ep, ev, max, timeout)
}
