//! The workers: each a small gevent hub running green threads on one OS
//! thread.
//!
//! A worker owns a FIFO run queue of its started green threads (`ready`), a
//! stealable FIFO of unstarted ones (`new`, crossbeam-deque), an inbox for
//! wake-ups from other threads, a `mio::Poll` with a `Waker`, its timers, and
//! the registry of the green threads it has started.
//!
//! # Invariants
//! - A started green thread only ever runs on its owner worker. Only NEW tasks
//!   travel between workers (through `new`/`injector` and stealing).
//! - A task is in at most one queue at a time: it is enqueued only by whoever
//!   moved its state to SCHEDULED (or created it).
//! - `sleeping` is set before a worker re-checks its inbox and blocks in the
//!   poll; whoever pushes to the inbox swaps it back and wakes the poll. Both
//!   sides use SeqCst, so a wake-up is never lost.
//! - Everything in [`WorkerCtx`] and a task's `local` is touched only by the
//!   worker's own thread. Other threads learn about a worker's green threads
//!   by asking it (a census, see [`Shared::census`]) or, for the one it runs
//!   now, through [`WorkerShared::running_name`] under the `readers` protocol.
//! - Statistics in [`WorkerStats`] are written only by their worker (plain
//!   load + store, no read-modify-write), so counting costs no contention.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};

use super::io::IoSlab;
use super::park::{after_suspend_park, EnterTask};
use super::task::{Co, Suspend, Task, TaskPtr, TaskRef, DONE, PARKED, RUNNING, SCHEDULED};
use super::timer::{Entry, Wheel};
use crate::stack::OnRecord;

pub(crate) const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);
/// The worker's timerfd (no socket has this token: `IoSlab` skips it).
const TIMER_TOKEN: mio::Token = mio::Token(usize::MAX - 1);
/// How many tasks a worker runs between checks of its inbox, timers and
/// sockets when it always has ready work (tokio's "event interval").
const MAINTENANCE_INTERVAL: u32 = 61;
/// At most this many new tasks run in a row while started ones wait.
const NEW_STREAK: u32 = 16;
/// An idle worker releases its surplus pooled stacks after this long.
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(1);
/// Stale timer entries are swept once there are this many and they are at
/// least half of all entries.
const TIMER_COMPACT_AT: usize = 4096;
/// How many unstarted tasks a worker takes ahead of running them.
const NEW_AHEAD: usize = 2;
/// Finished tasks are freed in batches of this many (each batch costs a
/// fence; see `release_limbo`).
const LIMBO_BATCH: usize = 4;
/// A green thread spawned on a worker that runs this many more started
/// green threads than an idle (sleeping) worker goes to that worker instead
/// (see `Shared::submit`).
const HANDOFF_MARGIN: u64 = 2;
/// A worker that runs out of work after running some keeps looking for
/// more this long before it blocks in its poll (see `spin_for_work`).
const IDLE_SPIN: Duration = Duration::from_micros(20);
/// Spin-loop rounds between two looks at the clock (and at sockets).
const IDLE_SPIN_ROUNDS: u32 = 64;

/// Settings a runtime was built with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) stack_size: usize,
    pub(crate) monitor_threshold: Option<Duration>,
    pub(crate) deadlock_detection: bool,
}

/// Keeps a value on its own cache lines (two, for adjacent-line prefetch), so
/// counters one thread writes do not slow down fields others read.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Counters and the running task of one worker, written only by that worker.
#[derive(Default)]
pub(crate) struct WorkerStats {
    /// Incremented each time the worker resumes a task (stuck-worker monitor).
    pub(crate) switches: AtomicU64,
    /// The task running now, null when none. Other threads compare it, and
    /// read through it only under the `readers` protocol (see
    /// [`WorkerShared::running_name`]).
    pub(crate) running: AtomicPtr<Task>,
    /// Green threads spawned from this worker's thread into its runtime.
    pub(crate) spawned: AtomicU64,
    /// Green threads that finished on this worker.
    pub(crate) finished: AtomicU64,
    /// Green threads this worker took to start (`started - finished`: how
    /// many it owns now).
    pub(crate) started: AtomicU64,
    /// Parks of this worker's tasks, and resumptions after a park: the
    /// difference is how many are parked now. `timed_*` count parks with a
    /// deadline.
    pub(crate) parks: AtomicU64,
    pub(crate) unparks: AtomicU64,
    pub(crate) timed_parks: AtomicU64,
    pub(crate) timed_unparks: AtomicU64,
    /// Unstarted tasks the worker holds privately (`new_ahead`: hand-offs
    /// taken, and the next few of its own deque), as of its last change.
    pub(crate) ahead: AtomicU64,
}

/// Adds one to a counter only this thread writes.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Release);
}

/// The part of a worker other threads see.
pub(crate) struct WorkerShared {
    pub(crate) stealer: Stealer<TaskRef>,
    /// Started tasks woken by other threads.
    pub(crate) inbox: Injector<TaskPtr>,
    /// Unstarted tasks another worker spawned for this one while it idled
    /// (see `Shared::submit`).
    handoff: Injector<TaskRef>,
    pub(crate) waker: mio::Waker,
    pub(crate) registry: mio::Registry,
    pub(crate) sleeping: AtomicBool,
    pub(crate) io: IoSlab,
    pub(crate) thread: OnceLock<std::thread::Thread>,
    /// Threads reading `stats.running_name` right now; while non-zero the
    /// worker keeps finished tasks alive (in its limbo).
    readers: AtomicUsize,
    pub(crate) stats: CachePadded<WorkerStats>,
}

impl WorkerShared {
    pub(crate) fn new(
        stealer: Stealer<TaskRef>,
        waker: mio::Waker,
        registry: mio::Registry,
    ) -> WorkerShared {
        WorkerShared {
            stealer,
            inbox: Injector::new(),
            handoff: Injector::new(),
            waker,
            registry,
            sleeping: AtomicBool::new(false),
            io: Default::default(),
            thread: OnceLock::new(),
            readers: AtomicUsize::new(0),
            stats: Default::default(),
        }
    }

    /// The id and display name of the green thread this worker runs now.
    ///
    /// The worker does not free a finished task while a reader is counted
    /// (it keeps it in its limbo): a reader announces itself, then reads the
    /// pointer; the worker clears the pointer, then checks for readers
    /// (SeqCst on both sides), so one of them sees the other.
    /// Returns the task's address (as `stats.running` holds it) and name.
    pub(crate) fn running_name(&self) -> Option<(usize, String)> {
        self.readers.fetch_add(1, SeqCst);
        let p = self.stats.running.load(SeqCst);
        // SAFETY: a non-null pointer is a task that has not been freed: the
        // worker frees finished tasks only when no reader is counted after it
        // cleared this pointer (protocol above).
        let name = unsafe { p.as_ref() }.map(Task::display_name);
        self.readers.fetch_sub(1, Release);
        Some((p as usize, name?))
    }
}

/// A request to every worker for the list of its green threads.
#[derive(Default)]
struct CensusState {
    epoch: u64,
    answered: usize,
    tasks: Vec<CensusEntry>,
}

/// One green thread as a census saw it.
pub(crate) struct CensusEntry {
    pub(crate) task: TaskRef,
    /// Its current park has a deadline (a timer will wake it).
    pub(crate) timed: bool,
}

/// State shared by all workers of one runtime and its handles.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) workers: Vec<WorkerShared>,
    pub(crate) injector: Injector<TaskRef>,
    /// Green threads spawned from threads that are not this runtime's workers.
    foreign_spawned: AtomicU64,
    pub(crate) external_handles: AtomicUsize,
    /// Threads inside `Runtime::run`/`try_run`: deadlocks are only reported
    /// while one waits (between runs, the runtime's owner may still wake
    /// parked green threads with its next `run`).
    pub(crate) runs_waiting: AtomicUsize,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) stop: AtomicBool,
    pub(crate) all_done: (Mutex<()>, Condvar),
    pub(crate) deadlock: Mutex<Option<String>>,
    census_epoch: AtomicU64,
    census: (Mutex<CensusState>, Condvar),
}

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// Ids are taken from the global counter in blocks, so threads that spawn a
/// lot do not all write one cache line.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's block of ids: the next one and the end.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A new id for a green thread (or an OS thread), unique in the process.
#[inline]
pub(crate) fn next_task_id() -> u64 {
    IDS.with(|ids| {
        let (next, end) = ids.get();
        if next < end {
            ids.set((next + 1, end));
            return next;
        }
        let start = NEXT_TASK_ID.fetch_add(ID_BLOCK, Relaxed);
        ids.set((start + 1, start + ID_BLOCK));
        start
    })
}

impl Shared {
    pub(crate) fn new(config: Config, workers: Vec<WorkerShared>) -> Shared {
        Shared {
            config,
            workers,
            injector: Injector::new(),
            foreign_spawned: AtomicU64::new(0),
            external_handles: AtomicUsize::new(0),
            runs_waiting: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            all_done: (Mutex::new(()), Condvar::new()),
            deadlock: Mutex::new(None),
            census_epoch: AtomicU64::new(0),
            census: (Mutex::new(CensusState::default()), Condvar::new()),
        }
    }

    /// Green threads spawned and not finished. Never undercounts: it reads
    /// every `finished` counter before any `spawned` one, and a task's spawn
    /// happens before its finish.
    pub(crate) fn live(&self) -> u64 {
        let finished: u64 = self
            .workers
            .iter()
            .map(|w| w.stats.finished.load(Acquire))
            .sum();
        let spawned: u64 = self
            .workers
            .iter()
            .map(|w| w.stats.spawned.load(Acquire))
            .sum::<u64>()
            + self.foreign_spawned.load(Acquire);
        spawned.saturating_sub(finished)
    }

    /// Green threads parked now, and of those how many with a deadline.
    /// A snapshot of counters written concurrently: exact only while nothing
    /// runs (the deadlock check re-reads it across checks).
    pub(crate) fn parked(&self) -> (u64, u64) {
        let mut parked = 0u64;
        let mut timed = 0u64;
        for w in &self.workers {
            let s = &w.stats;
            let unparks = s.unparks.load(Acquire);
            let timed_unparks = s.timed_unparks.load(Acquire);
            parked += s.parks.load(Acquire).saturating_sub(unparks);
            timed += s.timed_parks.load(Acquire).saturating_sub(timed_unparks);
        }
        (parked, timed)
    }

    /// Records a new live task and queues it to run.
    pub(crate) fn submit(self: &Arc<Self>, task: TaskRef) {
        match local_ctx() {
            Some(ctx) if Arc::ptr_eq(&ctx.shared, self) => {
                bump(&self.workers[ctx.index].stats.spawned);
                // With unstarted green threads already queued here, an idle
                // worker is woken below and steals; only a lone spawn (which
                // a spinning worker leaves alone) is worth handing off. This
                // also keeps a burst of spawns from reading the other
                // workers' counters, which they write on every switch.
                let queued = ctx.new.len();
                if queued > 0 {
                    ctx.new.push(task);
                    self.wake_one_sleeper(Some(ctx.index));
                    return;
                }
                if let Some(i) = self.idle_lighter_worker(ctx.index) {
                    // A started green thread never moves: one that lands on a
                    // loaded worker stays there (a server's connections all
                    // on the accept loop's worker while the other idles).
                    let w = &self.workers[i];
                    w.handoff.push(task);
                    if w.sleeping.swap(false, SeqCst) {
                        let _ = w.waker.wake();
                    }
                    return;
                }
                ctx.new.push(task);
            }
            _ => {
                self.foreign_spawned.fetch_add(1, SeqCst);
                self.injector.push(task);
                self.wake_one_sleeper(None);
            }
        }
    }

    /// An idle worker that owns more than HANDOFF_MARGIN fewer green threads
    /// than worker `me`, which is spawning one with none queued unstarted.
    #[inline]
    fn idle_lighter_worker(&self, me: usize) -> Option<usize> {
        let owned = |w: &WorkerShared| {
            w.stats
                .started
                .load(Relaxed)
                .saturating_sub(w.stats.finished.load(Relaxed))
        };
        let mine = owned(&self.workers[me]);
        if mine <= HANDOFF_MARGIN || self.workers.len() == 1 {
            return None;
        }
        (0..self.workers.len()).find(|&i| {
            let w = &self.workers[i];
            // Idle: asleep in its poll, or between tasks (it looks at its
            // hand-off queue before it sleeps).
            let idle = w.sleeping.load(Relaxed) || w.stats.running.load(Relaxed).is_null();
            // At most one hand-off in flight per worker, and none to a worker
            // with unstarted tasks of its own: hand-offs cannot be stolen,
            // so in a burst of spawns a backlog of them would leave this
            // worker idle at the end while that one still starts them.
            // The rest of a burst goes to the spawner's stealable deque.
            i != me
                && idle
                && w.handoff.is_empty()
                && w.stats.ahead.load(Relaxed) == 0
                && owned(w) + HANDOFF_MARGIN < mine
        })
    }

    /// Wakes one worker blocked in its poll (other than `except`), so it can
    /// steal work.
    fn wake_one_sleeper(&self, except: Option<usize>) {
        for (i, w) in self.workers.iter().enumerate() {
            // Load first: the swap writes a line other threads read.
            if Some(i) != except && w.sleeping.load(SeqCst) && w.sleeping.swap(false, SeqCst) {
                let _ = w.waker.wake();
                return;
            }
        }
    }

    /// Wakes every worker from its poll, and its OS thread if a task blocks
    /// it (see `park_os`).
    pub(crate) fn wake_all(&self) {
        for w in &self.workers {
            w.sleeping.store(false, SeqCst);
            let _ = w.waker.wake();
            if let Some(t) = w.thread.get() {
                t.unpark();
            }
        }
    }

    pub(crate) fn unpark_os_thread(&self, worker: usize) {
        if let Some(t) = self.workers.get(worker).and_then(|w| w.thread.get()) {
            t.unpark();
        }
    }

    /// Asks every worker for its green threads and waits (at most `timeout`)
    /// for all answers. None if a worker did not answer in time (it is busy
    /// running a green thread).
    pub(crate) fn census(&self, timeout: Duration) -> Option<Vec<CensusEntry>> {
        let (lock, cv) = &self.census;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.epoch += 1;
        st.answered = 0;
        st.tasks.clear();
        self.census_epoch.store(st.epoch, SeqCst);
        self.wake_all();
        let deadline = Instant::now() + timeout;
        while st.answered < self.workers.len() {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut tasks = std::mem::take(&mut st.tasks);
        tasks.sort_by_key(|e| e.task.id);
        Some(tasks)
    }

    /// Blocks the calling OS thread until no task is live (during shutdown:
    /// workers signal `all_done` as tasks finish). Killed green threads that
    /// do not reach a blocking point (a CPU loop) keep it waiting: every 5 s
    /// it logs which ones run.
    pub(crate) fn wait_all_done(&self) {
        let start = Instant::now();
        let mut next_report = Duration::from_secs(5);
        let mut g = self.all_done.0.lock().unwrap_or_else(|e| e.into_inner());
        while self.live() != 0 {
            g = self
                .all_done
                .1
                .wait_timeout(g, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if start.elapsed() >= next_report {
                next_report += Duration::from_secs(5);
                let names: Vec<String> = self
                    .workers
                    .iter()
                    .filter_map(|w| w.running_name())
                    .map(|(_, n)| format!("'{n}'"))
                    .collect();
                log::warn!(
                    "greenhouse: runtime shutdown has waited {} s for {} killed green threads; \
                     running without reaching a blocking point: {}",
                    start.elapsed().as_secs(),
                    self.live(),
                    names.join(", ")
                );
            }
        }
    }
}

/// The green threads a worker has started and not yet finished (owner only).
#[derive(Default)]
struct Registry {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
}

impl Registry {
    fn insert(&mut self, task: TaskRef) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(task);
                i
            }
            None => {
                self.slots.push(Some(task));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<TaskRef> {
        let t = self.slots.get_mut(slot)?.take();
        if t.is_some() {
            self.free.push(slot);
        }
        t
    }

    fn iter(&self) -> impl Iterator<Item = &TaskRef> {
        self.slots.iter().flatten()
    }
}

/// Asks the CPU to start loading the cache line at `addr`.
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the
    // address (unmapped, guard page, null), and changes no program state.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Prefetches the `LINES` cache lines from the one holding `addr` on. A
/// constant count, so the loop unrolls into bare prefetch instructions (a
/// loop bounded by a length cost about three instructions per line, on
/// every switch).
#[inline(always)]
fn prefetch_lines<const LINES: usize>(addr: usize) {
    let a = addr & !63;
    for i in 0..LINES {
        prefetch(a + 64 * i);
    }
}

/// Cache lines of a task's header worth prefetching (its hot fields).
const HEADER_LINES: usize = 3;
/// Bytes around a suspended task's stack pointer that its resume touches
/// (saved registers below, the frames it returns through above), in lines
/// from `STACK_BELOW_SP` below it.
const STACK_BELOW_SP: usize = 128;
const STACK_LINES: usize = 10;
/// Bytes below the top of a new task's stack that its first run writes.
const NEW_STACK_PREFETCH: usize = 768;

/// The FIFO of started tasks ready to run on this worker (owner only).
///
/// An `UnsafeCell` rather than a `RefCell`: it is on every switch. Each
/// method holds its `&mut` only for the queue operation itself, which runs no
/// other code, so no two borrows overlap.
#[derive(Default)]
struct RunQueue(UnsafeCell<VecDeque<TaskPtr>>);

impl RunQueue {
    #[inline]
    fn push(&self, t: TaskPtr) {
        // SAFETY: see the type's docs.
        unsafe { &mut *self.0.get() }.push_back(t);
    }

    #[inline]
    fn pop(&self) -> Option<TaskPtr> {
        // SAFETY: see the type's docs.
        unsafe { &mut *self.0.get() }.pop_front()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        // SAFETY: see the type's docs.
        unsafe { &*self.0.get() }.is_empty()
    }

    /// The task `i` places behind the head, if any.
    #[inline]
    fn peek(&self, i: usize) -> Option<TaskPtr> {
        // SAFETY: see the type's docs.
        unsafe { &*self.0.get() }.get(i).copied()
    }

    /// Empties the queue; the caller drops the tasks.
    fn take_all(&self) -> VecDeque<TaskPtr> {
        // SAFETY: see the type's docs.
        std::mem::take(unsafe { &mut *self.0.get() })
    }
}

/// The worker's own state, reachable from its thread through `WORKER`.
pub(crate) struct WorkerCtx {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) new: Deque<TaskRef>,
    ready: RunQueue,
    timers: RefCell<Wheel>,
    registry: RefCell<Registry>,
    /// Finished tasks kept alive until no thread reads `running_name`.
    limbo: RefCell<Vec<TaskRef>>,
}

thread_local! {
    static WORKER: Cell<*const WorkerCtx> = const { Cell::new(std::ptr::null()) };
    /// Set on threads the runtime owns (workers, blocking pool, monitor).
    static RUNTIME_THREAD: Cell<bool> = const { Cell::new(false) };
    static FOREIGN: RefCell<Option<ForeignGuard>> = const { RefCell::new(None) };
    static IN_RUN: Cell<bool> = const { Cell::new(false) };
}

/// OS threads outside any runtime that have used greenhouse's waiting
/// machinery and are still alive: they may wake a green thread later, so
/// while one exists no deadlock is reported.
static FOREIGN_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Of those, how many are blocked in `Runtime::run` (they wake nothing).
static FOREIGN_IN_RUN: AtomicUsize = AtomicUsize::new(0);

struct ForeignGuard;
impl Drop for ForeignGuard {
    fn drop(&mut self) {
        FOREIGN_THREADS.fetch_sub(1, SeqCst);
    }
}

/// Records that the calling OS thread (not a runtime thread) takes part in
/// green waiting (see FOREIGN_THREADS).
pub(crate) fn note_foreign_thread() {
    if RUNTIME_THREAD.with(|r| r.get()) || IN_RUN.with(|r| r.get()) {
        return;
    }
    let _ = FOREIGN.try_with(|f| {
        let mut f = f.borrow_mut();
        if f.is_none() {
            FOREIGN_THREADS.fetch_add(1, SeqCst);
            *f = Some(ForeignGuard);
        }
    });
}

/// Foreign threads that could still wake something.
pub(crate) fn active_foreign_threads() -> usize {
    FOREIGN_THREADS
        .load(SeqCst)
        .saturating_sub(FOREIGN_IN_RUN.load(SeqCst))
}

/// Marks the calling thread as blocked in `Runtime::run` while alive.
pub(crate) struct InRun {
    counted: bool,
}

impl InRun {
    pub(crate) fn enter() -> InRun {
        IN_RUN.with(|r| r.set(true));
        let counted = FOREIGN.try_with(|f| f.borrow().is_some()).unwrap_or(false);
        if counted {
            FOREIGN_IN_RUN.fetch_add(1, SeqCst);
        }
        InRun { counted }
    }
}

impl Drop for InRun {
    fn drop(&mut self) {
        IN_RUN.with(|r| r.set(false));
        if self.counted {
            FOREIGN_IN_RUN.fetch_sub(1, SeqCst);
        }
    }
}

pub(crate) fn mark_runtime_thread() {
    RUNTIME_THREAD.with(|r| r.set(true));
}

#[inline]
pub(crate) fn local_ctx() -> Option<&'static WorkerCtx> {
    let p = WORKER.with(|w| w.get());
    // SAFETY: WORKER is set by `run_worker` to a WorkerCtx that lives on that
    // function's stack frame for as long as the worker loop runs, and is
    // cleared before it returns; every caller runs inside that loop.
    unsafe { p.as_ref() }
}

/// Whether the calling worker thread has other green threads ready to run
/// (started, unstarted, or woken from elsewhere): a waiter then yields to
/// them rather than spinning (see `sync::waiters::Spin`). False off the
/// workers. (Misses the few unstarted tasks already taken into a worker's
/// `new_ahead`; the waiter then spins its short budget before parking.)
pub(crate) fn others_ready() -> bool {
    match local_ctx() {
        Some(ctx) => {
            !ctx.ready.is_empty()
                || !ctx.new.is_empty()
                || !ctx.shared.workers[ctx.index].inbox.is_empty()
        }
        None => false,
    }
}

/// Queues a started task that was just moved to SCHEDULED on its owner
/// worker.
pub(crate) fn schedule(task: &Task) {
    let owner = task.owner.load(Acquire);
    if let Some(ctx) = local_ctx() {
        if ctx.index == owner && std::ptr::eq(&*ctx.shared, &*task.shared) {
            ctx.ready.push(TaskPtr::of(task));
            return;
        }
    }
    // Once pushed, the task may run and finish at once: keep the runtime's
    // state alive for the wake-up below.
    let shared = task.shared.clone();
    let w = &shared.workers[owner];
    w.inbox.push(TaskPtr::of(task));
    if w.sleeping.load(SeqCst) && w.sleeping.swap(false, SeqCst) {
        let _ = w.waker.wake();
    }
}

/// What the worker runs next.
enum Next {
    /// An unstarted task (owned: it is in no registry yet).
    New(TaskRef),
    /// A started task of this worker.
    Ready(TaskPtr),
}

/// The worker loop. Runs until the runtime stops.
pub(crate) fn run_worker(index: usize, shared: Arc<Shared>, new: Deque<TaskRef>, poll: mio::Poll) {
    mark_runtime_thread();
    let ctx = WorkerCtx {
        index,
        shared: shared.clone(),
        new,
        ready: RunQueue::default(),
        timers: RefCell::new(Wheel::new(Instant::now())),
        registry: RefCell::new(Registry::default()),
        limbo: RefCell::new(Vec::new()),
    };
    WORKER.with(|w| w.set(&ctx as *const WorkerCtx));
    let clock = TimerFd::new(poll.registry());
    let mut worker = Worker {
        ctx: &ctx,
        me: &shared.workers[index],
        clock,
        poll,
        events: mio::Events::with_capacity(1024),
        due: Vec::new(),
        new_ahead: VecDeque::with_capacity(NEW_AHEAD + 1),
        until_maintenance: MAINTENANCE_INTERVAL,
        new_streak: 0,
        swept: false,
        census_seen: 0,
        worked: false,
    };
    worker.run();
    // Whatever is still queued is dropped here, on this thread.
    drop(worker);
    WORKER.with(|w| w.set(std::ptr::null()));
}

struct Worker<'a> {
    ctx: &'a WorkerCtx,
    me: &'a WorkerShared,
    poll: mio::Poll,
    events: mio::Events,
    /// Scratch for timers that fire.
    due: Vec<Entry>,
    /// The next few unstarted tasks, taken out of `new` so that their memory
    /// can be prefetched before they run (see `next_task`).
    new_ahead: VecDeque<TaskRef>,
    /// Tasks to run before the next maintenance pass.
    until_maintenance: u32,
    new_streak: u32,
    /// Killed every registered task after shutdown began.
    swept: bool,
    /// Last census this worker answered.
    census_seen: u64,
    /// Ran a task since it last spun looking for work.
    worked: bool,
    /// Wakes the poll at the next timer's deadline to the nanosecond (the
    /// poll's own timeout is in milliseconds, rounded up).
    clock: Option<TimerFd>,
}

/// A timerfd registered in a worker's poll, and the deadline it is set to.
///
/// A blocked worker's wake-up at its next timer is what a sleep's lateness
/// is made of: `epoll_wait`'s timeout is whole milliseconds, rounded up, so
/// a timer due in 0.2 ms woke the worker up to a millisecond late. Setting
/// the timerfd costs a system call only when the deadline changes;
/// setting it also clears a stale expiry (epoll rechecks readiness before
/// it reports an event), so an expiry that came while the worker was busy
/// is not reported later. (Not on other systems: there, `clock` is None
/// and the poll's timeout alone wakes the worker.)
struct TimerFd {
    fd: std::os::fd::OwnedFd,
    set_for: Option<Instant>,
}

impl TimerFd {
    #[cfg(target_os = "linux")]
    fn new(registry: &mio::Registry) -> Option<TimerFd> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain system call; a non-negative result is a new fd that
        // only this OwnedFd owns.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return None;
        }
        // SAFETY: as above.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        registry
            .register(
                &mut mio::unix::SourceFd(&fd.as_raw_fd()),
                TIMER_TOKEN,
                mio::Interest::READABLE,
            )
            .ok()?;
        Some(TimerFd { fd, set_for: None })
    }

    #[cfg(not(target_os = "linux"))]
    fn new(_: &mio::Registry) -> Option<TimerFd> {
        None
    }

    /// Makes the timerfd expire `left` from now, which is `deadline`
    /// (none: disarmed). Skips the system call when it is set so already.
    fn set(&mut self, deadline: Option<Instant>, left: Duration) {
        if self.set_for == deadline {
            return;
        }
        self.set_for = deadline;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // A zero it_value disarms: an expired deadline fires in 1 ns.
            let left = if deadline.is_some() {
                left.max(Duration::from_nanos(1))
            } else {
                Duration::ZERO
            };
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: `fd` is an open timerfd this struct owns; `spec` is a
            // valid itimerspec and the old-value pointer may be null.
            let r = unsafe {
                libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if r != 0 {
                // The poll's millisecond timeout still wakes the worker.
                self.set_for = None;
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = left;
    }
}

impl Worker<'_> {
    fn run(&mut self) {
        loop {
            if let Some(next) = self.next_task() {
                match next {
                    Next::New(task) => {
                        if let Some(p) = self.start(task) {
                            self.run_task(p);
                        }
                    }
                    Next::Ready(p) => self.run_task(p),
                }
                self.worked = true;
                self.until_maintenance -= 1;
                if self.until_maintenance == 0 {
                    self.until_maintenance = MAINTENANCE_INTERVAL;
                    self.maintenance(Some(Duration::ZERO));
                }
                continue;
            }
            if self.ctx.shared.stop.load(SeqCst) {
                break;
            }
            if self.find_remote_work() || self.spin_for_work() {
                continue;
            }
            self.sleep();
        }
    }

    /// New tasks first (so a spawner's children start in spawn order,
    /// interleaved with tasks that yield — gevent's FIFO), but never more than
    /// NEW_STREAK in a row while started tasks wait.
    #[inline]
    ///
    /// Running a green thread that has not run for a while starts with cache
    /// misses on its header and stack (with 100,000 of them, nothing stays
    /// cached), so while handing out one task this also prefetches the
    /// stack of the one after it and the header of the one after that (whose
    /// stack address is read from its header at the next step).
    fn next_task(&mut self) -> Option<Next> {
        let ready_waiting = !self.ctx.ready.is_empty();
        if (!ready_waiting || self.new_streak < NEW_STREAK) && self.new_available() {
            if let Some(t) = self.take_new() {
                self.new_streak += 1;
                return Some(Next::New(t));
            }
        }
        self.new_streak = 0;
        if !ready_waiting {
            self.drain_inbox();
        }
        let p = self.ctx.ready.pop()?;
        if let Some(next) = self.ctx.ready.peek(0) {
            // SAFETY: a queued started task (TaskPtr's invariant); its
            // `local` is the owner's (this thread's) while it does not run.
            let local = unsafe { next.task().local_mut() };
            // Not above the top of the stack (that is the next stack's
            // guard page, or nothing).
            let lo = local
                .sp_hint
                .saturating_sub(STACK_BELOW_SP)
                .min(local.stack_top.saturating_sub(STACK_LINES * 64));
            prefetch_lines::<STACK_LINES>(lo);
            if let Some(after) = self.ctx.ready.peek(1) {
                // SAFETY: as above.
                prefetch_lines::<HEADER_LINES>(unsafe { after.task() } as *const Task as usize);
            }
        }
        Some(Next::Ready(p))
    }

    /// Tells spawners how many unstarted tasks this worker holds privately
    /// (see `Shared::idle_lighter_worker`).
    #[inline]
    fn publish_ahead(&self) {
        let n = self.new_ahead.len() as u64;
        if self.me.stats.ahead.load(Relaxed) != n {
            self.me.stats.ahead.store(n, Relaxed);
        }
    }

    #[inline]
    fn new_available(&self) -> bool {
        !self.new_ahead.is_empty() || !self.ctx.new.is_empty()
    }

    /// The next unstarted task, keeping up to NEW_AHEAD more taken out of
    /// `new` with their memory prefetched.
    #[inline]
    fn take_new(&mut self) -> Option<TaskRef> {
        let t = match self.new_ahead.pop_front() {
            Some(t) => t,
            None => self.ctx.new.pop()?,
        };
        while self.new_ahead.len() < NEW_AHEAD && !self.ctx.new.is_empty() {
            let Some(next) = self.ctx.new.pop() else {
                break;
            };
            prefetch_lines::<HEADER_LINES>(&*next as *const Task as usize);
            self.new_ahead.push_back(next);
        }
        self.publish_ahead();
        if let Some(next) = self.new_ahead.front() {
            // SAFETY: an unstarted task this worker holds alone (in
            // `new_ahead`); only reading where its stack is.
            if let Co::Unstarted(stack) = unsafe { &*next.co_mut() } {
                let top = corosensei::stack::Stack::base(stack).get();
                prefetch_lines::<{ NEW_STACK_PREFETCH / 64 }>(top - NEW_STACK_PREFETCH);
            }
        }
        Some(t)
    }

    fn drain_inbox(&self) -> bool {
        let mut got = false;
        loop {
            match self.me.inbox.steal() {
                Steal::Success(t) => {
                    self.ctx.ready.push(t);
                    got = true;
                }
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        got
    }

    /// Work from outside this worker: the inbox, the global injector, other
    /// workers' unstarted tasks, expired timers, ready sockets.
    fn find_remote_work(&mut self) -> bool {
        if self.drain_inbox() {
            return true;
        }
        // No poll here: `sleep` polls next, and returns at once when
        // sockets are ready (one epoll_wait per idle turn, not two).
        if self.after_poll() {
            return true;
        }
        let shared = &self.ctx.shared;
        loop {
            match shared.injector.steal_batch_and_pop(&self.ctx.new) {
                Steal::Success(t) => {
                    self.ctx.new.push(t);
                    return true;
                }
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        let n = shared.workers.len();
        for k in 1..n {
            let other = &shared.workers[(self.ctx.index + k) % n];
            loop {
                match other.stealer.steal_batch_and_pop(&self.ctx.new) {
                    Steal::Success(t) => {
                        self.ctx.new.push(t);
                        return true;
                    }
                    Steal::Retry => continue,
                    Steal::Empty => break,
                }
            }
        }
        false
    }

    /// Out of work right after running some: keeps looking for more for
    /// up to `IDLE_SPIN` before blocking in the poll, like Go's spinning Ms.
    /// A green thread woken from another worker (a channel's reply, a lock
    /// handed over) then runs within a fraction of a microsecond instead of
    /// after an eventfd write, an `epoll_wait` return and an OS context
    /// switch (on a VM, a halted virtual CPU's wake-up too: tens of
    /// microseconds); and while this worker spins its `sleeping` flag stays
    /// clear, so the waker skips the eventfd write. Bounded, and only after
    /// work: a worker that found nothing in its last spin sleeps until
    /// woken, so an idle runtime uses no CPU. Returns true if work showed
    /// up.
    fn spin_for_work(&mut self) -> bool {
        if !self.worked {
            return false;
        }
        self.worked = false;
        let start = Instant::now();
        loop {
            for _ in 0..IDLE_SPIN_ROUNDS {
                if self.work_visible() {
                    return true;
                }
                std::hint::spin_loop();
            }
            // Sockets and timers too (a non-blocking poll, skipped when no
            // socket is registered).
            if self.maintenance(Some(Duration::ZERO)) {
                return true;
            }
            if start.elapsed() >= IDLE_SPIN {
                return false;
            }
        }
    }

    /// Whether work for this spinning worker has shown up: its inbox, its
    /// hand-off queue, the runtime's injector, a stop/shutdown/census request, or another
    /// worker's unstarted tasks — when it has at least two. A single
    /// unstarted green thread is left to the worker that spawned it (as
    /// `submit` wakes a sleeper only for a second one, and as Go keeps a
    /// P's `runnext`): a green thread that spawns a partner and then waits
    /// on it hands over within its own worker, where a started green
    /// thread stays for good. Loads only.
    #[inline]
    fn work_visible(&self) -> bool {
        let shared = &*self.ctx.shared;
        !self.me.inbox.is_empty()
            || !self.me.handoff.is_empty()
            || !shared.injector.is_empty()
            || shared.stop.load(Relaxed)
            || (shared.shutting_down.load(Relaxed) && !self.swept)
            || shared.census_epoch.load(Relaxed) != self.census_seen
            || shared.workers.iter().any(|w| w.stealer.len() > 1)
    }

    /// Fires due timers, polls sockets (waiting at most `timeout`), answers
    /// requests from other threads. Returns true if anything became ready.
    fn maintenance(&mut self, timeout: Option<Duration>) -> bool {
        let woke = self.drain_inbox();
        self.poll_io(timeout);
        self.after_poll() || woke
    }

    /// `maintenance` without its poll, for right after one.
    fn after_poll(&mut self) -> bool {
        let mut woke = self.fire_timers();
        woke |= self.drain_inbox();
        self.release_limbo();
        let shared = &self.ctx.shared;
        // Green threads spawned from outside the runtime: a worker that
        // always has work of its own (one green thread yielding in a loop)
        // would otherwise leave them to idle workers, of which there may be
        // none.
        if !shared.injector.is_empty() {
            while let Steal::Retry = shared.injector.steal_batch(&self.ctx.new) {}
            woke = true;
        }
        // Green threads another worker handed to this one (see
        // `Shared::submit`), also when this worker is busy. Into
        // `new_ahead`, not the stealable deque: they were handed here for
        // balance, and must not be stolen back.
        loop {
            match self.me.handoff.steal() {
                Steal::Success(t) => {
                    self.new_ahead.push_back(t);
                    woke = true;
                }
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        self.publish_ahead();
        if !self.swept && shared.shutting_down.load(SeqCst) {
            self.swept = true;
            // Shutdown: kill every green thread this worker started. (Ones
            // not started yet never will be: see `run_task`.)
            for t in self.ctx.registry.borrow().iter() {
                t.kill();
            }
            woke = true;
        }
        let epoch = shared.census_epoch.load(SeqCst);
        if epoch != self.census_seen {
            self.census_seen = epoch;
            self.answer_census(epoch);
        }
        woke || !self.ctx.ready.is_empty()
    }

    fn answer_census(&self, epoch: u64) {
        let (lock, cv) = &self.ctx.shared.census;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if st.epoch != epoch {
            return;
        }
        for t in self.ctx.registry.borrow().iter() {
            // SAFETY: owner worker, and no task runs now (we are in the
            // worker loop): `local` is ours.
            let timed = unsafe { t.local_mut() }.park_deadline.is_some();
            st.tasks.push(CensusEntry {
                task: t.clone(),
                timed,
            });
        }
        st.answered += 1;
        cv.notify_all();
    }

    /// Frees finished tasks once no other thread may be reading the name of
    /// one of them (see `WorkerShared::running_name`).
    fn release_limbo(&self) {
        if self.ctx.limbo.borrow().is_empty() {
            return;
        }
        fence(SeqCst);
        if self.me.readers.load(SeqCst) == 0 {
            self.ctx.limbo.borrow_mut().clear();
        }
    }

    /// Unparks the tasks whose timers are due. Returns true if any woke.
    fn fire_timers(&mut self) -> bool {
        let mut timers = self.ctx.timers.borrow_mut();
        if timers.is_empty() {
            return false;
        }
        let now = Instant::now();
        timers.take_due(now, &mut self.due);
        let mut woke = false;
        for e in self.due.drain(..) {
            let task = &e.task;
            // SAFETY: timers are armed and fired only by the task's owner
            // worker, here in its loop, where no task runs: `local` is ours.
            let local = unsafe { task.local_mut() };
            if local.timer_seq != e.seq || task.is_done() {
                continue; // stale: the task armed a newer entry, or ended
            }
            local.timer_armed = None;
            if task.state.load(Acquire) != PARKED {
                continue;
            }
            match local.park_deadline {
                Some(d) if d <= now => {
                    local.deadline_passed = true;
                    task.unpark();
                    woke = true;
                }
                Some(d) => {
                    // Parked again, longer: this entry becomes that park's.
                    local.timer_armed = Some(d);
                    timers.insert(d, e.task, e.seq);
                }
                None => {}
            }
        }
        woke
    }

    /// Makes sure a timer wakes `task` (parked until `deadline`) in time.
    fn arm_timer(&self, task: &Task, deadline: Instant) {
        // SAFETY: owner worker, task suspended.
        let local = unsafe { task.local_mut() };
        if let Some(armed) = local.timer_armed {
            if armed <= deadline {
                // The pending entry fires first, then re-arms for `deadline`.
                return;
            }
        }
        let mut timers = self.ctx.timers.borrow_mut();
        if local.timer_armed.is_some() {
            timers.stale += 1;
        }
        local.timer_seq = local.timer_seq.wrapping_add(1);
        local.timer_armed = Some(deadline);
        // SAFETY: the task is alive (the caller runs it).
        timers.insert(
            deadline,
            unsafe { TaskRef::from_header(task) },
            local.timer_seq,
        );
        if timers.stale >= TIMER_COMPACT_AT && timers.stale * 2 >= timers.len() {
            // SAFETY: as above; every entry's task is this worker's and none
            // runs now.
            timers.compact(|e| unsafe { e.task.local_mut() }.timer_seq == e.seq);
        }
    }

    fn poll_io(&mut self, timeout: Option<Duration>) {
        // Nothing registered and not meant to block: skip the system call.
        if timeout == Some(Duration::ZERO) && self.me.io.is_empty() {
            return;
        }
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("greenhouse: worker poll failed: {e}");
            }
            return;
        }
        self.me.io.dispatch(&self.events, WAKE_TOKEN);
    }

    /// Blocks in the poll until a wake-up, a socket event or the next timer.
    fn sleep(&mut self) {
        let me = self.me;
        me.sleeping.store(true, SeqCst);
        let shared = &self.ctx.shared;
        if !me.inbox.is_empty()
            || !me.handoff.is_empty()
            || !shared.injector.is_empty()
            || shared.stop.load(SeqCst)
            || (shared.shutting_down.load(SeqCst) && !self.swept)
            || shared.census_epoch.load(SeqCst) != self.census_seen
        {
            me.sleeping.store(false, SeqCst);
            self.maintenance(Some(Duration::ZERO));
            return;
        }
        let next = self.ctx.timers.borrow().next_deadline();
        let mut timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
        if let Some(clock) = &mut self.clock {
            // The timerfd wakes the poll in time; the poll's timeout
            // (milliseconds, rounded up) stays as a fallback.
            clock.set(next, timeout.unwrap_or_default());
        }
        // Stacks and task records pooled during a burst are released once the
        // worker has been idle for a while (stack::trim_pool, records::trim);
        // so are finished tasks kept for a reader.
        let trim = crate::stack::pool_len() > crate::stack::POOL_KEEP_WHEN_IDLE
            || super::records::has_surplus();
        if trim || !self.ctx.limbo.borrow().is_empty() {
            timeout = Some(timeout.map_or(IDLE_TRIM_AFTER, |t| t.min(IDLE_TRIM_AFTER)));
        }
        let slept = Instant::now();
        self.poll_io(timeout);
        me.sleeping.store(false, SeqCst);
        // The poll just ran: polling again at once would only cost a
        // system call per wake-up (a third of an idle cycle's).
        let woke = self.after_poll();
        if trim && !woke && slept.elapsed() >= IDLE_TRIM_AFTER {
            crate::stack::trim_pool();
            super::records::trim();
        }
    }

    /// Resumes a started task until it yields, parks or finishes.
    fn run_task(&mut self, p: TaskPtr) {
        let ctx = self.ctx;
        let stats = &self.me.stats;
        // SAFETY: `p` came from `start` or a run queue: a started, unfinished
        // task of this worker, kept alive by the registry.
        let task = unsafe { p.task() };
        // SAFETY (for every `co_mut`/`local_mut` below): this is the task's
        // owner worker, the task is not running, and no reference into
        // `co`/`local` is held across the resume except the coroutine and
        // its record, which the task never touches.
        let local = unsafe { task.local_mut() };
        if local.parked {
            local.parked = false;
            bump(&stats.unparks);
            if local.park_deadline.is_some() {
                bump(&stats.timed_unparks);
            }
        }
        task.state.store(RUNNING, Relaxed);
        let Co::Started(co, record) = (unsafe { task.co_mut() }) else {
            unreachable!("a started task has a coroutine");
        };
        bump(&stats.switches);
        stats
            .running
            .store(task as *const Task as *mut Task, Relaxed);
        // The task's greenlet state goes in for the resume (the worker's own,
        // empty, waits in its place) and comes back out after. Most green
        // threads never use greenlets: swapping empty for empty is skipped.
        // The worker's own state is empty unless code run on it outside any
        // green thread (a leftover green-local's destructor in `tear_down`)
        // used greenlets: then it is swapped out like any other, so the task
        // never sees it.
        let greenlets = &mut unsafe { task.local_mut() }.greenlets;
        let swapped = !greenlets.is_empty() || !crate::greenlet::thread_state_is_empty();
        if swapped {
            greenlets.swap_with_running();
        }
        let result = {
            let _enter = EnterTask::new(task, record);
            let _stack = OnRecord::enter(record);
            loop {
                let r = co.resume(());
                // A yield with nothing else to run here (no ready or unstarted
                // task, no wake-up in the inbox) and no maintenance due
                // resumes the task at once: the trip through the run queue
                // and the per-resume bookkeeping would only hand it back.
                if matches!(r, CoroutineResult::Yield(Suspend::Yield))
                    && self.until_maintenance > 1
                    && ctx.ready.is_empty()
                    && !self.new_available()
                    && self.me.inbox.is_empty()
                {
                    self.until_maintenance -= 1;
                    bump(&stats.switches);
                    continue;
                }
                break r;
            }
        };
        if swapped || !crate::greenlet::thread_state_is_empty() {
            // The task holds the worker's state now (or made one of its own
            // while the worker's was empty): swap back.
            unsafe { task.local_mut() }.greenlets.swap_with_running();
        }
        stats.running.store(std::ptr::null_mut(), Release);
        match result {
            CoroutineResult::Yield(Suspend::Yield) => {
                task.state.store(SCHEDULED, Relaxed);
                ctx.ready.push(p);
            }
            CoroutineResult::Yield(Suspend::Park(deadline)) => {
                let local = unsafe { task.local_mut() };
                local.parked = true;
                local.park_deadline = deadline;
                bump(&stats.parks);
                if let Some(d) = deadline {
                    bump(&stats.timed_parks);
                    self.arm_timer(task, d);
                }
                if after_suspend_park(task) {
                    ctx.ready.push(p);
                }
            }
            CoroutineResult::Return(()) => {
                let co = std::mem::replace(unsafe { task.co_mut() }, Co::Finished);
                if let Co::Started(co, _) = co {
                    crate::stack::give(co.into_stack());
                }
                self.finish_started(task);
            }
        }
    }

    /// Turns a NEW task into a started one owned by this worker: builds its
    /// coroutine and moves it into the registry. A task killed before it
    /// started (or caught by shutdown) never runs: finishes it and returns
    /// None.
    #[inline]
    fn start(&mut self, task: TaskRef) -> Option<TaskPtr> {
        task.owner.store(self.ctx.index, Release);
        bump(&self.me.stats.started);
        // SAFETY: an unstarted task popped from a queue: this thread holds it
        // alone (task.rs invariants).
        let co = unsafe { task.co_mut() };
        let Co::Unstarted(stack) = std::mem::replace(co, Co::Finished) else {
            unreachable!("a NEW task holds its stack");
        };
        if task.killed.load(SeqCst) || self.ctx.shared.shutting_down.load(SeqCst) {
            // SAFETY: as above.
            unsafe { task.discard_body() };
            crate::stack::give(stack);
            // SAFETY: as above; `co` is Finished, the task not finished.
            unsafe { task.tear_down() };
            task.finish();
            self.count_finished();
            return None;
        }
        // The overflow record names the task; its name lives in the task.
        let name = task.name.as_deref().unwrap_or("<unnamed>");
        let record = stack.info().record(name);
        let top = corosensei::stack::Stack::base(&stack).get();
        // SAFETY: as above; started exactly once.
        *co = Co::Started(unsafe { task.start_body(stack) }, record);
        let p = TaskPtr::of(&task);
        let slot = self.ctx.registry.borrow_mut().insert(task);
        // SAFETY: as above; `p` is alive (the registry holds it).
        let local = unsafe { p.task().local_mut() };
        local.slot = slot;
        local.stack_top = top;
        Some(p)
    }

    /// A started task returned: wake its joiner, drop it from the registry
    /// (into the limbo: it is freed once no reader may look at it).
    fn finish_started(&self, task: &Task) {
        debug_assert_ne!(task.state.load(Relaxed), DONE);
        debug_assert_ne!(task.state.load(Relaxed), PARKED);
        // SAFETY: owner worker; the coroutine returned (`co` is Finished)
        // and the task is not marked finished yet.
        unsafe { task.tear_down() };
        task.finish();
        self.count_finished();
        // SAFETY: owner worker, the task has finished running.
        let slot = unsafe { task.local_mut() }.slot;
        // `task` may be freed from here on.
        if let Some(t) = self.ctx.registry.borrow_mut().remove(slot) {
            let mut limbo = self.ctx.limbo.borrow_mut();
            limbo.push(t);
            let full = limbo.len() >= LIMBO_BATCH;
            drop(limbo);
            if full {
                self.release_limbo();
            }
        }
    }

    fn count_finished(&self) {
        bump(&self.me.stats.finished);
        let shared = &self.ctx.shared;
        if shared.shutting_down.load(Relaxed) {
            let _g = shared.all_done.0.lock().unwrap_or_else(|e| e.into_inner());
            shared.all_done.1.notify_all();
        }
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        // Runs after the loop stopped: no task is alive any more (shutdown
        // waited for all of them), so this only frees leftovers.
        self.ctx.limbo.borrow_mut().clear();
        self.new_ahead.clear();
        drop(self.ctx.ready.take_all());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn events_of(poll: &mut mio::Poll, timeout: Option<Duration>) -> Vec<mio::Token> {
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, timeout).unwrap();
        events.iter().map(|e| e.token()).collect()
    }

    #[test]
    fn the_timerfd_wakes_the_poll_at_its_deadline_not_before_and_not_when_disarmed() {
        let mut poll = mio::Poll::new().unwrap();
        let mut clock = TimerFd::new(poll.registry()).expect("timerfd");
        let start = Instant::now();
        let deadline = start + Duration::from_millis(3);
        clock.set(Some(deadline), Duration::from_millis(3));
        // No poll timeout: only the timerfd can end this wait.
        assert_eq!(events_of(&mut poll, None), [TIMER_TOKEN]);
        assert!(Instant::now() >= deadline);
        // Re-set to a later deadline: the expiry above is not reported again
        // before it.
        let later = Instant::now() + Duration::from_millis(30);
        clock.set(Some(later), Duration::from_millis(30));
        assert_eq!(events_of(&mut poll, None), [TIMER_TOKEN]);
        assert!(Instant::now() >= later);
        // Armed, then disarmed before it expires: no event.
        clock.set(
            Some(Instant::now() + Duration::from_millis(5)),
            Duration::from_millis(5),
        );
        clock.set(None, Duration::ZERO);
        assert!(events_of(&mut poll, Some(Duration::from_millis(40))).is_empty());
    }
}
