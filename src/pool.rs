//! gevent's `Pool` and `Group`: sets of green threads that can be joined and
//! killed together; a [`Pool`] also caps how many run at once.
//!
//! Both are cheap handles (clones share the same set), built on
//! [`crate::thread::spawn`] and, for the pool's bound, [`crate::sync::Semaphore`]
//! (FIFO: spawners waiting for a free slot get one in order).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use greenhouse::pool::Pool;
//!
//! greenhouse::run(|| {
//!     let pool = Pool::new(3);
//!     // Ten "downloads", at most three at a time, results in input order.
//!     let sizes = pool.map(|n: u64| { greenhouse::thread::sleep(Duration::from_millis(5)); n * 100 }, 0..10).unwrap();
//!     assert_eq!(sizes, (0..10).map(|n| n * 100).collect::<Vec<_>>());
//!     assert_eq!(pool.free_count(), 3);
//! });
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::task::{TaskRef, WaitReason};
use crate::sync::lock::Lock;
use crate::sync::waiters::{lock, NoHandOff, Node, WaitQueue, Waiter, Wakes};
use crate::sync::Semaphore;
use crate::thread::{JoinError, JoinHandle};

/// Token handed to joiners when the set becomes empty.
const EMPTY: usize = 1;

struct State {
    next_id: u64,
    /// Members whose closure has not finished (or been dropped unrun); a
    /// pool member stops counting before it gives its permit back, so this
    /// never exceeds the pool's size.
    running: usize,
    /// Members that have not yet given their permit back; `join` waits for
    /// none, so a joined pool has all its slots free.
    alive: usize,
    /// Running members by group-local id, to kill them.
    members: HashMap<u64, TaskRef>,
    /// Members that finished before their spawner recorded them.
    finished_early: HashSet<u64>,
    joiners: WaitQueue,
}

fn joiners(s: &mut State) -> &mut WaitQueue {
    &mut s.joiners
}

struct Inner {
    state: Lock<State>,
    /// The pool's bound: one permit per running member.
    limit: Option<(Semaphore, usize)>,
}

/// Lives in a member's closure: when the closure finishes, unwinds, or is
/// dropped without running (killed before it started), the member leaves
/// the set and gives its permit back.
struct Membership {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        {
            let mut s = lock(&self.inner.state);
            if s.members.remove(&self.id).is_none() {
                s.finished_early.insert(self.id);
            }
            s.running -= 1;
        }
        if let Some((sem, _)) = &self.inner.limit {
            sem.release();
        }
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.inner.state);
            s.alive -= 1;
            if s.alive == 0 {
                s.joiners.wake_all(EMPTY, &mut wakes);
            }
        }
        wakes.unpark_all();
    }
}

/// Indexes of members whose closure has ended, in the order they ended.
struct Completions {
    state: Lock<CompletionState>,
}

struct CompletionState {
    done: VecDeque<usize>,
    waiters: WaitQueue,
}

fn completion_waiters(s: &mut CompletionState) -> &mut WaitQueue {
    &mut s.waiters
}

/// Token: an index was pushed.
const PUSHED: usize = 1;

impl Completions {
    fn new() -> Completions {
        Completions {
            state: Lock::new(CompletionState {
                done: VecDeque::new(),
                waiters: WaitQueue::new(),
            }),
        }
    }

    fn push(&self, i: usize) {
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.state);
            s.done.push_back(i);
            s.waiters.wake_one(PUSHED, &mut wakes);
        }
        wakes.unpark_all();
    }

    fn try_pop(&self) -> Option<usize> {
        lock(&self.state).done.pop_front()
    }

    /// Waits for the next index. A cancellation point.
    fn pop(&self) -> usize {
        loop {
            let mut s = lock(&self.state);
            if let Some(i) = s.done.pop_front() {
                return i;
            }
            // A waiter woken but cancelled wakes the next one: the index
            // stays in `done` for it.
            let pass_on = |s: &mut CompletionState, _: &Node, _: usize, wakes: &mut Wakes| {
                if !s.done.is_empty() {
                    s.waiters.wake_one(PUSHED, wakes);
                }
            };
            let w = pin!(Waiter::new(&self.state, completion_waiters, 0, pass_on));
            w.as_ref().enqueue(&mut s);
            drop(s);
            w.as_ref().wait(None, WaitReason::Join);
        }
    }
}

/// Lives in a member's closure: pushes the member's index to its
/// completions when the closure ends, however it ends.
struct Signal {
    done: Arc<Completions>,
    index: usize,
}

impl Signal {
    fn new(done: &Arc<Completions>, index: usize) -> Signal {
        Signal {
            done: done.clone(),
            index,
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.done.push(self.index);
    }
}

/// What an `imap_unordered` feeder and its members report.
enum Event<R> {
    Spawned(usize, JoinHandle<R>),
    Done(usize),
}

/// Lives in an `imap_unordered` member's closure: reports the member's end,
/// however it ends.
struct DoneEvent<R> {
    tx: crate::channel::Sender<Event<R>>,
    index: usize,
}

impl<R> Drop for DoneEvent<R> {
    fn drop(&mut self) {
        let _ = self.tx.send(Event::Done(self.index));
    }
}

/// The iterator of [`Group::imap_unordered`] and [`Pool::imap_unordered`]:
/// results in the order members finish. Each `next` is a cancellation point.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let group = greenhouse::pool::Group::new();
///     let it: greenhouse::pool::ImapUnordered<i32> = group.imap_unordered(|x: i32| -x, vec![1]);
///     assert_eq!(it.map(Result::unwrap).collect::<Vec<_>>(), [-1]);
/// });
/// ```
pub struct ImapUnordered<R> {
    rx: crate::channel::Receiver<Event<R>>,
    feeder: Option<JoinHandle<()>>,
    /// Members spawned whose end has not been reported yet.
    pending: HashMap<usize, JoinHandle<R>>,
    /// Members whose end was reported before their handle arrived.
    done_early: HashSet<usize>,
}

impl<R> Iterator for ImapUnordered<R> {
    type Item = Result<R, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.rx.recv().ok()? {
                Event::Spawned(i, h) => {
                    if self.done_early.remove(&i) {
                        return Some(h.join());
                    }
                    self.pending.insert(i, h);
                }
                Event::Done(i) => match self.pending.remove(&i) {
                    Some(h) => return Some(h.join()),
                    None => {
                        self.done_early.insert(i);
                    }
                },
            }
        }
    }
}

impl<R> Drop for ImapUnordered<R> {
    fn drop(&mut self) {
        // Stop spawning first, then kill what was spawned and still runs.
        if let Some(feeder) = self.feeder.take() {
            if !feeder.is_finished() {
                feeder.kill();
                let _ = feeder.join();
            }
        }
        for ev in self.rx.try_iter() {
            if let Event::Spawned(_, h) = ev {
                h.kill();
            }
        }
        for h in self.pending.values() {
            h.kill();
        }
    }
}

impl<R> fmt::Debug for ImapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Kills the members a `map` started if the caller unwinds before it has
/// joined them all.
struct KillUnjoined<T> {
    handles: Vec<Option<JoinHandle<T>>>,
}

impl<T> Drop for KillUnjoined<T> {
    fn drop(&mut self) {
        for h in self.handles.iter().flatten() {
            h.kill();
        }
    }
}

/// A set of green threads that can be joined and killed together (gevent's
/// `Group`): [`spawn`](Group::spawn) starts a member, [`join`](Group::join)
/// waits until none is running, [`kill`](Group::kill) ends them all.
/// Unbounded; see [`Pool`] for a capped set.
///
/// Clones are handles to the same set. Members leave the set when they
/// finish, however they finish.
///
/// # Example
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering::SeqCst}};
/// use greenhouse::pool::Group;
///
/// greenhouse::run(|| {
///     let group = Group::new();
///     let done = Arc::new(AtomicUsize::new(0));
///     for _ in 0..10 {
///         let done = done.clone();
///         group.spawn(move || { done.fetch_add(1, SeqCst); });
///     }
///     group.join();
///     assert_eq!(done.load(SeqCst), 10);
///     assert!(group.is_empty());
/// });
/// ```
#[derive(Clone)]
pub struct Group {
    inner: Arc<Inner>,
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Group {
    /// An empty group.
    ///
    /// # Example
    ///
    /// ```
    /// let group = greenhouse::pool::Group::new();
    /// assert_eq!(group.len(), 0);
    /// ```
    pub fn new() -> Group {
        Group::with_limit(None)
    }

    fn with_limit(limit: Option<usize>) -> Group {
        Group {
            inner: Arc::new(Inner {
                state: Lock::new(State {
                    next_id: 0,
                    running: 0,
                    alive: 0,
                    members: HashMap::new(),
                    finished_early: HashSet::new(),
                    joiners: WaitQueue::new(),
                }),
                limit: limit.map(|n| (Semaphore::new(n), n)),
            }),
        }
    }

    /// Spawns `f` as a new member (a green thread of the current runtime)
    /// and returns its handle; joining or dropping the handle does not affect
    /// membership.
    ///
    /// # Panics
    /// As [`crate::thread::spawn`]: outside a green thread, or if no stack
    /// can be mapped.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let group = greenhouse::pool::Group::new();
    ///     let h = group.spawn(|| 6 * 7);
    ///     assert_eq!(h.join().unwrap(), 42);
    /// });
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some((sem, _)) = &self.inner.limit {
            // The permit is given back by the member's Membership. Without a
            // deadline this returns only with a permit.
            let granted = sem.acquire_until(None);
            debug_assert!(granted);
        }
        let id = {
            let mut s = lock(&self.inner.state);
            s.next_id += 1;
            s.running += 1;
            s.alive += 1;
            s.next_id
        };
        let membership = Membership {
            inner: self.inner.clone(),
            id,
        };
        let h = crate::thread::spawn(move || {
            let _membership = membership;
            f()
        });
        let mut s = lock(&self.inner.state);
        if !s.finished_early.remove(&id) {
            s.members.insert(id, h.task().clone());
        }
        h
    }

    /// Runs `f` on every item as members of this set and returns the results
    /// in input order (gevent's `map`). In a [`Pool`], at most its size run at
    /// once: the caller waits for a free slot before each spawn.
    ///
    /// # Errors
    /// The first failure to be noticed (a panic, kill or uncaught timeout of
    /// a member, as [`JoinHandle::join`] reports it; members are checked as
    /// they finish). The members still running are killed and joined first,
    /// so nothing is left behind.
    ///
    /// # Panics
    /// As [`spawn`](Group::spawn).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let group = greenhouse::pool::Group::new();
    ///     let lens = group.map(|s: &str| s.len(), ["a", "bbb", "cc"]).unwrap();
    ///     assert_eq!(lens, [1, 3, 2]);
    /// });
    /// ```
    pub fn map<I, F, R>(&self, f: F, items: I) -> Result<Vec<R>, JoinError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let f = Arc::new(f);
        let done = Arc::new(Completions::new());
        let mut started = KillUnjoined {
            handles: Vec::new(),
        };
        let mut results: Vec<Option<R>> = Vec::new();
        let mut pending = 0;
        // Joins member `i`, which has finished its closure.
        let collect = |i: usize, started: &mut KillUnjoined<R>, results: &mut Vec<Option<R>>| {
            let h = started.handles[i]
                .take()
                .expect("each member completes once");
            match h.join() {
                Ok(v) => {
                    results[i] = Some(v);
                    Ok(())
                }
                Err(e) => {
                    let rest: Vec<_> = started.handles.drain(..).flatten().collect();
                    for h in &rest {
                        h.kill();
                    }
                    for h in rest {
                        let _ = h.join();
                    }
                    Err(e)
                }
            }
        };
        for item in items {
            let (f, signal) = (f.clone(), Signal::new(&done, started.handles.len()));
            started.handles.push(Some(self.spawn(move || {
                let _signal = signal;
                f(item)
            })));
            results.push(None);
            pending += 1;
            // Notice failures while still spawning.
            while let Some(i) = done.try_pop() {
                pending -= 1;
                collect(i, &mut started, &mut results)?;
            }
        }
        while pending > 0 {
            pending -= 1;
            collect(done.pop(), &mut started, &mut results)?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every member joined"))
            .collect())
    }

    /// Runs `f` on every item as members of this set and yields the results
    /// in the order the members finish (gevent's `imap_unordered`). Lazy: a
    /// feeder green thread spawns the members (in a [`Pool`], waiting for
    /// free slots) while the caller consumes results. Dropping the iterator
    /// early stops the feeder and kills the members it started that are
    /// still running.
    ///
    /// Each item is `Ok(result)`, or the member's [`JoinError`] (panic,
    /// kill, uncaught timeout).
    ///
    /// # Panics
    /// As [`spawn`](Group::spawn) (the feeder is a green thread).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(3);
    ///     let order: Vec<u64> = pool
    ///         .imap_unordered(|ms: u64| { greenhouse::thread::sleep(Duration::from_millis(ms)); ms }, [60, 10, 30])
    ///         .map(Result::unwrap)
    ///         .collect();
    ///     assert_eq!(order, [10, 30, 60]);
    /// });
    /// ```
    pub fn imap_unordered<I, F, R>(&self, f: F, items: I) -> ImapUnordered<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = crate::channel::unbounded();
        let group = self.clone();
        let items = items.into_iter();
        let feeder = crate::thread::spawn(move || {
            let f = Arc::new(f);
            for (i, item) in items.enumerate() {
                let f = f.clone();
                let done = DoneEvent {
                    tx: tx.clone(),
                    index: i,
                };
                let h = group.spawn(move || {
                    let _done = done;
                    f(item)
                });
                // The iterator only goes away after killing us, and it
                // drains the channel then: a send cannot be lost.
                let _ = tx.send(Event::Spawned(i, h));
            }
        });
        ImapUnordered {
            rx,
            feeder: Some(feeder),
            pending: HashMap::new(),
            done_early: HashSet::new(),
        }
    }

    /// Waits until no member is running. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let group = greenhouse::pool::Group::new();
    ///     group.spawn(|| greenhouse::thread::sleep(Duration::from_millis(10)));
    ///     group.join();
    ///     assert!(group.is_empty());
    /// });
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Waits at most `timeout` for no member to be running; returns whether
    /// that happened. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let group = greenhouse::pool::Group::new();
    ///     group.spawn(|| greenhouse::thread::sleep(Duration::from_secs(10)));
    ///     assert!(!group.join_timeout(Duration::from_millis(10)));
    ///     group.kill();
    /// });
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.inner.state);
        if s.alive == 0 {
            return true;
        }
        let w = pin!(Waiter::new(&self.inner.state, joiners, 0, NoHandOff));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Join).is_some()
    }

    /// Kills every running member and waits until they are gone (gevent's
    /// `kill`, blocking). Members spawned while it waits are not killed.
    /// A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let group = greenhouse::pool::Group::new();
    ///     let h = group.spawn(|| greenhouse::thread::sleep(Duration::from_secs(60)));
    ///     group.kill();
    ///     assert!(group.is_empty());
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn kill(&self) {
        let tasks: Vec<TaskRef> = lock(&self.inner.state).members.values().cloned().collect();
        for t in &tasks {
            t.kill();
        }
        self.join();
    }

    /// How many members are running.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let group = greenhouse::pool::Group::new();
    ///     let h = group.spawn(|| greenhouse::thread::park());
    ///     assert_eq!(group.len(), 1);
    ///     group.kill();
    ///     assert_eq!(group.len(), 0);
    ///     let _ = h.join();
    /// });
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.inner.state).running
    }

    /// True if no member is running.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::pool::Group::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("running", &self.len())
            .finish()
    }
}

/// A [`Group`] that runs at most `size` members at once (gevent's `Pool`):
/// [`spawn`](Pool::spawn) waits while `size` are running, so a loop that
/// spawns a handler per job never has more than `size` in flight.
///
/// Spawners waiting for a slot get one in FIFO order. Clones are handles to
/// the same pool.
///
/// # Example
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering::SeqCst}};
/// use std::time::Duration;
/// use greenhouse::pool::Pool;
///
/// greenhouse::run(|| {
///     let pool = Pool::new(5);
///     let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
///     for _ in 0..10 {
///         let (now, peak) = (now.clone(), peak.clone());
///         pool.spawn(move || {
///             peak.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
///             greenhouse::thread::sleep(Duration::from_millis(10));
///             now.fetch_sub(1, SeqCst);
///         });
///     }
///     pool.join();
///     assert_eq!(peak.load(SeqCst), 5);
/// });
/// ```
#[derive(Clone)]
pub struct Pool {
    group: Group,
}

impl Pool {
    /// A pool running at most `size` members at once.
    ///
    /// # Panics
    /// If `size` is 0: such a pool could never run anything, and every
    /// `spawn` would wait forever.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = greenhouse::pool::Pool::new(4);
    /// assert_eq!((pool.size(), pool.free_count()), (4, 4));
    /// ```
    pub fn new(size: usize) -> Pool {
        assert!(
            size > 0,
            "greenhouse::pool::Pool::new(0): a pool of size 0 could never run anything"
        );
        Pool {
            group: Group::with_limit(Some(size)),
        }
    }

    fn sem(&self) -> &Semaphore {
        &self
            .group
            .inner
            .limit
            .as_ref()
            .expect("a pool has a limit")
            .0
    }

    /// Spawns `f` as a member, first waiting (parked, FIFO) while `size`
    /// members are running. A cancellation point while it waits.
    ///
    /// # Panics
    /// As [`crate::thread::spawn`].
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(1);
    ///     let a = pool.spawn(|| 1);
    ///     let b = pool.spawn(|| 2); // waits until `a` has finished
    ///     assert_eq!(a.join().unwrap() + b.join().unwrap(), 3);
    /// });
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.group.spawn(f)
    }

    /// [`Group::imap_unordered`] with at most `size` running at once:
    /// results in the order members finish.
    ///
    /// # Panics
    /// As [`spawn`](Pool::spawn).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(2);
    ///     let mut squares: Vec<u32> = pool.imap_unordered(|x: u32| x * x, 1..=4).map(Result::unwrap).collect();
    ///     squares.sort();
    ///     assert_eq!(squares, [1, 4, 9, 16]);
    /// });
    /// ```
    pub fn imap_unordered<I, F, R>(&self, f: F, items: I) -> ImapUnordered<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.group.imap_unordered(f, items)
    }

    /// [`Group::map`] with at most `size` running at once: results in input
    /// order.
    ///
    /// # Errors
    /// As [`Group::map`].
    ///
    /// # Panics
    /// As [`spawn`](Pool::spawn).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(2);
    ///     assert_eq!(pool.map(|x: i32| x * x, vec![3, 1, 2]).unwrap(), [9, 1, 4]);
    /// });
    /// ```
    pub fn map<I, F, R>(&self, f: F, items: I) -> Result<Vec<R>, JoinError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.group.map(f, items)
    }

    /// Waits until no member is running. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(2);
    ///     pool.spawn(|| ());
    ///     pool.join();
    ///     assert_eq!(pool.free_count(), 2);
    /// });
    /// ```
    pub fn join(&self) {
        self.group.join()
    }

    /// Waits at most `timeout` for no member to be running; returns whether
    /// that happened.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhouse::pool::Pool::new(1);
    /// assert!(pool.join_timeout(Duration::from_millis(1))); // empty
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.group.join_timeout(timeout)
    }

    /// Kills every running member and waits until they are gone.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(2);
    ///     pool.spawn(|| greenhouse::thread::park());
    ///     pool.kill();
    ///     assert_eq!(pool.free_count(), 2);
    /// });
    /// ```
    pub fn kill(&self) {
        self.group.kill()
    }

    /// How many more members could start now without waiting (gevent's
    /// `free_count`).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(3);
    ///     let h = pool.spawn(|| greenhouse::thread::park());
    ///     assert_eq!(pool.free_count(), 2);
    ///     pool.kill();
    ///     let _ = h.join();
    /// });
    /// ```
    pub fn free_count(&self) -> usize {
        self.sem().counter()
    }

    /// The most members that run at once.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::pool::Pool::new(7).size(), 7);
    /// ```
    pub fn size(&self) -> usize {
        self.group
            .inner
            .limit
            .as_ref()
            .expect("a pool has a limit")
            .1
    }

    /// True if `size` members are running (a `spawn` would wait).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!greenhouse::pool::Pool::new(1).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Waits until a slot is free, without taking it (gevent's
    /// `wait_available`). A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(1);
    ///     pool.spawn(|| ());
    ///     pool.wait_available();
    ///     assert_eq!(pool.free_count(), 1);
    /// });
    /// ```
    pub fn wait_available(&self) {
        self.sem().wait()
    }

    /// Like [`wait_available`](Pool::wait_available), for at most
    /// `timeout`; returns whether a slot came free.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let pool = greenhouse::pool::Pool::new(1);
    ///     pool.spawn(|| greenhouse::thread::park());
    ///     assert!(!pool.wait_available_timeout(Duration::from_millis(5)));
    ///     pool.kill();
    /// });
    /// ```
    pub fn wait_available_timeout(&self, timeout: Duration) -> bool {
        self.sem().wait_timeout(timeout)
    }

    /// How many members are running.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::pool::Pool::new(2).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// True if no member is running.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::pool::Pool::new(2).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("running", &self.len())
            .field("free", &self.free_count())
            .finish()
    }
}
