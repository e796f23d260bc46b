//! The other patched calls, each from std code or the plain C API in a
//! green thread on one worker: select, epoll_wait, sendfile and splice (what
//! `std::io::copy` uses), UDP, vectored I/O. Each would deadlock its only
//! worker without the hooks (the peer that unblocks it runs on that worker).

mod monkey_common;

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::thread as green;
use monkey_common::*;

fn patched() {
    greenhouse::monkey::patch_all().expect("patch_all");
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

/// A green thread that counts while it runs, sleeping 5 ms (std) between
/// counts: proof that the worker was free.
struct Ticker {
    ticks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    h: Option<green::JoinHandle<()>>,
}

impl Ticker {
    fn start() -> Ticker {
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (ticks.clone(), stop.clone());
        let h = green::spawn(move || {
            while !s.load(SeqCst) {
                t.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Ticker {
            ticks,
            stop,
            h: Some(h),
        }
    }
    fn ticks(&self) -> usize {
        self.ticks.load(SeqCst)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(h) = self.h.take() {
            h.join().unwrap();
        }
    }
}

#[test]
fn select_times_out_and_wakes_green() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let ticker = Ticker::start();
            let (r, w) = pipe();
            let fd = r.as_raw_fd();
            // SAFETY: fd_set manipulation on a zeroed set, fd < FD_SETSIZE.
            let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
            unsafe { libc::FD_SET(fd, &mut set) };
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            let t = Instant::now();
            // SAFETY: valid set and timeval.
            let n = unsafe {
                libc::select(
                    fd + 1,
                    &mut set,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut tv,
                )
            };
            assert_eq!(n, 0);
            assert!(t.elapsed() >= Duration::from_millis(95));
            assert!(ticker.ticks() >= 1, "select blocked the worker");

            let writer = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                (&w).write_all(b"x").unwrap();
                w
            });
            // SAFETY: as above.
            unsafe { libc::FD_SET(fd, &mut set) };
            let n = unsafe {
                libc::select(
                    fd + 1,
                    &mut set,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(n, 1);
            assert!(unsafe { libc::FD_ISSET(fd, &set) });
            drop(writer.join().unwrap());
        })
    });
}

#[test]
fn epoll_wait_on_a_users_epoll_parks() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let ticker = Ticker::start();
            let (r, w) = pipe();
            // SAFETY: a fresh epoll instance, closed at the end.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            assert!(ep >= 0);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 7,
            };
            // SAFETY: valid epoll fd, descriptor and event.
            assert_eq!(
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, r.as_raw_fd(), &mut ev) },
                0
            );
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let t = Instant::now();
            // SAFETY: a valid output array of 4.
            let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 4, 100) };
            assert_eq!(n, 0);
            assert!(t.elapsed() >= Duration::from_millis(95));
            assert!(ticker.ticks() >= 1, "epoll_wait blocked the worker");
            let writer = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                (&w).write_all(b"x").unwrap();
                w
            });
            // SAFETY: as above.
            let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 4, -1) };
            assert_eq!(n, 1);
            assert_eq!({ out[0].u64 }, 7);
            drop(writer.join().unwrap());
            // SAFETY: our epoll descriptor.
            unsafe { libc::close(ep) };
        })
    });
}

/// A connected TCP pair.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// A reader that drains `len` bytes slowly (so the writer must wait).
fn slow_reader(s: TcpStream, len: usize) -> green::JoinHandle<Vec<u8>> {
    green::spawn(move || {
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < len {
            std::thread::sleep(Duration::from_millis(1));
            let n = (&s).read(&mut buf).unwrap();
            assert!(n > 0, "early end of stream");
            got.extend_from_slice(&buf[..n]);
        }
        got
    })
}

#[test]
fn sendfile_file_to_socket_green() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(60), || {
        one_worker().run(|| {
            const LEN: usize = 8 << 20;
            let path =
                std::env::temp_dir().join(format!("greenhouse-monkey-{}", std::process::id()));
            let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            let (c, s) = tcp_pair();
            let reader = slow_reader(s, LEN);
            let f = std::fs::File::open(&path).unwrap();
            // Like a blocking sendfile, one call sends everything.
            // SAFETY: two open descriptors, no offset pointer.
            let n =
                unsafe { libc::sendfile(c.as_raw_fd(), f.as_raw_fd(), std::ptr::null_mut(), LEN) };
            assert_eq!(n as usize, LEN);
            assert!(reader.join().unwrap() == data);
            std::fs::remove_file(&path).unwrap();
        })
    });
}

#[test]
fn io_copy_pipe_to_socket_uses_splice_green() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(60), || {
        one_worker().run(|| {
            const LEN: usize = 4 << 20;
            let (mut r, w) = pipe();
            let producer = green::spawn(move || {
                let chunk = vec![3u8; 256 * 1024];
                for _ in 0..LEN / chunk.len() {
                    (&w).write_all(&chunk).unwrap();
                }
            });
            let (mut c, s) = tcp_pair();
            let reader = slow_reader(s, LEN);
            let n = std::io::copy(&mut r, &mut c).unwrap();
            assert_eq!(n as usize, LEN);
            producer.join().unwrap();
            let got = reader.join().unwrap();
            assert_eq!(got.len(), LEN);
            assert!(got.iter().all(|&b| b == 3));
        })
    });
}

#[test]
fn vectored_io_on_tcp_is_whole_and_green() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(60), || {
        one_worker().run(|| {
            const HALF: usize = 2 << 20;
            let (c, s) = tcp_pair();
            let reader = slow_reader(s, 2 * HALF);
            let a = vec![1u8; HALF];
            let b = vec![2u8; HALF];
            // Blocking writev writes everything before returning.
            let n = (&c)
                .write_vectored(&[IoSlice::new(&a), IoSlice::new(&b)])
                .unwrap();
            assert_eq!(n, 2 * HALF);
            let got = reader.join().unwrap();
            assert!(got[..HALF].iter().all(|&x| x == 1) && got[HALF..].iter().all(|&x| x == 2));

            // readv waits for data sent later.
            let (c2, s2) = tcp_pair();
            let writer = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                (&s2).write_all(b"abcdef").unwrap();
                s2
            });
            let (mut x, mut y) = ([0u8; 3], [0u8; 3]);
            let mut total = 0;
            while total < 6 {
                let mut bufs = [IoSliceMut::new(&mut x[..]), IoSliceMut::new(&mut y[..])];
                let n = (&c2).read_vectored(&mut bufs).unwrap();
                assert!(n > 0);
                total += n;
                if total < 6 {
                    // Not all at once: start over (the test writes all 6 in
                    // one call, so this is rare).
                    total = 0;
                }
            }
            assert_eq!(&x, b"abc");
            assert_eq!(&y, b"def");
            drop(writer.join().unwrap());
        })
    });
}

#[test]
fn udp_recv_from_waits_green() {
    let _serial = serial();
    patched();
    within(Duration::from_secs(30), || {
        one_worker().run(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = a.local_addr().unwrap();
            let from = b.local_addr().unwrap();
            let sender = green::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                b.send_to(b"datagram", to).unwrap();
            });
            let mut buf = [0u8; 32];
            let (n, peer) = a.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"datagram");
            assert_eq!(peer, from);
            sender.join().unwrap();
            // A read timeout on UDP: WouldBlock, as on a thread.
            a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
            let e = a.recv_from(&mut buf).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        })
    });
}
