//! The blocking pool: OS threads for work that would stall a worker — CPU
//! loops, regular-file I/O, name resolution, blocking C libraries
//! (gevent.threadpool).
//!
//! One pool per process, shared by all runtimes. It starts with no threads,
//! grows by one whenever a job arrives and no thread is idle (up to
//! `MAX_THREADS`; past that, jobs queue), and an idle thread exits after
//! `IDLE_TIMEOUT`.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::park::{park_until, Unparker};
use super::task::WaitReason;

const MAX_THREADS: usize = 64;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        queue: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    cv: Condvar::new(),
};

/// Jobs submitted and not yet handed back to their caller. While one is out,
/// a green thread waiting for it can still be woken (no deadlock).
static JOBS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn jobs_in_flight() -> usize {
    JOBS.load(SeqCst)
}

fn submit(job: Job) {
    let mut st = POOL.state.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(job);
    if st.idle == 0 && st.threads < MAX_THREADS {
        st.threads += 1;
        let spawned = std::thread::Builder::new()
            .name("greenhouse-blocking".into())
            .spawn(pool_thread);
        if spawned.is_err() {
            st.threads -= 1;
            if st.threads == 0 {
                // No thread at all can run it: run it on the caller.
                let job = st.queue.pop_back().expect("just pushed");
                drop(st);
                job();
            }
        }
    } else {
        POOL.cv.notify_one();
    }
}

fn pool_thread() {
    super::worker::mark_runtime_thread();
    let mut st = POOL.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = POOL.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (g, res) = POOL
            .cv
            .wait_timeout(st, IDLE_TIMEOUT)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if res.timed_out() && st.queue.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

struct Slot<T> {
    result: Mutex<Option<Result<T, Box<dyn Any + Send>>>>,
}

/// Runs `f` on the blocking pool and waits for it: a green thread parks (its
/// worker runs other green threads meanwhile), an OS thread blocks. A panic in
/// `f` is resumed in the caller. If the caller is killed or times out while
/// waiting, `f` still runs to completion on the pool and its result is
/// dropped.
pub(crate) fn run_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Arc::new(Slot {
        result: Mutex::new(None),
    });
    let waiter = Unparker::current();
    let s2 = slot.clone();
    JOBS.fetch_add(1, SeqCst);
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            JOBS.fetch_sub(1, SeqCst);
        }
    }
    let done = Done;
    submit(Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        *s2.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        waiter.unpark();
    }));
    loop {
        if let Some(r) = slot.result.lock().unwrap_or_else(|e| e.into_inner()).take() {
            drop(done);
            return match r {
                Ok(v) => v,
                Err(p) => resume_unwind(p),
            };
        }
        park_until(None, WaitReason::Blocking);
    }
}
