//! What goes into an action key, and its encoding.
//!
//! An action is a command line plus everything its result depends on:
//! the executable's content, the content of its inputs, stdin, the chosen
//! environment variables, the declared outputs and a salt. The key is the
//! BLAKE3 hash of a versioned, length-prefixed encoding of all of that, so
//! no two different actions can encode to the same bytes (`["ab","c"]` and
//! `["a","bc"]` differ in their length prefixes).
//!
//! [`Parts`] is the same information in readable form: it is stored in
//! every entry so `jl explain` can say which component changed.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Identity, StatCache, identity};
use crate::tree::Stat;

/// Bumped whenever the encoding changes; old entries then simply miss.
pub const KEY_VERSION: u64 = 3;

/// What the user chose to put in (or leave out of) the key.
#[derive(Clone, Debug, Default)]
pub struct KeyOptions {
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<PathBuf>,
    pub env: Vec<OsString>,
    pub auto_inputs: bool,
    pub salt: Option<OsString>,
    pub cwd: Option<PathBuf>,
    /// Arguments matching any of these are left out of the key.
    pub ignore_args: Vec<glob::Pattern>,
    /// `--trace`: inputs and outputs are discovered by watching the run.
    pub trace: bool,
    /// `--trace-outputs`: where else than the working directory traced
    /// writes are captured and restored.
    pub trace_outputs: Vec<PathBuf>,
    /// `--trace-ignore`: path prefixes whose accesses are not recorded.
    pub trace_ignore: Vec<PathBuf>,
}

/// How an input was found when it was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    File,
    Dir,
    /// Declared with `-i` but not there: absence is part of the key too.
    Absent,
}

/// One input as it went into the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub path: String,
    pub kind: InputKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// A file with an exec bit set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
    /// The path is a symlink with this target text (what it resolves
    /// to is `kind` and `digest`; a dangling one is `Absent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One input as it is encoded in the key: raw bytes, not text.
#[derive(Clone, Debug, PartialEq)]
struct Hashed {
    path: PathBuf,
    kind: InputKind,
    digest: Option<Digest>,
    executable: bool,
    link: Option<OsString>,
}

/// One chosen environment variable; only a digest of its value is kept,
/// since values may be secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<Digest>,
}

/// The readable components of a key, stored in each entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    pub argv: Vec<String>,
    pub exe: String,
    pub exe_digest: Digest,
    pub inputs: Vec<Input>,
    pub stdin: Option<Digest>,
    pub outputs: Vec<String>,
    pub env: Vec<EnvVar>,
    pub salt: Option<String>,
    pub cwd: Option<String>,
    /// Run with `--trace`: the dependencies are in each entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace: bool,
}

/// An action: the key and the parts it was computed from.
#[derive(Clone, Debug)]
pub struct Action {
    pub key: Digest,
    pub parts: Parts,
    /// The declared outputs as given, in declaration order.
    pub outputs: Vec<PathBuf>,
    /// Every input hashed for the key, with its identity then: if one
    /// moved by the time the command ends, the result is not stored.
    pub watched: Vec<Watched>,
}

/// An input as it was when it was hashed.
#[derive(Clone, Debug)]
pub enum Watched {
    File(PathBuf, Identity),
    /// A directory, by the digest of its entries' names and identities.
    Tree(PathBuf, Digest),
}

/// Why a key could not be computed; the command then runs uncached.
#[derive(Debug)]
pub struct KeyError {
    pub path: PathBuf,
    pub error: io::Error,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot hash input '{}': {}",
            self.path.display(),
            self.error
        )
    }
}

/// Everything a key is computed from, as raw bytes (names need not be
/// UTF-8). Two different values always encode differently.
#[derive(Clone, Debug, PartialEq)]
struct Components {
    argv: Vec<OsString>,
    exe: PathBuf,
    exe_digest: Digest,
    inputs: Vec<Hashed>,
    stdin: Option<Digest>,
    outputs: Vec<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    salt: Option<OsString>,
    cwd: Option<PathBuf>,
    trace: bool,
}

impl Components {
    fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::default();
        enc.u64(KEY_VERSION);
        enc.list(self.argv.iter().map(|a| a.as_bytes()));
        enc.bytes(self.exe.as_os_str().as_bytes());
        enc.bytes(&self.exe_digest.0);
        enc.u64(self.inputs.len() as u64);
        for input in &self.inputs {
            enc.bytes(input.path.as_os_str().as_bytes());
            enc.bytes(&[input.kind as u8, u8::from(input.executable)]);
            enc.option(input.digest.as_ref().map(|d| &d.0[..]));
            enc.option(input.link.as_ref().map(|l| l.as_bytes()));
        }
        enc.option(self.stdin.as_ref().map(|d| &d.0[..]));
        enc.list(self.outputs.iter().map(|o| o.as_os_str().as_bytes()));
        enc.u64(self.env.len() as u64);
        for (name, value) in &self.env {
            enc.bytes(name.as_bytes());
            enc.option(value.as_ref().map(|v| v.as_bytes()));
        }
        enc.option(self.salt.as_ref().map(|s| s.as_bytes()));
        enc.option(self.cwd.as_ref().map(|c| c.as_os_str().as_bytes()));
        // Appended only when set, so untraced keys stay as they were.
        if self.trace {
            enc.bytes(b"trace");
        }
        enc.0
    }

    fn parts(&self) -> Parts {
        Parts {
            argv: self.argv.iter().map(|a| lossy(a)).collect(),
            exe: lossy(self.exe.as_os_str()),
            exe_digest: self.exe_digest,
            inputs: self
                .inputs
                .iter()
                .map(|i| Input {
                    path: lossy(i.path.as_os_str()),
                    kind: i.kind,
                    digest: i.digest,
                    executable: i.executable,
                    link: i.link.as_deref().map(lossy),
                })
                .collect(),
            stdin: self.stdin,
            outputs: self.outputs.iter().map(|o| lossy(o.as_os_str())).collect(),
            env: self
                .env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: lossy(name),
                    value: value.as_ref().map(|v| Digest::of(v.as_bytes())),
                })
                .collect(),
            salt: self.salt.as_ref().map(|s| lossy(s)),
            cwd: self.cwd.as_ref().map(|c| lossy(c.as_os_str())),
            trace: self.trace,
        }
    }
}

/// Computes the key of running `argv` (whose program resolved to `exe`).
pub fn build(
    argv: &[OsString],
    exe: &Path,
    stdin: Option<Digest>,
    opts: &KeyOptions,
    stat: &StatCache,
) -> Result<Action, KeyError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |error| KeyError { path, error }
    };
    let exe_digest = stat.digest_file(exe).map_err(fail(exe))?.digest;
    let argv = keyed_args(argv, &opts.ignore_args);

    let mut watched = Vec::new();
    let mut inputs: Vec<Hashed> = Vec::new();
    for path in &opts.inputs {
        let input = hash_input(path, true, stat, &mut watched).map_err(fail(path))?;
        inputs.extend(input);
    }
    if opts.auto_inputs && !opts.trace {
        for path in auto_input_candidates(&argv) {
            let declared_out = opts.outputs.iter().any(|o| same_path(o, &path));
            let seen = inputs.iter().any(|i| same_path(&i.path, &path));
            if declared_out || seen {
                continue;
            }
            let input = hash_input(&path, false, stat, &mut watched).map_err(fail(&path))?;
            inputs.extend(input);
        }
    }

    let components = Components {
        argv,
        exe: exe.to_path_buf(),
        exe_digest,
        inputs,
        stdin,
        outputs: opts.outputs.clone(),
        env: opts
            .env
            .iter()
            .map(|name| (name.clone(), std::env::var_os(name)))
            .collect(),
        salt: opts.salt.clone(),
        cwd: opts.cwd.clone(),
        trace: opts.trace,
    };
    Ok(Action {
        key: Digest::of(&components.encode()),
        parts: components.parts(),
        outputs: opts.outputs.clone(),
        watched,
    })
}

/// The arguments that go into the key: all but those matching an
/// `--ignore-arg` glob (the program itself always counts).
fn keyed_args(argv: &[OsString], ignore: &[glob::Pattern]) -> Vec<OsString> {
    let ignored = |arg: &OsString| {
        let text = arg.to_string_lossy();
        ignore.iter().any(|p| p.matches(&text))
    };
    let (program, args) = argv.split_first().expect("a command has a program");
    std::iter::once(program.clone())
        .chain(args.iter().filter(|a| !ignored(a)).cloned())
        .collect()
}

/// Why the declared outputs cannot be used, if they cannot: a hit makes
/// each output exactly as the recorded run left it, removing what the run
/// did not leave there, so an output must not be (or hold) the working
/// directory, `/`, `$HOME` or the store, nor hold an input of the run.
/// Paths are compared as the kernel resolves their directories.
pub fn misdeclared_outputs(
    argv: &[OsString],
    opts: &KeyOptions,
    store: Option<&Path>,
) -> Option<String> {
    if opts.outputs.is_empty() {
        return None;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cwd = std::env::current_dir().ok();
    let precious = [
        (Some(Path::new("/")), "/"),
        (home.as_deref(), "your home directory ($HOME)"),
        (store, "the store"),
        (cwd.as_deref(), "the working directory"),
    ];
    let mut inputs: Vec<&Path> = opts.inputs.iter().map(PathBuf::as_path).collect();
    let candidates = if opts.auto_inputs && !opts.trace {
        auto_input_candidates(&keyed_args(argv, &opts.ignore_args))
    } else {
        Vec::new()
    };
    inputs.extend(candidates.iter().map(PathBuf::as_path).filter(|c| {
        std::fs::symlink_metadata(c).is_ok() && !opts.outputs.iter().any(|o| same_path(o, c))
    }));
    let places: Vec<(PathBuf, &str)> = precious
        .iter()
        .filter_map(|(place, what)| Some((resolved(place.as_ref()?), *what)))
        .collect();
    for out in &opts.outputs {
        let out_at = resolved(out);
        let is = places.iter().find(|(place, _)| *place == out_at);
        let holds = places.iter().find(|(place, _)| place.starts_with(&out_at));
        let found = is.map(|p| ("is", p)).or(holds.map(|p| ("holds", p)));
        if let Some((relation, (_, what))) = found {
            return Some(format!(
                "-o {} {relation} {what}; a hit removes what the run did not leave there, so declare a path of its own",
                out.display()
            ));
        }
        if let Some(input) = inputs.iter().find(|i| resolved(i).starts_with(&out_at)) {
            return Some(format!(
                "-o {} holds the input {}; a hit makes an output as the run left it, so keep inputs out of it",
                out.display(),
                input.display()
            ));
        }
    }
    None
}

/// `path` made absolute with its directory resolved as the kernel would
/// (symlinks followed) but its last component kept as named.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let absolute = crate::trace::normalize(&absolute);
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(name),
        _ => absolute,
    }
}

/// The first watched input whose identity moved since it was hashed.
pub fn changed_input(action: &Action) -> Option<&Path> {
    action.watched.iter().find_map(|watched| match watched {
        Watched::File(path, then) => {
            let now = std::fs::metadata(path).map(|m| identity(&m)).ok();
            (now != Some(*then)).then_some(path.as_path())
        }
        Watched::Tree(path, then) => {
            let now = scan(path).map(|s| s.identity).ok();
            (now != Some(*then)).then_some(path.as_path())
        }
    })
}

/// A command line as a user would type it (for logs and listings).
pub fn shell_line<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> String {
    String::from_utf8_lossy(&shell_bytes(argv)).into_owned()
}

/// As [`shell_line`], with the words' raw bytes (a file name that is not
/// UTF-8 stays as it is, for joblogs and `--dry-run`).
pub fn shell_bytes<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> Vec<u8> {
    let mut line = Vec::new();
    for (n, a) in argv.iter().enumerate() {
        if n > 0 {
            line.push(b' ');
        }
        let bytes = a.as_ref().as_bytes();
        match shlex::bytes::try_quote(bytes) {
            Ok(quoted) => line.extend_from_slice(&quoted),
            Err(_) => line.extend_from_slice(bytes),
        }
    }
    line
}

/// What differs between a stored entry's key parts and this action's.
pub fn differences(old: &Parts, new: &Parts) -> Vec<String> {
    let mut d = Vec::new();
    if old.argv != new.argv {
        d.push(format!(
            "argv: was {}, now {}",
            shell_line(&old.argv),
            shell_line(&new.argv)
        ));
    }
    if old.exe_digest != new.exe_digest {
        d.push(format!("executable {} changed content", new.exe));
    }
    diff_named(
        &old.inputs,
        &new.inputs,
        |i| &i.path,
        ["input", "is new", "changed content", "is gone"],
        &mut d,
    );
    if old.stdin != new.stdin {
        d.push("stdin differs".into());
    }
    diff_named(
        &old.env,
        &new.env,
        |e| &e.name,
        [
            "env",
            "was not in the key",
            "changed value",
            "is no longer in the key",
        ],
        &mut d,
    );
    if old.outputs != new.outputs {
        d.push("declared outputs differ".into());
    }
    if old.salt != new.salt {
        d.push("salt differs".into());
    }
    if old.cwd != new.cwd {
        d.push("working directory (--cwd) differs".into());
    }
    d
}

/// Compares two lists of named key components. `words` are the kind of
/// component and how to say it was added, changed and removed.
fn diff_named<T: PartialEq>(
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &String,
    words: [&str; 4],
    d: &mut Vec<String>,
) {
    let [kind, added, changed, removed] = words;
    for n in new {
        match old.iter().find(|o| name(o) == name(n)) {
            None => d.push(format!("{kind} {} {added}", name(n))),
            Some(o) if o != n => d.push(format!("{kind} {} {changed}", name(n))),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| name(n) == name(o)) {
            d.push(format!("{kind} {} {removed}", name(o)));
        }
    }
}

/// Input paths are stored as text; file names that are not UTF-8 still
/// key correctly because the raw argv bytes are in the key.
fn lossy(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// Arguments after the program that may name files: every argument,
/// whatever its first character (`cat -- -in.txt` reads `-in.txt`), and
/// the right side of `--flag=VALUE`.
fn auto_input_candidates(argv: &[OsString]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for arg in argv.iter().skip(1) {
        let bytes = arg.as_bytes();
        if bytes.is_empty() {
            continue;
        }
        out.push(PathBuf::from(arg));
        if bytes.starts_with(b"-") {
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                let value = &bytes[eq + 1..];
                if !value.is_empty() {
                    out.push(PathBuf::from(OsStr::from_bytes(value)));
                }
            }
        }
    }
    out
}

/// Hashes one input. `declared` inputs that are missing count as absent;
/// automatic candidates that are missing, or that are not regular files or
/// directories (devices, FIFOs), are not inputs at all. A symlink counts
/// by its target text and by what it resolves to (a dangling one, by its
/// text alone), since `readlink`, `find` and `cat` each see one of them.
fn hash_input(
    path: &Path,
    declared: bool,
    stat: &StatCache,
    watched: &mut Vec<Watched>,
) -> io::Result<Option<Hashed>> {
    let lstat = std::fs::symlink_metadata(path);
    let link = match &lstat {
        Ok(m) if m.file_type().is_symlink() => Some(std::fs::read_link(path)?.into_os_string()),
        Ok(_) => None,
        Err(e) if names_nothing(e) => None,
        Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
    };
    let input = |kind, digest, executable| Hashed {
        path: path.to_path_buf(),
        kind,
        digest,
        executable,
        link: link.clone(),
    };
    // Only a link needs a second look (most candidates name nothing).
    let found = match lstat {
        Ok(m) if !m.file_type().is_symlink() => Ok(m),
        Ok(_) => std::fs::metadata(path),
        Err(e) => Err(e),
    };
    let meta = match found {
        Ok(meta) => meta,
        Err(e) if names_nothing(&e) => {
            let why = unreachable(path, &e);
            let counts = declared || link.is_some() || why.is_some();
            return Ok(counts.then(|| input(InputKind::Absent, why, false)));
        }
        // A path we cannot even stat (permissions) may be an input we
        // cannot see: refuse to guess.
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        let digest = digest_dir(path, stat, watched)?;
        Ok(Some(input(InputKind::Dir, Some(digest), false)))
    } else if meta.is_file() {
        let file = stat.digest_file(path)?;
        watched.push(Watched::File(path.to_path_buf(), file.identity));
        Ok(Some(input(
            InputKind::File,
            Some(file.digest),
            file.executable,
        )))
    } else {
        Ok(None)
    }
}

/// The digest of a directory tree: every entry's relative path, type,
/// exec bit and content digest, in sorted order. A symlink counts by its
/// target text and by what it resolves to: a file's exec bit and content,
/// a directory's tree (a link back into a directory being hashed counts
/// as a loop, as `grep -R` reports one), or nothing when it dangles.
/// Every tree is watched.
///
/// A warm tree reads no file: the digest is remembered in the stat cache
/// under a digest of every entry's name and identity (and every linked
/// file's), so a tree whose entries all kept their (inode, size, mtime,
/// ctime) costs one walk with one `lstat` per entry. Trees with an entry
/// changed in the last [`crate::digest::RACY_MARGIN`], or with a link to
/// a directory, are not remembered.
fn digest_dir(root: &Path, stat: &StatCache, watched: &mut Vec<Watched>) -> io::Result<Digest> {
    digest_tree(root, stat, watched, &mut Vec::new())
}

/// A walked tree and the digest of its entries' names and identities.
struct Scan {
    root: std::fs::Metadata,
    walk: crate::tree::Walk,
    /// What each symlink of the walk resolves to, looked at once.
    targets: Vec<Option<io::Result<Stat>>>,
    identity: Digest,
    racy: bool,
    /// No link to a directory: the identities cover everything hashed.
    remember: bool,
}

fn scan(root: &Path) -> io::Result<Scan> {
    use std::os::unix::fs::MetadataExt;
    let root_meta = std::fs::metadata(root)?;
    let walk = crate::tree::walk(root, root_meta.dev())?;
    let targets: Vec<Option<io::Result<Stat>>> = walk
        .iter()
        .map(|(path, meta)| {
            meta.is_symlink()
                .then(|| std::fs::metadata(root.join(path)).map(|m| Stat::of(&m)))
        })
        .collect();
    let now = crate::digest::now_secs();
    let mut tree = Encoder::default();
    tree.bytes(b"jl tree identity");
    identity(&root_meta)
        .iter()
        .for_each(|n| tree.u64(*n as u64));
    let mut racy = crate::digest::is_racy(&root_meta);
    let mut remember = true;
    for ((path, meta), target) in walk.iter().zip(&targets) {
        tree.bytes(path.as_os_str().as_bytes());
        tree.u64(u64::from(meta.mode));
        meta.identity.iter().for_each(|n| tree.u64(*n as u64));
        racy |= meta.is_racy(now);
        match target {
            Some(Ok(t)) if t.is_dir() => remember = false,
            Some(Ok(t)) => {
                tree.u64(u64::from(t.mode));
                t.identity.iter().for_each(|n| tree.u64(*n as u64));
                racy |= t.is_racy(now);
            }
            Some(Err(_)) => tree.bytes(b"dangling"),
            None => {}
        }
    }
    Ok(Scan {
        root: root_meta,
        walk,
        targets,
        identity: Digest::of(&tree.0),
        racy,
        remember,
    })
}

/// [`digest_dir`], with the (device, inode) of every directory whose
/// hashing is under way, to stop at links that loop.
fn digest_tree(
    root: &Path,
    stat: &StatCache,
    watched: &mut Vec<Watched>,
    visiting: &mut Vec<(u64, u64)>,
) -> io::Result<Digest> {
    use std::os::unix::fs::MetadataExt;
    let scan = scan(root)?;
    watched.push(Watched::Tree(root.to_path_buf(), scan.identity));
    let remember = !scan.racy && scan.remember;
    if remember {
        if let Some(digest) = stat.remembered(&scan.identity) {
            return Ok(digest);
        }
    }

    visiting.push((scan.root.dev(), scan.root.ino()));
    let mut enc = Encoder::default();
    for ((rel, meta), target) in scan.walk.iter().zip(&scan.targets) {
        enc.bytes(rel.as_os_str().as_bytes());
        let path = root.join(rel);
        if meta.is_dir() {
            enc.bytes(b"d");
        } else if meta.is_symlink() {
            enc.bytes(b"l");
            enc.bytes(std::fs::read_link(&path)?.as_os_str().as_bytes());
            match target {
                Some(Ok(t)) if t.is_dir() => {
                    if visiting.contains(&(t.dev(), t.ino())) {
                        enc.bytes(b"loop");
                    } else {
                        enc.bytes(b"d");
                        enc.bytes(&digest_tree(&path, stat, watched, visiting)?.0);
                    }
                }
                Some(Ok(t)) if t.is_file() => {
                    hash_tree_file(&path, t, stat, &mut enc)?;
                }
                Some(Ok(_)) => enc.bytes(b"o"),
                Some(Err(e)) if names_nothing(e) => enc.bytes(b"dangling"),
                Some(Err(e)) => return Err(io::Error::new(e.kind(), e.to_string())),
                None => unreachable!("every symlink was looked at"),
            }
        } else if meta.is_file() {
            hash_tree_file(&path, meta, stat, &mut enc)?;
        } else {
            enc.bytes(b"o");
        }
    }
    visiting.pop();
    let digest = Digest::of(&enc.0);
    if remember {
        stat.remember(&scan.identity, digest);
    }
    Ok(digest)
}

/// Adds a file of a tree (or a link's target) to the tree's encoding:
/// its exec bit and content, which must still be what `meta` saw.
fn hash_tree_file(path: &Path, meta: &Stat, stat: &StatCache, enc: &mut Encoder) -> io::Result<()> {
    let f = stat.digest_file(path)?;
    if f.identity != meta.identity {
        return Err(io::Error::other(format!(
            "'{}' changed while its directory was hashed",
            path.display()
        )));
    }
    enc.bytes(if f.executable { b"x" } else { b"f" });
    enc.bytes(&f.digest.0);
    Ok(())
}

/// Compares paths by their components, so `./a` and `a` are the same.
fn same_path(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| -> Vec<OsString> {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str().to_os_string())
            .collect()
    };
    norm(a) == norm(b)
}

/// True when `path` is `declared` itself or lies below it without `..`:
/// the only places an entry may restore an output file to.
pub fn is_within(path: &Path, declared: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(declared) else {
        return false;
    };
    rest.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Why `path` names nothing, when it is not simply missing from a
/// directory that is there: a directory on the way missing, or a file
/// where a directory should be, or a loop. Commands say which (`cat d/x`:
/// "No such file or directory" or "Not a directory"; `mkdir d/x` fails or
/// works), so the key does too: the error, and how far the path gets and
/// what it meets there. `None` for the common case, which costs no call
/// for a word without a slash.
fn unreachable(path: &Path, error: &io::Error) -> Option<Digest> {
    let errno = error.raw_os_error().unwrap_or(0);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let Some(parent) = parent else {
        // In the working directory.
        return (errno != rustix::io::Errno::NOENT.raw_os_error())
            .then(|| Digest::of(format!("errno {errno}").as_bytes()));
    };
    if errno == rustix::io::Errno::NOENT.raw_os_error()
        && std::fs::metadata(parent).is_ok_and(|m| m.is_dir())
    {
        return None;
    }
    // The deepest ancestor that is there, and what it is.
    let mut stop = parent;
    let (depth, kind) = loop {
        match std::fs::metadata(stop) {
            Ok(m) => {
                break (
                    stop.components().count(),
                    if m.is_dir() { "dir" } else { "other" },
                );
            }
            Err(_) => match stop.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(up) => stop = up,
                None => break (0, "dir"),
            },
        }
    };
    Some(Digest::of(
        format!("errno {errno}, reaches {depth} components, a {kind}").as_bytes(),
    ))
}

/// Errors that mean "no file by that name", as opposed to "a file we
/// may not look at". Any argument is a candidate, so long texts count too.
fn names_nothing(e: &io::Error) -> bool {
    use rustix::io::Errno;
    [
        Errno::NOENT,
        Errno::NOTDIR,
        Errno::NAMETOOLONG,
        Errno::LOOP,
        Errno::INVAL,
    ]
    .iter()
    .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// A prefix-free byte encoding: every item is a little-endian u64 length
/// followed by its bytes; lists and options are preceded by a count.
#[derive(Default)]
pub struct Encoder(pub Vec<u8>);

impl Encoder {
    pub fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub fn list<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a [u8]>) {
        self.u64(items.len() as u64);
        for item in items {
            self.bytes(item);
        }
    }

    pub fn option(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u64(0),
            Some(b) => {
                self.u64(1);
                self.bytes(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use proptest::prelude::*;

    use super::*;

    fn encode_list(items: &[&str]) -> Vec<u8> {
        let mut e = Encoder::default();
        e.list(items.iter().map(|s| s.as_bytes()));
        e.0
    }

    /// Reads an encoding back; that this inverts [`Components::encode`]
    /// proves no two components share an encoding.
    fn decode(bytes: &[u8]) -> Components {
        struct D<'a>(&'a [u8]);
        impl D<'_> {
            fn u64(&mut self) -> u64 {
                let (n, rest) = self.0.split_at(8);
                self.0 = rest;
                u64::from_le_bytes(n.try_into().unwrap())
            }
            fn bytes(&mut self) -> Vec<u8> {
                let len = self.u64() as usize;
                let (b, rest) = self.0.split_at(len);
                self.0 = rest;
                b.to_vec()
            }
            fn os(&mut self) -> OsString {
                OsString::from_vec(self.bytes())
            }
            fn digest(&mut self) -> Digest {
                Digest(self.bytes().try_into().unwrap())
            }
            fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
                (self.u64() == 1).then(|| f(self))
            }
            fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
                (0..self.u64()).map(|_| f(self)).collect()
            }
        }
        let mut d = D(bytes);
        assert_eq!(d.u64(), KEY_VERSION);
        let argv = d.list(D::os);
        let exe = d.os().into();
        let exe_digest = d.digest();
        let inputs = d.list(|d| {
            let path = d.os().into();
            let (kind, executable) = match d.bytes()[..] {
                [0, x] => (InputKind::File, x == 1),
                [1, x] => (InputKind::Dir, x == 1),
                [2, x] => (InputKind::Absent, x == 1),
                _ => panic!("bad kind"),
            };
            let digest = d.option(D::digest);
            let link = d.option(D::os);
            Hashed {
                path,
                kind,
                digest,
                executable,
                link,
            }
        });
        let stdin = d.option(D::digest);
        let outputs = d.list(|d| d.os().into());
        let env = d.list(|d| (d.os(), d.option(D::os)));
        let salt = d.option(D::os);
        let cwd = d.option(|d| d.os().into());
        let trace = !d.0.is_empty();
        if trace {
            assert_eq!(d.bytes(), b"trace");
        }
        assert!(d.0.is_empty(), "trailing bytes");
        Components {
            argv,
            exe,
            exe_digest,
            inputs,
            stdin,
            outputs,
            env,
            salt,
            cwd,
            trace,
        }
    }

    /// Components over a tiny alphabet, so that near-collisions (split
    /// or moved bytes, empty versus absent) come up often.
    fn components() -> impl Strategy<Value = Components> {
        let os = || {
            proptest::collection::vec(prop::sample::select(vec![0u8, b'a', b'=', 0xff]), 0..3)
                .prop_map(OsString::from_vec)
        };
        let digest = || prop::sample::select(vec![Digest([0; 32]), Digest([1; 32])]);
        let kind = prop::sample::select(vec![InputKind::File, InputKind::Dir, InputKind::Absent]);
        let few = |n| 0..n;
        (
            proptest::collection::vec(os(), few(3)),
            os(),
            digest(),
            proptest::collection::vec(
                (
                    os(),
                    kind,
                    proptest::option::of(digest()),
                    any::<bool>(),
                    proptest::option::of(os()),
                ),
                few(3),
            ),
            proptest::option::of(digest()),
            proptest::collection::vec(os(), few(2)),
            proptest::collection::vec((os(), proptest::option::of(os())), few(3)),
            proptest::option::of(os()),
            proptest::option::of(os()),
            any::<bool>(),
        )
            .prop_map(
                |(argv, exe, exe_digest, inputs, stdin, outputs, env, salt, cwd, trace)| {
                    Components {
                        argv,
                        exe: exe.into(),
                        exe_digest,
                        inputs: inputs
                            .into_iter()
                            .map(|(path, kind, digest, executable, link)| Hashed {
                                path: path.into(),
                                kind,
                                digest,
                                executable,
                                link,
                            })
                            .collect(),
                        stdin,
                        outputs: outputs.into_iter().map(PathBuf::from).collect(),
                        env,
                        salt,
                        cwd: cwd.map(PathBuf::from),
                        trace,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// `decode(encode(c)) == c` for all c: so distinct (argv, inputs,
        /// env, ...) never encode to the same bytes.
        #[test]
        fn distinct_components_never_share_an_encoding(c in components()) {
            prop_assert_eq!(decode(&c.encode()), c);
        }
    }

    #[test]
    fn split_arguments_never_collide() {
        assert_ne!(encode_list(&["ab", "c"]), encode_list(&["a", "bc"]));
        assert_ne!(encode_list(&["a", ""]), encode_list(&["a"]));
    }

    #[test]
    fn flag_values_are_candidates() {
        let argv: Vec<OsString> = ["cmd", "--in=data.txt", "-x", "plain", ""]
            .iter()
            .map(OsString::from)
            .collect();
        let got = auto_input_candidates(&argv);
        let want = ["--in=data.txt", "data.txt", "-x", "plain"];
        assert_eq!(got, want.map(PathBuf::from));
    }

    #[test]
    fn within_rejects_escapes() {
        assert!(is_within(Path::new("out/a/b"), Path::new("out")));
        assert!(is_within(Path::new("out"), Path::new("out")));
        assert!(!is_within(Path::new("out/../x"), Path::new("out")));
        assert!(!is_within(Path::new("/etc/passwd"), Path::new("out")));
        assert!(!is_within(Path::new("outer"), Path::new("out")));
    }
}
