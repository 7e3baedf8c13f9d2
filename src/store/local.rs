//! The on-disk content-addressed store.
//!
//! ```text
//! VERSION                 store format version
//! objects/ab/<hex>        blobs by BLAKE3 digest, read-only, never rewritten
//! actions/ab/<hex>.json   one entry per action key
//! tmp/                    partial writes; anything old here is garbage
//! locks/<hex>             per-key lock files (flock)
//! stat/ab/<hex>           the stat cache (see `digest`)
//! size/0 … size/f         the size ledger (see `ledger`)
//! ```
//!
//! Every write goes to `tmp/` and is renamed into place, so a crash leaves
//! the old state or the new one. Nothing read from the store is trusted:
//! entries carry their own key, blobs are verified against their digest.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::{Digest, StatCache};
use crate::store::packed;
use crate::store::{Blob, ENTRY_FORMAT, Entry};

/// Version of the directory layout, written to `VERSION`.
pub const STORE_VERSION: &str = "1";
/// Blobs up to this size are verified and replayed from memory.
const IN_MEMORY_BLOB: u64 = 1024 * 1024;

/// A store rooted at a directory. Creating one touches nothing on disk.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// `stats.log`, kept open once opened (a map records many lines).
    pub(super) journal: Arc<super::journal::Journal>,
    /// Where this process's temp files go: `tmp/`, or a map's own
    /// directory below it (see [`Store::scratch`]).
    tmp: PathBuf,
    /// The zstd level new blobs are compressed at (0: none).
    compress: i32,
}

/// The result of looking a key up.
#[derive(Debug)]
pub enum Lookup {
    Hit(Box<Entry>),
    Miss,
    /// An entry is there but cannot be used; it will be replaced.
    Corrupt(String),
}

/// The verified content of a blob, ready to be written out.
pub enum Verified {
    Bytes(Vec<u8>),
    /// A raw blob, read from its start.
    File(File),
    /// A compressed blob of this many bytes, decompressed as it is written.
    Packed(File, u64),
}

impl Verified {
    pub fn write_to(self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        match self {
            Verified::Bytes(b) => out.write_all(&b),
            Verified::File(mut f) => io::copy(&mut f, out).map(drop),
            Verified::Packed(f, size) => io::copy(&mut packed::reader(&f, size)?, out).map(drop),
        }
    }
}

/// A blob's content as a file of its own (see [`Store::raw_blob`]).
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub enum RawBlob {
    /// The blob file itself.
    Stored(PathBuf),
    /// A compressed blob's content, in a temp file removed on drop.
    Unpacked(tempfile::TempPath),
}

impl RawBlob {
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub fn path(&self) -> &Path {
        match self {
            RawBlob::Stored(path) => path,
            RawBlob::Unpacked(path) => path,
        }
    }
}

/// Whether a directory may be used as a store; see [`Store::trust`].
#[derive(Debug)]
pub enum Trust {
    /// A store of this format, owned by the user and closed to others.
    Ours,
    /// Nothing there yet, or an empty directory: the first write makes it.
    New,
    /// Anything else, with why: no hit is replayed from it, and no store
    /// command changes anything in it.
    Foreign(String),
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// The directories [`Store::create`] makes before it writes `VERSION`.
const LAYOUT: [&str; 5] = ["objects", "actions", "tmp", "locks", "stat"];

/// Whether `root` holds nothing but what a creation killed before writing
/// `VERSION` leaves: jl's own empty directories and its temp files.
fn holds_only_an_unfinished_layout(root: &Path) -> bool {
    let Ok(entries) = fs::read_dir(root) else {
        return false;
    };
    entries.flatten().all(|e| {
        let name = e.file_name();
        let ours = LAYOUT.iter().any(|l| name == *l);
        ours && e.file_type().is_ok_and(|t| t.is_dir())
            && fs::read_dir(e.path()).is_ok_and(|inside| {
                inside
                    .flatten()
                    .all(|f| f.file_name().as_encoded_bytes().starts_with(b".jl"))
            })
    })
}

/// Opens a blob file, never through a symlink (a blob replaced by one is
/// corrupt).
fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                io::Error::new(io::ErrorKind::InvalidData, "blob is a symlink")
            }
            _ => e,
        })
}

/// Names of the directories maps keep below `tmp/`.
pub const SCRATCH_PREFIX: &str = "map-";

/// A map's own temp directory (see [`Store::scratch`]), removed on drop.
pub struct Scratch {
    _lock: File,
    _dir: tempfile::TempDir,
}

/// Whether a directory below `tmp/` belongs to a map that is running:
/// its lock is held.
pub fn scratch_in_use(dir: &Path) -> bool {
    use rustix::fs::{FlockOperation, flock};
    File::open(dir).is_ok_and(|f| flock(&f, FlockOperation::NonBlockingLockShared).is_err())
}

/// An exclusive per-key lock, released (and its file removed) on drop.
pub struct KeyLock {
    _file: File,
    path: PathBuf,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Removed while still held: a waiter that then gets the lock sees
        // its file is gone and takes a new one (see `Store::lock`).
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether `path` names the open `file` (a lock file another jl may have
/// removed meanwhile).
pub fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        let root = root.into();
        Store {
            tmp: root.join("tmp"),
            root,
            journal: Arc::default(),
            compress: packed::DEFAULT_LEVEL,
        }
    }

    /// The same store, compressing new blobs at zstd `level` (0: not at
    /// all). Blobs already stored are read whatever level wrote them.
    pub fn compressing(self, level: i32) -> Store {
        Store {
            compress: level,
            ..self
        }
    }

    /// The same store with its temp files in a directory of their own
    /// below `tmp/`, locked while the returned [`Scratch`] lives: `gc` and
    /// `clear` leave it alone, and what is pinned there stays.
    pub fn scratch(&self) -> io::Result<(Store, Scratch)> {
        use rustix::fs::{FlockOperation, flock};
        let dir = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(self.root.join("tmp"))?;
        let lock = File::open(dir.path())?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive)?;
        let store = Store {
            tmp: dir.path().to_path_buf(),
            ..self.clone()
        };
        Ok((
            store,
            Scratch {
                _lock: lock,
                _dir: dir,
            },
        ))
    }

    /// Links a published blob into this store's temp directory, so that
    /// no eviction can take it before it has been shown; the link goes
    /// when the returned path is dropped.
    pub fn pin(&self, blob: &Blob) -> io::Result<tempfile::TempPath> {
        match self.link_into_tmp(&self.object_path(&blob.digest), false) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.link_into_tmp(&self.packed_path(&blob.digest), true)
            }
            pinned => pinned,
        }
    }

    /// A hard link to `file` in this store's temp directory, removed when
    /// the returned path is dropped; named `*.zst` for a compressed blob.
    fn link_into_tmp(&self, file: &Path, packed: bool) -> io::Result<tempfile::TempPath> {
        let suffix = if packed {
            format!(".{}", packed::SUFFIX)
        } else {
            String::new()
        };
        let link = tempfile::Builder::new()
            .prefix(".jl-pin")
            .suffix(&suffix)
            .make_in(&self.tmp, |path| fs::hard_link(file, path))?;
        Ok(link.into_temp_path())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stat_cache(&self) -> StatCache {
        StatCache::new(Some(self.root.join("stat")))
    }

    pub fn actions_dir(&self) -> PathBuf {
        self.root.join("actions")
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.tmp.clone()
    }

    pub fn action_path(&self, key: &Digest) -> PathBuf {
        let hex = key.hex();
        self.root
            .join("actions")
            .join(&hex[..2])
            .join(format!("{}.json", &hex[2..]))
    }

    /// The manifest of a traced action: its candidate entries (see `deps`).
    pub fn manifest_path(&self, key: &Digest) -> PathBuf {
        self.action_path(key).with_extension("manifest")
    }

    /// Writes a manifest atomically.
    pub fn write_manifest(&self, key: &Digest, bytes: &[u8]) -> io::Result<()> {
        self.write_small(bytes, &self.manifest_path(key))
    }

    /// Writes a small file of the store (entry, manifest) through `tmp/`
    /// and renames it into place, readable like every entry.
    fn write_small(&self, bytes: &[u8], target: &Path) -> io::Result<()> {
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
        persist_into_fan(tmp, target)
    }

    /// Every manifest file, in no particular order.
    pub fn manifest_files(&self) -> Vec<PathBuf> {
        list_fanned_out(&self.actions_dir())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "manifest"))
            .collect()
    }

    pub fn object_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// Where the blob `digest` is kept compressed.
    pub fn packed_path(&self, digest: &Digest) -> PathBuf {
        let mut path = self.object_path(digest).into_os_string();
        path.push(".");
        path.push(packed::SUFFIX);
        path.into()
    }

    /// Both places a blob may be kept: raw, compressed.
    pub fn blob_forms(&self, digest: &Digest) -> [PathBuf; 2] {
        [self.object_path(digest), self.packed_path(digest)]
    }

    /// Whether the blob `digest` is stored, raw or compressed.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_forms(digest).iter().any(|p| p.exists())
    }

    /// Reads the entry for `key`. Never fails: trouble is a miss or corrupt.
    pub fn lookup(&self, key: &Digest) -> Lookup {
        let text = match read_small(&self.action_path(key)) {
            Ok(text) => text,
            Err(_) => return Lookup::Miss,
        };
        match serde_json::from_slice::<Entry>(&text) {
            Ok(entry) if entry.format != ENTRY_FORMAT => Lookup::Corrupt(format!(
                "entry format {} is not {ENTRY_FORMAT}",
                entry.format
            )),
            Ok(entry) if entry.key != *key => Lookup::Corrupt("entry names another key".into()),
            Ok(entry) => Lookup::Hit(Box::new(entry)),
            Err(e) => Lookup::Corrupt(format!("entry is not valid: {e}")),
        }
    }

    /// Reads an entry by its file path (for listings).
    pub fn read_entry(path: &Path) -> io::Result<Entry> {
        let text = fs::read(path)?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Whether jl may use this directory as its store (DESIGN.md section
    /// 3, Trust): owned by the effective user, writable by nobody else
    /// (like ssh's StrictModes: then no one else can have put anything
    /// below it), and marked with the `VERSION` jl knows. On the hit path
    /// this costs one `stat` and one small read.
    pub fn trust(&self) -> Trust {
        self.trust_settled(true)
    }

    /// [`Store::trust`]; `settle`: wait for a creator's lock before
    /// judging a store without `VERSION` (not when holding it oneself).
    fn trust_settled(&self, settle: bool) -> Trust {
        use std::os::unix::fs::MetadataExt;
        let meta = match fs::metadata(&self.root) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Trust::New,
            Err(e) => return Trust::Foreign(format!("cannot look at it: {e}")),
        };
        if !meta.is_dir() {
            return Trust::Foreign("it is not a directory".into());
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Trust::Foreign(format!(
                "it is owned by uid {}, not by you (uid {me}), and whoever can write to a store can make it replay anything",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Trust::Foreign(format!(
                "others can write to it (mode {:o}), and whoever can write to a store can make it replay anything; chmod 700 it",
                meta.mode() & 0o777
            ));
        }
        match self.version() {
            Ok(v) if v == STORE_VERSION => Trust::Ours,
            Ok(v) => Trust::Foreign(format!(
                "its VERSION is {v:?}, and this jl knows store format {STORE_VERSION}; use another store, or remove it yourself"
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Empty is new; a store another jl is creating right now
                // is ours as soon as it holds the creation lock no more.
                if is_empty_dir(&self.root) {
                    return Trust::New;
                }
                let _settled = settle.then(|| {
                    File::open(&self.root).and_then(|dir| {
                        rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockShared)?;
                        Ok(dir)
                    })
                });
                match self.version() {
                    Ok(v) if v == STORE_VERSION => Trust::Ours,
                    // A creation killed half way: made again.
                    _ if holds_only_an_unfinished_layout(&self.root) => Trust::New,
                    _ => Trust::Foreign(
                        "it holds files but no VERSION: it is not a jl store (jl makes a store only in an empty or new directory)".into(),
                    ),
                }
            }
            Err(e) => Trust::Foreign(format!("cannot read its VERSION: {e}")),
        }
    }

    fn version(&self) -> io::Result<String> {
        let text = fs::read_to_string(self.root.join("VERSION"))?;
        Ok(text.trim_end().to_string())
    }

    /// Makes the store usable for writing: creates it in a new or empty
    /// directory, and refuses one jl does not trust.
    pub fn prepare(&self) -> io::Result<()> {
        match self.trust() {
            Trust::Ours => Ok(()),
            Trust::Foreign(why) => Err(io::Error::other(why)),
            Trust::New => self.create(),
        }
    }

    /// Writes the layout and then `VERSION`, holding a lock on the
    /// directory so that a jl starting meanwhile waits instead of
    /// taking a half-made store for a foreign one.
    fn create(&self) -> io::Result<()> {
        use rustix::fs::{FlockOperation, flock};
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&self.root)?;
        let dir = File::open(&self.root)?;
        flock(&dir, FlockOperation::LockExclusive)?;
        match self.trust_settled(false) {
            Trust::Ours => return Ok(()),
            Trust::Foreign(why) => return Err(io::Error::other(why)),
            Trust::New => {}
        }
        for sub in LAYOUT {
            builder.create(self.root.join(sub))?;
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(format!("{STORE_VERSION}\n").as_bytes())?;
        tmp.persist(self.root.join("VERSION"))
            .map_err(|e| e.error)?;
        Ok(())
    }

    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        temp_in(&self.tmp_dir())
    }

    /// Takes the exclusive lock of `key`, waiting if another jl holds it.
    /// Returns whether it had to wait.
    ///
    /// The lock file is removed when the lock is released, so `locks/`
    /// holds only the keys being run. A waiter may thus end up holding a
    /// file that is no longer there: it checks, after locking, that the
    /// path still names its file, and starts over if not.
    pub fn lock(&self, key: &Digest) -> io::Result<(KeyLock, bool)> {
        use rustix::fs::{FlockOperation, flock};
        let path = self.root.join("locks").join(key.hex());
        let mut waited = false;
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&path)?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    flock(&file, FlockOperation::LockExclusive)?;
                    waited = true;
                }
                Err(e) => return Err(e.into()),
            }
            if same_file(&file, &path) {
                return Ok((KeyLock { _file: file, path }, waited));
            }
        }
    }

    /// Starts a new blob; bytes written to it are hashed as they go.
    pub fn blob_writer(&self) -> BlobWriter {
        BlobWriter::new_in(self.tmp_dir())
    }

    /// Moves a finished temp file into `objects/` under its digest,
    /// compressed first when that pays (see [`packed`]). A blob written
    /// raw and compressed by runs at different levels is kept in both
    /// forms: removing one here could race with another writer removing
    /// the other, and lose both.
    fn publish(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> io::Result<()> {
        let size = tmp.as_file().metadata()?.len();
        let (tmp, target) = match packed::compress(tmp.as_file(), size, self.compress, &self.tmp)? {
            Some(packed) => (packed, self.packed_path(digest)),
            None => (tmp, self.object_path(digest)),
        };
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o444))?;
        // Always rename, even over an existing blob: that refreshes its
        // mtime, which `gc` reads as "recently referenced".
        persist_into_fan(tmp, &target)
    }

    /// Copies a file into the store (reflink where possible) and returns
    /// its blob. The copy is hashed, so a file that changes meanwhile can
    /// never be stored under a wrong digest.
    pub fn store_file(&self, path: &Path) -> io::Result<Blob> {
        let mut src = File::open(path)?;
        let tmp = self.temp_file()?;
        let (digest, size) = if rustix::fs::ioctl_ficlone(tmp.as_file(), &src).is_ok() {
            crate::digest::hash_reader(File::open(tmp.path())?)?
        } else {
            drop(tmp);
            let mut writer = self.blob_writer();
            io::copy(&mut src, &mut writer)?;
            return self.finish_blob(writer);
        };
        if size > 0 {
            self.publish(tmp, &digest)?;
        }
        Ok(Blob { digest, size })
    }

    /// Finishes a blob: publishes it unless empty (empty blobs are implicit).
    pub fn finish_blob(&self, writer: BlobWriter) -> io::Result<Blob> {
        self.finish_blob_pinned(writer, false).map(|(blob, _)| blob)
    }

    /// As [`Store::finish_blob`]; with `pin`, the blob is also linked into
    /// this store's temp directory before it is published (see
    /// [`Store::pin`]), so no eviction between the two can take it.
    pub fn finish_blob_pinned(
        &self,
        mut writer: BlobWriter,
        pin: bool,
    ) -> io::Result<(Blob, Option<tempfile::TempPath>)> {
        if let Some(e) = writer.error.take() {
            return Err(e);
        }
        let digest = Digest::from_hasher(&writer.hasher);
        let mut pinned = None;
        if let Some(file) = writer.file.take() {
            if pin {
                pinned = Some(self.link_into_tmp(file.path(), false)?);
            }
            self.publish(file, &digest)?;
        }
        let blob = Blob {
            digest,
            size: writer.size,
        };
        Ok((blob, pinned))
    }

    /// Writes `entry` atomically, replacing any older one for its key.
    /// Returns the disk space it and its blobs take, each file rounded up
    /// to whole blocks.
    pub fn commit(&self, entry: &Entry) -> io::Result<u64> {
        let json = serde_json::to_vec(entry).map_err(io::Error::other)?;
        self.write_small(&json, &self.action_path(&entry.key))?;
        let blobs = entry.blobs().map(|b| in_blocks(self.stored_size(&b)));
        Ok(in_blocks(json.len() as u64) + blobs.sum::<u64>())
    }

    /// What a blob takes in the store: its compressed size if it is kept
    /// compressed (`JL_MAX_SIZE` counts that), else its size.
    fn stored_size(&self, blob: &Blob) -> u64 {
        if blob.size == 0 {
            return 0;
        }
        fs::metadata(self.packed_path(&blob.digest)).map_or(blob.size, |m| m.len())
    }

    /// Marks an entry as just used (its file's mtime is "last used").
    /// One `utimensat` call: this is on the hit path.
    pub fn touch(&self, key: &Digest) {
        use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_NOW,
            },
        };
        let _ = rustix::fs::utimensat(CWD, self.action_path(key), &times, AtFlags::empty());
    }

    /// Opens a blob and checks it against its digest. A missing or
    /// tampered blob is an error of kind `NotFound` or `InvalidData`.
    pub fn read_blob(&self, blob: &Blob) -> io::Result<Verified> {
        if blob.size == 0 && blob.digest == Blob::empty().digest {
            return Ok(Verified::Bytes(Vec::new()));
        }
        match open_no_follow(&self.object_path(&blob.digest)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.verify_packed(open_no_follow(&self.packed_path(&blob.digest))?, blob)
            }
            file => self.verify(file?, blob),
        }
    }

    /// As [`Store::read_blob`], for a blob pinned at `path`.
    pub fn read_pinned(&self, path: &Path, blob: &Blob) -> io::Result<Verified> {
        let file = open_no_follow(path)?;
        if path.extension().is_some_and(|e| e == packed::SUFFIX) {
            self.verify_packed(file, blob)
        } else {
            self.verify(file, blob)
        }
    }

    /// A blob's content as a file of its own: the blob file, or for a
    /// compressed blob its verified content in a temp file (the remote
    /// stores what a run produced, uncompressed).
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub fn raw_blob(&self, blob: &Blob) -> io::Result<RawBlob> {
        let raw = self.object_path(&blob.digest);
        if raw.exists() {
            return Ok(RawBlob::Stored(raw));
        }
        let verified = self.read_blob(blob)?;
        let mut tmp = self.temp_file()?;
        verified.write_to(&mut tmp)?;
        Ok(RawBlob::Unpacked(tmp.into_temp_path()))
    }

    /// Checks a compressed blob: its content, decompressed to exactly the
    /// recorded size, must match the digest. A large one is checked once
    /// per identity of its file (the stat cache remembers it, as for a raw
    /// blob); a small one is kept in memory.
    fn verify_packed(&self, file: File, blob: &Blob) -> io::Result<Verified> {
        let wrong = |e: io::Error| corrupt(blob, &e.to_string());
        if blob.size <= IN_MEMORY_BLOB {
            let bytes = packed::unpack(&file, blob.size).map_err(wrong)?;
            if Digest::of(&bytes) != blob.digest {
                return Err(corrupt(blob, "does not match its digest"));
            }
            return Ok(Verified::Bytes(bytes));
        }
        let meta = file.metadata()?;
        let mut id = b"jl verified packed blob".to_vec();
        for n in crate::digest::identity(&meta) {
            id.extend_from_slice(&n.to_le_bytes());
        }
        let id = Digest::of(&id);
        let stat = self.stat_cache();
        if stat.remembered(&id) != Some(blob.digest) {
            let (digest, _) =
                crate::digest::hash_reader(packed::reader(&file, blob.size)?).map_err(wrong)?;
            if digest != blob.digest {
                return Err(corrupt(blob, "does not match its digest"));
            }
            if !crate::digest::is_racy(&meta) {
                stat.remember(&id, digest);
            }
        }
        Ok(Verified::Packed(file, blob.size))
    }

    fn verify(&self, file: File, blob: &Blob) -> io::Result<Verified> {
        let actual = file.metadata()?.len();
        if actual != blob.size {
            return Err(corrupt(blob, "has the wrong size"));
        }
        if actual <= IN_MEMORY_BLOB {
            let mut bytes = Vec::with_capacity(actual as usize);
            (&file).take(actual + 1).read_to_end(&mut bytes)?;
            if Digest::of(&bytes) != blob.digest {
                return Err(corrupt(blob, "does not match its digest"));
            }
            return Ok(Verified::Bytes(bytes));
        }
        if self.stat_cache().digest_open(&file)?.digest != blob.digest {
            return Err(corrupt(blob, "does not match its digest"));
        }
        Ok(Verified::File(file))
    }

    /// Restores an output file's verified blob to `target` with its mode:
    /// written to a temp name beside it and renamed, so a reader never
    /// sees half a file. The restored file gets the current time as mtime
    /// unless the command had set one itself.
    pub fn restore(&self, file: &crate::store::OutputFile, target: &Path) -> io::Result<()> {
        let blob = &file.blob;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".jl-restore")
            .tempfile_in(&dir)?;
        if blob.size > 0 {
            let source = self.read_blob(blob)?;
            let cloned = match &source {
                Verified::File(f) => rustix::fs::ioctl_ficlone(tmp.as_file(), f).is_ok(),
                Verified::Bytes(_) | Verified::Packed(..) => false,
            };
            if !cloned {
                source.write_to(&mut tmp.as_file())?;
            }
        }
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(file.mode & 0o7777))?;
        if let Some((secs, nanos)) = file.mtime {
            let at = std::time::UNIX_EPOCH + std::time::Duration::new(secs.max(0) as u64, nanos);
            tmp.as_file().set_modified(at)?;
        }
        tmp.persist(target).map(drop).map_err(|e| e.error)
    }

    /// Every entry file, in no particular order.
    pub fn entry_files(&self) -> Vec<PathBuf> {
        list_fanned_out(&self.actions_dir())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }

    /// Every file of the stat cache.
    pub fn stat_files(&self) -> Vec<PathBuf> {
        list_fanned_out(&self.root.join("stat"))
    }

    /// Every blob file, in no particular order.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        list_fanned_out(&self.objects_dir())
    }

    /// Removes an entry (a corrupt one, or on request).
    pub fn remove_entry(&self, key: &Digest) -> io::Result<()> {
        fs::remove_file(self.action_path(key))
    }

    /// Removes a blob (a corrupt one, or an unreferenced one).
    pub fn remove_blob(&self, digest: &Digest) -> io::Result<()> {
        let [raw, packed] = self.blob_forms(digest);
        match (fs::remove_file(raw), fs::remove_file(packed)) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(e), _) => Err(e),
        }
    }
}

/// A temp file in `dir` named after the jl that writes it:
/// `.jl-<boot>-<pid>-<random>`, so `gc` can tell when its writer is gone
/// (killed with SIGKILL, say) without waiting a day.
pub fn temp_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(owner_prefix())
        .tempfile_in(dir)
}

/// `.jl-<boot>-<pid>-` of this process; `<boot>` tells one boot of one
/// machine from another (a store may be shared over NFS).
fn owner_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| format!(".jl-{}-{}-", boot_id(), std::process::id()))
}

fn boot_id() -> &'static str {
    static BOOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        id.chars().filter(char::is_ascii_hexdigit).take(8).collect()
    })
}

/// Whether a temp file's name says its writer is a process of this boot
/// that is gone.
pub fn writer_gone(name: &std::ffi::OsStr) -> bool {
    let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".jl-")) else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let (Some(boot), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(pid) = pid.parse().ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    !boot.is_empty()
        && boot == boot_id()
        && rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

/// The disk space a file of `len` bytes takes on a file system of 4 KiB
/// blocks (the common case; `gc` measures what each file really takes).
pub fn in_blocks(len: u64) -> u64 {
    len.div_ceil(4096) * 4096
}

/// Renames a temp file to `target`, creating its fan-out directory
/// (`objects/ab/`, `actions/ab/`) the first time it is needed.
fn persist_into_fan(tmp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    match tmp.persist(target) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == io::ErrorKind::NotFound => {
            let fan = target.parent().expect("store paths have a parent");
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(fan)?;
            e.file.persist(target).map(drop).map_err(|e| e.error)
        }
        Err(e) => Err(e.error),
    }
}

/// Files one level below the fan-out directories of `dir` (`dir/ab/*`).
fn list_fanned_out(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(fans) = fs::read_dir(dir) else {
        return out;
    };
    for fan in fans.flatten() {
        if let Ok(files) = fs::read_dir(fan.path()) {
            out.extend(files.flatten().map(|f| f.path()));
        }
    }
    out
}

/// The digest a blob or entry file is named after (`ab/<rest>[.json]`).
pub fn digest_of_path(path: &Path) -> Option<Digest> {
    let fan = path.parent()?.file_name()?.to_str()?;
    let rest = path.file_stem()?.to_str()?;
    Digest::parse(&format!("{fan}{rest}"))
}

fn corrupt(blob: &Blob, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("blob {} {what}", &blob.digest.hex()[..12]),
    )
}

/// A blob being written: bytes go to a temp file (created at the first
/// byte) and into a hasher. A write error is remembered, not returned, so a
/// full disk stops the capture but never the stream it tees.
pub struct BlobWriter {
    dir: PathBuf,
    file: Option<tempfile::NamedTempFile>,
    hasher: blake3::Hasher,
    size: u64,
    error: Option<io::Error>,
    /// Bytes that arrived after a write error, kept when nothing else
    /// holds them (see [`BlobWriter::keeping`]).
    tail: Option<Vec<u8>>,
}

/// Captured bytes that were not published: the temp file holds the first
/// part, `tail` what came after the disk refused more.
#[derive(Default)]
pub struct Spooled {
    pub file: Option<tempfile::TempPath>,
    pub tail: Vec<u8>,
}

impl Spooled {
    pub fn len(&self) -> u64 {
        let file = self.file.as_ref().and_then(|p| fs::metadata(p).ok());
        file.map_or(0, |m| m.len()) + self.tail.len() as u64
    }

    pub fn write_to(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        if let Some(path) = &self.file {
            io::copy(&mut File::open(path)?, out)?;
        }
        out.write_all(&self.tail)
    }
}

impl BlobWriter {
    /// A writer whose temp file goes into `dir`.
    pub fn new_in(dir: PathBuf) -> BlobWriter {
        BlobWriter {
            dir,
            file: None,
            hasher: blake3::Hasher::new(),
            size: 0,
            error: None,
            tail: None,
        }
    }

    /// For a capture that is the only copy of its stream (`jl map`): after
    /// a write error (a full disk), the bytes written so far stay in the
    /// temp file and later ones are kept in memory, so none are lost.
    pub fn keeping(mut self) -> BlobWriter {
        self.tail = Some(Vec::new());
        self
    }

    /// The digest of the bytes written so far.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(&self.hasher)
    }

    /// Why the capture stopped, if it did: it can then not be published.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Keeps the bytes without publishing them (output of a job that is
    /// not cached but still has to be shown). Fails if bytes were lost.
    pub fn into_spool(mut self) -> io::Result<Spooled> {
        match (self.error.take(), self.tail.take()) {
            (Some(e), None) => Err(e),
            (_, tail) => Ok(Spooled {
                file: self.file.take().map(|f| f.into_temp_path()),
                tail: tail.unwrap_or_default(),
            }),
        }
    }

    fn write_inner(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(temp_in(&self.dir)?);
        }
        self.file.as_mut().expect("just created").write_all(buf)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.error.is_none() {
            match self.write_inner(buf) {
                Ok(()) => {
                    self.hasher.update(buf);
                    self.size += buf.len() as u64;
                    return Ok(buf.len());
                }
                Err(e) => self.error = Some(e),
            }
            // The file keeps exactly the bytes counted so far (a failed
            // write may have left part of `buf`); the tail takes the rest.
            let truncated = match &self.file {
                Some(f) => f.as_file().set_len(self.size).is_ok(),
                None => true,
            };
            if !truncated {
                self.tail = None;
            }
            if self.tail.is_none() {
                self.file = None;
            }
        }
        if let Some(tail) = &mut self.tail {
            tail.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a small file whole without asking its size first (`fs::read`
/// costs an extra `statx`, and an entry is read on every hit).
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::with_capacity(4096);
    // Through `take`, reading does not ask for the size.
    File::open(path)?.take(u64::MAX).read_to_end(&mut text)?;
    Ok(text)
}
