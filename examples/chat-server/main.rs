//! Run: `cargo run --example chat-server -- [--addr 127.0.0.1:7890] [--mode green|threads]`,
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
//! compiled twice: with greenhouse's sockets, locks and threads (`--mode
//! green`) and with std's (`--mode threads`, one OS thread per reader and
//! per writer). Moving from one to the other is a change of `use` lines.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[path = "lines.rs"]
pub mod lines;

/// The server on green threads.
pub mod green {
    use greenhouse::net::{TcpListener, TcpStream};
    use greenhouse::sync::{Condvar, Mutex};
    use greenhouse::thread;
    include!("server.rs");
}

/// The same server on OS threads.
pub mod threads {
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Condvar, Mutex};
    use std::thread;
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
    /// Green threads, or one OS thread per reader and writer.
    #[arg(long, value_parser = ["green", "threads"], default_value = "green")]
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
    let r = if cli.mode == "threads" {
        run_threads(cli.addr, cfg)
    } else {
        greenhouse::run(move || run_green(cli.addr, cfg))
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
