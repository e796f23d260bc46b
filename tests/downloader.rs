//! The downloader example against a local server: every mode downloads
//! the same files with the same checksums; redirects and chunked bodies
//! work; a 404, a reset connection and a too-slow server are reported while
//! the other downloads go on; names are safe and de-duplicated.

#[allow(dead_code)]
#[path = "../examples/downloader/main.rs"]
mod downloader;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use downloader::common::fixture::{FixtureConfig, FixtureServer};
use downloader::demo::{self, DemoConfig};
use downloader::download::{base_name, download_all, Names, Options, Outcome, RunMode};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

fn small_fixture() -> FixtureConfig {
    FixtureConfig {
        files: 6,
        delay: Duration::from_millis(50),
        max_size: 64 * 1024,
        slow_interval: Duration::from_millis(200),
        ..FixtureConfig::default()
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("greenhouse-test-dl-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn sha256_of(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

fn files_in(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The mixed list every mode must get through.
fn mixed_urls(server: &FixtureServer) -> Vec<String> {
    [
        "/files/file-000.bin",
        "/files/file-001.bin",
        "/redirect/file-002.bin",
        "/chunked/file-003.bin",
        "/missing",
        "/reset",
        "/slow/file-004.bin",
        "/files/file-000.bin",
    ]
    .iter()
    .map(|p| server.url(p))
    .collect()
}

fn check_mixed(mode: RunMode) {
    let server = FixtureServer::start(small_fixture()).unwrap();
    let specs = server.specs().to_vec();
    let dir = temp_dir(&format!("{mode:?}"));
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_millis(1500)),
        mode,
        report_failures: false,
    };
    let urls = mixed_urls(&server);
    let outcomes: Vec<Outcome> = download_all(&urls, &opts, &ProgressBar::hidden()).unwrap();
    assert_eq!(outcomes.len(), urls.len());

    // The good ones: right bytes on disk, whatever route they came by.
    let expect = [(0, 0), (1, 1), (2, 2), (3, 3), (7, 0)];
    let mut saved = HashSet::new();
    for (i, f) in expect {
        let o = &outcomes[i];
        let s = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", o.url));
        assert_eq!(s.bytes, specs[f].size, "{}", o.url);
        assert_eq!(s.sha256, specs[f].sha256, "{}", o.url);
        assert_eq!(sha256_of(&s.path), specs[f].sha256, "{}", o.url);
        assert_eq!(s.path.parent().unwrap(), dir);
        saved.insert(s.path.file_name().unwrap().to_str().unwrap().to_string());
    }
    // Names from the URL; the second file-000.bin got a name of its own.
    for n in [
        "file-000.bin",
        "file-001.bin",
        "file-002.bin",
        "file-003.bin",
    ] {
        assert!(saved.contains(n), "{n} missing from {saved:?}");
    }
    assert_eq!(saved.len(), 5);
    // The failures are reported, and leave no file behind.
    let err = |i: usize| outcomes[i].result.as_ref().unwrap_err().to_lowercase();
    assert!(err(4).contains("404"), "{}", err(4));
    assert!(err(5).contains("reset"), "{}", err(5));
    assert!(
        err(6).contains("timeout") || err(6).contains("timed out"),
        "{}",
        err(6)
    );
    assert_eq!(files_in(&dir), saved);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn green_mode_downloads_the_good_urls_and_reports_the_bad() {
    check_mixed(RunMode::Green);
}

#[test]
fn threads_mode_downloads_the_good_urls_and_reports_the_bad() {
    check_mixed(RunMode::Threads);
}

#[test]
fn sequential_mode_downloads_the_good_urls_and_reports_the_bad() {
    check_mixed(RunMode::Sequential);
}

#[test]
fn capped_green_mode_downloads_everything() {
    let server = FixtureServer::start(small_fixture()).unwrap();
    let dir = temp_dir("capped");
    let urls: Vec<String> = server
        .specs()
        .iter()
        .map(|f| server.url(&format!("/files/{}", f.name)))
        .collect();
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: Some(2),
        timeout: Some(Duration::from_secs(20)),
        mode: RunMode::Green,
        report_failures: false,
    };
    let outcomes = download_all(&urls, &opts, &ProgressBar::hidden()).unwrap();
    for (o, spec) in outcomes.iter().zip(server.specs()) {
        assert_eq!(o.result.as_ref().unwrap().sha256, spec.sha256);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn https_to_a_plain_http_server_fails_cleanly_in_green_mode() {
    let server = FixtureServer::start(small_fixture()).unwrap();
    let dir = temp_dir("tls");
    let url = format!("https://{}/files/file-000.bin", server.addr());
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_secs(5)),
        mode: RunMode::Green,
        report_failures: false,
    };
    let outcomes = download_all(&[url], &opts, &ProgressBar::hidden()).unwrap();
    assert!(outcomes[0].result.is_err());
    assert!(files_in(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_summary_counts_failures() {
    let server = FixtureServer::start(small_fixture()).unwrap();
    let dir = temp_dir("summary");
    let urls = vec![server.url("/files/file-000.bin"), server.url("/missing")];
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_secs(20)),
        mode: RunMode::Green,
        report_failures: false,
    };
    let mut out = Vec::new();
    let failed = downloader::download_urls(&urls, &opts, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(failed, 1);
    assert!(out.contains("ok     "), "{out}");
    assert!(out.contains("FAILED "), "{out}");
    assert!(out.contains("1 downloaded, 1 failed"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_names_stay_inside_the_output_directory() {
    for (url, name) in [
        ("http://h/a/b/report.pdf", "report.pdf"),
        ("http://h/../../etc/passwd", "passwd"),
        ("http://h/x/..", "index.html"),
        ("http://h/%2e%2e%2fsecret", "_2e_2e_2fsecret"),
        ("http://h/", "index.html"),
        ("http://h", "index.html"),
        ("https://h/.bashrc", "bashrc"),
        ("http://h/a b.txt?x=1#frag", "a_b.txt"),
        ("http://h/dir\\..\\..\\win.ini", "dir_.._.._win.ini"),
    ] {
        let got = base_name(url);
        assert_eq!(got, name, "{url}");
        assert!(!got.contains('/') && got != "." && got != "..");
    }
    assert_eq!(
        base_name(&format!("http://h/{}", "a".repeat(300))).len(),
        100
    );
}

#[test]
fn names_never_overwrite_existing_files() {
    let dir = temp_dir("names");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.csv"), "keep me").unwrap();
    let names = Names::default();
    let (_, a) = names.create(&dir, "http://h/data.csv").unwrap();
    let (_, b) = names.create(&dir, "http://other/data.csv").unwrap();
    let (_, c) = names.create(&dir, "http://h/noext").unwrap();
    let (_, d) = names.create(&dir, "http://h/noext").unwrap();
    assert_eq!(a, dir.join("data-1.csv"));
    assert_eq!(b, dir.join("data-2.csv"));
    assert_eq!(c, dir.join("noext"));
    assert_eq!(d, dir.join("noext-1"));
    assert_eq!(
        std::fs::read_to_string(dir.join("data.csv")).unwrap(),
        "keep me"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_verifies_every_file_in_every_mode() {
    let cfg = DemoConfig {
        fixture: small_fixture(),
        modes: vec![RunMode::Sequential, RunMode::Threads, RunMode::Green],
        concurrency: None,
        isolate: false,
        progress: false,
    };
    let rows = demo::run_demo(&cfg).unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!((r.verified, r.files), (6, 6), "{:?}", r.mode);
        assert!(r.peak_rss > 0);
    }
    // One OS thread per file really means that many threads at once.
    assert!(rows[1].peak_threads >= 6, "{rows:?}");
    let mut table = Vec::new();
    demo::print_table(&rows, &cfg, &mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    for label in ["sequential", "OS thread per file", "green thread per file"] {
        assert!(table.contains(label), "{table}");
    }
    assert_eq!(table.matches("6/6").count(), 3, "{table}");
}

/// The example binary (built by `cargo test` with the other examples).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join("downloader");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds the examples; with a test filter run `cargo build --examples` first",
        bin.display()
    );
    bin
}

#[test]
fn the_program_runs_each_mode_in_its_own_process_and_prints_the_table() {
    let out = Command::new(example_binary())
        .args(["--files", "5", "--delay-ms", "20"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("5/5").count(), 3, "{stdout}");
}

#[test]
fn the_program_exits_non_zero_when_a_download_fails() {
    let server = FixtureServer::start(small_fixture()).unwrap();
    let dir = temp_dir("exit");
    let out = Command::new(example_binary())
        .arg("-o")
        .arg(&dir)
        .args([server.url("/files/file-001.bin"), server.url("/missing")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 downloaded, 1 failed"), "{stdout}");
    assert_eq!(files_in(&dir), HashSet::from(["file-001.bin".to_string()]));
    std::fs::remove_dir_all(&dir).unwrap();
}
