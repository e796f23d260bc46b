//! gevent's queues: [`Queue`] (FIFO), [`LifoQueue`] and [`PriorityQueue`],
//! with `maxsize`, `task_done` and `join` (Python's `queue.Queue`, gevent's
//! `JoinableQueue`).
//!
//! A queue is one shared object: clones are handles to the same queue, any
//! green thread or OS thread may put and get. Unlike a
//! [`channel`](crate::channel), a queue has no ends to drop: it never
//! disconnects. `put` waits while the queue holds `maxsize` items; `get`
//! waits while it is empty. Both are FIFO among waiters, come as `try_` and
//! with a timeout, and are cancellation points (a getter killed just after
//! an item was handed to it gives the item back).
//!
//! Every item put counts as an unfinished task until a consumer calls
//! [`task_done`](GenericQueue::task_done) for it; [`join`](GenericQueue::join) waits until
//! none is unfinished.
//!
//! # Example
//!
//! The seeds' teacher roll-call: the teacher calls names through a queue, a
//! helper answers until told to stop.
//!
//! ```
//! use greenhouse::queue::Queue;
//!
//! greenhouse::run(|| {
//!     let calls: Queue<&str> = Queue::new();
//!     let answers: Queue<String> = Queue::new();
//!     let (c, a) = (calls.clone(), answers.clone());
//!     let helper = greenhouse::thread::spawn(move || loop {
//!         let name = c.get();
//!         c.task_done().unwrap();
//!         if name == "exit" { break; }
//!         a.put(format!("{name}: here"));
//!     });
//!     for name in ["Zhang San", "Li Si", "exit"] {
//!         calls.put(name);
//!     }
//!     calls.join(); // every call handled
//!     helper.join().unwrap();
//!     assert_eq!(answers.get(), "Zhang San: here");
//!     assert_eq!(answers.get(), "Li Si: here");
//! });
//! ```

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Buffer, Chan, RecvFail, SendFail};
use crate::runtime::task::WaitReason;
use crate::sync::waiters::{lock, NoHandOff, Waiter, Wakes};

mod sealed {
    pub trait Sealed {}
}

/// The order a [`GenericQueue`] hands items out in: [`Fifo`], [`Lifo`] or
/// [`Priority`]. Sealed: these three are all there is.
///
/// # Example
///
/// ```
/// use greenhouse::queue::{GenericQueue, Lifo};
/// let q: GenericQueue<u8, Lifo> = GenericQueue::new();
/// q.put(1);
/// q.put(2);
/// assert_eq!(q.get(), 2);
/// ```
pub trait Order<T>: sealed::Sealed {
    #[doc(hidden)]
    type Buf: Buffer<T> + Default;
}

/// First in, first out ([`Queue`]).
///
/// # Example
///
/// ```
/// use greenhouse::queue::{Fifo, GenericQueue};
/// let q: GenericQueue<u8, Fifo> = GenericQueue::new();
/// q.put(1);
/// q.put(2);
/// assert_eq!(q.get(), 1);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Fifo;

/// Last in, first out ([`LifoQueue`]).
///
/// # Example
///
/// ```
/// let q = greenhouse::queue::LifoQueue::new();
/// q.put('a');
/// q.put('b');
/// assert_eq!(q.get(), 'b');
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifo;

/// Lowest first, FIFO among equals ([`PriorityQueue`]).
///
/// # Example
///
/// ```
/// let q = greenhouse::queue::PriorityQueue::new();
/// q.put(3);
/// q.put(1);
/// assert_eq!(q.get(), 1);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl sealed::Sealed for Fifo {}
impl sealed::Sealed for Lifo {}
impl sealed::Sealed for Priority {}

impl<T> Order<T> for Fifo {
    type Buf = VecDeque<T>;
}

impl<T> Order<T> for Lifo {
    type Buf = LifoBuf<T>;
}

impl<T: Ord> Order<T> for Priority {
    type Buf = PriorityBuf<T>;
}

#[doc(hidden)]
pub struct LifoBuf<T>(Vec<T>);

impl<T> Default for LifoBuf<T> {
    fn default() -> Self {
        LifoBuf(Vec::new())
    }
}

impl<T> Buffer<T> for LifoBuf<T> {
    fn push(&mut self, item: T) {
        self.0.push(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn unpop(&mut self, item: T) {
        self.0.push(item)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A heap entry: lowest item first; among equal items, lowest `seq` first.
struct Entry<T> {
    item: T,
    seq: i64,
}

impl<T: Ord> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap pops the greatest: reverse both keys.
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Entry<T> {}

#[doc(hidden)]
pub struct PriorityBuf<T> {
    heap: BinaryHeap<Entry<T>>,
    /// Sequence of the next put (FIFO among equals).
    next: i64,
    /// Sequence of the next item put back (ahead of every equal item).
    back: i64,
}

impl<T: Ord> Default for PriorityBuf<T> {
    fn default() -> Self {
        PriorityBuf {
            heap: BinaryHeap::new(),
            next: 0,
            back: -1,
        }
    }
}

impl<T: Ord> Buffer<T> for PriorityBuf<T> {
    fn push(&mut self, item: T) {
        self.heap.push(Entry {
            item,
            seq: self.next,
        });
        self.next += 1;
    }
    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|e| e.item)
    }
    fn unpop(&mut self, item: T) {
        self.heap.push(Entry {
            item,
            seq: self.back,
        });
        self.back -= 1;
    }
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// A queue for green threads and OS threads (gevent's `Queue`, with
/// `JoinableQueue`'s `task_done`/`join`) whose items come out in the order
/// `O`. Use it through its aliases: [`Queue`] (FIFO), [`LifoQueue`],
/// [`PriorityQueue`].
///
/// # Example
///
/// ```
/// use greenhouse::queue::Queue;
///
/// greenhouse::run(|| {
///     let q = Queue::with_maxsize(2);
///     let q2 = q.clone();
///     let producer = greenhouse::thread::spawn(move || {
///         for i in 0..5 { q2.put(i); } // waits whenever 2 are queued
///     });
///     let got: Vec<i32> = (0..5).map(|_| q.get()).collect();
///     assert_eq!(got, [0, 1, 2, 3, 4]);
///     producer.join().unwrap();
/// });
/// ```
pub struct GenericQueue<T, O: Order<T>> {
    chan: Arc<Chan<T, O::Buf>>,
}

/// A first-in-first-out queue (gevent's `Queue` and `JoinableQueue`); see
/// [`GenericQueue`] for its methods.
///
/// # Example
///
/// ```
/// let q = greenhouse::queue::Queue::new();
/// q.put("first");
/// q.put("second");
/// assert_eq!(q.get(), "first");
/// ```
pub type Queue<T> = GenericQueue<T, Fifo>;

/// A last-in-first-out queue (gevent's `LifoQueue`); see [`GenericQueue`]
/// for its methods.
///
/// # Example
///
/// ```
/// let q = greenhouse::queue::LifoQueue::new();
/// for i in 0..5 { q.put(i); }
/// let out: Vec<i32> = (0..5).map(|_| q.get()).collect();
/// assert_eq!(out, [4, 3, 2, 1, 0]);
/// ```
pub type LifoQueue<T> = GenericQueue<T, Lifo>;

/// A queue that hands out the lowest item first, and equal items in the
/// order they were put (gevent's `PriorityQueue`, Python's `heapq` order);
/// see [`GenericQueue`] for its methods.
///
/// # Example
///
/// ```
/// let q = greenhouse::queue::PriorityQueue::new();
/// for (prio, name) in [(2, "b"), (1, "a"), (2, "c")] { q.put((prio, name)); }
/// assert_eq!(q.get(), (1, "a"));
/// assert_eq!(q.get(), (2, "b"));
/// assert_eq!(q.get(), (2, "c"));
/// ```
pub type PriorityQueue<T> = GenericQueue<T, Priority>;

impl<T, O: Order<T>> Clone for GenericQueue<T, O> {
    fn clone(&self) -> Self {
        GenericQueue {
            chan: self.chan.clone(),
        }
    }
}

impl<T, O: Order<T>> Default for GenericQueue<T, O> {
    fn default() -> Self {
        GenericQueue::make(None)
    }
}

impl<T, O: Order<T>> GenericQueue<T, O> {
    /// An unbounded queue.
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::<u8>::new();
    /// assert_eq!(q.maxsize(), None);
    /// let lifo = greenhouse::queue::LifoQueue::<u8>::new();
    /// # drop((q, lifo));
    /// ```
    pub fn new() -> Self {
        GenericQueue::make(None)
    }

    /// A queue holding at most `maxsize` items; `put` waits while it is
    /// full. As in Python and gevent, a `maxsize` of 0 means no limit (for a
    /// hand-off with no buffer, use [`crate::channel::rendezvous`]).
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::with_maxsize(1);
    /// q.put(1);
    /// assert!(q.is_full());
    /// assert_eq!(greenhouse::queue::Queue::<u8>::with_maxsize(0).maxsize(), None);
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Self {
        GenericQueue::make(Some(maxsize))
    }

    fn make(maxsize: Option<usize>) -> Self {
        GenericQueue {
            chan: Arc::new(Chan::new(O::Buf::default(), maxsize.filter(|&m| m > 0))),
        }
    }

    /// Adds `item`, waiting while the queue is full. A cancellation point
    /// when it waits (the item is then dropped).
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::new();
    /// q.put("job");
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn put(&self, item: T) {
        if self.chan.send_until(item, None).is_err() {
            unreachable!("a queue never disconnects, and this put has no deadline");
        }
    }

    /// Adds `item` if there is room now (gevent's `put_nowait`).
    ///
    /// # Errors
    /// [`Full`] with the item if the queue is full.
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::with_maxsize(1);
    /// q.try_put(1).unwrap();
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), Full<T>> {
        let mut wakes = Wakes::new();
        let r = {
            let mut s = lock(&self.chan.state);
            self.chan.try_send_locked(&mut s, item, &mut wakes)
        };
        wakes.unpark_all();
        r.map_err(Full::from_fail)
    }

    /// Adds `item`, waiting at most `timeout` for room. A cancellation
    /// point.
    ///
    /// # Errors
    /// [`Full`] with the item if the queue stayed full.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenhouse::queue::Queue::with_maxsize(1);
    /// q.put(1);
    /// assert!(q.put_timeout(2, Duration::from_millis(5)).is_err());
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Full<T>> {
        let deadline = Instant::now().checked_add(timeout);
        self.chan
            .send_until(item, deadline)
            .map_err(Full::from_fail)
    }

    /// Takes the next item, waiting while the queue is empty. A
    /// cancellation point when it waits.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// greenhouse::run(|| {
    ///     let q = greenhouse::queue::Queue::new();
    ///     let q2 = q.clone();
    ///     greenhouse::thread::spawn(move || q2.put(7));
    ///     assert_eq!(q.get(), 7);
    /// });
    /// ```
    pub fn get(&self) -> T {
        match self.chan.recv_until(None) {
            Ok(v) => v,
            Err(_) => unreachable!("a queue never disconnects, and this get has no deadline"),
        }
    }

    /// Takes the next item if there is one now (gevent's `get_nowait`).
    ///
    /// # Errors
    /// [`Empty`] if the queue is empty.
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::<u8>::new();
    /// assert!(q.try_get().is_err());
    /// ```
    pub fn try_get(&self) -> Result<T, Empty> {
        let mut wakes = Wakes::new();
        let r = {
            let mut s = lock(&self.chan.state);
            self.chan.try_recv_locked(&mut s, &mut wakes)
        };
        wakes.unpark_all();
        r.map_err(|_| Empty)
    }

    /// Takes the next item, waiting at most `timeout`. A cancellation point.
    ///
    /// # Errors
    /// [`Empty`] if no item came in time.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenhouse::queue::Queue::<u8>::new();
    /// assert!(q.get_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Empty> {
        let deadline = Instant::now().checked_add(timeout);
        self.chan.recv_until(deadline).map_err(|e| {
            debug_assert_ne!(e, RecvFail::Disconnected);
            Empty
        })
    }

    /// Items in the queue now (gevent's `qsize`).
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::new();
    /// q.put(());
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if the queue holds no item (gevent's `empty`).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::queue::Queue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a `put` would wait now (gevent's `full`).
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::with_maxsize(1);
    /// assert!(!q.is_full());
    /// q.put(0);
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let s = lock(&self.chan.state);
        !self.chan.has_space(&s)
    }

    /// The limit on queued items; `None` if unbounded.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::queue::Queue::<u8>::with_maxsize(3).maxsize(), Some(3));
    /// ```
    pub fn maxsize(&self) -> Option<usize> {
        self.chan.cap
    }

    /// Marks one item taken from the queue as processed. When every item
    /// put has been marked, [`join`](GenericQueue::join) returns.
    ///
    /// # Errors
    /// [`TaskDoneError`] if called more often than items were put (Python's
    /// "task_done() called too many times"); nothing changes then.
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::new();
    /// q.put(1);
    /// q.get();
    /// q.task_done().unwrap();
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.chan.state);
            if s.unfinished == 0 {
                return Err(TaskDoneError);
            }
            s.unfinished -= 1;
            if s.unfinished == 0 {
                s.joiners.wake_all(crate::channel::ALL_DONE, &mut wakes);
            }
        }
        wakes.unpark_all();
        Ok(())
    }

    /// Items put and not yet marked with [`task_done`](GenericQueue::task_done)
    /// (gevent's `unfinished_tasks`).
    ///
    /// # Example
    ///
    /// ```
    /// let q = greenhouse::queue::Queue::new();
    /// q.put('x');
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        lock(&self.chan.state).unfinished
    }

    /// Waits until every item put has been marked done. A cancellation
    /// point.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let q = greenhouse::queue::Queue::new();
    ///     let worker = q.clone();
    ///     greenhouse::thread::spawn(move || loop {
    ///         let _job: u32 = worker.get();
    ///         worker.task_done().unwrap();
    ///     });
    ///     for job in 0..10 { q.put(job); }
    ///     q.join();
    ///     assert_eq!(q.unfinished_tasks(), 0);
    /// });
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Waits at most `timeout` for every item to be marked done; returns
    /// whether they were. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenhouse::queue::Queue::new();
    /// q.put(1);
    /// assert!(!q.join_timeout(Duration::from_millis(5)));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.chan.state);
        if s.unfinished == 0 {
            return true;
        }
        let w = pin!(Waiter::new(
            &self.chan.state,
            crate::channel::joiners::<T, O::Buf>,
            0,
            NoHandOff
        ));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Channel).is_some()
    }
}

impl<T, O: Order<T>> fmt::Debug for GenericQueue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("maxsize", &self.chan.cap)
            .field("unfinished_tasks", &self.unfinished_tasks())
            .finish()
    }
}

/// The error of a `put` that found the queue full (gevent's `queue.Full`);
/// the item comes back.
///
/// # Example
///
/// ```
/// let q = greenhouse::queue::Queue::with_maxsize(1);
/// q.put("a");
/// let e = q.try_put("b").unwrap_err();
/// assert_eq!(e.to_string(), "queue is full");
/// assert_eq!(e.into_inner(), "b");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    fn from_fail(e: SendFail<T>) -> Full<T> {
        match e {
            SendFail::Full(v) | SendFail::Timeout(v) | SendFail::Disconnected(v) => Full(v),
        }
    }

    /// The item that was not put.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::queue::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T> std::error::Error for Full<T> {}

/// The error of a `get` that found the queue empty (gevent's `queue.Empty`).
///
/// # Example
///
/// ```
/// let e = greenhouse::queue::Queue::<u8>::new().try_get().unwrap_err();
/// assert_eq!(e.to_string(), "queue is empty");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Empty;

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is empty")
    }
}

impl std::error::Error for Empty {}

/// The error of [`GenericQueue::task_done`] called more often than items were put.
///
/// # Example
///
/// ```
/// let e = greenhouse::queue::Queue::<u8>::new().task_done().unwrap_err();
/// assert_eq!(e.to_string(), "task_done() called too many times");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}
