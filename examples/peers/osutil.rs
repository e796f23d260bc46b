//! What the harness asks of Linux: memory counters, limits it raises, CPU
//! pinning, a description of the machine.

use std::io;

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`, …), in KiB; 0 if absent.
pub fn status_kib(field: &str) -> u64 {
    kib_field("/proc/self/status", field)
}

/// A `kB` field of `/proc/meminfo` (`KernelStack`, `PageTables`, …), in KiB.
pub fn meminfo_kib(field: &str) -> u64 {
    kib_field("/proc/meminfo", field)
}

fn kib_field(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Kernel memory that grows with OS threads and mappings but is not in any
/// process's RSS: kernel stacks plus page tables, in KiB (system-wide).
pub fn kernel_kib() -> u64 {
    meminfo_kib("KernelStack") + meminfo_kib("PageTables")
}

/// Raises the soft open-files limit to the hard one (10,000 connections need
/// 10,000 descriptors on each side) and returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit the call writes into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `want` is a valid rlimit the call reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return lim.rlim_max;
        }
    }
    lim.rlim_cur
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Makes a kernel limit at least `want`, raising it when we may (root).
/// Returns the limit now in force.
pub fn ensure_sysctl(path: &str, want: u64) -> u64 {
    let cur = read_u64(path).unwrap_or(0);
    if cur >= want {
        return cur;
    }
    match std::fs::write(path, want.to_string()) {
        Ok(()) => {
            eprintln!("peers: raised {path} from {cur} to {want}");
            want
        }
        Err(_) => cur,
    }
}

/// `vm.max_map_count`: each guarded stack (greenhouse, may, OS threads) takes two maps.
pub const MAP_COUNT: &str = "/proc/sys/vm/max_map_count";
/// `kernel.pid_max`: every OS thread takes a pid.
pub const PID_MAX: &str = "/proc/sys/kernel/pid_max";

/// Pins the calling thread (and the threads it creates afterwards) to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it
    // (cpu is below CPU_SETSIZE, checked by the caller's nproc), and
    // sched_setaffinity only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Number of CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One line describing the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let mem_gib = meminfo_kib("MemTotal") as f64 / (1024.0 * 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {} CPUs, {mem_gib:.0} GiB, Linux {}",
        cpus(),
        kernel.trim()
    )
}

/// The 1-minute load average (other engineers' builds share the machine).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Current UTC date and time, `YYYY-MM-DD HH:MM UTC` (no date crate needed).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Environment marker: this harness process already leads its own session.
const OWN_SESSION: &str = "PEERS_OWN_SESSION";

/// Runs the harness again as the leader of a new session, so it gets its own
/// scheduler autogroup (Linux shares CPU between autogroups first, then
/// between threads inside one; a shared machine's other sessions would
/// otherwise get the same share however the harness's threads are niced).
/// Returns `None` in the re-executed process, else never returns.
pub fn reexec_in_own_session() -> Option<std::convert::Infallible> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(OWN_SESSION).is_some() {
        return None;
    }
    let exe = std::env::current_exe().expect("own executable");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(OWN_SESSION, "1");
    // SAFETY: setsid is async-signal-safe and touches no memory of ours; the
    // child calls it between fork and exec as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("re-execute the harness");
    std::process::exit(status.code().unwrap_or(1))
}

/// Sets the nice value of this process's autogroup (all its threads and
/// children share it) and of this thread (children inherit it).
pub fn set_nice(n: i32) -> io::Result<()> {
    // Only meaningful when this process leads its own session (see above).
    let _ = std::fs::write("/proc/self/autogroup", n.to_string());
    // SAFETY: plain syscall on this thread (who = 0), no memory passed.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This thread's nice value.
pub fn nice() -> i32 {
    // SAFETY: plain syscall on this thread (who = 0), no memory passed.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// CPU time this process has used, user plus system, in nanoseconds.
pub fn cpu_time_ns() -> u64 {
    // SAFETY: a zeroed rusage is valid; getrusage writes into it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}
