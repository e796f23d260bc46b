//! The one waiter queue behind every blocking type of [`crate::sync`],
//! [`crate::channel`], [`crate::queue`] and [`crate::pool`]: a FIFO list of
//! waiting green threads and OS threads, with cancellation-safe removal and
//! hand-off.
//!
//! # How a blocking call uses it
//!
//! A type keeps its state and one or more [`WaitQueue`]s behind one
//! [`Lock`] (held for a few instructions, never across a park).
//! A call that has to wait
//!
//! 1. pins a [`Waiter`] on its stack (`std::pin::pin!`);
//! 2. under the lock, re-checks its condition and, if it must still wait,
//!    links the waiter at the back of a queue ([`Waiter::enqueue`]);
//! 3. calls [`Waiter::wait`]: spin briefly, then `park_until` until a waker
//!    hands it a token, the deadline passes, or the caller is cancelled.
//!
//! A waker, under the same lock, unlinks the first waiter
//! ([`WaitQueue::pop`]), may move data through the waiter's slot, sets its
//! token ([`Claimed::wake`]) and unparks it after the lock is released
//! ([`Wakes`]). Tokens mean what the type says: "you own the lock now", "an
//! item is in your slot", "re-check".
//!
//! # Invariants
//!
//! - A node is linked in at most one queue. Only a thread holding that
//!   queue's lock links, unlinks, or reads the links, slot or unparker.
//! - A node's token goes from 0 to non-zero once, set by the thread that
//!   unlinked it, under the lock, after it has taken the node's unparker.
//!   Past that store the waker never touches the node: the waiter may see the
//!   token, return and free the node at once.
//! - **No lost wake-up on cancellation.** A [`Waiter`] dropped while linked
//!   (timeout, kill, `timeout` scope: it unwinds out of `park_until`) unlinks
//!   itself under the lock. If it was already unlinked, it holds a token it
//!   will never act on, and its `on_cancel` hands that token on (the lock to
//!   the next waiter, the item back to the queue, the permit back to the
//!   semaphore, the notification to the next condvar waiter).
//! - **FIFO.** Waiters are woken in the order they were linked; hand-off
//!   types (Mutex, Semaphore, RwLock, full channels) pass ownership to the
//!   head of the queue directly, so a newcomer cannot overtake it.
//! - A *select* node (one of several nodes sharing a selection cell, see
//!   [`crate::channel::Select`]) is claimed by whoever wins the CAS of that
//!   cell; [`WaitQueue::pop`] drops nodes whose selection is already decided
//!   (unlinked, no token) and moves on to the next.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::time::Instant;

use super::lock::{Lock, LockGuard};
use crate::runtime::park::{self, park_until, Unparker, Waitee, WakeHandle};
use crate::runtime::task::WaitReason;

/// The selection cell of a select that has not chosen an operation yet.
pub(crate) const UNDECIDED: usize = usize::MAX;
/// The selection cell of a select that gave up (timeout, or it completed an
/// operation on its own).
pub(crate) const ABORTED: usize = usize::MAX - 1;

/// Takes a type's internal lock.
#[inline]
pub(crate) fn lock<S>(m: &Lock<S>) -> LockGuard<'_, S> {
    m.lock()
}

/// One waiting green thread or OS thread. Lives in the waiter's stack frame
/// (inside a pinned [`Waiter`]) or, for select, in a pinned box.
pub(crate) struct Node {
    prev: Cell<*const Node>,
    next: Cell<*const Node>,
    linked: Cell<bool>,
    /// Who waits (not counted: see [`Waitee`]).
    waitee: Waitee,
    /// What the waiter waits for, in the type's terms (reader or writer,
    /// acquire or just wait...). Fixed while linked.
    tag: Cell<usize>,
    /// Where a waker puts or takes data for this waiter (a channel item).
    slot: Cell<*mut ()>,
    /// The selection cell shared by a select's nodes, or null.
    select: Cell<*const AtomicUsize>,
    /// This node's operation index within its select.
    index: Cell<usize>,
    token: AtomicUsize,
    _pin: PhantomPinned,
}

impl Node {
    #[inline]
    pub(crate) fn new(tag: usize) -> Node {
        Node {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
            waitee: Waitee::current(),
            tag: Cell::new(tag),
            slot: Cell::new(ptr::null_mut()),
            select: Cell::new(ptr::null()),
            index: Cell::new(0),
            token: AtomicUsize::new(0),
            _pin: PhantomPinned,
        }
    }

    /// Makes this node one operation of a select.
    pub(crate) fn set_select(&self, cell: &AtomicUsize, index: usize) {
        self.select.set(cell);
        self.index.set(index);
    }

    pub(crate) fn tag(&self) -> usize {
        self.tag.get()
    }

    /// The selection cell this node belongs to (null if not a select's).
    pub(crate) fn select_cell(&self) -> *const AtomicUsize {
        self.select.get()
    }

    pub(crate) fn slot(&self) -> *mut () {
        self.slot.get()
    }

    pub(crate) fn set_slot(&self, slot: *mut ()) {
        self.slot.set(slot);
    }

    /// The token handed to this node, 0 if none yet.
    pub(crate) fn token(&self) -> usize {
        self.token.load(Acquire)
    }

    #[cfg(test)]
    pub(crate) fn is_linked(&self) -> bool {
        self.linked.get()
    }

    /// Prepares an unlinked node for another wait: clears its token.
    #[inline]
    pub(crate) fn reset(&self) {
        debug_assert!(!self.linked.get());
        self.token.store(0, Relaxed);
    }

    /// Wins the node's select, if it is one. True for plain nodes.
    #[inline]
    fn claim(&self) -> bool {
        let cell = self.select.get();
        if cell.is_null() {
            return true;
        }
        // SAFETY: a select keeps its cell alive until all its nodes are
        // unlinked, and this node is linked (we hold its queue's lock).
        let cell = unsafe { &*cell };
        cell.compare_exchange(UNDECIDED, self.index.get(), AcqRel, Acquire)
            .is_ok()
    }
}

/// Unparkers collected under a lock, to be unparked after it is released
/// (unparking may take other locks or wake another worker; waiters on the
/// waker's own worker are woken at once instead, see
/// [`Waitee::wake_or_unparker`]). Holds the first inline (the common case:
/// one waiter woken) and the rest in a box allocated only when a second one
/// comes.
#[derive(Default)]
pub(crate) struct Wakes {
    first: Option<Unparker>,
    // A boxed Vec keeps `Wakes` two words and its drop a null check, which
    // measured 58 instructions cheaper per ping-pong round trip than a bare
    // Vec (callgrind) on this path that runs for every wait.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<Unparker>>>,
}

impl Wakes {
    #[inline]
    pub(crate) const fn new() -> Wakes {
        Wakes {
            first: None,
            rest: None,
        }
    }

    #[inline]
    fn push(&mut self, u: Unparker) {
        if self.first.is_none() {
            self.first = Some(u);
        } else {
            self.rest.get_or_insert_with(Default::default).push(u);
        }
    }

    /// Unparks everyone collected. Call after releasing the lock.
    #[inline(always)]
    pub(crate) fn unpark_all(self) {
        // Most calls have nothing to do (nobody waiting, or a same-worker
        // waiter already woken): keep that case a test and a branch.
        if self.first.is_some() {
            self.unpark_collected();
        } else {
            // Nothing to drop (`rest` fills only after `first`); skipping
            // the drop glue saves a call on every uncontended operation.
            debug_assert!(self.rest.is_none());
            std::mem::forget(self);
        }
    }

    #[inline(never)]
    fn unpark_collected(self) {
        if let Some(u) = self.first {
            u.unpark();
            if let Some(rest) = self.rest {
                unpark_rest(*rest);
            }
        }
    }
}

#[cold]
fn unpark_rest(rest: Vec<Unparker>) {
    for u in rest {
        u.unpark();
    }
}

/// A FIFO of [`Node`]s, protected by the lock of the state it lives in.
pub(crate) struct WaitQueue {
    head: *const Node,
    tail: *const Node,
    len: usize,
}

// SAFETY: the queue only holds pointers to nodes, which are accessed by
// whoever holds the lock around the queue; a node stays valid while linked
// (its `Waiter` unlinks it before it is freed).
unsafe impl Send for WaitQueue {}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            head: ptr::null(),
            tail: ptr::null(),
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    /// `node` is pinned and unlinked, and stays alive until it is unlinked
    /// (a [`Waiter`] guarantees this by unlinking itself on drop). The caller
    /// holds the lock around this queue.
    pub(crate) unsafe fn push_back(&mut self, node: &Node) {
        debug_assert!(!node.linked.get());
        node.prev.set(self.tail);
        node.next.set(ptr::null());
        if self.tail.is_null() {
            self.head = node;
        } else {
            (*self.tail).next.set(node);
        }
        self.tail = node;
        node.linked.set(true);
        self.len += 1;
    }

    /// Links `node` at the front (a waiter put back ahead of the others).
    ///
    /// # Safety
    /// As for [`push_back`](WaitQueue::push_back).
    pub(crate) unsafe fn push_front(&mut self, node: &Node) {
        debug_assert!(!node.linked.get());
        node.next.set(self.head);
        node.prev.set(ptr::null());
        if self.head.is_null() {
            self.tail = node;
        } else {
            (*self.head).prev.set(node);
        }
        self.head = node;
        node.linked.set(true);
        self.len += 1;
    }

    /// Unlinks a node known to be linked in this queue.
    #[inline]
    fn unlink(&mut self, node: &Node) {
        let prev = node.prev.get();
        let next = node.next.get();
        // SAFETY: linked neighbours are alive (module invariants) and we hold
        // the lock.
        unsafe {
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next.set(next);
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).prev.set(prev);
            }
        }
        node.prev.set(ptr::null());
        node.next.set(ptr::null());
        node.linked.set(false);
        self.len -= 1;
    }

    /// Unlinks `node` if it is linked (here: a node is only ever linked in
    /// the queue its waiter names). Returns whether it was.
    pub(crate) fn remove(&mut self, node: &Node) -> bool {
        if node.linked.get() {
            self.unlink(node);
            true
        } else {
            false
        }
    }

    /// The first waiter, still linked (to look at its tag).
    pub(crate) fn front(&self) -> Option<&Node> {
        // SAFETY: a linked node is alive while we hold the lock (`&self`
        // borrows the locked state).
        unsafe { self.head.as_ref() }
    }

    /// Unlinks the first waiter that can be claimed and returns it; select
    /// nodes whose select has already been decided are unlinked and skipped.
    /// The caller must [`wake`](Claimed::wake) it before releasing the lock.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Claimed> {
        loop {
            // SAFETY: as in `front`.
            let node = unsafe { self.head.as_ref() }?;
            self.unlink(node);
            if node.claim() {
                return Some(Claimed { node });
            }
        }
    }

    /// Unlinks the first claimable waiter whose tag satisfies `pred`,
    /// skipping (and leaving linked) the others.
    pub(crate) fn pop_where(&mut self, mut pred: impl FnMut(&Node) -> bool) -> Option<Claimed> {
        let mut cur = self.head;
        // SAFETY: as in `front`; `next` is read before `cur` is unlinked.
        while let Some(node) = unsafe { cur.as_ref() } {
            cur = node.next.get();
            if pred(node) {
                self.unlink(node);
                if node.claim() {
                    return Some(Claimed { node });
                }
            }
        }
        None
    }

    /// Whether some linked node satisfies `pred` (claimable or not).
    pub(crate) fn any(&self, mut pred: impl FnMut(&Node) -> bool) -> bool {
        let mut cur = self.head;
        // SAFETY: as in `front`.
        while let Some(node) = unsafe { cur.as_ref() } {
            if pred(node) {
                return true;
            }
            cur = node.next.get();
        }
        false
    }

    /// Wakes the first claimable waiter with `token`. Returns whether there
    /// was one.
    pub(crate) fn wake_one(&mut self, token: usize, wakes: &mut Wakes) -> bool {
        match self.pop() {
            Some(c) => {
                c.wake(token, wakes);
                true
            }
            None => false,
        }
    }

    /// Wakes every waiter with `token`; returns how many were woken.
    pub(crate) fn wake_all(&mut self, token: usize, wakes: &mut Wakes) -> usize {
        let mut n = 0;
        while self.wake_one(token, wakes) {
            n += 1;
        }
        n
    }
}

/// A waiter just unlinked by [`WaitQueue::pop`]: the waker may use its slot,
/// then must [`wake`](Claimed::wake) it while still holding the lock.
#[must_use = "a claimed waiter must be woken, or it waits forever"]
pub(crate) struct Claimed {
    node: *const Node,
}

impl Claimed {
    fn node(&self) -> &Node {
        // SAFETY: the node was linked when popped and its waiter cannot free
        // it before it sees a token or takes the lock we hold.
        unsafe { &*self.node }
    }

    pub(crate) fn tag(&self) -> usize {
        self.node().tag.get()
    }

    pub(crate) fn slot(&self) -> *mut () {
        self.node().slot.get()
    }

    /// Puts a claimed plain (not select) waiter back at the front of `q`,
    /// still waiting.
    pub(crate) fn requeue_front(self, q: &mut WaitQueue) {
        let node = self.node();
        debug_assert!(
            node.select.get().is_null(),
            "a claimed select node cannot be requeued"
        );
        // SAFETY: the node was linked in `q` a moment ago and its waiter is
        // still waiting (no token), so it is alive and pinned; we hold the
        // lock.
        unsafe { q.push_front(node) };
    }

    /// Hands `token` (non-zero) to the waiter and wakes it (at once if it
    /// is a green thread of this worker, else once `wakes` is unparked).
    #[inline]
    pub(crate) fn wake(self, token: usize, wakes: &mut Wakes) {
        debug_assert_ne!(token, 0);
        let node = self.node();
        // SAFETY: we hold the lock and the node has no token yet: its
        // waiter has not returned from its wait.
        let handle = unsafe { node.waitee.wake_handle() };
        // Last touch of the node (module invariants).
        node.token.store(token, Release);
        match handle {
            // SAFETY: made just now by this green thread.
            WakeHandle::Local(t) => unsafe { park::unpark_local(t) },
            WakeHandle::Later(u) => wakes.push(u),
        }
    }
}

/// What a [`Waiter`] does with a token it received but will not act on
/// because its caller is unwinding: hand it on. Runs under the lock.
pub(crate) trait OnCancel<S> {
    fn on_cancel(&mut self, state: &mut S, node: &Node, token: usize, wakes: &mut Wakes);

    /// The waiter left its queue without a token (deadline or unwinding),
    /// under the same lock: undo what enqueueing counted (a barrier's
    /// arrival).
    fn on_leave(&mut self, _state: &mut S) {}
}

impl<S, F: FnMut(&mut S, &Node, usize, &mut Wakes)> OnCancel<S> for F {
    fn on_cancel(&mut self, state: &mut S, node: &Node, token: usize, wakes: &mut Wakes) {
        self(state, node, token, wakes)
    }
}

/// Nothing to hand on (waiters that were all woken together, like an
/// event's).
pub(crate) struct NoHandOff;

impl<S> OnCancel<S> for NoHandOff {
    fn on_cancel(&mut self, _: &mut S, _: &Node, _: usize, _: &mut Wakes) {}
}

/// A waiter's registration: a [`Node`] plus what it takes to unlink it
/// again. Pin it on the stack; dropping it (also while unwinding) unlinks it
/// or hands on a token it will not use.
pub(crate) struct Waiter<'a, S, C: OnCancel<S>> {
    lock: &'a Lock<S>,
    queue: fn(&mut S) -> &mut WaitQueue,
    on_cancel: UnsafeCell<C>,
    /// Linked and its token not yet consumed by the caller.
    armed: Cell<bool>,
    node: Node,
}

impl<'a, S, C: OnCancel<S>> Waiter<'a, S, C> {
    /// A waiter for the queue `queue(&mut state)` behind `lock`, waiting for
    /// `tag` (type-specific).
    pub(crate) fn new(
        lock: &'a Lock<S>,
        queue: fn(&mut S) -> &mut WaitQueue,
        tag: usize,
        on_cancel: C,
    ) -> Self {
        Waiter {
            lock,
            queue,
            on_cancel: UnsafeCell::new(on_cancel),
            armed: Cell::new(false),
            node: Node::new(tag),
        }
    }

    pub(crate) fn node(self: Pin<&Self>) -> &Node {
        &self.get_ref().node
    }

    /// Links the waiter at the back of its queue. `state` is the locked
    /// state (the caller holds `lock`).
    pub(crate) fn enqueue(self: Pin<&Self>, state: &mut S) {
        let me = self.get_ref();
        me.node.reset();
        // SAFETY: the node is pinned inside `self`, unlinked (reset asserts
        // it), and `Drop` unlinks it before it is freed; the caller holds the
        // lock.
        unsafe { (me.queue)(state).push_back(&me.node) };
        me.armed.set(true);
    }

    /// Waits for a token: returns it, or `None` once `deadline` has passed
    /// while still linked (the waiter is then unlinked). A cancellation
    /// point: unwinds when the caller is killed or its `timeout` expires, and
    /// the drop of this waiter then hands on any token it got.
    pub(crate) fn wait(
        self: Pin<&Self>,
        deadline: Option<Instant>,
        reason: WaitReason,
    ) -> Option<usize> {
        let me = self.get_ref();
        debug_assert!(me.armed.get(), "wait on a waiter that is not enqueued");
        let mut spin = Spin::new();
        loop {
            let t = me.node.token();
            if t != 0 {
                me.armed.set(false);
                return Some(t);
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return me.give_up();
                }
            }
            if !spin.spin() {
                park_until(deadline, reason);
            }
        }
    }

    /// The deadline passed: unlink, unless a token arrived meanwhile (then
    /// take it: it is ours, and dropping it would lose it).
    fn give_up(&self) -> Option<usize> {
        let mut s = lock(self.lock);
        self.armed.set(false);
        if (self.queue)(&mut s).remove(&self.node) {
            // SAFETY: `on_cancel` is used only here and in `leave`, both
            // called by the waiter's own thread, never re-entrantly.
            unsafe { (*self.on_cancel.get()).on_leave(&mut s) };
            None
        } else {
            // Unlinked by a waker, who set the token before releasing the
            // lock we now hold (0 only for a select node that lost).
            Some(self.node.token()).filter(|&t| t != 0)
        }
    }

    /// What dropping does, without dropping: unlinks the waiter, or hands on
    /// a token it got and will not use. The waiter can be enqueued again.
    pub(crate) fn abandon(self: Pin<&Self>) {
        self.get_ref().leave();
    }

    /// Unlinks the waiter if it is still linked, without waiting. Returns
    /// the token it got if it was already woken (the caller now owns it).
    pub(crate) fn cancel(self: Pin<&Self>) -> Option<usize> {
        let me = self.get_ref();
        if !me.armed.get() {
            return None;
        }
        me.give_up()
    }
}

impl<S, C: OnCancel<S>> Waiter<'_, S, C> {
    #[inline(never)]
    fn leave(&self) {
        if !self.armed.replace(false) {
            return;
        }
        let mut wakes = Wakes::new();
        {
            let mut s = lock(self.lock);
            // SAFETY: `on_cancel` is used only here and in `give_up`, both
            // called by the waiter's own thread, never re-entrantly.
            let on_cancel = unsafe { &mut *self.on_cancel.get() };
            if (self.queue)(&mut s).remove(&self.node) {
                on_cancel.on_leave(&mut s);
            } else {
                // Unlinked by a waker (who set the token before releasing the
                // lock), or, for a select node, dropped because its select
                // was decided elsewhere (no token, nothing to hand on).
                let token = self.node.token();
                if token != 0 {
                    on_cancel.on_cancel(&mut s, &self.node, token, &mut wakes);
                }
            }
        }
        wakes.unpark_all();
    }
}

impl<S, C: OnCancel<S>> Drop for Waiter<'_, S, C> {
    #[inline]
    fn drop(&mut self) {
        // Usually the waiter took its token and is no longer linked.
        if self.armed.get() {
            self.leave();
        }
    }
}

/// A short spin before parking: a waker on another core usually hands over
/// within a few hundred nanoseconds, far sooner than a park and unpark of
/// the OS thread or a cross-worker wake-up.
///
/// A green thread whose worker has other green threads ready yields to them
/// instead (the waker may be one of them: busy-spinning would only delay
/// it); one whose worker has nothing else to run spins busy, as long as
/// another worker exists (the waker then runs elsewhere, or on an OS
/// thread). On a one-worker runtime a green thread only yields. OS threads
/// spin busy, then yield their OS thread.
pub(crate) struct Spin {
    /// Busy rounds left (a few pauses each, the caller re-checking its
    /// condition after every one).
    busy: u32,
    /// Yields left.
    yields: u32,
    /// Decided on the first round.
    started: bool,
    green: bool,
}

impl Spin {
    /// Busy rounds when another thread may run the waker: 128 x 4 pauses,
    /// a few microseconds on current x86 (a pause is 10–40 ns).
    const BUSY_ROUNDS: u32 = 128;
    const PAUSES: u32 = 4;
    /// Yields after the busy rounds (or instead of them).
    const YIELDS: u32 = 2;
    /// Yields of a green thread on a one-worker runtime, where its waker
    /// can only be another green thread of the same worker.
    const YIELDS_ALONE: u32 = 6;

    #[inline]
    pub(crate) fn new() -> Spin {
        Spin {
            busy: 0,
            yields: 0,
            started: false,
            green: false,
        }
    }

    /// Spins or yields once; false when the budget is spent (park now).
    #[inline]
    pub(crate) fn spin(&mut self) -> bool {
        if !self.started {
            self.start();
        }
        if self.busy > 0 && !(self.green && crate::runtime::worker::others_ready()) {
            self.busy -= 1;
            for _ in 0..Self::PAUSES {
                std::hint::spin_loop();
            }
            return true;
        }
        if self.yields == 0 {
            return false;
        }
        self.yields -= 1;
        park::yield_now();
        true
    }

    #[cold]
    fn start(&mut self) {
        self.started = true;
        let (green, alone) = match park::current_task() {
            Some(t) => (true, t.shared.workers.len() == 1),
            None => (false, false),
        };
        self.green = green;
        if alone {
            self.yields = Self::YIELDS_ALONE;
        } else {
            self.busy = Self::BUSY_ROUNDS;
            self.yields = Self::YIELDS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::Arc;
    use std::time::Duration;

    struct State {
        q: WaitQueue,
        handed_on: usize,
    }

    fn q(s: &mut State) -> &mut WaitQueue {
        &mut s.q
    }

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let m = Lock::new(State {
            q: WaitQueue::new(),
            handed_on: 0,
        });
        let a = pin!(Waiter::new(&m, q, 1, NoHandOff));
        let b = pin!(Waiter::new(&m, q, 2, NoHandOff));
        let c = pin!(Waiter::new(&m, q, 3, NoHandOff));
        {
            let mut s = lock(&m);
            a.as_ref().enqueue(&mut s);
            b.as_ref().enqueue(&mut s);
            c.as_ref().enqueue(&mut s);
            assert_eq!(s.q.len(), 3);
        }
        // b leaves (say, its deadline passed).
        assert_eq!(b.as_ref().cancel(), None);
        let mut s = lock(&m);
        assert_eq!(s.q.len(), 2);
        let mut w = Wakes::new();
        let first = s.q.pop().unwrap();
        assert_eq!(first.tag(), 1);
        first.wake(7, &mut w);
        let second = s.q.pop().unwrap();
        assert_eq!(second.tag(), 3);
        second.wake(8, &mut w);
        assert!(s.q.pop().is_none());
        drop(s);
        assert_eq!(a.as_ref().node().token(), 7);
        assert_eq!(c.as_ref().node().token(), 8);
        assert_eq!(a.as_ref().wait(None, WaitReason::Lock), Some(7));
        assert_eq!(c.as_ref().wait(None, WaitReason::Lock), Some(8));
    }

    /// A token handed to a waiter that is then dropped unused (its caller
    /// unwound) is handed on by `on_cancel`; a waiter dropped while still
    /// linked just leaves the queue.
    #[test]
    fn dropped_waiter_hands_on_its_token_or_leaves_the_queue() {
        let m = Lock::new(State {
            q: WaitQueue::new(),
            handed_on: 0,
        });
        let hand_on = |s: &mut State, _: &Node, t: usize, _: &mut Wakes| s.handed_on += t;
        {
            let woken = pin!(Waiter::new(&m, q, 0, hand_on));
            let linked = pin!(Waiter::new(&m, q, 0, hand_on));
            let mut s = lock(&m);
            woken.as_ref().enqueue(&mut s);
            linked.as_ref().enqueue(&mut s);
            let mut w = Wakes::new();
            s.q.pop().unwrap().wake(5, &mut w);
        }
        let s = lock(&m);
        assert_eq!(s.handed_on, 5);
        assert!(s.q.is_empty());
    }

    #[test]
    fn deadline_unlinks_and_returns_none() {
        let m = Lock::new(State {
            q: WaitQueue::new(),
            handed_on: 0,
        });
        let w = pin!(Waiter::new(&m, q, 0, NoHandOff));
        w.as_ref().enqueue(&mut lock(&m));
        let d = Instant::now() + Duration::from_millis(20);
        assert_eq!(w.as_ref().wait(Some(d), WaitReason::Lock), None);
        assert!(Instant::now() >= d);
        assert!(lock(&m).q.is_empty());
    }

    #[test]
    fn os_thread_is_woken_from_another_thread() {
        let m = Arc::new(Lock::new(State {
            q: WaitQueue::new(),
            handed_on: 0,
        }));
        let w = pin!(Waiter::new(&*m, q, 0, NoHandOff));
        w.as_ref().enqueue(&mut lock(&m));
        let m2 = m.clone();
        let t = std::thread::spawn(move || {
            let mut wakes = Wakes::new();
            loop {
                let mut s = lock(&m2);
                if s.q.wake_one(3, &mut wakes) {
                    break;
                }
                drop(s);
                std::thread::yield_now();
            }
            wakes.unpark_all();
        });
        assert_eq!(w.as_ref().wait(None, WaitReason::Lock), Some(3));
        t.join().unwrap();
    }

    #[test]
    fn select_nodes_that_lost_are_skipped() {
        let m = Lock::new(State {
            q: WaitQueue::new(),
            handed_on: 0,
        });
        let cell = AtomicUsize::new(UNDECIDED);
        let a = pin!(Waiter::new(&m, q, 1, NoHandOff));
        let b = pin!(Waiter::new(&m, q, 2, NoHandOff));
        let plain = pin!(Waiter::new(&m, q, 3, NoHandOff));
        a.as_ref().node().set_select(&cell, 0);
        b.as_ref().node().set_select(&cell, 1);
        let mut s = lock(&m);
        a.as_ref().enqueue(&mut s);
        b.as_ref().enqueue(&mut s);
        plain.as_ref().enqueue(&mut s);
        let mut w = Wakes::new();
        // The select's first node wins; its second can no longer be claimed.
        s.q.pop().unwrap().wake(1, &mut w);
        assert_eq!(cell.load(SeqCst), 0);
        let next = s.q.pop().unwrap();
        assert_eq!(next.tag(), 3);
        next.wake(1, &mut w);
        assert!(!b.as_ref().node().is_linked());
        assert_eq!(b.as_ref().node().token(), 0);
        drop(s);
        // b was unlinked without a token: nothing to take or hand on.
        assert_eq!(b.as_ref().cancel(), None);
    }
}
