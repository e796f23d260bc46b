//! The downloader example against a local server: every mode downloads
//! the same files with the same checksums; redirects and chunked bodies
//! work; a 404, a reset connection and a too-slow server are reported while
//! the other downloads go on; names are safe and de-duplicated; https with
//! a CA given by `--ca-cert`. Patched mode: tests/downloader_patched.rs.

#[allow(dead_code)]
mod downloader_common;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use downloader::common::fixture::FixtureServer;
use downloader::demo::{self, DemoConfig};
use downloader::download::{base_name, download_all, Names, Options, RunMode};
use downloader_common::{
    check_https, check_mixed, downloader, example_binary, files_in, small_fixture, temp_dir,
    TlsServer,
};
use indicatif::ProgressBar;

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
        tls_roots: None,
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
        tls_roots: None,
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
        tls_roots: None,
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
    // sequential, threads, green, patched.
    assert_eq!(stdout.matches("5/5").count(), 4, "{stdout}");
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

#[test]
fn green_mode_downloads_https_from_a_server_it_is_told_to_trust() {
    check_https(RunMode::Green);
}

#[test]
fn threads_mode_downloads_https_from_a_server_it_is_told_to_trust() {
    check_https(RunMode::Threads);
}

#[test]
fn ca_cert_makes_the_program_trust_a_private_ca_and_only_then() {
    let server = TlsServer::start(1);
    let dir = temp_dir("ca-cert");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.with_extension("pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(example_binary())
            .arg("-o")
            .arg(&dir)
            .args(args)
            .arg(server.url(0))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    // Without it the built-in roots do not know the CA: a clear failure.
    let (code, text) = run(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(files_in(&dir).is_empty());
    // With it: the file, byte for byte.
    let (code, text) = run(&["--ca-cert".as_ref(), ca.as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    let (name, body) = &server.files[0];
    assert_eq!(&std::fs::read(dir.join(name)).unwrap(), body);
    // A file that is not PEM, or one that is missing, is a set-up error.
    let not_pem = dir.with_extension("txt");
    std::fs::write(&not_pem, "hello").unwrap();
    for bad in [&not_pem, &dir.join("missing.pem")] {
        let (code, text) = run(&["--ca-cert".as_ref(), bad.as_os_str()]);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains(&bad.display().to_string()), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&ca).unwrap();
    std::fs::remove_file(&not_pem).unwrap();
}

#[test]
fn failures_say_what_failed_in_every_mode() {
    for mode in [RunMode::Sequential, RunMode::Threads, RunMode::Green] {
        downloader_common::check_failures(mode);
    }
}

#[test]
fn check_url_passes_http_and_https_urls_with_any_valid_authority() {
    use downloader::download::check_url;
    for ok in [
        "http://127.0.0.1/a.bin",
        "https://example.com:443/a?b=c#d",
        "http://user:pw@example.com:8080/",
        "http://[::1]:65535/x",
        "https://[::1]/x",
    ] {
        assert_eq!(check_url(ok), Ok(()), "{ok}");
    }
    for bad in [
        "http://[::1]:0/x",
        "http://host:80a/",
        "http://[::1]:70000/",
    ] {
        let err = check_url(bad).unwrap_err();
        assert!(err.starts_with("bad URL"), "{bad}: {err}");
    }
}
