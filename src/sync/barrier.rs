//! `Barrier`, shaped like `std::sync::Barrier`.

use std::fmt;
use std::pin::pin;
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::waiters::{lock, Node, OnCancel, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Token: the barrier released this waiter's generation.
const RELEASED: usize = 1;

struct State {
    /// Arrivals in the current generation.
    arrived: usize,
    waiters: WaitQueue,
}

fn waiters(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// A waiter that leaves before the barrier releases (deadline, kill)
/// withdraws its arrival; once released there is nothing to hand on.
struct Withdraw;

impl OnCancel<State> for Withdraw {
    fn on_cancel(&mut self, _: &mut State, _: &Node, _: usize, _: &mut Wakes) {}

    fn on_leave(&mut self, s: &mut State) {
        s.arrived -= 1;
    }
}

/// Lets `n` threads (green or OS) wait until all of them have reached it,
/// shaped like [`std::sync::Barrier`]; reusable, one generation after
/// another.
///
/// Waiting is a cancellation point. A waiter that gives up — its
/// [`wait_timeout`](Barrier::wait_timeout) expires, or it is killed —
/// withdraws its arrival, so the barrier still needs `n` live arrivals.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use greenhouse::sync::Barrier;
///
/// greenhouse::run(|| {
///     let barrier = Arc::new(Barrier::new(5));
///     let handles: Vec<_> = (0..5).map(|_| {
///         let b = barrier.clone();
///         greenhouse::thread::spawn(move || b.wait().is_leader())
///     }).collect();
///     let leaders = handles.into_iter().map(|h| h.join().unwrap()).filter(|&l| l).count();
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    state: Lock<State>,
    n: usize,
}

/// What [`Barrier::wait`] returns: whether this thread was the leader (the
/// last to arrive; exactly one per generation).
///
/// # Example
///
/// ```
/// let b = greenhouse::sync::Barrier::new(1);
/// assert!(b.wait().is_leader());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one thread of each generation.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::sync::Barrier::new(0).wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` threads. Like std's, `n` of 0 or 1 never waits.
    ///
    /// # Example
    ///
    /// ```
    /// let b = greenhouse::sync::Barrier::new(3);
    /// # let _ = b;
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            state: Lock::new(State {
                arrived: 0,
                waiters: WaitQueue::new(),
            }),
            n,
        }
    }

    /// Arrives and waits until `n` threads have arrived. A cancellation
    /// point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// greenhouse::run(|| {
    ///     let b = Arc::new(greenhouse::sync::Barrier::new(2));
    ///     let b2 = b.clone();
    ///     let h = greenhouse::thread::spawn(move || b2.wait().is_leader());
    ///     let me = b.wait().is_leader();
    ///     assert!(me ^ h.join().unwrap());
    /// });
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        self.arrive(true, None)
            .expect("waiting without a deadline returns only when released")
    }

    /// Arrives and waits at most `timeout`; `None` if the barrier did not
    /// release in time (the arrival is then withdrawn). A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = greenhouse::sync::Barrier::new(2);
    /// assert!(b.wait_timeout(Duration::from_millis(5)).is_none());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Option<BarrierWaitResult> {
        self.arrive(true, Instant::now().checked_add(timeout))
    }

    /// Arrives only if this arrival releases the barrier (the others are all
    /// waiting); otherwise does nothing and returns `None`.
    ///
    /// # Example
    ///
    /// ```
    /// let b = greenhouse::sync::Barrier::new(2);
    /// assert!(b.try_wait().is_none()); // nobody else is waiting
    /// assert!(greenhouse::sync::Barrier::new(1).try_wait().unwrap().is_leader());
    /// ```
    pub fn try_wait(&self) -> Option<BarrierWaitResult> {
        self.arrive(false, None)
    }

    fn arrive(&self, wait: bool, deadline: Option<Instant>) -> Option<BarrierWaitResult> {
        let mut s = lock(&self.state);
        if s.arrived + 1 >= self.n {
            s.arrived = 0;
            let mut wakes = Wakes::new();
            s.waiters.wake_all(RELEASED, &mut wakes);
            drop(s);
            wakes.unpark_all();
            return Some(BarrierWaitResult(true));
        }
        if !wait {
            return None;
        }
        s.arrived += 1;
        let w = pin!(Waiter::new(&self.state, waiters, 0, Withdraw));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref()
            .wait(deadline, WaitReason::Condvar)
            .map(|_| BarrierWaitResult(false))
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}
