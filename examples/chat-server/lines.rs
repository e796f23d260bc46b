//! Reading a line protocol safely: lines of at most a given length, UTF-8
//! checked, a client that stops mid-line or idles told apart from one that
//! says something.

use std::io::{self, Read};

/// What the next read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its `\n` / `\r\n`.
    Text(String),
    /// A line longer than the limit (its rest is skipped).
    TooLong,
    /// A line that is not UTF-8.
    BadUtf8,
    /// The peer closed (anything after the last newline is dropped).
    Eof,
    /// No complete line within the read time-out.
    Idle,
}

/// Splits a byte stream into [`Line`]s.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    /// Inside an over-long line: drop bytes up to its newline.
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    /// Lines of at most `max` bytes from `inner`.
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::with_capacity(256),
            max,
            skipping: false,
        }
    }

    /// The next line.
    ///
    /// # Errors
    /// The stream's errors other than a time-out (reported as
    /// [`Line::Idle`]) and an interruption (retried).
    pub fn next_line(&mut self) -> io::Result<Line> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut self.skipping) {
                    continue; // the tail of a line already reported too long
                }
                if line.len() > self.max {
                    return Ok(Line::TooLong);
                }
                return Ok(match String::from_utf8(line) {
                    Ok(s) => Line::Text(s),
                    Err(_) => Line::BadUtf8,
                });
            }
            if self.buf.len() > self.max {
                self.buf.clear();
                if !std::mem::replace(&mut self.skipping, true) {
                    return Ok(Line::TooLong);
                }
            }
            let mut chunk = [0u8; 4096];
            match self.inner.read(&mut chunk) {
                Ok(0) => return Ok(Line::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Line::Idle)
                }
                Err(e) => return Err(e),
            }
        }
    }
}
