//! greenhouse::io: waiting on any descriptor (gevent's wait_read /
//! wait_write) and the cooperative stdin line reader (tested in a child
//! process whose stdin is a pipe).

mod net_support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::io::{stdin, wait_readable, wait_writable};
use greenhouse::thread;
use net_support::{rt, spawn_elsewhere};

/// A pipe as two std files (read end, write end).
fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just created and are owned by nobody else.
    unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

#[test]
fn wait_readable_parks_until_another_worker_writes() {
    for workers in [1, 2] {
        rt(workers).run(move || {
            let (mut r, w) = pipe();
            let fd = r.as_raw_fd();
            let e = wait_readable(fd, Some(Duration::from_millis(20))).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            let writer = move || {
                let mut w = w;
                w.write_all(b"ready").unwrap();
                w
            };
            let ticks = Arc::new(AtomicUsize::new(0));
            let t = ticks.clone();
            let ticker = thread::spawn(move || {
                for _ in 0..3 {
                    thread::yield_now();
                    t.fetch_add(1, Ordering::SeqCst);
                }
            });
            let w = if workers == 2 {
                spawn_elsewhere(writer)
            } else {
                thread::spawn(writer)
            };
            wait_readable(fd, None).unwrap();
            let mut buf = [0; 5];
            r.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ready");
            ticker.join().unwrap();
            assert_eq!(ticks.load(Ordering::SeqCst), 3);
            // The writer's end closing makes the read end readable (EOF).
            drop(w.join().unwrap());
            wait_readable(fd, Some(Duration::from_secs(5))).unwrap();
            assert_eq!(r.read(&mut buf).unwrap(), 0);
        });
    }
}

#[test]
fn wait_writable_waits_for_room_in_a_full_pipe() {
    rt(2).run(|| {
        let (r, w) = pipe();
        // SAFETY: fcntl on our own descriptor: make the write end
        // non-blocking so we can fill it.
        unsafe {
            let fl = libc::fcntl(w.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(w.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        let mut w = w;
        let mut filled = 0;
        loop {
            match w.write(&[1; 4096]) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(filled > 0);
        let e = wait_writable(w.as_raw_fd(), Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        let reader = spawn_elsewhere(move || {
            let mut r = r;
            let mut buf = vec![0; filled];
            r.read_exact(&mut buf).unwrap();
            r
        });
        wait_writable(w.as_raw_fd(), None).unwrap();
        assert!(w.write(&[2; 10]).unwrap() > 0);
        drop(reader.join().unwrap());
    });
}

#[test]
fn wait_works_on_greenhouse_sockets_files_and_from_os_threads() {
    rt(1).run(|| {
        // One of greenhouse's own sockets, already registered: waiting on
        // its descriptor must not disturb it.
        let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
        let b2 = b.try_clone().unwrap();
        let t = thread::spawn(move || {
            let mut buf = [0; 1];
            (&b2).read_exact(&mut buf).unwrap();
            buf[0]
        });
        thread::yield_now(); // t parks in read (registers b2's descriptor)
        (&a).write_all(b"q").unwrap();
        wait_readable(b.as_raw_fd(), Some(Duration::from_secs(5))).ok();
        assert_eq!(t.join().unwrap(), b'q');
        // A regular file is always ready, as poll(2) says.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        wait_readable(f.as_raw_fd(), Some(Duration::from_millis(1))).unwrap();
        wait_writable(f.as_raw_fd(), None).unwrap();
    });
    // Bad descriptors: clear errors, no hang.
    assert_eq!(
        wait_readable(-1, None).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let closed = {
        let (r, _w) = pipe();
        r.as_raw_fd()
    };
    let e = wait_readable(closed, Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    // A plain OS thread blocks in poll(2).
    let (r, mut w) = pipe();
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        wait_readable(r.as_raw_fd(), None).unwrap();
        (r, start.elapsed())
    });
    w.write_all(b"x").unwrap();
    let (_r, _took) = waiter.join().unwrap();
    let (r2, _w2) = pipe();
    assert_eq!(
        wait_readable(r2.as_raw_fd(), Some(Duration::from_millis(10)))
            .unwrap_err()
            .kind(),
        ErrorKind::TimedOut
    );
}

#[test]
fn a_killed_waiter_unwinds() {
    rt(1).run(|| {
        let (r, _w) = pipe();
        let h = thread::spawn(move || {
            let _ = wait_readable(r.as_raw_fd(), None);
            unreachable!("nothing was written");
        });
        thread::sleep(Duration::from_millis(10));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        let r = greenhouse::time::timeout(Duration::from_millis(10), || {
            let (r, _w) = pipe();
            wait_readable(r.as_raw_fd(), None)
        });
        assert!(r.is_err());
    });
}

const STDIN_CHILD: &str = "GREENHOUSE_STDIN_CHILD";

/// The child: echoes stdin lines while another green thread keeps ticking
/// on the same (only) worker, then reports how many ticks it saw.
#[test]
fn stdin_child() {
    let Some(mode) = std::env::var_os(STDIN_CHILD) else {
        return; // only meaningful as the child of the tests below
    };
    let rt = greenhouse::runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    rt.run(move || {
        let out = std::io::stdout();
        if mode == "lines" {
            writeln!(out.lock(), "\nready").unwrap();
            // Runs only if waiting for stdin leaves the (only) worker free;
            // the parent sends input after seeing "tick".
            let ticker = thread::spawn(|| {
                thread::sleep(Duration::from_millis(5));
                writeln!(std::io::stdout().lock(), "tick").unwrap();
            });
            let mut n = 0;
            for line in stdin().lines() {
                n += 1;
                writeln!(out.lock(), "got {}", line.unwrap()).unwrap();
            }
            ticker.join().unwrap();
            writeln!(out.lock(), "eof after {n} lines").unwrap();
        } else {
            // Only green thread, waiting on stdin: not a deadlock.
            writeln!(out.lock(), "\nready").unwrap();
            let mut line = String::new();
            let n = stdin().read_line(&mut line).unwrap();
            writeln!(out.lock(), "read {n} {}", line.trim_end()).unwrap();
        }
    });
}

fn spawn_child(mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stdin_child", "--nocapture", "--test-threads=1"])
        .env(STDIN_CHILD, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child's stdout, line by line, through a channel (so a child that
/// never writes fails the test instead of hanging it).
fn lines_of(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Skips output up to the line `want`.
fn expect_line(rx: &std::sync::mpsc::Receiver<String>, want: &str) {
    loop {
        let line = rx
            .recv_timeout(net_support::PATIENCE)
            .unwrap_or_else(|e| panic!("no '{want}' line from the child: {e}"));
        if line == want {
            return;
        }
    }
}

#[test]
fn stdin_lines_arrive_while_other_green_threads_run() {
    let mut child = spawn_child("lines");
    let rx = lines_of(child.stdout.take().unwrap());
    expect_line(&rx, "ready");
    // The other green thread runs while the only worker's reader waits.
    expect_line(&rx, "tick");
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"one\ntwo\r\nthree").unwrap(); // last line unterminated
    drop(input); // EOF
    for want in ["got one", "got two", "got three", "eof after 3 lines"] {
        let line = rx.recv_timeout(net_support::PATIENCE).unwrap();
        assert_eq!(line, want);
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_green_thread_waiting_on_stdin_is_not_a_deadlock() {
    let mut child = spawn_child("deadlock");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line != "ready\n" {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child exited early"
        );
    }
    // Leave the child waiting well past the deadlock detector's window
    // (checks ≥ 100 ms apart) before answering.
    std::thread::sleep(Duration::from_millis(400));
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"late\n").unwrap();
    drop(input);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {rest}\n{err}");
    assert!(rest.contains("read 5 late"), "{rest}");
}
