//! Run: `cargo run --example web_server -- [--mode green|threads] [--root DIR] [--addr 127.0.0.1:7890]`
//!
//! The seeds' static file server (seed 003 §5: process, thread, gevent and
//! epoll versions of one `./html` server on port 7890), as one program
//! whose handler is written once, against `Read`/`Write`, and runs either
//! on green threads or on one OS thread per connection.
//!
//! GET and HEAD; `/` serves `/index.html` (and a directory its
//! `index.html`); a 404 page; `Content-Length` on every response and
//! keep-alive (HTTP/1.1's default; `Connection: close` honoured); the MIME
//! type from the extension; `..` and anything resolving outside the root
//! refused with 403; request heads over 8 KiB get 431, bodies over 1 MiB
//! get 413; idle connections close after 30 s. A connection the server ends
//! is shut down and drained before it closes (a "lingering close"), so the
//! last answer arrives whole. Works from a browser and curl.

use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

#[path = "../common/mod.rs"]
pub mod common;

use common::mode::{Conn, Green, Listen, Mode, Threads};

/// A static file server on green threads (or OS threads).
#[derive(Debug, Parser)]
#[command(name = "web_server")]
struct Cli {
    /// How connections are served.
    #[arg(long, value_parser = ["green", "threads"], default_value = "green")]
    mode: String,
    /// Directory to serve.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web_server/html"))]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7890")]
    addr: SocketAddr,
    /// Do not print a line per request.
    #[arg(long)]
    quiet: bool,
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The served directory, canonical.
    pub root: PathBuf,
    /// Longest request head (request line and headers).
    pub max_head: usize,
    /// Longest request body (read and discarded).
    pub max_body: u64,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Print `METHOD path status` per request.
    pub log: bool,
}

impl Config {
    /// Settings for serving `root`, with the defaults above.
    ///
    /// # Errors
    /// If `root` is not an existing directory.
    pub fn new(root: &Path) -> io::Result<Config> {
        let root = root
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Config {
            root,
            max_head: 8 * 1024,
            max_body: 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
            log: false,
        })
    }
}

fn main() {
    let cli = Cli::parse();
    let mut cfg = match Config::new(&cli.root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("web_server: {e}");
            std::process::exit(2);
        }
    };
    cfg.log = !cli.quiet;
    let r = if cli.mode == "threads" {
        start::<Threads>(cli.addr, cfg)
    } else {
        start::<Green>(cli.addr, cfg)
    };
    if let Err(e) = r {
        eprintln!("web_server: {e}");
        std::process::exit(1);
    }
}

fn start<M: Mode>(addr: SocketAddr, cfg: Config) -> io::Result<()> {
    M::enter(move || {
        let listener = M::Listener::bind(addr)?;
        println!(
            "serving {} on http://{} ({} mode)",
            cfg.root.display(),
            listener.local_addr()?,
            M::NAME
        );
        serve::<M>(listener, Arc::new(cfg), Arc::new(AtomicBool::new(false)))
    })
}

/// Accepts connections until `stop` is set (checked after each accept),
/// serving each on a thread of mode `M`.
///
/// # Errors
/// If a thread cannot be spawned.
pub fn serve<M: Mode>(
    listener: M::Listener,
    cfg: Arc<Config>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    loop {
        let conn = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match conn {
            Ok((s, _)) => {
                let cfg = cfg.clone();
                M::spawn("http-conn", move || {
                    let _ = handle_connection(s, &cfg);
                })?;
            }
            // Out of descriptors, a connection reset before accept…: the
            // listener itself is fine; pause a little and go on.
            Err(e) => {
                eprintln!("web_server: accept: {e}");
                M::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A parsed request: what the handler needs of it.
struct Request {
    method: String,
    target: String,
    keep_alive: bool,
    body_len: u64,
    chunked: bool,
}

/// Why a request could not be parsed; each is answered, then the
/// connection closes.
enum Bad {
    TooLarge,
    Malformed,
}

/// Serves requests on one connection until the client closes it, asks to,
/// idles too long, or sends something unservable.
///
/// # Errors
/// The connection's I/O errors.
pub fn handle_connection<S: Conn>(mut s: S, cfg: &Config) -> io::Result<()> {
    s.set_read_timeout(Some(cfg.idle_timeout))?;
    let served = serve_requests(&mut s, cfg);
    close_gracefully(&mut s);
    served
}

/// How long a closing connection waits for each read of the client's
/// leftover input, and in all (Apache's and nginx's "lingering close").
const LINGER_READ: Duration = Duration::from_secs(2);
const LINGER_TOTAL: Duration = Duration::from_secs(5);

/// Ends the connection so the client receives everything written to it.
/// Closing a socket whose input was not all read makes the kernel send RST,
/// which can destroy the last answer on its way (a refused request's 431,
/// say, while the oversized head is still arriving). So: send FIN, read
/// and drop what the client still sends until it closes too (or for at
/// most `LINGER_TOTAL`), then close.
fn close_gracefully<S: Conn>(s: &mut S) {
    if s.shutdown(Shutdown::Write).is_err() || s.set_read_timeout(Some(LINGER_READ)).is_err() {
        return;
    }
    let until = Instant::now() + LINGER_TOTAL;
    let mut chunk = [0u8; 16 * 1024];
    while Instant::now() < until {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The request loop of [`handle_connection`]: returns when the connection
/// should close.
fn serve_requests<S: Conn>(s: &mut S, cfg: &Config) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let refuse = |s: &mut S, status, text| {
            if cfg.log {
                println!("- - {status}");
            }
            respond_error(s, status, text, false)
        };
        let req = match read_request(s, &mut buf, cfg)? {
            None => return Ok(()),
            Some(Ok(r)) => r,
            Some(Err(Bad::TooLarge)) => return refuse(s, 431, "Request Header Fields Too Large"),
            Some(Err(Bad::Malformed)) => return refuse(s, 400, "Bad Request"),
        };
        if req.chunked {
            return refuse(s, 411, "Length Required");
        }
        if req.body_len > cfg.max_body {
            return refuse(s, 413, "Content Too Large");
        }
        discard_body(s, &mut buf, req.body_len)?;
        let status = respond(s, &req, cfg)?;
        if cfg.log {
            println!("{} {} {status}", req.method, req.target);
        }
        if !req.keep_alive {
            return Ok(());
        }
    }
}

/// Reads one request head into `buf` (which keeps any bytes after it for
/// the next request). `None` when the client closed or idled out between
/// requests.
fn read_request<S: Conn>(
    s: &mut S,
    buf: &mut Vec<u8>,
    cfg: &Config,
) -> io::Result<Option<Result<Request, Bad>>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(used)) => {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                };
                let connection = header("connection").unwrap_or_default();
                let keep_alive = if req.version == Some(0) {
                    connection.contains("keep-alive")
                } else {
                    !connection.contains("close")
                };
                let body_len = match header("content-length") {
                    None => 0,
                    Some(v) => match v.trim().parse() {
                        Ok(n) => n,
                        Err(_) => return Ok(Some(Err(Bad::Malformed))),
                    },
                };
                let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
                let r = Request {
                    method: req.method.unwrap_or("").to_string(),
                    target: req.path.unwrap_or("").to_string(),
                    keep_alive,
                    body_len,
                    chunked,
                };
                buf.drain(..used);
                return Ok(Some(Ok(r)));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() >= cfg.max_head {
                    return Ok(Some(Err(Bad::TooLarge)));
                }
            }
            Err(httparse::Error::TooManyHeaders) => return Ok(Some(Err(Bad::TooLarge))),
            Err(_) => return Ok(Some(Err(Bad::Malformed))),
        }
        let mut chunk = [0u8; 4096];
        let room = (cfg.max_head + 1 - buf.len()).min(chunk.len());
        match s.read(&mut chunk[..room]) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The idle time-out (std and greenhouse both say WouldBlock).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
}

/// Skips a request body of `len` bytes (part of which may be in `buf`).
fn discard_body<S: Conn>(s: &mut S, buf: &mut Vec<u8>, len: u64) -> io::Result<()> {
    let in_buf = (len as usize).min(buf.len());
    buf.drain(..in_buf);
    let rest = len - in_buf as u64;
    let copied = io::copy(&mut (&mut *s).take(rest), &mut io::sink())?;
    if copied < rest {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// The MIME type for a file name's extension.
pub fn mime_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Where a request target points inside `root`: `Err(403)` for anything
/// that would leave it (`..`, or a symlink out), `Err(404)` for what does
/// not exist. `/` and directories mean their `index.html`.
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path).ok_or(400u16)?;
    if !decoded.starts_with('/') || decoded.contains('\0') {
        return Err(400);
    }
    let mut full = root.to_path_buf();
    for c in Path::new(&decoded).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => full.push(part),
            Component::ParentDir | Component::Prefix(_) => return Err(403),
        }
    }
    if full.is_dir() {
        full.push("index.html");
    }
    let real = full.canonicalize().map_err(|_| 404u16)?;
    if !real.starts_with(root) {
        return Err(403);
    }
    if !real.is_file() {
        return Err(404);
    }
    Ok(real)
}

/// `%XX` decoding; `None` for a bad escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

/// Answers one request; returns the status sent.
fn respond<S: Conn>(s: &mut S, req: &Request, cfg: &Config) -> io::Result<u16> {
    let head_only = req.method == "HEAD";
    if req.method != "GET" && !head_only {
        respond_error(s, 405, "Method Not Allowed", req.keep_alive)?;
        return Ok(405);
    }
    let path = match resolve(&cfg.root, &req.target) {
        Ok(p) => p,
        Err(status) => {
            let page = format!(
                "<!doctype html><title>{status} {r}</title><h1>{status} {r}</h1><p>{}</p>\n",
                html_escape(&req.target),
                r = reason(status)
            );
            send(
                s,
                status,
                "text/html; charset=utf-8",
                page.len() as u64,
                req.keep_alive,
            )?;
            if !head_only {
                s.write_all(page.as_bytes())?;
            }
            return Ok(status);
        }
    };
    let mut file = File::open(&path)?;
    let len = file.metadata()?.len();
    send(s, 200, mime_type(&path), len, req.keep_alive)?;
    if !head_only {
        let sent = io::copy(&mut (&mut file).take(len), s)?;
        if sent < len {
            // The file shrank under us: the promised length cannot be kept.
            return Err(io::Error::other("file shrank while being sent"));
        }
    }
    Ok(200)
}

/// Sends a status line and headers.
fn send<S: Conn>(s: &mut S, status: u16, mime: &str, len: u64, keep_alive: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nServer: greenhouse-web_server\r\nContent-Type: {mime}\r\nContent-Length: {len}\r\nConnection: {}\r\n\r\n",
        reason(status),
        if keep_alive { "keep-alive" } else { "close" }
    );
    s.write_all(head.as_bytes())
}

/// An error response with a short text body.
fn respond_error<S: Conn>(s: &mut S, status: u16, text: &str, keep_alive: bool) -> io::Result<()> {
    let body = format!("{status} {text}\n");
    let extra: &[(&str, &str)] = if status == 405 {
        &[("Allow", "GET, HEAD")]
    } else {
        &[]
    };
    let head = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n{}\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" },
        extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect::<String>()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
