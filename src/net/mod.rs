//! Green sockets, shaped like `std::net`: the same types, methods and
//! `io::Error` kinds, but every wait parks the calling green thread (its
//! worker runs other green threads) instead of blocking the OS thread. From a
//! plain OS thread they block like std's.
//!
//! Moving code from OS threads to green threads is a change of `use` lines:
//! `use std::net::{TcpListener, TcpStream}` becomes
//! `use greenhouse::net::{TcpListener, TcpStream}`.
//!
//! Differences from std, each for a reason:
//! - Host names are resolved on the blocking pool (see [`ToSocketAddrs`]) so
//!   `getaddrinfo` never stalls a worker; numeric addresses are parsed in
//!   place.
//! - The descriptor is non-blocking underneath; `set_nonblocking(true)` is the
//!   user's view (operations then return `WouldBlock` instead of parking).
//!   `into_raw_fd` hands the descriptor over still non-blocking; `into_std`
//!   restores the mode the user set, and refuses while clones are alive (they
//!   share the descriptor's mode, and blocking mode would block their workers).
//! - `from_std` and the `From`/`FromRawFd` conversions switch the descriptor
//!   to non-blocking mode, which std handles duplicated from it share.
//!
//! Like std's, `try_clone` duplicates the descriptor (`dup(2)`): each clone
//! owns its own, dropping one closes only that one, and timeouts and
//! non-blocking mode are shared between clones as between std's duplicates.
//!
//! A timed-out read or write returns `WouldBlock`, the kind std's sockets
//! return on Unix when `set_read_timeout`/`set_write_timeout` expire;
//! `connect_timeout` returns `TimedOut`, as std's does.
//!
//! # Example: an echo server, one green thread per connection
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use greenhouse::net::{TcpListener, TcpStream};
//! use greenhouse::thread;
//!
//! greenhouse::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     thread::spawn(move || {
//!         for stream in listener.incoming() {
//!             let stream = stream.unwrap();
//!             thread::spawn(move || {
//!                 let mut out = stream.try_clone().unwrap();
//!                 for line in BufReader::new(stream).lines() {
//!                     writeln!(out, "{}", line.unwrap()).unwrap();
//!                 }
//!             });
//!         }
//!     });
//!     let clients: Vec<_> = (0..100).map(|i| thread::spawn(move || {
//!         let mut s = TcpStream::connect(addr).unwrap();
//!         writeln!(s, "hello {i}").unwrap();
//!         let mut line = String::new();
//!         BufReader::new(s).read_line(&mut line).unwrap();
//!         assert_eq!(line, format!("hello {i}\n"));
//!     })).collect();
//!     for c in clients { c.join().unwrap(); }
//! });
//! ```

mod addr;
mod sock;
mod tcp;
mod udp;
pub mod unix;

pub use addr::ToSocketAddrs;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
