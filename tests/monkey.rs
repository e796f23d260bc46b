//! Monkey patching, in a patched process: unmodified std and third-party
//! blocking code runs concurrently in green threads on one worker. Each
//! proof blocks its only worker (and fails by timeout) without the hooks.

mod monkey_common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenhouse::thread as green;
use monkey_common::*;

fn patched() {
    greenhouse::monkey::patch_all().expect("patch_all");
    assert!(greenhouse::monkey::is_patched());
}

/// Proof 1: 10,000 green threads each in `std::thread::sleep(1 s)`, one
/// worker, finish together.
#[test]
fn ten_thousand_std_sleeps_overlap_on_one_worker() {
    let _serial = serial();
    patched();
    let elapsed = within(Duration::from_secs(60), || {
        let start = Instant::now();
        one_worker().run(|| {
            let hs: Vec<_> = (0..10_000)
                .map(|_| green::spawn(|| std::thread::sleep(Duration::from_secs(1))))
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        start.elapsed()
    });
    assert!(elapsed >= Duration::from_secs(1), "slept {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

/// Proof 2: std-only server and client code, 1,000 connections open at once
/// on one worker: the server accepts all of them before answering any.
#[test]
fn std_net_serves_a_thousand_concurrent_connections_on_one_worker() {
    let _serial = serial();
    patched();
    const N: usize = 1000;
    let answers = within(Duration::from_secs(120), || {
        one_worker().run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = green::spawn(move || {
                let conns = accept_n(&listener, N).unwrap();
                let hs: Vec<_> = conns
                    .into_iter()
                    .map(|c| green::spawn(move || echo_line(c).unwrap()))
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            });
            let clients: Vec<_> = (0..N)
                .map(|i| green::spawn(move || ask(addr, &format!("client {i}")).unwrap()))
                .collect();
            let answers: Vec<String> = clients.into_iter().map(|h| h.join().unwrap()).collect();
            server.join().unwrap();
            answers
        })
    });
    assert_eq!(answers.len(), N);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a, &format!("client {i}"));
    }
}

/// A local HTTP server on plain OS threads that answers every request after
/// `delay`. Returns its address; it serves `requests` connections and stops.
fn slow_http_server(delay: Duration, requests: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                std::thread::sleep(delay);
                let body = "hello from the slow server";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

/// Proof 3: an unmodified third-party blocking HTTP client (ureq): 100 green
/// threads on one worker GET from a server that takes 200 ms per response;
/// one after another that is 20 s.
#[test]
fn ureq_gets_overlap_in_green_threads() {
    let _serial = serial();
    patched();
    const N: usize = 100;
    let addr = slow_http_server(Duration::from_millis(200), N);
    let (bodies, elapsed) = within(Duration::from_secs(60), move || {
        let start = Instant::now();
        let bodies = one_worker().run(move || {
            let hs: Vec<_> = (0..N)
                .map(|_| {
                    green::spawn(move || {
                        let mut res = ureq::get(format!("http://{addr}/")).call().unwrap();
                        res.body_mut().read_to_string().unwrap()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        (bodies, start.elapsed())
    });
    assert_eq!(bodies.len(), N);
    assert!(bodies.iter().all(|b| b == "hello from the slow server"));
    assert!(
        elapsed < Duration::from_secs(8),
        "took {elapsed:?} (20 s sequential)"
    );
}

/// Proof 4 (patched half; tests/monkey_inert.rs has the unpatched half):
/// after patch_all, std socket and sleep code on a plain thread sees exactly
/// what libc gives.
#[test]
fn hooks_are_inert_on_plain_threads_after_patching() {
    let _serial = serial();
    patched();
    let seen = within(Duration::from_secs(30), || {
        std::thread::spawn(observe_std).join().unwrap()
    });
    assert_eq!(seen, expected_std());
}

/// The same std code in a green thread: the same results (timeouts, kinds,
/// non-blocking mode), while it parks instead of blocking the worker.
#[test]
fn std_code_in_a_green_thread_sees_what_a_thread_sees() {
    let _serial = serial();
    patched();
    let (seen, ticks) = within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let ticks = Arc::new(AtomicUsize::new(0));
            let (s, t) = (stop.clone(), ticks.clone());
            let ticker = green::spawn(move || {
                while !s.load(SeqCst) {
                    t.fetch_add(1, SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            let seen = observe_std();
            stop.store(true, SeqCst);
            ticker.join().unwrap();
            (seen, ticks.load(SeqCst))
        })
    });
    assert_eq!(seen, expected_std());
    // The read timeout (50 ms) and the sleep (20 ms) let the ticker run
    // (without the hooks it never does: this green thread never yields).
    assert!(ticks >= 1, "ticker ran {ticks} times");
}

/// Proof 5: SO_RCVTIMEO set with std's set_read_timeout times out inside a
/// green thread with the kind a plain thread gets, and parks meanwhile.
#[test]
fn read_timeout_times_out_in_a_green_thread_with_std_kind() {
    let _serial = serial();
    patched();
    fn timed_read() -> (io::ErrorKind, Duration) {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let t = Instant::now();
        let e = (&a).read(&mut [0u8; 8]).unwrap_err();
        (e.kind(), t.elapsed())
    }
    fn timed_tcp_read() -> (io::ErrorKind, Duration) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let _s = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let t = Instant::now();
        let e = (&c).read(&mut [0u8; 8]).unwrap_err();
        (e.kind(), t.elapsed())
    }
    let on_thread = std::thread::spawn(|| (timed_read(), timed_tcp_read()))
        .join()
        .unwrap();
    let (in_green, others_ran) = within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let other = green::spawn(move || r.store(true, SeqCst));
            let res = (timed_read(), timed_tcp_read());
            let ran_meanwhile = ran.load(SeqCst);
            other.join().unwrap();
            (res, ran_meanwhile)
        })
    });
    assert_eq!(on_thread.0 .0, io::ErrorKind::WouldBlock);
    assert_eq!(in_green.0 .0, on_thread.0 .0);
    assert_eq!(in_green.1 .0, on_thread.1 .0);
    for d in [in_green.0 .1, in_green.1 .1] {
        assert!(d >= Duration::from_millis(95), "timed out after {d:?}");
        assert!(d < Duration::from_secs(5), "timed out after {d:?}");
    }
    assert!(others_ran, "the read blocked the worker");
}

/// `unpatched` blocks the worker for its section only, and only for the
/// green thread that opened it.
#[test]
fn unpatched_section_blocks_for_real() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let other = green::spawn(move || r.store(true, SeqCst));
            let t = Instant::now();
            greenhouse::monkey::unpatched(|| std::thread::sleep(Duration::from_millis(50)));
            assert!(t.elapsed() >= Duration::from_millis(50));
            assert!(
                !ran.load(SeqCst),
                "the worker switched inside an unpatched section"
            );
            // Patched again: this sleep lets the other green thread run.
            std::thread::sleep(Duration::from_millis(10));
            assert!(ran.load(SeqCst));
            other.join().unwrap();
        })
    });
}

/// A green thread parked (on a greenhouse primitive) inside an unpatched
/// section does not unpatch the other green threads of its worker.
#[test]
fn unpatched_section_is_per_green_thread() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let inside = green::spawn(move || {
                greenhouse::monkey::unpatched(|| {
                    // Parks through greenhouse, not a hook.
                    green::sleep(Duration::from_millis(200));
                })
            });
            green::sleep(Duration::from_millis(10));
            // The other green thread is parked in its section; our std sleep
            // is still green, so `inside` keeps its timer.
            let t = Instant::now();
            let hs: Vec<_> = (0..20)
                .map(|_| green::spawn(|| std::thread::sleep(Duration::from_millis(100))))
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            // 20 overlapping 100 ms sleeps; one after another they take 2 s.
            assert!(
                t.elapsed() < Duration::from_millis(1500),
                "{:?}",
                t.elapsed()
            );
            inside.join().unwrap();
        })
    });
}

/// A descriptor the user set non-blocking (ioctl FIONBIO through std, or
/// fcntl F_SETFL) stays non-blocking in a green thread; set back to blocking
/// it parks again.
#[test]
fn user_nonblocking_mode_is_kept_in_green_threads() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let e = (&a).read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);

            // fcntl: clear, then set O_NONBLOCK by hand.
            let fd = a.as_raw_fd();
            // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                assert_ne!(fl & libc::O_NONBLOCK, 0);
                assert_eq!(libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK), 0);
                assert_eq!(libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK, 0);
            }
            // Blocking for the user: a read parks until the writer writes.
            let writer = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                (&b).write_all(b"late").unwrap();
                b
            });
            let mut got = [0u8; 4];
            (&a).read_exact(&mut got).unwrap();
            assert_eq!(&got, b"late");
            let _b = writer.join().unwrap();

            // SAFETY: as above.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                assert_eq!(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK), 0);
            }
            let e = (&a).read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        })
    });
}

/// Closing a descriptor that another green thread waits on wakes it with
/// EBADF (a blocking read on Linux would stay blocked forever).
#[test]
fn close_wakes_a_green_thread_waiting_on_the_descriptor() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let (a, _b) = UnixStream::pair().unwrap();
            let fd = a.as_raw_fd();
            // The reader must not close `fd` again when it is done.
            let a = ManuallyDrop::new(a);
            let reader = green::spawn(move || (&*a).read(&mut [0u8; 4]).unwrap_err());
            // A greenhouse sleep: the reader runs and parks in its read.
            green::sleep(Duration::from_millis(20));
            // SAFETY: closing the descriptor the reader's stream owns; the
            // reader never drops that stream.
            assert_eq!(unsafe { libc::close(fd) }, 0);
            let e = reader.join().unwrap();
            assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        })
    });
}

/// dup2 over a descriptor a green thread waits on: the waiter gets EBADF,
/// and the number then works green for the new file.
#[test]
fn dup2_over_a_registered_descriptor() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let (a, _a_peer) = UnixStream::pair().unwrap();
            let (b, b_peer) = UnixStream::pair().unwrap();
            let fd = a.as_raw_fd();
            let a = ManuallyDrop::new(a);
            let reader = green::spawn(move || (&*a).read(&mut [0u8; 4]).unwrap_err());
            green::sleep(Duration::from_millis(20));
            // SAFETY: `fd` now names `b`'s socket; the old stream is never
            // dropped, the new one below owns the number.
            assert_eq!(unsafe { libc::dup2(b.as_raw_fd(), fd) }, fd);
            assert_eq!(reader.join().unwrap().raw_os_error(), Some(libc::EBADF));
            // SAFETY: `fd` is open (the dup2 above) and owned by nobody else.
            let replaced = unsafe { UnixStream::from_raw_fd(fd) };
            let writer = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                (&b_peer).write_all(b"new!").unwrap();
                b_peer
            });
            let mut got = [0u8; 4];
            (&replaced).read_exact(&mut got).unwrap();
            assert_eq!(&got, b"new!");
            writer.join().unwrap();
            drop(b);
        })
    });
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// poll(2) on several descriptors in a green thread: times out after the
/// timeout with nothing ready, and wakes for the one that becomes ready —
/// parking meanwhile.
#[test]
fn poll_several_descriptors_with_a_timeout() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let pipes: Vec<_> = (0..3).map(|_| pipe()).collect();
            let mut pfds: Vec<libc::pollfd> = pipes
                .iter()
                .map(|(r, _)| libc::pollfd {
                    fd: r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let ticks = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (t, s) = (ticks.clone(), stop.clone());
            let ticker = green::spawn(move || {
                while !s.load(SeqCst) {
                    t.fetch_add(1, SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            let start = Instant::now();
            // SAFETY: a valid pollfd array.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), 3, 100) };
            let waited = start.elapsed();
            assert_eq!(n, 0);
            assert!(waited >= Duration::from_millis(95), "{waited:?}");
            assert!(ticks.load(SeqCst) >= 1, "poll blocked the worker");

            let w = pipes[1].1.try_clone().unwrap();
            let writer = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                (&w).write_all(b"x").unwrap();
            });
            let start = Instant::now();
            // SAFETY: as above.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), 3, 5000) };
            assert_eq!(n, 1);
            assert!(start.elapsed() < Duration::from_secs(4));
            assert_eq!(pfds[1].revents & libc::POLLIN, libc::POLLIN);
            assert_eq!(pfds[0].revents, 0);
            assert_eq!(pfds[2].revents, 0);
            writer.join().unwrap();
            stop.store(true, SeqCst);
            ticker.join().unwrap();
        })
    });
}

/// Name resolution (`ToSocketAddrs` → getaddrinfo) runs on the blocking
/// pool: the green thread parks, its worker runs others meanwhile.
#[test]
fn getaddrinfo_does_not_block_the_worker() {
    use std::net::ToSocketAddrs;
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let ticks = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (t, s) = (ticks.clone(), stop.clone());
            let spinner = green::spawn(move || {
                while !s.load(SeqCst) {
                    t.fetch_add(1, SeqCst);
                    green::yield_now();
                }
            });
            // The spinner has not run yet: this green thread never yielded.
            assert_eq!(ticks.load(SeqCst), 0);
            let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
            assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
            assert!(ticks.load(SeqCst) > 0, "getaddrinfo ran on the worker");
            // Errors come back as std reports them.
            let e = ("no-such-host.invalid", 80).to_socket_addrs().unwrap_err();
            assert_ne!(e.kind(), io::ErrorKind::Other, "{e}");
            stop.store(true, SeqCst);
            spinner.join().unwrap();
        })
    });
}

/// Killing a green thread parked in a patched call: the call fails with
/// ECANCELED (hooks cannot unwind through C frames), and the kill takes
/// effect at the next greenhouse blocking point.
#[test]
fn kill_inside_a_patched_call_fails_it_and_stays_pending() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let (a, _b) = UnixStream::pair().unwrap();
            let (tx, rx) = mpsc::channel();
            let victim = green::spawn(move || {
                let e = (&a).read(&mut [0u8; 4]).unwrap_err();
                tx.send(e.raw_os_error()).unwrap();
                // Further patched calls fail at once...
                let again = (&a).read(&mut [0u8; 4]).unwrap_err();
                tx.send(again.raw_os_error()).unwrap();
                // ...and a greenhouse blocking point unwinds.
                green::sleep(Duration::from_secs(60));
                unreachable!("killed green thread kept running");
            });
            green::sleep(Duration::from_millis(20));
            victim.kill();
            let r = victim.join();
            assert!(r.unwrap_err().is_killed());
            assert_eq!(rx.recv().unwrap(), Some(libc::ECANCELED));
            assert_eq!(rx.recv().unwrap(), Some(libc::ECANCELED));
        })
    });
}

/// A `timeout` that expires while std code waits in a patched call: the call
/// fails with TimedOut, and `timeout` reports Elapsed once the body reaches a
/// greenhouse blocking point.
#[test]
fn timeout_inside_a_patched_call() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let (a, _b) = UnixStream::pair().unwrap();
            let t = Instant::now();
            let r = greenhouse::time::timeout(Duration::from_millis(50), || {
                let e = (&a).read(&mut [0u8; 4]).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                green::sleep(Duration::from_secs(60));
            });
            assert!(r.is_err());
            assert!(t.elapsed() < Duration::from_secs(5));
            // The scope is gone: patched calls work again.
            let (c, d) = UnixStream::pair().unwrap();
            (&d).write_all(b"ok").unwrap();
            let mut got = [0u8; 2];
            (&c).read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ok");
        })
    });
}

/// Pipes (a child process's stdout) read green; a big write completes whole.
#[test]
fn pipes_read_and_write_green() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let (r, w) = pipe();
            const LEN: usize = 1 << 20;
            let writer = green::spawn(move || {
                let data = vec![7u8; LEN];
                // One write bigger than the pipe: blocking semantics write
                // it all before returning.
                let n = (&w).write(&data).unwrap();
                assert_eq!(n, LEN);
            });
            let mut got = Vec::new();
            (&r).read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), LEN);
            writer.join().unwrap();

            // std::process pipes.
            let out = std::process::Command::new("sh")
                .args(["-c", "sleep 0.05; echo child"])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "child\n");
        })
    });
}

/// std's connect_timeout (non-blocking connect + poll) and plain connect,
/// refused and successful, in green threads.
#[test]
fn connect_variants_in_green_threads() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            drop(l);
            let e = TcpStream::connect(addr).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            let e = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        })
    });
}
