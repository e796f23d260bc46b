//! The channel core shared by [`crate::channel`] and [`crate::queue`]: a
//! buffer and two waiter queues behind one lock, with items handed straight
//! through waiters' slots.
//!
//! # Invariants (all under the lock)
//!
//! - Receivers wait only while the buffer is empty; senders wait only while
//!   it is full (`len + reserved >= cap`; always for a rendezvous channel)
//!   and no receiver is waiting.
//! - A waiting sender's item sits in its slot (an `Option<T>` in its stack
//!   frame) until a receiver takes it (token TAKEN) or the sender leaves;
//!   a waiting receiver's slot is filled by a sender (token DELIVERED).
//!   So an item is always in exactly one place: a sender's slot, the buffer,
//!   or a receiver's slot.
//! - A receiver that unwinds after DELIVERED gives its item back (to the
//!   next waiting receiver, else the front of the buffer); a select that was
//!   told READY but does not send passes the readiness on ([`pump`]). Nothing
//!   is lost and no waiter is left asleep next to work it could do.
//! - FIFO: receivers and senders are served in arrival order; a freed
//!   buffer slot goes to the longest-waiting sender's item.
//! - Select nodes: a sender node of a select carries no item (its slot is
//!   null); it is woken READY and comes back to send.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use crate::runtime::task::WaitReason;
use crate::sync::lock::Lock;
use crate::sync::waiters::{lock, Node, OnCancel, WaitQueue, Waiter, Wakes};

/// Receiver token: an item is in your slot.
pub(crate) const DELIVERED: usize = 1;
/// Sender token: your item was taken.
pub(crate) const TAKEN: usize = 2;
/// The other side is gone: re-check (a sender's item is still in its slot).
pub(crate) const DISCONNECTED: usize = 3;
/// Select sender token: you may send now (space, or a receiver waiting).
pub(crate) const READY: usize = 4;
/// Queue joiners: no unfinished items left.
pub(crate) const ALL_DONE: usize = 5;

/// The order items come out in: FIFO, LIFO or by priority. Public but in a
/// private module (a sealed trait): `queue::Order` names it.
pub trait Buffer<T> {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Takes the next item out.
    fn pop(&mut self) -> Option<T>;
    /// Puts back an item a cancelled receiver had already taken, so it is
    /// the next out where the order allows.
    fn unpop(&mut self, item: T);
    /// Items held.
    fn len(&self) -> usize;
    /// True if no item is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Buffer<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        self.push_back(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn unpop(&mut self, item: T) {
        self.push_front(item)
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

pub(crate) struct State<T, B> {
    pub(crate) buf: B,
    /// Buffer slots promised to selects that chose a send.
    pub(crate) reserved: usize,
    pub(crate) senders: WaitQueue,
    pub(crate) receivers: WaitQueue,
    /// All senders dropped (channels only).
    pub(crate) tx_gone: bool,
    /// All receivers dropped (channels only).
    pub(crate) rx_gone: bool,
    /// Items accepted and not yet marked done (queues' `task_done`).
    pub(crate) unfinished: usize,
    pub(crate) joiners: WaitQueue,
    _t: std::marker::PhantomData<fn() -> T>,
}

pub(crate) fn senders<T, B>(s: &mut State<T, B>) -> &mut WaitQueue {
    &mut s.senders
}

pub(crate) fn receivers<T, B>(s: &mut State<T, B>) -> &mut WaitQueue {
    &mut s.receivers
}

pub(crate) fn joiners<T, B>(s: &mut State<T, B>) -> &mut WaitQueue {
    &mut s.joiners
}

/// Why a send did not happen; the item comes back.
pub(crate) enum SendFail<T> {
    Full(T),
    Disconnected(T),
    Timeout(T),
}

/// Why a receive did not happen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecvFail {
    Empty,
    Disconnected,
    Timeout,
}

pub(crate) struct Chan<T, B> {
    pub(crate) state: Lock<State<T, B>>,
    /// `None`: unbounded.
    pub(crate) cap: Option<usize>,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

/// Moves `item` into the slot of a claimed receiver and wakes it.
fn deliver<T>(r: crate::sync::waiters::Claimed, item: T, wakes: &mut Wakes) {
    // SAFETY: a waiting receiver's slot points to an `Option<T>` (this
    // channel's T) in its frame, alive while it is linked or until it sees
    // its token; we hold the lock and the receiver is claimed, not woken.
    unsafe { *(r.slot() as *mut Option<T>) = Some(item) };
    r.wake(DELIVERED, wakes);
}

/// Takes the item out of a claimed sender's slot (None for a select node).
fn take_from<T>(s: &crate::sync::waiters::Claimed) -> Option<T> {
    let slot = s.slot() as *mut Option<T>;
    if slot.is_null() {
        return None;
    }
    // SAFETY: as in `deliver`, for a waiting sender's slot.
    unsafe { (*slot).take() }
}

impl<T, B: Buffer<T>> Chan<T, B> {
    pub(crate) fn new(buf: B, cap: Option<usize>) -> Chan<T, B> {
        Chan {
            state: Lock::new(State {
                buf,
                reserved: 0,
                senders: WaitQueue::new(),
                receivers: WaitQueue::new(),
                tx_gone: false,
                rx_gone: false,
                unfinished: 0,
                joiners: WaitQueue::new(),
                _t: std::marker::PhantomData,
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    pub(crate) fn has_space(&self, s: &State<T, B>) -> bool {
        match self.cap {
            None => true,
            Some(cap) => s.buf.len() + s.reserved < cap,
        }
    }

    /// Sends without waiting, under the lock.
    pub(crate) fn try_send_locked(
        &self,
        s: &mut State<T, B>,
        item: T,
        wakes: &mut Wakes,
    ) -> Result<(), SendFail<T>> {
        if s.rx_gone {
            return Err(SendFail::Disconnected(item));
        }
        // Receivers wait only on an empty buffer: hand it over directly.
        if let Some(r) = s.receivers.pop() {
            s.unfinished += 1;
            deliver(r, item, wakes);
            return Ok(());
        }
        if self.has_space(s) {
            s.unfinished += 1;
            s.buf.push(item);
            return Ok(());
        }
        Err(SendFail::Full(item))
    }

    /// Receives without waiting, under the lock.
    pub(crate) fn try_recv_locked(
        &self,
        s: &mut State<T, B>,
        wakes: &mut Wakes,
    ) -> Result<T, RecvFail> {
        if let Some(item) = s.buf.pop() {
            // A slot came free: it goes to the longest-waiting sender.
            self.refill(s, wakes);
            return Ok(item);
        }
        // Empty buffer (always, for a rendezvous channel): take straight
        // from the first waiting sender with an item (selects waiting to
        // send carry none; `call_senders` tells them once we wait).
        if let Some(snd) = s.senders.pop_where(|n| !n.slot().is_null()) {
            let item = take_from::<T>(&snd).expect("a sender with an item");
            s.unfinished += 1;
            snd.wake(TAKEN, wakes);
            return Ok(item);
        }
        if s.tx_gone {
            Err(RecvFail::Disconnected)
        } else {
            Err(RecvFail::Empty)
        }
    }

    /// A receiver is about to wait (it is queued, lock still held): a select
    /// waiting to send on this channel (other than the receiver's own
    /// select, `own`) is told to come.
    pub(crate) fn call_senders(s: &mut State<T, B>, own: *const AtomicUsize, wakes: &mut Wakes) {
        if let Some(snd) = s
            .senders
            .pop_where(|n| n.slot().is_null() && n.select_cell() != own)
        {
            snd.wake(READY, wakes);
        }
    }

    /// A buffer slot is free: move the first waiting sender's item in, or
    /// tell a waiting select it may send. True if an item moved.
    fn refill(&self, s: &mut State<T, B>, wakes: &mut Wakes) -> bool {
        if !self.has_space(s) {
            return false;
        }
        match s.senders.pop() {
            Some(snd) => match take_from::<T>(&snd) {
                Some(item) => {
                    s.unfinished += 1;
                    s.buf.push(item);
                    snd.wake(TAKEN, wakes);
                    true
                }
                None => {
                    snd.wake(READY, wakes);
                    false
                }
            },
            None => false,
        }
    }

    /// Restores the invariants after a waiter left holding something it
    /// will not use (an item, a READY): buffered items go to waiting
    /// receivers, free space or waiting receivers go to waiting senders.
    pub(crate) fn pump(&self, s: &mut State<T, B>, wakes: &mut Wakes) {
        while !s.buf.is_empty() {
            let Some(r) = s.receivers.pop() else { break };
            let item = s.buf.pop().expect("non-empty");
            deliver(r, item, wakes);
        }
        loop {
            if s.senders.is_empty() {
                return;
            }
            if !s.receivers.is_empty() {
                // The buffer is empty here: pair a waiting sender with a
                // waiting receiver.
                let Some(snd) = s.senders.pop() else { return };
                match take_from::<T>(&snd) {
                    None => {
                        snd.wake(READY, wakes);
                        return;
                    }
                    Some(item) => match s.receivers.pop() {
                        Some(r) => {
                            s.unfinished += 1;
                            deliver(r, item, wakes);
                            snd.wake(TAKEN, wakes);
                            continue;
                        }
                        None => {
                            // Every queued receiver was a decided select:
                            // the sender goes back, first in line, item and
                            // all.
                            // SAFETY: the slot is the sender's `Option<T>`.
                            unsafe { *(snd.slot() as *mut Option<T>) = Some(item) };
                            snd.requeue_front(&mut s.senders);
                        }
                    },
                }
            }
            if !self.refill(s, wakes) {
                return;
            }
        }
    }

    /// An item a cancelled receiver had been handed goes back.
    pub(crate) fn give_back(&self, s: &mut State<T, B>, item: T, wakes: &mut Wakes) {
        // It had been counted as accepted when it was handed over.
        match s.receivers.pop() {
            Some(r) => deliver(r, item, wakes),
            None => s.buf.unpop(item),
        }
    }

    /// Sends, waiting until `deadline` (None: forever) while full.
    pub(crate) fn send_until(&self, item: T, deadline: Option<Instant>) -> Result<(), SendFail<T>> {
        let mut wakes = Wakes::new();
        let mut s = lock(&self.state);
        let item = match self.try_send_locked(&mut s, item, &mut wakes) {
            Ok(()) => {
                drop(s);
                wakes.unpark_all();
                return Ok(());
            }
            Err(SendFail::Full(item)) => item,
            Err(e) => return Err(e),
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendFail::Timeout(item));
        }
        // The slot outlives the waiter (declared first, dropped last).
        let mut slot = Some(item);
        let w = pin!(Waiter::new(&self.state, senders::<T, B>, 0, SenderLeaves));
        w.as_ref()
            .node()
            .set_slot(&mut slot as *mut Option<T> as *mut ());
        w.as_ref().enqueue(&mut s);
        drop(s);
        match w.as_ref().wait(deadline, WaitReason::Channel) {
            Some(TAKEN) => Ok(()),
            Some(_) => Err(SendFail::Disconnected(
                slot.take().expect("item still in its slot"),
            )),
            None => Err(SendFail::Timeout(
                slot.take().expect("item still in its slot"),
            )),
        }
    }

    /// Receives, waiting until `deadline` (None: forever) while empty.
    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvFail> {
        loop {
            let mut wakes = Wakes::new();
            let mut s = lock(&self.state);
            match self.try_recv_locked(&mut s, &mut wakes) {
                Err(RecvFail::Empty) => {}
                r => {
                    drop(s);
                    wakes.unpark_all();
                    return r;
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                drop(s);
                wakes.unpark_all();
                return Err(RecvFail::Timeout);
            }
            let mut slot: Option<T> = None;
            let w = pin!(Waiter::new(
                &self.state,
                receivers::<T, B>,
                0,
                ReceiverLeaves { chan: self }
            ));
            w.as_ref()
                .node()
                .set_slot(&mut slot as *mut Option<T> as *mut ());
            w.as_ref().enqueue(&mut s);
            Self::call_senders(&mut s, std::ptr::null(), &mut wakes);
            drop(s);
            wakes.unpark_all();
            match w.as_ref().wait(deadline, WaitReason::Channel) {
                Some(DELIVERED) => return Ok(slot.take().expect("delivered item in the slot")),
                Some(_) => continue, // disconnected: re-check the buffer
                None => return Err(RecvFail::Timeout),
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.state).buf.len()
    }

    /// The last sender is gone: wake every receiver.
    pub(crate) fn disconnect_senders(&self) {
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.state);
            s.tx_gone = true;
            s.receivers.wake_all(DISCONNECTED, &mut wakes);
        }
        wakes.unpark_all();
    }

    /// The last receiver is gone: wake every sender (their items stay in
    /// their slots and go back to them) and drop what is buffered.
    pub(crate) fn disconnect_receivers(&self) {
        let mut wakes = Wakes::new();
        let mut dropped: Vec<T> = Vec::new();
        {
            let mut s = lock(&self.state);
            s.rx_gone = true;
            s.senders.wake_all(DISCONNECTED, &mut wakes);
            while let Some(item) = s.buf.pop() {
                dropped.push(item);
            }
        }
        wakes.unpark_all();
        // Items' destructors run outside the lock.
        drop(dropped);
    }
}

/// A sender that leaves while waiting takes its item with it (it is still
/// in its slot); once TAKEN there is nothing to hand on.
pub(crate) struct SenderLeaves;

impl<T, B> OnCancel<State<T, B>> for SenderLeaves {
    fn on_cancel(&mut self, _: &mut State<T, B>, _: &Node, _: usize, _: &mut Wakes) {}
}

/// A receiver that unwinds after an item was delivered to it gives the
/// item back.
pub(crate) struct ReceiverLeaves<'a, T, B> {
    pub(crate) chan: &'a Chan<T, B>,
}

impl<T, B: Buffer<T>> OnCancel<State<T, B>> for ReceiverLeaves<'_, T, B> {
    fn on_cancel(&mut self, s: &mut State<T, B>, node: &Node, token: usize, wakes: &mut Wakes) {
        if token == DELIVERED {
            // SAFETY: the node's slot is this receiver's `Option<T>`, still
            // alive (its frame is unwinding through this drop).
            if let Some(item) = unsafe { (*(node.slot() as *mut Option<T>)).take() } {
                self.chan.give_back(s, item, wakes);
            }
        }
    }
}
