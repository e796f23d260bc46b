//! Waiting on any descriptor, and a cooperative stdin.
//!
//! [`wait_readable`] / [`wait_writable`] let a green thread wait for a
//! descriptor that some other library owns (gevent's `wait_read`), and
//! [`stdin`] reads the keyboard without blocking the worker.

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::runtime::io::{poll_once, Interest, IoSource, IoWaitScope};
use crate::runtime::park::{park_until, Unparker};
use crate::runtime::task::WaitReason;

/// Waits until `fd` is readable (or has an error or hang-up to report), for
/// at most `timeout`. In a green thread only that green thread waits; in an
/// OS thread it blocks like `poll(2)`.
///
/// The descriptor is not taken over: if it is not ready at once, greenhouse
/// waits on a duplicate of it (one `dup` and one poll registration per
/// wait), so it may belong to any library, in any mode, and may even be
/// one of greenhouse's own sockets. A regular file is always ready, as
/// `poll(2)` says.
///
/// A green thread killed, or stopped by a [`timeout`](crate::time::timeout),
/// while it waits here unwinds from the wait (a cancellation point).
///
/// # Errors
/// `TimedOut` when `timeout` passes first; `InvalidInput` for a negative
/// descriptor; `EBADF` (kind `Uncategorized`; test with `raw_os_error`) for
/// a descriptor that is not open.
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// greenhouse::run(|| {
///     let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
///     let fd = b.as_raw_fd();
///     let e = greenhouse::io::wait_readable(fd, Some(Duration::from_millis(10))).unwrap_err();
///     assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
///     a.write_all(b"x").unwrap();
///     greenhouse::io::wait_readable(fd, None).unwrap();
/// });
/// ```
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::Read, timeout)
}

/// Waits until `fd` is writable; see [`wait_readable`].
///
/// # Errors
/// As [`wait_readable`].
///
/// # Example
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// greenhouse::io::wait_writable(a.as_raw_fd(), None).unwrap();
/// ```
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::Write, timeout)
}

fn wait_fd(fd: RawFd, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "negative file descriptor",
        ));
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    // Ready now (the common case for a caller that just hit EAGAIN on a busy
    // descriptor): one poll(2), no registration. Also validates `fd`.
    if poll_once(fd, interest, 0)? {
        crate::runtime::park::check_cancel();
        return Ok(());
    }
    if timeout == Some(Duration::ZERO) {
        return Err(wait_timed_out());
    }
    // SAFETY: `fd` was open at the poll just above; the caller vouches that
    // it stays open during the call (std's `BorrowedFd` contract). We only
    // duplicate it: the duplicate is ours to register and close.
    let dup: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    // The registration (if any) must go before the duplicate closes.
    let ready = {
        let src = IoSource::new(dup.as_raw_fd());
        src.wait(interest, deadline)?
    };
    drop(dup);
    if ready {
        Ok(())
    } else {
        Err(wait_timed_out())
    }
}

fn wait_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "timed out waiting for the descriptor",
    )
}

/// Lines read from the process's standard input by one helper OS thread.
struct StdinFeed {
    state: Mutex<FeedState>,
}

#[derive(Default)]
struct FeedState {
    lines: VecDeque<io::Result<String>>,
    eof: bool,
    waiters: Vec<Unparker>,
}

fn feed() -> &'static Arc<StdinFeed> {
    static FEED: OnceLock<Arc<StdinFeed>> = OnceLock::new();
    FEED.get_or_init(|| {
        let feed = Arc::new(StdinFeed {
            state: Mutex::new(FeedState::default()),
        });
        let f = feed.clone();
        let spawned = std::thread::Builder::new()
            .name("greenhouse-stdin".into())
            .spawn(move || {
                crate::runtime::worker::mark_runtime_thread();
                let stdin = io::stdin();
                let mut lock = stdin.lock();
                loop {
                    let mut line = String::new();
                    let r = lock.read_line(&mut line);
                    let mut st = f.state.lock().unwrap_or_else(|e| e.into_inner());
                    let done = match r {
                        Ok(0) => {
                            st.eof = true;
                            true
                        }
                        Ok(_) => {
                            st.lines.push_back(Ok(line));
                            false
                        }
                        Err(e) => {
                            // std's stdin keeps working after these two.
                            let fatal = !matches!(
                                e.kind(),
                                io::ErrorKind::Interrupted | io::ErrorKind::InvalidData
                            );
                            st.lines.push_back(Err(e));
                            if fatal {
                                st.eof = true;
                            }
                            fatal
                        }
                    };
                    for w in st.waiters.drain(..) {
                        w.unpark();
                    }
                    if done {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            let mut st = feed.state.lock().unwrap_or_else(|e| e.into_inner());
            st.lines.push_back(Err(e));
            st.eof = true;
        }
        feed
    })
}

/// A handle to the process's standard input that parks the green thread
/// while it waits for a line (the seeds' UDP chat reads the keyboard while
/// receiving). Created by [`stdin`].
///
/// One helper OS thread (started on first use) reads std's stdin line by line
/// into a queue; readers park on that queue. So mixing this handle with
/// direct reads of `std::io::stdin()` splits the input between them: use one.
///
/// # Example
///
/// ```no_run
/// greenhouse::run(|| {
///     let mut line = String::new();
///     while greenhouse::io::stdin().read_line(&mut line).unwrap() > 0 {
///         print!("you said: {line}");
///         line.clear();
///     }
/// });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Stdin {
    _private: (),
}

/// The cooperative standard input (see [`Stdin`]).
///
/// # Example
///
/// ```no_run
/// for line in greenhouse::io::stdin().lines() {
///     println!("{}", line.unwrap());
/// }
/// ```
pub fn stdin() -> Stdin {
    Stdin { _private: () }
}

impl Stdin {
    /// Appends the next line (with its newline) to `buf`; returns its length,
    /// `Ok(0)` at end of input (std's contract).
    ///
    /// # Errors
    /// The read error std's stdin reported.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let mut name = String::new();
    /// greenhouse::io::stdin().read_line(&mut name).unwrap();
    /// ```
    pub fn read_line(&self, buf: &mut String) -> io::Result<usize> {
        let feed = feed();
        loop {
            {
                let mut st = feed.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(r) = st.lines.pop_front() {
                    let line = r?;
                    buf.push_str(&line);
                    return Ok(line.len());
                }
                if st.eof {
                    return Ok(0);
                }
                let me = Unparker::current();
                if !st.waiters.iter().any(|w| w.same_as(&me)) {
                    st.waiters.push(me);
                }
            }
            // The helper thread may still wake us: not a deadlock.
            let _io = IoWaitScope::enter();
            park_until(None, WaitReason::Io);
        }
    }

    /// An iterator over the remaining lines, without their newlines
    /// (std's `lines`).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let n = greenhouse::io::stdin().lines().count();
    /// println!("{n} lines");
    /// ```
    pub fn lines(self) -> Lines {
        Lines { stdin: self }
    }
}

/// The iterator returned by [`Stdin::lines`].
///
/// # Example
///
/// ```no_run
/// let first = greenhouse::io::stdin().lines().next();
/// # let _ = first;
/// ```
#[derive(Debug)]
pub struct Lines {
    stdin: Stdin,
}

impl Iterator for Lines {
    type Item = io::Result<String>;
    fn next(&mut self) -> Option<io::Result<String>> {
        let mut line = String::new();
        match self.stdin.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                Some(Ok(line))
            }
            Err(e) => Some(Err(e)),
        }
    }
}
