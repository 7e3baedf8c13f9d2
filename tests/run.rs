//! `jl run`: hits, misses, inputs, outputs, stdin, env, ttl and failures.

use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime};

use crate::util::{
    TestEnv, assert_says, counted, counted_with, files_under, read_only_dir, stderr, stdout,
};

#[test]
fn a_hit_replays_stdout_stderr_and_exit_code_without_running() {
    let env = TestEnv::new();
    let args = counted("echo out; echo err >&2; exit 0", &[]);
    let first = env.run(&args);
    let second = env.run(&args);
    assert_eq!(env.count("count"), 1, "the command ran once");
    assert_eq!(stdout(&first), "out\n");
    assert_eq!(stderr(&first), "err\n");
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.stderr, second.stderr);
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(env.entries().len(), 1);
}

#[test]
fn a_cached_failure_replays_its_exit_code() {
    let env = TestEnv::new();
    let args = {
        let mut a = counted("echo partial; exit 3", &[]);
        a.insert(1, "--cache-failures".into());
        a
    };
    assert_eq!(env.run(&args).status.code(), Some(3));
    let again = env.run(&args);
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(stdout(&again), "partial\n");
    assert_eq!(env.count("count"), 1);
}

#[test]
fn failures_are_not_cached_by_default() {
    let env = TestEnv::new();
    let args = counted("exit 4", &[]);
    assert_eq!(env.run(&args).status.code(), Some(4));
    assert_eq!(env.run(&args).status.code(), Some(4));
    assert_eq!(env.count("count"), 2);
    assert!(env.entries().is_empty());
}

#[test]
fn changing_an_input_is_a_miss_and_touching_it_is_a_hit() {
    let env = TestEnv::new();
    let input = env.write("in.txt", "one\n");
    let args = counted("cat \"$1\"", &["in.txt"]);
    assert_eq!(stdout(&env.run(&args)), "one\n");
    // Same content, new mtime: still a hit.
    let f = std::fs::File::options().write(true).open(&input).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(stdout(&env.run(&args)), "one\n");
    assert_eq!(env.count("count"), 1);
    env.write("in.txt", "two\n");
    assert_eq!(stdout(&env.run(&args)), "two\n");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn flag_values_naming_files_are_inputs() {
    let env = TestEnv::new();
    env.write("cfg", "a");
    let args = counted("true", &["--config=cfg"]);
    env.run(&args);
    env.run(&args);
    env.write("cfg", "b");
    env.run(&args);
    assert_eq!(env.count("count"), 2);
}

#[test]
fn no_auto_inputs_ignores_argument_files() {
    let env = TestEnv::new();
    env.write("in.txt", "one");
    let mut args = counted("true", &["in.txt"]);
    args.insert(1, "--no-auto-inputs".into());
    env.run(&args);
    env.write("in.txt", "two");
    env.run(&args);
    assert_eq!(env.count("count"), 1);
}

#[test]
fn directory_inputs_are_walked() {
    let env = TestEnv::new();
    env.write("data/a.txt", "a");
    env.write("data/sub/b.txt", "b");
    let mut args = counted("true", &[]);
    args.splice(1..1, ["-i".to_string(), "data".to_string()]);
    env.run(&args);
    env.run(&args);
    assert_eq!(env.count("count"), 1);
    env.write("data/sub/b.txt", "B");
    env.run(&args);
    assert_eq!(env.count("count"), 2);
    env.write("data/sub/c.txt", "");
    env.run(&args);
    assert_eq!(env.count("count"), 3);
    // Making a file executable changes the tree too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        env.path("data/a.txt"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    env.run(&args);
    assert_eq!(env.count("count"), 4);
}

#[test]
fn a_declared_input_that_is_missing_is_part_of_the_key() {
    let env = TestEnv::new();
    let mut args = counted("true", &[]);
    args.splice(1..1, ["-i".to_string(), "later.txt".to_string()]);
    assert!(env.run(&args).status.success());
    env.run(&args);
    assert_eq!(env.count("count"), 1);
    env.write("later.txt", "now");
    env.run(&args);
    assert_eq!(env.count("count"), 2);
}

#[test]
fn outputs_are_restored_with_a_fresh_mtime() {
    let env = TestEnv::new();
    let mut args = counted("printf result > out.txt; chmod 640 out.txt", &[]);
    args.splice(1..1, ["-o".to_string(), "out.txt".to_string()]);
    env.run(&args);
    let first_mtime = std::fs::metadata(env.path("out.txt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(env.path("out.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(env.run(&args).status.success());
    assert_eq!(env.count("count"), 1);
    assert_eq!(env.read("out.txt"), "result");
    let meta = std::fs::metadata(env.path("out.txt")).unwrap();
    assert!(
        meta.modified().unwrap() > first_mtime,
        "restored file is newer"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
}

#[test]
fn output_directories_are_restored_whole() {
    let env = TestEnv::new();
    let mut args = counted(
        "mkdir -p out/deep && echo 1 > out/a && echo 2 > out/deep/b",
        &[],
    );
    args.splice(1..1, ["-o".to_string(), "out".to_string()]);
    env.run(&args);
    std::fs::remove_dir_all(env.path("out")).unwrap();
    env.run(&args);
    assert_eq!(env.count("count"), 1);
    assert_eq!(env.read("out/a"), "1\n");
    assert_eq!(env.read("out/deep/b"), "2\n");
}

#[test]
fn piped_stdin_is_part_of_the_key_and_reaches_the_command() {
    let env = TestEnv::new();
    let args = counted("tr a-z A-Z", &[]);
    assert_eq!(stdout(&env.run_with_stdin(&args, b"abc")), "ABC");
    assert_eq!(stdout(&env.run_with_stdin(&args, b"abc")), "ABC");
    assert_eq!(env.count("count"), 1);
    assert_eq!(stdout(&env.run_with_stdin(&args, b"xyz")), "XYZ");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_regular_file_as_stdin_is_hashed_and_passed_through() {
    let env = TestEnv::new();
    env.write("in.txt", "hello");
    let args = counted("cat", &[]);
    let go = || {
        let file = std::fs::File::open(env.path("in.txt")).unwrap();
        env.jl().args(&args).stdin(file).output().unwrap()
    };
    assert_eq!(stdout(&go()), "hello");
    assert_eq!(stdout(&go()), "hello");
    assert_eq!(env.count("count"), 1);
    env.write("in.txt", "world");
    assert_eq!(stdout(&go()), "world");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn no_stdin_gives_the_command_dev_null() {
    let env = TestEnv::new();
    let mut args = counted("wc -c", &[]);
    args.insert(1, "-n".into());
    let out = env.run_with_stdin(&args, b"ignored");
    assert_eq!(stdout(&out).trim(), "0");
}

#[test]
fn env_option_puts_the_variable_in_the_key() {
    let env = TestEnv::new();
    let mut args = counted("echo \"$GREETING\"", &[]);
    args.splice(1..1, ["--env".to_string(), "GREETING".to_string()]);
    let go = |v: &str| stdout(&env.jl().args(&args).env("GREETING", v).output().unwrap());
    assert_eq!(go("hi"), "hi\n");
    assert_eq!(go("hi"), "hi\n");
    assert_eq!(go("bye"), "bye\n");
    assert_eq!(env.count("count"), 2);
    // Without --env the variable is not in the key.
    let plain = counted("echo \"$GREETING\"", &[]);
    env.jl().args(&plain).env("GREETING", "a").output().unwrap();
    let out = env.jl().args(&plain).env("GREETING", "b").output().unwrap();
    assert_eq!(stdout(&out), "a\n");
}

#[test]
fn salt_changes_the_key() {
    let env = TestEnv::new();
    let salted = |s: &str| {
        let mut a = counted("true", &[]);
        a.splice(1..1, ["--salt".to_string(), s.to_string()]);
        a
    };
    env.run(&salted("v1"));
    env.run(&salted("v1"));
    env.run(&salted("v2"));
    assert_eq!(env.count("count"), 2);
}

#[test]
fn ttl_expires_entries() {
    let env = TestEnv::new();
    let mut args = counted("true", &[]);
    args.splice(1..1, ["--ttl".to_string(), "1h".to_string()]);
    env.run(&args);
    env.run(&args);
    assert_eq!(env.count("count"), 1, "within the TTL: a hit");
    // Made two hours ago (the entry's time is not part of its integrity).
    let entry = env.entries().pop().unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
    let created = json["created_ms"].as_u64().unwrap();
    json["created_ms"] = (created - 2 * 3600 * 1000).into();
    std::fs::write(&entry, json.to_string()).unwrap();
    env.run(&args);
    assert_eq!(env.count("count"), 2, "past the TTL: a miss");
}

#[test]
fn force_reruns_and_replaces() {
    let env = TestEnv::new();
    let args = counted("date +%N", &[]);
    let first = stdout(&env.run(&args));
    let mut forced = args.clone();
    forced.insert(1, "--force".into());
    let second = stdout(&env.run(&forced));
    assert_ne!(first, second);
    assert_eq!(stdout(&env.run(&args)), second);
    assert_eq!(env.count("count"), 2);
}

#[test]
fn exit_statuses_mirror_the_command() {
    let env = TestEnv::new();
    let missing = env.run(&["run", "--", "no-such-command-jl"]);
    assert_eq!(missing.status.code(), Some(127));
    assert_says(&stderr(&missing), "command not found");
    assert!(!env.store.join("actions").exists(), "store untouched");
    let dir = env.run(&["run", "--", "/"]);
    assert_eq!(dir.status.code(), Some(126));
    env.write("noexec.sh", "#!/bin/sh\necho hi\n");
    assert_eq!(
        env.run(&["run", "--", "./noexec.sh"]).status.code(),
        Some(126)
    );
    let killed = env.run(&["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(killed.status.code(), Some(128 + 15));
    let usage = env.run(&["run"]);
    assert_eq!(usage.status.code(), Some(2));
    let without_dashes = env.run(&["run", "echo", "-n", "hi"]);
    assert_eq!(stdout(&without_dashes), "hi", "`--` is optional");
}

#[test]
fn non_utf8_arguments_and_file_names_work() {
    use std::ffi::OsStr;
    let env = TestEnv::new();
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(env.path(name), "bytes").unwrap();
    let mut args: Vec<&OsStr> = ["run", "--", "sh", "-c", "echo x >> count; cat \"$1\"", "sh"]
        .iter()
        .map(OsStr::new)
        .collect();
    args.push(name);
    assert_eq!(stdout(&env.run(&args)), "bytes");
    assert_eq!(stdout(&env.run(&args)), "bytes");
    assert_eq!(env.count("count"), 1);
    std::fs::write(env.path(name), "changed").unwrap();
    assert_eq!(stdout(&env.run(&args)), "changed");
    // A non-UTF-8 output path is restored byte-exact.
    let out = OsStr::from_bytes(b"r\xe9sult");
    let mut o_args: Vec<&OsStr> = ["run", "-o"].iter().map(OsStr::new).collect();
    o_args.push(out);
    o_args.extend(
        ["--", "sh", "-c", "echo made > \"$1\"", "sh"]
            .iter()
            .map(OsStr::new),
    );
    o_args.push(out);
    env.run(&o_args);
    std::fs::remove_file(env.path(out)).unwrap();
    env.run(&o_args);
    assert_eq!(std::fs::read(env.path(out)).unwrap(), b"made\n");
}

#[test]
fn a_read_only_store_warns_and_runs_the_command() {
    let env = TestEnv::new();
    let _guard = read_only_dir(&env.store);
    let out = env.run(&counted("echo fine; exit 7", &[]));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "fine\n");
    let ok = env.run(&counted("echo fine", &[]));
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok), "fine\n");
    let warning = stderr(&ok);
    assert_eq!(warning.matches("jl: warning:").count(), 1, "{warning}");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_corrupt_blob_is_a_miss_with_correct_output_and_is_repaired() {
    let env = TestEnv::new();
    let args = counted("echo the-real-output", &[]);
    env.run(&args);
    let blobs = env.blobs();
    assert_eq!(blobs.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&blobs[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&blobs[0], "the-fake-output\n").unwrap();
    let out = env.run(&args);
    assert_eq!(stdout(&out), "the-real-output\n");
    assert_eq!(env.count("count"), 2);
    // Repaired: the next run is a hit with the right bytes.
    assert_eq!(stdout(&env.run(&args)), "the-real-output\n");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_corrupt_entry_is_a_miss_and_is_replaced() {
    let env = TestEnv::new();
    let args = counted("echo ok", &[]);
    env.run(&args);
    let entry = env.entries()[0].clone();
    std::fs::write(&entry, "{ not json").unwrap();
    assert_eq!(stdout(&env.run(&args)), "ok\n");
    assert_eq!(stdout(&env.run(&args)), "ok\n");
    assert_eq!(env.count("count"), 2);
    // Truncated half-way, and emptied: each a miss, then replaced.
    for cut in [2, 0] {
        let len = std::fs::metadata(&entry).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&entry)
            .unwrap();
        file.set_len(len.checked_div(cut).unwrap_or(0)).unwrap();
        assert_eq!(stdout(&env.run(&args)), "ok\n");
        assert_eq!(stdout(&env.run(&args)), "ok\n");
    }
    assert_eq!(env.count("count"), 4);
}

#[test]
fn thirty_two_identical_runs_started_together_execute_once() {
    let env = TestEnv::new();
    let script = "sleep 0.5; echo done; echo note >&2; exit 3";
    let args = counted_with(&["--cache-failures"], script, &[]);
    let children: Vec<_> = (0..32)
        .map(|_| {
            env.jl()
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "done\n");
        assert_eq!(stderr(&out), "note\n");
        assert_eq!(out.status.code(), Some(3));
    }
    assert_eq!(env.count("count"), 1);
}

#[test]
fn a_200_mib_stdout_passes_through_intact() {
    let env = TestEnv::new();
    let script = "yes 0123456789abcdef | head -c 209715200";
    let through = format!(
        "{} run -- sh -c '{script}' | cksum",
        env!("CARGO_BIN_EXE_jl")
    );
    let plain = std::process::Command::new("sh")
        .args(["-c", &format!("{script} | cksum")])
        .output()
        .unwrap();
    let through_jl = || {
        std::process::Command::new("sh")
            .args(["-c", &through])
            .env("JL_STORE", &env.store)
            .output()
            .unwrap()
    };
    let miss = through_jl();
    assert_eq!(stdout(&miss), stdout(&plain));
    let hit = through_jl();
    assert_eq!(stdout(&hit), stdout(&plain));
    assert!(stdout(&plain).contains("209715200"));
    // Stored (compressed: it is text), and replayed from the store.
    let stats = env.run(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(
        stats["original_bytes"].as_u64().unwrap() >= 209715200,
        "the output was stored"
    );
    assert!(
        stats["bytes"].as_u64().unwrap() < 209715200 / 10,
        "compressed"
    );
}

#[test]
fn a_remembered_directory_still_notices_every_change() {
    let env = TestEnv::new();
    env.write("tree/a.txt", "aaa\n");
    env.write("tree/sub/b.txt", "bbb\n");
    // Past the racy window (whole seconds), so jl remembers the tree.
    std::thread::sleep(Duration::from_millis(2100));
    let args = counted_with(&["-i", "tree"], "cat tree/a.txt tree/sub/*", &[]);
    assert_eq!(stdout(&env.run(&args)), "aaa\nbbb\n");
    assert_eq!(stdout(&env.run(&args)), "aaa\nbbb\n");
    assert_eq!(env.count("count"), 1, "a hit");
    assert!(
        !files_under(&env.store.join("stat")).is_empty(),
        "remembered"
    );
    env.write("tree/sub/b.txt", "BBB\n");
    assert_eq!(
        stdout(&env.run(&args)),
        "aaa\nBBB\n",
        "same size, new content"
    );
    env.write("tree/sub/c.txt", "ccc\n");
    assert_eq!(stdout(&env.run(&args)), "aaa\nBBB\nccc\n", "a new file");
    assert_eq!(env.count("count"), 3);
}

#[test]
#[cfg_attr(
    not(jl_test_root),
    ignore = "needs root to mount a tmpfs (CI runs as root)"
)]
fn a_directory_input_stays_on_its_filesystem() {
    let env = TestEnv::new();
    env.write("tree/a.txt", "aaa\n");
    let _mounted = crate::util::Mount::tmpfs(&env.path("tree/mnt"), "1m", "");
    env.write("tree/mnt/inside.txt", "one\n");
    let args = counted_with(&["-i", "tree"], "cat tree/a.txt", &[]);
    assert_eq!(stdout(&env.run(&args)), "aaa\n");
    env.write("tree/mnt/inside.txt", "two\n");
    assert_eq!(stdout(&env.run(&args)), "aaa\n");
    assert_eq!(env.count("count"), 1, "the mount's content is not an input");
    env.write("tree/a.txt", "AAA\n");
    assert_eq!(stdout(&env.run(&args)), "AAA\n");
    assert_eq!(env.count("count"), 2, "the tree's own files still are");
}
