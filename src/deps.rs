//! What `--trace` found a result to depend on, and the manifest that
//! lists, per action key, the entries recorded under it.
//!
//! A traced action's key (argv, executable, stdin, declared env, salt)
//! leads to a manifest of candidate entries, newest first, each carrying
//! its dependency list: files read (with digests), paths probed and found
//! or absent, directories listed. A lookup takes the first candidate
//! whose dependencies all still hold, checked through the stat cache, so
//! switching between two versions of a header hits both times.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{self, Digest, Identity, StatCache};
use crate::rawpath::RawPath;
use crate::trace::{Accesses, Before, Named};

/// One fact a traced result depends on. Paths the command named relative
/// to its working directory and found under it are kept relative to it,
/// so a project that moves still hits; paths it named absolutely stay
/// absolute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Dep {
    /// Read (opened, executed): its content and permission bits, and with
    /// `stat` the size and mtime the command also saw.
    File {
        path: RawPath,
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stat: Option<[i64; 3]>,
    },
    /// Looked at and there (a directory or not). For a file whose
    /// metadata it read, its identity too: a program that decides by
    /// `stat` alone (make's mtimes, python's cached bytecode) must see a
    /// changed file as one.
    Exists {
        path: RawPath,
        dir: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
    },
    /// Looked for and not there.
    Absent { path: RawPath },
    /// Looked for and refused: a directory on the way may not be searched.
    Denied { path: RawPath },
    /// A symlink, by its target text: one the command looked at without
    /// following (`readlink`, `lstat`), or one a path went through.
    Link { path: RawPath, target: RawPath },
    /// A directory whose entries were read: their names, but for the
    /// ones the command itself created.
    Listing {
        path: RawPath,
        digest: Digest,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skip: Vec<RawPath>,
    },
}

impl Dep {
    pub fn path(&self) -> PathBuf {
        match self {
            Dep::File { path, .. }
            | Dep::Exists { path, .. }
            | Dep::Absent { path }
            | Dep::Denied { path }
            | Dep::Link { path, .. }
            | Dep::Listing { path, .. } => path.to_path(),
        }
    }

    /// Whether the dependency holds now.
    pub fn holds(&self, stat: &StatCache) -> bool {
        let path = self.path();
        match self {
            Dep::File {
                digest,
                mode,
                stat: seen,
                ..
            } => {
                let Ok(m) = std::fs::metadata(&path) else {
                    return false;
                };
                use std::os::unix::fs::MetadataExt;
                mode.is_none_or(|mode| crate::trace::file_mode(&m) == mode)
                    && seen.is_none_or(|[size, secs, nanos]| {
                        [m.size() as i64, m.mtime(), m.mtime_nsec()] == [size, secs, nanos]
                    })
                    && stat.digest_file(&path).is_ok_and(|d| d.digest == *digest)
            }
            Dep::Exists { dir, identity, .. } => std::fs::metadata(&path).is_ok_and(|m| {
                m.is_dir() == *dir && identity.is_none_or(|then| then == digest::identity(&m))
            }),
            // Nothing at all there: a dangling symlink is something.
            Dep::Absent { .. } => std::fs::symlink_metadata(&path)
                .is_err_and(|e| e.raw_os_error().is_some_and(crate::trace::is_absence)),
            Dep::Denied { .. } => std::fs::symlink_metadata(&path)
                .is_err_and(|e| e.raw_os_error() == Some(libc::EACCES)),
            Dep::Link { target, .. } => {
                std::fs::read_link(&path).is_ok_and(|now| now == target.to_path())
            }
            Dep::Listing { digest, skip, .. } => {
                crate::trace::listing(&path, skip).ok() == Some(*digest)
            }
        }
    }

    /// How `jl explain` and `jl show` say it.
    pub fn describe(&self) -> String {
        let path = self.path().display().to_string();
        match self {
            Dep::File { digest, .. } => format!("read    {path} {}", &digest.hex()[..12]),
            Dep::Exists { dir: true, .. } if !path.ends_with('/') => format!("found   {path}/"),
            Dep::Exists { .. } => format!("found   {path}"),
            Dep::Absent { .. } => format!("absent  {path}"),
            Dep::Denied { .. } => format!("denied  {path}"),
            Dep::Link { target, .. } => format!("link    {path} -> {}", target.display()),
            Dep::Listing { digest, .. } => format!("listed  {path}/ {}", &digest.hex()[..12]),
        }
    }
}

/// A traced run, ready to be stored.
#[derive(Debug, Default)]
pub struct Discovered {
    pub deps: Vec<Dep>,
    /// Files written under the working directory or an allowed root, with
    /// where an entry keeps them and whether the command set their times.
    pub outputs: Vec<(PathBuf, RawPath, bool)>,
    /// Directories it made there, with their modes.
    pub dirs: Vec<(RawPath, u32)>,
    /// Symlinks it made there, with their targets.
    pub links: Vec<(RawPath, PathBuf)>,
    /// Files there before the run and removed by it, as an entry keeps them.
    pub deleted: Vec<RawPath>,
}

/// The ways an entry keeps `path`: relative to `cwd` when the command
/// named it relatively and it lies there, absolute when it named it
/// absolutely (both, when it did both).
fn kept_forms(path: &Path, named: Option<&Named>, cwd: &Path) -> Vec<RawPath> {
    let named = named.copied().unwrap_or(Named {
        relative: true,
        absolute: false,
    });
    let mut forms = Vec::new();
    match path.strip_prefix(cwd) {
        Ok(rest) if named.relative => forms.push(RawPath::new(if rest.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rest
        })),
        _ if named.relative => forms.push(RawPath::new(path)),
        _ => {}
    }
    if named.absolute && !forms.contains(&RawPath::new(path)) {
        forms.push(RawPath::new(path));
    }
    forms
}

/// The one place an entry restores `path` to: absolute when the command
/// ever named it absolutely.
fn kept_output(path: &Path, named: Option<&Named>, cwd: &Path) -> RawPath {
    let forms = kept_forms(path, named, cwd);
    forms.last().cloned().unwrap_or_else(|| RawPath::new(path))
}

/// Turns what a traced run touched into dependencies and outputs, or says
/// why it cannot be cached. Outputs are what it left under the trace's
/// roots: the working directory, `--trace-outputs` and declared outputs.
pub fn discover(acc: &Accesses, cwd: &Path) -> Result<Discovered, String> {
    let stat = acc.stat();
    if let Some(why) = &acc.uncacheable {
        return Err(why.clone());
    }
    let mut found = Discovered::default();
    let moved = |path: &Path| format!("input '{}' changed while the command ran", path.display());
    for (path, seen) in &acc.paths {
        let in_roots = acc.in_roots(path);
        let named = acc.named.get(path);
        let now = std::fs::symlink_metadata(path);
        if seen.written && in_roots {
            match &now {
                Ok(m) if m.is_file() => {
                    let kept = kept_output(path, named, cwd);
                    found.outputs.push((path.clone(), kept, seen.times_set));
                }
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(path).map_err(|_| moved(path))?;
                    found.links.push((kept_output(path, named, cwd), target));
                }
                Ok(m) if m.is_dir() && !seen.times_set => {
                    return Err(format!(
                        "it moved the directory '{}' into place, which --trace does not restore",
                        path.display()
                    ));
                }
                Ok(m) if !m.is_dir() => {
                    return Err(format!(
                        "it made '{}', which is not a file, and --trace does not restore it",
                        path.display()
                    ));
                }
                _ => {}
            }
        }
        if seen.made_dir && in_roots && !seen.written {
            if let Some(m) = now.as_ref().ok().filter(|m| m.is_dir()) {
                found
                    .dirs
                    .push((kept_output(path, named, cwd), crate::trace::file_mode(m)));
            }
        }
        let exists_now = now.is_ok();
        if seen.removed && in_roots && seen.before != Before::Untouched && !exists_now {
            found.deleted.push(kept_output(path, named, cwd));
        }
        let forms = kept_forms(path, named, cwd);
        let mut push = |dep: &dyn Fn(RawPath) -> Dep| {
            found.deps.extend(forms.iter().cloned().map(dep));
        };
        match &seen.before {
            Before::Untouched => {}
            Before::Read {
                digest,
                identity,
                mode,
                stat_by,
            } => {
                // What `stat` showed counts, unless the process that looked
                // is the one that then changed or removed it (`rm`).
                let changed = seen.written || seen.removed;
                let looked = stat_by.filter(|by| !(changed && seen.changed_by == Some(*by)));
                let seen_stat = looked.and(*identity).map(|id| [id[2], id[3], id[4]]);
                if seen.written || seen.removed {
                    let Some(digest) = digest else {
                        return Err(format!(
                            "cannot hash '{}' before the command changed it",
                            path.display()
                        ));
                    };
                    push(&|path| Dep::File {
                        path,
                        digest: *digest,
                        mode: *mode,
                        stat: seen_stat,
                    });
                    continue;
                }
                let followed = match &now {
                    Ok(m) if !m.file_type().is_symlink() => Ok(m.clone()),
                    _ => std::fs::metadata(path),
                };
                match followed {
                    Ok(m) if m.is_file() => {
                        let d = stat.digest_file(path).map_err(|_| moved(path))?;
                        if identity.is_some_and(|then| then != d.identity) {
                            return Err(moved(path));
                        }
                        push(&|path| Dep::File {
                            path,
                            digest: d.digest,
                            mode: *mode,
                            stat: seen_stat,
                        });
                    }
                    Ok(m) => push(&|path| Dep::Exists {
                        path,
                        dir: m.is_dir(),
                        identity: None,
                    }),
                    Err(_) => return Err(moved(path)),
                }
            }
            // What the command saw there, even if it wrote there later
            // (make's target: absent, or older than its prerequisite).
            // What one process looked at and then changed itself counts
            // by its kind alone (`as` stats its output, `rm` what it
            // removes); what it changed after another one looked (make's
            // target, written by a recipe) counts as it was seen.
            Before::Exists { dir, .. }
                if (seen.written || seen.removed) && seen.changed_by_its_looker() =>
            {
                push(&|path| Dep::Exists {
                    path,
                    dir: *dir || seen.was_dir,
                    identity: None,
                })
            }
            Before::Exists {
                link: Some(target), ..
            } => push(&|path| Dep::Link {
                path,
                target: RawPath::new(target),
            }),
            Before::Exists { dir, identity, .. } if !seen.made_dir => push(&|path| Dep::Exists {
                path,
                dir: *dir || seen.was_dir,
                identity: *identity,
            }),
            Before::Absent => push(&|path| Dep::Absent { path }),
            Before::Denied => push(&|path| Dep::Denied { path }),
            Before::Exists { .. } => {}
        }
    }
    // A file is written into a directory that was there: a hit must not
    // make the directory a real run would have failed to find.
    let made_here = |p: &Path| acc.paths.get(p).is_some_and(|s| s.made_dir);
    let mut parents: Vec<&Path> = acc
        .paths
        .iter()
        .filter(|(p, s)| (s.written || s.made_dir) && acc.in_roots(p))
        .filter_map(|(p, _)| p.parent())
        .filter(|parent| !made_here(parent))
        .collect();
    parents.sort();
    parents.dedup();
    for parent in parents {
        for path in kept_forms(parent, acc.named.get(parent), cwd) {
            found.deps.push(Dep::Exists {
                path,
                dir: true,
                identity: None,
            });
        }
    }
    for (link, target) in &acc.links {
        if acc.paths.get(link).is_some_and(|s| s.written || s.removed) {
            continue;
        }
        for path in kept_forms(link, acc.named.get(link), cwd) {
            found.deps.push(Dep::Link {
                path,
                target: RawPath::new(target),
            });
        }
    }
    for (dir, listed) in &acc.listed {
        if acc.paths.get(dir).is_some_and(|s| s.made_dir) {
            continue;
        }
        let Some(digest) = listed.digest else {
            return Err(format!("jl cannot read the directory '{}'", dir.display()));
        };
        for path in kept_forms(dir, acc.named.get(dir), cwd) {
            found.deps.push(Dep::Listing {
                path,
                digest,
                skip: listed.skip.clone(),
            });
        }
    }
    found.deps.dedup();
    Ok(found)
}

/// The key a traced result is stored under: its action key and the
/// dependencies it was found to have.
pub fn candidate_key(action: &Digest, deps: &[Dep]) -> Digest {
    use std::os::unix::ffi::OsStrExt;
    let mut enc = crate::key::Encoder::default();
    enc.bytes(b"jl trace candidate");
    enc.u64(crate::key::KEY_VERSION);
    enc.bytes(&action.0);
    enc.u64(deps.len() as u64);
    let path =
        |enc: &mut crate::key::Encoder, p: &RawPath| enc.bytes(p.to_path().as_os_str().as_bytes());
    for dep in deps {
        match dep {
            Dep::File {
                path: p,
                digest,
                mode,
                stat,
            } => {
                enc.bytes(b"file");
                path(&mut enc, p);
                enc.bytes(&digest.0);
                enc.option(mode.map(|m| m.to_le_bytes()).as_ref().map(|b| &b[..]));
                let stat: Option<Vec<u8>> =
                    stat.map(|s| s.iter().flat_map(|n| n.to_le_bytes()).collect());
                enc.option(stat.as_deref());
            }
            Dep::Exists {
                path: p,
                dir,
                identity,
            } => {
                enc.bytes(b"exists");
                path(&mut enc, p);
                enc.bytes(&[u8::from(*dir)]);
                let id: Option<Vec<u8>> =
                    identity.map(|i| i.iter().flat_map(|n| n.to_le_bytes()).collect());
                enc.option(id.as_deref());
            }
            Dep::Absent { path: p } => {
                enc.bytes(b"absent");
                path(&mut enc, p);
            }
            Dep::Denied { path: p } => {
                enc.bytes(b"denied");
                path(&mut enc, p);
            }
            Dep::Link { path: p, target } => {
                enc.bytes(b"link");
                path(&mut enc, p);
                path(&mut enc, target);
            }
            Dep::Listing {
                path: p,
                digest,
                skip,
            } => {
                enc.bytes(b"listing");
                path(&mut enc, p);
                enc.bytes(&digest.0);
                enc.u64(skip.len() as u64);
                skip.iter().for_each(|s| path(&mut enc, s));
            }
        }
    }
    Digest::of(&enc.0)
}
