//! `--trace`: dependencies found by watching real programs (gcc, python3,
//! sh, a static binary), outputs restored, deletions replayed, and no
//! entry or stray process after a kill.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{TestEnv, assert_says, files_under, installed, stderr, stdout};

/// A test directory plus a tally outside it: each real run of the traced
/// script appends a line there, and `--trace-ignore` keeps the tally out
/// of the dependencies.
pub struct Traced {
    pub env: TestEnv,
    pub tally: tempfile::TempDir,
}

impl Traced {
    pub fn new() -> Traced {
        Traced {
            env: TestEnv::new(),
            tally: tempfile::tempdir().unwrap(),
        }
    }

    fn count_line(&self) -> String {
        format!("echo x >> '{}/count'", self.tally.path().display())
    }

    /// `jl run --trace -- sh -c SCRIPT`, counted.
    pub fn script(&self, extra: &[&str], script: &str) -> Output {
        let body = format!("{}; {script}", self.count_line());
        let mut args = vec!["run", "--trace", "--trace-ignore"];
        let tally = self.tally.path().to_str().unwrap();
        args.push(tally);
        args.extend(extra);
        args.extend(["--", "sh", "-c", &body]);
        self.env.run(&args)
    }

    pub fn run(&self, script: &str) -> Output {
        let out = self.script(&[], script);
        assert!(out.status.success(), "{script}: {}", stderr(&out));
        out
    }

    pub fn runs(&self) -> usize {
        std::fs::read_to_string(self.tally.path().join("count")).map_or(0, |s| s.lines().count())
    }

    pub fn entries(&self) -> Vec<std::path::PathBuf> {
        let all = files_under(&self.env.store.join("actions"));
        all.into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }
}

#[test]
fn gcc_misses_on_its_header_hits_on_other_files_and_restores_the_object() {
    installed("gcc", "gcc");
    let t = Traced::new();
    t.env.write("h.h", "#define X 1\n");
    t.env
        .write("foo.c", "#include \"h.h\"\nint f(void) { return X; }\n");
    t.env.write("notes.txt", "unrelated\n");
    t.run("gcc -c foo.c");
    let object = std::fs::read(t.env.path("foo.o")).unwrap();
    // `as` looked for foo.o before writing it, and found it absent: with
    // foo.o there now, the first run's entry does not apply (as it would
    // not to a script that writes a file only when it is missing).
    t.run("gcc -c foo.c");
    assert_eq!(t.runs(), 2, "foo.o appeared since the first run");
    t.run("gcc -c foo.c");
    assert_eq!(t.runs(), 2, "a run with foo.o there is a hit");
    t.env
        .write("notes.txt", "changed, but gcc never reads it\n");
    std::fs::remove_file(t.env.path("foo.o")).unwrap();
    t.run("gcc -c foo.c");
    assert_eq!(t.runs(), 2, "an unrelated change is a hit");
    assert_eq!(std::fs::read(t.env.path("foo.o")).unwrap(), object);
    t.env.write("h.h", "#define X 2\n");
    t.run("gcc -c foo.c");
    assert_eq!(t.runs(), 3, "the header is a dependency");
    assert_ne!(std::fs::read(t.env.path("foo.o")).unwrap(), object);
    t.env.write("h.h", "#define X 1\n");
    t.run("gcc -c foo.c");
    assert_eq!(t.runs(), 3, "going back to the first header hits its entry");
    assert_eq!(std::fs::read(t.env.path("foo.o")).unwrap(), object);

    t.env.write("h.h", "#define X 3\n");
    let tally = t.tally.path().to_str().unwrap();
    let body = format!("{}; gcc -c foo.c", t.count_line());
    let explain = t.env.run(&[
        "explain",
        "--trace",
        "--trace-ignore",
        tally,
        "--",
        "sh",
        "-c",
        &body,
    ]);
    let text = stdout(&explain);
    assert!(text.contains("status     miss"), "{text}");
    assert!(text.contains("candidates 3"), "{text}");
    let changed: Vec<&str> = text.lines().filter(|l| l.starts_with("CHANGED")).collect();
    assert_eq!(changed.len(), 1, "{text}");
    assert!(changed[0].contains("read    h.h"), "{text}");
}

#[test]
fn a_header_appearing_earlier_on_the_include_path_is_a_miss() {
    installed("gcc", "gcc");
    let t = Traced::new();
    std::fs::create_dir(t.env.path("first")).unwrap();
    t.env.write("second/h.h", "#define X 1\n");
    t.env
        .write("foo.c", "#include \"h.h\"\nint f(void) { return X; }\n");
    for _ in 0..3 {
        t.run("gcc -Ifirst -Isecond -c foo.c");
    }
    assert_eq!(
        t.runs(),
        2,
        "one run, one more once foo.o is there, one hit"
    );
    t.env.write("first/h.h", "#define X 2\n");
    t.run("gcc -Ifirst -Isecond -c foo.c");
    assert_eq!(t.runs(), 3, "first/h.h was looked for and absent");
}

#[test]
fn a_python_module_edit_is_a_miss() {
    let t = Traced::new();
    t.env.write("main.py", "import helper\nprint(helper.X)\n");
    t.hits_until_changed(
        "python3 main.py",
        "helper.py",
        [("X = 1\n", "1\n"), ("X = 2\n", "2\n")],
    );
}

impl Traced {
    /// With `input` holding each content in turn, `script` prints what is
    /// expected: it runs for the first content, hits once, and runs again
    /// for the second.
    fn hits_until_changed(&self, script: &str, input: &str, contents: [(&str, &str); 2]) {
        let before = self.runs();
        let [(first, first_out), (second, second_out)] = contents;
        self.env.write(input, first);
        assert_eq!(stdout(&self.run(script)), first_out);
        assert_eq!(stdout(&self.run(script)), first_out);
        assert_eq!(self.runs(), before + 1, "the second run is a hit");
        self.env.write(input, second);
        assert_eq!(stdout(&self.run(script)), second_out);
        assert_eq!(self.runs(), before + 2, "{input} is a dependency");
    }
}

#[test]
fn a_redirected_output_is_discovered_and_restored() {
    let t = Traced::new();
    t.env.write("a", "A\n");
    t.env.write("b", "B\n");
    t.run("cat a b > c");
    std::fs::remove_file(t.env.path("c")).unwrap();
    t.run("cat a b > c");
    assert_eq!(t.runs(), 1);
    assert_eq!(t.env.read("c"), "A\nB\n");
    t.env.write("b", "b\n");
    t.run("cat a b > c");
    assert_eq!(t.runs(), 2);
    assert_eq!(t.env.read("c"), "A\nb\n");
    let show = t.env.run(&["show", "--json", &t.latest_key()]);
    let entry: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let deps = entry["deps"].as_array().unwrap();
    assert!(deps.iter().any(|d| d["path"] == "a" && d["kind"] == "file"));
    assert!(
        !deps.iter().any(|d| d["path"] == "c"),
        "c is an output only"
    );
    assert_eq!(entry["outputs"][0]["path"], "c");
}

impl Traced {
    /// The key of the newest entry.
    fn latest_key(&self) -> String {
        let newest = self
            .entries()
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
            .unwrap();
        let fan = newest
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let rest = newest.file_stem().unwrap().to_str().unwrap();
        format!("{fan}{rest}")
    }
}

#[test]
fn a_statically_linked_program_is_traced_too() {
    installed("gcc", "gcc");
    let t = Traced::new();
    t.env.write(
        "reader.c",
        "#include <stdio.h>\nint main(int c, char **v) { FILE *f = fopen(v[1], \"r\");\n\
         int ch; while ((ch = fgetc(f)) != EOF) putchar(ch); return 0; }\n",
    );
    let built = Command::new("gcc")
        .args(["-static", "-O1", "-o", "reader", "reader.c"])
        .current_dir(t.env.root())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    let contents = [("one\n", "one\n"), ("two\n", "two\n")];
    t.hits_until_changed("./reader data.txt", "data.txt", contents);
}

#[test]
fn background_grandchildren_are_followed_to_their_end() {
    let t = Traced::new();
    t.env.write("a", "from a\n");
    t.run("(sleep 0.3; cat a > b) > /dev/null &");
    assert_eq!(t.env.read("b"), "from a\n", "jl waited for the grandchild");
    std::fs::remove_file(t.env.path("b")).unwrap();
    t.run("(sleep 0.3; cat a > b) > /dev/null &");
    assert_eq!(t.runs(), 1);
    assert_eq!(t.env.read("b"), "from a\n");
    t.env.write("a", "new a\n");
    t.run("(sleep 0.3; cat a > b) > /dev/null &");
    assert_eq!(t.runs(), 2, "the grandchild's read is a dependency");
}

#[test]
fn relative_paths_after_cd_resolve_against_the_new_directory() {
    let t = Traced::new();
    t.env.write("sub/in.txt", "in\n");
    t.env.write("in.txt", "decoy\n");
    t.run("cd sub && cat in.txt > out.txt");
    assert_eq!(t.env.read("sub/out.txt"), "in\n");
    t.env.write("in.txt", "decoy changed\n");
    std::fs::remove_file(t.env.path("sub/out.txt")).unwrap();
    t.run("cd sub && cat in.txt > out.txt");
    assert_eq!(t.runs(), 1, "./in.txt is not what was read");
    assert_eq!(t.env.read("sub/out.txt"), "in\n");
    t.env.write("sub/in.txt", "in changed\n");
    t.run("cd sub && cat in.txt > out.txt");
    assert_eq!(t.runs(), 2);
}

#[test]
fn a_deletion_is_replayed_on_a_hit() {
    let t = Traced::new();
    t.env.write("old.txt", "stale\n");
    t.run("rm -f old.txt; echo new > new.txt");
    assert!(!t.env.path("old.txt").exists());
    t.env.write("old.txt", "stale again\n");
    t.run("rm -f old.txt; echo new > new.txt");
    assert_eq!(t.runs(), 1);
    assert!(!t.env.path("old.txt").exists(), "the hit removed it again");
    assert_eq!(t.env.read("new.txt"), "new\n");
}

#[test]
fn killing_jl_mid_trace_leaves_no_entry_and_no_stray_process() {
    let t = Traced::new();
    let mut child = t
        .env
        .jl()
        .args([
            "run",
            "--trace",
            "--",
            "sh",
            "-c",
            "echo started; sleep 7.31 & sleep 7.32; echo x > late.txt",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let left = Command::new("pgrep")
            .args(["-f", "sleep 7.3"])
            .output()
            .unwrap();
        left.stdout.is_empty()
    });
    assert!(gone, "the traced processes died with jl");
    assert!(t.entries().is_empty());
    assert!(!t.env.path("late.txt").exists());
    let verify = t.env.run(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn jl_map_traces_every_job() {
    let t = Traced::new();
    for i in 1..=50 {
        t.env.write(format!("in/{i}"), format!("item {i}\n"));
    }
    std::fs::create_dir(t.env.path("out")).unwrap();
    let tally = t.tally.path().to_str().unwrap();
    let body = format!("{}; tr a-z A-Z < in/$1 > out/$1", t.count_line());
    let map = || {
        let items: String = (1..=50).map(|i| format!("{i}\n")).collect();
        let out = crate::util::spawn_fed(
            t.env.jl().args([
                "map",
                "-q",
                "-j4",
                "--trace",
                "--trace-ignore",
                tally,
                "--",
                "sh",
                "-c",
                &body,
                "sh",
            ]),
            items.as_bytes(),
        )
        .wait_with_output()
        .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    map();
    assert_eq!(t.runs(), 50);
    assert_eq!(t.env.read("out/7"), "ITEM 7\n");
    std::fs::remove_file(t.env.path("out/3")).unwrap();
    t.env.write("in/7", "seven\n");
    map();
    assert_eq!(t.runs(), 51, "only the job whose input changed ran");
    assert_eq!(t.env.read("out/7"), "SEVEN\n");
    assert_eq!(t.env.read("out/3"), "ITEM 3\n", "restored by its hit");
}

#[test]
fn signals_reach_the_traced_command_and_spawned_children_are_followed() {
    let t = Traced::new();
    let trapped = t.run("trap 'echo caught' USR1; kill -USR1 $$; echo after");
    assert_eq!(stdout(&trapped), "caught\nafter\n");
    let spawn = "python3 -c 'import subprocess; subprocess.run([\"cat\", \"a\"])'";
    t.hits_until_changed(spawn, "a", [("one\n", "one\n"), ("two\n", "two\n")]);
}

#[test]
fn made_links_and_directories_are_restored_and_a_moved_directory_is_refused() {
    let t = Traced::new();
    t.env.write("a", "A\n");
    let script = "ln -sf a link; mkdir -p made/empty; chmod 700 made";
    let first = t.run(script);
    assert!(!stderr(&first).contains("warning"), "{}", stderr(&first));
    std::fs::remove_file(t.env.path("link")).unwrap();
    std::fs::remove_dir_all(t.env.path("made")).unwrap();
    t.run(script);
    assert_eq!(t.runs(), 1, "a hit");
    assert_eq!(
        std::fs::read_link(t.env.path("link")).unwrap().to_str(),
        Some("a")
    );
    assert!(t.env.path("made/empty").is_dir());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(t.env.path("made"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let before = t.entries().len();
    let moved = t.run("rm -rf d1; mkdir d0 && echo x > d0/f && mv d0 d1");
    assert_says(&stderr(&moved), "moved the directory");
    assert_eq!(t.entries().len(), before, "nothing cached");
}

#[test]
fn file_names_with_newlines_and_invalid_utf8_are_traced_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let t = Traced::new();
    let input = std::ffi::OsStr::from_bytes(b"in\nput\xff");
    let output = std::ffi::OsStr::from_bytes(b"out\nput\xff");
    t.env.write(input, "odd\n");
    let script = r#"cat "$(printf 'in\nput\377')" > "$(printf 'out\nput\377')""#;
    t.run(script);
    std::fs::remove_file(t.env.path(output)).unwrap();
    t.run(script);
    assert_eq!(t.runs(), 1);
    assert_eq!(t.env.read(output), "odd\n", "restored under its exact name");
    t.env.write(input, "odder\n");
    t.run(script);
    assert_eq!(t.runs(), 2);
    assert_eq!(t.env.read(output), "odder\n");
}

#[test]
fn a_file_the_command_may_not_read_makes_the_run_uncached() {
    let env = TestEnv::new();
    env.write_unreadable("secret", "hidden\n");
    let script = "cat secret 2>/dev/null; echo done";
    let mut jl = env.jl_unprivileged();
    let out = jl
        .args(["run", "--trace", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "done\n");
    assert_says(&stderr(&out), "denied access to");
    let entries = files_under(&env.store.join("actions"));
    assert!(entries.is_empty(), "nothing stored: {entries:?}");
}

#[test]
fn a_path_search_past_a_directory_it_may_not_enter_is_a_dependency() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write("a", "A\n");
    let shadow = env.write("locked/cat", "#!/bin/sh\necho shadowed\n");
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = env.path("locked");
    let set_mode =
        |mode| std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(mode)).unwrap();
    set_mode(0o000);
    let script = format!("PATH='{}':\"$PATH\"; cat a", locked.display());
    let run = || {
        env.jl_unprivileged()
            .args(["run", "-v", "--trace", "--", "sh", "-c", &script])
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(stdout(&first), "A\n");
    assert!(!stderr(&first).contains("not cached"), "{}", stderr(&first));
    let second = run();
    assert_eq!(stdout(&second), "A\n");
    assert_says(&stderr(&second), "[jl] Cached sh");
    set_mode(0o755);
    let opened = run();
    assert_eq!(stdout(&opened), "shadowed\n", "{}", stderr(&opened));
    set_mode(0o000);
    let closed_again = run();
    assert_eq!(stdout(&closed_again), "A\n");
    assert_says(&stderr(&closed_again), "[jl] Cached sh");
}

#[test]
fn identical_traced_runs_at_once_execute_once() {
    let t = Traced::new();
    t.env.write("a", "A\n");
    let tally = t.tally.path().to_str().unwrap().to_owned();
    let body = format!("{}; sleep 0.3; cat a", t.count_line());
    let children: Vec<_> = (0..8)
        .map(|_| {
            t.env
                .jl()
                .args([
                    "run",
                    "--trace",
                    "--trace-ignore",
                    &tally,
                    "--",
                    "sh",
                    "-c",
                    &body,
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "A\n");
    }
    assert_eq!(t.runs(), 1);
}

#[test]
fn a_traced_jl_inside_a_traced_command_runs_its_command_uncached() {
    let t = Traced::new();
    t.env.write("a", "A\n");
    let inner = format!("'{}' run --trace -- cat a", env!("CARGO_BIN_EXE_jl"));
    let first = t.run(&inner);
    assert_eq!(stdout(&first), "A\n");
    assert_says(&stderr(&first), "itself being traced");
    t.run(&inner);
    assert_eq!(t.runs(), 1, "the outer run is cached");
    t.env.write("a", "B\n");
    assert_eq!(
        stdout(&t.run(&inner)),
        "B\n",
        "the inner read is a dependency"
    );
}

#[test]
fn writes_outside_the_working_directory_are_kept_only_under_trace_outputs() {
    let t = Traced::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().to_str().unwrap();
    let script = format!("echo kept > '{dir}/kept'; echo lost > '{dir}/lost'");
    let kept_only = format!("{dir}/kept");
    let args = ["--trace-outputs", kept_only.as_str()];
    t.script(&args, &script);
    std::fs::remove_file(elsewhere.path().join("kept")).unwrap();
    std::fs::remove_file(elsewhere.path().join("lost")).unwrap();
    let hit = t.script(&args, &script);
    assert!(hit.status.success(), "{}", stderr(&hit));
    assert_eq!(t.runs(), 1);
    assert!(elsewhere.path().join("kept").exists(), "restored");
    assert!(!elsewhere.path().join("lost").exists(), "not an output");
}

#[test]
fn a_traced_entry_that_would_write_outside_is_a_miss_and_is_removed() {
    let t = Traced::new();
    t.run("echo hi > c");
    let entry = t.entries().pop().unwrap();
    let text = std::fs::read_to_string(&entry).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["outputs"][0]["path"] = "../escaped".into();
    std::fs::write(&entry, json.to_string()).unwrap();
    let again = t.run("echo hi > c");
    assert!(stderr(&again).is_empty(), "{}", stderr(&again));
    assert_eq!(t.runs(), 2, "the hostile entry was not replayed");
    assert!(!t.env.root().join("../escaped").exists());
    assert_eq!(t.entries().len(), 1, "replaced by a good one");
}

#[test]
fn gc_removes_a_manifest_once_its_recorded_runs_are_gone() {
    let t = Traced::new();
    t.run("echo hi > c");
    let manifests = || {
        files_under(&t.env.store.join("actions"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "manifest"))
            .count()
    };
    assert_eq!(manifests(), 1);
    let key = t.latest_key();
    assert!(stdout(&t.env.run(&["ls"])).contains("echo hi > c"));
    assert!(t.env.run(&["rm", &key]).status.success());
    assert!(t.env.run(&["gc"]).status.success());
    assert_eq!(manifests(), 0);
    t.run("echo hi > c");
    assert_eq!(t.runs(), 2, "a miss, recorded again");
    assert_eq!(manifests(), 1);
}

#[test]
fn files_and_directories_the_command_removes_are_removed_again_on_a_hit() {
    let t = Traced::new();
    let script = "cat tmp.txt > out.txt; rm tmp.txt; rm -rf build; mkdir build; echo x > build/o";
    let setup = || {
        t.env.write("tmp.txt", "scratch\n");
        t.env.write("build/stale", "old\n");
    };
    setup();
    t.run(script);
    assert!(!t.env.path("tmp.txt").exists());
    assert!(!t.env.path("build/stale").exists());
    std::fs::remove_dir_all(t.env.path("build")).unwrap();
    std::fs::remove_file(t.env.path("out.txt")).unwrap();
    setup();
    t.run(script);
    assert_eq!(
        t.runs(),
        1,
        "the read-then-removed file is a dependency that held"
    );
    assert!(!t.env.path("tmp.txt").exists(), "removed again");
    assert_eq!(t.env.read("out.txt"), "scratch\n");
    assert_eq!(t.env.read("build/o"), "x\n");
    assert!(!t.env.path("build/stale").exists(), "removed again");
    setup();
    t.env.write("tmp.txt", "other\n");
    t.run(script);
    assert_eq!(t.runs(), 2);
    assert_eq!(t.env.read("out.txt"), "other\n");
}

#[test]
fn a_file_the_command_only_stats_is_a_dependency_by_identity() {
    // With bytecode caching on, python3 only stats helper.py when its
    // __pycache__ entry is valid: the stat alone must make an edit a miss.
    let t = Traced::new();
    t.env.write("main.py", "import helper\nprint(helper.X)\n");
    t.env.write("helper.py", "X = 1\n");
    let plain = Command::new("python3")
        .arg("main.py")
        .current_dir(t.env.root())
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    assert_eq!(stdout(&plain), "1\n");
    assert!(t.env.path("__pycache__").is_dir(), "bytecode was cached");
    let traced = || {
        let body = format!("{}; python3 main.py", t.count_line());
        let tally = t.tally.path().to_str().unwrap();
        let out = t
            .env
            .jl()
            .args([
                "run",
                "--trace",
                "--trace-ignore",
                tally,
                "--",
                "sh",
                "-c",
                &body,
            ])
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .output()
            .unwrap();
        stdout(&out)
    };
    assert_eq!(traced(), "1\n");
    assert_eq!(traced(), "1\n");
    assert_eq!(t.runs(), 1);
    t.env.write("helper.py", "X = 22\n");
    assert_eq!(traced(), "22\n", "not the cached 1");
}

/// Runs a program under a seccomp filter that refuses `ptrace` with EPERM,
/// as some container policies do (python3's ctypes installs it).
const WITHOUT_PTRACE: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def op(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
SYS_PTRACE, EPERM = 101, 1
prog = (op(0x20, 0, 0, 0) + op(0x15, 0, 1, SYS_PTRACE)
        + op(0x06, 0, 0, 0x00050000 | EPERM) + op(0x06, 0, 0, 0x7fff0000))
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, filter
os.execv(sys.argv[1], sys.argv[1:])
"#;

#[test]
fn where_ptrace_is_refused_the_command_still_runs_uncached() {
    let t = Traced::new();
    t.env.write("a", "A\n");
    let jl = env!("CARGO_BIN_EXE_jl");
    let run = |script: &str| {
        Command::new("python3")
            .args([
                "-c",
                WITHOUT_PTRACE,
                jl,
                "run",
                "--trace",
                "--",
                "sh",
                "-c",
                script,
            ])
            .current_dir(t.env.root())
            .env("JL_STORE", &t.env.store)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("cat a");
    assert_eq!(stdout(&out), "A\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    assert_says(&stderr(&out), "could not be traced: ptrace is not allowed");
    assert!(t.entries().is_empty());
    assert_eq!(
        run("exit 3").status.code(),
        Some(3),
        "the command's own status"
    );
}
