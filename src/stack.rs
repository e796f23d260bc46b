//! Stacks for green threads, greenlets and generators.
//!
//! Every coroutine in greenhouse runs on its own `mmap`'ed stack whose lowest
//! page is a guard page. Touching the guard page (a stack
//! overflow) is caught by a `SIGSEGV` handler that names the green thread and
//! its stack size, then aborts — the same contract as std's
//! "thread 'x' has overflowed its stack".
//!
//! Stacks are reserved with `MAP_NORESERVE`: only the pages a coroutine
//! actually touches cost memory, so the default size ([`DEFAULT_STACK_SIZE`],
//! 256 KiB of address space) costs a green thread that stays shallow one or two
//! pages of RSS. Finished coroutines hand their stack back to a per-OS-thread
//! pool, so creating a coroutine does not call `mmap` in the common case, and
//! when the pools are empty one `mmap` reserves a batch of stacks.
//!
//! Guard pages are guard markers (`MADV_GUARD_INSTALL`, Linux 6.13+; one
//! system call per batch where `process_madvise` takes them, 6.15+): a batch
//! of stacks is then one kernel memory map. On older kernels a guard page is
//! `PROT_NONE`, and each guarded stack takes two maps. Linux allows 65530
//! maps per process by default (`/proc/sys/vm/max_map_count`), so there about
//! 32,000 live green threads is the default ceiling; creation past it fails
//! with an [`io::Error`] that says so and how to raise it, never with a crash.
//!
//! # Example
//!
//! ```
//! // Green threads (and greenlets) take their stack size from here unless
//! // their builder sets one.
//! assert_eq!(greenhouse::stack::default_size(), greenhouse::stack::DEFAULT_STACK_SIZE);
//! ```

use std::cell::{Cell, RefCell};
use std::io;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use crate::address_runs::{AddressRuns, Addressed};
use corosensei::stack::StackPointer;

/// The stack size a green thread, greenlet or generator gets unless its
/// builder asks for another: 256 KiB of address space.
///
/// Why 256 KiB: the pages are reserved, not committed, so the size costs
/// address space only (1,000,000 green threads reserve 256 GiB of the 128 TiB a
/// process may address) while the memory actually used is what the code
/// touches. It is deep enough for ordinary Rust code — formatting, std I/O,
/// an HTTP client parsing a response — which overflows 16–32 KiB stacks in
/// practice. Code that recurses deeply asks for more with a builder's
/// `stack_size`.
///
/// # Example
///
/// ```
/// assert_eq!(greenhouse::stack::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest usable stack greenhouse hands out: 16 KiB. Smaller requests
/// are rounded up to it.
///
/// # Example
///
/// ```
/// assert!(greenhouse::stack::MIN_STACK_SIZE <= greenhouse::stack::DEFAULT_STACK_SIZE);
/// ```
pub const MIN_STACK_SIZE: usize = 16 * 1024;

static DEFAULT_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK_SIZE);
static POOL_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_POOL_LIMIT);
const DEFAULT_POOL_LIMIT: usize = 1 << 20;

/// How many free stacks a worker keeps once it has been idle for a while;
/// the surplus from a burst is unmapped then (see [`trim_pool`]).
pub(crate) const POOL_KEEP_WHEN_IDLE: usize = 256;

/// Returns the stack size used when a builder does not set one.
///
/// # Example
///
/// ```
/// assert!(greenhouse::stack::default_size() >= greenhouse::stack::MIN_STACK_SIZE);
/// ```
pub fn default_size() -> usize {
    DEFAULT_SIZE.load(Ordering::Relaxed)
}

/// Sets the process-wide default stack size for coroutines created from now
/// on. The size is rounded up to whole pages and to at least
/// [`MIN_STACK_SIZE`].
///
/// # Example
///
/// ```
/// use greenhouse::stack;
/// stack::set_default_size(512 * 1024);
/// assert_eq!(stack::default_size(), 512 * 1024);
/// stack::set_default_size(stack::DEFAULT_STACK_SIZE);
/// ```
pub fn set_default_size(size: usize) {
    DEFAULT_SIZE.store(round_size(size), Ordering::Relaxed);
}

/// Sets how many free stacks are kept for reuse (default 1,048,576; each OS
/// thread keeps up to 512 of them, the rest are shared by all threads).
/// `0` turns pooling off: every coroutine then maps a fresh stack and unmaps
/// it when it finishes. Stacks already pooled beyond the new limit are
/// released as the pools are next used.
///
/// The limit is high so that a burst of green threads (100,000 connections
/// arriving at once) reuses stacks instead of paying `mmap`/`munmap` — and
/// the TLB shootdowns `munmap` causes in a multi-threaded process — for each.
/// A pooled stack keeps the pages it touched, so an idle worker releases its
/// surplus (keeping 256) after a second with nothing to do.
///
/// # Example
///
/// ```
/// use greenhouse::stack;
/// stack::set_pool_limit(0); // measure creation without the pool
/// assert_eq!(stack::pool_limit(), 0);
/// stack::set_pool_limit(1 << 20);
/// ```
pub fn set_pool_limit(stacks_per_thread: usize) {
    POOL_LIMIT.store(stacks_per_thread, Ordering::Relaxed);
}

/// Returns how many free stacks are kept for reuse (see
/// [`set_pool_limit`]).
///
/// # Example
///
/// ```
/// use greenhouse::stack;
/// let saved = stack::pool_limit();
/// stack::set_pool_limit(64);
/// assert_eq!(stack::pool_limit(), 64);
/// stack::set_pool_limit(saved);
/// ```
pub fn pool_limit() -> usize {
    POOL_LIMIT.load(Ordering::Relaxed)
}

// Inlined: `Stack::base` calls it on every resume.
#[inline]
fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    #[cold]
    fn init() -> usize {
        // SAFETY: sysconf has no memory-safety preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        PAGE.store(p, Ordering::Relaxed);
        p
    }
    match PAGE.load(Ordering::Relaxed) {
        0 => init(),
        p => p,
    }
}

/// Rounds a requested size up to whole pages and at least `MIN_STACK_SIZE`.
pub(crate) fn round_size(size: usize) -> usize {
    let page = page_size();
    let size = size.clamp(MIN_STACK_SIZE, isize::MAX as usize / 2);
    (size + page - 1) & !(page - 1)
}

/// One guarded, `mmap`'ed stack. Owned by exactly one coroutine at a time.
pub(crate) struct Stack {
    /// Lowest address of the mapping: the start of the guard page.
    low: usize,
    /// Usable bytes above the guard page.
    size: usize,
    /// The top of the mapping, `low + page + size`: kept rather than
    /// computed because corosensei asks for it on every resume.
    base: StackPointer,
}

/// How many stacks one `mmap` call reserves when a thread's pool first runs
/// dry; later batches grow with what the thread has mapped so far, up to
/// [`MAP_BATCH_MAX`] (see [`map_batch_len`]).
const MAP_BATCH: usize = 64;
/// The largest batch: 512 stacks of the default size reserve 130 MiB of
/// address space (`MAP_NORESERVE`: no memory until touched).
const MAP_BATCH_MAX: usize = 512;

/// `madvise` advice that turns pages into guard markers in the page tables
/// (Linux 6.13+): touching one raises `SIGSEGV` like a `PROT_NONE` page, but
/// the mapping is not split into a separate kernel map per guard.
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `process_madvise`'s name for the calling thread's own process (6.15+).
const PIDFD_SELF: libc::c_long = -10000;

/// How guard pages are made on this kernel, learnt on first use.
static GUARD_METHOD: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(GUARD_UNKNOWN);
const GUARD_UNKNOWN: u8 = 0;
/// One `process_madvise` call installs the guards of a whole batch.
const GUARD_PROCESS_MADVISE: u8 = 1;
/// One `madvise(MADV_GUARD_INSTALL)` per stack.
const GUARD_MADVISE: u8 = 2;
/// One `mprotect(PROT_NONE)` per stack (older kernels): two maps per stack.
const GUARD_MPROTECT: u8 = 3;

impl Stack {
    /// Maps a new stack with `size` usable bytes (already rounded) above one
    /// guard page.
    fn map(size: usize) -> io::Result<Stack> {
        let mut out = Vec::with_capacity(1);
        Stack::map_batch(size, 1, &mut out)?;
        Ok(out.pop().expect("one stack mapped"))
    }

    /// Maps `n` stacks of `size` usable bytes (already rounded) with one
    /// `mmap`, each with a guard page below it, and appends them to `out`.
    ///
    /// The pages are reserved read-write (`MAP_NORESERVE`: only touched
    /// pages cost memory) and each stack's lowest page becomes a guard: a
    /// guard marker where the kernel has them (one system call for the whole
    /// batch, and no extra kernel map per stack, so `vm.max_map_count` stops
    /// limiting how many green threads can live), else `PROT_NONE`.
    fn map_batch(size: usize, n: usize, out: &mut Vec<Stack>) -> io::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        // The method learnt so far is only a cache: a race between two
        // threads learning it at once costs a failed system call, no more.
        let method = GUARD_METHOD.load(Relaxed);
        let used = Stack::map_batch_with(size, n, out, method)?;
        if used != method {
            GUARD_METHOD.store(used, Relaxed);
        }
        Ok(())
    }

    /// [`Stack::map_batch`] starting from guard `method`; returns the method
    /// that worked (a later one when the kernel lacks `method`).
    fn map_batch_with(size: usize, n: usize, out: &mut Vec<Stack>, method: u8) -> io::Result<u8> {
        let page = page_size();
        let stride = size + page;
        let len = stride * n;
        // SAFETY: an anonymous private mapping at an address the kernel picks
        // aliases no existing memory.
        let low = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if low == libc::MAP_FAILED {
            return Err(map_error(io::Error::last_os_error(), size));
        }
        let low = low as usize;
        let used = match install_guards(low, stride, n, method) {
            Ok(used) => used,
            Err(e) => {
                // SAFETY: the mapping made above, not handed out yet.
                unsafe { libc::munmap(low as *mut libc::c_void, len) };
                return Err(map_error(e, size));
            }
        };
        // Each stack owns (and unmaps, on drop) its own part of the mapping.
        out.extend((0..n).map(|i| Stack {
            low: low + i * stride,
            size,
            base:
                StackPointer::new(low + i * stride + stride).expect("a mapping does not end at 0"),
        }));
        Ok(used)
    }

    /// Usable size in bytes (excluding the guard page).
    #[allow(dead_code)] // for the greenlet layer
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range.
    fn guard(&self) -> (usize, usize) {
        (self.low, self.low + page_size())
    }

    /// What the overflow report needs, kept by a coroutine's owner after the
    /// stack itself has moved into the coroutine.
    pub(crate) fn info(&self) -> StackInfo {
        let (guard_low, guard_high) = self.guard();
        StackInfo {
            guard_low,
            guard_high,
            size: self.size,
        }
    }
}

/// A stack's guard range and size (see [`Stack::info`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackInfo {
    guard_low: usize,
    guard_high: usize,
    size: usize,
}

/// Makes the lowest page of each of the `n` stacks laid out every `stride`
/// bytes from `low` a guard page (see [`Stack::map_batch`]), starting with
/// guard `method` and falling back to older ones the kernel lacks; returns
/// the method that worked. Touches no global state, so a test can force any
/// method while other threads map stacks.
fn install_guards(low: usize, stride: usize, n: usize, mut method: u8) -> io::Result<u8> {
    let page = page_size();
    if method <= GUARD_PROCESS_MADVISE && n > 1 {
        let iov: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec {
                iov_base: (low + i * stride) as *mut libc::c_void,
                iov_len: page,
            })
            .collect();
        // SAFETY: the ranges are guard pages of a mapping the caller owns
        // and has not handed out; `iov` is valid for `n` entries.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                n,
                MADV_GUARD_INSTALL,
                0,
            )
        };
        if r == (n * page) as libc::c_long {
            return Ok(GUARD_PROCESS_MADVISE);
        }
        // Not on this kernel (or only part of the batch): per stack below,
        // which installs the rest (installing a guard twice is harmless).
        if r < 0 {
            method = GUARD_MADVISE;
        }
    }
    for i in 0..n {
        let guard = (low + i * stride) as *mut libc::c_void;
        if method != GUARD_MPROTECT {
            // SAFETY: as above, one guard page.
            if unsafe { libc::madvise(guard, page, MADV_GUARD_INSTALL) } == 0 {
                continue;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
            method = GUARD_MPROTECT;
        }
        // SAFETY: as above.
        if unsafe { libc::mprotect(guard, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(method)
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: `low .. low + size + page` is exactly the mapping `map`
        // created; the coroutine that used it has finished (a Stack is only
        // dropped once no coroutine holds it).
        unsafe {
            libc::munmap(self.low as *mut libc::c_void, self.size + page_size());
        }
    }
}

// SAFETY: the stack's base and limit describe memory this Stack owns for its
// whole life (mapped in `map`, unmapped in `drop`); base is the top of the
// mapping and limit its bottom, guard page included, as corosensei requires.
unsafe impl corosensei::stack::Stack for Stack {
    // Inlined and stored: corosensei calls `base` on every resume.
    #[inline(always)]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.low).expect("stack limit is non-zero")
    }
}

/// Builds the error for a refused stack mapping, naming the limit that was
/// most likely hit and how to raise it.
fn map_error(err: io::Error, size: usize) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return io::Error::new(
            err.kind(),
            format!("greenhouse: cannot map a {size}-byte green stack: {err}"),
        );
    }
    let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .ok();
    out_of_memory_error(&err, size, max_maps, maps)
}

/// The error for an `ENOMEM` from mapping a `size`-byte stack, given the
/// map limit and the maps in use (when readable): the map limit when the
/// process is at it, else memory or address space.
fn out_of_memory_error(
    err: &io::Error,
    size: usize,
    max_maps: Option<usize>,
    maps: Option<usize>,
) -> io::Error {
    let msg = match (max_maps, maps) {
        (Some(max), Some(now)) if now + 64 >= max => format!(
            "greenhouse: cannot map a new green stack: the per-process memory-map limit \
             (vm.max_map_count = {max}) is reached ({now} maps in use; on kernels without \
             guard markers every green thread's guarded stack takes two). Raise it, e.g. `sysctl -w vm.max_map_count={}`, or run \
             fewer green threads at once",
            max.saturating_mul(4).max(262_144)
        ),
        _ => format!(
            "greenhouse: cannot map a {size}-byte green stack: out of memory or address space \
             ({err}); check `ulimit -v` (RLIMIT_AS) and vm.overcommit_memory, or use smaller \
             stacks"
        ),
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

/// Free stacks grouped by size.
struct Pool {
    /// (size, free stacks of that size); few distinct sizes, so a Vec.
    buckets: Vec<(usize, Vec<Stack>)>,
}

impl Pool {
    fn bucket(&mut self, size: usize) -> &mut Vec<Stack> {
        bucket(&mut self.buckets, size, Vec::new)
    }
}

/// The entry for `size` in a pool's buckets, made (by `new`) if missing.
fn bucket<V>(buckets: &mut Vec<(usize, V)>, size: usize, new: fn() -> V) -> &mut V {
    let idx = match buckets.iter().position(|(s, _)| *s == size) {
        Some(i) => i,
        None => {
            buckets.push((size, new()));
            buckets.len() - 1
        }
    };
    &mut buckets[idx].1
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { buckets: Vec::new() }) };
}

/// The process-wide pool behind the per-thread ones. Threads exchange stacks
/// with it in batches of `BATCH`: green threads are usually spawned on one
/// worker and finish on another (work stealing), so without it one thread's
/// pool would only fill and another's only drain, and every spawn would map
/// a stack again.
///
/// It keeps each batch a thread hands back as a run sorted by address and
/// hands out the run with the lowest addresses first (see
/// [`crate::address_runs`]), so bursts of spawns take stacks in address
/// order round after round.
static SHARED: std::sync::Mutex<SharedPool> = std::sync::Mutex::new(SharedPool {
    buckets: Vec::new(),
});

/// Free stacks of the shared pool by size, in runs (see [`SHARED`]).
struct SharedPool {
    /// (size, runs of free stacks of that size).
    buckets: Vec<(usize, AddressRuns<Stack>)>,
}

impl SharedPool {
    fn bucket(&mut self, size: usize) -> &mut AddressRuns<Stack> {
        bucket(&mut self.buckets, size, AddressRuns::new)
    }

    fn len(&self) -> usize {
        self.buckets.iter().map(|(_, runs)| runs.len()).sum()
    }
}

impl Addressed for Stack {
    fn address(&self) -> usize {
        self.low
    }
}

/// A thread keeps at most this many free stacks before it hands a batch to
/// the shared pool.
const LOCAL_MAX: usize = 512;
const BATCH: usize = 256;

/// Takes a stack of at least `size` usable bytes from this thread's pool (or
/// a batch from the shared pool), or maps new ones: a batch
/// ([`map_batch_len`]; one system call, not two per stack), the rest of
/// which goes to this thread's pool.
pub(crate) fn take(size: usize) -> io::Result<Stack> {
    let size = round_size(size);
    let pooled = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let local = p.bucket(size);
        if local.is_empty() {
            let run = SHARED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .bucket(size)
                .take_lowest();
            if let Some(run) = run {
                // The run's (empty) vector goes; `local` keeps its own.
                local.extend(run);
            }
        }
        if local.is_empty() {
            map_into(size, local)?;
        }
        Ok(local.pop())
    });
    match pooled {
        Ok(Ok(Some(s))) => Ok(s),
        Ok(Err(e)) => Err(e),
        // The thread is exiting (its pool is gone): one stack, unpooled.
        _ => Stack::map(size),
    }
}

/// Refills an empty pool with newly mapped stacks: a batch, as many as the
/// pool limit lets the pool keep (at least one). If the batch cannot be
/// mapped (address space or the map limit nearly exhausted), one stack.
#[cold]
fn map_into(size: usize, local: &mut Vec<Stack>) -> io::Result<()> {
    let mapped = MAPPED.with(Cell::get);
    let n = map_batch_len(mapped)
        .min(pool_limit().min(LOCAL_MAX))
        .max(1);
    let before = local.len();
    if n == 1 || Stack::map_batch(size, n, local).is_err() {
        Stack::map_batch(size, 1, local)?;
    }
    MAPPED.with(|m| m.set(mapped.saturating_add(local.len() - before)));
    Ok(())
}

thread_local! {
    /// How many stacks this thread has mapped (see [`map_batch_len`]).
    static MAPPED: Cell<usize> = const { Cell::new(0) };
}

/// How many stacks to map at once on a thread that has mapped `mapped` so
/// far: [`MAP_BATCH`], then as many as before (doubling), up to
/// [`MAP_BATCH_MAX`]. A program with a few green threads reserves little;
/// a burst of 100,000 spawns makes ~200 `mmap` calls instead of ~1,600.
/// Each call holds the process's memory-map lock for writing, which stalls
/// the page faults of green threads starting on other workers meanwhile
/// (measured: a cold burst of 100,000 sleepers on 2 workers, 256 -> 242 ms).
fn map_batch_len(mapped: usize) -> usize {
    mapped.clamp(MAP_BATCH, MAP_BATCH_MAX)
}

/// Returns a stack whose coroutine has finished to this thread's pool (a
/// batch overflows to the shared pool), or unmaps it when the pools hold
/// [`pool_limit`] stacks or the thread is exiting.
pub(crate) fn give(stack: Stack) {
    let limit = pool_limit();
    let mut stack = Some(stack);
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let size = stack.as_ref().map(|s| s.size).unwrap_or(0);
        let local = p.bucket(size);
        if local.len() < limit.min(LOCAL_MAX) {
            local.push(stack.take().expect("stack given once"));
            return;
        }
        if limit == 0 {
            return;
        }
        // The newest BATCH become a run, sorted outside the lock (the
        // shared pool's room is checked under it; what does not fit is
        // unmapped).
        let n = local.len().min(BATCH);
        let mut run: Vec<Stack> = local.drain(local.len() - n..).collect();
        AddressRuns::sort(&mut run);
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let runs = shared.bucket(size);
        let room = limit.saturating_sub(runs.len());
        let over = run.len().saturating_sub(room);
        // Unmapped below, outside the lock: the highest addresses.
        let excess: Vec<Stack> = run.drain(..over).collect();
        runs.push(run);
        drop(shared);
        drop(excess);
        if local.len() < LOCAL_MAX {
            local.push(stack.take().expect("stack given once"));
        }
    });
    // `stack` still Some: dropped here, unmapped.
}

/// Free stacks pooled by this OS thread plus the shared pool.
pub(crate) fn pool_len() -> usize {
    let local: usize = POOL
        .try_with(|p| p.borrow().buckets.iter().map(|(_, v)| v.len()).sum())
        .unwrap_or(0);
    let shared: usize = SHARED.lock().map(|p| p.len()).unwrap_or(0);
    local + shared
}

/// Unmaps this thread's pooled stacks beyond [`POOL_KEEP_WHEN_IDLE`], and the
/// shared pool's beyond the same number (called by an idle worker).
pub(crate) fn trim_pool() {
    let shared_surplus: Vec<Stack> = {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (_, runs) in shared.buckets.iter_mut() {
            // Keeps the stacks with the lowest addresses.
            out.extend(runs.keep_lowest(POOL_KEEP_WHEN_IDLE).into_iter().flatten());
        }
        out
    };
    drop(shared_surplus);
    let surplus: Vec<Stack> = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let mut out = Vec::new();
            let mut keep = POOL_KEEP_WHEN_IDLE;
            for (_, v) in p.buckets.iter_mut() {
                let k = keep.min(v.len());
                keep -= k;
                out.extend(v.drain(k..));
            }
            out
        })
        .unwrap_or_default();
    drop(surplus);
}

/// What the overflow handler needs to know about the stack the current OS
/// thread is running on. Plain integers so a signal handler may read it.
#[derive(Clone, Copy)]
struct Running {
    guard_low: usize,
    guard_high: usize,
    size: usize,
    name_ptr: *const u8,
    name_len: usize,
}

const NOT_RUNNING: Running = Running {
    guard_low: 0,
    guard_high: 0,
    size: 0,
    name_ptr: ptr::null(),
    name_len: 0,
};

thread_local! {
    // The record of the green thread's stack this OS thread runs on (the
    // worker installs it around each resume of a green thread): null
    // otherwise. A pointer to a record that stays put while it is installed,
    // so that installing one is one store. Const-initialised and without a
    // destructor, so reading it from the SIGSEGV handler neither allocates
    // nor registers anything. Greenlets and generators install nothing here:
    // the handler finds their records through the running greenlet context
    // (see `set_record_finder`).
    static RUNNING: Cell<*const Running> = const { Cell::new(ptr::null()) };
}

/// An address in the caller's current stack frame: close enough to the stack
/// pointer to tell which stack the caller runs on (stacks are separate
/// mappings, each far larger than a frame).
#[inline(always)]
pub(crate) fn here() -> usize {
    let probe = 0u8;
    // Taking the address puts `probe` in the frame; it is never read.
    &probe as *const u8 as usize
}

/// A coroutine's overflow record, built once when the coroutine is made so
/// that entering its stack is one thread-local store ([`OnRecord::enter`]),
/// or nothing at all for greenlets and generators (found through their
/// context, see [`set_record_finder`]). Building it installs the overflow
/// handler and this thread's alternate signal stack, so the coroutine must
/// be resumed on the thread that built it (greenlets and generators are
/// `!Send`; a green thread's record is built by the worker that runs it).
#[derive(Clone, Copy)]
pub(crate) struct StackRecord(Running);

impl StackRecord {
    /// The usable part of the stack, `(lowest address, size)`: an address
    /// `a` is on this stack when `a.wrapping_sub(low) < size`.
    #[inline]
    pub(crate) fn usable(&self) -> (usize, usize) {
        (self.0.guard_high, self.0.size)
    }
}

impl StackInfo {
    /// The record [`OnRecord::enter`] installs for this stack. `name`
    /// must stay valid (not be freed or moved) while the record is used.
    pub(crate) fn record(&self, name: &str) -> StackRecord {
        install_overflow_handler();
        ensure_altstack();
        StackRecord(Running {
            guard_low: self.guard_low,
            guard_high: self.guard_high,
            size: self.size,
            name_ptr: name.as_ptr(),
            name_len: name.len(),
        })
    }
}

/// While alive, records that the current OS thread runs on a given green
/// stack, so that an overflow there is reported with the coroutine's name:
/// for a record that the greenlet layer's finder cannot see (a green
/// thread's, installed by its worker around each resume; a dropped
/// greenlet unwinding under a throwaway context). Restores the previous
/// record on drop (they nest). The record is borrowed, so it cannot move or
/// be freed while installed.
pub(crate) struct OnRecord<'a> {
    prev: *const Running,
    _record: PhantomData<&'a StackRecord>,
}

impl<'a> OnRecord<'a> {
    /// Marks the stack of `record` as the current one until the result is
    /// dropped (when the resume returns).
    #[inline(always)]
    pub(crate) fn enter(record: &'a StackRecord) -> OnRecord<'a> {
        OnRecord {
            prev: RUNNING.with(|r| r.replace(&record.0)),
            _record: PhantomData,
        }
    }
}

impl Drop for OnRecord<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.prev));
    }
}

/// The second place the overflow handler looks for the running stack's
/// record, when the fault is not in the guard page of the one installed in
/// `RUNNING`: a function of the greenlet layer that returns the running
/// greenlet's record. Greenlets install none on each switch (the running
/// greenlet is already written down by the switch), which keeps the switch
/// short.
static RECORD_FINDER: OnceLock<fn() -> Option<StackRecord>> = OnceLock::new();

/// Registers `finder` as the overflow handler's second source of records
/// (the first registration wins; there is one greenlet layer). `finder`
/// runs inside the signal handler: it may only read memory.
pub(crate) fn set_record_finder(finder: fn() -> Option<StackRecord>) {
    let _ = RECORD_FINDER.set(finder);
}

static INSTALL: Once = Once::new();
static mut PREV_SEGV: libc::sigaction = unsafe_zeroed_sigaction();
static mut PREV_BUS: libc::sigaction = unsafe_zeroed_sigaction();

const fn unsafe_zeroed_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is a plain C struct for which all-zero bytes are a
    // valid value (handler SIG_DFL, empty mask, no flags).
    unsafe { std::mem::zeroed() }
}

/// Installs the SIGSEGV/SIGBUS handler that reports green-stack overflows.
/// Faults elsewhere are passed to the handler that was there before (std's,
/// which reports overflows of OS-thread stacks).
fn install_overflow_handler() {
    INSTALL.call_once(|| {
        // SAFETY: the new action's handler is an `extern "C"` function with
        // the SA_SIGINFO signature; PREV_* are written once, here, before the
        // handler can run (inside call_once), and only read afterwards.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, ptr::addr_of_mut!(PREV_SEGV));
            libc::sigaction(libc::SIGBUS, &action, ptr::addr_of_mut!(PREV_BUS));
        }
    });
}

/// An alternate signal stack this module made for a thread that had none.
struct AltStack {
    mem: usize,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: disables the alternate stack before unmapping the memory
        // registered as it, so the kernel never delivers a signal onto
        // unmapped memory; `mem`/`len` are the mapping made in ensure_altstack.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::sigaltstack(&ss, ptr::null_mut());
            libc::munmap(self.mem as *mut libc::c_void, self.len);
        }
    }
}

thread_local! {
    static ALTSTACK_CHECKED: Cell<bool> = const { Cell::new(false) };
    static OWN_ALTSTACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
}

/// A signal raised by a fault on a green stack's guard page can only be
/// handled on an alternate signal stack. std gives its own threads one; a
/// thread made some other way gets one here.
#[inline]
fn ensure_altstack() {
    if !ALTSTACK_CHECKED.with(|c| c.replace(true)) {
        make_altstack();
    }
}

#[cold]
fn make_altstack() {
    // SAFETY: querying with a null new-stack pointer only writes `cur`.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    unsafe { libc::sigaltstack(ptr::null(), &mut cur) };
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let len = 64 * 1024;
    // SAFETY: a fresh anonymous mapping, registered as this thread's alternate
    // stack and unregistered before it is unmapped (AltStack::drop).
    unsafe {
        let mem = libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let ss = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: len,
        };
        libc::sigaltstack(&ss, ptr::null_mut());
        OWN_ALTSTACK.with(|a| {
            *a.borrow_mut() = Some(AltStack {
                mem: mem as usize,
                len,
            })
        });
    }
}

/// A fixed buffer for building the overflow message without allocating
/// (allocation is not allowed in a signal handler).
struct MsgBuf {
    buf: [u8; 512],
    len: usize,
}

impl std::fmt::Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = RUNNING
        .try_with(|r| r.get())
        .ok()
        .filter(|p| !p.is_null())
        // SAFETY: a non-null RUNNING points to a record that stays valid
        // while installed (see RUNNING).
        .map_or(NOT_RUNNING, |p| unsafe { *p });
    let in_guard = |r: &Running| r.guard_low != 0 && addr >= r.guard_low && addr < r.guard_high;
    let running = if in_guard(&running) {
        running
    } else {
        RECORD_FINDER
            .get()
            .and_then(|find| find())
            .map_or(NOT_RUNNING, |r| r.0)
    };
    if in_guard(&running) {
        use std::fmt::Write;
        // SAFETY: name_ptr/name_len were taken from a &str that the
        // `StackInfo::record` contract keeps alive while the record is used.
        let name = unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                running.name_ptr,
                running.name_len,
            ))
        };
        let mut msg = MsgBuf {
            buf: [0; 512],
            len: 0,
        };
        let _ = write!(
            msg,
            "\ngreen thread '{}' has overflowed its stack ({} KiB)\n\
             fatal runtime error: stack overflow; give it a bigger stack with \
             Builder::stack_size or greenhouse::stack::set_default_size\n",
            name,
            running.size / 1024
        );
        // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer is
        // valid for `len` bytes.
        unsafe {
            libc::write(2, msg.buf.as_ptr() as *const libc::c_void, msg.len);
            libc::abort();
        }
    }
    // Not ours: hand the fault to whoever handled it before us.
    // SAFETY: PREV_* were filled by sigaction in install_overflow_handler
    // before this handler was installed and are never written again.
    unsafe {
        let prev = if sig == libc::SIGBUS {
            ptr::addr_of!(PREV_BUS).read()
        } else {
            ptr::addr_of!(PREV_SEGV).read()
        };
        if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
            // Restore the default action and return: the faulting
            // instruction runs again and the process dies with the signal.
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, ptr::null_mut());
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(prev.sa_sigaction);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
            f(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_handed_back_in_any_order_come_out_of_the_shared_pool_in_address_order() {
        // A size no other test uses: its own bucket in the shared pool.
        let size = round_size(52 * 1024 + 1);
        // Taken on one thread, given back shuffled on another (whose pool
        // keeps LOCAL_MAX and hands runs of BATCH to the shared pool),
        // taken again on a third.
        let lows: Vec<usize> = std::thread::spawn(move || {
            let stacks: Vec<Stack> = (0..LOCAL_MAX + 2 * BATCH)
                .map(|_| take(size).unwrap())
                .collect();
            let lows = stacks.iter().map(|s| s.low).collect();
            let mut stacks: Vec<Option<Stack>> = stacks.into_iter().map(Some).collect();
            // A fixed shuffle (odd stride, coprime with the length).
            let n = stacks.len();
            let order: Vec<usize> = (0..n).map(|i| (i * 389) % n).collect();
            std::thread::spawn(move || {
                for i in order {
                    give(stacks[i].take().unwrap());
                }
            })
            .join()
            .unwrap();
            lows
        })
        .join()
        .unwrap();
        let taken: Vec<usize> = std::thread::spawn(move || {
            let v: Vec<Stack> = (0..BATCH).map(|_| take(size).unwrap()).collect();
            v.iter().map(|s| s.low).collect()
        })
        .join()
        .unwrap();
        // One run, ascending, and the run holding the lowest address.
        assert!(taken.windows(2).all(|w| w[0] < w[1]), "{taken:x?}");
        let spilled_min = *taken.first().unwrap();
        assert!(lows.contains(&spilled_min));
        let mut shared = SHARED.lock().unwrap();
        let runs = shared.bucket(size);
        // (An idle runtime's `trim_pool` in another test may have cut it.)
        assert!(runs.len() <= BATCH);
        assert!(runs.iter().all(|s| s.low > spilled_min));
    }

    #[test]
    fn a_thread_that_keeps_mapping_stacks_maps_them_in_growing_batches() {
        assert_eq!(map_batch_len(0), MAP_BATCH);
        assert_eq!(map_batch_len(MAP_BATCH), MAP_BATCH);
        assert_eq!(map_batch_len(3 * MAP_BATCH), 3 * MAP_BATCH);
        assert_eq!(map_batch_len(usize::MAX), MAP_BATCH_MAX);
        // On a fresh thread, with a size no other test uses (an empty
        // shared bucket): batches of 64, 64, 128, 256 and 512 stacks, each
        // one mapping (one address range) whose rest waits in the pool.
        let size = round_size(44 * 1024 + 1);
        std::thread::spawn(move || {
            let pooled = || POOL.with(|p| p.borrow_mut().bucket(size).len());
            let mut held = Vec::new();
            for batch in [64, 64, 128, 256, 512] {
                held.push(take(size).unwrap());
                assert_eq!(pooled(), batch - 1, "after mapping {}", held.len());
                for _ in 1..batch {
                    held.push(take(size).unwrap());
                }
                assert_eq!(pooled(), 0);
            }
            assert_eq!(MAPPED.with(Cell::get), 1024);
            // Each batch is one mapping: its stacks lie `stride` apart.
            let stride = size + page_size();
            let mut lows: Vec<usize> = held[1024 - 512..].iter().map(|s| s.low).collect();
            lows.sort_unstable();
            assert!(lows.windows(2).all(|w| w[1] - w[0] == stride));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sizes_round_to_pages_and_minimum() {
        assert_eq!(round_size(1), MIN_STACK_SIZE);
        assert_eq!(round_size(MIN_STACK_SIZE + 1), MIN_STACK_SIZE + page_size());
    }

    /// Whether the kernel may read `len` bytes at `addr` on our behalf: a
    /// `write(2)` from an inaccessible page fails with `EFAULT` instead of
    /// faulting the process.
    fn readable(addr: usize, len: usize) -> bool {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two fds into the array; write(2) only reads
        // from `addr` in the kernel, which checks access; both fds closed.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let r = libc::write(fds[1], addr as *const libc::c_void, len);
            libc::close(fds[0]);
            libc::close(fds[1]);
            r == len as isize
        }
    }

    #[test]
    fn guard_page_is_inaccessible_and_stack_is_writable() {
        let s = Stack::map(round_size(64 * 1024)).unwrap();
        let (lo, hi) = s.guard();
        // The usable part is writable from top to bottom.
        let base = lo + page_size();
        // SAFETY: [base, base + size) is the RW part of the mapping.
        unsafe { ptr::write_bytes(base as *mut u8, 0xAB, s.size()) };
        assert!(readable(base, 64));
        assert!(!readable(lo, 64), "guard page is accessible");
        assert!(
            !readable(hi - 64, 64),
            "top of the guard page is accessible"
        );
    }

    #[test]
    fn every_stack_of_a_batch_has_its_guard_page() {
        let mut batch = Vec::new();
        Stack::map_batch(round_size(16 * 1024), 8, &mut batch).unwrap();
        assert_eq!(batch.len(), 8);
        for s in &batch {
            let (lo, hi) = s.guard();
            // SAFETY: the stack's usable part is its own, writable memory.
            unsafe { ptr::write_bytes(hi as *mut u8, 1, s.size()) };
            assert!(!readable(lo, 8), "guard page of {lo:#x} is accessible");
            assert!(readable(hi, 8));
        }
        // Stacks are unmapped one by one, out of order, inside the batch's
        // mapping.
        batch.swap(0, 5);
        drop(batch);
    }

    /// The per-stack fallbacks (`madvise` per stack on 6.13–6.14,
    /// `mprotect` before 6.13) make working guards too: forced here, since
    /// this kernel would pick the batched call.
    #[test]
    fn every_guard_method_guards_every_stack_of_a_batch() {
        for method in [GUARD_MPROTECT, GUARD_MADVISE, GUARD_UNKNOWN] {
            let mut batch = Vec::new();
            // What was used: an older kernel falls back further.
            let used = Stack::map_batch_with(round_size(16 * 1024), 4, &mut batch, method).unwrap();
            assert!(
                used >= method,
                "method {used} is newer than asked ({method})"
            );
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            for s in &batch {
                let (lo, hi) = s.guard();
                // SAFETY: the stack's usable part is its own, writable memory.
                unsafe { ptr::write_bytes(hi as *mut u8, 1, s.size()) };
                assert!(
                    !readable(lo, 8),
                    "method {method}: guard {lo:#x} accessible"
                );
                assert!(
                    readable(hi, 8),
                    "method {method}: stack {hi:#x} not readable"
                );
                // mprotect's guard is its own kernel map, PROT_NONE.
                let own_map = maps
                    .lines()
                    .any(|l| l.starts_with(&format!("{lo:x}-{hi:x} ---p")));
                assert_eq!(
                    own_map,
                    used == GUARD_MPROTECT,
                    "method {used} (asked {method}):\n{maps}"
                );
            }
            drop(batch);
        }
    }

    #[test]
    fn refused_mapping_names_the_map_limit_when_the_process_is_at_it() {
        let enomem = io::Error::from_raw_os_error(libc::ENOMEM);
        let e = out_of_memory_error(&enomem, 65536, Some(65530), Some(65500));
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        let msg = e.to_string();
        assert!(msg.contains("vm.max_map_count = 65530"), "{msg}");
        assert!(msg.contains("sysctl -w vm.max_map_count=262144"), "{msg}");
        assert!(msg.contains("two"), "says each stack takes two maps: {msg}");
    }

    #[test]
    fn refused_mapping_below_the_map_limit_names_memory_and_address_space() {
        let enomem = io::Error::from_raw_os_error(libc::ENOMEM);
        for (max, now) in [(Some(1 << 20), Some(1000)), (None, None)] {
            let e = out_of_memory_error(&enomem, 65536, max, now);
            assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
            let msg = e.to_string();
            assert!(msg.contains("65536-byte"), "{msg}");
            assert!(
                msg.contains("ulimit -v") && msg.contains("RLIMIT_AS"),
                "{msg}"
            );
            assert!(!msg.contains("max_map_count ="), "{msg}");
        }
    }

    #[test]
    fn pool_reuses_stacks() {
        let s = take(DEFAULT_STACK_SIZE).unwrap();
        let addr = s.low;
        give(s);
        let s2 = take(DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(s2.low, addr, "pooled stack was not reused");
        give(s2);
    }
}
