//! `getaddrinfo` on the blocking pool: name resolution (files, DNS, NSS
//! modules) blocks in ways no descriptor readiness can express, so a green
//! thread hands the whole call to a pool thread and parks until it is done.
//! The arguments are copied first, so a green thread cancelled while it
//! waits leaves nothing behind for the pool thread to read; a result nobody
//! takes any more is freed.

use std::ffi::{c_char, c_int, CStr, CString};

use super::green;
use crate::monkey::green::{catch_cancel, errno, set_errno};
use crate::monkey::real;

/// A resolution's outcome, freed with `freeaddrinfo` unless taken.
struct Resolved {
    rc: c_int,
    errno: c_int,
    list: *mut libc::addrinfo,
}

// SAFETY: the list is heap memory libc allocated for this call alone; it is
// handed from the pool thread to exactly one owner.
unsafe impl Send for Resolved {}

impl Resolved {
    fn take(mut self) -> *mut libc::addrinfo {
        std::mem::replace(&mut self.list, std::ptr::null_mut())
    }
}

impl Drop for Resolved {
    fn drop(&mut self) {
        if !self.list.is_null() {
            // SAFETY: a list getaddrinfo returned and nobody took.
            unsafe { libc::freeaddrinfo(self.list) };
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    if !green() || res.is_null() {
        return real::getaddrinfo(node, service, hints, res);
    }
    let own = |p: *const c_char| (!p.is_null()).then(|| CStr::from_ptr(p).to_owned());
    let (node, service) = (own(node), own(service));
    // Only these fields of `hints` mean anything (the rest must be zero).
    let hint = (!hints.is_null()).then(|| {
        let h = &*hints;
        (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol)
    });
    let saved = errno();
    let job = move || {
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        let h = hint.map(|(flags, family, socktype, protocol)| {
            // SAFETY: an all-zero addrinfo is a valid empty hints struct.
            let mut h: libc::addrinfo = unsafe { std::mem::zeroed() };
            h.ai_flags = flags;
            h.ai_family = family;
            h.ai_socktype = socktype;
            h.ai_protocol = protocol;
            h
        });
        let hp = h
            .as_ref()
            .map_or(std::ptr::null(), |h| h as *const libc::addrinfo);
        let mut list = std::ptr::null_mut();
        // SAFETY: owned strings and hints alive for the call; `list` is ours.
        let rc = unsafe { real::getaddrinfo(ptr(&node), ptr(&service), hp, &mut list) };
        Resolved {
            rc,
            errno: errno(),
            list,
        }
    };
    match catch_cancel(|| crate::runtime::blocking::run_blocking(job)) {
        Ok(r) => {
            let rc = r.rc;
            set_errno(if rc == libc::EAI_SYSTEM {
                r.errno
            } else {
                saved
            });
            *res = r.take();
            rc
        }
        Err(c) => {
            set_errno(c.errno());
            libc::EAI_SYSTEM
        }
    }
}
