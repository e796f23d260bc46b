//! StreamServer: a green thread per connection, 1,000 concurrent clients
//! with every byte echoed, stop(grace) semantics, the optional Pool limit,
//! accept errors that end the loop.

mod net_support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use greenhouse::channel;
use greenhouse::net::{TcpListener, TcpStream};
use greenhouse::pool::Pool;
use greenhouse::server::{ServerHandle, StreamServer};
use greenhouse::sync::Barrier;
use greenhouse::thread;
use net_support::{rt, PATIENCE};

/// Copies everything the client sends back to it, until EOF.
fn echo(stream: TcpStream, _peer: SocketAddr) {
    let mut out = stream.try_clone().unwrap();
    let mut input = stream;
    let mut buf = [0; 4096];
    loop {
        match input.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Room for every client's connection in the accept queue (std's bind
/// asks for 128): with 1,000 clients connecting at once a short queue only
/// makes some of them retry their SYN a second later.
fn listener_with_backlog(n: i32) -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) again on the listener's own open descriptor only
    // changes its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), n) }, 0);
    l
}

#[test]
fn a_thousand_concurrent_clients_get_every_byte_echoed_on_one_and_two_workers() {
    const CLIENTS: usize = 1000;
    for workers in [1, 2] {
        let start = Instant::now();
        rt(workers).run(|| {
            let server = StreamServer::new(listener_with_backlog(1024), echo)
                .unwrap()
                .start()
                .unwrap();
            let addr = server.local_addr();
            // Everyone connected before anyone talks: 1,000 connections
            // (2,000 descriptors) open at once.
            let all_connected = Arc::new(Barrier::new(CLIENTS));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let all_connected = all_connected.clone();
                    thread::spawn(move || {
                        let s = TcpStream::connect(addr).unwrap();
                        all_connected.wait();
                        let msg: Vec<u8> = (0..3000).map(|j| (i * 7 + j) as u8).collect();
                        let reader = s.try_clone().unwrap();
                        let mut w = s;
                        for chunk in msg.chunks(1000) {
                            w.write_all(chunk).unwrap();
                            thread::yield_now();
                        }
                        w.shutdown(Shutdown::Write).unwrap();
                        let mut back = Vec::new();
                        let mut r = reader;
                        r.read_to_end(&mut back).unwrap();
                        assert!(
                            back == msg,
                            "client {i}: {} of {} bytes, or wrong ones",
                            back.len(),
                            msg.len()
                        );
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            server.stop(Duration::from_secs(5));
        });
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{workers} workers: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn stop_closes_the_listener_then_waits_for_running_handlers() {
    rt(2).run(|| {
        let (started_tx, started_rx) = channel::unbounded();
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let server = StreamServer::bind("127.0.0.1:0", move |s: TcpStream, _| {
            started_tx.send(()).unwrap();
            // Reads until the client is done, then answers.
            let mut r = &s;
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            (&s).write_all(b"done").unwrap();
            f.store(true, SeqCst);
        })
        .unwrap();
        let handle = server.start().unwrap();
        let addr = handle.local_addr();
        let mut c = TcpStream::connect(addr).unwrap();
        started_rx.recv().unwrap();
        let h2 = handle.clone();
        let stopper = thread::spawn(move || {
            h2.stop(PATIENCE);
            Instant::now()
        });
        // The listener closes at once: new connections are refused while
        // the running handler is still waited for.
        let t = Instant::now();
        while TcpStream::connect(addr).is_ok() {
            assert!(t.elapsed() < PATIENCE, "the listener stayed open");
            thread::sleep(Duration::from_millis(1));
        }
        assert!(!stopper.is_finished());
        assert!(!handle.is_stopped());
        c.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "done");
        stopper.join().unwrap();
        assert!(
            finished.load(SeqCst),
            "stop returned before the handler finished"
        );
        assert!(handle.is_stopped());
        handle.stop(Duration::ZERO); // again: returns at once
    });
}

#[test]
fn stop_kills_handlers_still_running_after_the_grace_period() {
    rt(1).run(|| {
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let unwound = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = channel::unbounded();
        let u = unwound.clone();
        let server = StreamServer::bind("127.0.0.1:0", move |s: TcpStream, _| {
            let _guard = Dropped(u.clone());
            started_tx.send(()).unwrap();
            let mut v = Vec::new();
            let _ = (&s).read_to_end(&mut v); // the client never closes
            unreachable!("killed while reading");
        })
        .unwrap();
        let handle = server.start().unwrap();
        let clients: Vec<_> = (0..3)
            .map(|_| TcpStream::connect(handle.local_addr()).unwrap())
            .collect();
        for _ in 0..3 {
            started_rx.recv().unwrap();
        }
        let t = Instant::now();
        handle.stop(Duration::from_millis(100));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < PATIENCE, "{took:?}");
        assert_eq!(unwound.load(SeqCst), 3, "every handler unwound");
        // Their connections were closed by the unwinding.
        for mut c in clients {
            assert_eq!(c.read(&mut [0; 1]).unwrap(), 0);
        }
    });
}

#[test]
fn stop_from_a_handler_and_serve_forever_returning() {
    rt(2).run(|| {
        let slot: Arc<OnceLock<ServerHandle>> = Arc::new(OnceLock::new());
        let s2 = slot.clone();
        let server = StreamServer::bind("127.0.0.1:0", move |s: TcpStream, _| {
            let mut w = s.try_clone().unwrap();
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { return };
                if line == "quit" {
                    writeln!(w, "bye").unwrap();
                    s2.get().unwrap().stop(Duration::from_millis(200));
                    return;
                }
                writeln!(w, "{line}").unwrap();
            }
        })
        .unwrap();
        slot.set(server.handle()).unwrap();
        let addr = server.local_addr();
        let client = thread::spawn(move || {
            let c = TcpStream::connect(addr).unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut w = c;
            let mut line = String::new();
            writeln!(w, "hi").unwrap();
            r.read_line(&mut line).unwrap();
            writeln!(w, "quit").unwrap();
            r.read_line(&mut line).unwrap();
            line
        });
        server.serve_forever().unwrap();
        assert_eq!(client.join().unwrap(), "hi\nbye\n");
        assert!(slot.get().unwrap().is_stopped());
    });
}

#[test]
fn a_pool_caps_the_connections_handled_at_once() {
    rt(2).run(|| {
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let (a, p, sv) = (active.clone(), peak.clone(), served.clone());
        let pool = Pool::new(3);
        let server = StreamServer::bind("127.0.0.1:0", move |s: TcpStream, _| {
            let now = a.fetch_add(1, SeqCst) + 1;
            p.fetch_max(now, SeqCst);
            // Hold the slot until the client says goodbye.
            let mut v = Vec::new();
            (&s).read_to_end(&mut v).unwrap();
            a.fetch_sub(1, SeqCst);
            sv.fetch_add(1, SeqCst);
            (&s).write_all(b"ok").unwrap();
        })
        .unwrap()
        .with_pool(pool.clone());
        let handle = server.start().unwrap();
        let addr = handle.local_addr();
        // Ten clients connect (the kernel completes every handshake), but
        // only three handlers may run.
        let mut conns: Vec<TcpStream> =
            (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let t = Instant::now();
        while active.load(SeqCst) < 3 {
            assert!(t.elapsed() < PATIENCE);
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(30));
        assert_eq!(active.load(SeqCst), 3);
        assert_eq!(pool.free_count(), 0);
        for c in conns.iter_mut() {
            c.shutdown(Shutdown::Write).unwrap();
        }
        for mut c in conns {
            let mut s = String::new();
            c.read_to_string(&mut s).unwrap();
            assert_eq!(s, "ok");
        }
        assert_eq!(served.load(SeqCst), 10);
        assert_eq!(peak.load(SeqCst), 3);
        handle.stop(Duration::from_secs(1));
        assert_eq!(pool.free_count(), 3);
    });
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    rt(1).run(|| {
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let server = StreamServer::bind("127.0.0.1:0", move |mut s: TcpStream, _| {
            if n2.fetch_add(1, SeqCst) == 0 {
                panic!("first handler fails (expected in this test)");
            }
            s.write_all(b"second").unwrap();
        })
        .unwrap();
        let handle = server.start().unwrap();
        let mut c1 = TcpStream::connect(handle.local_addr()).unwrap();
        assert_eq!(
            c1.read(&mut [0; 8]).unwrap(),
            0,
            "the panicked handler's stream closed"
        );
        let mut c2 = TcpStream::connect(handle.local_addr()).unwrap();
        let mut s = String::new();
        c2.read_to_string(&mut s).unwrap();
        assert_eq!(s, "second");
        assert!(!handle.is_stopped());
        handle.stop(Duration::from_secs(1));
    });
}

#[test]
fn an_unusable_listener_ends_serve_forever_with_its_error() {
    rt(1).run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.as_raw_fd();
        let server = StreamServer::new(l, |_s, _| {}).unwrap();
        let handle = server.handle();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            // SAFETY: shutdown(2) on the server's listener, still open (the
            // server owns it until it stops): accept then fails with EINVAL.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        });
        let e = server.serve_forever().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert!(handle.is_stopped());
        handle.stop(Duration::ZERO);
    });
}

#[test]
fn a_server_stopped_before_it_starts_never_accepts() {
    rt(1).run(|| {
        let server = StreamServer::bind("127.0.0.1:0", |_s, _| unreachable!()).unwrap();
        let addr = server.local_addr();
        server.handle().stop(Duration::ZERO);
        let handle = server.start().unwrap();
        assert!(handle.is_stopped());
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert!(format!("{handle:?}").contains("stopped: true"));
    });
}
