//! `--trace`: the files a command and all its descendants read, probed
//! for, listed, wrote and removed, learnt by watching its system calls.
//!
//! [`tracer`] drives ptrace and calls the methods of [`Accesses`], which
//! keep the rules in one place: a file the command wrote before reading
//! it is internal; a file it read before writing (or renaming, or
//! appending to) is an input, hashed before the write lands, and an
//! output too. `deps` turns the result into an entry's dependency list.

pub mod filter;
mod tracer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Identity, StatCache, identity};

pub use tracer::run;

/// What the command found at a path before it changed anything there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// Its first touch was a write or create that ignored what was there.
    Untouched,
    /// Opened for reading or executed. `digest` is taken when the command
    /// is about to change or remove the file (else after the run), and
    /// `identity` when it was first read, to notice a change meanwhile.
    Read {
        digest: Option<Digest>,
        identity: Option<Identity>,
    },
    /// Looked at (stat, access, readlink) and there.
    Exists,
    /// Looked for and not there.
    Absent,
}

/// Everything the command did at one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub before: Before,
    pub written: bool,
    /// Removed (or renamed away) and not written again since.
    pub removed: bool,
    /// A directory when the command removed it.
    pub was_dir: bool,
    /// Created as a directory.
    pub made_dir: bool,
}

impl Seen {
    fn new(before: Before) -> Seen {
        Seen {
            before,
            written: false,
            removed: false,
            was_dir: false,
            made_dir: false,
        }
    }
}

/// What one traced run touched.
#[derive(Debug)]
pub struct Accesses {
    pub paths: BTreeMap<PathBuf, Seen>,
    /// Directories whose entries were read.
    pub listed: BTreeSet<PathBuf>,
    /// Why the result must not be cached, if it must not.
    pub uncacheable: Option<String>,
    ignore: Vec<PathBuf>,
    stat: StatCache,
}

impl Accesses {
    /// Paths under any of `ignore` are not recorded.
    pub fn new(ignore: Vec<PathBuf>, stat: StatCache) -> Accesses {
        Accesses {
            paths: BTreeMap::new(),
            listed: BTreeSet::new(),
            uncacheable: None,
            ignore,
            stat,
        }
    }

    pub fn is_ignored(&self, path: &Path) -> bool {
        self.ignore.iter().any(|prefix| path.starts_with(prefix))
    }

    /// The command opened `path` for reading, or executed it.
    pub fn read(&mut self, path: PathBuf) {
        if self.is_ignored(&path) {
            return;
        }
        let identity = std::fs::metadata(&path).ok().map(|m| identity(&m));
        let read = Before::Read {
            digest: None,
            identity,
        };
        let seen = self.paths.entry(path).or_insert(Seen::new(read));
        if !seen.written && matches!(seen.before, Before::Exists | Before::Absent) {
            seen.before = read;
        }
    }

    /// The command looked for `path` and found it there or not.
    pub fn probe(&mut self, path: PathBuf, found: bool) {
        if self.is_ignored(&path) {
            return;
        }
        let before = if found {
            Before::Exists
        } else {
            Before::Absent
        };
        self.paths.entry(path).or_insert(Seen::new(before));
    }

    /// The command is about to write to `path` (or rename or link onto
    /// it); `keeps_content` when what is there now shapes the result
    /// (appending, truncating to a length, renaming it elsewhere).
    pub fn will_change(&mut self, path: &Path, keeps_content: bool) {
        if self.is_ignored(path) {
            return;
        }
        let digest = || {
            StatCache::digest_file(&self.stat, path)
                .ok()
                .map(|d| d.digest)
        };
        match self.paths.get(path) {
            Some(seen) if seen.written || seen.removed => {}
            Some(Seen {
                before:
                    Before::Read {
                        digest: None,
                        identity,
                    },
                ..
            }) => {
                let before = Before::Read {
                    digest: digest(),
                    identity: *identity,
                };
                self.paths.insert(path.to_path_buf(), Seen::new(before));
            }
            Some(Seen {
                before: Before::Read { .. } | Before::Untouched,
                ..
            }) => {}
            seen => {
                let exists = seen.is_none_or(|s| s.before == Before::Exists);
                let is_file = std::fs::metadata(path).is_ok_and(|m| m.is_file());
                let before = if keeps_content && exists && is_file {
                    Before::Read {
                        digest: digest(),
                        identity: None,
                    }
                } else {
                    seen.map_or(Before::Untouched, |s| s.before)
                };
                self.paths.insert(path.to_path_buf(), Seen::new(before));
            }
        }
    }

    /// The command is about to remove `path`: what it read there is
    /// hashed now, and a directory is remembered as one.
    pub fn will_remove(&mut self, path: &Path) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            self.mark(path.to_path_buf(), Before::Exists, |seen| {
                if matches!(seen.before, Before::Read { .. }) && !seen.written {
                    seen.before = Before::Exists;
                }
                seen.was_dir = true;
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
            self.will_change(path, true);
        }
    }

    /// The command wrote or created `path`.
    pub fn wrote(&mut self, path: PathBuf) {
        self.mark(path, Before::Untouched, |seen| {
            seen.written = true;
            seen.removed = false;
        });
    }

    /// The command removed `path` (or renamed it away).
    pub fn removed(&mut self, path: PathBuf) {
        self.mark(path, Before::Exists, |seen| {
            seen.written = false;
            seen.removed = true;
        });
    }

    /// The command created the directory `path`.
    pub fn made_dir(&mut self, path: PathBuf) {
        self.mark(path, Before::Untouched, |seen| {
            seen.made_dir = true;
            seen.removed = false;
        });
    }

    /// Applies `change` to what is known of `path` (first met as `first`).
    fn mark(&mut self, path: PathBuf, first: Before, change: impl FnOnce(&mut Seen)) {
        if !self.is_ignored(&path) {
            change(self.paths.entry(path).or_insert(Seen::new(first)));
        }
    }

    /// The command read the entries of the directory `path`.
    pub fn listed(&mut self, path: PathBuf) {
        if !self.is_ignored(&path) {
            self.listed.insert(path);
        }
    }

    /// Something the trace cannot follow: the result is not cached.
    pub fn refuse(&mut self, why: impl Into<String>) {
        self.uncacheable.get_or_insert_with(|| why.into());
    }
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
        Accesses::new(vec![dir.join("ignored")], StatCache::default())
    }

    #[test]
    fn a_file_read_then_rewritten_keeps_the_digest_of_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "old").unwrap();
        let mut acc = accesses(dir.path());
        acc.read(path.clone());
        acc.will_change(&path, false);
        std::fs::write(&path, "new").unwrap();
        acc.wrote(path.clone());
        let seen = acc.paths[&path];
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
        acc.probe(path.clone(), false);
        acc.will_change(&path, false);
        acc.wrote(path.clone());
        acc.read(path.clone());
        assert_eq!(acc.paths[&path].before, Before::Absent);
        assert!(acc.paths[&path].written);
        acc.read(dir.path().join("ignored/x"));
        assert_eq!(acc.paths.len(), 1);
    }

    #[test]
    fn appending_to_an_unread_file_makes_its_old_content_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "line\n").unwrap();
        let mut acc = accesses(dir.path());
        acc.will_change(&path, true);
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
