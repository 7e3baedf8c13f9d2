//! The differential oracle (DESIGN.md section 0): random trees, random
//! changes and random commands, each command run through jl in one copy
//! of the tree and plainly in an identical copy, compared byte for byte:
//! stdout, stderr, exit status and the whole tree afterwards (names,
//! types, modes, contents, symlink targets).
//!
//! A miss always agrees (jl runs the command); what the oracle catches is
//! a hit that replays something a real run would not print or leave: a
//! key that misses a change, a restore that leaves the wrong tree. jl's
//! own refusals to cache ("jl: warning: ... its result is not cached")
//! are taken out of its stderr and counted: they cost a miss, not a
//! wrong replay.
//!
//! `cargo test` runs a fixed, seeded set of cases; `JL_ORACLE_CASES=N`
//! runs more and `JL_ORACLE_SEED=S` other ones. A failure shrinks to a
//! minimal sequence of steps, kept in `proptest-regressions/oracle.txt`
//! and replayed first by every later run.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};

use crate::util::TestEnv;

/// Regular files a tree may hold: odd names, a file large enough for the
/// stat cache, files in directories.
const FILES: &[&str] = &[
    "f1",
    "f2",
    "big",
    "e",
    "-dash.txt",
    "sp ace.txt",
    "ünï.txt",
    "new\nline",
    ".hidden",
    "d/g",
    "d/sub/h",
    "d2/k",
    "pkg/__init__.py",
    "pkg/mod.py",
    "m/Makefile",
    "m/a.txt",
    "m/b.txt",
];
const DIRS: &[&str] = &["d", "d/sub", "d2", "pkg", "m"];
/// Symlinks, and the target texts each can take: to files and to
/// directories, chains, dangling, back up the tree (loops), out of the
/// tree relatively and absolutely (`@` is the absolute `shared/`).
const LINKS: &[(&str, &[&str])] = &[
    ("lf", &["f1", "./f1", "f2", "big", "d/g", "nope"]),
    ("ld", &["d", "./d", "d2", "d/sub"]),
    ("lchain", &["lf", "ld", "ldangle"]),
    ("ldangle", &["nope", "e"]),
    ("d/up", &["../f1", "../d2", "sub/h", ".."]),
    ("d/sub/loop", &["../..", ".", "../../d2"]),
    ("lout", &["../outside/o1", "../outside/od"]),
    ("labs", &["@/o1", "@/od"]),
];
/// make with a pattern rule: targets made by a recipe after make looked
/// at them (stat-then-write).
const MAKEFILE: &str =
    "all: a.out b.out\n%.out: %.txt\n\tcat $< > $@\nclean:\n\trm -f a.out b.out\n";

/// The big file's size: over the stat cache's 256 KiB threshold.
const BIG: usize = 300 * 1024;

fn link_names() -> Vec<&'static str> {
    LINKS.iter().map(|(name, _)| *name).collect()
}

/// Paths commands take as arguments: anything in a tree, and names that
/// are usually missing.
fn arg_paths() -> Vec<&'static str> {
    let mut v: Vec<&str> = FILES.to_vec();
    v.extend(link_names());
    v.extend(["d", "missing", "out"]);
    v
}

/// Directories commands walk.
const DIR_ARGS: &[&str] = &["d", "d2", "d/sub", "ld", "lchain", ".", "outd"];

/// Paths the change steps act on: everything, outputs included.
fn change_paths() -> Vec<&'static str> {
    let mut v: Vec<&str> = FILES.to_vec();
    v.extend(link_names());
    v.extend(DIRS);
    v.extend(["out", "outd", "outd/stale", "missing"]);
    v
}

/// What stdin is for the runs that follow.
#[derive(Clone, Debug)]
enum Stdin {
    DevNull,
    /// Closed for jl; jl gives the command /dev/null then (README), so
    /// the plain run gets /dev/null.
    Closed,
    EmptyPipe,
    Pipe(u8),
    File(u8),
}

/// A command of the vocabulary: its output depends only on what the
/// README says is in the key (contents, names, exec bits, symlink
/// targets, arguments, stdin).
#[derive(Clone, Debug)]
enum Cmd {
    Cat(Vec<&'static str>),
    Sha(Vec<&'static str>),
    Wc(Vec<&'static str>),
    Sort(&'static str),
    GrepR(&'static str, &'static str),
    Find(&'static str),
    ExecBits(&'static str),
    StdinCat,
    StdinWc,
    StdinSort,
    /// `cp` an argument to the declared output `out` (or `outd`).
    CopyOut(&'static str, bool),
    /// Reads a directory declared with `-i` (named only in the script).
    DeclaredIn(&'static str),
    /// Recreates the declared directory `outd` from scratch.
    RecreateOut(u8),
    /// Removes the declared output `out`.
    DeleteOut,
    /// Prints a file, then fails with exit 3.
    Fail(&'static str),
    /// `jl map` of `cat` (or `wc -c`) over items, against a loop.
    Map(Vec<&'static str>, bool),
    /// A script run with `jl run --trace` (nothing declared).
    Traced(Script),
}

/// The traced vocabulary: what `--trace` must see on its own.
#[derive(Clone, Debug)]
enum Script {
    /// `readlink` and the type of a symlink, not what it points to.
    Readlink(&'static str),
    /// A path through symlinks and `..`.
    Through(&'static str),
    /// A file named by its absolute path inside the working directory.
    Absolute(&'static str),
    /// Files outside the working directory, relative and absolute.
    Outside,
    /// `cd DIR && cat *` inside the script.
    Cd(&'static str),
    Find(&'static str),
    CopyTree(&'static str),
    RemoveTree(&'static str),
    TarList(&'static str),
    TarExtract,
    /// `cat -- *.txt`: a new matching file must miss.
    Glob,
    /// `test -e` and `command -v` probes.
    Probe(&'static str),
    /// A python import of a package's module.
    Python,
    /// make over a pattern rule.
    Make(&'static str),
    /// A plain write of an output.
    Write(&'static str, u8),
    /// Lists a file's directory, then writes the file: whether it was
    /// there before is in what `ls` printed.
    ListThenWrite(&'static str),
    /// Lists a directory, then removes it.
    ListThenRemove(&'static str),
    /// Removes one file, then its directory, which works only if that
    /// file was all it held.
    Rmdir(&'static str),
    /// Writes a file, makes a directory, a symlink and a file that must
    /// be new (`set -C`) in a directory that may be missing, or a file;
    /// the errors are its output.
    MakeIn(&'static str),
}

#[derive(Clone, Debug)]
enum Step {
    /// Runs a command through jl and plainly (`--cache-failures` or not).
    Run(Cmd, bool),
    /// Runs the last command again.
    Again,
    Write(&'static str, u8),
    /// Same size, same mtime: only the ctime says it changed.
    Rewrite(&'static str, u8),
    Append(&'static str, u8),
    Truncate(&'static str),
    Delete(&'static str),
    Rename(&'static str, &'static str),
    Chmod(&'static str, bool),
    Retarget(usize, usize),
    Mkdir(&'static str),
    RemoveAll(&'static str),
    Touch(&'static str),
    Outside(bool, u8),
    SetStdin(Stdin),
    /// Moves both checkouts to another path (or back).
    Move,
}

/// A starting tree and the steps run on it.
#[derive(Clone, Debug)]
struct Case {
    files: Vec<Option<(u8, bool)>>,
    links: Vec<Option<usize>>,
    steps: Vec<Step>,
}

fn pick(pool: Vec<&'static str>) -> impl Strategy<Value = &'static str> {
    prop::sample::select(pool)
}

fn some_paths() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(pick(arg_paths()), 1..4)
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let file = || pick(arg_paths());
    let dir = || pick(DIR_ARGS.to_vec());
    // Never a source that holds the destination (".", links up the
    // tree): cp would copy into what it copies, in readdir's order.
    let copyable = || {
        let mut v = arg_paths();
        v.retain(|p| !p.starts_with("out") && !["d/up", "d/sub/loop", "lchain"].contains(p));
        v.extend(["d2", "d/sub"]);
        pick(v)
    };
    prop_oneof![
        1 => some_paths().prop_map(Cmd::Cat),
        1 => some_paths().prop_map(Cmd::Sha),
        1 => some_paths().prop_map(Cmd::Wc),
        1 => file().prop_map(Cmd::Sort),
        1 => (pick(vec!["A", "B", "a b"]), dir()).prop_map(|(p, d)| Cmd::GrepR(p, d)),
        1 => dir().prop_map(Cmd::Find),
        1 => dir().prop_map(Cmd::ExecBits),
        1 => Just(Cmd::StdinCat),
        1 => Just(Cmd::StdinWc),
        1 => Just(Cmd::StdinSort),
        1 => (copyable(), any::<bool>()).prop_map(|(p, d)| Cmd::CopyOut(p, d)),
        1 => pick(vec!["d", "d2", "ld", "d/sub"]).prop_map(Cmd::DeclaredIn),
        1 => any::<u8>().prop_map(Cmd::RecreateOut),
        1 => Just(Cmd::DeleteOut),
        1 => file().prop_map(Cmd::Fail),
        1 => (prop::collection::vec(file(), 1..6), any::<bool>()).prop_map(|(i, w)| Cmd::Map(i, w)),
        4 => script().prop_map(Cmd::Traced),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    let links = || pick(link_names());
    let through = pick(vec![
        "d/up/../f1",
        "ld/../f1",
        "ld/g",
        "lchain/g",
        "d/sub/loop/../g",
        "d/sub/../../f2",
        "lout",
        "labs",
    ]);
    let tree = || pick(vec!["d", "d2", "d/sub", "ld", "cpout", "pkg"]);
    prop_oneof![
        links().prop_map(Script::Readlink),
        through.prop_map(Script::Through),
        pick(vec!["f1", "d/g", "lf", "missing"]).prop_map(Script::Absolute),
        Just(Script::Outside),
        pick(vec!["d", "d/sub", "ld", "d2"]).prop_map(Script::Cd),
        tree().prop_map(Script::Find),
        pick(vec!["d", "d2", "ld", "pkg"]).prop_map(Script::CopyTree),
        tree().prop_map(Script::RemoveTree),
        tree().prop_map(Script::TarList),
        Just(Script::TarExtract),
        Just(Script::Glob),
        pick(vec![
            "f1",
            "lf",
            "ldangle",
            "d/sub/loop",
            "missing",
            "cpout"
        ])
        .prop_map(Script::Probe),
        Just(Script::Python),
        pick(vec!["all", "a.out", "clean"]).prop_map(Script::Make),
        (pick(vec!["out", "d/new.txt", "cpout/x"]), any::<u8>())
            .prop_map(|(p, s)| Script::Write(p, s)),
        pick(vec!["d/g", "d/sub/h", "d2/k", "d/new.txt"]).prop_map(Script::ListThenWrite),
        pick(vec!["d", "d/sub", "d2"]).prop_map(Script::ListThenRemove),
        pick(vec!["d/sub/h", "d2/k"]).prop_map(Script::Rmdir),
        pick(vec!["cpout", "d/sub", "d2", "f1", "missing"]).prop_map(Script::MakeIn),
    ]
}

fn stdin() -> impl Strategy<Value = Stdin> {
    prop_oneof![
        Just(Stdin::DevNull),
        Just(Stdin::Closed),
        Just(Stdin::EmptyPipe),
        (0u8..4).prop_map(Stdin::Pipe),
        (0u8..4).prop_map(Stdin::File),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let any_path = || pick(change_paths());
    let file = || pick(FILES.to_vec());
    prop_oneof![
        10 => (cmd(), any::<bool>()).prop_map(|(c, f)| Step::Run(c, f)),
        7 => Just(Step::Again),
        2 => (any_path(), any::<u8>()).prop_map(|(p, s)| Step::Write(p, s)),
        2 => (file(), any::<u8>()).prop_map(|(p, s)| Step::Rewrite(p, s)),
        1 => (file(), any::<u8>()).prop_map(|(p, s)| Step::Append(p, s)),
        1 => file().prop_map(Step::Truncate),
        1 => any_path().prop_map(Step::Delete),
        1 => (any_path(), any_path()).prop_map(|(a, b)| Step::Rename(a, b)),
        2 => (file(), any::<bool>()).prop_map(|(p, x)| Step::Chmod(p, x)),
        2 => (0..LINKS.len(), 0usize..6).prop_map(|(l, t)| Step::Retarget(l, t)),
        1 => pick(vec!["d", "d/sub", "d2", "outd", "d/new"]).prop_map(Step::Mkdir),
        1 => pick(vec!["d", "d/sub", "d2", "outd", "out"]).prop_map(Step::RemoveAll),
        1 => any_path().prop_map(Step::Touch),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(d, s)| Step::Outside(d, s)),
        2 => stdin().prop_map(Step::SetStdin),
        1 => Just(Step::Move),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            prop::option::weighted(0.7, (any::<u8>(), any::<bool>())),
            FILES.len(),
        ),
        prop::collection::vec(prop::option::weighted(0.6, 0usize..6), LINKS.len()),
        prop::collection::vec(step(), 1..32),
    )
        .prop_map(|(files, links, steps)| Case {
            files,
            links,
            steps,
        })
}

/// Small text with the patterns the greps look for.
fn text(seed: u8) -> Vec<u8> {
    const LINES: [&str; 6] = ["A", "B", "a b", "x", "", "AB b"];
    let mut out = String::new();
    for i in 0..=(seed / 64) {
        out.push_str(LINES[(seed as usize + i as usize * 5) % LINES.len()]);
        out.push('\n');
    }
    out.into_bytes()
}

fn content(name: &str, seed: u8) -> Vec<u8> {
    match name {
        "pkg/mod.py" => return format!("V = {seed}\n").into_bytes(),
        "pkg/__init__.py" => return Vec::new(),
        "m/Makefile" => return MAKEFILE.as_bytes().to_vec(),
        _ => {}
    }
    if name == "big" {
        let mut big = vec![b'.'; BIG];
        for line in big.chunks_mut(64) {
            *line.last_mut().unwrap() = b'\n';
        }
        big.extend(text(seed));
        big
    } else {
        text(seed)
    }
}

/// Everything one case works in: two identical trees, `A/tree` for jl
/// and `B/tree` for plain runs, each beside an identical `outside/` that
/// links up and out of the tree reach, a `shared/` directory that links
/// name absolutely, and jl's store. A link climbing out of one tree never
/// sees the other (whose readdir order may differ).
struct World {
    env: TestEnv,
    a: PathBuf,
    b: PathBuf,
    /// Written alike: `A/outside`, `B/outside` and `shared`.
    outside: [PathBuf; 3],
    stdin: Stdin,
    last: Option<(Cmd, bool)>,
    compared: u64,
}

/// Counts over every case of one test run, to show the oracle did work.
static RUNS: AtomicU64 = AtomicU64::new(0);
static HITS: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

impl World {
    fn new(case: &Case) -> World {
        let env = TestEnv::new();
        let world = World {
            a: env.path("A/tree"),
            b: env.path("B/tree"),
            outside: [
                env.path("A/outside"),
                env.path("B/outside"),
                env.path("shared"),
            ],
            env,
            stdin: Stdin::DevNull,
            last: None,
            compared: 0,
        };
        for outside in &world.outside {
            fs::create_dir_all(outside.join("od")).unwrap();
            fs::write(outside.join("o1"), "outside A\n").unwrap();
            fs::write(outside.join("od/x"), "outside B\n").unwrap();
        }
        // An archive to extract: dated files in a directory.
        let staging = world.env.path("staging");
        fs::create_dir_all(staging.join("x")).unwrap();
        fs::write(staging.join("x/1.txt"), "one\n").unwrap();
        fs::write(staging.join("x/2.txt"), "two\n").unwrap();
        let tar = Command::new("tar")
            .args([
                "--mtime=@981158400",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            .args(["--sort=name", "-cf", "arch.tar", "x"])
            .current_dir(&staging)
            .status()
            .unwrap();
        assert!(tar.success());
        for outside in &world.outside[..2] {
            fs::copy(staging.join("arch.tar"), outside.join("arch.tar")).unwrap();
        }
        for tree in world.trees() {
            for dir in DIRS {
                fs::create_dir_all(tree.join(dir)).unwrap();
            }
            for (name, file) in FILES.iter().zip(&case.files) {
                if let Some((seed, exec)) = file {
                    let path = tree.join(name);
                    fs::write(&path, content(name, *seed)).unwrap();
                    set_exec(&path, *exec);
                }
            }
            for ((name, targets), link) in LINKS.iter().zip(&case.links) {
                if let Some(t) = link {
                    let target = world.link_text(targets[t % targets.len()]);
                    std::os::unix::fs::symlink(target, tree.join(name)).unwrap();
                }
            }
            // An hour old, so the stat cache remembers digests; a step
            // that rewrites a file keeps its mtime, leaving only the
            // ctime to tell.
            backdate(&tree);
        }
        world
    }

    fn trees(&self) -> [PathBuf; 2] {
        [self.a.clone(), self.b.clone()]
    }

    fn link_text(&self, target: &str) -> PathBuf {
        match target.strip_prefix("@/") {
            Some(rest) => self.outside[2].join(rest),
            None => PathBuf::from(target),
        }
    }

    /// Applies a change step to both trees.
    fn change(&mut self, step: &Step) {
        if let Step::Outside(dir, seed) = step {
            let path = if *dir { "od/x" } else { "o1" };
            for outside in &self.outside {
                let _ = fs::write(outside.join(path), text(*seed));
            }
            return;
        }
        if let Step::SetStdin(kind) = step {
            self.stdin = kind.clone();
            return;
        }
        if let Step::Move = step {
            let moved = |tree: &Path| {
                let other = if tree.ends_with("tree") {
                    "moved"
                } else {
                    "tree"
                };
                let to = tree.with_file_name(other);
                fs::rename(tree, &to).unwrap();
                to
            };
            self.a = moved(&self.a);
            self.b = moved(&self.b);
            return;
        }
        for tree in self.trees() {
            let at = |p: &str| tree.join(p);
            match step {
                Step::Write(p, seed) => {
                    let _ = fs::write(at(p), content(p, *seed));
                }
                Step::Rewrite(p, seed) => rewrite_in_place(&at(p), *seed),
                Step::Append(p, seed) => {
                    if at(p).is_file() {
                        let mut f = fs::OpenOptions::new().append(true).open(at(p)).unwrap();
                        f.write_all(&text(*seed)).unwrap();
                    }
                }
                Step::Truncate(p) => {
                    if let Ok(f) = fs::OpenOptions::new().write(true).open(at(p)) {
                        let len = f.metadata().unwrap().len();
                        let _ = f.set_len(len / 2);
                    }
                }
                Step::Delete(p) => {
                    let _ = fs::remove_file(at(p));
                }
                Step::Rename(from, to) => {
                    let _ = fs::rename(at(from), at(to));
                }
                Step::Chmod(p, exec) => {
                    if at(p).is_file() {
                        set_exec(&at(p), *exec);
                    }
                }
                Step::Retarget(link, t) => {
                    let (name, targets) = LINKS[*link];
                    let target = self.link_text(targets[t % targets.len()]);
                    if fs::symlink_metadata(at(name)).is_ok_and(|m| m.is_symlink()) {
                        let _ = fs::remove_file(at(name));
                    }
                    let _ = std::os::unix::fs::symlink(target, at(name));
                }
                Step::Mkdir(p) => {
                    let _ = fs::create_dir_all(at(p));
                }
                Step::RemoveAll(p) => match fs::symlink_metadata(at(p)) {
                    Ok(m) if m.is_dir() => fs::remove_dir_all(at(p)).unwrap(),
                    Ok(_) => fs::remove_file(at(p)).unwrap(),
                    Err(_) => {}
                },
                Step::Touch(p) => {
                    if fs::symlink_metadata(at(p)).is_err() {
                        let _ = fs::write(at(p), "");
                    } else if let Ok(f) = fs::File::options().write(true).open(at(p)) {
                        let _ = f.set_modified(SystemTime::now());
                    }
                }
                Step::Run(..)
                | Step::Again
                | Step::Outside(..)
                | Step::SetStdin(_)
                | Step::Move => {}
            }
        }
    }

    /// Runs `cmd` through jl in `a` and plainly in `b`; the first
    /// difference, if any.
    fn run(&mut self, cmd: &Cmd, cache_failures: bool) -> Result<(), String> {
        self.last = Some((cmd.clone(), cache_failures));
        if let Cmd::Map(items, wc) = cmd {
            return self.map(items, *wc, cache_failures);
        }
        let (options, argv) = self.command(cmd);
        let mut jl: Vec<OsString> = vec!["run".into()];
        if cache_failures {
            jl.push("--cache-failures".into());
        }
        jl.extend(options.iter().map(OsString::from));
        jl.push("--".into());
        jl.extend(argv.iter().cloned());
        let through_jl = self.spawn(&self.a, &jl, true);
        let plain = self.spawn(&self.b, &argv, false);
        RUNS.fetch_add(1, Ordering::Relaxed);
        self.compared += 1;
        let shown = format!("jl {}", lossy_words(&jl));
        // Each side's own directory shows as `<side>` (a traced script
        // may print an absolute path).
        let side = |out: Output, tree: &Path, stderr: Vec<u8>| Output {
            stdout: as_side(&out.stdout, tree),
            stderr: as_side(&stderr, tree),
            ..out
        };
        let jl_stderr = without_refusals(&through_jl.stderr);
        let through_jl = side(through_jl, &self.a, jl_stderr);
        let plain_stderr = plain.stderr.clone();
        let plain = side(plain, &self.b, plain_stderr);
        same_output(&shown, &through_jl, &plain)?;
        self.same_trees(&shown)
    }

    /// The jl options and the command line of a vocabulary command.
    fn command(&self, cmd: &Cmd) -> (Vec<&'static str>, Vec<OsString>) {
        let sh = |script: &str, args: &[&str]| -> Vec<OsString> {
            let mut v: Vec<OsString> = vec!["sh".into(), "-c".into(), script.into(), "sh".into()];
            v.extend(args.iter().map(OsString::from));
            v
        };
        let words = |w: &[&str], paths: &[&str]| -> Vec<OsString> {
            w.iter().chain(paths).map(OsString::from).collect()
        };
        match cmd {
            Cmd::Cat(p) => (vec![], words(&["cat", "--"], p)),
            Cmd::Sha(p) => (vec![], words(&["sha256sum", "--"], p)),
            Cmd::Wc(p) => (vec![], words(&["wc", "-c", "--"], p)),
            Cmd::Sort(p) => (vec![], words(&["sort", "--"], &[p])),
            Cmd::GrepR(pat, dir) => (vec![], sh(r#"grep -R -- "$1" "$2" | sort"#, &[pat, dir])),
            Cmd::Find(dir) => (
                vec![],
                sh(r#"find "$1" -printf '%P %y %l\n' | sort"#, &[dir]),
            ),
            Cmd::ExecBits(dir) => (
                vec![],
                sh(
                    r#"for f in "$1"/* "$1"/.[!.]*; do if test -x "$f"; then echo "$f"; fi; done"#,
                    &[dir],
                ),
            ),
            Cmd::StdinCat => (vec![], words(&["cat"], &[])),
            Cmd::StdinWc => (vec![], words(&["wc", "-c"], &[])),
            Cmd::StdinSort => (vec![], words(&["sort"], &[])),
            Cmd::CopyOut(src, false) => (
                vec!["-o", "out"],
                sh(r#"rm -rf out && cp -- "$1" out"#, &[src]),
            ),
            Cmd::CopyOut(src, true) => (
                vec!["-o", "outd"],
                sh(r#"rm -rf outd && cp -RH -- "$1" outd"#, &[src]),
            ),
            Cmd::DeclaredIn(dir) => (
                vec!["-i", dir, "-o", "out"],
                sh(
                    &format!(
                        r#"rm -rf out; for f in {dir}/*; do if [ -f "$f" ]; then cat "$f"; fi; done > out"#
                    ),
                    &[],
                ),
            ),
            Cmd::RecreateOut(seed) => (
                vec!["-o", "outd"],
                sh(
                    &format!(
                        "rm -rf outd; mkdir outd; echo {seed} > outd/a; chmod {} outd/a",
                        if seed % 2 == 0 { 644 } else { 755 }
                    ),
                    &[],
                ),
            ),
            Cmd::DeleteOut => (vec!["-o", "out"], words(&["rm", "-f", "out"], &[])),
            Cmd::Fail(p) => (vec![], sh(r#"cat -- "$1"; exit 3"#, &[p])),
            Cmd::Map(..) => unreachable!("maps run in World::map"),
            Cmd::Traced(script) => (vec!["--trace"], sh(&self.script(script), &[])),
        }
    }

    /// The text of a traced script.
    fn script(&self, script: &Script) -> String {
        let shared = self.outside[2].display();
        match script {
            Script::Readlink(l) => format!("readlink '{l}'; stat -c %F '{l}'"),
            Script::Through(p) => format!("cat '{p}'"),
            // What it prints must not hold the checkout's path: the
            // working directory is not in the key (README).
            Script::Absolute(p) => format!(r#"cat "$PWD/{p}" 2>/dev/null || echo missing"#),
            Script::Outside => format!("cat ../outside/o1 '{shared}/od/x'"),
            Script::Cd(d) => format!("cd '{d}' && cat * 2>&1; cat ../f1"),
            Script::Find(d) => format!("find '{d}' -printf '%P %y %l\n' | sort"),
            Script::CopyTree(d) => format!("rm -rf cpout && cp -r '{d}' cpout"),
            Script::RemoveTree(d) => format!("rm -rf '{d}'"),
            Script::TarList(d) => format!("tar cf - '{d}' 2>/dev/null | tar tf - | sort"),
            Script::TarExtract => "tar xf ../outside/arch.tar".to_string(),
            Script::Glob => "cat -- *.txt".to_string(),
            Script::Probe(p) => {
                format!("if test -e '{p}'; then echo there; else echo absent; fi; command -v ls")
            }
            Script::Python => "python3 -c 'import pkg.mod as m; print(m.V)'".to_string(),
            Script::Make(target) => format!("cd m && make {target}"),
            Script::Write(p, seed) => format!("echo {seed} > '{p}'"),
            Script::ListThenWrite(p) => {
                let dir = Path::new(p).parent().unwrap().display();
                format!("ls -A '{dir}' 2>&1; echo w > '{p}'")
            }
            Script::ListThenRemove(d) => format!("ls -A '{d}' 2>&1; rm -rf '{d}'"),
            Script::Rmdir(p) => {
                let dir = Path::new(p).parent().unwrap().display();
                format!("rm -f '{p}'; rmdir '{dir}' 2>&1; echo $?")
            }
            Script::MakeIn(d) => {
                format!(
                    "(echo w > '{d}/new') 2>&1; mkdir '{d}/made' 2>&1; ln -s new '{d}/ln' 2>&1; \
                     (set -C; echo w > '{d}/excl') 2>&1; echo $?"
                )
            }
        }
    }

    /// `jl map` over `items` against a plain loop over them.
    fn map(&mut self, items: &[&str], wc: bool, cache_failures: bool) -> Result<(), String> {
        let template: &[&str] = if wc {
            &["wc", "-c", "--"]
        } else {
            &["cat", "--"]
        };
        let list = self.env.path("items");
        let mut bytes = Vec::new();
        for item in items {
            bytes.extend_from_slice(item.as_bytes());
            bytes.push(0);
        }
        fs::write(&list, bytes).unwrap();
        let mut jl: Vec<OsString> = vec!["map", "-q", "-j2", "-0", "-a"]
            .into_iter()
            .map(OsString::from)
            .collect();
        jl.push(list.into());
        if cache_failures {
            jl.push("--cache-failures".into());
        }
        jl.push("--".into());
        jl.extend(template.iter().map(OsString::from));
        let through_jl = self.spawn(&self.a, &jl, true);

        let mut plain = Output {
            status: Default::default(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        let mut failed = 0;
        for item in items {
            let mut argv: Vec<OsString> = template.iter().map(OsString::from).collect();
            argv.push(item.into());
            let out = Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(&self.b)
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            plain.stdout.extend(out.stdout);
            plain.stderr.extend(out.stderr);
            failed += i32::from(!out.status.success());
        }
        RUNS.fetch_add(items.len() as u64, Ordering::Relaxed);
        self.compared += 1;
        let shown = format!("jl {} <<< {items:?}", lossy_words(&jl));
        // jl's own report of each failed job is not the command's output.
        let jl_stderr: Vec<u8> = without_refusals(&through_jl.stderr)
            .split_inclusive(|&b| b == b'\n')
            .filter(|line| !line.starts_with(b"jl: job "))
            .flatten()
            .copied()
            .collect();
        let want = failed.min(101);
        let got = through_jl.status.code().unwrap_or(-1);
        if through_jl.stdout != plain.stdout || jl_stderr != plain.stderr || got != want {
            return Err(format!(
                "{shown}\n  jl:    exit {got}\n{}\n  plain: exit {want}\n{}",
                show_streams(&through_jl.stdout, &jl_stderr),
                show_streams(&plain.stdout, &plain.stderr)
            ));
        }
        self.same_trees(&shown)
    }

    /// Runs `argv` in `dir` (jl itself when `jl`) with this world's stdin.
    fn spawn(&self, dir: &Path, argv: &[OsString], jl: bool) -> Output {
        let mut cmd = if jl {
            let mut c = self.env.jl();
            c.args(argv);
            c
        } else {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        };
        cmd.current_dir(dir)
            .env("LC_ALL", "C")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut feed = None;
        match &self.stdin {
            Stdin::DevNull => {
                cmd.stdin(Stdio::null());
            }
            Stdin::Closed if jl => {
                let mut closed = Command::new("sh");
                closed
                    .args(["-c", r#"exec "$@" <&-"#, "sh"])
                    .arg(cmd.get_program())
                    .args(cmd.get_args())
                    .current_dir(dir)
                    .env("LC_ALL", "C")
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .env("JL_STORE", &self.env.store)
                    .stdin(Stdio::null());
                cmd = closed;
            }
            Stdin::Closed => {
                cmd.stdin(Stdio::null());
            }
            Stdin::EmptyPipe => feed = Some(Vec::new()),
            Stdin::Pipe(seed) => feed = Some(text(*seed)),
            Stdin::File(seed) => {
                let path = self.env.path(format!("stdin-{seed}"));
                let bytes = if *seed == 0 { Vec::new() } else { text(*seed) };
                fs::write(&path, bytes).unwrap();
                cmd.stdin(fs::File::open(path).unwrap());
            }
        }
        match feed {
            Some(bytes) => crate::util::spawn_fed(&mut cmd, &bytes)
                .wait_with_output()
                .unwrap(),
            None => cmd.output().unwrap(),
        }
    }

    fn same_trees(&self, after: &str) -> Result<(), String> {
        let (a, b) = (snapshot(&self.a), snapshot(&self.b));
        if a == b {
            return Ok(());
        }
        let only = |x: &[Node], y: &[Node]| -> Vec<String> {
            x.iter()
                .filter(|n| !y.contains(n))
                .map(|n| format!("{n:?}"))
                .collect()
        };
        Err(format!(
            "{after}\n  trees differ\n  jl's has:    {:?}\n  plain's has: {:?}",
            only(&a, &b),
            only(&b, &a)
        ))
    }

    fn hits(&self) -> u64 {
        fs::read_to_string(self.env.store.join("stats.log")).map_or(0, |log| {
            log.lines().filter(|l| l.starts_with("h ")).count() as u64
        })
    }
}

/// One entry of a tree as the comparison sees it.
#[derive(Debug, PartialEq)]
struct Node {
    path: String,
    mode: u32,
    /// A file's content, a symlink's target; nothing for a directory.
    data: Vec<u8>,
}

fn snapshot(root: &Path) -> Vec<Node> {
    let walk = walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name();
    walk.into_iter()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.path().symlink_metadata().unwrap();
            let data = if meta.is_symlink() {
                fs::read_link(e.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            } else if meta.is_file() {
                fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            Node {
                path: e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                mode: std::os::unix::fs::MetadataExt::mode(&meta),
                data,
            }
        })
        .collect()
}

/// jl's stderr without its refusals to cache ("jl: warning: ... its
/// result is not cached": a command that changed its own input, say).
/// A refusal costs a miss, never a wrong replay; the count is reported.
fn without_refusals(stderr: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(stderr.len());
    for line in stderr.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"jl: warning: ") && line.ends_with(b"its result is not cached\n") {
            REFUSED.fetch_add(1, Ordering::Relaxed);
        } else {
            kept.extend_from_slice(line);
        }
    }
    kept
}

/// `bytes` with the path of the directory holding `tree` (its side of
/// the world) written `<side>`.
fn as_side(bytes: &[u8], tree: &Path) -> Vec<u8> {
    let side = tree.parent().unwrap().as_os_str().as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(side) {
            out.extend_from_slice(b"<side>");
            i += side.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn same_output(shown: &str, jl: &Output, plain: &Output) -> Result<(), String> {
    if jl.stdout == plain.stdout
        && jl.stderr == plain.stderr
        && jl.status.code() == plain.status.code()
    {
        return Ok(());
    }
    Err(format!(
        "{shown}\n  jl:    {}\n{}\n  plain: {}\n{}",
        jl.status,
        show_streams(&jl.stdout, &jl.stderr),
        plain.status,
        show_streams(&plain.stdout, &plain.stderr)
    ))
}

fn show_streams(stdout: &[u8], stderr: &[u8]) -> String {
    let cut = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        match s.char_indices().nth(600) {
            Some((end, _)) => format!("{}… ({} bytes)", &s[..end], b.len()),
            None => s.into_owned(),
        }
    };
    format!(
        "    stdout: {:?}\n    stderr: {:?}",
        cut(stdout),
        cut(stderr)
    )
}

fn lossy_words(words: &[OsString]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("{:?}", w.to_string_lossy()))
        .collect();
    quoted.join(" ")
}

fn set_exec(path: &Path, exec: bool) {
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Changes a file's bytes but not its size or mtime.
fn rewrite_in_place(path: &Path, seed: u8) {
    let Ok(meta) = fs::metadata(path) else { return };
    if !meta.is_file() || meta.len() == 0 {
        return;
    }
    let mut bytes = fs::read(path).unwrap();
    let at = seed as usize % bytes.len();
    bytes[at] = match bytes[at] {
        b'A' => b'B',
        b'\n' => b'\n',
        b'.' => b'A',
        _ => b'A',
    };
    if bytes[at] == b'\n' {
        let last = bytes.len() - 1;
        bytes[last.saturating_sub(1)] ^= 0x01;
    }
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &bytes, 0).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
}

/// Sets every mtime under `root` an hour back.
fn backdate(root: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    for e in walkdir::WalkDir::new(root).contents_first(true) {
        let e = e.unwrap();
        if e.file_type().is_file() || e.file_type().is_dir() {
            if let Ok(f) = fs::File::open(e.path()) {
                let _ = f.set_modified(old);
            }
        }
    }
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let mut world = World::new(case);
    let uses_make = case
        .steps
        .iter()
        .any(|s| matches!(s, Step::Run(Cmd::Traced(Script::Make(_)), _)));
    world
        .same_trees("building the trees")
        .map_err(TestCaseError::fail)?;
    for (n, step) in case.steps.iter().enumerate() {
        let result = match step {
            Step::Run(cmd, cache_failures) => world.run(cmd, *cache_failures),
            Step::Again => match world.last.clone() {
                Some((cmd, cache_failures)) => world.run(&cmd, cache_failures),
                None => Ok(()),
            },
            change => {
                // make compares mtimes, which move in coarse clock ticks:
                // a change must land a tick after the run before it, and
                // the next run a tick after it, on both sides alike.
                if uses_make {
                    std::thread::sleep(Duration::from_millis(12));
                }
                world.change(change);
                if uses_make {
                    std::thread::sleep(Duration::from_millis(12));
                }
                world.same_trees(&format!("{change:?} (the harness itself)"))
            }
        };
        if let Err(e) = result {
            return Err(TestCaseError::fail(format!(
                "step {n} with stdin {:?}: {e}",
                world.stdin
            )));
        }
    }
    HITS.fetch_add(world.hits(), Ordering::Relaxed);
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn jl_agrees_with_plain_runs_on_random_trees_changes_and_commands() {
    let cases = env_number("JL_ORACLE_CASES", 48) as u32;
    let seed = env_number("JL_ORACLE_SEED", 1);
    let config = Config {
        cases,
        max_shrink_iters: 400,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/oracle.txt",
        ))),
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let started = std::time::Instant::now();
    if let Err(e) = runner.run(&case(), |c| check(&c)) {
        panic!("{e}");
    }
    let (runs, hits) = (RUNS.load(Ordering::Relaxed), HITS.load(Ordering::Relaxed));
    let refused = REFUSED.load(Ordering::Relaxed);
    eprintln!(
        "oracle: {cases} cases (seed {seed}), {runs} commands compared, {hits} hits replayed, \
         {refused} runs jl refused to cache, {:.1?}",
        started.elapsed()
    );
    assert!(
        hits > 0 || cases < 8,
        "the oracle replayed no hit: it checked nothing"
    );
}
