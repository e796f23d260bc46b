//! A green thread as the scheduler sees it: its state word, its coroutine,
//! its join slot, and the typed part that holds its closure and result.
//!
//! One allocation per green thread: a [`TaskCell`] holding the untyped
//! [`Task`] header first and the typed body (closure, then result) after it.
//! The scheduler passes it around as a [`TaskRef`], a thin reference-counted
//! pointer to the header (an `Arc` without the weak count, whose deallocation
//! goes through the header's vtable). The
//! [`JoinHandle`](crate::thread::JoinHandle) keeps a typed pointer to the
//! result slot inside.
//!
//! A thin pointer, not `Arc<dyn ..>`: with a `dyn` tail every access to a
//! header field first loads the body's alignment from the vtable, and the
//! scheduler touches header fields on every switch.
//!
//! # Invariants
//! - `state` moves NEW → RUNNING ⇄ {PARKED → SCHEDULED → RUNNING} → DONE.
//!   Only the owning worker moves a task out of RUNNING; any thread may move it
//!   PARKED → SCHEDULED (that thread then enqueues it, exactly once).
//! - `co` is touched by whoever holds the task out of a queue before it
//!   starts, then only by its owner worker (the worker that first ran it).
//! - `local` is touched by one thread at a time: the task itself while it runs
//!   (its timeouts, green-locals, yielder), its owner worker while it does not
//!   (park and timer bookkeeping). The worker never holds a reference into
//!   `local` across a resume.
//! - The join slot (`join_waker`) is written only by the one joiner (the
//!   `JoinHandle`'s owner) while `join_state` is EMPTY, and read only by the
//!   finisher after it swapped WAITING → DONE.
//! - `co`, `local` and `join_waker` are `ManuallyDrop`. A task that finishes
//!   through its owner worker is torn down first (`tear_down`: `co` is
//!   Finished, `local`'s values taken and dropped on the owner's thread,
//!   `torn_down` set) and its join slot is empty once DONE, so freeing it
//!   drops neither; a task freed without finishing (dropped from a queue
//!   unstarted) drops all three when freed.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::ptr::{addr_of, addr_of_mut, NonNull};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use super::park::Unparker;
use super::worker::Shared;
use crate::stack::{Stack, StackRecord};

pub(crate) const NEW: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const PARKED: u8 = 2;
pub(crate) const SCHEDULED: u8 = 3;
pub(crate) const DONE: u8 = 4;

const JOIN_EMPTY: u8 = 0;
const JOIN_WAITING: u8 = 1;
const JOIN_DONE: u8 = 2;

/// What a green thread tells its worker when it gives the OS thread back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Suspend {
    /// `yield_now`: run me again after the others that are ready.
    Yield,
    /// Park until unparked; wake me at this deadline at the latest.
    Park(Option<Instant>),
}

pub(crate) type GreenCoroutine = Coroutine<(), Suspend, (), Stack>;

/// What a green thread is waiting on, for deadlock reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WaitReason {
    /// Not waiting.
    None = 0,
    /// `park()` called directly by user code.
    Park,
    /// `sleep`.
    Sleep,
    /// Joining another green thread.
    Join,
    /// A lock (Mutex, RwLock, Semaphore, ...).
    Lock,
    /// A condition variable, event or barrier.
    Condvar,
    /// A channel or queue.
    Channel,
    /// Socket or file-descriptor readiness.
    Io,
    /// A job on the blocking pool.
    Blocking,
}

impl WaitReason {
    pub(crate) fn from_u8(v: u8) -> WaitReason {
        use WaitReason::*;
        [
            None, Park, Sleep, Join, Lock, Condvar, Channel, Io, Blocking,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(None)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            WaitReason::None => "running or runnable",
            WaitReason::Park => "park()",
            WaitReason::Sleep => "sleep",
            WaitReason::Join => "join of another green thread",
            WaitReason::Lock => "a lock (Mutex, RwLock, Semaphore)",
            WaitReason::Condvar => "a condition (Condvar, Event, Barrier, AsyncResult)",
            WaitReason::Channel => "a channel or queue",
            WaitReason::Io => "socket or file-descriptor readiness",
            WaitReason::Blocking => "a job on the blocking pool",
        }
    }
}

/// The typed part of a green thread (implemented in `thread.rs` for the
/// spawned closure and its result type).
pub(crate) trait GreenBody: Send + 'static {
    /// Builds the coroutine that runs the closure on `stack`.
    ///
    /// # Safety
    /// Called at most once, by the thread that starts the task, and not after
    /// [`discard`](GreenBody::discard).
    unsafe fn start(&self, stack: Stack) -> GreenCoroutine;

    /// Drops the closure of a task that will never run.
    ///
    /// # Safety
    /// As for `start`: the caller holds the unstarted task alone.
    unsafe fn discard(&self);
}

/// How to reach the typed body behind a header.
struct Vtable {
    start: unsafe fn(&Task, Stack) -> GreenCoroutine,
    discard: unsafe fn(&Task),
    dealloc: unsafe fn(NonNull<Task>),
}

/// A green thread's allocation: header first (`repr(C)`), so a pointer to the
/// cell is a pointer to its header and back.
#[repr(C)]
pub(crate) struct TaskCell<B> {
    header: Task,
    pub(crate) body: B,
}

impl<B: GreenBody> TaskCell<B> {
    const VTABLE: Vtable = Vtable {
        start: Self::start_raw,
        discard: Self::discard_raw,
        dealloc: Self::dealloc_raw,
    };

    /// # Safety
    /// `t` is the header of a `TaskCell<B>`; GreenBody::start's contract.
    unsafe fn start_raw(t: &Task, stack: Stack) -> GreenCoroutine {
        let cell = &*(t as *const Task as *const TaskCell<B>);
        cell.body.start(stack)
    }

    /// # Safety
    /// `t` is the header of a `TaskCell<B>`; GreenBody::discard's contract.
    unsafe fn discard_raw(t: &Task) {
        let cell = &*(t as *const Task as *const TaskCell<B>);
        cell.body.discard()
    }

    /// # Safety
    /// `t` is the header of a `TaskCell<B>` made by `TaskRef::new`, and the
    /// last reference to it is gone.
    unsafe fn dealloc_raw(t: NonNull<Task>) {
        let p = t.as_ptr() as *mut TaskCell<B>;
        let header = &mut (*p).header;
        if !header.torn_down.load(Relaxed) {
            // Never finished by its owner (dropped unstarted, at shutdown).
            ManuallyDrop::drop(header.co.get_mut());
            ManuallyDrop::drop(header.local.get_mut());
            ManuallyDrop::drop(header.join_waker.get_mut());
        }
        // The rest: `name`, `shared`, and the body.
        std::ptr::drop_in_place(p);
        super::records::free_record(t.cast(), Layout::new::<TaskCell<B>>());
    }
}

/// A counted reference to a green thread: `Arc<Task>` with a thin pointer.
pub(crate) struct TaskRef(NonNull<Task>);

// SAFETY: Task is Send + Sync (below); TaskRef hands out only `&Task` and
// counts references with atomics, like Arc.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Allocates a green thread; returns two references to it (one for the
    /// run queue, one for its join handle: counted at creation rather than
    /// by a clone, which would be a locked instruction on every spawn) and
    /// a pointer to its body, valid while any reference to the task lives.
    pub(crate) fn new<B: GreenBody>(
        id: u64,
        name: Option<Box<str>>,
        shared: Arc<Shared>,
        stack: Stack,
        body: B,
    ) -> (TaskRef, TaskRef, *const B) {
        // Built in place: a `Box::new` of the whole cell would build it on
        // the stack and copy a few hundred bytes.
        let p = super::records::alloc_record(Layout::new::<TaskCell<B>>())
            .cast::<TaskCell<B>>()
            .as_ptr();
        // SAFETY: `p` is fresh memory for a TaskCell<B> (size and alignment
        // at least its layout's); both fields are written before the cell is
        // used, and `dealloc_raw` frees it with the same layout.
        unsafe {
            addr_of_mut!((*p).header).write(Task::new(
                id,
                name,
                shared,
                stack,
                &TaskCell::<B>::VTABLE,
            ));
            addr_of_mut!((*p).body).write(body);
            let body: *const B = addr_of!((*p).body);
            let t = NonNull::new_unchecked(p).cast::<Task>();
            (TaskRef(t), TaskRef(t), body)
        }
    }

    /// A new reference to the task `t` points to.
    ///
    /// # Safety
    /// `t` is the header of a live task (someone holds a reference).
    #[inline]
    pub(crate) unsafe fn from_header(t: &Task) -> TaskRef {
        t.retain();
        TaskRef(NonNull::from(t))
    }

    #[inline]
    pub(crate) fn ptr_eq(a: &TaskRef, b: &TaskRef) -> bool {
        a.0 == b.0
    }
}

/// A started task named without counting a reference (for run queues and
/// inboxes, which every switch touches). Sound because its owner worker's
/// registry holds a counted reference until the task finishes, and a task
/// sitting in a queue cannot finish: only its owner runs it, from that queue.
#[derive(Clone, Copy)]
pub(crate) struct TaskPtr(NonNull<Task>);

// SAFETY: a TaskPtr only names a Task (Send + Sync); see the type's docs for
// why the task outlives it.
unsafe impl Send for TaskPtr {}

impl TaskPtr {
    #[inline(always)]
    pub(crate) fn of(t: &Task) -> TaskPtr {
        TaskPtr(NonNull::from(t))
    }

    /// The task.
    ///
    /// # Safety
    /// The task has started and not finished (the type's invariant: true for
    /// every TaskPtr taken out of a run queue or inbox).
    #[inline(always)]
    pub(crate) unsafe fn task<'a>(self) -> &'a Task {
        self.0.as_ref()
    }
}

impl std::ops::Deref for TaskRef {
    type Target = Task;
    #[inline(always)]
    fn deref(&self) -> &Task {
        // SAFETY: the reference keeps the task alive.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for TaskRef {
    #[inline]
    fn clone(&self) -> TaskRef {
        self.retain();
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    #[inline]
    fn drop(&mut self) {
        if self.refs.fetch_sub(1, Release) != 1 {
            return;
        }
        // As Arc: see every other reference's last use before freeing.
        fence(Acquire);
        // SAFETY: the last reference is gone; the vtable was made for this
        // cell's body type by TaskRef::new.
        unsafe { (self.vtable.dealloc)(self.0) }
    }
}

/// The coroutine of a task (with the overflow record its worker installs on
/// every resume), or its stack before the first run.
pub(crate) enum Co {
    Unstarted(Stack),
    Started(GreenCoroutine, StackRecord),
    Finished,
}

/// State the running task and its owner worker share, one at a time (see the
/// module invariants).
pub(crate) struct TaskLocal {
    /// The coroutine's yielder, recorded when it first runs.
    pub(crate) yielder: *const Yielder<(), Suspend>,
    /// `green_local!` values.
    pub(crate) locals: super::local::LocalMap,
    /// Active `timeout` scopes, innermost last.
    pub(crate) timeouts: super::park::Timeouts,
    /// This green thread's greenlets (its own implicit main greenlet, the
    /// current one); swapped into the OS thread while it runs.
    pub(crate) greenlets: crate::greenlet::ThreadState,
    /// Index in the owner worker's registry.
    pub(crate) slot: usize,
    /// The task is parked (counted in its worker's park statistics).
    pub(crate) parked: bool,
    /// Deadline of the current (or last) park.
    pub(crate) park_deadline: Option<Instant>,
    /// The worker's timer saw `park_deadline` pass while the task was
    /// parked (set before it unparks it, taken when the park returns): a
    /// sleep need not read the clock again to know it is over.
    pub(crate) deadline_passed: bool,
    /// Sequence number of the task's live timer entry; older entries are stale.
    pub(crate) timer_seq: u32,
    /// Deadline of the task's live timer entry, if one is armed.
    pub(crate) timer_armed: Option<Instant>,
    /// Top of the task's stack, and roughly where its stack pointer was when
    /// it last suspended: what the worker prefetches before resuming it.
    pub(crate) stack_top: usize,
    pub(crate) sp_hint: usize,
}

/// One green thread's header (see the module docs).
///
/// Laid out for the two threads that touch a finished task: its joiner
/// (often on another worker) reads only the first cache line (`refs`,
/// `join_state`, and what freeing the task drops: `vtable`, `name`,
/// `shared`) and the result in the body; `co`, `local` and `join_waker`
/// are emptied by the owner worker when the task finishes (`tear_down`)
/// and then not read again, so freeing it does not pull them over.
#[repr(C)]
pub(crate) struct Task {
    refs: AtomicUsize,
    pub(crate) state: AtomicU8,
    /// The park token: set by unpark, consumed by park (std::thread::park's).
    pub(crate) notified: AtomicBool,
    pub(crate) killed: AtomicBool,
    /// The task is waiting by blocking its OS thread (see park.rs) instead of
    /// suspending; unpark must wake the OS thread.
    pub(crate) os_blocked: AtomicBool,
    pub(crate) reason: AtomicU8,
    join_state: AtomicU8,
    /// Set by `tear_down`: `co`, `local` and `join_waker` hold nothing to
    /// drop.
    torn_down: AtomicBool,
    vtable: &'static Vtable,
    pub(crate) id: u64,
    pub(crate) shared: Arc<Shared>,
    pub(crate) name: Option<Box<str>>,
    co: UnsafeCell<ManuallyDrop<Co>>,
    local: UnsafeCell<ManuallyDrop<TaskLocal>>,
    /// Worker that first ran this task (usize::MAX before that).
    pub(crate) owner: AtomicUsize,
    /// Who registered `join_waker` (a green or OS thread id).
    joiner_id: AtomicU64,
    join_waker: UnsafeCell<ManuallyDrop<Option<Unparker>>>,
}

// SAFETY: every field but `co`, `local` and `join_waker` is Send + Sync.
// `co` and `local` (which may hold !Send values once the task has started)
// are only ever accessed from one thread at a time: the thread that holds the
// task out of a queue before it starts (then they hold only `Send` values),
// afterwards only its owner worker thread. `join_waker` is handed from the
// joiner to the finisher through `join_state` (module invariants). The body
// behind the header is `Send` and touched only through the vtable by the
// thread allowed to (GreenBody's contract).
unsafe impl Send for Task {}
// SAFETY: as for Send: shared access from other threads only touches the
// atomic fields and immutable ones.
unsafe impl Sync for Task {}

impl Task {
    #[inline(always)]
    fn new(
        id: u64,
        name: Option<Box<str>>,
        shared: Arc<Shared>,
        stack: Stack,
        vtable: &'static Vtable,
    ) -> Task {
        Task {
            // The two references `TaskRef::new` returns.
            refs: AtomicUsize::new(2),
            state: AtomicU8::new(NEW),
            notified: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            os_blocked: AtomicBool::new(false),
            reason: AtomicU8::new(0),
            join_state: AtomicU8::new(JOIN_EMPTY),
            torn_down: AtomicBool::new(false),
            vtable,
            id,
            shared,
            name,
            co: UnsafeCell::new(ManuallyDrop::new(Co::Unstarted(stack))),
            local: UnsafeCell::new(ManuallyDrop::new(TaskLocal {
                yielder: std::ptr::null(),
                locals: super::local::LocalMap::new(),
                timeouts: super::park::Timeouts::new(),
                greenlets: Default::default(),
                slot: usize::MAX,
                parked: false,
                park_deadline: None,
                deadline_passed: false,
                timer_seq: 0,
                timer_armed: None,
                stack_top: 0,
                sp_hint: 0,
            })),
            owner: AtomicUsize::new(usize::MAX),
            joiner_id: AtomicU64::new(0),
            join_waker: UnsafeCell::new(ManuallyDrop::new(None)),
        }
    }

    #[inline]
    fn retain(&self) {
        // As Arc: a count past isize::MAX means leaked references; abort
        // rather than risk an overflow.
        if self.refs.fetch_add(1, Relaxed) > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Builds the coroutine of a task that starts now.
    ///
    /// # Safety
    /// GreenBody::start's contract.
    #[inline]
    pub(crate) unsafe fn start_body(&self, stack: Stack) -> GreenCoroutine {
        (self.vtable.start)(self, stack)
    }

    /// Drops the closure of a task that will never run.
    ///
    /// # Safety
    /// GreenBody::discard's contract.
    pub(crate) unsafe fn discard_body(&self) {
        (self.vtable.discard)(self)
    }
    /// The display name used in reports: the given name or `green-<id>`.
    pub(crate) fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("green-{}", self.id),
        }
    }

    /// # Safety
    /// The caller is the one thread allowed to touch `local` now (module
    /// invariants) and holds no other reference into it.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn local_mut(&self) -> &mut TaskLocal {
        &mut *self.local.get()
    }

    /// # Safety
    /// The caller is the one thread allowed to touch `co` now (module
    /// invariants) and holds no other reference into it.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn co_mut(&self) -> &mut Co {
        &mut *self.co.get()
    }

    /// Empties what only the owner worker touches (`co`, `local`) before
    /// the task is marked finished, so that whoever frees it need not read
    /// them: their values are dropped here, on the owner's thread (where a
    /// green thread's `!Send` leftovers belong). Stale timer entries may
    /// still read `local`'s plain fields afterwards; those stay valid.
    ///
    /// # Safety
    /// The caller is the owner worker (or holds the unstarted task alone),
    /// the task's coroutine has finished or never started (`co` is
    /// `Finished`), and `finish` has not been called yet.
    pub(crate) unsafe fn tear_down(&self) {
        let local = self.local_mut();
        drop(local.locals.take());
        drop(std::mem::replace(
            &mut local.timeouts,
            super::park::Timeouts::new(),
        ));
        drop(std::mem::take(&mut local.greenlets));
        debug_assert!(matches!(self.co_mut(), Co::Finished));
        // `join_waker` holds nothing once `finish` has run: it takes a
        // registered waker, and a joiner that finds the task done registers
        // none. Published to the freeing thread by `finish`'s release and
        // the last reference's acquire.
        self.torn_down.store(true, Relaxed);
    }

    /// Whether the task has finished (returned, panicked, been killed).
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.join_state.load(Acquire) == JOIN_DONE
    }

    /// Wakes the task if it is parked; otherwise leaves a token so its next
    /// park returns at once. Callable from any thread.
    pub(crate) fn unpark(&self) {
        self.notified.store(true, SeqCst);
        // Load before the CAS: a task that is running or already scheduled
        // (a sync waiter still spinning, the common same-worker case) costs
        // no locked instruction. Still a Dekker pair with
        // `after_suspend_park` (store PARKED, then load `notified`; all
        // SeqCst): if this load misses PARKED, the parker sees `notified`.
        if self.state.load(SeqCst) == PARKED
            && self
                .state
                .compare_exchange(PARKED, SCHEDULED, SeqCst, SeqCst)
                .is_ok()
        {
            super::worker::schedule(self);
        } else if self.os_blocked.load(SeqCst) {
            self.shared.unpark_os_thread(self.owner.load(Acquire));
        }
    }

    /// Asks the task to unwind at its current or next blocking point.
    pub(crate) fn kill(&self) {
        if self.is_done() {
            return;
        }
        self.killed.store(true, SeqCst);
        self.unpark();
    }

    /// Registers the caller (green or OS thread `me`, unparked by what `make`
    /// returns) to be woken when the task finishes. Returns false, registering
    /// nothing, if it already has. Only the task's one joiner calls this.
    pub(crate) fn set_joiner(&self, me: u64, make: impl FnOnce() -> Unparker) -> bool {
        match self.join_state.load(Acquire) {
            JOIN_DONE => return false,
            JOIN_WAITING => {
                if self.joiner_id.load(Relaxed) == me {
                    return true;
                }
                // Registered by another thread (the handle moved): take the
                // slot back before rewriting it.
                if self
                    .join_state
                    .compare_exchange(JOIN_WAITING, JOIN_EMPTY, Acquire, Acquire)
                    .is_err()
                {
                    return false;
                }
            }
            _ => {}
        }
        // SAFETY: join_state is EMPTY, so the finisher will not read the slot
        // (it only does after swapping WAITING → DONE), and we are the one
        // joiner (module invariants).
        unsafe { **self.join_waker.get() = Some(make()) };
        self.joiner_id.store(me, Relaxed);
        if self
            .join_state
            .compare_exchange(JOIN_EMPTY, JOIN_WAITING, AcqRel, Acquire)
            .is_err()
        {
            // Finished meanwhile; the finisher saw EMPTY and left the slot.
            // SAFETY: as above.
            unsafe { **self.join_waker.get() = None };
            return false;
        }
        true
    }

    /// Marks the task finished and wakes its joiner.
    pub(crate) fn finish(&self) {
        self.state.store(DONE, Release);
        if self.join_state.swap(JOIN_DONE, AcqRel) == JOIN_WAITING {
            // SAFETY: we swapped WAITING → DONE: the joiner wrote the slot
            // before publishing WAITING (Release, acquired by the swap) and
            // will not touch it again.
            if let Some(u) = unsafe { (**self.join_waker.get()).take() } {
                u.unpark();
            }
        }
    }
}
