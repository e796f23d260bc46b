//! greenhouse::fs: std::fs's behaviour and error kinds, with every call
//! from a green thread on the blocking pool (a FIFO proves the worker stays
//! free), from plain OS threads in place.

mod net_support;

use std::ffi::CString;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use greenhouse::fs::{self, File, OpenOptions};
use greenhouse::thread;
use net_support::rt;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("greenhouse-fs-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Everything std::fs does here, done through greenhouse::fs, with std's
/// results and error kinds.
fn exercise(dir: &Path) {
    let a = dir.join("a.txt");
    fs::write(&a, "alpha\nbeta\n").unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"alpha\nbeta\n");
    assert_eq!(fs::read_to_string(&a).unwrap(), "alpha\nbeta\n");
    let lines: Vec<String> = BufReader::new(File::open(&a).unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines, ["alpha", "beta"]);
    assert_eq!(fs::metadata(&a).unwrap().len(), 11);
    assert!(fs::exists(&a).unwrap());

    // Error kinds as std.
    let missing = dir.join("missing");
    assert_eq!(fs::read(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        File::open(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::remove_file(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        File::create_new(&a).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        fs::create_dir(dir).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    fs::write(dir.join("bad.txt"), [0xff, 0xfe]).unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("bad.txt")).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    assert_eq!(
        OpenOptions::new().open(&a).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    // File: Read, Write, Seek, through BufWriter, set_len, sync, clone.
    let b = dir.join("b.bin");
    {
        let mut w = BufWriter::new(File::create(&b).unwrap());
        for i in 0..1000u32 {
            w.write_all(&i.to_le_bytes()).unwrap();
        }
        w.flush().unwrap();
        w.get_ref().sync_all().unwrap();
    }
    let mut f = OpenOptions::new().read(true).write(true).open(&b).unwrap();
    assert_eq!(f.seek(SeekFrom::End(0)).unwrap(), 4000);
    f.seek(SeekFrom::Start(4 * 500)).unwrap();
    let mut four = [0; 4];
    f.read_exact(&mut four).unwrap();
    assert_eq!(u32::from_le_bytes(four), 500);
    let mut g = f.try_clone().unwrap();
    assert_eq!(
        g.stream_position().unwrap(),
        2004,
        "clones share the position"
    );
    g.write_all(&u32::MAX.to_le_bytes()).unwrap();
    f.seek(SeekFrom::Start(2004)).unwrap();
    f.read_exact(&mut four).unwrap();
    assert_eq!(u32::from_le_bytes(four), u32::MAX);
    f.set_len(8).unwrap();
    f.sync_data().unwrap();
    let mut rest = Vec::new();
    f.rewind().unwrap();
    assert_eq!(f.read_to_end(&mut rest).unwrap(), 8);
    // A read into a big buffer is capped, never an error.
    let mut big = vec![0; 32];
    f.rewind().unwrap();
    assert_eq!(f.read(&mut big).unwrap(), 8);
    assert_eq!(f.read(&mut big).unwrap(), 0);

    // Append and modes.
    let log = dir.join("log");
    for word in ["one ", "two"] {
        let mut l = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&log)
            .unwrap();
        l.write_all(word.as_bytes()).unwrap();
    }
    assert_eq!(fs::read_to_string(&log).unwrap(), "one two");
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o640
    );
    fs::set_permissions(&log, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Directories and links.
    fs::create_dir_all(dir.join("d/e/f")).unwrap();
    fs::copy(&a, dir.join("d/e/f/copy")).unwrap();
    fs::rename(dir.join("d/e/f/copy"), dir.join("d/moved")).unwrap();
    fs::hard_link(dir.join("d/moved"), dir.join("d/hard")).unwrap();
    std::os::unix::fs::symlink("moved", dir.join("d/soft")).unwrap();
    assert_eq!(
        fs::read_link(dir.join("d/soft")).unwrap(),
        Path::new("moved")
    );
    assert!(fs::symlink_metadata(dir.join("d/soft"))
        .unwrap()
        .is_symlink());
    assert_eq!(
        fs::canonicalize(dir.join("d/soft")).unwrap(),
        fs::canonicalize(dir.join("d/moved")).unwrap()
    );
    let mut names: Vec<_> = fs::read_dir(dir.join("d"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let is_dir = e.file_type().unwrap().is_dir();
            assert_eq!(e.path(), dir.join("d").join(e.file_name()));
            assert_eq!(e.metadata().unwrap().is_dir(), is_dir);
            (e.file_name().into_string().unwrap(), is_dir)
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("e".to_string(), true),
            ("hard".to_string(), false),
            ("moved".to_string(), false),
            ("soft".to_string(), false)
        ]
    );
    let e = fs::remove_dir(dir.join("d")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
    fs::remove_dir_all(dir.join("d")).unwrap();
    fs::create_dir(dir.join("empty")).unwrap();
    fs::remove_dir(dir.join("empty")).unwrap();
    fs::remove_file(&a).unwrap();
    assert!(!fs::exists(&a).unwrap());
}

#[test]
fn std_fs_behaviour_from_green_threads_on_one_and_two_workers() {
    for workers in [1, 2] {
        let dir = TempDir::new(&format!("green{workers}"));
        let path = dir.0.clone();
        rt(workers).run(move || {
            // Several green threads at once, each in its own directory.
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let d = path.join(format!("t{i}"));
                    thread::spawn(move || {
                        fs::create_dir(&d).unwrap();
                        exercise(&d);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
    }
}

#[test]
fn std_fs_behaviour_from_a_plain_os_thread() {
    let dir = TempDir::new("os");
    exercise(&dir.0);
}

#[test]
fn a_blocked_file_operation_leaves_the_only_worker_free() {
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("fifo");
    mkfifo(&fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    // In its own OS thread, so that a stuck worker fails the test instead of
    // hanging it.
    std::thread::spawn(move || {
        let got = rt(1).run(move || {
            // Opening a FIFO for reading blocks until a writer opens it. If
            // the read ran on the worker, the writer below (same, only
            // worker) could never run.
            let f = fifo.clone();
            let reader = thread::spawn(move || fs::read_to_string(f).unwrap());
            thread::yield_now();
            let writer = thread::spawn(move || fs::write(&fifo, "through the pool").unwrap());
            writer.join().unwrap();
            reader.join().unwrap()
        });
        let _ = tx.send(got);
    });
    let got = rx
        .recv_timeout(net_support::PATIENCE)
        .expect("the file read blocked the only worker");
    assert_eq!(got, "through the pool");
}

#[test]
fn a_cancelled_call_unwinds_at_once_and_finishes_on_the_pool() {
    let dir = TempDir::new("cancel");
    let fifo = dir.0.join("fifo");
    mkfifo(&fifo);
    let f = fifo.clone();
    rt(1).run(move || {
        let r = greenhouse::time::timeout(Duration::from_millis(30), || fs::read(&f));
        assert!(r.is_err(), "the read of a FIFO nobody writes timed out");
    });
    // The pool job still waits in open(2): release it (it then reads EOF).
    let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    drop(w);
}

#[test]
fn conversions_keep_the_descriptor() {
    let dir = TempDir::new("conv");
    let p = dir.0.join("c");
    let std_f = std::fs::File::create(&p).unwrap();
    let fd = std_f.as_raw_fd();
    let g = File::from(std_f);
    assert_eq!(g.as_raw_fd(), fd);
    let back: std::fs::File = g.into();
    assert_eq!(back.as_raw_fd(), fd);
    let owned = OwnedFd::from(File::from_std(back));
    let g = File::from(owned);
    let raw = g.into_raw_fd();
    assert_eq!(raw, fd);
    // SAFETY: `raw` was just handed over to us.
    let g = unsafe { File::from_raw_fd(raw) };
    assert!(g.metadata().unwrap().is_file());
    assert!(format!("{g:?}").contains("File"));
    let _std: std::fs::File = g.into_std();
}
