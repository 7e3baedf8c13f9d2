//! `--trace`: the files a command and all its descendants read, probed
//! for, listed, wrote and removed, learnt by watching its system calls.
//!
//! [`tracer`] drives ptrace and calls the methods of [`Accesses`], which
//! keep the rules in one place: a file the command wrote before reading
//! it is internal; a file it read before writing (or renaming, or
//! appending to) is an input, hashed before the write lands, and an
//! output too. `deps` turns the result into an entry's dependency list.
//!
//! The tracer itself exists for Linux on x86_64 only (ripgrep's shape for
//! an optional part: this facade, with `run` and [`unavailable`] saying
//! so elsewhere); the rules below are plain data and build everywhere.
#![cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    allow(dead_code)
)]

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod filter;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod resolve;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod sys;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod tracer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Identity, StatCache, identity};
use crate::rawpath::RawPath;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use tracer::run;

/// Where `--trace` is implemented: its system calls are x86_64 Linux's.
pub const AVAILABLE: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// Why `--trace` cannot be used here, if it cannot.
pub fn unavailable() -> Option<String> {
    (!AVAILABLE).then(|| {
        format!(
            "--trace needs Linux on x86_64, and this jl runs on {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    })
}

/// Elsewhere the command is never traced: `--trace` is refused before
/// anything runs (see [`unavailable`]).
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub fn run(
    job: crate::exec::Job<'_>,
    stdout: crate::exec::Tee,
    stderr: crate::exec::Tee,
    mut accesses: Accesses,
) -> Result<(crate::exec::Finished, Accesses), crate::exec::SpawnError> {
    accesses.refuse(unavailable().unwrap_or_default());
    Ok((crate::exec::run(job, stdout, stderr)?, accesses))
}

/// What the command found at a path before it changed anything there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Before {
    /// Its first touch was a write or create that ignored what was there.
    Untouched,
    /// Opened for reading or executed. `digest` is taken when the command
    /// is about to change or remove the file (else after the run), and
    /// `identity` and `mode` when it was first read, to notice a change
    /// meanwhile; `stat_by` is the process that also looked at its
    /// metadata, if one did.
    Read {
        digest: Option<Digest>,
        identity: Option<Identity>,
        mode: Option<u32>,
        stat_by: Option<i32>,
    },
    /// Looked at and there: a directory or not, its identity when the
    /// command read its metadata (`stat`, `access`), or the target of the
    /// symlink it looked at without following (`lstat`, `readlink`).
    Exists {
        dir: bool,
        identity: Option<Identity>,
        link: Option<PathBuf>,
    },
    /// Looked for and not there.
    Absent,
    /// Looked for behind a directory it may not search: the command was
    /// refused (`EACCES`) and so is jl, with the same credentials.
    Denied,
}

/// A directory's names as the command first read them: a digest of
/// them less `skip`, the names it had already changed (None when jl could
/// not read the directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub digest: Option<Digest>,
    pub skip: Vec<RawPath>,
}

/// How a call looked at a path that it did not read or change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// Whether something is there, and whether it is a directory (an
    /// `open` that failed, `O_PATH`, `mkdir` finding it there).
    Kind,
    /// Its metadata (`stat`, `statx`, `access`): the whole identity.
    Stat,
}

/// Everything the command did at one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub before: Before,
    pub written: bool,
    /// Removed (or renamed away) and not written again since.
    pub removed: bool,
    /// A directory when the command removed it.
    pub was_dir: bool,
    /// Created as a directory.
    pub made_dir: bool,
    /// Its times were set by the command (`touch -d`, `cp -p`, `tar x`).
    pub times_set: bool,
    /// The process that first looked at it, and the one that first
    /// changed it: when they differ (make looked, its recipe wrote), what
    /// was seen decided whether the change happened at all.
    pub looked_by: Option<i32>,
    pub changed_by: Option<i32>,
    /// The process that saw its identity (`stat`), when one did.
    pub identity_by: Option<i32>,
}

impl Seen {
    /// A call that fails where something is (`mkdir`, `symlink`, `link`,
    /// `O_EXCL`) made it: if the command had not touched it before, it
    /// was absent, and a hit must find it so (`mkdir d` fails once `d`
    /// is there).
    fn was_absent(&mut self) {
        if self.before == Before::Untouched && !self.written && !self.removed && !self.made_dir {
            self.before = Before::Absent;
        }
    }

    fn new(before: Before) -> Seen {
        Seen {
            before,
            written: false,
            removed: false,
            was_dir: false,
            made_dir: false,
            times_set: false,
            looked_by: None,
            changed_by: None,
            identity_by: None,
        }
    }

    /// Whether the process that changed the path is the one that looked
    /// at it first (`as` stats its output, then writes it; `rm` stats
    /// what it removes).
    pub fn changed_by_its_looker(&self) -> bool {
        let first = self.looked_by.is_some() && self.looked_by == self.changed_by;
        // Another process saw only that it was there (gcc's driver
        // `readlink`s its output, `as` stats and rewrites it): the
        // identity is the changer's own look, which counts by kind.
        let identity = self.identity_by.is_some() && self.identity_by == self.changed_by;
        first || identity
    }
}

/// How the command named a path: relative to a working directory (such
/// paths move with a checkout), absolutely, or both ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub relative: bool,
    pub absolute: bool,
}

/// What one traced run touched.
#[derive(Debug)]
pub struct Accesses {
    /// Every path as the kernel resolved it (absolute, physical).
    pub paths: BTreeMap<PathBuf, Seen>,
    /// Symlinks a path went through, with the target each had then.
    pub links: BTreeMap<PathBuf, PathBuf>,
    /// How each path was named.
    pub named: BTreeMap<PathBuf, Named>,
    /// Directories whose entries were read, as the command first read them.
    pub listed: BTreeMap<PathBuf, Listed>,
    /// Why the result must not be cached, if it must not.
    pub uncacheable: Option<String>,
    ignore: Vec<PathBuf>,
    /// Where outputs are kept: a file moved from there to elsewhere is
    /// an effect no hit could redo.
    roots: Vec<PathBuf>,
    stat: StatCache,
}

impl Accesses {
    /// Paths under any of `ignore` are not recorded; `roots` are where
    /// outputs are kept.
    pub fn new(ignore: Vec<PathBuf>, roots: Vec<PathBuf>, stat: StatCache) -> Accesses {
        Accesses {
            paths: BTreeMap::new(),
            links: BTreeMap::new(),
            named: BTreeMap::new(),
            listed: BTreeMap::new(),
            uncacheable: None,
            ignore,
            roots,
            stat,
        }
    }

    pub fn is_ignored(&self, path: &Path) -> bool {
        self.ignore.iter().any(|prefix| path.starts_with(prefix))
    }

    /// Whether `path` lies where outputs are kept.
    /// The stat cache the trace hashes through.
    pub fn stat(&self) -> &StatCache {
        &self.stat
    }

    pub fn in_roots(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
    }

    /// The command named `path` (resolved) absolutely or not.
    pub fn name(&mut self, path: &Path, absolute: bool) {
        if self.is_ignored(path) {
            return;
        }
        let named = self.named.entry(path.to_path_buf()).or_default();
        if absolute {
            named.absolute = true;
        } else {
            named.relative = true;
        }
    }

    /// A path went through the symlink `link`, whose target was `target`.
    pub fn passed_link(&mut self, link: PathBuf, target: PathBuf, absolute: bool) {
        if self.is_ignored(&link) {
            return;
        }
        // A link the command made itself is its own doing, not an input.
        if self.paths.get(&link).is_some_and(|s| s.written) {
            return;
        }
        self.name(&link, absolute);
        self.links.entry(link).or_insert(target);
    }

    /// The command opened `path` for reading, or executed it.
    pub fn read(&mut self, path: PathBuf) {
        if self.is_ignored(&path) {
            return;
        }
        let meta = std::fs::metadata(&path).ok();
        let (identity, mode) = match &meta {
            Some(m) => (Some(identity(m)), Some(file_mode(m))),
            None => (None, None),
        };
        let read = |stat_by| Before::Read {
            digest: None,
            identity,
            mode,
            stat_by,
        };
        let seen = self.paths.entry(path).or_insert(Seen::new(read(None)));
        // What the command made itself is no input.
        if seen.written || seen.made_dir {
            return;
        }
        match seen.before {
            Before::Exists {
                identity: Some(_), ..
            } => seen.before = read(seen.looked_by),
            Before::Exists { .. } | Before::Absent | Before::Denied => seen.before = read(None),
            Before::Read { .. } | Before::Untouched => {}
        }
    }

    /// The command looked at `path` (resolved as the call resolves it;
    /// `no_follow`: a symlink there counts by its target text) and what
    /// it found is the state there now.
    pub fn look(&mut self, pid: i32, path: PathBuf, how: Look, no_follow: bool) {
        if self.is_ignored(&path) {
            return;
        }
        let found = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() && no_follow => Before::Exists {
                dir: false,
                identity: None,
                link: std::fs::read_link(&path).ok(),
            },
            Ok(m) => Before::Exists {
                dir: m.is_dir(),
                identity: (how == Look::Stat && !m.is_dir()).then(|| identity(&m)),
                link: None,
            },
            Err(e) if e.raw_os_error().is_some_and(is_absence) => {
                let stop = stops_at(&path);
                if stop != path {
                    // `nodir/f`: what decides is `nodir`, missing or
                    // not a directory; once it is one, `f` may be made.
                    return self.look(pid, stop, Look::Kind, true);
                }
                Before::Absent
            }
            Err(e) => {
                self.refuse(format!("jl cannot look at '{}': {e}", path.display()));
                return;
            }
        };
        match self.paths.get_mut(&path) {
            None => {
                let saw_identity = matches!(
                    found,
                    Before::Exists {
                        identity: Some(_),
                        ..
                    }
                );
                let mut seen = Seen::new(found);
                seen.looked_by = Some(pid);
                seen.identity_by = saw_identity.then_some(pid);
                self.paths.insert(path, seen);
            }
            // A later, closer look at what was only seen to be there.
            Some(seen) if !seen.written && !seen.removed => match (&mut seen.before, found) {
                (
                    Before::Exists { identity: had, .. },
                    Before::Exists {
                        identity: Some(now),
                        ..
                    },
                ) if had.is_none() => {
                    *had = Some(now);
                    seen.identity_by = Some(pid);
                }
                (Before::Read { stat_by, .. }, _) if how == Look::Stat => {
                    stat_by.get_or_insert(pid);
                }
                // A write was about to happen but failed (`> dir`): what
                // was there is what the command met.
                (before @ Before::Untouched, found) if !seen.made_dir => {
                    *before = found;
                    seen.looked_by = Some(pid);
                }
                _ => {}
            },
            Some(_) => {}
        }
    }

    /// The command was refused (`EACCES`) a look at `path`. A shell
    /// searching `$PATH` past a directory it may not enter is the common
    /// case: when jl is refused too, that refusal is the dependency.
    /// Otherwise (a file whose own mode forbids it) false, and the caller
    /// refuses to cache.
    pub fn denied(&mut self, pid: i32, path: PathBuf) -> bool {
        if self.is_ignored(&path) {
            return true;
        }
        let refused =
            std::fs::symlink_metadata(&path).is_err_and(|e| e.raw_os_error() == Some(libc::EACCES));
        if refused && !self.paths.contains_key(&path) {
            let mut seen = Seen::new(Before::Denied);
            seen.looked_by = Some(pid);
            self.paths.insert(path, seen);
        }
        refused
    }

    /// The command is about to write to `path` (or rename or link onto
    /// it); `keeps_content` when what is there now shapes the result
    /// (appending, truncating to a length, renaming it elsewhere).
    pub fn will_change(&mut self, pid: i32, path: &Path, keeps_content: bool) {
        if self.is_ignored(path) {
            return;
        }
        if let Some(seen) = self.paths.get_mut(path) {
            seen.changed_by.get_or_insert(pid);
        }
        let digest = || {
            StatCache::digest_file(&self.stat, path)
                .ok()
                .map(|d| d.digest)
        };
        match self.paths.get(path).cloned() {
            Some(seen) if seen.written || seen.removed => {}
            Some(Seen {
                before:
                    Before::Read {
                        digest: None,
                        identity,
                        mode,
                        stat_by,
                    },
                ..
            }) => {
                let before = Before::Read {
                    digest: digest(),
                    identity,
                    mode,
                    stat_by,
                };
                let seen = self.paths.get_mut(path).expect("just matched");
                seen.before = before;
            }
            Some(Seen {
                before: Before::Read { .. } | Before::Untouched,
                ..
            }) => {}
            seen => {
                let meta = std::fs::metadata(path).ok().filter(|m| m.is_file());
                let exists = match &seen {
                    None => true,
                    Some(s) => matches!(s.before, Before::Exists { .. }),
                };
                let before = match (keeps_content && exists, meta) {
                    (true, Some(m)) => Before::Read {
                        digest: digest(),
                        identity: None,
                        mode: Some(file_mode(&m)),
                        stat_by: seen
                            .as_ref()
                            .filter(|s| {
                                matches!(
                                    s.before,
                                    Before::Exists {
                                        identity: Some(_),
                                        ..
                                    }
                                )
                            })
                            .and_then(|s| s.looked_by),
                    },
                    // What it looked at before writing stays a dependency
                    // (make's target: its absence, or its identity).
                    _ => seen
                        .as_ref()
                        .map_or(Before::Untouched, |s| s.before.clone()),
                };
                let mut fresh = seen.unwrap_or_else(|| Seen::new(Before::Untouched));
                fresh.before = before;
                fresh.changed_by.get_or_insert(pid);
                self.paths.insert(path.to_path_buf(), fresh);
            }
        }
    }

    /// The command is about to remove `path`: what it read there is
    /// hashed now, and a directory is remembered as one. Removing a
    /// directory works only when it is empty, so its names are a
    /// dependency as a listing's are.
    pub fn will_remove(&mut self, pid: i32, path: &Path) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            self.listed(path.to_path_buf());
            let exists = Before::Exists {
                dir: true,
                identity: None,
                link: None,
            };
            self.mark(path.to_path_buf(), exists.clone(), |seen| {
                if matches!(seen.before, Before::Read { .. }) && !seen.written {
                    seen.before = exists;
                }
                seen.was_dir = true;
                seen.changed_by.get_or_insert(pid);
            });
        } else if matches!(
            self.paths.get(path),
            Some(Seen {
                before: Before::Read { digest: None, .. },
                written: false,
                removed: false,
                ..
            })
        ) {
            self.will_change(pid, path, true);
        } else if let Some(seen) = self.paths.get_mut(path) {
            seen.changed_by.get_or_insert(pid);
        }
    }

    /// The command wrote or created `path`.
    pub fn wrote(&mut self, path: PathBuf) {
        self.mark(path, Before::Untouched, |seen| {
            seen.written = true;
            seen.removed = false;
        });
    }

    /// The command set the times of `path` (kept on a hit for a file it
    /// wrote; otherwise it is written now, with those times).
    pub fn set_times(&mut self, pid: i32, path: PathBuf) {
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            self.will_change(pid, &path, true);
            self.mark(path, Before::Untouched, |seen| {
                seen.written = true;
                seen.removed = false;
                seen.times_set = true;
            });
        }
    }

    /// The command removed `path` (or renamed it away).
    pub fn removed(&mut self, path: PathBuf) {
        let exists = Before::Exists {
            dir: false,
            identity: None,
            link: None,
        };
        self.mark(path, exists, |seen| {
            seen.written = false;
            seen.removed = true;
        });
    }

    /// The command created the directory `path`.
    pub fn made_dir(&mut self, path: PathBuf) {
        self.mark(path, Before::Absent, |seen| {
            seen.was_absent();
            seen.made_dir = true;
            seen.removed = false;
        });
    }

    /// The command made `path` with a call that fails where something is
    /// (`symlink`, `link`, `open` with `O_EXCL`).
    pub fn created(&mut self, path: PathBuf) {
        self.mark(path, Before::Absent, |seen| {
            seen.was_absent();
            seen.written = true;
            seen.removed = false;
        });
    }

    /// Applies `change` to what is known of `path` (first met as `first`).
    fn mark(&mut self, path: PathBuf, first: Before, change: impl FnOnce(&mut Seen)) {
        if !self.is_ignored(&path) {
            change(self.paths.entry(path).or_insert(Seen::new(first)));
        }
    }

    /// The command is about to read the entries of the directory `path`.
    /// The first time, its names are taken now, less those the command
    /// already made, wrote or removed there (it sees those whatever was
    /// there before it ran). A listing taken after the run would miss what
    /// the command removed since, and count what it wrote over.
    pub fn listed(&mut self, path: PathBuf) {
        if self.is_ignored(&path) || self.listed.contains_key(&path) {
            return;
        }
        let skip: Vec<RawPath> = self
            .paths
            .iter()
            .filter(|(p, s)| (s.written || s.made_dir || s.removed) && p.parent() == Some(&path))
            .filter_map(|(p, _)| Some(RawPath::new(Path::new(p.file_name()?))))
            .collect();
        let digest = listing(&path, &skip).ok();
        self.listed.insert(path, Listed { digest, skip });
    }

    /// Something the trace cannot follow: the result is not cached.
    pub fn refuse(&mut self, why: impl Into<String>) {
        self.uncacheable.get_or_insert_with(|| why.into());
    }
}

/// The permission bits of a file (what `chmod` sets).
pub fn file_mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o7777
}

/// A digest of a directory's entry names, less `skip`.
pub fn listing(dir: &Path, skip: &[RawPath]) -> std::io::Result<Digest> {
    use std::os::unix::ffi::OsStrExt;
    let skip: Vec<PathBuf> = skip.iter().map(RawPath::to_path).collect();
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if !skip.iter().any(|s| s.as_os_str() == name) {
            names.push(name.as_bytes().to_vec());
        }
    }
    names.sort();
    let mut enc = crate::key::Encoder::default();
    enc.list(names.iter().map(Vec::as_slice));
    Ok(Digest::of(&enc.0))
}

/// Where a path that is not there stops resolving: the path itself when
/// its directory is there; else the first component that is missing, or
/// the file in the way of a directory.
fn stops_at(path: &Path) -> PathBuf {
    let mut child = path;
    for ancestor in path.ancestors().skip(1) {
        match std::fs::symlink_metadata(ancestor) {
            Ok(m) if m.is_dir() => return child.to_path_buf(),
            Ok(_) => return ancestor.to_path_buf(),
            Err(_) => child = ancestor,
        }
    }
    path.to_path_buf()
}

/// The errors that make a traced lookup an `Dep::Absent` dependency,
/// both when the tracer records it and when a lookup checks it.
pub fn is_absence(errno: i32) -> bool {
    matches!(errno, libc::ENOENT | libc::ENOTDIR)
}

/// Whether this process is itself traced (by an outer `jl --trace`, a
/// debugger or `strace -f`): then its children already have a tracer,
/// which is why they could not take jl as theirs.
pub fn being_traced() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .is_some_and(|pid| pid.trim() != "0")
    })
}

/// `a/./b/../c` as `a/c`, without asking the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accesses(dir: &Path) -> Accesses {
        Accesses::new(
            vec![dir.join("ignored")],
            vec![dir.to_path_buf()],
            StatCache::default(),
        )
    }

    #[test]
    fn a_file_read_then_rewritten_keeps_the_digest_of_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "old").unwrap();
        let mut acc = accesses(dir.path());
        acc.read(path.clone());
        acc.will_change(1, &path, false);
        std::fs::write(&path, "new").unwrap();
        acc.wrote(path.clone());
        let seen = &acc.paths[&path];
        assert!(seen.written);
        assert!(
            matches!(seen.before, Before::Read { digest: Some(d), .. } if d == Digest::of(b"old"))
        );
    }

    #[test]
    fn a_file_written_then_read_is_internal_and_ignored_paths_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut acc = accesses(dir.path());
        acc.look(1, path.clone(), Look::Kind, false);
        acc.will_change(1, &path, false);
        std::fs::write(&path, "x").unwrap();
        acc.wrote(path.clone());
        acc.read(path.clone());
        assert_eq!(acc.paths[&path].before, Before::Absent);
        assert!(acc.paths[&path].written);
        acc.read(dir.path().join("ignored/x"));
        assert_eq!(acc.paths.len(), 1);
    }

    #[test]
    fn what_was_stated_before_a_write_stays_what_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target");
        std::fs::write(&path, "made by hand").unwrap();
        let then = identity(&std::fs::metadata(&path).unwrap());
        let mut acc = accesses(dir.path());
        acc.look(2, path.clone(), Look::Stat, false);
        acc.will_change(1, &path, false);
        acc.wrote(path.clone());
        assert!(matches!(
            acc.paths[&path].before,
            Before::Exists { identity: Some(i), .. } if i == then
        ));
    }

    #[test]
    fn appending_to_an_unread_file_makes_its_old_content_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "line\n").unwrap();
        let mut acc = accesses(dir.path());
        acc.will_change(1, &path, true);
        assert!(matches!(
            acc.paths[&path].before,
            Before::Read { digest: Some(d), .. } if d == Digest::of(b"line\n")
        ));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
    }
}
