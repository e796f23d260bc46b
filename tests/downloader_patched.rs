//! The downloader's patched mode: ureq's own `std::net` transport, the code
//! the threads mode runs, on green threads after `monkey::patch_all` (which
//! `download_all` calls; nothing here does, so a patched mode that forgot
//! it would block its workers and fail the overlap test). The same checks
//! as the other modes, https included. A process of its own: `patch_all` is
//! process-wide.

#[allow(dead_code)]
mod downloader_common;

use std::time::{Duration, Instant};

use downloader::common::fixture::{FixtureConfig, FixtureServer};
use downloader::download::{download_all, Options, RunMode};
use downloader_common::{check_https, check_mixed, downloader, temp_dir};
use indicatif::ProgressBar;

#[test]
fn patched_mode_downloads_the_good_urls_and_reports_the_bad() {
    check_mixed(RunMode::Patched);
}

#[test]
fn patched_mode_downloads_https_from_a_server_it_is_told_to_trust() {
    check_https(RunMode::Patched);
}

/// 60 downloads, each held back 400 ms by the server: one after another
/// that is 24 s, and 12 s even if each of the two workers ran one download
/// at a time (a std socket call blocking its worker). Overlapped, about one
/// delay; the bound is loose for a loaded machine.
#[test]
fn patched_downloads_overlap_instead_of_blocking_the_workers() {
    let fixture = FixtureConfig {
        files: 60,
        delay: Duration::from_millis(400),
        max_size: 16 * 1024,
        ..FixtureConfig::default()
    };
    let server = FixtureServer::start(fixture).unwrap();
    let urls: Vec<String> = server
        .specs()
        .iter()
        .map(|f| server.url(&format!("/files/{}", f.name)))
        .collect();
    let dir = temp_dir("overlap");
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_secs(60)),
        mode: RunMode::Patched,
        report_failures: false,
        tls_roots: None,
    };
    let start = Instant::now();
    let outcomes = download_all(&urls, &opts, &ProgressBar::hidden()).unwrap();
    let took = start.elapsed();
    for (o, spec) in outcomes.iter().zip(server.specs()) {
        assert_eq!(o.result.as_ref().unwrap().sha256, spec.sha256, "{}", o.url);
    }
    assert!(took < Duration::from_secs(6), "60 x 400 ms took {took:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn patched_mode_failures_say_what_failed() {
    downloader_common::check_failures(RunMode::Patched);
}
