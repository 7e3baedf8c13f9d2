//! Named regressions for wrong replays and missed hits that the oracle
//! (tests/oracle.rs) guards in general: each is a case a careful user hit.

use std::os::unix::fs::symlink;
use std::process::Stdio;

use crate::util::{TestEnv, assert_says, counted, counted_with, spawn_fed, stderr, stdout};

#[test]
fn an_argument_starting_with_a_dash_that_names_a_file_is_an_input() {
    let env = TestEnv::new();
    env.write("-in.txt", "one\n");
    let args = ["run", "--", "cat", "--", "-in.txt"];
    assert_eq!(stdout(&env.run(&args)), "one\n");
    env.write("-in.txt", "two\n");
    assert_eq!(stdout(&env.run(&args)), "two\n", "a stale replay");
    // A map item is an argument like any other.
    env.write("-in.txt", "three\n");
    let out = spawn_fed(
        env.jl().args(["map", "-q", "--", "cat", "--"]),
        b"-in.txt\n",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(stdout(&out), "three\n");
}

#[test]
fn a_symlink_in_a_directory_input_counts_by_what_it_points_to() {
    let env = TestEnv::new();
    std::fs::create_dir(env.path("d")).unwrap();
    env.write("target", "A\n");
    symlink("../target", env.path("d/link")).unwrap();
    let args = ["run", "--", "grep", "-R", "[AB]", "d"];
    assert_eq!(stdout(&env.run(&args)), "d/link:A\n");
    env.write("target", "B\n");
    assert_eq!(stdout(&env.run(&args)), "d/link:B\n", "a stale replay");

    // Retargeted to another file with the same content: find sees the new
    // link text, so it is a miss too.
    env.write("other", "B\n");
    let find = ["run", "--", "find", "d", "-printf", "%p %l\\n"];
    assert_eq!(stdout(&env.run(&find)), "d \nd/link ../target\n");
    std::fs::remove_file(env.path("d/link")).unwrap();
    symlink("../other", env.path("d/link")).unwrap();
    assert_eq!(stdout(&env.run(&find)), "d \nd/link ../other\n");

    // A link to a directory brings its tree; a link back up is a loop,
    // hashed once; a dangling link counts by its text.
    std::fs::create_dir(env.path("sub")).unwrap();
    env.write("sub/x", "A\n");
    symlink("../sub", env.path("d/dir")).unwrap();
    symlink(".", env.path("d/self")).unwrap();
    symlink("../d", env.path("sub/back")).unwrap();
    symlink("nowhere", env.path("d/dangling")).unwrap();
    let grep = counted("grep -rs A \"$1\"/dir/ | sort", &["d"]);
    assert_eq!(stdout(&env.run(&grep)), "d/dir/x:A\n");
    assert_eq!(stdout(&env.run(&grep)), "d/dir/x:A\n");
    assert_eq!(env.count("count"), 1);
    env.write("sub/x", "AA\n");
    assert_eq!(stdout(&env.run(&grep)), "d/dir/x:AA\n", "a stale replay");
}

#[test]
fn a_symlink_argument_counts_by_its_target_text_too() {
    let env = TestEnv::new();
    env.write("a", "same\n");
    env.write("b", "same\n");
    symlink("a", env.path("current")).unwrap();
    let args = ["run", "--", "readlink", "current"];
    assert_eq!(stdout(&env.run(&args)), "a\n");
    std::fs::remove_file(env.path("current")).unwrap();
    symlink("b", env.path("current")).unwrap();
    assert_eq!(stdout(&env.run(&args)), "b\n", "same content, another link");
    std::fs::remove_file(env.path("current")).unwrap();
    symlink("gone", env.path("current")).unwrap();
    assert_eq!(stdout(&env.run(&args)), "gone\n", "a dangling link");
}

#[test]
fn a_declared_output_directory_is_restored_exactly() {
    let env = TestEnv::new();
    let args = counted_with(
        &["-o", "out"],
        "rm -rf out; mkdir -p out/sub/empty; echo a > out/a; ln -s a out/l; chmod 700 out/sub",
        &[],
    );
    assert!(env.run(&args).status.success());
    env.write("out/stale", "left over\n");
    env.write("out/sub/empty/x", "left over\n");
    std::fs::remove_file(env.path("out/l")).unwrap();
    std::fs::remove_file(env.path("out/a")).unwrap();
    std::fs::create_dir(env.path("out/a")).unwrap();
    assert!(env.run(&args).status.success());
    assert_eq!(env.count("count"), 1, "a hit");
    let names: Vec<String> = walkdir::WalkDir::new(env.path("out"))
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .strip_prefix(env.path("out"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        ["a", "l", "sub", "sub/empty"],
        "nothing more, nothing less"
    );
    assert_eq!(env.read("out/a"), "a\n");
    assert_eq!(
        std::fs::read_link(env.path("out/l")).unwrap().to_str(),
        Some("a")
    );
    assert!(env.path("out/sub/empty").is_dir());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.path("out/sub"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn a_declared_output_the_run_left_absent_is_removed_on_a_hit() {
    let env = TestEnv::new();
    env.write("o3", "x\n");
    let args = ["run", "-o", "o3", "--", "rm", "-f", "o3"];
    assert!(env.run(&args).status.success());
    env.write("o3", "back\n");
    assert!(env.run(&args).status.success());
    assert!(!env.path("o3").exists(), "the hit left o3 in place");
    // A directory in its place goes too.
    std::fs::create_dir_all(env.path("o3/deep")).unwrap();
    assert!(env.run(&args).status.success());
    assert!(!env.path("o3").exists());
}

#[test]
fn an_output_that_is_or_holds_something_precious_is_a_usage_error() {
    let env = TestEnv::new();
    env.write("src/in.txt", "x");
    let home = env.path("home");
    std::fs::create_dir(&home).unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["-o", "."], "is the working directory"),
        (&["-o", ".."], "holds"),
        (&["-o", "/"], "is /"),
        (&["-o", "home"], "is your home directory"),
        (&["-o", "store"], "is the store"),
        (
            &["-o", "src", "-i", "src/in.txt"],
            "holds the input src/in.txt",
        ),
    ];
    for (options, says) in cases {
        let mut args = vec!["run"];
        args.extend(options);
        args.extend(["--", "sh", "-c", "echo ran >> count"]);
        let out = env.jl().args(&args).env("HOME", &home).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{options:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{options:?}: {}", stderr(&out));
    }
    // An argument inside a declared output directory is an input too.
    let out = env.run(&["run", "-o", "src", "--", "cat", "src/in.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env.count("count"), 0, "nothing ran");
    assert!(env.path("src/in.txt").exists());
}

#[test]
fn every_kind_of_empty_stdin_is_one_key() {
    let env = TestEnv::new();
    let args = counted("cat; echo done", &[]);
    let devnull = env.jl().args(&args).stdin(Stdio::null()).output().unwrap();
    assert_eq!(stdout(&devnull), "done\n");
    let empty_pipe = env.run_with_stdin(&args, b"");
    env.write("empty", "");
    let empty_file = env
        .jl()
        .args(&args)
        .stdin(std::fs::File::open(env.path("empty")).unwrap())
        .output()
        .unwrap();
    let closed = std::process::Command::new("sh")
        .args(["-c", r#"exec "$@" <&-"#, "sh", env!("CARGO_BIN_EXE_jl")])
        .args(&args)
        .current_dir(env.root())
        .env("JL_STORE", &env.store)
        .output()
        .unwrap();
    for out in [&empty_pipe, &empty_file, &closed] {
        assert_eq!(stdout(out), "done\n");
    }
    assert_eq!(env.count("count"), 1, "one run, three hits");
    // Bytes to read are a different key.
    assert_eq!(stdout(&env.run_with_stdin(&args, b"x\n")), "x\ndone\n");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_stored_failure_is_replayed_only_by_a_run_with_cache_failures() {
    let env = TestEnv::new();
    env.write("exit", "3");
    let failing = counted_with(&["--cache-failures"], "exit $(cat exit)", &[]);
    let plain = counted("exit $(cat exit)", &[]);
    assert_eq!(env.run(&failing).status.code(), Some(3));
    assert_eq!(env.run(&failing).status.code(), Some(3));
    assert_eq!(env.count("count"), 1, "--cache-failures replays it");
    assert_eq!(env.run(&plain).status.code(), Some(3));
    assert_eq!(env.count("count"), 2, "a run without it runs the command");
}

#[test]
fn identical_jobs_of_one_map_run_once() {
    let env = TestEnv::new();
    let out = spawn_fed(
        env.jl().args([
            "map",
            "-q",
            "-j1",
            "--",
            "sh",
            "-c",
            "echo x >> count; echo $1",
            "sh",
        ]),
        b"x\nx\nx\n",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(stdout(&out), "x\nx\nx\n");
    assert_eq!(env.count("count"), 1);
}

#[test]
fn verbose_says_what_differs_from_the_nearest_entry_on_a_miss() {
    let env = TestEnv::new();
    env.write("pics/a.jpg", "one");
    let args = ["run", "-v", "--", "cat", "pics/a.jpg"];
    let first = env.run(&args);
    assert_says(&stderr(&first), "(no entry for this program)");
    env.write("pics/a.jpg", "two");
    let second = env.run(&args);
    assert_says(&stderr(&second), "(input pics/a.jpg changed content)");
}

#[test]
fn a_missing_argument_counts_by_why_it_names_nothing() {
    // `cat d/up` says "No such file or directory" while d is missing and
    // "Not a directory" once d is a file: a cached failure must not say
    // the first when the second is true.
    let env = TestEnv::new();
    let args = counted("cat \"$1\" 2>&1; echo $?", &["d/up"]);
    let mut args: Vec<String> = args;
    args.insert(1, "--cache-failures".to_string());
    let gone = stdout(&env.run(&args));
    assert!(gone.contains("No such file"), "{gone}");
    env.write("d", "a file");
    let file = stdout(&env.run(&args));
    assert!(file.contains("Not a directory"), "{file}");
    assert_eq!(env.count("count"), 2, "a miss: d is a file now");
    // A plain missing name costs nothing in the key: still a hit.
    std::fs::remove_file(env.path("d")).unwrap();
    assert_eq!(stdout(&env.run(&args)), gone);
    assert_eq!(
        env.count("count"),
        2,
        "d missing again: the first run's hit"
    );
}
