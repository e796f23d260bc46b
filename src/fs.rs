//! Files and directories, shaped like `std::fs`, with every call that
//! touches the disk run on the blocking pool (gevent's `FileObjectThread`).
//!
//! Regular files are always "ready" to the kernel, so a read that waits for
//! a slow disk, a network file system or a FIFO would stall the worker and
//! every green thread on it. Here each call from a green thread is handed to
//! the blocking pool (see [`spawn_blocking`](crate::thread::spawn_blocking))
//! while the green thread parks; from a plain OS thread the call simply runs
//! in place, as std's would.
//!
//! A thin wrapper: the functions and types have std's names, arguments,
//! results and error kinds (`NotFound`, `AlreadyExists`, …); [`Metadata`],
//! [`Permissions`] and [`FileType`] are std's own types.
//!
//! Costs and rules, each for a reason:
//! - Reads and writes copy the data once between the caller's buffer and the
//!   pool thread (a green thread can be killed while the pool thread still
//!   works, so the pool must not write into the caller's memory). One
//!   `read`/`write` call moves at most [`MAX_CHUNK`] bytes, as a read or write
//!   may be short; `read_to_end`, `read_to_string` and `write_all` are single
//!   pool jobs.
//! - A green thread killed (or timed out) while a call runs on the pool
//!   unwinds at once; the call itself finishes on the pool and its result is
//!   dropped.
//!
//! # Example
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! let dir = std::env::temp_dir().join(format!("gh-fs-mod-{}", std::process::id()));
//! greenhouse::run({
//!     let dir = dir.clone();
//!     move || {
//!         greenhouse::fs::create_dir_all(&dir).unwrap();
//!         let path = dir.join("notes.txt");
//!         let mut f = greenhouse::fs::File::create(&path).unwrap();
//!         writeln!(f, "one\ntwo").unwrap();
//!         let lines: Vec<String> = BufReader::new(greenhouse::fs::File::open(&path).unwrap())
//!             .lines()
//!             .map(Result::unwrap)
//!             .collect();
//!         assert_eq!(lines, ["one", "two"]);
//!         assert_eq!(greenhouse::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
//!     }
//! });
//! greenhouse::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use std::fs::{FileType, Metadata, Permissions};

/// The most one [`File`] `read` or `write` call moves (16 MiB): the data is
/// copied through a buffer of at most this size.
///
/// # Example
///
/// ```
/// use std::io::Write;
/// greenhouse::run(|| {
///     let path = std::env::temp_dir().join(format!("gh-max-chunk-{}", std::process::id()));
///     let mut f = greenhouse::fs::File::create(&path).unwrap();
///     // One write call takes at most MAX_CHUNK bytes; write_all loops.
///     let big = vec![0u8; greenhouse::fs::MAX_CHUNK + 1];
///     assert_eq!(f.write(&big).unwrap(), greenhouse::fs::MAX_CHUNK);
///     drop(f);
///     greenhouse::fs::remove_file(&path).unwrap();
/// });
/// ```
pub const MAX_CHUNK: usize = 16 << 20;

/// Runs `f` on the blocking pool when called from a green thread, in place
/// otherwise.
fn blocking<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if crate::runtime::park::current_task().is_some() {
        crate::thread::spawn_blocking(f)
    } else {
        f()
    }
}

/// Reads a whole file (std's `fs::read`).
///
/// # Errors
/// `NotFound`, `PermissionDenied`, … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("a"), b"bytes").unwrap();
///         assert_eq!(greenhouse::fs::read(dir.join("a")).unwrap(), b"bytes");
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read(path))
}

/// Reads a whole file as UTF-8 (std's `fs::read_to_string`).
///
/// # Errors
/// `InvalidData` if it is not UTF-8; otherwise as [`read`].
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("t"), "text").unwrap();
///         assert_eq!(greenhouse::fs::read_to_string(dir.join("t")).unwrap(), "text");
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read_to_string(path))
}

/// Creates or truncates a file and writes `contents` (std's `fs::write`).
///
/// # Errors
/// As std (`NotFound` for a missing directory, …).
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("w"), "hello").unwrap();
///         assert_eq!(greenhouse::fs::metadata(dir.join("w")).unwrap().len(), 5);
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    let contents = contents.as_ref().to_vec();
    blocking(move || std::fs::write(path, contents))
}

/// Metadata of a path, following symbolic links (std's `fs::metadata`).
///
/// # Errors
/// `NotFound`, … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         assert!(greenhouse::fs::metadata(&dir).unwrap().is_dir());
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::metadata(path))
}

/// Metadata of a path without following a final symbolic link.
///
/// # Errors
/// `NotFound`, … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         std::os::unix::fs::symlink(&dir, dir.join("link")).unwrap();
///         assert!(greenhouse::fs::symlink_metadata(dir.join("link")).unwrap().is_symlink());
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::symlink_metadata(path))
}

/// Whether a path exists (`Ok(false)` for a broken symbolic link); std's
/// `fs::exists`.
///
/// # Errors
/// When existence cannot be determined (`PermissionDenied` on a parent, …).
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         assert!(greenhouse::fs::exists(&dir).unwrap());
///         assert!(!greenhouse::fs::exists(dir.join("nothing")).unwrap());
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn exists<P: AsRef<Path>>(path: P) -> io::Result<bool> {
    let path = path.as_ref().to_path_buf();
    blocking(move || path.try_exists())
}

/// Creates one directory.
///
/// # Errors
/// `AlreadyExists`, `NotFound` (missing parent), … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::create_dir(dir.join("sub")).unwrap();
///         let e = greenhouse::fs::create_dir(dir.join("sub")).unwrap_err();
///         assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::create_dir(path))
}

/// Creates a directory and all missing parents.
///
/// # Errors
/// As std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::create_dir_all(dir.join("x/y/z")).unwrap();
///         assert!(greenhouse::fs::metadata(dir.join("x/y/z")).unwrap().is_dir());
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::create_dir_all(path))
}

/// Removes a file.
///
/// # Errors
/// `NotFound`, … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("gone"), "").unwrap();
///         greenhouse::fs::remove_file(dir.join("gone")).unwrap();
///         let e = greenhouse::fs::remove_file(dir.join("gone")).unwrap_err();
///         assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::remove_file(path))
}

/// Removes an empty directory.
///
/// # Errors
/// `NotFound`, a non-empty directory, … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::create_dir(dir.join("empty")).unwrap();
///         greenhouse::fs::remove_dir(dir.join("empty")).unwrap();
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::remove_dir(path))
}

/// Removes a directory and everything in it.
///
/// # Errors
/// As std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::create_dir_all(dir.join("tree/leaf")).unwrap();
///         greenhouse::fs::remove_dir_all(dir.join("tree")).unwrap();
///         assert!(!greenhouse::fs::exists(dir.join("tree")).unwrap());
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::remove_dir_all(path))
}

/// Renames a file or directory, replacing `to` if it is a file.
///
/// # Errors
/// As std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("old"), "x").unwrap();
///         greenhouse::fs::rename(dir.join("old"), dir.join("new")).unwrap();
///         assert_eq!(greenhouse::fs::read_to_string(dir.join("new")).unwrap(), "x");
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    blocking(move || std::fs::rename(from, to))
}

/// Copies a file's contents and permissions; returns the bytes copied.
///
/// # Errors
/// As std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("src"), "copy me").unwrap();
///         assert_eq!(greenhouse::fs::copy(dir.join("src"), dir.join("dst")).unwrap(), 7);
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    blocking(move || std::fs::copy(from, to))
}

/// Creates a hard link `link` to `original`.
///
/// # Errors
/// As std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("orig"), "same").unwrap();
///         greenhouse::fs::hard_link(dir.join("orig"), dir.join("hard")).unwrap();
///         assert_eq!(greenhouse::fs::read_to_string(dir.join("hard")).unwrap(), "same");
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    let (original, link) = (original.as_ref().to_path_buf(), link.as_ref().to_path_buf());
    blocking(move || std::fs::hard_link(original, link))
}

/// The target of a symbolic link.
///
/// # Errors
/// As std (`InvalidInput` if `path` is not a link).
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         std::os::unix::fs::symlink("target", dir.join("ln")).unwrap();
///         assert_eq!(greenhouse::fs::read_link(dir.join("ln")).unwrap(), std::path::Path::new("target"));
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_link<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read_link(path))
}

/// The absolute path with every symbolic link and `.`/`..` resolved.
///
/// # Errors
/// `NotFound`, … as std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         let c = greenhouse::fs::canonicalize(dir.join(".")).unwrap();
///         assert!(c.is_absolute());
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn canonicalize<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::canonicalize(path))
}

/// Sets a path's permissions.
///
/// # Errors
/// As std.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         use std::os::unix::fs::PermissionsExt;
///         greenhouse::fs::write(dir.join("p"), "").unwrap();
///         greenhouse::fs::set_permissions(dir.join("p"), greenhouse::fs::Permissions::from_mode(0o600)).unwrap();
///         let mode = greenhouse::fs::metadata(dir.join("p")).unwrap().permissions().mode();
///         assert_eq!(mode & 0o777, 0o600);
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::set_permissions(path, perm))
}

/// The entries of a directory (std's `fs::read_dir`). The whole listing is
/// read in one pool job; iterating it then never blocks.
///
/// # Errors
/// `NotFound`, `PermissionDenied`, … as std; an error reading one entry is
/// yielded in its place, as std does.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("one"), "").unwrap();
///         let names: Vec<_> = greenhouse::fs::read_dir(&dir)
///             .unwrap()
///             .map(|e| e.unwrap().file_name())
///             .collect();
///         assert!(names.contains(&"one".into()));
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    let path = path.as_ref().to_path_buf();
    blocking(move || {
        let entries = std::fs::read_dir(path)?
            .map(|e| e.map(|e| DirEntry { inner: Arc::new(e) }))
            .collect::<Vec<_>>();
        Ok(ReadDir {
            entries: entries.into_iter(),
        })
    })
}

/// The entries of a directory, read by [`read_dir`].
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         let n = greenhouse::fs::read_dir(&dir).unwrap().count();
///         assert!(n < 1_000_000);
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct ReadDir {
    entries: std::vec::IntoIter<io::Result<DirEntry>>,
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("remaining", &self.entries.len())
            .finish()
    }
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;
    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        self.entries.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

/// One entry of a [`ReadDir`]: std's `DirEntry`, whose `metadata` and
/// `file_type` (which may touch the disk) run on the blocking pool.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         greenhouse::fs::write(dir.join("entry"), "12345").unwrap();
///         for e in greenhouse::fs::read_dir(&dir).unwrap() {
///             let e = e.unwrap();
///             if e.file_name() == "entry" {
///                 assert_eq!(e.metadata().unwrap().len(), 5);
///             }
///         }
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct DirEntry {
    inner: Arc<std::fs::DirEntry>,
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl DirEntry {
    /// The entry's full path (the directory's path joined with its name).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::write(dir.join("p1"), "").unwrap();
    ///         let e = greenhouse::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
    ///         assert!(e.path().starts_with(&dir));
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// The entry's file name.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::write(dir.join("only"), "").unwrap();
    ///         let e = greenhouse::fs::read_dir(&dir).unwrap().find(|e| e.as_ref().unwrap().file_name() == "only");
    ///         assert!(e.is_some());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn file_name(&self) -> OsString {
        self.inner.file_name()
    }

    /// The entry's metadata, not following a final symbolic link.
    ///
    /// # Errors
    /// As std (the entry may have been removed since).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::write(dir.join("m"), "abc").unwrap();
    ///         let e = greenhouse::fs::read_dir(&dir).unwrap().find(|e| e.as_ref().unwrap().file_name() == "m").unwrap().unwrap();
    ///         assert_eq!(e.metadata().unwrap().len(), 3);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        let e = self.inner.clone();
        blocking(move || e.metadata())
    }

    /// The entry's file type (usually known from the listing itself).
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::create_dir(dir.join("d")).unwrap();
    ///         let e = greenhouse::fs::read_dir(&dir).unwrap().find(|e| e.as_ref().unwrap().file_name() == "d").unwrap().unwrap();
    ///         assert!(e.file_type().unwrap().is_dir());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn file_type(&self) -> io::Result<FileType> {
        let e = self.inner.clone();
        blocking(move || e.file_type())
    }
}

/// Options for opening a file (std's `OpenOptions`); [`open`](OpenOptions::open)
/// runs on the blocking pool. Also implements `std::os::unix::fs::OpenOptionsExt`
/// (`mode`, `custom_flags`).
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         use std::io::Write;
///         let mut log = greenhouse::fs::OpenOptions::new()
///             .append(true)
///             .create(true)
///             .open(dir.join("log"))
///             .unwrap();
///         log.write_all(b"line\n").unwrap();
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    inner: std::fs::OpenOptions,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Options with everything off (open would fail: choose read, write or
    /// append).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::write(dir.join("r"), "x").unwrap();
    ///         let f = greenhouse::fs::OpenOptions::new().read(true).open(dir.join("r"));
    ///         assert!(f.is_ok());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions {
            inner: std::fs::OpenOptions::new(),
        }
    }

    /// Opens for reading.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::write(dir.join("r"), "x").unwrap();
    ///         assert!(greenhouse::fs::OpenOptions::new().read(true).open(dir.join("r")).is_ok());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.inner.read(read);
        self
    }

    /// Opens for writing (from the start, without truncating unless asked).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let f = greenhouse::fs::OpenOptions::new().write(true).create(true).open(dir.join("w"));
    ///         assert!(f.is_ok());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.inner.write(write);
        self
    }

    /// Opens for appending: every write goes to the end.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         use std::io::Write;
    ///         let path = dir.join("a");
    ///         greenhouse::fs::write(&path, "1").unwrap();
    ///         let mut f = greenhouse::fs::OpenOptions::new().append(true).open(&path).unwrap();
    ///         f.write_all(b"2").unwrap();
    ///         assert_eq!(greenhouse::fs::read_to_string(&path).unwrap(), "12");
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.inner.append(append);
        self
    }

    /// Truncates the file to 0 bytes on open (needs write).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let path = dir.join("t");
    ///         greenhouse::fs::write(&path, "old").unwrap();
    ///         greenhouse::fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
    ///         assert_eq!(greenhouse::fs::read(&path).unwrap().len(), 0);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.inner.truncate(truncate);
        self
    }

    /// Creates the file if it is missing (needs write or append).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let f = greenhouse::fs::OpenOptions::new().write(true).create(true).open(dir.join("c"));
    ///         assert!(f.is_ok());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.inner.create(create);
        self
    }

    /// Creates the file, failing with `AlreadyExists` if it exists.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let path = dir.join("n");
    ///         let o = greenhouse::fs::OpenOptions::new().write(true).create_new(true).clone();
    ///         assert!(o.open(&path).is_ok());
    ///         assert_eq!(o.open(&path).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.inner.create_new(create_new);
        self
    }

    /// Opens `path` with these options, on the blocking pool.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyExists`, `PermissionDenied`, `InvalidInput` (no
    /// access mode chosen), … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let e = greenhouse::fs::OpenOptions::new().read(true).open(dir.join("missing")).unwrap_err();
    ///         assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let path = path.as_ref().to_path_buf();
        let opts = self.inner.clone();
        blocking(move || opts.open(path)).map(File::from_std)
    }
}

impl std::os::unix::fs::OpenOptionsExt for OpenOptions {
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.inner.mode(mode);
        self
    }
    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.inner.custom_flags(flags);
        self
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    fn from(inner: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions { inner }
    }
}

/// An open file (std's `File`) whose every operation runs on the blocking
/// pool when called from a green thread. Implements `Read`, `Write` and
/// `Seek` (also for `&File`, like std), so `BufReader`, `BufWriter`,
/// `read_line`, `write_all` and `io::copy` work.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
/// greenhouse::fs::create_dir_all(&dir).unwrap();
/// greenhouse::run({
///     let dir = dir.clone();
///     move || {
///         use std::io::{Read, Seek, SeekFrom, Write};
///         let mut f = greenhouse::fs::File::options()
///             .read(true)
///             .write(true)
///             .create(true)
///             .open(dir.join("rw"))
///             .unwrap();
///         f.write_all(b"hello world").unwrap();
///         f.seek(SeekFrom::Start(6)).unwrap();
///         let mut s = String::new();
///         f.read_to_string(&mut s).unwrap();
///         assert_eq!(s, "world");
///     }
/// });
/// # greenhouse::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct File {
    /// Shared with pool jobs in flight (a cancelled call's job may outlive
    /// the call).
    inner: Arc<std::fs::File>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl File {
    /// Runs `op` on the file, on the blocking pool from a green thread.
    fn run<T, F>(&self, op: F) -> T
    where
        F: FnOnce(&std::fs::File) -> T + Send + 'static,
        T: Send + 'static,
    {
        if crate::runtime::park::current_task().is_some() {
            let f = self.inner.clone();
            crate::thread::spawn_blocking(move || op(&f))
        } else {
            op(&self.inner)
        }
    }

    /// The std file, once no pool job from a cancelled call holds it (such
    /// a job is one system call finishing; wait for it).
    fn into_inner(self) -> std::fs::File {
        let mut inner = self.inner;
        loop {
            match Arc::try_unwrap(inner) {
                Ok(f) => return f,
                Err(shared) => {
                    inner = shared;
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
    }

    /// Opens a file for reading (std's `File::open`).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::write(dir.join("o"), "data").unwrap();
    ///         let f = greenhouse::fs::File::open(dir.join("o")).unwrap();
    ///         assert_eq!(f.metadata().unwrap().len(), 4);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates (or truncates) a file for writing (std's `File::create`).
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         use std::io::Write;
    ///         let mut f = greenhouse::fs::File::create(dir.join("c")).unwrap();
    ///         f.write_all(b"new").unwrap();
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Creates a new file for reading and writing, failing with `AlreadyExists`
    /// if it exists (std's `File::create_new`).
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         greenhouse::fs::File::create_new(dir.join("fresh")).unwrap();
    ///         let e = greenhouse::fs::File::create_new(dir.join("fresh")).unwrap_err();
    ///         assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Options for opening a file (std's `File::options`).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let f = greenhouse::fs::File::options().write(true).create(true).open(dir.join("x"));
    ///         assert!(f.is_ok());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let std_f = std::fs::File::create(dir.join("s")).unwrap();
    ///         let f = greenhouse::fs::File::from_std(std_f);
    ///         assert!(f.metadata().unwrap().is_file());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn from_std(f: std::fs::File) -> File {
        File { inner: Arc::new(f) }
    }

    /// The std file (the same descriptor).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let f = greenhouse::fs::File::create(dir.join("i")).unwrap();
    ///         let std_f: std::fs::File = f.into_std();
    ///         assert!(std_f.metadata().unwrap().is_file());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn into_std(self) -> std::fs::File {
        self.into_inner()
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         use std::io::Write;
    ///         let mut f = greenhouse::fs::File::create(dir.join("s")).unwrap();
    ///         f.write_all(b"durable").unwrap();
    ///         f.sync_all().unwrap();
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        self.run(|f| f.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         use std::io::Write;
    ///         let mut f = greenhouse::fs::File::create(dir.join("s")).unwrap();
    ///         f.write_all(b"durable").unwrap();
    ///         f.sync_data().unwrap();
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn sync_data(&self) -> io::Result<()> {
        self.run(|f| f.sync_data())
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// # Errors
    /// As std (`InvalidInput` if not open for writing).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let f = greenhouse::fs::File::create(dir.join("l")).unwrap();
    ///         f.set_len(100).unwrap();
    ///         assert_eq!(f.metadata().unwrap().len(), 100);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.run(move |f| f.set_len(size))
    }

    /// The file's metadata.
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         let f = greenhouse::fs::File::create(dir.join("m")).unwrap();
    ///         assert!(f.metadata().unwrap().is_file());
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.run(|f| f.metadata())
    }

    /// Another handle to the same open file (a duplicate descriptor sharing the
    /// position, as std's).
    ///
    /// # Errors
    /// The OS's error (`EMFILE`).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         use std::io::{Seek, Write};
    ///         let mut f = greenhouse::fs::File::create(dir.join("c")).unwrap();
    ///         let mut g = f.try_clone().unwrap();
    ///         f.write_all(b"ab").unwrap();
    ///         assert_eq!(g.stream_position().unwrap(), 2); // shared position
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn try_clone(&self) -> io::Result<File> {
        Ok(File::from_std(self.inner.try_clone()?))
    }

    /// Sets the file's permissions.
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-fs-doc-{}", std::process::id()));
    /// greenhouse::fs::create_dir_all(&dir).unwrap();
    /// greenhouse::run({
    ///     let dir = dir.clone();
    ///     move || {
    ///         use std::os::unix::fs::PermissionsExt;
    ///         let f = greenhouse::fs::File::create(dir.join("p")).unwrap();
    ///         f.set_permissions(greenhouse::fs::Permissions::from_mode(0o640)).unwrap();
    ///         assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o640);
    ///     }
    /// });
    /// # greenhouse::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.run(move |f| f.set_permissions(perm))
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_CHUNK);
        if len == 0 {
            return Ok(0);
        }
        let data = self.run(move |mut f| {
            let mut v = vec![0; len];
            let n = f.read(&mut v)?;
            v.truncate(n);
            Ok::<_, io::Error>(v)
        })?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let len = total.min(MAX_CHUNK);
        if len == 0 {
            return Ok(0);
        }
        let data = self.run(move |mut f| {
            let mut v = vec![0; len];
            let n = f.read(&mut v)?;
            v.truncate(n);
            Ok::<_, io::Error>(v)
        })?;
        let mut rest = &data[..];
        for b in bufs.iter_mut() {
            let n = rest.len().min(b.len());
            b[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let data = self.run(|mut f| {
            let mut v = Vec::new();
            f.read_to_end(&mut v).map(|_| v)
        })?;
        buf.extend_from_slice(&data);
        Ok(data.len())
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let mut bytes = Vec::new();
        self.read_to_end(&mut bytes)?;
        let s = String::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })?;
        buf.push_str(&s);
        Ok(s.len())
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        if data.is_empty() {
            return Ok(0);
        }
        self.run(move |mut f| f.write(&data))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut data = Vec::new();
        for b in bufs {
            let room = MAX_CHUNK - data.len();
            data.extend_from_slice(&b[..b.len().min(room)]);
            if data.len() == MAX_CHUNK {
                break;
            }
        }
        if data.is_empty() {
            return Ok(0);
        }
        self.run(move |mut f| f.write(&data))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let data = buf.to_vec();
        self.run(move |mut f| f.write_all(&data))
    }

    fn flush(&mut self) -> io::Result<()> {
        // std's File::flush does nothing either (no user-space buffer).
        Ok(())
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.run(move |mut f| f.seek(pos))
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for File {
    fn into_raw_fd(self) -> RawFd {
        self.into_inner().into_raw_fd()
    }
}

impl FromRawFd for File {
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: the caller passes ownership of an open descriptor.
        File::from_std(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        File::from_std(std::fs::File::from(fd))
    }
}

impl From<File> for OwnedFd {
    fn from(f: File) -> OwnedFd {
        OwnedFd::from(f.into_inner())
    }
}

impl From<std::fs::File> for File {
    fn from(f: std::fs::File) -> File {
        File::from_std(f)
    }
}

impl From<File> for std::fs::File {
    fn from(f: File) -> std::fs::File {
        f.into_inner()
    }
}
