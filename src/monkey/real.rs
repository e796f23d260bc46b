//! libc's own definitions of the functions the hooks replace.
//!
//! The executable's `#[no_mangle]` definitions come first in the dynamic
//! linker's lookup, so calling `libc::recv` from inside greenhouse would call
//! the hook again. Everything the monkey layer does on the real descriptor
//! goes through this module instead: each function is looked up once with
//! `dlsym(RTLD_NEXT, name)` — the next definition after ours, i.e. libc's —
//! and cached in an atomic pointer, so a passed-through call costs one
//! relaxed load and an indirect call.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use libc::{size_t, socklen_t, ssize_t};

/// Looks `name` up after the calling object (RTLD_NEXT). Aborts when libc
/// lacks it: a hook without its real function cannot even pass through.
#[cold]
fn resolve(slot: &AtomicPtr<c_void>, name: &CStr) -> *mut c_void {
    // SAFETY: `name` is NUL-terminated; dlsym is thread-safe.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if p.is_null() {
        let msg = b"greenhouse::monkey: libc has no definition of a hooked function\n";
        // SAFETY: a raw write of a static buffer to stderr.
        unsafe { libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len()) };
        std::process::abort();
    }
    slot.store(p, Relaxed);
    p
}

/// Finds libc's definition of `name` (for `patch_all`'s self-check).
pub(crate) fn next_definition(name: &CStr) -> *mut c_void {
    // SAFETY: as in `resolve`.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

macro_rules! real_fns {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        $(
            /// libc's definition (see the module docs).
            ///
            /// # Safety
            /// As for the libc function of the same name.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                /// The first call: look the function up, then call it. Out
                /// of line, so that the usual path is a load and a tail call.
                #[cold]
                #[inline(never)]
                unsafe fn first_call($($arg: $ty),*) -> $ret {
                    let p = resolve(&SLOT, {
                        // SAFETY: the literal ends with the NUL we add.
                        unsafe { CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) }
                    });
                    // SAFETY: as below.
                    let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { std::mem::transmute(p) };
                    // SAFETY: the caller upholds libc's contract for the call.
                    unsafe { f($($arg),*) }
                }
                let p = SLOT.load(Relaxed);
                if p.is_null() {
                    // SAFETY: the caller upholds libc's contract for the call.
                    return unsafe { first_call($($arg),*) };
                }
                // SAFETY: `p` is libc's definition of this very function, whose
                // C prototype the signature below spells out.
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { std::mem::transmute(p) };
                // SAFETY: the caller upholds libc's contract for the call.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

macro_rules! real_variadic {
    ($( $name:ident ( $a:ident : $at:ty, $b:ident : $bt:ty, $c:ident : $ct:ty ) -> $ret:ty; )*) => {
        $(
            /// libc's definition of this variadic function, called with one
            /// word-sized optional argument (see the module docs).
            ///
            /// # Safety
            /// As for the libc function of the same name.
            #[inline]
            pub(crate) unsafe fn $name($a: $at, $b: $bt, $c: $ct) -> $ret {
                static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                let mut p = SLOT.load(Relaxed);
                if p.is_null() {
                    p = resolve(&SLOT, {
                        // SAFETY: the literal ends with the NUL we add.
                        unsafe { CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) }
                    });
                }
                // SAFETY: `p` is libc's definition, a C variadic function with
                // these leading parameters.
                let f: unsafe extern "C" fn($at, $bt, ...) -> $ret = unsafe { std::mem::transmute(p) };
                // SAFETY: the caller upholds libc's contract for the call.
                unsafe { f($a, $b, $c) }
            }
        )*
    };
}

real_fns! {
    sleep(s: libc::c_uint) -> libc::c_uint;
    usleep(us: libc::useconds_t) -> c_int;
    nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;

    socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int;
    pipe(fds: *mut c_int) -> c_int;
    pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    connect(fd: c_int, addr: *const libc::sockaddr, len: socklen_t) -> c_int;
    accept4(fd: c_int, addr: *mut libc::sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;

    read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t;
    recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut libc::sockaddr, len: *mut socklen_t) -> ssize_t;
    recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t;
    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t;
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const libc::sockaddr, len: socklen_t) -> ssize_t;
    sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t;
    preadv2(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: libc::off_t, flags: c_int) -> ssize_t;
    pwritev2(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: libc::off_t, flags: c_int) -> ssize_t;
    sendfile(out: c_int, inp: c_int, off: *mut libc::off_t, n: size_t) -> ssize_t;
    sendfile64(out: c_int, inp: c_int, off: *mut libc::off64_t, n: size_t) -> ssize_t;
    splice(fin: c_int, offin: *mut libc::loff_t, fout: c_int, offout: *mut libc::loff_t, n: size_t, flags: libc::c_uint) -> ssize_t;

    poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *mut libc::timeval) -> c_int;
    pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    epoll_wait(ep: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int;
    epoll_pwait(ep: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const libc::sigset_t) -> c_int;

    close(fd: c_int) -> c_int;
    dup(fd: c_int) -> c_int;
    dup2(old: c_int, new: c_int) -> c_int;
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;

    getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int;
}

real_variadic! {
    fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int;
    fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int;
    ioctl(fd: c_int, req: libc::c_ulong, arg: usize) -> c_int;
}
