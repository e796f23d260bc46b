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

use crate::runtime::io::{Interest, IoSource};
use crate::runtime::park::{park_until, Unparker};
use crate::runtime::task::WaitReason;

/// Waits until `fd` is readable (or has an error or hang-up to report), for
/// at most `timeout`. In a green thread only that green thread waits; in an
/// OS thread it blocks like `poll(2)`.
///
/// The descriptor is not taken over: greenhouse waits on a duplicate of it
/// (one `dup` and one registration per call), so it may belong to any
/// library, in any mode.
///
/// # Errors
/// `TimedOut` when `timeout` passes first; `InvalidInput`/the OS's error for a
/// bad descriptor.
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
    // SAFETY: the caller vouches that `fd` is open during the call; we only
    // duplicate it.
    let dup: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    // The registration (if any) must go before the duplicate closes.
    let ready = {
        let src = IoSource::new(dup.as_raw_fd());
        src.wait(interest, deadline)?
    };
    drop(dup);
    if ready {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "timed out waiting for the descriptor",
        ))
    }
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
                            let fatal = e.kind() != io::ErrorKind::Interrupted;
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
                st.waiters.push(Unparker::current());
            }
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
