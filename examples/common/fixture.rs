//! An HTTP server to download from when there is no network: `N` generated
//! files with sizes from 1 KiB to 1 MiB, each response held back by a delay
//! that stands for a real network's round trips, plus the misbehaving routes
//! the downloader's tests need.
//!
//! Routes (GET):
//! - `/files/NAME` — the file (`Content-Length`), after the delay.
//! - `/redirect/NAME` — `302 Found` to `/files/NAME`.
//! - `/chunked/NAME` — the file with `Transfer-Encoding: chunked`.
//! - `/slow/NAME` — headers, then one byte per `slow_interval`.
//! - `/reset` — the connection is reset (RST) after the request is read.
//! - anything else — `404 Not Found`.
//!
//! It is itself a greenhouse program: one green thread per connection on a
//! runtime of one worker, on an OS thread of its own.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use greenhouse::net::{TcpListener, TcpStream};
use sha2::{Digest, Sha256};

/// What the server serves.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// Number of files.
    pub files: usize,
    /// Delay before every response.
    pub delay: Duration,
    /// Seed of the files' sizes and contents.
    pub seed: u64,
    /// Smallest and largest file size.
    pub min_size: u64,
    /// Largest file size.
    pub max_size: u64,
    /// Pause between bytes on `/slow/`.
    pub slow_interval: Duration,
}

impl Default for FixtureConfig {
    fn default() -> Self {
        FixtureConfig {
            files: 200,
            delay: Duration::from_millis(200),
            seed: 0x6772_6565_6e68_6f75,
            min_size: 1024,
            max_size: 1024 * 1024,
            slow_interval: Duration::from_millis(200),
        }
    }
}

/// One served file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Index in the set.
    pub index: usize,
    /// File name (`file-007.bin`).
    pub name: String,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Size of file `index`: log-uniform between the bounds, so most files are
/// small and a few are large, as on a real site.
pub fn file_size(cfg: &FixtureConfig, index: usize) -> u64 {
    let u = (splitmix64(cfg.seed ^ 0x5151 ^ index as u64) >> 11) as f64 / (1u64 << 53) as f64;
    let (lo, hi) = (cfg.min_size as f64, cfg.max_size as f64);
    ((lo.ln() + u * (hi.ln() - lo.ln())).exp() as u64).clamp(cfg.min_size, cfg.max_size)
}

/// Feeds the contents of file `index` (`size` bytes) to `sink` in pieces of
/// at most 64 KiB. Generated, never stored: the server stays small.
pub fn file_contents(
    cfg: &FixtureConfig,
    index: usize,
    size: u64,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let base = splitmix64(cfg.seed ^ ((index as u64) << 32));
    let mut word = 0u64;
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            let v = splitmix64(base ^ word).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
            word += 1;
        }
        sink(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// The name of file `index`.
pub fn file_name(index: usize) -> String {
    format!("file-{index:03}.bin")
}

/// Every file's name, size and checksum.
pub fn file_specs(cfg: &FixtureConfig) -> Vec<FileSpec> {
    (0..cfg.files)
        .map(|index| {
            let size = file_size(cfg, index);
            let mut h = Sha256::new();
            file_contents(cfg, index, size, |b| {
                h.update(b);
                Ok(())
            })
            .expect("hashing cannot fail");
            FileSpec {
                index,
                name: file_name(index),
                size,
                sha256: h.finalize().into(),
            }
        })
        .collect()
}

/// A running fixture server; stopped (and its connections dropped) on drop.
pub struct FixtureServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    specs: Arc<Vec<FileSpec>>,
}

impl FixtureServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    ///
    /// # Errors
    /// If the socket or the runtime cannot be set up.
    pub fn start(cfg: FixtureConfig) -> io::Result<FixtureServer> {
        let specs = Arc::new(file_specs(&cfg));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let rt = greenhouse::runtime::Runtime::builder()
            .workers(1)
            .name_prefix("fixture")
            .build()?;
        let (st, sp) = (stop.clone(), specs.clone());
        let thread = std::thread::Builder::new()
            .name("fixture-server".into())
            .spawn(move || rt.run(move || accept_loop(listener, cfg, sp, st)))?;
        Ok(FixtureServer {
            addr,
            stop,
            thread: Some(thread),
            specs,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The files it serves.
    pub fn specs(&self) -> &[FileSpec] {
        &self.specs
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    cfg: FixtureConfig,
    specs: Arc<Vec<FileSpec>>,
    stop: Arc<AtomicBool>,
) {
    let cfg = Arc::new(cfg);
    while !stop.load(Ordering::SeqCst) {
        let Ok((s, _)) = listener.accept() else {
            continue;
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (cfg, specs) = (cfg.clone(), specs.clone());
        greenhouse::thread::spawn(move || {
            let _ = serve(s, &cfg, &specs);
        });
    }
}

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Serves requests on one connection until it closes.
fn serve(s: TcpStream, cfg: &FixtureConfig, specs: &[FileSpec]) -> io::Result<()> {
    s.set_nodelay(true)?;
    // Headers and chunk framing are formatted into this buffer and sent with
    // the data: many small writes would each be a packet.
    let mut s = io::BufWriter::with_capacity(64 * 1024, s);
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Read one request head.
        let (path, close, used) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(used)) => {
                    let close = req.version == Some(0)
                        || req.headers.iter().any(|h| {
                            h.name.eq_ignore_ascii_case("connection")
                                && h.value.eq_ignore_ascii_case(b"close")
                        });
                    break (req.path.unwrap_or("/").to_string(), close, used);
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                _ => {
                    s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                    return Ok(());
                }
            }
            let mut chunk = [0u8; 4096];
            s.flush()?;
            let n = s.get_mut().read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        buf.drain(..used);

        greenhouse::thread::sleep(cfg.delay);
        let conn = if close { "close" } else { "keep-alive" };
        let file = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|name| specs.iter().find(|f| f.name == name))
        };
        if let Some(f) = file("/files/") {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n",
                f.size
            )?;
            file_contents(cfg, f.index, f.size, |b| s.write_all(b))?;
        } else if let Some(f) = file("/redirect/") {
            write!(
                s,
                "HTTP/1.1 302 Found\r\nLocation: /files/{}\r\nContent-Length: 0\r\nConnection: {conn}\r\n\r\n",
                f.name
            )?;
        } else if let Some(f) = file("/chunked/") {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: {conn}\r\n\r\n"
            )?;
            file_contents(cfg, f.index, f.size, |b| {
                write!(s, "{:x}\r\n", b.len())?;
                s.write_all(b)?;
                s.write_all(b"\r\n")
            })?;
            s.write_all(b"0\r\n\r\n")?;
        } else if let Some(f) = file("/slow/") {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                f.size
            )?;
            file_contents(cfg, f.index, f.size, |b| {
                for byte in b {
                    s.write_all(std::slice::from_ref(byte))?;
                    s.flush()?;
                    greenhouse::thread::sleep(cfg.slow_interval);
                }
                Ok(())
            })?;
            return Ok(());
        } else if path == "/reset" {
            reset(s.into_inner().map_err(|e| e.into_error())?);
            return Ok(());
        } else {
            let body = b"not found\n";
            write!(
                s,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n",
                body.len()
            )?;
            s.write_all(body)?;
        }
        s.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Closes `s` with a reset (RST) instead of an orderly FIN.
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `s` owns an open socket for the duration of the call, and
    // `linger` is a valid `struct linger` whose size is passed. (The
    // downloader test `connection_reset_is_reported` sees the RST.)
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}
