//! Green UDP: behaviour, timeouts, errors, wake-ups across workers, OS
//! threads.

mod net_support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use greenhouse::net::UdpSocket;
use greenhouse::thread;
use net_support::{rt, spawn_elsewhere};

/// CPU time the calling OS thread has used (a green thread never changes OS
/// thread, so inside one this is its worker's).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn request_reply_between_many_green_threads_on_one_and_two_workers() {
    for workers in [1, 2] {
        rt(workers).run(|| {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = server.local_addr().unwrap();
            let srv = thread::spawn(move || {
                let mut buf = [0; 64];
                for _ in 0..20 * 50 {
                    let (n, from) = server.recv_from(&mut buf).unwrap();
                    buf[..n].reverse();
                    server.send_to(&buf[..n], from).unwrap();
                }
            });
            let clients: Vec<_> = (0..20)
                .map(|i| {
                    thread::spawn(move || {
                        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                        s.connect(addr).unwrap();
                        let mut buf = [0; 64];
                        for j in 0..50u32 {
                            let msg = format!("{i}:{j}");
                            s.send(msg.as_bytes()).unwrap();
                            let n = s.recv(&mut buf).unwrap();
                            let back: String = msg.chars().rev().collect();
                            assert_eq!(&buf[..n], back.as_bytes());
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            srv.join().unwrap();
        });
    }
}

#[test]
fn read_timeout_is_wouldblock_like_std() {
    let std_s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    std_s
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let std_kind = std_s.recv_from(&mut [0; 8]).unwrap_err().kind();
    rt(1).run(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(s.recv_from(&mut [0; 8]).unwrap_err().kind(), std_kind);
        assert_eq!(s.recv(&mut [0; 8]).unwrap_err().kind(), std_kind);
        assert_eq!(s.peek_from(&mut [0; 8]).unwrap_err().kind(), std_kind);
        assert_eq!(
            s.set_write_timeout(Some(Duration::ZERO))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    });
    // The same from a plain OS thread.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(s.recv(&mut [0; 8]).unwrap_err().kind(), std_kind);
}

#[test]
fn refused_datagram_is_reported_once_then_receives_park_without_spinning() {
    let closed_port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    rt(1).run(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", closed_port)).unwrap();
        s.send(b"anyone?").unwrap();
        // The ICMP port-unreachable arrives as a socket error: the parked
        // receive wakes and reports it, as std's would.
        let e = s.recv(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        // The error is consumed: the next receive parks until its timeout
        // instead of spinning on a stale error event.
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let cpu = thread_cpu();
        let e = s.recv(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        let used = thread_cpu() - cpu;
        assert!(
            used < Duration::from_millis(100),
            "the worker spun for {used:?}"
        );
    });
}

#[test]
fn a_clone_receives_on_one_worker_while_the_original_sends_on_another() {
    rt(2).run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // b echoes back to a, from an OS thread.
        let echo = std::thread::spawn(move || {
            let b = b.into_std().unwrap();
            let mut buf = [0; 16];
            loop {
                let (n, from) = b.recv_from(&mut buf).unwrap();
                if &buf[..n] == b"end" {
                    break;
                }
                b.send_to(&buf[..n], from).unwrap();
            }
        });
        let receiver = a.try_clone().unwrap();
        let recv = thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0; 16];
            while got.len() < 100 {
                let (n, from) = receiver.recv_from(&mut buf).unwrap();
                assert_eq!(from, b_addr);
                got.push(u32::from_le_bytes(buf[..n].try_into().unwrap()));
            }
            got
        });
        let send = spawn_elsewhere(move || {
            for i in 0..100u32 {
                a.send_to(&i.to_le_bytes(), b_addr).unwrap();
                // Keep the receive queue short (loopback UDP drops when the
                // receiver's buffer is full).
                thread::sleep(Duration::from_micros(200));
            }
            a.send_to(b"end", b_addr).unwrap();
            a_addr
        });
        assert_eq!(send.join().unwrap(), a_addr);
        let mut got = recv.join().unwrap();
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        echo.join().unwrap();
    });
}

#[test]
fn send_to_a_name_resolves_it() {
    rt(1).run(|| {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = r.local_addr().unwrap().port();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        // "localhost" may resolve to ::1 first; send_to uses the first
        // address, like std, so ask for the IPv4 name explicitly too.
        s.send_to(b"by name", ("127.0.0.1", port)).unwrap();
        let mut buf = [0; 16];
        let (n, from) = r.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"by name");
        assert_eq!(from, s.local_addr().unwrap());
        let e = s.send_to(b"x", &[][..] as &[SocketAddr]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = s.send_to(b"x", "not an address").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn options_peek_and_nonblocking() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    s.set_ttl(17).unwrap();
    assert_eq!(s.ttl().unwrap(), 17);
    s.set_multicast_ttl_v4(3).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 3);
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        s.recv_from(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    s.send_to(b"peek", s.local_addr().unwrap()).unwrap();
    let mut buf = [0; 8];
    assert_eq!(s.peek_from(&mut buf).unwrap().0, 4);
    assert_eq!(s.recv_from(&mut buf).unwrap().0, 4);
    assert!(s.take_error().unwrap().is_none());
    let c = s.try_clone().unwrap();
    use std::os::fd::AsRawFd;
    assert_ne!(c.as_raw_fd(), s.as_raw_fd());
    assert!(format!("{s:?}").contains("UdpSocket"));
}
