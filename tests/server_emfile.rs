//! An accept that fails with EMFILE is logged and retried after a pause,
//! never fatal. Alone in its test binary (its own process): it lowers
//! RLIMIT_NOFILE and fills the descriptor table.

mod net_support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Duration;

use greenhouse::channel::{self, Sender};
use greenhouse::net::TcpStream;
use greenhouse::server::StreamServer;

/// Forwards warnings to a channel (a green thread waits on it).
struct Capture(Mutex<Option<Sender<String>>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            if let Some(tx) = &*self.0.lock().unwrap() {
                let _ = tx.send(format!("{} {}", r.level(), r.args()));
            }
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(None));

#[test]
fn emfile_is_logged_and_backed_off_then_connections_are_served() {
    let (tx, warnings) = channel::unbounded();
    *LOGGER.0.lock().unwrap() = Some(tx);
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);

    // A small table, quick to fill.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_cur.min(256);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }

    net_support::rt(1).run(move || {
        let server = StreamServer::bind("127.0.0.1:0", |s: TcpStream, _| {
            let mut buf = [0; 64];
            let n = (&s).read(&mut buf).unwrap();
            (&s).write_all(&buf[..n]).unwrap();
        })
        .unwrap();
        let addr = server.local_addr();
        // Three connections wait in the backlog (the kernel completes the
        // handshakes without the server)...
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap()).unwrap())
            .collect();
        // ...then no descriptor is left for accept.
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let mut filler: Vec<OwnedFd> = Vec::new();
        loop {
            match std::os::fd::AsFd::as_fd(&devnull).try_clone_to_owned() {
                Ok(fd) => filler.push(fd),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
                    break;
                }
            }
        }
        let handle = server.start().unwrap();
        // The failure is logged, and retried (a second warning after the
        // pause), while the server keeps running.
        for _ in 0..2 {
            let w = warnings
                .recv_timeout(net_support::PATIENCE)
                .expect("no warning logged");
            assert!(w.starts_with("WARN"), "{w}");
            assert!(w.contains("accept failed"), "{w}");
            assert!(w.contains("os error 24"), "not EMFILE: {w}");
        }
        assert!(!handle.is_stopped());
        drop(filler);
        for (i, mut c) in clients.into_iter().enumerate() {
            let msg = format!("client {i}");
            c.write_all(msg.as_bytes()).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut back = String::new();
            c.read_to_string(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        handle.stop(Duration::from_secs(1));
    });
}
