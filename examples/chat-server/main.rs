//! Run: `cargo run --example chat-server -- [--addr 127.0.0.1:7890] [--mode green|threads|patched]`,
//! then `nc 127.0.0.1 7890` (or telnet) from a few terminals.
//!
//! A line-protocol chat server. On connect it asks for a nickname; then
//! `/nick NAME`, `/join ROOM` (everyone starts in `lobby`), `/rooms`,
//! `/who`, `/msg NICK text`, `/quit`, `/help`; any other line goes to the
//! room as `[room] nick: text`, with join and leave notices. Nicknames are
//! unique. Bad input — an unknown command, a line over 4 KiB, invalid
//! UTF-8, an empty nickname — gets an `!` error line and the connection
//! stays usable. Idle clients are disconnected; a client that vanishes,
//! even mid-line, frees its nickname and its room is told. Each client
//! has a bounded outbound queue: a client too slow to read its messages
//! is told and disconnected, and the room never waits for it.
//!
//! The server is written once (server.rs) against std-shaped names and
//! compiled three times, each a change of `use` lines:
//! - `--mode green`: greenhouse's sockets, locks, channel and threads;
//! - `--mode threads`: std's (one OS thread per reader and per writer);
//! - `--mode patched`: std's own `TcpListener`/`TcpStream` — the code the
//!   threads mode runs — made green by `greenhouse::monkey::patch_all()`,
//!   with greenhouse's threads, locks and channel. That is gevent's
//!   `patch_all` (which patches `socket`, `threading` and `queue`): hooks
//!   make std's socket calls park the green thread, but no hook can make an
//!   OS thread green, and a std lock or channel waits in a `futex` call
//!   that a hook never sees — a green thread waiting on one would stall
//!   its whole worker.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[path = "lines.rs"]
pub mod lines;

/// The server on green threads.
pub mod green {
    use greenhouse::channel::{bounded, Sender};
    use greenhouse::net::{TcpListener, TcpStream};
    use greenhouse::sync::Mutex;
    use greenhouse::thread;
    include!("server.rs");
}

/// The same server on OS threads.
pub mod threads {
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc::{sync_channel as bounded, SyncSender as Sender};
    use std::sync::Mutex;
    use std::thread;
    include!("server.rs");
}

/// The same server on std's sockets, green through `monkey::patch_all`
/// (call it before [`patched::Server::serve`]; without it every socket call
/// blocks its worker).
pub mod patched {
    use greenhouse::channel::{bounded, Sender};
    use greenhouse::sync::Mutex;
    use greenhouse::thread;
    use std::net::{TcpListener, TcpStream};
    include!("server.rs");
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// A client silent this long is disconnected.
    pub idle_timeout: Duration,
    /// A write to a client that takes this long gives up on it.
    pub write_timeout: Duration,
    /// Longest accepted line, in bytes.
    pub max_line: usize,
    /// Messages queued for a client before it counts as too slow.
    pub queue_len: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            max_line: 4096,
            queue_len: 1024,
        }
    }
}

/// A chat server on green threads or OS threads.
#[derive(Debug, Parser)]
#[command(name = "chat-server")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7890")]
    addr: SocketAddr,
    /// Green threads; one OS thread per reader and writer; or std's sockets
    /// on green threads through `monkey::patch_all`.
    #[arg(long, value_parser = ["green", "threads", "patched"], default_value = "green")]
    mode: String,
    /// Disconnect clients silent for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    idle_timeout: u64,
    /// Messages queued per client before it is disconnected as too slow.
    #[arg(long, default_value_t = 1024)]
    queue_len: usize,
}

fn main() {
    let cli = Cli::parse();
    let cfg = Config {
        idle_timeout: Duration::from_secs(cli.idle_timeout.max(1)),
        queue_len: cli.queue_len.max(1),
        ..Config::default()
    };
    let r = match cli.mode.as_str() {
        "threads" => run_threads(cli.addr, cfg),
        "patched" => greenhouse::monkey::patch_all()
            .and_then(|()| greenhouse::run(move || run_patched(cli.addr, cfg))),
        _ => greenhouse::run(move || run_green(cli.addr, cfg)),
    };
    if let Err(e) = r {
        eprintln!("chat-server: {e}");
        std::process::exit(1);
    }
}

fn run_green(addr: SocketAddr, cfg: Config) -> io::Result<()> {
    let l = greenhouse::net::TcpListener::bind(addr)?;
    println!("chat-server on {} (green threads)", l.local_addr()?);
    green::Server::new(cfg).serve(l)
}

fn run_threads(addr: SocketAddr, cfg: Config) -> io::Result<()> {
    let l = std::net::TcpListener::bind(addr)?;
    println!("chat-server on {} (OS threads)", l.local_addr()?);
    threads::Server::new(cfg).serve(l)
}

/// `patch_all` must have been called.
fn run_patched(addr: SocketAddr, cfg: Config) -> io::Result<()> {
    let l = std::net::TcpListener::bind(addr)?;
    println!(
        "chat-server on {} (std::net on green threads, patched)",
        l.local_addr()?
    );
    patched::Server::new(cfg).serve(l)
}
