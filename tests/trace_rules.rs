//! `--trace` rules that keep a traced hit honest: paths as the kernel
//! resolves them, symlinks by their target text, what a command looked at
//! before it wrote, modes, and effects a hit could not redo.

use std::os::unix::fs::{PermissionsExt, symlink};

use crate::trace::Traced;
use crate::util::{assert_says, stderr, stdout};

fn relink(t: &Traced, target: &str, link: &str) {
    let _ = std::fs::remove_file(t.env.path(link));
    symlink(target, t.env.path(link)).unwrap();
}

#[test]
fn readlink_depends_on_the_link_not_on_what_it_points_to() {
    let t = Traced::new();
    t.env.write("releases/v1/app", "same\n");
    t.env.write("releases/v2/app", "same\n");
    relink(&t, "releases/v1", "current");
    assert_eq!(stdout(&t.run("readlink current")), "releases/v1\n");
    assert_eq!(stdout(&t.run("readlink current")), "releases/v1\n");
    assert_eq!(t.runs(), 1);
    relink(&t, "releases/v2", "current");
    assert_eq!(stdout(&t.run("readlink current")), "releases/v2\n");
    // The same file by another path is another link text.
    t.env.write("a", "x\n");
    relink(&t, "a", "l");
    assert_eq!(stdout(&t.run("readlink l; cat l")), "a\nx\n");
    relink(&t, "./a", "l");
    assert_eq!(stdout(&t.run("readlink l; cat l")), "./a\nx\n");
}

#[test]
fn a_path_through_a_symlink_depends_on_the_link_and_the_file_it_reaches() {
    let t = Traced::new();
    t.env.write("releases/v1/config", "one\n");
    t.env.write("releases/v2/config", "two\n");
    relink(&t, "releases/v1", "current");
    assert_eq!(stdout(&t.run("cat current/config")), "one\n");
    relink(&t, "releases/v2", "current");
    assert_eq!(stdout(&t.run("cat current/config")), "two\n");
}

#[test]
fn dot_dot_after_a_symlink_is_resolved_as_the_kernel_does() {
    let t = Traced::new();
    t.env.write("real/f", "one\n");
    std::fs::create_dir_all(t.env.path("real/sub")).unwrap();
    std::fs::create_dir_all(t.env.path("d")).unwrap();
    relink(&t, "../real/sub", "d/link");
    assert_eq!(stdout(&t.run("cat d/link/../f")), "one\n");
    t.env.write("d/f", "a decoy the text would name\n");
    assert_eq!(stdout(&t.run("cat d/link/../f")), "one\n");
    assert_eq!(t.runs(), 1, "d/f is not what the kernel reads");
    t.env.write("real/f", "two\n");
    assert_eq!(stdout(&t.run("cat d/link/../f")), "two\n");
}

#[test]
fn paths_through_proc_self_and_dev_fd_are_the_files_they_name() {
    let t = Traced::new();
    let cwd = std::fs::canonicalize(t.env.root()).unwrap();
    let scripts = [
        "cat /proc/self/cwd/f".to_string(),
        format!("cat /proc/self/root{}/f", cwd.display()),
        "cat /dev/fd/3 3<f".to_string(),
    ];
    for (n, script) in scripts.iter().enumerate() {
        t.env.write("f", format!("one {n}\n"));
        assert_eq!(stdout(&t.run(script)), format!("one {n}\n"), "{script}");
        assert_eq!(stdout(&t.run(script)), format!("one {n}\n"), "{script}");
        t.env.write("f", format!("two {n}\n"));
        assert_eq!(stdout(&t.run(script)), format!("two {n}\n"), "{script}");
    }
    assert_eq!(t.runs(), 6, "a hit each, and a miss after each edit");
}

/// Runs `cmd` in `dir` through `jl run --trace` with the env's store.
fn traced_in(t: &Traced, dir: &std::path::Path, cmd: &str) -> std::process::Output {
    t.env
        .jl()
        .current_dir(dir)
        .args(["run", "--trace", "--", "sh", "-c", cmd])
        .output()
        .unwrap()
}

#[test]
fn a_path_named_absolutely_stays_absolute_in_a_moved_checkout() {
    let t = Traced::new();
    let w = std::fs::canonicalize(t.env.root()).unwrap();
    t.env.write("A/x", "a1\n");
    t.env.write("B/x", "b1\n");
    let cat = format!("cat {}/A/x", w.display());
    assert_eq!(stdout(&traced_in(&t, &w.join("A"), &cat)), "a1\n");
    assert_eq!(stdout(&traced_in(&t, &w.join("B"), &cat)), "a1\n");
    t.env.write("A/x", "a2\n");
    assert_eq!(
        stdout(&traced_in(&t, &w.join("B"), &cat)),
        "a2\n",
        "A/x, not B/x"
    );
    // A relative path moves with the checkout.
    assert_eq!(stdout(&traced_in(&t, &w.join("A"), "cat x")), "a2\n");
    assert_eq!(stdout(&traced_in(&t, &w.join("B"), "cat x")), "b1\n");
    // An output named absolutely is restored where it was named.
    let make = format!("echo made > {}/A/out", w.display());
    traced_in(&t, &w.join("A"), &make);
    std::fs::remove_file(t.env.path("A/out")).unwrap();
    let hit = traced_in(&t, &w.join("A"), &make);
    assert!(hit.status.success(), "{}", stderr(&hit));
    assert_eq!(t.env.read("A/out"), "made\n");
    assert!(!t.env.path("B/out").exists());
    traced_in(&t, &w.join("B"), &make);
    assert!(!t.env.path("B/out").exists(), "never restored into B");
}

#[test]
fn what_make_looked_at_before_its_recipe_wrote_is_a_dependency() {
    crate::util::installed("make", "make");
    let t = Traced::new();
    t.env
        .write("Makefile", "out.txt: in.txt\n\tcp in.txt out.txt\n");
    t.env.write("in.txt", "input\n");
    assert!(stdout(&t.run("make")).contains("cp in.txt out.txt"));
    // Edited by hand, so newer than in.txt: make leaves it alone.
    std::thread::sleep(std::time::Duration::from_millis(20));
    t.env.write("out.txt", "edited by hand\n");
    let again = t.run("make");
    assert_says(&stdout(&again), "is up to date");
    assert_eq!(
        t.env.read("out.txt"),
        "edited by hand\n",
        "the hit overwrote the edit"
    );
    assert_eq!(
        stdout(&t.run("make")),
        stdout(&again),
        "and that is a hit now"
    );
    assert_eq!(t.runs(), 2);
}

#[test]
fn the_mode_of_a_file_read_is_a_dependency() {
    let t = Traced::new();
    t.env.write("tool.sh", "#!/bin/sh\necho tool ran\n");
    let exec = |mode| {
        std::fs::set_permissions(t.env.path("tool.sh"), std::fs::Permissions::from_mode(mode))
            .unwrap()
    };
    exec(0o755);
    assert_eq!(stdout(&t.run("./tool.sh")), "tool ran\n");
    exec(0o644);
    let denied = t.script(&[], "./tool.sh");
    assert_eq!(
        denied.status.code(),
        Some(126),
        "replayed exit 0 for a file now not executable"
    );
    t.env.write("src/a", "a\n");
    t.run("rm -rf dst; cp -r src dst");
    std::fs::set_permissions(t.env.path("src/a"), std::fs::Permissions::from_mode(0o700)).unwrap();
    t.run("rm -rf dst; cp -r src dst");
    let mode = std::fs::metadata(t.env.path("dst/a"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn error_outcomes_a_command_saw_are_dependencies() {
    let t = Traced::new();
    relink(&t, "l2", "l1");
    relink(&t, "l1", "l2");
    let probe = "if test -e l1; then echo there; else echo not there; fi";
    assert_eq!(stdout(&t.run(probe)), "not there\n");
    t.env.write("target", "x\n");
    relink(&t, "target", "l2");
    assert_eq!(stdout(&t.run(probe)), "there\n", "the loop was fixed");

    std::fs::create_dir(t.env.path("out")).unwrap();
    let write = "echo x > out 2>/dev/null || echo fallback";
    assert_eq!(stdout(&t.script(&[], write)), "fallback\n");
    std::fs::remove_dir(t.env.path("out")).unwrap();
    assert_eq!(stdout(&t.script(&[], write)), "");
    assert_eq!(t.env.read("out"), "x\n");
}

#[test]
fn a_file_the_user_may_not_read_is_seen_as_it_is() {
    let env = crate::util::TestEnv::new();
    env.write_unreadable("f", "secret\n");
    let probe = [
        "run",
        "--trace",
        "--",
        "sh",
        "-c",
        "test -r f && echo readable || echo not",
    ];
    let run = || env.jl_unprivileged().args(probe).output().unwrap();
    let first = run();
    assert_eq!(stdout(&first), "not\n", "{}", stderr(&first));
    std::fs::set_permissions(env.path("f"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(stdout(&run()), "readable\n");
}

#[test]
fn effects_a_hit_could_not_redo_are_never_cached() {
    let t = Traced::new();
    let elsewhere = tempfile::tempdir().unwrap();
    t.env.write("report.txt", "the report\n");
    let mv = format!("mv report.txt '{}/report.txt'", elsewhere.path().display());
    let out = t.run(&mv);
    assert_says(&stderr(&out), "out of where outputs are kept");
    assert!(t.entries().is_empty());

    t.env.write("a", "A\n");
    t.env.write("b", "B\n");
    let swap = "python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); \
                assert l.renameat2(-100, b\"a\", -100, b\"b\", 2) == 0'";
    let out = t.run(swap);
    assert!(stderr(&out).contains("RENAME_EXCHANGE"), "{}", stderr(&out));
    assert_eq!(t.env.read("a"), "B\n");

    let out = t.run("mkfifo p");
    assert!(stderr(&out).contains("special file"), "{}", stderr(&out));
    assert!(t.entries().is_empty(), "nothing was cached");
}

#[test]
#[cfg_attr(not(jl_test_root), ignore = "needs root to chroot (CI runs as root)")]
fn a_chroot_is_never_cached() {
    let t = Traced::new();
    std::fs::create_dir(t.env.path("jail")).unwrap();
    let out = t.run("python3 -c 'import os; os.chroot(\"jail\")'");
    assert!(stderr(&out).contains("chroot"), "{}", stderr(&out));
    assert!(t.entries().is_empty());
}

#[test]
fn times_and_modes_a_command_sets_are_restored() {
    let t = Traced::new();
    t.env.write("keep.txt", "kept\n");
    let script = "echo old > dated.txt; touch -d 2001-02-03 dated.txt; chmod 600 keep.txt";
    t.run(script);
    std::fs::remove_file(t.env.path("dated.txt")).unwrap();
    std::fs::set_permissions(
        t.env.path("keep.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    t.run(script);
    assert_eq!(t.runs(), 1, "a hit");
    let dated = std::fs::metadata(t.env.path("dated.txt")).unwrap();
    let year_2001 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(981_158_400);
    assert!(dated.modified().unwrap() < year_2001 + std::time::Duration::from_secs(86_400 * 2));
    let mode = std::fs::metadata(t.env.path("keep.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the chmod was redone");
}

#[test]
fn a_file_written_into_a_directory_depends_on_the_directory_being_there() {
    let t = Traced::new();
    std::fs::create_dir(t.env.path("d")).unwrap();
    t.run("echo 0 > d/new.txt");
    std::fs::remove_dir_all(t.env.path("d")).unwrap();
    let out = t.script(&[], "echo 0 > d/new.txt");
    assert!(!out.status.success(), "a hit made the directory back");
    assert!(!t.env.path("d").exists());
    assert_eq!(t.runs(), 2);
}

#[test]
fn a_path_through_dot_dot_depends_on_the_directories_it_passes() {
    let t = Traced::new();
    t.env.write("f2", "A\n");
    std::fs::create_dir_all(t.env.path("d/sub")).unwrap();
    assert_eq!(stdout(&t.run("cat d/sub/../../f2")), "A\n");
    std::fs::remove_dir_all(t.env.path("d")).unwrap();
    let out = t.script(&[], "cat d/sub/../../f2");
    assert!(
        !out.status.success(),
        "replayed a path that no longer resolves"
    );
}

#[test]
fn a_listing_counts_as_the_command_read_it_not_as_it_left_it() {
    let t = Traced::new();
    // `ls` saw x, then the command wrote over it: without x before the
    // run, `ls` prints something else.
    t.env.write("d/a", "");
    t.env.write("d/x", "");
    let script = "ls d; echo w > d/x";
    assert_eq!(stdout(&t.run(script)), "a\nx\n");
    std::fs::remove_file(t.env.path("d/x")).unwrap();
    assert_eq!(stdout(&t.run(script)), "a\n");
    assert_eq!(t.runs(), 2);
    // A directory outside, listed and then removed: it is gone when the
    // run ends, and still its names are what `ls` printed.
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("o");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a"), "").unwrap();
    let script = format!("ls '{0}'; rm -rf '{0}'", dir.display());
    assert_eq!(stdout(&t.run(&script)), "a\n");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a"), "").unwrap();
    std::fs::write(dir.join("b"), "").unwrap();
    assert_eq!(stdout(&t.run(&script)), "a\nb\n");
    assert_eq!(t.runs(), 4);
}

#[test]
fn removing_a_directory_depends_on_what_it_held() {
    let t = Traced::new();
    t.env.write("d/a", "");
    let script = "rm d/a; rmdir d 2>&1; echo $?";
    assert_eq!(stdout(&t.run(script)), "0\n");
    t.env.write("d/a", "");
    t.env.write("d/b", "");
    // rmdir now fails; a hit tried first would have removed d/a and then
    // let the command run on a tree it had changed.
    let out = t.run(script);
    assert_says(&stdout(&out), "Directory not empty");
    assert_eq!(stderr(&out), "", "rm found d/a to remove");
    assert!(t.env.path("d/b").exists());
    assert_eq!(t.runs(), 2);
    std::fs::remove_file(t.env.path("d/b")).unwrap();
    t.env.write("d/a", "");
    assert_eq!(stdout(&t.run(script)), "0\n");
    assert_eq!(t.runs(), 2, "as the first run found it: a hit");
}

#[test]
fn a_path_under_a_missing_directory_depends_on_that_directory() {
    let t = Traced::new();
    let script = "(echo w > nodir/f) 2>&1; mkdir nodir/sub 2>&1; cat nodir/f 2>&1; echo $?";
    let failed = stdout(&t.run(script));
    assert_says(&failed, "nonexistent");
    assert_eq!(stdout(&t.run(script)), failed);
    assert_eq!(t.runs(), 1);
    // With the directory there, the same paths are still absent, and
    // everything succeeds.
    std::fs::create_dir(t.env.path("nodir")).unwrap();
    assert_eq!(stdout(&t.run(script)), "w\n0\n");
    assert_eq!(t.runs(), 2);
    assert!(t.env.path("nodir/sub").is_dir());
    // A file where a directory is looked for: "Not a directory", until
    // it is a directory.
    t.env.write("plain", "");
    let script = "cat plain/x 2>&1; echo $?";
    assert_says(&stdout(&t.run(script)), "Not a directory");
    std::fs::remove_file(t.env.path("plain")).unwrap();
    std::fs::create_dir(t.env.path("plain")).unwrap();
    assert_says(&stdout(&t.run(script)), "No such file");
    // A failed removal depends on what it met.
    let script = "rmdir gone 2>&1; echo $?";
    assert_says(&stdout(&t.run(script)), "No such file");
    std::fs::create_dir(t.env.path("gone")).unwrap();
    assert_eq!(stdout(&t.run(script)), "0\n");
}

#[test]
fn a_call_that_fails_where_something_is_depends_on_its_absence() {
    let t = Traced::new();
    // mkdir, ln -s and a noclobber write (O_EXCL) each fail on an
    // existing path: that one worked says the path was absent.
    let scripts = [
        ("m", "mkdir m 2>&1; echo $?"),
        ("l", "ln -s t l 2>&1; echo $?"),
        ("n", "(set -C; echo x > n) 2>&1; echo $?"),
    ];
    for (n, (path, script)) in scripts.into_iter().enumerate() {
        assert_eq!(stdout(&t.run(script)), "0\n", "{script}");
        let again = stdout(&t.run(script));
        assert!(
            again.ends_with("exists\n1\n") || again.ends_with("exists\n2\n"),
            "{script}: {again}"
        );
        assert_eq!(t.runs(), 3 * n + 2, "{path} is there now: a miss");
        let path = t.env.path(path);
        match std::fs::symlink_metadata(&path).unwrap().is_dir() {
            true => std::fs::remove_dir(&path).unwrap(),
            false => std::fs::remove_file(&path).unwrap(),
        }
        assert_eq!(stdout(&t.run(script)), "0\n");
        assert_eq!(t.runs(), 3 * n + 2, "absent again: the first run's hit");
        assert!(
            std::fs::symlink_metadata(&path).is_ok(),
            "{script}: restored"
        );
        // Leave nothing for the next script's runs to trip on.
        t.run(&format!(
            "rm -rf {}",
            path.file_name().unwrap().to_str().unwrap()
        ));
    }
}

#[test]
fn an_output_another_process_only_saw_there_hits_after_it_is_rewritten() {
    // gcc -o x.o: the driver readlinks x.o (it is there, not a link); `as`
    // stats it and writes it anew. What the driver saw is its kind, and
    // the identity was the writer's own look: a rewritten x.o still hits.
    let t = Traced::new();
    t.env.write("x.o", "old");
    let script =
        "readlink x.o; python3 -c \"import os; os.stat('x.o'); open('x.o', 'w').write('new')\"";
    let first = t.script(&[], script);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    for _ in 0..3 {
        t.script(&[], script);
    }
    assert_eq!(t.runs(), 1, "the rewritten x.o kept its kind: hits");
    assert_eq!(std::fs::read_to_string(t.env.path("x.o")).unwrap(), "new");
    // A process that saw its identity and did not write it still counts
    // it so: a hand edit is a miss.
    let make_like = "stat -c %s x.o >/dev/null; sh -c 'echo made > x.o'";
    t.script(&[], make_like);
    t.script(&[], make_like);
    assert_eq!(
        t.runs(),
        3,
        "x.o rewritten by another process: a miss once more"
    );
}
