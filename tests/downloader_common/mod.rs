//! What the downloader tests share: the example's code, a small fixture,
//! the mixed list every mode must get through, and an https server with a
//! certificate made on the spot. Included by tests/downloader.rs and
//! tests/downloader_patched.rs (patched mode, in a process of its own
//! because `patch_all` is process-wide).

#[allow(dead_code)]
#[path = "../../examples/downloader/main.rs"]
pub mod downloader;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use downloader::common::fixture::{FixtureConfig, FixtureServer};
use downloader::download::{download_all, Options, Outcome, RunMode};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

pub fn small_fixture() -> FixtureConfig {
    FixtureConfig {
        files: 6,
        delay: Duration::from_millis(50),
        max_size: 64 * 1024,
        slow_interval: Duration::from_millis(200),
        ..FixtureConfig::default()
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("greenhouse-test-dl-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn sha256_of(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

pub fn files_in(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The mixed list every mode must get through.
pub fn mixed_urls(server: &FixtureServer) -> Vec<String> {
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

pub fn check_mixed(mode: RunMode) {
    let server = FixtureServer::start(small_fixture()).unwrap();
    let specs = server.specs().to_vec();
    let dir = temp_dir(&format!("{mode:?}"));
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_millis(1500)),
        mode,
        report_failures: false,
        tls_roots: None,
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

/// The example binary (built by `cargo test` with the other examples).
pub fn example_binary() -> PathBuf {
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

/// An https server on 127.0.0.1 serving `/files/NAME` from a fixed set of
/// files (`Connection: close`, one OS thread per connection: the server is
/// not what is being tested). Its certificate is issued for `127.0.0.1` by
/// a CA made for the occasion with rcgen; [`TlsServer::ca_pem`] is that
/// CA's certificate, to trust.
pub struct TlsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// name → contents.
    pub files: Arc<Vec<(String, Vec<u8>)>>,
}

impl TlsServer {
    /// Starts it, serving `count` files of a few KiB to ~300 KiB.
    pub fn start(count: usize) -> TlsServer {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "greenhouse test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let chain = vec![leaf.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        );
        let files: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
            (0..count)
                .map(|i| {
                    let len = 3000 + i * 97_531 % 300_000;
                    let body = (0..len).map(|j| (j * 31 + i * 7) as u8).collect();
                    (format!("secure-{i}.bin"), body)
                })
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = files.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (config, files) = (config.clone(), served.clone());
                std::thread::spawn(move || {
                    let _ = serve_tls(conn, config, &files);
                });
            }
        });
        TlsServer {
            addr,
            ca_pem: ca_cert.pem(),
            files,
        }
    }

    /// The URL of file `i`.
    pub fn url(&self, i: usize) -> String {
        format!("https://{}/files/{}", self.addr, self.files[i].0)
    }
}

/// One request on one TLS connection.
fn serve_tls(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    files: &[(String, Vec<u8>)],
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || req.len() > 16 * 1024 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let found = path
        .strip_prefix("/files/")
        .and_then(|name| files.iter().find(|(n, _)| n == name));
    match found {
        Some((_, body)) => {
            write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            tls.write_all(body)?;
        }
        None => tls.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    tls.conn.send_close_notify();
    tls.flush()
}

/// Downloads every file of `server` over https in `mode`, trusting its CA
/// through `--ca-cert`'s loader, and checks each file on disk.
pub fn check_https(mode: RunMode) {
    let server = TlsServer::start(3);
    let dir = temp_dir(&format!("https-{mode:?}"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.with_extension("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_secs(20)),
        mode,
        report_failures: false,
        tls_roots: Some(downloader::common::http::load_roots(&ca).unwrap()),
    };
    let urls: Vec<String> = (0..server.files.len()).map(|i| server.url(i)).collect();
    let outcomes = download_all(&urls, &opts, &ProgressBar::hidden()).unwrap();
    for (o, (name, body)) in outcomes.iter().zip(server.files.iter()) {
        let s = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", o.url));
        let want: [u8; 32] = Sha256::digest(body).into();
        assert_eq!(s.path, dir.join(name));
        assert_eq!((s.bytes, s.sha256), (body.len() as u64, want), "{name}");
        assert_eq!(sha256_of(&s.path), want, "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&ca).unwrap();
}

/// The ways a URL can fail before any byte arrives, each with what its
/// error message must say: an untrusted certificate, a refused connection,
/// and URLs that are not http(s) URLs at all.
pub fn check_failures(mode: RunMode) {
    let tls = TlsServer::start(1);
    // A port that was listening a moment ago and is not any more.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cases: Vec<(String, &[&str])> = vec![
        (tls.url(0), &["certificate", "--ca-cert"]),
        (
            format!("http://{refused}/file.bin"),
            &["connection refused"],
        ),
        ("not a url".to_string(), &["bad url", "no scheme"]),
        ("127.0.0.1/file.bin".to_string(), &["bad url", "no scheme"]),
        (
            "http://a host/".to_string(),
            &["bad url", "not an http or https url"],
        ),
        (
            "ftp://127.0.0.1/file.bin".to_string(),
            &["bad url", "ftp://"],
        ),
        ("http:///file.bin".to_string(), &["bad url"]),
        (
            "http://127.0.0.1:99999/file.bin".to_string(),
            &["bad url", "port 99999"],
        ),
    ];
    let dir = temp_dir(&format!("failures-{mode:?}"));
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_secs(20)),
        mode,
        report_failures: false,
        tls_roots: None,
    };
    let urls: Vec<String> = cases.iter().map(|(u, _)| u.clone()).collect();
    let outcomes = download_all(&urls, &opts, &ProgressBar::hidden()).unwrap();
    for (o, (url, says)) in outcomes.iter().zip(&cases) {
        let err = match &o.result {
            Ok(s) => panic!("{url} downloaded to {}", s.path.display()),
            Err(e) => e.to_lowercase(),
        };
        for s in *says {
            assert!(err.contains(s), "{url}: {err:?} does not say {s:?}");
        }
    }
    assert!(files_in(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
