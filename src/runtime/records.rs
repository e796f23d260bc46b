//! Memory for task records (`TaskCell`s), pooled like stacks.
//!
//! Every spawn allocates one record and every finished green thread frees
//! one. Through `malloc` that is a few hundred instructions per green thread
//! once bursts overflow glibc's small per-thread cache (a burst of 100,000
//! spawns frees 100,000 records), and records freed on another worker than
//! the one that made them go back through that arena's lock. So records come
//! from size classes of 64 bytes (16-byte aligned: `malloc`'s own alignment,
//! so filling a pool takes the allocator's fast path): each OS
//! thread keeps up to [`LOCAL_MAX`] free blocks per class and trades batches
//! of [`BATCH`] with a process-wide pool, as `stack.rs` does for stacks.
//! Records larger than [`MAX_POOLED`] bytes (a closure capturing a large
//! value) go straight to the global allocator.
//!
//! An idle worker hands surplus blocks back to the allocator ([`trim`]).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::address_runs::{AddressRuns, Addressed};

const CLASS_BYTES: usize = 64;
/// Alignment of pooled blocks: what `malloc` gives without `memalign`.
const CLASS_ALIGN: usize = 16;
/// Largest record served from the pools.
pub(crate) const MAX_POOLED: usize = 1024;
const CLASSES: usize = MAX_POOLED / CLASS_BYTES;
/// Free blocks a thread keeps per class before handing a batch over.
const LOCAL_MAX: usize = 512;
const BATCH: usize = 256;
/// Free blocks kept per class (per thread and shared) after a trim.
const KEEP_WHEN_IDLE: usize = 64;

/// A free block; only its address matters.
struct Block(NonNull<u8>);

// SAFETY: a free block is plain memory owned by whichever pool holds it.
unsafe impl Send for Block {}

struct Classes([Vec<Block>; CLASSES]);

impl Classes {
    const fn new() -> Classes {
        Classes([const { Vec::new() }; CLASSES])
    }
}

impl Drop for Classes {
    fn drop(&mut self) {
        for (class, v) in self.0.iter_mut().enumerate() {
            for b in v.drain(..) {
                // SAFETY: every pooled block was allocated with its class's
                // layout (see `alloc_record`) and is free.
                unsafe { dealloc(b.0.as_ptr(), class_layout(class)) };
            }
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Classes> = const { RefCell::new(Classes::new()) };
}

/// The shared pool: per class, the runs of free blocks threads spilled,
/// handed out lowest addresses first (see [`crate::address_runs`]; the
/// stack pool keeps its shared half the same way). Only ever the static
/// below, which is never dropped: blocks leave it through `refill` and
/// `trim`.
static SHARED: Mutex<SharedClasses> = Mutex::new(SharedClasses::new());

struct SharedClasses([AddressRuns<Block>; CLASSES]);

impl SharedClasses {
    const fn new() -> SharedClasses {
        SharedClasses([const { AddressRuns::new() }; CLASSES])
    }
}

impl Addressed for Block {
    fn address(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// The class serving `layout`, if pooled.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_POOLED || layout.align() > CLASS_ALIGN {
        return None;
    }
    Some((layout.size() - 1) / CLASS_BYTES)
}

fn class_layout(class: usize) -> Layout {
    // Sizes are multiples of the alignment, which is a power of two.
    Layout::from_size_align((class + 1) * CLASS_BYTES, CLASS_ALIGN).expect("valid class layout")
}

/// Allocates memory for a record of `layout`. Free it with [`free_record`]
/// and the same layout.
#[inline]
pub(crate) fn alloc_record(layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        return system_alloc(layout);
    };
    let pooled = LOCAL
        .try_with(|l| {
            let mut l = l.borrow_mut();
            let local = &mut l.0[class];
            if local.is_empty() {
                refill(local, class);
            }
            local.pop()
        })
        .ok()
        .flatten();
    match pooled {
        Some(b) => b.0,
        None => system_alloc(class_layout(class)),
    }
}

#[cold]
fn refill(local: &mut Vec<Block>, class: usize) {
    let run = SHARED.lock().unwrap_or_else(|e| e.into_inner()).0[class].take_lowest();
    if let Some(run) = run {
        local.extend(run);
    }
}

fn system_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: records have a non-zero size (the header).
    let p = unsafe { alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Frees a record allocated by [`alloc_record`] with the same `layout`.
///
/// # Safety
/// `p` came from `alloc_record(layout)`, its contents are dropped, and it is
/// not used again.
#[inline]
pub(crate) unsafe fn free_record(p: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        dealloc(p.as_ptr(), layout);
        return;
    };
    let mut block = Some(Block(p));
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let local = &mut l.0[class];
        if local.len() >= LOCAL_MAX {
            spill(local, class);
        }
        local.push(block.take().expect("freed once"));
    });
    if let Some(b) = block {
        // This thread is exiting: give the block back to the allocator.
        dealloc(b.0.as_ptr(), class_layout(class));
    }
}

#[cold]
fn spill(local: &mut Vec<Block>, class: usize) {
    let start = local.len() - BATCH;
    let mut run: Vec<Block> = local.drain(start..).collect();
    AddressRuns::sort(&mut run); // outside the lock
    SHARED.lock().unwrap_or_else(|e| e.into_inner()).0[class].push(run);
}

/// Whether this thread's pool or the shared one holds more than [`trim`]
/// would keep.
pub(crate) fn has_surplus() -> bool {
    let over = |c: &Classes| c.0.iter().any(|v| v.len() > KEEP_WHEN_IDLE);
    LOCAL.try_with(|l| over(&l.borrow())).unwrap_or(false)
        || SHARED
            .lock()
            .map(|s| s.0.iter().any(|runs| runs.len() > KEEP_WHEN_IDLE))
            .unwrap_or(false)
}

/// Returns surplus free blocks (beyond [`KEEP_WHEN_IDLE`] per class, in this
/// thread's pool and the shared one) to the allocator: called by an idle
/// worker after a burst.
pub(crate) fn trim() {
    let surplus = |c: &mut Classes| {
        let mut out = Classes::new();
        for (from, to) in c.0.iter_mut().zip(out.0.iter_mut()) {
            if from.len() > KEEP_WHEN_IDLE {
                to.extend(from.drain(KEEP_WHEN_IDLE..));
            }
        }
        out
    };
    let shared = {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Classes::new();
        for (runs, to) in shared.0.iter_mut().zip(out.0.iter_mut()) {
            // Keeps the blocks with the lowest addresses.
            to.extend(runs.keep_lowest(KEEP_WHEN_IDLE).into_iter().flatten());
        }
        out
    };
    drop(shared); // Classes::drop frees the blocks
    let _ = LOCAL.try_with(|l| drop(surplus(&mut l.borrow_mut())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_distinct_and_reused_within_their_class() {
        let small = Layout::from_size_align(200, 8).unwrap();
        let a = alloc_record(small);
        let b = alloc_record(small);
        assert_ne!(a, b);
        assert_eq!(a.as_ptr() as usize % CLASS_ALIGN, 0);
        // The whole class size is usable: write it all.
        // SAFETY: both blocks are at least 256 bytes (class of 200).
        unsafe {
            std::ptr::write_bytes(a.as_ptr(), 0xAA, 256);
            std::ptr::write_bytes(b.as_ptr(), 0xBB, 256);
            assert_eq!(*a.as_ptr().add(255), 0xAA);
            free_record(a, small);
        }
        // Same class (193..=256 bytes): the freed block comes back.
        let c = alloc_record(Layout::from_size_align(256, 8).unwrap());
        assert_eq!(c, a);
        // Another class does not get it.
        let d = alloc_record(Layout::from_size_align(64, 8).unwrap());
        assert_ne!(d, a);
        // SAFETY: each freed once with its allocation's layout class.
        unsafe {
            free_record(b, small);
            free_record(c, Layout::from_size_align(256, 8).unwrap());
            free_record(d, Layout::from_size_align(64, 8).unwrap());
        }
    }

    #[test]
    fn blocks_come_back_from_the_shared_pool_in_address_order() {
        // A class no other test uses.
        let layout = Layout::from_size_align(700, 8).unwrap();
        let class = class_of(layout).unwrap();
        let n = LOCAL_MAX + 2 * BATCH;
        let blocks: Vec<usize> = (0..n)
            .map(|_| alloc_record(layout).as_ptr() as usize)
            .collect();
        // Freed shuffled on another thread: it keeps LOCAL_MAX and spills
        // two runs of BATCH (the rest is freed when it exits).
        let order: Vec<usize> = (0..n).map(|i| blocks[(i * 389) % n]).collect();
        let blocks: std::collections::HashSet<usize> = blocks.into_iter().collect();
        std::thread::spawn(move || {
            for b in order {
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { free_record(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
        })
        .join()
        .unwrap();
        let taken: Vec<usize> = std::thread::spawn(move || {
            let v: Vec<usize> = (0..BATCH)
                .map(|_| alloc_record(layout).as_ptr() as usize)
                .collect();
            for &b in &v {
                // SAFETY: as above.
                unsafe { free_record(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
            v
        })
        .join()
        .unwrap();
        // One run, ascending, the one holding the lowest address. (Another
        // test's `trim` may cut the shared runs to KEEP_WHEN_IDLE blocks:
        // only the blocks that came from the pool count.)
        let pooled: Vec<usize> = taken
            .iter()
            .copied()
            .take_while(|b| blocks.contains(b))
            .collect();
        assert!(!pooled.is_empty());
        assert!(pooled.windows(2).all(|w| w[0] < w[1]));
        let shared = SHARED.lock().unwrap();
        assert!(shared.0[class].iter().all(|b| b.address() > taken[0]));
    }

    #[test]
    fn big_or_overaligned_records_bypass_the_pools() {
        assert_eq!(
            class_of(Layout::from_size_align(MAX_POOLED + 1, 8).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
        let big = Layout::from_size_align(4096, 8).unwrap();
        let p = alloc_record(big);
        // SAFETY: 4096 bytes were allocated; freed once with the same layout.
        unsafe {
            std::ptr::write_bytes(p.as_ptr(), 1, 4096);
            free_record(p, big);
        }
    }

    #[test]
    fn blocks_freed_on_other_threads_flow_back_through_the_shared_pool() {
        let layout = Layout::from_size_align(900, 8).unwrap();
        let blocks: Vec<usize> = (0..3 * LOCAL_MAX)
            .map(|_| alloc_record(layout).as_ptr() as usize)
            .collect();
        // Free them all on another thread: it keeps LOCAL_MAX and spills
        // the rest to the shared pool in batches.
        std::thread::spawn(move || {
            for b in blocks {
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { free_record(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
        })
        .join()
        .unwrap();
        let class = class_of(layout).unwrap();
        assert!(SHARED.lock().unwrap().0[class].len() >= BATCH);
        trim();
        assert!(SHARED.lock().unwrap().0[class].len() <= KEEP_WHEN_IDLE);
    }
}
