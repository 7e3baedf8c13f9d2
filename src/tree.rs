//! Walking a directory input. A hit on `-i tree` checks the identity of
//! every entry below it (a directory's mtime does not move when a file's
//! content changes, so nothing less is safe), which makes this walk the
//! whole cost of such a hit. It is kept to what the kernel must do, as git
//! does for `git status`: names read with `getdents` into one buffer, one
//! `fstatat` per entry relative to its open directory, no allocation per
//! entry, and the entries of a large directory looked at by several
//! threads side by side.

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

use crate::digest::Identity;

/// What `lstat` says of an entry, as much as a tree's key needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub identity: Identity,
}

impl Stat {
    pub fn of(m: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            mode: m.mode(),
            identity: crate::digest::identity(m),
        }
    }

    // The field types differ between systems (`st_mode` is 16 bits on
    // some): the casts are not the same everywhere.
    #[allow(clippy::unnecessary_cast)]
    fn of_raw(s: &rustix::fs::Stat) -> Stat {
        Stat {
            mode: s.st_mode as u32,
            identity: [
                s.st_dev as i64,
                s.st_ino as i64,
                s.st_size as i64,
                s.st_mtime as i64,
                s.st_mtime_nsec as i64,
                s.st_ctime as i64,
                s.st_ctime_nsec as i64,
            ],
        }
    }

    fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.mode as _)
    }

    pub fn is_dir(&self) -> bool {
        self.kind() == FileType::Directory
    }

    pub fn is_file(&self) -> bool {
        self.kind() == FileType::RegularFile
    }

    pub fn is_symlink(&self) -> bool {
        self.kind() == FileType::Symlink
    }

    pub fn dev(&self) -> u64 {
        self.identity[0] as u64
    }

    pub fn ino(&self) -> u64 {
        self.identity[1] as u64
    }

    /// As [`crate::digest::is_racy`], against a clock read once per walk
    /// ([`crate::digest::now_secs`]).
    pub fn is_racy(&self, now: i64) -> bool {
        crate::digest::changed_too_recently(self.identity[3].max(self.identity[5]), now)
    }
}

/// Every entry below a directory, depth first, siblings sorted by name,
/// each with its `lstat`. Paths are relative to the walked directory and
/// live in one buffer.
#[derive(Debug, Default)]
pub struct Walk {
    names: Vec<u8>,
    entries: Vec<(usize, usize, Stat)>,
}

impl Walk {
    /// Each entry's path relative to the walked directory, and its `lstat`.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Stat)> {
        self.entries
            .iter()
            .map(|(from, to, stat)| (Path::new(OsStr::from_bytes(&self.names[*from..*to])), stat))
    }
}

/// Walks the directory `root` (following it if it is a link). Like `find
/// -xdev`, the walk stays on `device`: a mount point below is listed but
/// not entered, so an argument like `/` never reads `/proc` or `/sys`.
pub fn walk(root: &Path, device: u64) -> io::Result<Walk> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = rustix::fs::open(root, flags, Mode::empty())?;
    let mut walk = Walk::default();
    walk_dir(dir, &[], device, &mut walk)?;
    Ok(walk)
}

/// A directory with fewer entries is looked at by one thread.
const PARALLEL_DIR: usize = 1024;

fn walk_dir(dir: OwnedFd, prefix: &[u8], device: u64, out: &mut Walk) -> io::Result<()> {
    let mut dir = Dir::new(dir)?;
    let mut names: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes_with_nul();
        if name == b".\0" || name == b"..\0" {
            continue;
        }
        spans.push((names.len(), names.len() + name.len()));
        names.extend_from_slice(name);
    }
    spans.sort_unstable_by(|a, b| names[a.0..a.1].cmp(&names[b.0..b.1]));
    let fd = dir.fd()?;
    let stats = stat_all(fd, &names, &spans)?;
    for (&(from, to), stat) in spans.iter().zip(stats) {
        let name = &names[from..to - 1];
        let start = out.names.len();
        if !prefix.is_empty() {
            out.names.extend_from_slice(prefix);
            out.names.push(b'/');
        }
        out.names.extend_from_slice(name);
        let end = out.names.len();
        out.entries.push((start, end, stat));
        if stat.is_dir() && stat.dev() == device {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let cname = CStr::from_bytes_with_nul(&names[from..to]).expect("one NUL, at the end");
            let sub = rustix::fs::openat(fd, cname, flags, Mode::empty())?;
            let here = out.names[start..end].to_vec();
            walk_dir(sub, &here, device, out)?;
        }
    }
    Ok(())
}

/// The `lstat` of each named entry of `dir`, in order; a large directory's
/// split between threads.
fn stat_all(dir: BorrowedFd, names: &[u8], spans: &[(usize, usize)]) -> io::Result<Vec<Stat>> {
    let stat = |span: &[(usize, usize)]| -> io::Result<Vec<Stat>> {
        span.iter()
            .map(|&(from, to)| {
                let name =
                    CStr::from_bytes_with_nul(&names[from..to]).expect("one NUL, at the end");
                let s = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
                Ok(Stat::of_raw(&s))
            })
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if spans.len() < PARALLEL_DIR || threads < 2 {
        return stat(spans);
    }
    let part = spans.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let others: Vec<_> = spans[part..]
            .chunks(part)
            .map(|chunk| scope.spawn(move || stat(chunk)))
            .collect();
        let mut all = stat(&spans[..part])?;
        for other in others {
            all.extend(other.join().expect("a stat thread does not panic")?);
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_like_std_sorted_depth_first_with_lstat() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/f"), "x").unwrap();
        std::fs::write(root.join("a"), "yy").unwrap();
        std::os::unix::fs::symlink("a", root.join("l")).unwrap();
        for n in 0..PARALLEL_DIR + 5 {
            std::fs::write(root.join(format!("many-{n:05}")), "").unwrap();
        }
        let dev = std::fs::metadata(root).map(|m| Stat::of(&m).dev()).unwrap();
        let walked = walk(root, dev).unwrap();
        let mut want: Vec<_> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .collect();
        want.dedup();
        let got: Vec<_> = walked.iter().map(|(p, _)| root.join(p)).collect();
        assert_eq!(got, want);
        for (path, stat) in walked.iter() {
            let m = std::fs::symlink_metadata(root.join(path)).unwrap();
            assert_eq!(*stat, Stat::of(&m), "{}", path.display());
        }
        assert!(
            walked
                .iter()
                .any(|(p, s)| p == Path::new("l") && s.is_symlink())
        );
        assert!(
            walked
                .iter()
                .any(|(p, s)| p == Path::new("b/c") && s.is_dir())
        );
    }
}
