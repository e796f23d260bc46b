//! The two network protocols every contender serves the same way: 64-byte
//! echo, and HTTP/1.1 "hello world" parsed with httparse. The blocking
//! connection handler here is shared by greenhouse, may and OS threads (their
//! sockets are all `Read + Write`); tokio's async twin is in `tokio_peer.rs`
//! and uses the same parser.

use std::io::{self, Read, Write};

/// Which protocol a server speaks and the load generator drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// Echo every byte back; the client sends 64-byte messages.
    Echo,
    /// HTTP/1.1 keep-alive, one fixed "Hello, world!" response per request.
    Http,
}

/// Bytes per echo message.
pub const ECHO_LEN: usize = 64;

/// Per-connection read buffer on every server (tokio's echo example uses 1 KiB).
pub const CONN_BUF: usize = 1024;

/// The request the load generator sends to the HTTP servers.
pub const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: peers\r\n\r\n";

/// The response every HTTP server sends.
pub const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: peers\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// The load generator's message for `proto`.
pub fn request(proto: Proto) -> Vec<u8> {
    match proto {
        Proto::Echo => (0..ECHO_LEN).map(|i| b'a' + (i % 26) as u8).collect(),
        Proto::Http => HTTP_REQUEST.to_vec(),
    }
}

/// Counts the complete HTTP requests at the front of `buf`.
/// Returns (requests, bytes they take).
///
/// # Errors
/// `InvalidData` for a malformed request.
pub fn http_requests(buf: &[u8]) -> io::Result<(usize, usize)> {
    let (mut count, mut used) = (0, 0);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[used..]) {
            Ok(httparse::Status::Complete(n)) => {
                count += 1;
                used += n;
            }
            Ok(httparse::Status::Partial) => return Ok((count, used)),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Serves one connection until the peer closes it (blocking style: on a
/// green thread or coroutine each wait switches; on an OS thread it blocks).
///
/// # Errors
/// The socket's errors; `InvalidData` for a malformed or oversized HTTP request.
pub fn serve_conn<S: Read + Write>(mut s: S, proto: Proto) -> io::Result<()> {
    let mut buf = [0u8; CONN_BUF];
    match proto {
        Proto::Echo => loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        },
        Proto::Http => {
            let mut filled = 0;
            loop {
                let n = s.read(&mut buf[filled..])?;
                if n == 0 {
                    return Ok(());
                }
                filled += n;
                let (reqs, used) = http_requests(&buf[..filled])?;
                for _ in 0..reqs {
                    s.write_all(HTTP_RESPONSE)?;
                }
                buf.copy_within(used..filled, 0);
                filled -= used;
                if filled == buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request larger than the buffer",
                    ));
                }
            }
        }
    }
}

/// Load generator side: the length of the complete response at the front of
/// `buf`, if it is all there.
///
/// # Errors
/// A description of a wrong response (bad echo bytes, HTTP status not 200,
/// unparsable HTTP).
pub fn response_len(proto: Proto, req: &[u8], buf: &[u8]) -> Result<Option<usize>, String> {
    match proto {
        Proto::Echo => {
            if buf.len() < ECHO_LEN {
                return Ok(None);
            }
            if &buf[..ECHO_LEN] != req {
                return Err("echo returned different bytes".into());
            }
            Ok(Some(ECHO_LEN))
        }
        Proto::Http => {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(head)) => {
                    if resp.code != Some(200) {
                        return Err(format!("HTTP status {:?}", resp.code));
                    }
                    let len = resp
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| {
                            std::str::from_utf8(h.value)
                                .ok()?
                                .trim()
                                .parse::<usize>()
                                .ok()
                        })
                        .ok_or("response without Content-Length")?;
                    let total = head + len;
                    Ok((buf.len() >= total).then_some(total))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(e) => Err(format!("bad HTTP response: {e}")),
            }
        }
    }
}
