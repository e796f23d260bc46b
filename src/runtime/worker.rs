//! The workers: each a small gevent hub running green threads on one OS
//! thread.
//!
//! A worker owns a FIFO run queue of its started green threads (`ready`), a
//! stealable FIFO of unstarted ones (`new`, crossbeam-deque), an inbox for
//! wake-ups from other threads, a `mio::Poll` with a `Waker`, and its timers.
//!
//! # Invariants
//! - A started green thread only ever runs on its owner worker. Only NEW tasks
//!   travel between workers (through `new`/`injector` and stealing).
//! - A task is in at most one queue at a time: it is enqueued only by whoever
//!   moved its state to SCHEDULED (or created it).
//! - `sleeping` is set before a worker re-checks its inbox and blocks in the
//!   poll; whoever pushes to the inbox swaps it back and wakes the poll. Both
//!   sides use SeqCst, so a wake-up is never lost.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};

use super::io::IoSlab;
use super::park::{after_suspend_park, EnterTask};
use super::task::{Suspend, Task, DONE, NEW, PARKED, RUNNING, SCHEDULED};
use super::timer::Timers;
use crate::stack::OnStack;

pub(crate) const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);
const REGISTRY_SHARDS: usize = 32;
/// How many tasks a worker runs between checks of its inbox, timers and
/// sockets when it always has ready work (tokio's "event interval").
const MAINTENANCE_INTERVAL: u32 = 61;
/// At most this many new tasks run in a row while started ones wait.
const NEW_STREAK: u32 = 16;
/// An idle worker releases its surplus pooled stacks after this long.
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(1);

/// Settings a runtime was built with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) stack_size: usize,
    pub(crate) monitor_threshold: Option<Duration>,
    pub(crate) deadlock_detection: bool,
}

/// The part of a worker other threads see.
pub(crate) struct WorkerShared {
    pub(crate) stealer: Stealer<Arc<Task>>,
    pub(crate) inbox: Injector<Arc<Task>>,
    pub(crate) waker: mio::Waker,
    pub(crate) registry: mio::Registry,
    pub(crate) sleeping: AtomicBool,
    pub(crate) io: IoSlab,
    pub(crate) thread: OnceLock<std::thread::Thread>,
    /// Incremented each time the worker resumes a task (stuck-worker monitor).
    pub(crate) switches: AtomicU64,
    /// Id of the task running now, 0 when none.
    pub(crate) running: AtomicU64,
}

/// State shared by all workers of one runtime and its handles.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) workers: Vec<WorkerShared>,
    pub(crate) injector: Injector<Arc<Task>>,
    tasks: Vec<Mutex<TaskMap>>,
    pub(crate) live: AtomicUsize,
    pub(crate) parked: AtomicUsize,
    pub(crate) timed: AtomicUsize,
    pub(crate) io_waiting: AtomicUsize,
    pub(crate) external_handles: AtomicUsize,
    /// Threads inside `Runtime::run`/`try_run`: deadlocks are only reported
    /// while one waits (between runs, the runtime's owner may still wake
    /// parked green threads with its next `run`).
    pub(crate) runs_waiting: AtomicUsize,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) stop: AtomicBool,
    pub(crate) all_done: (Mutex<()>, Condvar),
    pub(crate) deadlock: Mutex<Option<String>>,
}

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// Hashes task ids (unique sequential integers) with one multiplication
/// instead of SipHash: the registry is on the spawn path.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type TaskMap = HashMap<u64, Arc<Task>, std::hash::BuildHasherDefault<IdHasher>>;

pub(crate) fn next_task_id() -> u64 {
    NEXT_TASK_ID.fetch_add(1, Relaxed)
}

impl Shared {
    pub(crate) fn new(config: Config, workers: Vec<WorkerShared>) -> Shared {
        Shared {
            config,
            workers,
            injector: Injector::new(),
            tasks: (0..REGISTRY_SHARDS)
                .map(|_| Mutex::new(TaskMap::default()))
                .collect(),
            live: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            timed: AtomicUsize::new(0),
            io_waiting: AtomicUsize::new(0),
            external_handles: AtomicUsize::new(0),
            runs_waiting: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            all_done: (Mutex::new(()), Condvar::new()),
            deadlock: Mutex::new(None),
        }
    }

    fn shard(&self, id: u64) -> &Mutex<TaskMap> {
        &self.tasks[(id as usize) % REGISTRY_SHARDS]
    }

    /// Records a new live task and queues it to run.
    pub(crate) fn submit(self: &Arc<Self>, task: Arc<Task>) {
        self.live.fetch_add(1, SeqCst);
        self.shard(task.id)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.id, task.clone());
        if self.shutting_down.load(SeqCst) {
            task.killed.store(true, SeqCst);
        }
        match local_ctx() {
            Some(ctx) if Arc::ptr_eq(&ctx.shared, self) => {
                ctx.new.push(task);
                if ctx.new.len() > 1 {
                    self.wake_one_sleeper(Some(ctx.index));
                }
            }
            _ => {
                self.injector.push(task);
                self.wake_one_sleeper(None);
            }
        }
    }

    /// Wakes one worker blocked in its poll (other than `except`), so it can
    /// steal work.
    fn wake_one_sleeper(&self, except: Option<usize>) {
        for (i, w) in self.workers.iter().enumerate() {
            if Some(i) != except && w.sleeping.swap(false, SeqCst) {
                let _ = w.waker.wake();
                return;
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        for w in &self.workers {
            w.sleeping.store(false, SeqCst);
            let _ = w.waker.wake();
        }
    }

    /// Called by whoever moved a task PARKED → SCHEDULED.
    pub(crate) fn note_unparked(&self, task: &Task) {
        self.parked.fetch_sub(1, SeqCst);
        if task.timed.load(Relaxed) {
            self.timed.fetch_sub(1, SeqCst);
        }
    }

    pub(crate) fn unpark_os_thread(&self, worker: usize) {
        if let Some(t) = self.workers.get(worker).and_then(|w| w.thread.get()) {
            t.unpark();
        }
    }

    /// A task finished: forget it, and tell the runtime when none are left.
    fn retire(&self, task: &Task) {
        self.shard(task.id)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task.id);
        if self.live.fetch_sub(1, SeqCst) == 1 {
            let _g = self.all_done.0.lock().unwrap_or_else(|e| e.into_inner());
            self.all_done.1.notify_all();
        }
    }

    /// All live tasks (for kill-all and reports).
    pub(crate) fn all_tasks(&self) -> Vec<Arc<Task>> {
        let mut v = Vec::new();
        for s in &self.tasks {
            v.extend(
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned(),
            );
        }
        v.sort_by_key(|t| t.id);
        v
    }

    pub(crate) fn task_by_id(&self, id: u64) -> Option<Arc<Task>> {
        self.shard(id)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Blocks the calling OS thread until no task is live. Killed green
    /// threads that do not reach a blocking point (a CPU loop) keep it
    /// waiting: every 5 s it logs which ones.
    pub(crate) fn wait_all_done(&self) {
        let start = Instant::now();
        let mut next_report = Duration::from_secs(5);
        let mut g = self.all_done.0.lock().unwrap_or_else(|e| e.into_inner());
        while self.live.load(SeqCst) != 0 {
            g = self
                .all_done
                .1
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if start.elapsed() >= next_report {
                next_report += Duration::from_secs(5);
                let names: Vec<String> = self
                    .all_tasks()
                    .iter()
                    .map(|t| format!("'{}'", t.display_name()))
                    .collect();
                log::warn!(
                    "greenhouse: runtime shutdown has waited {} s for killed green threads that                      have not reached a blocking point: {}",
                    start.elapsed().as_secs(),
                    names.join(", ")
                );
            }
        }
    }
}

/// The worker's own state, reachable from its thread through `WORKER`.
pub(crate) struct WorkerCtx {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) new: Deque<Arc<Task>>,
    pub(crate) ready: RefCell<VecDeque<Arc<Task>>>,
    pub(crate) timers: RefCell<Timers>,
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

pub(crate) fn local_ctx() -> Option<&'static WorkerCtx> {
    let p = WORKER.with(|w| w.get());
    // SAFETY: WORKER is set by `run_worker` to a WorkerCtx that lives on that
    // function's stack frame for as long as the worker loop runs, and is
    // cleared before it returns; every caller runs inside that loop.
    unsafe { p.as_ref() }
}

/// Queues a task that was just moved to SCHEDULED on its owner worker.
pub(crate) fn schedule(task: Arc<Task>) {
    let owner = task.owner.load(Acquire);
    if let Some(ctx) = local_ctx() {
        if ctx.index == owner && Arc::ptr_eq(&ctx.shared, &task.shared) {
            ctx.ready.borrow_mut().push_back(task);
            return;
        }
    }
    let shared = task.shared.clone();
    let w = &shared.workers[owner];
    w.inbox.push(task);
    if w.sleeping.swap(false, SeqCst) {
        let _ = w.waker.wake();
    }
}

/// The worker loop. Runs until the runtime stops.
pub(crate) fn run_worker(
    index: usize,
    shared: Arc<Shared>,
    new: Deque<Arc<Task>>,
    poll: mio::Poll,
) {
    mark_runtime_thread();
    let ctx = WorkerCtx {
        index,
        shared: shared.clone(),
        new,
        ready: RefCell::new(VecDeque::new()),
        timers: RefCell::new(Timers::default()),
    };
    WORKER.with(|w| w.set(&ctx as *const WorkerCtx));
    let mut worker = Worker {
        ctx: &ctx,
        poll,
        events: mio::Events::with_capacity(1024),
        tick: 0,
        new_streak: 0,
    };
    worker.run();
    WORKER.with(|w| w.set(std::ptr::null()));
}

struct Worker<'a> {
    ctx: &'a WorkerCtx,
    poll: mio::Poll,
    events: mio::Events,
    tick: u32,
    new_streak: u32,
}

impl Worker<'_> {
    fn me(&self) -> &WorkerShared {
        &self.ctx.shared.workers[self.ctx.index]
    }

    fn run(&mut self) {
        loop {
            if let Some(task) = self.next_task() {
                self.run_task(task);
                self.tick = self.tick.wrapping_add(1);
                if self.tick % MAINTENANCE_INTERVAL == 0 {
                    self.maintenance(Some(Duration::ZERO));
                }
                continue;
            }
            if self.ctx.shared.stop.load(SeqCst) {
                break;
            }
            if self.find_remote_work() {
                continue;
            }
            self.sleep();
        }
    }

    /// New tasks first (so a spawner's children start in spawn order,
    /// interleaved with tasks that yield — gevent's FIFO), but never more than
    /// NEW_STREAK in a row while started tasks wait.
    fn next_task(&mut self) -> Option<Arc<Task>> {
        let ready_waiting = !self.ctx.ready.borrow().is_empty();
        if !ready_waiting || self.new_streak < NEW_STREAK {
            if let Some(t) = self.ctx.new.pop() {
                self.new_streak += 1;
                return Some(t);
            }
        }
        self.new_streak = 0;
        let t = self.ctx.ready.borrow_mut().pop_front();
        if t.is_some() {
            return t;
        }
        self.drain_inbox();
        let t = self.ctx.ready.borrow_mut().pop_front();
        t
    }

    fn drain_inbox(&self) -> bool {
        let mut got = false;
        loop {
            match self.me().inbox.steal() {
                Steal::Success(t) => {
                    self.ctx.ready.borrow_mut().push_back(t);
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
        if self.maintenance(Some(Duration::ZERO)) {
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

    /// Fires due timers and polls sockets (waiting at most `timeout`).
    /// Returns true if anything became ready.
    fn maintenance(&mut self, timeout: Option<Duration>) -> bool {
        let mut woke = self.drain_inbox();
        self.poll_io(timeout);
        let fired = {
            let timers_empty = self.ctx.timers.borrow().is_empty();
            if timers_empty {
                0
            } else {
                // Take the heap out so unpark → schedule can borrow `ready`
                // while timers fire (it never touches `timers`).
                let mut timers = std::mem::take(&mut *self.ctx.timers.borrow_mut());
                let n = timers.fire(Instant::now());
                let mut slot = self.ctx.timers.borrow_mut();
                let added = std::mem::replace(&mut *slot, timers);
                debug_assert!(added.is_empty(), "timers armed while firing");
                n
            }
        };
        woke |= fired > 0;
        woke |= self.drain_inbox();
        woke || !self.ctx.ready.borrow().is_empty()
    }

    fn poll_io(&mut self, timeout: Option<Duration>) {
        // Nothing registered and not meant to block: skip the system call.
        if timeout == Some(Duration::ZERO) && self.ctx.shared.workers[self.ctx.index].io.is_empty()
        {
            return;
        }
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("greenhouse: worker poll failed: {e}");
            }
            return;
        }
        let me = &self.ctx.shared.workers[self.ctx.index];
        for ev in self.events.iter() {
            if ev.token() == WAKE_TOKEN {
                continue;
            }
            me.io.dispatch(ev);
        }
    }

    /// Blocks in the poll until a wake-up, a socket event or the next timer.
    fn sleep(&mut self) {
        let me = self.me();
        me.sleeping.store(true, SeqCst);
        let shared = &self.ctx.shared;
        if !me.inbox.is_empty() || !shared.injector.is_empty() || shared.stop.load(SeqCst) {
            me.sleeping.store(false, SeqCst);
            return;
        }
        let mut timeout = self
            .ctx
            .timers
            .borrow()
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        // Stacks pooled during a burst are released once the worker has been
        // idle for a while (see stack::trim_pool).
        let trim = crate::stack::pool_len() > crate::stack::POOL_KEEP_WHEN_IDLE;
        if trim {
            timeout = Some(timeout.map_or(IDLE_TRIM_AFTER, |t| t.min(IDLE_TRIM_AFTER)));
        }
        let slept = Instant::now();
        self.poll_io(timeout);
        self.me().sleeping.store(false, SeqCst);
        let woke = self.maintenance(Some(Duration::ZERO));
        if trim && !woke && slept.elapsed() >= IDLE_TRIM_AFTER {
            crate::stack::trim_pool();
        }
    }

    fn run_task(&mut self, task: Arc<Task>) {
        let ctx = self.ctx;
        let shared = &ctx.shared;
        if task.state.load(Acquire) == NEW {
            task.owner.store(ctx.index, Release);
            if task.killed.load(SeqCst) {
                // Killed before it started: it never runs.
                // SAFETY: an unstarted task popped from a queue is held by
                // this thread alone (task.rs invariants).
                let co = unsafe { task.body_mut().co.take() };
                drop(co);
                self.finish(&task);
                return;
            }
        }
        task.state.store(RUNNING, Release);
        // SAFETY: the worker owns the task now (it popped it from its queue)
        // and the task is not running; the coroutine is taken out so the task
        // can use `body` while it runs.
        let mut co = match unsafe { task.body_mut().co.take() } {
            Some(co) => co,
            None => return,
        };
        let me = &shared.workers[ctx.index];
        me.switches.store(me.switches.load(Relaxed) + 1, Relaxed);
        me.running.store(task.id, Relaxed);
        // SAFETY: owner worker, task not running (as above).
        let greenlets = std::mem::take(unsafe { &mut task.body_mut().greenlets });
        let outer = crate::greenlet::swap_thread_state(greenlets);
        let result = {
            let _enter = EnterTask::new(&task);
            let name = task.name.as_deref().unwrap_or("<unnamed>");
            let _stack = OnStack::enter(task.stack_info, name);
            co.resume(())
        };
        let greenlets = crate::greenlet::swap_thread_state(outer);
        // SAFETY: the task has suspended or finished; the worker owns it.
        unsafe { task.body_mut().greenlets = greenlets };
        me.running.store(0, Relaxed);
        match result {
            CoroutineResult::Yield(Suspend::Yield) => {
                // SAFETY: owner worker, task suspended.
                unsafe { task.body_mut().co = Some(co) };
                task.state.store(SCHEDULED, Release);
                ctx.ready.borrow_mut().push_back(task);
            }
            CoroutineResult::Yield(Suspend::Park(deadline)) => {
                // SAFETY: owner worker, task suspended.
                unsafe { task.body_mut().co = Some(co) };
                let gen = task.park_gen.fetch_add(1, AcqRel) + 1;
                if let Some(d) = deadline {
                    ctx.timers.borrow_mut().insert(d, task.clone(), gen);
                    shared.timed.fetch_add(1, SeqCst);
                }
                shared.parked.fetch_add(1, SeqCst);
                if after_suspend_park(&task) {
                    shared.note_unparked(&task);
                    task.state.store(SCHEDULED, Release);
                    ctx.ready.borrow_mut().push_back(task);
                }
            }
            CoroutineResult::Return(()) => {
                crate::stack::give(co.into_stack());
                self.finish(&task);
            }
        }
    }

    fn finish(&self, task: &Arc<Task>) {
        debug_assert_ne!(task.state.load(Relaxed), DONE);
        debug_assert_ne!(task.state.load(Relaxed), PARKED);
        task.finish();
        self.ctx.shared.retire(task);
    }
}
