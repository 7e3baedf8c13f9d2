//! Paths as the kernel resolves them, for the tracer.
//!
//! A traced call names a path relative to the calling process's working
//! directory or to a directory descriptor, through symlinks and `..`.
//! The file the kernel then uses is found here the way the kernel finds
//! it: component by component, a symlink replaced by its target before a
//! following `..` applies (so `d/link/../f` with `d/link -> ../real/sub`
//! is `real/f`, not `d/f`). Every symlink passed on the way is reported:
//! the result depends on its target text as much as on the file reached.
//!
//! `/proc/self`, `/proc/thread-self` and `/dev/fd` are the traced
//! process's own, so `cat /proc/self/cwd/f` and `cat /dev/fd/3` resolve
//! to the files they name.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Where a path led.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The path the call acts on, absolute and free of symlinks and `..`
    /// but for its last component when the call does not follow it.
    pub path: PathBuf,
    /// Each symlink passed, with its target text, in walk order.
    pub links: Vec<(PathBuf, PathBuf)>,
    /// Directories the walk went into and back out of with `..`: the path
    /// resolves only while each is there (`d/sub/../../f` needs `d/sub`).
    pub left: Vec<PathBuf>,
    /// The walk ended somewhere that is no file (a pipe's descriptor, a
    /// symlink loop): the call names nothing jl can record.
    pub nowhere: bool,
}

/// What a path was when the resolver last looked.
#[derive(Clone, Debug)]
enum Node {
    Link(PathBuf),
    Other,
}

/// The most symlinks one walk follows, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// Resolves paths for one trace, remembering what it looked at until the
/// traced command changes the namespace ([`Resolver::forget`]).
#[derive(Debug, Default)]
pub struct Resolver {
    seen: HashMap<PathBuf, Node>,
}

impl Resolver {
    /// The traced command renamed, removed or created something: what
    /// was remembered may be wrong now.
    pub fn forget(&mut self) {
        self.seen.clear();
    }

    /// Resolves `raw` for process `pid`, from `base` (its working
    /// directory or the directory of the call's descriptor, physical).
    /// `follow`: the call follows a symlink in the last component.
    pub fn resolve(&mut self, pid: i32, base: &Path, raw: &Path, follow: bool) -> Resolved {
        let mut out = Resolved::default();
        // A trailing slash makes the kernel follow the last component.
        let follow = follow || raw.as_os_str().as_bytes().ends_with(b"/");
        let mut todo: Vec<PathBuf> = Vec::new();
        push_components(&mut todo, raw);
        let mut at = if raw.is_absolute() {
            PathBuf::from("/")
        } else {
            base.to_path_buf()
        };
        let mut followed = 0;
        while let Some(name) = todo.pop() {
            if name.as_os_str() == ".." {
                if at.parent().is_some() {
                    out.left.push(at.clone());
                }
                at.pop();
                continue;
            }
            let next = proc_self(at.join(&name), pid);
            let last = todo.is_empty();
            if last && !follow {
                at = next;
                break;
            }
            match self.look(&next) {
                Node::Link(target) => {
                    followed += 1;
                    out.links.push((next, target.clone()));
                    if followed > MAX_LINKS || !target_is_path(&target) {
                        out.nowhere = true;
                        return out;
                    }
                    if target.is_absolute() {
                        at = PathBuf::from("/");
                    }
                    push_components(&mut todo, &target);
                }
                Node::Other => at = next,
            }
        }
        out.path = at;
        out
    }

    fn look(&mut self, path: &Path) -> Node {
        if let Some(node) = self.seen.get(path) {
            return node.clone();
        }
        let node = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(path) {
                Ok(target) => Node::Link(target),
                Err(_) => Node::Other,
            },
            _ => Node::Other,
        };
        // /proc changes under every process: never remembered.
        if !path.starts_with("/proc") {
            self.seen.insert(path.to_path_buf(), node.clone());
        }
        node
    }
}

/// Pushes the components of `path` so that the first one pops first.
fn push_components(todo: &mut Vec<PathBuf>, path: &Path) {
    let names: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// `/proc/self/...` and `/proc/thread-self/...` as the traced process
/// sees them.
fn proc_self(path: PathBuf, pid: i32) -> PathBuf {
    for own in ["/proc/self", "/proc/thread-self"] {
        if path.as_os_str() == OsStr::new(own) {
            return PathBuf::from(format!("/proc/{pid}"));
        }
    }
    path
}

/// Magic links of `/proc` point at things that are no path
/// (`pipe:[1234]`, `anon_inode:[eventfd]`).
fn target_is_path(target: &Path) -> bool {
    let bytes = target.as_os_str().as_bytes();
    (!bytes.ends_with(b"]") || bytes.starts_with(b"/")) && !bytes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn dot_dot_applies_after_the_link_it_follows() {
        let dir = tempfile::tempdir().unwrap();
        let w = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(w.join("real/sub")).unwrap();
        std::fs::create_dir_all(w.join("d")).unwrap();
        symlink("../real/sub", w.join("d/link")).unwrap();
        let mut r = Resolver::default();
        let got = r.resolve(1, &w, Path::new("d/link/../f"), true);
        assert_eq!(got.path, w.join("real/f"));
        assert_eq!(
            got.links,
            vec![(w.join("d/link"), PathBuf::from("../real/sub"))]
        );
    }

    #[test]
    fn the_last_link_is_followed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let w = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(w.join("a"), "x").unwrap();
        symlink("a", w.join("current")).unwrap();
        let mut r = Resolver::default();
        assert_eq!(
            r.resolve(1, &w, Path::new("current"), false).path,
            w.join("current")
        );
        let followed = r.resolve(1, &w, Path::new("current"), true);
        assert_eq!(followed.path, w.join("a"));
        assert_eq!(followed.links.len(), 1);
        assert_eq!(
            r.resolve(1, &w, Path::new("current/"), false).path,
            w.join("a")
        );
    }

    #[test]
    fn a_loop_leads_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let w = std::fs::canonicalize(dir.path()).unwrap();
        symlink("l2", w.join("l1")).unwrap();
        symlink("l1", w.join("l2")).unwrap();
        let mut r = Resolver::default();
        assert!(r.resolve(1, &w, Path::new("l1"), true).nowhere);
    }

    #[test]
    fn proc_self_is_the_traced_process() {
        let me = std::process::id() as i32;
        let mut r = Resolver::default();
        let cwd = std::env::current_dir().unwrap();
        let got = r.resolve(
            me,
            Path::new("/"),
            Path::new("/proc/self/cwd/Cargo.toml"),
            true,
        );
        assert_eq!(
            got.path,
            std::fs::canonicalize(cwd.join("Cargo.toml")).unwrap()
        );
    }
}
