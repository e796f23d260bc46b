//! The web_server example over real sockets, in both modes: GET/HEAD,
//! index, 404, keep-alive (also pipelined), MIME types, traversal refused,
//! size limits, and 1,000 concurrent keep-alive connections.

#[allow(dead_code)]
#[path = "../examples/web_server/main.rs"]
mod web_server;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use greenhouse::net::{TcpListener, TcpStream};
use web_server::common::mode::{Green, Threads};
use web_server::{resolve, serve, Config};

fn html_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web_server/html")
}

fn config() -> Config {
    Config::new(&html_root()).unwrap()
}

/// One response: status, lower-cased headers, body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `s` (which may hold more after it: `buf` keeps
/// the rest). `head_only`: a HEAD response has no body whatever its length.
fn read_response(s: &mut impl Read, buf: &mut Vec<u8>, head_only: bool) -> Option<Response> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(used) = resp.parse(buf).unwrap() {
            let status = resp.code.unwrap();
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .expect("every response has Content-Length");
            buf.drain(..used);
            let len = if head_only { 0 } else { len };
            while buf.len() < len {
                let mut chunk = [0u8; 8192];
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed inside a body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf.drain(..len).collect();
            return Some(Response {
                status,
                headers,
                body,
            });
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn request(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
    path: &str,
    extra: &str,
) -> Response {
    // One write per request, as real clients do. Split into several small
    // writes, the first bytes of a connection made while the listen queue
    // overflows can be lost: Linux's SYN cookies rebuild the connection from
    // whichever segment arrives first (seen here: "GET" missing).
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    read_response(s, buf, method == "HEAD").expect("a response")
}

fn file(name: &str) -> Vec<u8> {
    std::fs::read(html_root().join(name)).unwrap()
}

/// Runs `f` against a green server, inside a greenhouse runtime.
fn with_green_server(f: impl FnOnce(SocketAddr) + Send + 'static) {
    greenhouse::run(move || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        greenhouse::thread::spawn(move || serve::<Green>(l, Arc::new(config()), stop));
        f(addr);
    });
}

/// Runs `f` (in a greenhouse runtime, for its clients) against a server on
/// OS threads, and stops that server afterwards.
fn with_threads_server(f: impl FnOnce(SocketAddr) + Send + 'static) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let server = std::thread::spawn(move || serve::<Threads>(l, Arc::new(config()), st));
    greenhouse::run(move || f(addr));
    stop.store(true, Ordering::SeqCst);
    let _ = std::net::TcpStream::connect(addr);
    server.join().unwrap().unwrap();
}

fn protocol(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    // `/` is index.html, keep-alive by default, MIME type from the name.
    let r = request(&mut s, &mut buf, "GET", "/", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, file("index.html"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // HEAD: same headers, no body (the next response parses cleanly).
    let r = request(&mut s, &mut buf, "HEAD", "/style.css", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        r.header("content-length").unwrap(),
        file("style.css").len().to_string()
    );
    assert!(r.body.is_empty());
    // 404 page, connection still usable.
    let r = request(&mut s, &mut buf, "GET", "/missing.html", "");
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("404 Not Found"));
    // Traversal, plain and encoded: refused.
    for bad in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/a/../../Cargo.toml",
    ] {
        let r = request(&mut s, &mut buf, "GET", bad, "");
        assert_eq!(r.status, 403, "{bad}");
    }
    // Other methods: 405 with Allow.
    let r = request(&mut s, &mut buf, "DELETE", "/", "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // A small body is read and skipped.
    s.write_all(b"GET /about.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let r = read_response(&mut s, &mut buf, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // Pipelined: two requests in one write, two responses in order.
    s.write_all(
        b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\nGET /about.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let a = read_response(&mut s, &mut buf, false).unwrap();
    let b = read_response(&mut s, &mut buf, false).unwrap();
    assert_eq!((a.body, b.body), (file("style.css"), file("about.txt")));
    // Connection: close is honoured.
    let r = request(
        &mut s,
        &mut buf,
        "GET",
        "/about.txt",
        "Connection: close\r\n",
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(read_response(&mut s, &mut buf, false).is_none());

    // HTTP/1.0 closes by default.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false).unwrap();
    assert_eq!(r.status, 200);
    assert!(read_response(&mut s, &mut buf, false).is_none());

    // Size limits: a head over 8 KiB, a body over 1 MiB, garbage.
    for (req, status) in [
        (
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000)),
            431,
        ),
        (
            "GET / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n".to_string(),
            413,
        ),
        (
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
            411,
        ),
        ("NOT HTTP AT ALL\r\n\r\n".to_string(), 400),
        (
            "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n".to_string(),
            400,
        ),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, false).unwrap();
        assert_eq!(r.status, status, "{}", &req[..req.len().min(40)]);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(read_response(&mut s, &mut buf, false).is_none());
    }
}

#[test]
fn green_server_speaks_http() {
    with_green_server(protocol);
}

#[test]
fn threads_server_speaks_http() {
    with_threads_server(protocol);
}

/// A refused request whose unread rest is still arriving: the server
/// answers and closes, and the client must get the whole answer and then
/// an orderly end, not a reset. (Closing a socket with unread input sends
/// RST, which can destroy the answer in flight: the server must shut its
/// side down and drain before it closes.)
fn refusals_reach_the_client_before_the_close(addr: SocketAddr) {
    for round in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        let head = format!(
            "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(256 * 1024)
        );
        // The server stops reading after 8 KiB: write the rest from
        // another green thread so this one can read the answer meanwhile.
        let mut w = s.try_clone().unwrap();
        let writer = greenhouse::thread::spawn(move || {
            let _ = w.write_all(head.as_bytes());
        });
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, false)
            .unwrap_or_else(|| panic!("round {round}: no answer"));
        assert_eq!(r.status, 431, "round {round}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("431"),
            "round {round}"
        );
        let mut rest = [0u8; 64];
        match s.read(&mut rest) {
            Ok(0) => {}
            other => panic!("round {round}: expected an orderly close, got {other:?}"),
        }
        drop(s);
        writer.join().unwrap();
    }
}

#[test]
fn green_server_refusals_arrive_whole() {
    with_green_server(refusals_reach_the_client_before_the_close);
}

#[test]
fn threads_server_refusals_arrive_whole() {
    with_threads_server(refusals_reach_the_client_before_the_close);
}

/// A barrier out of park/unpark: `arrive` counts this thread in (also when
/// it unwinds first, so a failing client fails the test instead of hanging
/// the others) and `wait` returns once all `n` have arrived.
struct Gate {
    n: usize,
    arrived: AtomicUsize,
    waiting: Mutex<Vec<greenhouse::thread::Thread>>,
}

impl Gate {
    fn arrive(&self) {
        let mut w = self.waiting.lock().unwrap();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            for t in w.drain(..) {
                t.unpark();
            }
        }
    }

    fn wait(&self) {
        self.waiting
            .lock()
            .unwrap()
            .push(greenhouse::thread::current());
        while self.arrived.load(Ordering::SeqCst) < self.n {
            greenhouse::thread::park();
        }
    }
}

/// Arrives at the gate when dropped (normally or while unwinding).
struct Arrival<'a>(&'a Gate);

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.0.arrive();
    }
}

/// All `n` clients open their connection and make a first request; only
/// when all are connected does any make its next ones, so `n` keep-alive
/// connections are open at once.
fn many_keep_alive_clients(addr: SocketAddr, n: usize) {
    let gate = Arc::new(Gate {
        n,
        arrived: AtomicUsize::new(0),
        waiting: Mutex::new(Vec::new()),
    });
    let (index, style, about) = (file("index.html"), file("style.css"), file("about.txt"));
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let gate = gate.clone();
            let (index, style, about) = (index.clone(), style.clone(), about.clone());
            greenhouse::thread::spawn(move || {
                let mut s;
                let mut buf = Vec::new();
                {
                    let _arrival = Arrival(&gate);
                    s = TcpStream::connect(addr).unwrap();
                    assert_eq!(request(&mut s, &mut buf, "GET", "/", "").body, index);
                }
                gate.wait();
                assert_eq!(
                    request(&mut s, &mut buf, "GET", "/style.css", "").body,
                    style
                );
                let r = request(&mut s, &mut buf, "HEAD", "/about.txt", "");
                assert_eq!(r.header("content-length").unwrap(), about.len().to_string());
                assert_eq!(
                    request(&mut s, &mut buf, "GET", "/about.txt", "").body,
                    about
                );
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn green_server_serves_1000_concurrent_keep_alive_connections() {
    with_green_server(|addr| many_keep_alive_clients(addr, 1000));
}

#[test]
fn threads_server_serves_1000_concurrent_keep_alive_connections() {
    with_threads_server(|addr| many_keep_alive_clients(addr, 1000));
}

#[test]
fn resolve_maps_targets_inside_the_root_only() {
    let root = html_root().canonicalize().unwrap();
    assert_eq!(resolve(&root, "/"), Ok(root.join("index.html")));
    assert_eq!(
        resolve(&root, "/index.html?x=1#top"),
        Ok(root.join("index.html"))
    );
    assert_eq!(resolve(&root, "/about%2Etxt"), Ok(root.join("about.txt")));
    assert_eq!(resolve(&root, "/nope"), Err(404));
    assert_eq!(resolve(&root, "/../Cargo.toml"), Err(403));
    assert_eq!(resolve(&root, "/%2E%2E/Cargo.toml"), Err(403));
    assert_eq!(resolve(&root, "/bad%zz"), Err(400));
    assert_eq!(resolve(&root, "/nul%00.html"), Err(400));
    assert_eq!(resolve(&root, "relative"), Err(400));

    // A symlink that leads out of the root is refused too.
    let dir = std::env::temp_dir().join(format!("greenhouse-web-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("secret.txt"), "no").unwrap();
    std::fs::write(dir.join("www/ok.txt"), "yes").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("www/link.txt")).unwrap();
    let www = dir.join("www").canonicalize().unwrap();
    assert_eq!(resolve(&www, "/ok.txt"), Ok(www.join("ok.txt")));
    assert_eq!(resolve(&www, "/link.txt"), Err(403));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mime_types_come_from_the_extension() {
    use web_server::mime_type;
    assert_eq!(mime_type(Path::new("a.HTML")), "text/html; charset=utf-8");
    assert_eq!(mime_type(Path::new("a.png")), "image/png");
    assert_eq!(
        mime_type(Path::new("a.js")),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(mime_type(Path::new("noext")), "application/octet-stream");
}
