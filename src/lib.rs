//! greenhouse: greenlet and gevent for Rust.
//!
//! Plain blocking code — `read`, `write`, `accept`, `sleep` in ordinary loops —
//! runs as thousands of green threads on a few OS threads; every wait switches
//! to another green thread. No `async`, no colouring.
//!
//! The layers, bottom to top (see ARCHITECTURE.md):
//!
//! - [`stack`]: guarded, pooled stacks for every coroutine.
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

pub mod stack;
