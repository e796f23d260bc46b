//! The sleep family: `sleep`, `usleep`, `nanosleep`, `clock_nanosleep`
//! (relative and `TIMER_ABSTIME`). In a green thread they park it until the
//! deadline; a kill or an expired `timeout` scope ends the sleep early (it
//! then reports success, as a sleep cut short by nothing the caller can
//! observe; the cancellation fires at the next greenhouse blocking point).

use std::ffi::{c_int, c_uint};
use std::time::{Duration, Instant};

use super::green;
use crate::monkey::green::catch_cancel;
use crate::monkey::real;
use crate::runtime::park::{park_until, yield_now};
use crate::runtime::task::WaitReason;

/// Parks the current green thread for `dur` (a zero sleep yields).
fn green_sleep(dur: Duration) {
    let _ = catch_cancel(|| {
        if dur.is_zero() {
            yield_now();
            return;
        }
        let Some(deadline) = Instant::now().checked_add(dur) else {
            // Longer than the clock can represent: park for good.
            loop {
                park_until(None, WaitReason::Sleep);
            }
        };
        while Instant::now() < deadline {
            park_until(Some(deadline), WaitReason::Sleep);
        }
    });
}

/// A valid relative `timespec` as a Duration; None for EINVAL.
fn duration(ts: &libc::timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    if !green() {
        return real::sleep(secs);
    }
    green_sleep(Duration::from_secs(secs.into()));
    0
}

#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    if !green() {
        return real::usleep(us);
    }
    green_sleep(Duration::from_micros(us.into()));
    0
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    if !green() || req.is_null() {
        return real::nanosleep(req, rem);
    }
    // SAFETY: the caller passes a valid timespec (checked non-null).
    match duration(&*req) {
        Some(d) => {
            green_sleep(d);
            0
        }
        None => real::nanosleep(req, rem),
    }
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let sleepable = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME
    );
    if !green() || req.is_null() || !sleepable {
        return real::clock_nanosleep(clock, flags, req, rem);
    }
    // SAFETY: the caller passes a valid timespec (checked non-null).
    let req_ts = &*req;
    let Some(d) = duration(req_ts) else {
        return real::clock_nanosleep(clock, flags, req, rem);
    };
    let dur = if flags & libc::TIMER_ABSTIME != 0 {
        // Absolute: how far the target is on that clock now.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we own.
        if libc::clock_gettime(clock, &mut now) != 0 {
            return real::clock_nanosleep(clock, flags, req, rem);
        }
        let now = duration(&now).unwrap_or_default();
        d.saturating_sub(now)
    } else {
        d
    };
    green_sleep(dur);
    0
}
