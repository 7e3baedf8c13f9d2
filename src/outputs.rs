//! Declared outputs (`-o`): what a run left at each declared path, and
//! making it so again on a hit.
//!
//! The contract is exactness: after a hit every declared output is as
//! the recorded run left it. A file is restored; a directory is made
//! identical to the recorded tree (its files, symlinks, subdirectories
//! and their modes; entries the run did not leave there are removed);
//! an output the run left absent is removed. Because a hit can remove
//! files, [`crate::key::misdeclared_outputs`] refuses outputs that are or
//! hold something precious (the working directory, `$HOME`, the store,
//! an input).
//!
//! An entry may come from a shared store, so [`check`] accepts one only
//! if every path it names lies under an output this invocation declared
//! and hangs from a directory the entry itself recreates: restoring
//! never writes through a symlink it did not make.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::key;
use crate::store::{Entry, OutputDir, OutputFile, OutputLink, RawPath, Store};

/// The final state of every declared output of one run.
#[derive(Debug, Default)]
pub struct Recorded {
    pub files: Vec<OutputFile>,
    /// Parents before children.
    pub dirs: Vec<OutputDir>,
    pub links: Vec<OutputLink>,
    pub absent: Vec<RawPath>,
}

/// Something at a declared output that a hit could not bring back: the
/// run is not cached. Its error kind is [`io::ErrorKind::Unsupported`].
fn unrestorable(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the declared output '{}' {what}", path.display()),
    )
}

/// Records what the run left at each of `declared`, storing file content.
pub fn record(store: &Store, declared: &[PathBuf]) -> io::Result<Recorded> {
    let mut rec = Recorded::default();
    for out in declared {
        let meta = match fs::symlink_metadata(out) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                rec.absent.push(RawPath::new(out));
                continue;
            }
            Err(e) => return Err(e),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            // What the command wrote through it lies elsewhere.
            return Err(unrestorable(
                out,
                "is a symlink, and jl restores no file through one",
            ));
        } else if ft.is_file() {
            record_file(store, out, &mut rec)?;
        } else if ft.is_dir() {
            record_dir(store, out, &meta, &mut rec)?;
        } else {
            return Err(unrestorable(out, "is not a file or a directory"));
        }
    }
    Ok(rec)
}

fn record_file(store: &Store, path: &Path, rec: &mut Recorded) -> io::Result<()> {
    rec.files
        .push(store_file(store, path, RawPath::new(path), false)?);
    Ok(())
}

/// Stores one output file, to be restored at `kept` (with the mtime it
/// has when `keep_mtime`).
pub fn store_file(
    store: &Store,
    path: &Path,
    kept: RawPath,
    keep_mtime: bool,
) -> io::Result<OutputFile> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path)?;
    Ok(OutputFile {
        path: kept,
        blob: store.store_file(path)?,
        mode: meta.permissions().mode() & 0o777,
        mtime: keep_mtime.then(|| (meta.mtime(), meta.mtime_nsec() as u32)),
    })
}

fn record_dir(
    store: &Store,
    root: &Path,
    meta: &fs::Metadata,
    rec: &mut Recorded,
) -> io::Result<()> {
    rec.dirs.push(OutputDir {
        path: RawPath::new(root),
        mode: meta.permissions().mode() & 0o777,
    });
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(io::Error::from)?;
        let path = entry.path();
        let ft = entry.file_type();
        if ft.is_dir() {
            rec.dirs.push(OutputDir {
                path: RawPath::new(path),
                mode: entry
                    .metadata()
                    .map_err(io::Error::from)?
                    .permissions()
                    .mode()
                    & 0o777,
            });
        } else if ft.is_file() {
            record_file(store, path, rec)?;
        } else if ft.is_symlink() {
            rec.links.push(OutputLink {
                path: RawPath::new(path),
                target: RawPath::new(&fs::read_link(path)?),
            });
        } else {
            return Err(unrestorable(
                root,
                &format!(
                    "holds '{}', which is not a file, directory or symlink",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// A digest of what is at the declared outputs now: every path's type,
/// mode, content or link target. A failure stored with
/// `--cache-failures` keeps the state its run started from, and is
/// replayed only from that same state: a failing command often leaves
/// its outputs as it found them, and then what it "left" is not its own.
pub fn state(declared: &[PathBuf], stat: &crate::digest::StatCache) -> io::Result<Digest> {
    use std::os::unix::ffi::OsStrExt;
    let mut enc = key::Encoder::default();
    for out in declared {
        enc.bytes(out.as_os_str().as_bytes());
        let walk = walkdir::WalkDir::new(out)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e)
                    if e.io_error()
                        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
                {
                    enc.bytes(b"absent");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let meta = entry.metadata().map_err(io::Error::from)?;
            enc.bytes(entry.path().as_os_str().as_bytes());
            enc.u64(u64::from(meta.permissions().mode()));
            if meta.is_file() {
                enc.bytes(&stat.digest_file(entry.path())?.digest.0);
            } else if meta.is_symlink() {
                enc.bytes(fs::read_link(entry.path())?.as_os_str().as_bytes());
            }
        }
    }
    Ok(Digest::of(&enc.0))
}

/// The declared outputs an entry describes, as it stores them.
pub struct Described<'a> {
    pub files: &'a [OutputFile],
    pub dirs: &'a [OutputDir],
    pub links: &'a [OutputLink],
    pub absent: &'a [RawPath],
}

/// The declared outputs `entry` restores.
pub fn described(entry: &Entry) -> Described<'_> {
    Described {
        files: &entry.outputs,
        dirs: &entry.output_dirs,
        links: &entry.output_links,
        absent: &entry.absent,
    }
}

impl Described<'_> {
    fn paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        let files = self.files.iter().map(|f| f.path.to_path());
        let dirs = self.dirs.iter().map(|d| d.path.to_path());
        let links = self.links.iter().map(|l| l.path.to_path());
        files.chain(dirs).chain(links)
    }
}

/// Whether an entry's outputs may be restored by an invocation that
/// declared `declared`; the first path that may not, if any.
pub fn check(d: &Described<'_>, declared: &[PathBuf]) -> Result<(), String> {
    let dirs: HashSet<PathBuf> = d.dirs.iter().map(|x| x.path.to_path()).collect();
    let mut seen = HashSet::new();
    for path in d.paths() {
        let top = declared.contains(&path);
        let inside = declared.iter().any(|o| key::is_within(&path, o))
            && path.parent().is_some_and(|p| dirs.contains(p));
        if !(top || inside) || !seen.insert(path.clone()) {
            return Err(path.display().to_string());
        }
    }
    match d.absent.iter().find(|a| !declared.contains(&a.to_path())) {
        Some(bad) => Err(bad.display()),
        None => Ok(()),
    }
}

/// Makes every declared output as the entry recorded it. The blobs of
/// `files` must have been checked already (`restore_file` verifies each
/// again as it copies).
pub fn restore(
    d: &Described<'_>,
    declared: &[PathBuf],
    restore_file: impl Fn(&OutputFile) -> io::Result<()>,
) -> io::Result<()> {
    for gone in d.absent {
        remove_any(&gone.to_path())?;
    }
    let mut dirs: Vec<(PathBuf, u32)> = d.dirs.iter().map(|x| (x.path.to_path(), x.mode)).collect();
    dirs.sort_by_key(|(p, _)| p.components().count());
    for (path, _) in &dirs {
        real_dir(path)?;
    }
    for file in d.files {
        let path = file.path.to_path();
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&path)?;
        }
        restore_file(file)?;
    }
    for link in d.links {
        place_link(&link.path.to_path(), &link.target.to_path())?;
    }
    let kept: HashSet<PathBuf> = d.paths().collect();
    for out in declared {
        if dirs.iter().any(|(p, _)| p == out) {
            prune(out, &kept)?;
        }
    }
    // Deepest first, so a read-only directory gets its mode last.
    for (path, mode) in dirs.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(*mode))?;
    }
    Ok(())
}

/// Removes a file, symlink or whole directory; nothing there is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes `path` a real directory (not a symlink to one), replacing
/// whatever else is there. Only a declared output's own parents are
/// created as needed; every deeper directory is one the entry names.
fn real_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Puts a symlink at `path` through a temp name and a rename.
fn place_link(path: &Path, target: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(path)?;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".jl-restore")
        .make_in(dir, |temp| std::os::unix::fs::symlink(target, temp))?;
    fs::rename(temp.path(), path)
}

/// Removes everything under `dir` that is not in `kept`.
fn prune(dir: &Path, kept: &HashSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !kept.contains(&path) {
            remove_any(&path)?;
        } else if entry.file_type()?.is_dir() {
            prune(&path, kept)?;
        }
    }
    Ok(())
}
