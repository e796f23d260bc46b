//! What the hooks know about each descriptor: fd number → [`FdState`].
//!
//! The hooked calls see raw descriptor numbers only, so the monkey layer keeps
//! its own table: what kind of file a descriptor is (decides how a call is
//! made non-blocking, or whether it passes through), the blocking mode and
//! socket timeouts the *user* asked for, and the readiness registration green
//! threads wait through (an [`IoSource`] of the runtime's fd readiness).
//!
//! An entry is made when a green thread first uses a descriptor, from the
//! kernel's view of it (`fstat`, `F_GETFL`, `SO_RCVTIMEO`/`SO_SNDTIMEO`), or
//! when a hooked `socket`/`accept`/`pipe` creates one after `patch_all`. The
//! bookkeeping hooks keep it true: `fcntl(F_SETFL)`/`ioctl(FIONBIO)` record
//! the user's blocking mode, `setsockopt` the timeouts; `close`, and
//! `dup2`/`dup3` over a descriptor, take the entry out *before* the real call,
//! deregister it from the poll and wake its waiters, who then report `EBADF`
//! instead of retrying on whatever file later gets the number.
//!
//! The table is two levels of lazily allocated chunks indexed by fd number;
//! each slot is a small mutex held only to clone or swap the `Arc`.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::real;
use crate::runtime::io::IoSource;

/// How calls on a descriptor are made without blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A socket: per-call `MSG_DONTWAIT` (`read`/`write` become
    /// `recv`/`send`); `stream` sockets complete whole writes like blocking
    /// ones do.
    Socket { stream: bool },
    /// A pipe, FIFO, terminal, eventfd, epoll fd or other pollable file:
    /// `RWF_NOWAIT` where the kernel supports it for the file, else wait for
    /// `poll(2)` readiness first.
    Pollable,
    /// Regular files, directories, block devices: never wait, pass through.
    Passthrough,
}

/// One descriptor as the hooks see it.
pub(crate) struct FdState {
    pub(crate) fd: c_int,
    pub(crate) kind: Kind,
    /// The descriptor is non-blocking *for the user* (set by them, or created
    /// so): hooked calls on it pass straight through.
    pub(crate) user_nonblock: AtomicBool,
    /// `SO_RCVTIMEO` / `SO_SNDTIMEO` in nanoseconds, 0 for none.
    pub(crate) rcv_timeout: AtomicU64,
    pub(crate) snd_timeout: AtomicU64,
    /// `RWF_NOWAIT` works on this file (pollable kinds; cleared on
    /// `EOPNOTSUPP`).
    pub(crate) nowait: AtomicBool,
    /// Closed (or replaced by `dup2`) while green threads may still wait.
    pub(crate) closed: AtomicBool,
    /// Green calls that set `O_NONBLOCK` around one system call (`accept`,
    /// `connect`, `sendfile`, `splice`): how many are in progress, and a lock
    /// so that the first sets and the last clears it.
    pub(crate) toggles: Mutex<u32>,
    pub(crate) toggling: AtomicU32,
    pub(crate) source: IoSource,
}

impl FdState {
    pub(crate) fn new(fd: c_int, kind: Kind, user_nonblock: bool) -> FdState {
        FdState {
            fd,
            kind,
            user_nonblock: AtomicBool::new(user_nonblock),
            rcv_timeout: AtomicU64::new(0),
            snd_timeout: AtomicU64::new(0),
            nowait: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            toggles: Mutex::new(0),
            toggling: AtomicU32::new(0),
            source: IoSource::new(fd),
        }
    }

    /// The socket timeout for reading (`true`) or writing, if any.
    pub(crate) fn timeout(&self, read: bool) -> Option<Duration> {
        let ns = if read {
            self.rcv_timeout.load(Relaxed)
        } else {
            self.snd_timeout.load(Relaxed)
        };
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    /// Forgets the descriptor: it is about to be closed or replaced. Waiters
    /// wake and see `closed`.
    fn retire(&self) {
        self.closed.store(true, SeqCst);
        self.source.deregister();
    }
}

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;
/// 4M descriptors: above Linux's `nr_open` ceiling of 1M by default.
const CHUNKS: usize = 4096;

type Slot = Mutex<Option<Arc<FdState>>>;

struct Chunk {
    slots: [Slot; CHUNK],
}

static TABLE: [AtomicPtr<Chunk>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// The slot of `fd`, allocating its chunk if `create`.
fn slot(fd: c_int, create: bool) -> Option<&'static Slot> {
    let i = usize::try_from(fd).ok()?;
    let (hi, lo) = (i >> CHUNK_BITS, i & (CHUNK - 1));
    let top = TABLE.get(hi)?;
    let mut p = top.load(Acquire);
    if p.is_null() {
        if !create {
            return None;
        }
        let fresh = Box::into_raw(Box::new(Chunk {
            slots: [const { Mutex::new(None) }; CHUNK],
        }));
        p = match top.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => fresh,
            Err(theirs) => {
                // SAFETY: `fresh` came from Box::into_raw above and was never
                // published.
                drop(unsafe { Box::from_raw(fresh) });
                theirs
            }
        };
    }
    // SAFETY: chunks are published once and never freed, so the pointer is
    // valid for the rest of the process.
    Some(unsafe { &(*p).slots[lo] })
}

fn lock(s: &Slot) -> std::sync::MutexGuard<'_, Option<Arc<FdState>>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entry of `fd`, if one exists.
pub(crate) fn get(fd: c_int) -> Option<Arc<FdState>> {
    slot(fd, false).and_then(|s| lock(s).clone())
}

/// The entry of `fd`, classifying the descriptor first if it has none.
/// None for a descriptor the kernel does not know (the call then fails as
/// libc's would) or beyond the table.
pub(crate) fn get_or_classify(fd: c_int) -> Option<Arc<FdState>> {
    let s = slot(fd, true)?;
    if let Some(e) = lock(s).clone() {
        return Some(e);
    }
    let fresh = Arc::new(classify(fd)?);
    let mut g = lock(s);
    Some(g.get_or_insert(fresh).clone())
}

/// Records a descriptor just created by a hooked call (replacing any stale
/// entry of a number closed behind the hooks' back).
pub(crate) fn created(fd: c_int, kind: Kind, user_nonblock: bool) {
    if let Some(s) = slot(fd, true) {
        let old = lock(s).replace(Arc::new(FdState::new(fd, kind, user_nonblock)));
        if let Some(old) = old {
            old.retire();
        }
    }
}

/// Takes the entry of `fd` out before the descriptor is closed or replaced.
pub(crate) fn remove(fd: c_int) {
    if let Some(s) = slot(fd, false) {
        let old = lock(s).take();
        if let Some(old) = old {
            old.retire();
        }
    }
}

/// The kernel's view of `fd` as a fresh entry.
fn classify(fd: c_int) -> Option<FdState> {
    // SAFETY: fstat writes into the zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if fl < 0 {
        return None;
    }
    let nonblock = fl & libc::O_NONBLOCK != 0;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => {
            let mut ty: c_int = 0;
            let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
            // SAFETY: SO_TYPE writes one c_int into `ty`.
            unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    &mut ty as *mut c_int as *mut _,
                    &mut len,
                )
            };
            Kind::Socket {
                stream: ty == libc::SOCK_STREAM,
            }
        }
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK | libc::S_IFLNK => Kind::Passthrough,
        // FIFOs, character devices and anonymous inodes (mode 0: eventfd,
        // epoll, timerfd, signalfd): pollable.
        _ => Kind::Pollable,
    };
    let e = FdState::new(fd, kind, nonblock);
    if let Kind::Socket { .. } = kind {
        e.rcv_timeout
            .store(sock_timeout(fd, libc::SO_RCVTIMEO), Relaxed);
        e.snd_timeout
            .store(sock_timeout(fd, libc::SO_SNDTIMEO), Relaxed);
    }
    Some(e)
}

/// A socket timeout option in nanoseconds (0: none).
pub(crate) fn sock_timeout(fd: c_int, opt: c_int) -> u64 {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: the option writes one timeval into `tv`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &mut tv as *mut libc::timeval as *mut _,
            &mut len,
        )
    };
    if rc != 0 {
        return 0;
    }
    timeval_nanos(&tv)
}

/// A `timeval` as nanoseconds, saturating; 0 stays 0 ("no timeout").
pub(crate) fn timeval_nanos(tv: &libc::timeval) -> u64 {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let us = u64::try_from(tv.tv_usec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000)
        .saturating_add(us.saturating_mul(1000))
}

/// The pending error of a socket (`SO_ERROR`, which also clears it).
pub(crate) fn sock_error(fd: c_int) -> c_int {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: SO_ERROR writes one c_int into `err`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut c_int as *mut _,
            &mut len,
        )
    };
    if rc != 0 {
        return std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
    }
    err
}
