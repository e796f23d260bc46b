//! greenhouse: greenlet and gevent for Rust.
//!
//! Plain blocking code — `read`, `write`, `accept`, `sleep` in ordinary loops —
//! runs as thousands of green threads on a few OS threads; every wait switches
//! to another green thread. No `async`, no colouring.
//!
//! The layers, bottom to top (see ARCHITECTURE.md):
//!
//! - [`stack`]: guarded, pooled stacks for every coroutine.
//! - [`greenlet`]: explicit `switch()` between stackful coroutines (Python's greenlet).
//! - [`generator`]: `Iterator`s written as closures that `yield_`, with `send`.
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

pub mod generator;
pub mod greenlet;
pub mod stack;
