//! The libc entry points the monkey layer defines. Each has libc's name and
//! C signature and starts the same way: before `patch_all`, outside green
//! threads, in an `unpatched` section, or reached from hook code itself, it
//! calls libc's definition (`super::real`) and nothing else — or, for the
//! bookkeeping hooks, keeps the descriptor table true and then calls it.
//!
//! None of them unwinds: a green thread cancelled while parked in one gets
//! an error return instead (see `green::Cancelled`).

mod dns;
mod fd;
mod io;
mod poll;
mod sleep;

use std::sync::atomic::Ordering::Relaxed;

/// A hook whose address `patch_all` compares with what the process resolves.
pub(super) use io::recv as probe;

/// Whether `patch_all` has run.
#[inline(always)]
fn patched() -> bool {
    super::PATCHED.load(Relaxed)
}

/// Whether this call should take the green path.
#[inline(always)]
fn green() -> bool {
    patched() && super::green::may_switch()
}
