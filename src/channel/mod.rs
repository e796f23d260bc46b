//! Multi-producer multi-consumer channels for green threads and OS threads,
//! shaped like `std::sync::mpsc` and crossbeam-channel.
//!
//! - [`bounded(n)`](bounded): at most `n` buffered messages; `send` waits
//!   while full. [`rendezvous()`](rendezvous) is `bounded(0)`: every `send`
//!   waits for a `recv` to take its message.
//! - [`unbounded()`](unbounded): `send` never waits.
//!
//! [`Sender`] and [`Receiver`] are both cloneable (MPMC). Dropping every
//! sender ends the receivers' iteration (after the buffered messages);
//! dropping every receiver makes `send` fail, giving the message back. The
//! error types are std's (`SendError`, `TrySendError`, `RecvError`,
//! `TryRecvError`, `RecvTimeoutError`) plus [`SendTimeoutError`].
//! [`Select`] waits on several sends and receives at once.
//!
//! Waiting parks the green thread (or blocks the OS thread), is FIFO, and is
//! a cancellation point: a receiver killed after a message was handed to it
//! gives the message back, so nothing is lost.
//!
//! # Example
//!
//! ```
//! use greenhouse::channel;
//!
//! greenhouse::run(|| {
//!     let (tx, rx) = channel::bounded(4);
//!     for id in 0..3 {
//!         let tx = tx.clone();
//!         greenhouse::thread::spawn(move || {
//!             for i in 0..10 {
//!                 tx.send(id * 100 + i).unwrap();
//!             }
//!         });
//!     }
//!     drop(tx); // the receiver's iteration ends when all senders are gone
//!     let mut got: Vec<i32> = rx.iter().collect();
//!     got.sort();
//!     assert_eq!(got.len(), 30);
//! });
//! ```

mod chan;
mod select;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use chan::{joiners, Buffer, Chan, RecvFail, SendFail, ALL_DONE};
pub use select::{Select, SelectTimeoutError, SelectedOperation, TrySelectError};
pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

type Inner<T> = Chan<T, VecDeque<T>>;

/// A channel that buffers at most `cap` messages; `send` waits while it is
/// full. `bounded(0)` is a [`rendezvous`] channel.
///
/// # Example
///
/// ```
/// use greenhouse::channel::{self, TrySendError};
/// let (tx, rx) = channel::bounded(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    pair(Chan::new(VecDeque::with_capacity(cap.min(1024)), Some(cap)))
}

/// A channel without a limit: `send` never waits.
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded();
/// for i in 0..1000 { tx.send(i).unwrap(); }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(Chan::new(VecDeque::new(), None))
}

/// A channel without a buffer: each `send` waits until a `recv` takes its
/// message (a hand-off, like gevent's `Channel` and Go's unbuffered
/// channels).
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let (tx, rx) = greenhouse::channel::rendezvous();
///     let h = greenhouse::thread::spawn(move || rx.recv().unwrap());
///     tx.send("hand-off").unwrap(); // returns once the receiver has it
///     assert_eq!(h.join().unwrap(), "hand-off");
/// });
/// ```
pub fn rendezvous<T>() -> (Sender<T>, Receiver<T>) {
    bounded(0)
}

fn pair<T>(chan: Inner<T>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(chan);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of a channel. Clone it for more producers.
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded();
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// ```
pub struct Sender<T> {
    pub(crate) chan: Arc<Inner<T>>,
}

/// The receiving half of a channel. Clone it for more consumers: each
/// message goes to exactly one receiver.
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded();
/// let rx2 = rx.clone();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv().unwrap() + rx2.recv().unwrap(), 3);
/// ```
pub struct Receiver<T> {
    pub(crate) chan: Arc<Inner<T>>,
}

fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl<T> Sender<T> {
    /// Sends `msg`, waiting while the channel is full. A cancellation point
    /// when it waits (the message is then dropped).
    ///
    /// # Errors
    /// [`SendError`] with the message if every receiver has been dropped.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::bounded(1);
    /// tx.send("a").unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send("b").unwrap_err().0, "b");
    /// ```
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        self.chan.send_until(msg, None).map_err(|e| match e {
            SendFail::Disconnected(m) | SendFail::Full(m) | SendFail::Timeout(m) => SendError(m),
        })
    }

    /// Sends `msg` if that is possible without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the channel is full (for a rendezvous
    /// channel: no receiver is waiting), [`TrySendError::Disconnected`] if
    /// every receiver is gone; both give the message back.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::channel::{self, TrySendError};
    /// let (tx, _rx) = channel::rendezvous::<u8>();
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    /// ```
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let mut wakes = crate::sync::waiters::Wakes::new();
        let r = {
            let mut s = crate::sync::waiters::lock(&self.chan.state);
            self.chan.try_send_locked(&mut s, msg, &mut wakes)
        };
        wakes.unpark_all();
        r.map_err(|e| match e {
            SendFail::Disconnected(m) => TrySendError::Disconnected(m),
            SendFail::Full(m) | SendFail::Timeout(m) => TrySendError::Full(m),
        })
    }

    /// Sends `msg`, waiting at most `timeout` while the channel is full. A
    /// cancellation point.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] if it stayed full,
    /// [`SendTimeoutError::Disconnected`] if every receiver is gone; both
    /// give the message back.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = greenhouse::channel::bounded(0);
    /// let err = tx.send_timeout(5, Duration::from_millis(5)).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), 5);
    /// ```
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(msg, deadline_after(timeout))
    }

    /// Sends `msg`, waiting until `deadline` at the latest. A cancellation
    /// point.
    ///
    /// # Errors
    /// As [`send_timeout`](Sender::send_timeout).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = greenhouse::channel::bounded(1);
    /// tx.send_deadline(1, Instant::now() + Duration::from_millis(5)).unwrap();
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(msg, Some(deadline))
    }

    fn send_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        self.chan.send_until(msg, deadline).map_err(|e| match e {
            SendFail::Disconnected(m) => SendTimeoutError::Disconnected(m),
            SendFail::Full(m) | SendFail::Timeout(m) => SendTimeoutError::Timeout(m),
        })
    }

    /// Messages buffered now.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, _rx) = greenhouse::channel::unbounded();
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if no message is buffered.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, _rx) = greenhouse::channel::unbounded::<()>();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a `send` would wait now (always for a rendezvous channel).
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, _rx) = greenhouse::channel::bounded(1);
    /// tx.send(()).unwrap();
    /// assert!(tx.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let s = crate::sync::waiters::lock(&self.chan.state);
        !self.chan.has_space(&s)
    }

    /// The buffer's limit; `None` for an unbounded channel.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, _rx) = greenhouse::channel::bounded::<u8>(8);
    /// assert_eq!(tx.capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.cap
    }

    /// True if both senders belong to the same channel.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, _rx) = greenhouse::channel::unbounded::<u8>();
    /// assert!(tx.same_channel(&tx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.senders.fetch_add(1, Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, AcqRel) == 1 {
            self.chan.disconnect_senders();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.chan.cap)
            .finish()
    }
}

impl<T> Receiver<T> {
    /// Receives a message, waiting while the channel is empty. A
    /// cancellation point when it waits; a receiver cancelled just after a
    /// message was handed to it gives it back.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded();
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives a message if one is there now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the
    /// channel is empty and every sender is gone.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::channel::{self, TryRecvError};
    /// let (_tx, rx) = channel::unbounded::<u8>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut wakes = crate::sync::waiters::Wakes::new();
        let r = {
            let mut s = crate::sync::waiters::lock(&self.chan.state);
            self.chan.try_recv_locked(&mut s, &mut wakes)
        };
        wakes.unpark_all();
        r.map_err(|e| match e {
            RecvFail::Disconnected => TryRecvError::Disconnected,
            RecvFail::Empty | RecvFail::Timeout => TryRecvError::Empty,
        })
    }

    /// Receives a message, waiting at most `timeout`. A cancellation point.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`]
    /// once the channel is empty and every sender is gone.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhouse::channel::{self, RecvTimeoutError};
    /// let (_tx, rx) = channel::unbounded::<u8>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    /// Receives a message, waiting until `deadline` at the latest. A
    /// cancellation point.
    ///
    /// # Errors
    /// As [`recv_timeout`](Receiver::recv_timeout).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (_tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// assert!(rx.recv_deadline(Instant::now() + Duration::from_millis(1)).is_err());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.chan.recv_until(deadline).map_err(|e| match e {
            RecvFail::Disconnected => RecvTimeoutError::Disconnected,
            RecvFail::Empty | RecvFail::Timeout => RecvTimeoutError::Timeout,
        })
    }

    /// A blocking iterator over messages; ends once the channel is empty and
    /// every sender is gone.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded();
    /// std::thread::spawn(move || for i in 0..3 { tx.send(i).unwrap() });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages there now; never waits.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().sum::<i32>(), 3);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Messages buffered now.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::bounded(2);
    /// tx.send(0).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if no message is buffered.
    ///
    /// # Example
    ///
    /// ```
    /// let (_tx, rx) = greenhouse::channel::bounded::<u8>(2);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the buffer is full.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::bounded(1);
    /// tx.send(0).unwrap();
    /// assert!(rx.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let s = crate::sync::waiters::lock(&self.chan.state);
        !self.chan.has_space(&s)
    }

    /// The buffer's limit; `None` for an unbounded channel.
    ///
    /// # Example
    ///
    /// ```
    /// let (_tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// assert_eq!(rx.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.cap
    }

    /// True if both receivers belong to the same channel.
    ///
    /// # Example
    ///
    /// ```
    /// let (_tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// assert!(rx.same_channel(&rx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.chan.receivers.fetch_add(1, Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, AcqRel) == 1 {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.chan.cap)
            .finish()
    }
}

/// A blocking iterator over a [`Receiver`]'s messages ([`Receiver::iter`]).
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded();
/// tx.send(1).unwrap();
/// drop(tx);
/// let it: greenhouse::channel::Iter<'_, i32> = rx.iter();
/// assert_eq!(it.count(), 1);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// A non-blocking iterator over the messages a [`Receiver`] has now
/// ([`Receiver::try_iter`]).
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded::<u8>();
/// let it: greenhouse::channel::TryIter<'_, u8> = rx.try_iter();
/// assert_eq!(it.count(), 0);
/// # drop(tx);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// A blocking iterator owning a [`Receiver`] (`for msg in rx`).
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded();
/// tx.send("x").unwrap();
/// drop(tx);
/// for msg in rx { assert_eq!(msg, "x"); }
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The error of [`Sender::send_timeout`]: the message comes back.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use greenhouse::channel::{self, SendTimeoutError};
/// let (tx, rx) = channel::bounded(0);
/// drop(rx);
/// assert_eq!(tx.send_timeout(1, Duration::from_millis(1)), Err(SendTimeoutError::Disconnected(1)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the timeout.
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    ///
    /// # Example
    ///
    /// ```
    /// let e = greenhouse::channel::SendTimeoutError::Timeout(3);
    /// assert_eq!(e.into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(m) | SendTimeoutError::Disconnected(m) => m,
        }
    }

    /// True for [`SendTimeoutError::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::channel::SendTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// True for [`SendTimeoutError::Disconnected`].
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::channel::SendTimeoutError::Disconnected(()).is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(e.0)
    }
}
