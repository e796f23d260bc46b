//! `Select`: wait on several channel operations at once, crossbeam-style.
//!
//! A select first tries its operations in turn (starting one further each
//! call, for fairness). If none is ready it queues one waiter node per
//! operation in the channels' waiter queues, all sharing one *selection
//! cell*; whoever wakes one of them must first win the cell (CAS), so exactly
//! one operation is chosen. A receive is completed during the select (the
//! message is kept until [`SelectedOperation::recv`] takes it); a send on a
//! buffered channel reserves a slot that [`SelectedOperation::send`] fills.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chan::{self, ReceiverLeaves, State, DELIVERED, READY};
use super::{Inner, Receiver, RecvError, RecvFail, SendError, SendFail, Sender};
use crate::runtime::park::park_until;
use crate::runtime::task::WaitReason;
use crate::sync::waiters::{lock, Node, OnCancel, Spin, Waiter, Wakes, ABORTED, UNDECIDED};

/// What registering an operation found.
enum Reg {
    /// Queued; wait.
    Queued,
    /// Ready under the lock: this select claimed it and completed it.
    Completed,
    /// Ready, but another operation of this select was chosen first.
    Lost,
    /// Claimed but could not complete after all: try again.
    Retry,
}

/// One operation of a select, type-erased.
trait SelectOp {
    /// Completes a receive / reserves a send if possible now.
    fn try_now(&self) -> bool;
    /// See [`Reg`].
    fn register(&self, cell: &AtomicUsize, index: usize) -> Reg;
    /// Unlinks; returns the token if this operation was woken.
    fn take_token(&self) -> Option<usize>;
    /// Unlinks, handing on any token (for the operations not chosen).
    fn abandon(&self);
    /// Acts on the chosen operation's token: true if it is now complete (or
    /// reserved), false to select again.
    fn on_token(&self, token: usize) -> bool;
    /// Gives back a completed receive or reserved send never used.
    fn release(&self);
    fn chan_ptr(&self) -> *const ();
    fn is_send(&self) -> bool;
    /// The concrete operation, for the typed `recv`/`send`.
    fn as_ptr(&self) -> *const ();
}

type Buf<T> = VecDeque<T>;
type RecvWaiter<'a, T> = Waiter<'a, State<T, Buf<T>>, ReceiverLeaves<'a, T, Buf<T>>>;
type SendWaiter<'a, T> = Waiter<'a, State<T, Buf<T>>, SelectSenderLeaves<'a, T>>;

struct RecvOp<'a, T> {
    chan: &'a Inner<T>,
    /// The message (or the disconnection) once this operation is chosen.
    result: UnsafeCell<Option<Result<T, RecvError>>>,
    /// Where a sender puts the message while we wait.
    slot: UnsafeCell<Option<T>>,
    waiter: RecvWaiter<'a, T>,
}

impl<'a, T> RecvOp<'a, T> {
    fn waiter(&self) -> Pin<&RecvWaiter<'a, T>> {
        // SAFETY: operations live in pinned boxes (`Select::ops`) and the
        // waiter is never moved out of its operation.
        unsafe { Pin::new_unchecked(&self.waiter) }
    }

    fn set_result(&self, r: Result<T, RecvError>) {
        // SAFETY: `result` is only touched by the selecting thread (Select
        // is !Send), never while a reference into it is alive.
        unsafe { *self.result.get() = Some(r) };
    }

    fn complete_locked(&self, s: &mut State<T, Buf<T>>, wakes: &mut Wakes) -> bool {
        match self.chan.try_recv_locked(s, wakes) {
            Ok(v) => self.set_result(Ok(v)),
            Err(RecvFail::Disconnected) => self.set_result(Err(RecvError)),
            Err(_) => return false,
        }
        true
    }
}

impl<T> SelectOp for RecvOp<'_, T> {
    fn try_now(&self) -> bool {
        let mut wakes = Wakes::new();
        let done = self.complete_locked(&mut lock(&self.chan.state), &mut wakes);
        wakes.unpark_all();
        done
    }

    fn register(&self, cell: &AtomicUsize, index: usize) -> Reg {
        let mut wakes = Wakes::new();
        let r = {
            let mut s = lock(&self.chan.state);
            let ready = !s.buf.is_empty() || s.tx_gone || s.senders.any(|n| !n.slot().is_null());
            if ready {
                if cell
                    .compare_exchange(UNDECIDED, index, AcqRel, Acquire)
                    .is_err()
                {
                    Reg::Lost
                } else if self.complete_locked(&mut s, &mut wakes) {
                    Reg::Completed
                } else {
                    Reg::Retry
                }
            } else {
                let w = self.waiter();
                w.node().set_select(cell, index);
                w.node().set_slot(self.slot.get() as *mut ());
                w.enqueue(&mut s);
                Inner::<T>::call_senders(&mut s, cell, &mut wakes);
                Reg::Queued
            }
        };
        wakes.unpark_all();
        r
    }

    fn take_token(&self) -> Option<usize> {
        self.waiter().cancel()
    }

    fn abandon(&self) {
        self.waiter().abandon()
    }

    fn on_token(&self, token: usize) -> bool {
        if token == DELIVERED {
            // SAFETY: the sender wrote the slot under the lock before the
            // token, which `take_token` read under the lock.
            let item = unsafe { (*self.slot.get()).take() }.expect("a delivered message");
            self.set_result(Ok(item));
            true
        } else {
            // Disconnected: look again.
            self.try_now()
        }
    }

    fn release(&self) {
        // SAFETY: as in `set_result`.
        if let Some(Ok(item)) = unsafe { (*self.result.get()).take() } {
            let mut wakes = Wakes::new();
            self.chan
                .give_back(&mut lock(&self.chan.state), item, &mut wakes);
            wakes.unpark_all();
        }
    }

    fn chan_ptr(&self) -> *const () {
        self.chan as *const Inner<T> as *const ()
    }

    fn is_send(&self) -> bool {
        false
    }

    fn as_ptr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

/// How a chosen send will go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SendReady {
    No,
    /// A buffer slot is reserved for it (or the channel is unbounded).
    Reserved,
    /// Rendezvous: a receiver was waiting.
    Receiver,
    /// Every receiver is gone: the send will fail.
    Disconnected,
}

/// A select told READY that does not send passes the readiness on.
struct SelectSenderLeaves<'a, T> {
    chan: &'a Inner<T>,
}

impl<T> OnCancel<State<T, Buf<T>>> for SelectSenderLeaves<'_, T> {
    fn on_cancel(&mut self, s: &mut State<T, Buf<T>>, _: &Node, token: usize, wakes: &mut Wakes) {
        if token == READY {
            self.chan.pump(s, wakes);
        }
    }
}

struct SendOp<'a, T> {
    chan: &'a Inner<T>,
    ready: Cell<SendReady>,
    waiter: SendWaiter<'a, T>,
}

impl<'a, T> SendOp<'a, T> {
    fn waiter(&self) -> Pin<&SendWaiter<'a, T>> {
        // SAFETY: as for RecvOp::waiter.
        unsafe { Pin::new_unchecked(&self.waiter) }
    }

    /// Under the lock: can a send go now without waiting? `own` is this
    /// select's cell: its own receive nodes do not count as receivers.
    fn readiness(&self, s: &State<T, Buf<T>>, own: *const AtomicUsize) -> SendReady {
        if s.rx_gone {
            SendReady::Disconnected
        } else if self.chan.cap == Some(0) {
            if s.receivers.any(|n| n.select_cell() != own) {
                SendReady::Receiver
            } else {
                SendReady::No
            }
        } else if self.chan.has_space(s) {
            SendReady::Reserved
        } else {
            SendReady::No
        }
    }

    fn commit(&self, s: &mut State<T, Buf<T>>, r: SendReady) {
        if r == SendReady::Reserved && self.chan.cap.is_some() {
            s.reserved += 1;
        }
        self.ready.set(r);
    }
}

impl<T> SelectOp for SendOp<'_, T> {
    fn try_now(&self) -> bool {
        let mut s = lock(&self.chan.state);
        let r = self.readiness(&s, std::ptr::null());
        if r == SendReady::No {
            return false;
        }
        self.commit(&mut s, r);
        true
    }

    fn register(&self, cell: &AtomicUsize, index: usize) -> Reg {
        let mut s = lock(&self.chan.state);
        let r = self.readiness(&s, cell);
        if r != SendReady::No {
            if cell
                .compare_exchange(UNDECIDED, index, AcqRel, Acquire)
                .is_err()
            {
                return Reg::Lost;
            }
            self.commit(&mut s, r);
            return Reg::Completed;
        }
        let w = self.waiter();
        w.node().set_select(cell, index);
        w.node().set_slot(std::ptr::null_mut());
        w.enqueue(&mut s);
        Reg::Queued
    }

    fn take_token(&self) -> Option<usize> {
        self.waiter().cancel()
    }

    fn abandon(&self) {
        self.waiter().abandon()
    }

    fn on_token(&self, token: usize) -> bool {
        // READY or disconnected: see what holds now. If another sender took
        // the space meanwhile, select again.
        let _ = token;
        self.try_now()
    }

    fn release(&self) {
        if self.ready.replace(SendReady::No) == SendReady::Reserved && self.chan.cap.is_some() {
            let mut wakes = Wakes::new();
            {
                let mut s = lock(&self.chan.state);
                s.reserved -= 1;
                self.chan.pump(&mut s, &mut wakes);
            }
            wakes.unpark_all();
        }
    }

    fn chan_ptr(&self) -> *const () {
        self.chan as *const Inner<T> as *const ()
    }

    fn is_send(&self) -> bool {
        true
    }

    fn as_ptr(&self) -> *const () {
        self as *const Self as *const ()
    }
}

/// Waits on several channel operations — receives and sends — and
/// completes exactly one (crossbeam-channel's `Select`).
///
/// Add operations with [`recv`](Select::recv) and [`send`](Select::send),
/// each returning its index; then [`select`](Select::select) (wait),
/// [`try_select`](Select::try_select) (never wait) or
/// [`select_timeout`](Select::select_timeout) returns the chosen
/// [`SelectedOperation`], which must be finished with the same channel:
/// [`SelectedOperation::recv`] returns the message (already taken from the
/// channel), [`SelectedOperation::send`] sends into a slot reserved for it.
/// A receive on a disconnected channel, and a send to one, are "ready" too:
/// they finish with an error.
///
/// When several operations are ready, successive selects start from a
/// different one, so none is starved. Waiting is a cancellation point; a
/// select cancelled after a message was handed to it gives the message
/// back. A `Select` belongs to the thread that built it (it is not `Send`).
///
/// On a rendezvous channel a chosen send means a receiver was waiting; if
/// that receiver gives up (times out, or picks another operation of its own
/// select) before [`SelectedOperation::send`] runs, the send waits for the
/// next receiver. Buffered channels reserve the slot, so their chosen sends
/// never wait.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use greenhouse::channel::{self, Select};
///
/// greenhouse::run(|| {
///     let (tx1, rx1) = channel::unbounded::<&str>();
///     let (tx2, rx2) = channel::bounded::<u32>(1);
///     greenhouse::thread::spawn(move || {
///         greenhouse::thread::sleep(Duration::from_millis(10));
///         tx1.send("late").unwrap();
///     });
///     let mut sel = Select::new();
///     let recv1 = sel.recv(&rx1);
///     let send2 = sel.send(&tx2);
///     // The send to `tx2` (which has room) is ready at once.
///     let oper = sel.select();
///     assert_eq!(oper.index(), send2);
///     oper.send(&tx2, 7).unwrap();
///     assert_eq!(rx2.recv(), Ok(7));
///
///     // Now only the receive can complete: it waits for the message.
///     let mut sel = Select::new();
///     let recv1 = sel.recv(&rx1);
///     let oper = sel.select();
///     assert_eq!(oper.index(), recv1);
///     assert_eq!(oper.recv(&rx1), Ok("late"));
/// });
/// ```
pub struct Select<'a> {
    ops: Vec<Pin<Box<dyn SelectOp + 'a>>>,
    /// Where the next try starts (fairness).
    next: usize,
    _not_send: PhantomData<*const ()>,
}

impl<'a> Select<'a> {
    /// A select with no operations.
    ///
    /// # Example
    ///
    /// ```
    /// let sel = greenhouse::channel::Select::new();
    /// # drop(sel);
    /// ```
    pub fn new() -> Select<'a> {
        Select {
            ops: Vec::new(),
            next: 0,
            _not_send: PhantomData,
        }
    }

    /// Adds a receive from `r`; returns its index.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded();
    /// tx.send(1).unwrap();
    /// let mut sel = greenhouse::channel::Select::new();
    /// let i = sel.recv(&rx);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), i);
    /// assert_eq!(oper.recv(&rx), Ok(1));
    /// ```
    pub fn recv<T>(&mut self, r: &'a Receiver<T>) -> usize {
        let chan: &'a Inner<T> = &r.chan;
        self.ops.push(Box::pin(RecvOp {
            chan,
            result: UnsafeCell::new(None),
            slot: UnsafeCell::new(None),
            waiter: Waiter::new(
                &chan.state,
                chan::receivers::<T, Buf<T>>,
                0,
                ReceiverLeaves { chan },
            ),
        }));
        self.ops.len() - 1
    }

    /// Adds a send to `s` (the message is given to
    /// [`SelectedOperation::send`]); returns its index.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::bounded(1);
    /// let mut sel = greenhouse::channel::Select::new();
    /// let i = sel.send(&tx);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), i);
    /// oper.send(&tx, "hi").unwrap();
    /// assert_eq!(rx.recv(), Ok("hi"));
    /// ```
    pub fn send<T>(&mut self, s: &'a Sender<T>) -> usize {
        let chan: &'a Inner<T> = &s.chan;
        self.ops.push(Box::pin(SendOp {
            chan,
            ready: Cell::new(SendReady::No),
            waiter: Waiter::new(
                &chan.state,
                chan::senders::<T, Buf<T>>,
                0,
                SelectSenderLeaves { chan },
            ),
        }));
        self.ops.len() - 1
    }

    /// Removes the operation `index` (later indexes keep their numbers).
    /// Removed operations are never chosen.
    ///
    /// # Panics
    /// If `index` was never returned by this select, or was removed already.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// let (tx2, rx2) = greenhouse::channel::unbounded::<u8>();
    /// let mut sel = greenhouse::channel::Select::new();
    /// let a = sel.recv(&rx);
    /// let b = sel.recv(&rx2);
    /// sel.remove(a);
    /// tx.send(1).unwrap();
    /// tx2.send(2).unwrap();
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), b);
    /// assert_eq!(oper.recv(&rx2), Ok(2));
    /// ```
    pub fn remove(&mut self, index: usize) {
        assert!(
            index < self.ops.len() && !self.removed(index),
            "Select::remove: no operation with index {index}"
        );
        self.ops[index] = Box::pin(Removed);
    }

    fn removed(&self, index: usize) -> bool {
        self.ops[index].chan_ptr().is_null()
    }

    /// Waits until one operation can complete and returns it. A
    /// cancellation point.
    ///
    /// # Panics
    /// With no operations (it would wait forever).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let (tx, rx) = greenhouse::channel::rendezvous();
    ///     greenhouse::thread::spawn(move || tx.send(5).unwrap());
    ///     let mut sel = greenhouse::channel::Select::new();
    ///     sel.recv(&rx);
    ///     assert_eq!(sel.select().recv(&rx), Ok(5));
    /// });
    /// ```
    pub fn select(&mut self) -> SelectedOperation<'_> {
        assert!(
            (0..self.ops.len()).any(|i| !self.removed(i)),
            "Select::select with no operations would wait forever"
        );
        let i = self
            .run(Some(None))
            .expect("waiting without a deadline ends with a choice");
        self.chosen(i)
    }

    /// Completes an operation that is ready now, without waiting.
    ///
    /// # Errors
    /// [`TrySelectError`] if none is ready.
    ///
    /// # Example
    ///
    /// ```
    /// let (_tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// let mut sel = greenhouse::channel::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.try_select().is_err());
    /// ```
    pub fn try_select(&mut self) -> Result<SelectedOperation<'_>, TrySelectError> {
        match self.run(None) {
            Some(i) => Ok(self.chosen(i)),
            None => Err(TrySelectError),
        }
    }

    /// Waits at most `timeout` for an operation. A cancellation point.
    ///
    /// # Errors
    /// [`SelectTimeoutError`] if none became ready in time.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// let mut sel = greenhouse::channel::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'_>, SelectTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.select_deadline(d),
            None => Ok(self.select()),
        }
    }

    /// Waits until `deadline` at the latest. A cancellation point.
    ///
    /// # Errors
    /// [`SelectTimeoutError`] if none became ready in time.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = greenhouse::channel::unbounded();
    /// tx.send(()).unwrap();
    /// let mut sel = greenhouse::channel::Select::new();
    /// sel.recv(&rx);
    /// let oper = sel.select_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert_eq!(oper.recv(&rx), Ok(()));
    /// ```
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'_>, SelectTimeoutError> {
        match self.run(Some(Some(deadline))) {
            Some(i) => Ok(self.chosen(i)),
            None => Err(SelectTimeoutError),
        }
    }

    fn chosen(&self, index: usize) -> SelectedOperation<'_> {
        SelectedOperation {
            op: &*self.ops[index],
            index,
            done: false,
        }
    }

    /// The select: `wait` is None to only try, `Some(deadline)` to wait.
    fn run(&mut self, wait: Option<Option<Instant>>) -> Option<usize> {
        let n = self.ops.len();
        if n == 0 {
            if let Some(Some(d)) = wait {
                crate::thread::sleep_until(d);
            }
            return None;
        }
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        for k in 0..n {
            let i = (start + k) % n;
            if self.ops[i].try_now() {
                return Some(i);
            }
        }
        let deadline = wait?;
        loop {
            // Declared before the guard: every node pointing at the cell is
            // unlinked (by the guard) before the cell goes away.
            let cell = AtomicUsize::new(UNDECIDED);
            let guard = AbandonAll { ops: &self.ops };
            let mut completed = None;
            let mut retry = false;
            for k in 0..n {
                let i = (start + k) % n;
                match self.ops[i].register(&cell, i) {
                    Reg::Queued => {}
                    Reg::Completed => {
                        completed = Some(i);
                        break;
                    }
                    Reg::Lost => break,
                    Reg::Retry => {
                        retry = true;
                        break;
                    }
                }
            }
            let chosen = if completed.is_some() || retry {
                None
            } else {
                let mut spin = Spin::new();
                loop {
                    let c = cell.load(Acquire);
                    if c != UNDECIDED {
                        break Some(c);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        if cell
                            .compare_exchange(UNDECIDED, ABORTED, AcqRel, Acquire)
                            .is_ok()
                        {
                            break None;
                        }
                        continue;
                    }
                    if !spin.spin() {
                        park_until(deadline, WaitReason::Channel);
                    }
                }
            };
            // Collect the chosen operation's token; the others leave their
            // queues (losers of the cell were unlinked without a token).
            let mut token = None;
            for i in 0..n {
                if Some(i) == chosen {
                    token = self.ops[i].take_token();
                } else {
                    self.ops[i].abandon();
                }
            }
            std::mem::forget(guard);
            if let Some(i) = completed {
                return Some(i);
            }
            if !retry {
                match (chosen, token) {
                    (Some(i), Some(t)) => {
                        if self.ops[i].on_token(t) {
                            return Some(i);
                        }
                    }
                    (Some(_), None) => unreachable!("a chosen operation always has a token"),
                    (None, _) => {
                        if cell.load(Acquire) == ABORTED {
                            return None;
                        }
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
        }
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("operations", &self.ops.len())
            .finish()
    }
}

/// Unlinks every operation of a select that is unwinding (or leaving).
struct AbandonAll<'s, 'a> {
    ops: &'s [Pin<Box<dyn SelectOp + 'a>>],
}

impl Drop for AbandonAll<'_, '_> {
    fn drop(&mut self) {
        for op in self.ops {
            op.abandon();
        }
    }
}

/// A removed operation: never ready, never queued.
struct Removed;

impl SelectOp for Removed {
    fn try_now(&self) -> bool {
        false
    }
    fn register(&self, _: &AtomicUsize, _: usize) -> Reg {
        Reg::Queued
    }
    fn take_token(&self) -> Option<usize> {
        None
    }
    fn abandon(&self) {}
    fn on_token(&self, _: usize) -> bool {
        false
    }
    fn release(&self) {}
    fn chan_ptr(&self) -> *const () {
        std::ptr::null()
    }
    fn is_send(&self) -> bool {
        false
    }
    fn as_ptr(&self) -> *const () {
        std::ptr::null()
    }
}

/// The operation a [`Select`] chose. Finish it with [`recv`](Self::recv)
/// or [`send`](Self::send) on the same channel; dropping it unfinished gives
/// back the message it received or the slot it reserved.
///
/// # Example
///
/// ```
/// let (tx, rx) = greenhouse::channel::unbounded();
/// tx.send(1).unwrap();
/// let mut sel = greenhouse::channel::Select::new();
/// sel.recv(&rx);
/// drop(sel.select()); // not finished: the message goes back
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct SelectedOperation<'s> {
    op: &'s (dyn SelectOp + 's),
    index: usize,
    done: bool,
}

impl SelectedOperation<'_> {
    /// The index of the chosen operation.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded();
    /// tx.send(0).unwrap();
    /// let mut sel = greenhouse::channel::Select::new();
    /// let i = sel.recv(&rx);
    /// assert_eq!(sel.select().index(), i);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// Finishes a chosen receive: the message, or [`RecvError`] if the
    /// channel was empty and disconnected.
    ///
    /// # Errors
    /// [`RecvError`] as above.
    ///
    /// # Panics
    /// If the chosen operation is not a receive from `r`.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::unbounded::<u8>();
    /// drop(tx);
    /// let mut sel = greenhouse::channel::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.select().recv(&rx).is_err());
    /// ```
    pub fn recv<T>(mut self, r: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            !self.op.is_send() && self.op.chan_ptr() == Arc::as_ptr(&r.chan) as *const (),
            "SelectedOperation::recv: the chosen operation is not a receive from this receiver"
        );
        self.done = true;
        // SAFETY: a receive operation on `r`'s channel is a `RecvOp<'_, T>`
        // for this very T (the channel allocation fixes T); lifetimes do not
        // change the layout. `result` is only used by this thread.
        let op = unsafe { &*(self.op.as_ptr() as *const RecvOp<'_, T>) };
        // SAFETY: as in RecvOp::set_result.
        unsafe { (*op.result.get()).take() }.expect("a chosen receive has its result")
    }

    /// Finishes a chosen send: sends `msg` into the slot reserved for it.
    ///
    /// # Errors
    /// [`SendError`] with the message if every receiver is gone.
    ///
    /// # Panics
    /// If the chosen operation is not a send to `s`.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = greenhouse::channel::bounded(1);
    /// drop(rx);
    /// let mut sel = greenhouse::channel::Select::new();
    /// sel.send(&tx);
    /// assert_eq!(sel.select().send(&tx, 3).unwrap_err().0, 3);
    /// ```
    pub fn send<T>(mut self, s: &Sender<T>, msg: T) -> Result<(), SendError<T>> {
        assert!(
            self.op.is_send() && self.op.chan_ptr() == Arc::as_ptr(&s.chan) as *const (),
            "SelectedOperation::send: the chosen operation is not a send to this sender"
        );
        self.done = true;
        // SAFETY: as in `recv`, for a `SendOp<'_, T>`.
        let op = unsafe { &*(self.op.as_ptr() as *const SendOp<'_, T>) };
        match op.ready.replace(SendReady::No) {
            SendReady::Reserved => {
                let mut wakes = Wakes::new();
                let r = {
                    let mut st = lock(&op.chan.state);
                    if op.chan.cap.is_some() {
                        st.reserved -= 1;
                    }
                    let r = op.chan.try_send_locked(&mut st, msg, &mut wakes);
                    // Delivered straight to a receiver: the slot we held is
                    // free for a waiting sender.
                    op.chan.pump(&mut st, &mut wakes);
                    r
                };
                wakes.unpark_all();
                r.map_err(|e| match e {
                    SendFail::Full(m) | SendFail::Disconnected(m) | SendFail::Timeout(m) => {
                        SendError(m)
                    }
                })
            }
            SendReady::Disconnected => Err(SendError(msg)),
            SendReady::Receiver | SendReady::No => s.send(msg),
        }
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.op.release();
        }
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish()
    }
}

/// The error of [`Select::try_select`]: no operation was ready.
///
/// # Example
///
/// ```
/// let mut sel = greenhouse::channel::Select::new();
/// let e = sel.try_select().unwrap_err();
/// assert_eq!(e.to_string(), "all operations in select would block");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrySelectError;

impl fmt::Display for TrySelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("all operations in select would block")
    }
}

impl std::error::Error for TrySelectError {}

/// The error of [`Select::select_timeout`]: no operation became ready in
/// time.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let (_tx, rx) = greenhouse::channel::unbounded::<u8>();
/// let mut sel = greenhouse::channel::Select::new();
/// sel.recv(&rx);
/// let e = sel.select_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(e.to_string(), "timed out waiting on select");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectTimeoutError;

impl fmt::Display for SelectTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting on select")
    }
}

impl std::error::Error for SelectTimeoutError {}
