//! Monkey-patching costs, each side by side with its baseline in one
//! criterion group (the groups run in this order, because `patch_all` cannot
//! be undone):
//!
//! - `read_passthrough_unpatched`: `read` of an empty non-blocking pipe from
//!   a plain thread through the hook before `patch_all`, vs libc's `read`
//!   called directly (looked up in libc.so.6, so the hook is bypassed).
//! - `echo_64b`: a TCP echo round trip of 64 bytes, 8 connections, one
//!   worker: greenhouse's own `net` types without patching, vs the same code
//!   on `std::net` under `patch_all`.
//! - `read_passthrough_patched`: the first group again after `patch_all`
//!   (the hook now also checks whether the caller is a green thread).
//!
//! Run: `cargo bench --bench monkey`

use std::ffi::c_void;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};

type ReadFn = unsafe extern "C" fn(libc::c_int, *mut c_void, libc::size_t) -> libc::ssize_t;

/// libc's own `read`, bypassing the executable's hook.
fn libc_read() -> ReadFn {
    // SAFETY: dlopen/dlsym with NUL-terminated names; libc is loaded.
    unsafe {
        let h = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY);
        assert!(!h.is_null());
        let p = libc::dlsym(h, c"read".as_ptr());
        assert!(!p.is_null());
        std::mem::transmute::<*mut c_void, ReadFn>(p)
    }
}

/// An empty non-blocking pipe's read end (the write end is leaked open).
fn empty_pipe() -> libc::c_int {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors.
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) },
        0
    );
    fds[0]
}

fn read_passthrough(c: &mut Criterion, name: &str) {
    let fd = empty_pipe();
    let real = libc_read();
    let mut buf = [0u8; 1];
    let mut g = c.benchmark_group(name);
    g.bench_function("libc read (direct)", |b| {
        b.iter(|| {
            // SAFETY: a valid descriptor and a 1-byte buffer.
            black_box(unsafe { real(fd, buf.as_mut_ptr() as *mut c_void, 1) })
        })
    });
    g.bench_function("read through the hook", |b| {
        b.iter(|| {
            // SAFETY: as above; resolves to the hook.
            black_box(unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, 1) })
        })
    });
    g.finish();
}

fn read_passthrough_unpatched(c: &mut Criterion) {
    assert!(!greenhouse::monkey::is_patched());
    read_passthrough(c, "read_passthrough_unpatched");
}

fn read_passthrough_patched(c: &mut Criterion) {
    greenhouse::monkey::patch_all().unwrap();
    read_passthrough(c, "read_passthrough_patched");
}

const CONNS: u64 = 8;
const MSG: usize = 64;

/// Round trips of `MSG` bytes over `CONNS` connections on one worker; the
/// time of the round trips only (connection set-up excluded).
macro_rules! echo_run {
    ($listener:ty, $stream:ty, $iters:expr) => {{
        let iters: u64 = $iters;
        let rt = greenhouse::runtime::Runtime::builder()
            .workers(1)
            .build()
            .unwrap();
        rt.run(move || {
            let listener = <$listener>::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = greenhouse::thread::spawn(move || {
                for _ in 0..CONNS {
                    let (mut s, _) = listener.accept().unwrap();
                    greenhouse::thread::spawn(move || {
                        let mut buf = [0u8; MSG];
                        loop {
                            match s.read_exact(&mut buf) {
                                Ok(()) => s.write_all(&buf).unwrap(),
                                Err(_) => break,
                            }
                        }
                    });
                }
            });
            let per = iters.div_ceil(CONNS);
            let go = std::sync::Arc::new(greenhouse_barrier(CONNS as usize + 1));
            let clients: Vec<_> = (0..CONNS)
                .map(|_| {
                    let go = go.clone();
                    greenhouse::thread::spawn(move || {
                        let mut s = <$stream>::connect(addr).unwrap();
                        let mut buf = [7u8; MSG];
                        go();
                        for _ in 0..per {
                            s.write_all(&buf).unwrap();
                            s.read_exact(&mut buf).unwrap();
                        }
                    })
                })
                .collect();
            go();
            let start = Instant::now();
            for c in clients {
                c.join().unwrap();
            }
            let elapsed = start.elapsed();
            server.join().unwrap();
            // Per round trip, scaled back to `iters`.
            elapsed.mul_f64(iters as f64 / (per * CONNS) as f64)
        })
    }};
}

/// A start line for `n` green threads (a greenhouse-only wait, so both
/// variants start their clock the same way).
fn greenhouse_barrier(n: usize) -> impl Fn() + Send + Sync {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    move || {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        while count.load(std::sync::atomic::Ordering::SeqCst) < n {
            greenhouse::thread::sleep(Duration::from_micros(100));
        }
    }
}

fn echo(c: &mut Criterion) {
    let mut g = c.benchmark_group("echo_64b");
    g.bench_function("greenhouse::net, unpatched", |b| {
        assert!(!greenhouse::monkey::is_patched());
        b.iter_custom(|iters| {
            echo_run!(
                greenhouse::net::TcpListener,
                greenhouse::net::TcpStream,
                iters
            )
        })
    });
    g.bench_function("std::net under patch_all", |b| {
        greenhouse::monkey::patch_all().unwrap();
        b.iter_custom(|iters| echo_run!(std::net::TcpListener, std::net::TcpStream, iters))
    });
    g.finish();
}

criterion_group!(
    benches,
    read_passthrough_unpatched,
    echo,
    read_passthrough_patched
);

/// `MONKEY_CALLGRIND=1 valgrind --tool=callgrind <bench binary>`: 100,000
/// reads each way, unpatched and patched, in functions whose inclusive
/// instruction counts callgrind reports (repeatable on a noisy machine).
#[inline(never)]
fn reads_direct(fd: libc::c_int, real: ReadFn) {
    let mut buf = [0u8; 1];
    for _ in 0..100_000 {
        // SAFETY: a valid descriptor and a 1-byte buffer.
        black_box(unsafe { real(fd, buf.as_mut_ptr() as *mut c_void, 1) });
    }
}

#[inline(never)]
fn reads_hooked_unpatched(fd: libc::c_int) {
    let mut buf = [0u8; 1];
    for _ in 0..100_000 {
        // SAFETY: as above.
        black_box(unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, 1) });
    }
}

#[inline(never)]
fn reads_hooked_patched(fd: libc::c_int) {
    let mut buf = [0u8; 1];
    for _ in 0..100_000 {
        // SAFETY: as above.
        black_box(unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, 1) });
    }
}

fn main() {
    if std::env::var_os("MONKEY_CALLGRIND").is_some() {
        let fd = empty_pipe();
        let real = libc_read();
        reads_direct(fd, real);
        reads_hooked_unpatched(fd);
        greenhouse::monkey::patch_all().unwrap();
        reads_hooked_patched(fd);
        return;
    }
    if let Some(which) = std::env::var_os("MONKEY_ECHO") {
        // `MONKEY_ECHO=net|std MONKEY_ROUND_TRIPS=N valgrind --tool=callgrind
        // <bench binary>`: N echo round trips and nothing else; two values
        // of N give instructions per round trip with set-up cancelled out.
        let n: u64 = std::env::var("MONKEY_ROUND_TRIPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let d = if which == "std" {
            greenhouse::monkey::patch_all().unwrap();
            echo_run!(std::net::TcpListener, std::net::TcpStream, n)
        } else {
            echo_run!(greenhouse::net::TcpListener, greenhouse::net::TcpStream, n)
        };
        println!("{n} round trips: {d:?}");
        return;
    }
    if std::env::var_os("MONKEY_MIN_OF").is_some() {
        min_of_rounds();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// `MONKEY_MIN_OF=1 <bench binary>`: per-call time of direct and hooked
/// `read`, the minimum over 30 alternating rounds of 200,000 calls each —
/// the noise of a shared machine only ever adds time.
fn min_of_rounds() {
    let fd = empty_pipe();
    let real = libc_read();
    let mut buf = [0u8; 1];
    let mut measure = |patched: bool| {
        let (mut direct, mut hooked) = (f64::MAX, f64::MAX);
        for _ in 0..30 {
            let t = Instant::now();
            for _ in 0..200_000 {
                // SAFETY: a valid descriptor and a 1-byte buffer.
                black_box(unsafe { real(fd, buf.as_mut_ptr() as *mut c_void, 1) });
            }
            direct = direct.min(t.elapsed().as_nanos() as f64 / 200_000.0);
            let t = Instant::now();
            for _ in 0..200_000 {
                // SAFETY: as above.
                black_box(unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, 1) });
            }
            hooked = hooked.min(t.elapsed().as_nanos() as f64 / 200_000.0);
        }
        println!(
            "patched={patched}: libc read {direct:.1} ns, through the hook {hooked:.1} ns, hook adds {:.1} ns",
            hooked - direct
        );
    };
    measure(false);
    greenhouse::monkey::patch_all().unwrap();
    measure(true);
}
