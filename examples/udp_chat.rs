//! Run: `cargo run --example udp_chat -- --bind 127.0.0.1:7890 --peer 127.0.0.1:7891`
//! (and, in another terminal, the mirror image:
//! `cargo run --example udp_chat -- --bind 127.0.0.1:7891 --peer 127.0.0.1:7890`)
//!
//! The seeds' two-task UDP chat (seed 003 §2.4): one thread receives and
//! prints whatever arrives, another reads the keyboard and sends each line
//! to the peer. Here both are green threads on one runtime: the keyboard
//! reader parks on greenhouse's cooperative stdin and the receiver on the
//! green `UdpSocket`, so neither blocks the other. End of input (Ctrl-D)
//! ends the program.

use std::io;
use std::net::SocketAddr;

use clap::Parser;
use greenhouse::net::UdpSocket;

/// Peer-to-peer chat over UDP.
#[derive(Debug, Parser)]
#[command(name = "udp_chat")]
struct Cli {
    /// Local address to receive on.
    #[arg(long, default_value = "127.0.0.1:7890")]
    bind: SocketAddr,
    /// Where typed lines are sent.
    #[arg(long, default_value = "127.0.0.1:7891")]
    peer: SocketAddr,
}

/// Largest datagram printed whole (the seed's `recvfrom(1024)`, doubled).
const MAX_DATAGRAM: usize = 2048;

/// Runs the chat on `sock`: a green thread prints every datagram received
/// (through `print`, as `[from] text`) while this one sends each line of
/// `lines` to `peer`. Returns when `lines` ends; the receiver is then
/// killed with the runtime (or by the caller).
///
/// # Errors
/// A send error or an input error.
pub fn chat(
    sock: UdpSocket,
    peer: SocketAddr,
    lines: impl Iterator<Item = io::Result<String>>,
    mut print: impl FnMut(String) + Send + 'static,
) -> io::Result<greenhouse::thread::JoinHandle<io::Result<()>>> {
    let rx = sock.try_clone()?;
    let receiver = greenhouse::thread::Builder::new()
        .name("udp-recv".into())
        .spawn(move || {
            let mut buf = [0u8; MAX_DATAGRAM];
            loop {
                let (n, from) = rx.recv_from(&mut buf)?;
                print(format!("[{from}] {}", String::from_utf8_lossy(&buf[..n])));
            }
        })?;
    for line in lines {
        let line = line?;
        if line.len() > MAX_DATAGRAM {
            eprintln!(
                "(line too long for one datagram: {} bytes, max {MAX_DATAGRAM})",
                line.len()
            );
            continue;
        }
        sock.send_to(line.as_bytes(), peer)?;
    }
    Ok(receiver)
}

fn main() {
    let cli = Cli::parse();
    let r = greenhouse::run(move || -> io::Result<()> {
        let sock = UdpSocket::bind(cli.bind)?;
        println!(
            "udp_chat on {}, sending to {} — type lines, Ctrl-D to quit",
            sock.local_addr()?,
            cli.peer
        );
        let receiver = chat(sock, cli.peer, greenhouse::io::stdin().lines(), |msg| {
            println!("{msg}")
        })?;
        receiver.kill();
        Ok(())
    });
    if let Err(e) = r {
        eprintln!("udp_chat: {e}");
        std::process::exit(1);
    }
}
