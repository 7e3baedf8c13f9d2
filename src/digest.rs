//! Content digests (BLAKE3) and the stat cache that avoids rehashing.
//!
//! Inputs are keyed by content, so every run would re-read every input.
//! The stat cache remembers the digest of a large file under its identity
//! (device, inode, size, mtime, ctime), so a warm hit on a 1 GiB input costs
//! one `fstat` and one small read. Git's "racily clean" rule applies: a file
//! changed within [`RACY_MARGIN`] of being hashed is not remembered, because
//! a second write in the same timestamp tick would go unseen.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_hasher(hasher: &blake3::Hasher) -> Digest {
        Digest(*hasher.finalize().as_bytes())
    }

    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn parse(hex: &str) -> Option<Digest> {
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| Digest(*h.as_bytes()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).ok_or_else(|| serde::de::Error::custom("not a BLAKE3 hex digest"))
    }
}

/// Files below this size are simply read: a stat-cache lookup would cost
/// as much as reading them.
const SMALL_FILE: u64 = 256 * 1024;
/// Files from this size on are hashed by several threads over an mmap.
const PARALLEL_FILE: u64 = 4 * 1024 * 1024;
/// At most this many digests are remembered in memory (a map over a
/// million distinct files must not keep a million).
const SEEN_MAX: usize = 4096;
/// A file modified less than this long before it was hashed is "racily
/// clean" and its digest is not remembered.
pub const RACY_MARGIN: Duration = Duration::from_secs(1);

/// Digests of large files by identity, kept in `<store>/stat/`.
/// With no directory it remembers nothing on disk. Within one process it
/// also remembers every file it hashed (a map's executable, an input
/// every job shares), so `jl map` hashes each of those once.
#[derive(Clone, Debug, Default)]
pub struct StatCache {
    dir: Option<PathBuf>,
    seen: Arc<Mutex<HashMap<Identity, Digest>>>,
}

/// What one hashed file turned out to be.
#[derive(Clone, Copy, Debug)]
pub struct FileDigest {
    pub digest: Digest,
    pub executable: bool,
    /// The file's identity when it was hashed, to notice later changes.
    pub identity: Identity,
}

/// (device, inode, size, mtime, ctime) of a file: if none of these moved,
/// the content did not either.
pub type Identity = [i64; 7];

impl StatCache {
    pub fn new(dir: Option<PathBuf>) -> StatCache {
        StatCache {
            dir,
            seen: Arc::default(),
        }
    }

    /// Hashes a regular file, or takes its digest from the cache.
    /// Fails if the file changes while it is being read.
    pub fn digest_file(&self, path: &Path) -> io::Result<FileDigest> {
        if let Some(seen) = self.seen_at(path) {
            return Ok(seen);
        }
        let file = File::open(path)?;
        self.digest_open(&file)
    }

    /// A digest this process already took of the file at `path`, known by
    /// its identity alone (one `statx`, no open).
    fn seen_at(&self, path: &Path) -> Option<FileDigest> {
        if self.seen.lock().expect("seen digests").is_empty() {
            return None;
        }
        let meta = std::fs::metadata(path).ok()?;
        let identity = identity(&meta);
        let digest = *self.seen.lock().expect("seen digests").get(&identity)?;
        Some(FileDigest {
            digest,
            executable: meta.permissions().mode() & 0o111 != 0,
            identity,
        })
    }

    /// As [`StatCache::digest_file`], on an already open file.
    pub fn digest_open(&self, file: &File) -> io::Result<FileDigest> {
        let before = file.metadata()?;
        let size = before.len();
        let executable = before.permissions().mode() & 0o111 != 0;
        let slot = (size >= SMALL_FILE).then(|| self.slot(&before)).flatten();
        let identity = identity(&before);
        let seen = self
            .seen
            .lock()
            .expect("seen digests")
            .get(&identity)
            .copied();
        if let Some(digest) = seen.or_else(|| slot.as_deref().and_then(read_slot)) {
            return Ok(FileDigest {
                digest,
                executable,
                identity,
            });
        }
        let digest = hash_file(file, size)?;
        let after = file.metadata()?;
        if identity != self::identity(&after) {
            return Err(io::Error::other(
                "the file changed while it was being hashed",
            ));
        }
        if !is_racy(&after) {
            if let Some(slot) = slot {
                write_slot(&slot, digest);
            }
            let mut seen = self.seen.lock().expect("seen digests");
            if seen.len() >= SEEN_MAX {
                seen.clear();
            }
            seen.insert(identity, digest);
        }
        Ok(FileDigest {
            digest,
            executable,
            identity,
        })
    }

    fn slot(&self, meta: &std::fs::Metadata) -> Option<PathBuf> {
        let mut id = Vec::with_capacity(48);
        for n in identity(meta) {
            id.extend_from_slice(&n.to_le_bytes());
        }
        self.slot_of(&Digest::of(&id))
    }

    fn slot_of(&self, id: &Digest) -> Option<PathBuf> {
        let hex = id.hex();
        Some(self.dir.as_ref()?.join(&hex[..2]).join(&hex[2..]))
    }

    /// The digest remembered under `id` (a digest of identities, such as
    /// a whole tree's: see `key::digest_dir`).
    pub fn remembered(&self, id: &Digest) -> Option<Digest> {
        read_slot(&self.slot_of(id)?)
    }

    /// Remembers `digest` under `id`; the caller has checked that nothing
    /// in what `id` covers is racy.
    pub fn remember(&self, id: &Digest, digest: Digest) {
        if let Some(slot) = self.slot_of(id) {
            write_slot(&slot, digest);
        }
    }
}

pub fn identity(m: &std::fs::Metadata) -> Identity {
    [
        m.dev() as i64,
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ]
}

pub fn is_racy(m: &std::fs::Metadata) -> bool {
    changed_too_recently(m.mtime().max(m.ctime()), now_secs())
}

/// Whether a file last changed at `changed` (seconds) is racy at `now`.
/// Compared in whole seconds, rounding against us: racy unless the last
/// change is at least RACY_MARGIN in the past.
pub fn changed_too_recently(changed: i64, now: i64) -> bool {
    changed + RACY_MARGIN.as_secs() as i64 >= now
}

/// The clock in whole seconds, read once by a caller that checks many
/// files (a tree walk).
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

fn read_slot(slot: &Path) -> Option<Digest> {
    let text = std::fs::read(slot).ok()?;
    Digest::parse(std::str::from_utf8(&text).ok()?.trim_end())
}

/// Best effort: a cache that cannot be written only costs a rehash later.
/// Only the fan-out directory is made: a store not made yet (no `stat/`)
/// gets nothing written into it.
fn write_slot(slot: &Path, digest: Digest) {
    let Some(dir) = slot.parent() else { return };
    let _ = std::fs::create_dir(dir);
    let tmp = dir.join(format!(".{}.{}", std::process::id(), digest.hex()));
    if std::fs::write(&tmp, digest.hex()).is_ok() && std::fs::rename(&tmp, slot).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Hashes an open file from its start, without moving its offset (a
/// verified blob is replayed from the same descriptor). Reading (not
/// mapping) the file means a writer truncating it meanwhile costs an
/// error, not a SIGBUS.
///
/// A large file is cut along BLAKE3's own tree into subtrees hashed by
/// the threads side by side, each reading its part in pieces small enough
/// to stay in the CPU's cache while they are hashed: reading and hashing
/// overlap, and each byte crosses memory about once, as with a mapping.
fn hash_file(file: &File, size: u64) -> io::Result<Digest> {
    use blake3::hazmat::{Mode, left_subtree_len, merge_subtrees_root};
    if size < PARALLEL_FILE {
        let mut buf = vec![0u8; (size as usize).min(PIECE)];
        let mut hasher = blake3::Hasher::new();
        hash_range(file, 0, size, &mut hasher, &mut buf)?;
        return Ok(Digest::from_hasher(&hasher));
    }
    let left = left_subtree_len(size);
    let (l, r) = rayon_core::join(
        || subtree(file, 0, left),
        || subtree(file, left, size - left),
    );
    let root = merge_subtrees_root(&l?, &r?, Mode::Hash);
    Ok(Digest(*root.as_bytes()))
}

/// The chaining value of the subtree of `len` bytes at `offset`.
fn subtree(file: &File, offset: u64, len: u64) -> io::Result<blake3::hazmat::ChainingValue> {
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};
    if len <= SUBTREE {
        let mut buf = vec![0u8; PIECE];
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(offset);
        hash_range(file, offset, len, &mut hasher, &mut buf)?;
        return Ok(hasher.finalize_non_root());
    }
    let left = left_subtree_len(len);
    let (l, r) = rayon_core::join(
        || subtree(file, offset, left),
        || subtree(file, offset + left, len - left),
    );
    Ok(merge_subtrees_non_root(&l?, &r?, Mode::Hash))
}

/// Feeds `len` bytes of `file` from `offset` to `hasher`, `buf` at a time;
/// a file that ends early is an error (it changed under us).
fn hash_range(
    file: &File,
    offset: u64,
    len: u64,
    hasher: &mut blake3::Hasher,
    buf: &mut [u8],
) -> io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = read_full_at(file, &mut buf[..want], offset + done)?;
        if n < want {
            return Err(io::Error::other(
                "the file shrank while it was being hashed",
            ));
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Bytes one thread hashes before the work is split no further.
const SUBTREE: u64 = 4 * 1024 * 1024;
/// Bytes read at once: small enough to be hashed while still in cache.
const PIECE: usize = 256 * 1024;

/// Fills `buf` from `offset` unless the file ends first; returns the
/// bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Hashes everything readable from `reader` (used for blobs and streams).
pub fn hash_reader(mut reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = blake3::Hasher::new();
    let n = io::copy(&mut reader, &mut hasher)?;
    Ok((Digest::from_hasher(&hasher), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = Digest::of(b"jl");
        assert_eq!(Digest::parse(&d.hex()), Some(d));
        assert_eq!(Digest::parse("zz"), None);
    }

    #[test]
    fn small_and_large_files_hash_like_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StatCache::new(Some(dir.path().join("stat")));
        for size in [
            0usize,
            10,
            SMALL_FILE as usize + 7,
            PARALLEL_FILE as usize + 3,
            PARALLEL_FILE as usize,
            2 * SUBTREE as usize,
            3 * SUBTREE as usize + 1025,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &data).unwrap();
            let got = cache.digest_file(&path).unwrap();
            assert_eq!(got.digest, Digest::of(&data));
            // Hashing leaves the offset alone: the caller replays from it.
            let mut file = File::open(&path).unwrap();
            cache.digest_open(&file).unwrap();
            let mut back = Vec::new();
            file.read_to_end(&mut back).unwrap();
            assert!(back == data, "{size} bytes read back after hashing");
        }
    }
}
