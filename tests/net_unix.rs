//! Green Unix-domain sockets: streams, listeners, datagrams.

mod net_support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use greenhouse::net::unix::{UnixDatagram, UnixListener, UnixStream};
use greenhouse::thread;
use net_support::{rt, spawn_elsewhere};

/// A fresh directory for socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("greenhouse-net-unix-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn line_echo_over_a_path_on_one_and_two_workers() {
    for workers in [1, 2] {
        let dir = TempDir::new(&format!("echo{workers}"));
        let path = dir.path("echo.sock");
        rt(workers).run(move || {
            let l = UnixListener::bind(&path).unwrap();
            let server = thread::spawn(move || {
                let mut hs = Vec::new();
                for s in l.incoming().take(30) {
                    let s = s.unwrap();
                    hs.push(thread::spawn(move || {
                        let mut w = s.try_clone().unwrap();
                        for line in BufReader::new(s).lines() {
                            writeln!(w, "<{}>", line.unwrap()).unwrap();
                        }
                    }));
                }
                for h in hs {
                    h.join().unwrap();
                }
            });
            let clients: Vec<_> = (0..30)
                .map(|i| {
                    let path = path.clone();
                    thread::spawn(move || {
                        let s = UnixStream::connect(&path).unwrap();
                        let mut r = BufReader::new(s.try_clone().unwrap());
                        let mut w = s;
                        for j in 0..10 {
                            writeln!(w, "{i}.{j}").unwrap();
                            let mut line = String::new();
                            r.read_line(&mut line).unwrap();
                            assert_eq!(line, format!("<{i}.{j}>\n"));
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            server.join().unwrap();
        });
    }
}

#[test]
fn connect_waits_while_the_backlog_is_full() {
    let dir = TempDir::new("backlog");
    let path = dir.path("full.sock");
    rt(2).run(move || {
        let l = UnixListener::bind(&path).unwrap();
        // A backlog of 0: one connection may wait; the next connect gets
        // EAGAIN from the kernel until it is accepted.
        // SAFETY: listen(2) on the listener's own open descriptor.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let _first = UnixStream::connect(&path).unwrap();
        let p = path.clone();
        let second = thread::spawn(move || UnixStream::connect(&p).map(|s| s.peer_addr().is_ok()));
        thread::sleep(Duration::from_millis(30));
        assert!(!second.is_finished(), "connect should wait for room");
        let (_a, _) = l.accept().unwrap();
        assert!(second.join().unwrap().unwrap());
        let (_b, _) = l.accept().unwrap();
    });
}

#[test]
fn pair_timeouts_nonblocking_and_shutdown_wakeups() {
    rt(2).run(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(
            b.read(&mut [0; 1]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        b.set_read_timeout(None).unwrap();
        b.set_nonblocking(true).unwrap();
        assert_eq!(
            b.read(&mut [0; 1]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        b.set_nonblocking(false).unwrap();
        // A reader parked on another worker is woken by the writer's
        // shutdown and reads end-of-file.
        let reader = spawn_elsewhere(move || {
            let mut v = Vec::new();
            b.read_to_end(&mut v).unwrap();
            v
        });
        let mut w = &a;
        w.write_all(b"last words").unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(reader.join().unwrap(), b"last words");
    });
}

#[test]
fn write_timeout_when_the_peer_does_not_read() {
    rt(1).run(|| {
        let (mut a, _b) = UnixStream::pair().unwrap();
        a.set_write_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        let chunk = vec![0u8; 1 << 16];
        let e = loop {
            if let Err(e) = a.write(&chunk) {
                break e;
            }
        };
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn datagrams_between_green_threads_and_shutdown_like_std() {
    // std: a receive on a datagram socket shut down for reading returns 0.
    let (_sa, sb) = std::os::unix::net::UnixDatagram::pair().unwrap();
    sb.shutdown(Shutdown::Read).unwrap();
    assert_eq!(sb.recv(&mut [0; 4]).unwrap(), 0);

    rt(2).run(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let b2 = b.try_clone().unwrap();
        let receiver = spawn_elsewhere(move || {
            let mut buf = [0; 32];
            (0..20)
                .map(|_| {
                    let n = b2.recv(&mut buf).unwrap();
                    String::from_utf8(buf[..n].to_vec()).unwrap()
                })
                .collect::<Vec<_>>()
        });
        for i in 0..20 {
            a.send(format!("d{i}").as_bytes()).unwrap();
        }
        let got = receiver.join().unwrap();
        assert_eq!(got, (0..20).map(|i| format!("d{i}")).collect::<Vec<_>>());
        // A receiver parked on another worker is woken by shutdown(Read)
        // and gets 0, as std's blocking receive does.
        let b3 = b.try_clone().unwrap();
        let parked = spawn_elsewhere(move || b3.recv(&mut [0; 4]));
        thread::sleep(Duration::from_millis(10));
        b.shutdown(Shutdown::Read).unwrap();
        assert_eq!(parked.join().unwrap().unwrap(), 0);
        let (n, from) = b.recv_from(&mut [0; 4]).unwrap();
        assert_eq!(n, 0);
        assert!(from.is_unnamed());
        // Non-blocking mode keeps the kernel's answer.
        b.set_nonblocking(true).unwrap();
        assert_eq!(
            b.recv(&mut [0; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    });
}

#[test]
fn datagrams_by_path_and_from_os_threads() {
    let dir = TempDir::new("dgram");
    let server_path = dir.path("server.sock");
    let client_path = dir.path("client.sock");
    let server = UnixDatagram::bind(&server_path).unwrap();
    let sp = server_path.clone();
    let t = std::thread::spawn(move || {
        let c = UnixDatagram::bind(&client_path).unwrap();
        c.send_to(b"hello", &sp).unwrap();
        let mut buf = [0; 16];
        let n = c.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    let mut buf = [0; 16];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let from = from.as_pathname().unwrap().to_path_buf();
    server.send_to(b"welcome", &from).unwrap();
    assert_eq!(t.join().unwrap(), b"welcome");
    server
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    assert_eq!(
        server.recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let e = UnixDatagram::bind(&server_path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
}

#[test]
fn conversions_keep_the_descriptor() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_write_timeout(Some(Duration::from_millis(70)))
        .unwrap();
    // The kernel rounds to its clock tick: compare with what std reads back.
    let want = a.write_timeout().unwrap();
    assert!(want.is_some());
    let fd = a.as_raw_fd();
    let g = UnixStream::from_std(a).unwrap();
    assert_eq!(g.write_timeout().unwrap(), want);
    let clone = g.try_clone().unwrap();
    assert_ne!(clone.as_raw_fd(), fd);
    assert_eq!(g.into_std().unwrap_err().kind(), ErrorKind::Other);
    let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = x.as_raw_fd();
    let back = UnixStream::from(x).into_std().unwrap();
    assert_eq!(back.as_raw_fd(), fd);
    let missing = std::env::temp_dir().join("greenhouse-surely-missing.sock");
    assert_eq!(
        UnixStream::connect(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
