//! Faults: unusable stores, a full disk, hostile entries, kill -9.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{Mount, TestEnv, assert_says, counted, spawn_fed, stderr, stdout};

#[test]
fn a_store_that_is_a_regular_file_warns_once_and_runs() {
    let env = TestEnv::new();
    std::fs::write(&env.store, "not a directory").unwrap();
    let out = env.run(&counted("echo ok; exit 5", &[]));
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(stdout(&out), "ok\n");
    assert_eq!(
        stderr(&out).matches("jl: warning:").count(),
        1,
        "{}",
        stderr(&out)
    );
}

#[test]
#[cfg_attr(
    not(jl_test_root),
    ignore = "needs root to mount a small tmpfs (CI runs as root)"
)]
fn a_full_disk_still_gives_the_whole_output_and_status() {
    let env = TestEnv::new();
    let _full = Mount::tmpfs(&env.store, "1m", "mode=0700");
    let script = "head -c 3000000 /dev/zero | tr '\\0' x; echo";
    let out = env.run(&["run", "--", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), 3_000_001);
    assert!(stderr(&out).contains("jl: warning:"), "{}", stderr(&out));
    assert!(env.entries().is_empty(), "no partial entry");
    // The store still works for what fits.
    assert_eq!(stdout(&env.run(&["run", "--", "echo", "small"])), "small\n");
    assert_eq!(env.entries().len(), 1);
}

#[test]
fn a_hostile_entry_can_never_write_outside_declared_outputs() {
    let env = TestEnv::new();
    let args = [
        "run",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo x >> count; echo safe > out.txt",
    ];
    env.run(&args);
    // Rewrites the stored entry so it claims an output at `path`.
    let claim = |path: &str| {
        let entry_path = &env.entries()[0];
        let mut entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry_path).unwrap()).unwrap();
        entry["outputs"][0]["path"] = path.into();
        std::fs::write(entry_path, serde_json::to_vec(&entry).unwrap()).unwrap();
    };
    claim("../escaped.txt");
    let out = env.run(&args);
    assert!(out.status.success());
    assert!(!env.root().parent().unwrap().join("escaped.txt").exists());
    assert_eq!(env.count("count"), 2, "treated as a miss");
    // An absolute path and an undeclared name are refused the same way.
    for bad in ["/tmp/jl-hostile-output", "other.txt"] {
        claim(bad);
        env.run(&args);
        assert!(
            !std::path::Path::new(bad).exists() && !env.path(bad).exists(),
            "{bad}"
        );
    }
    assert_eq!(env.count("count"), 4);
}

#[test]
fn an_entry_pointing_at_a_missing_blob_is_a_miss() {
    let env = TestEnv::new();
    let args = counted("echo content", &[]);
    env.run(&args);
    for blob in env.blobs() {
        std::fs::remove_file(blob).unwrap();
    }
    assert_eq!(stdout(&env.run(&args)), "content\n");
    assert_eq!(env.count("count"), 2);
    assert_eq!(stdout(&env.run(&args)), "content\n");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_blob_replaced_by_a_symlink_is_refused() {
    let env = TestEnv::new();
    env.write("secret", "secret\n");
    let args = counted("echo public", &[]);
    env.run(&args);
    let blob = &env.blobs()[0];
    std::fs::remove_file(blob).unwrap();
    std::os::unix::fs::symlink(env.path("secret"), blob).unwrap();
    assert_eq!(stdout(&env.run(&args)), "public\n");
    assert_eq!(env.count("count"), 2);
}

/// `jl verify --json` finds nothing wrong.
fn assert_store_clean(env: &TestEnv, when: &str) {
    let verify = env.run(&["verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    for problem in ["corrupt_entries", "corrupt_blobs", "missing_blobs"] {
        assert_eq!(report[problem], serde_json::json!([]), "{problem} {when}");
    }
}

#[test]
fn kill_9_at_50_moments_of_a_miss_never_leaves_a_broken_store() {
    let env = TestEnv::new();
    let script = "head -c 2000000 /dev/zero | tr '\\0' y; head -c 500000 /dev/zero > out.bin";
    let args = ["run", "-o", "out.bin", "--", "sh", "-c", script];
    // Kill moments spread over the whole miss (about 40 ms here), in a
    // scrambled order so each starts from a differently damaged store.
    for i in 0..50u64 {
        let delay = Duration::from_micros((i * 7919) % 50 * 1000 + (i * 104_729) % 1000);
        let mut child = env.jl().args(args).stdout(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_store_clean(&env, &format!("after a kill at {delay:?}"));
        if i % 10 == 9 {
            // Sometimes let a run commit, so later kills hit a store that
            // has the entry (a hit) or is replacing it (--force).
            let out = env.run(&args);
            assert_eq!(out.stdout.len(), 2_000_000);
            let _ = std::fs::remove_file(env.path("out.bin"));
            let mut force = env.jl();
            force.args(["run", "--force"]).args(&args[1..]);
            let mut child = force.stdout(Stdio::null()).spawn().unwrap();
            std::thread::sleep(delay);
            child.kill().unwrap();
            child.wait().unwrap();
            assert_store_clean(&env, "after a kill of --force");
        }
    }
    let out = env.run(&args);
    assert!(out.status.success());
    assert_eq!(out.stdout, vec![b'y'; 2_000_000]);
    std::fs::remove_file(env.path("out.bin")).unwrap();
    let again = env.run(&args);
    assert_eq!(again.stdout, vec![b'y'; 2_000_000]);
    assert_eq!(
        std::fs::read(env.path("out.bin")).unwrap(),
        vec![0; 500_000]
    );
}

#[test]
#[cfg_attr(
    not(jl_test_root),
    ignore = "needs root to mount a small tmpfs (CI runs as root)"
)]
fn a_full_disk_still_gives_every_map_job_its_whole_output() {
    let env = TestEnv::new();
    let _full = Mount::tmpfs(&env.store, "1m", "mode=0700");
    let script = "head -c 600000 /dev/zero | tr '\\0' x; echo \" $1\"; echo err$1 >&2; exit $1";
    let mut map = env.jl();
    // Raw blobs: compressed, 600 KB of x would fit in the 1 MB store.
    map.env("JL_COMPRESS", "0");
    map.args(["map", "-q", "-j2", "--", "sh", "-c", script, "sh"]);
    let child = spawn_fed(&mut map, b"0\n1\n0\n0\n");
    let out = child.wait_with_output().unwrap();
    let x = "x".repeat(600_000);
    assert_eq!(stdout(&out), format!("{x} 0\n{x} 1\n{x} 0\n{x} 0\n"));
    assert_eq!(out.status.code(), Some(1), "one job failed");
    let err = stderr(&out);
    assert_eq!(err.matches("err0").count(), 3, "{err}");
    assert!(
        err.contains("jl: warning:") && err.contains("No space left"),
        "{err}"
    );
    assert_store_clean(&env, "after a full disk");
}

#[test]
#[cfg_attr(
    not(jl_test_root),
    ignore = "needs root to run jl as another user (CI runs as root)"
)]
fn a_store_owned_by_someone_else_warns_once_and_runs() {
    let env = TestEnv::new();
    env.run(&["run", "--", "true"]);
    assert!(env.store.join("VERSION").exists(), "root made the store");
    let out = env
        .jl_as_nobody()
        .args(["run", "--", "sh", "-c", "echo ran; exit 4"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "ran\n");
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert_eq!(err.matches("jl: warning:").count(), 1, "{err}");
    assert!(err.contains("owned by uid 0"), "{err}");
}

#[test]
fn an_entry_claiming_a_huge_blob_is_a_miss() {
    let env = TestEnv::new();
    let args = counted("echo content", &[]);
    env.run(&args);
    let entry_path = &env.entries()[0];
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(entry_path).unwrap()).unwrap();
    entry["stdout"]["size"] = (1u64 << 40).into();
    std::fs::write(entry_path, serde_json::to_vec(&entry).unwrap()).unwrap();
    let out = env.run(&args);
    assert_eq!(stdout(&out), "content\n");
    assert!(out.status.success());
    assert_eq!(env.count("count"), 2, "a miss, not a replay");
    assert_eq!(stdout(&env.run(&args)), "content\n");
    assert_eq!(env.count("count"), 2, "and repaired");
}

#[test]
fn bad_options_are_usage_errors_that_touch_nothing() {
    let env = TestEnv::new();
    for args in [
        vec!["run", "--ttl", "banana", "--", "true"],
        vec!["run", "--bogus", "--", "true"],
        vec!["run", "--"],
        vec!["map", "-j", "0", "--", "true"],
        vec!["map", "--shard", "3/2", "--", "true"],
        vec!["gc", "--max-size", "lots"],
        vec!["show"],
        vec![],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
    }
    assert!(!env.store.exists());
}

#[test]
fn bare_jl_prints_short_usage() {
    let env = TestEnv::new();
    let out = env.run::<&str>(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("Usage: jl run"), "{err}");
    assert!(err.lines().count() <= 5, "short: {err}");
}

#[test]
fn an_output_into_a_missing_directory_is_the_commands_failure() {
    let env = TestEnv::new();
    let out = env.run(&[
        "run",
        "-o",
        "nodir/out.txt",
        "--",
        "sh",
        "-c",
        "echo x > nodir/out.txt",
    ]);
    assert_eq!(out.status.code(), Some(2), "sh's own status");
    assert!(stderr(&out).contains("nodir/out.txt"), "{}", stderr(&out));
    assert!(env.entries().is_empty(), "a failure is not cached");
}

#[test]
fn a_nul_byte_in_a_line_item_fails_that_job_only() {
    let env = TestEnv::new();
    let out = env.run_with_stdin(&["map", "-q", "--", "echo"], b"a\0b\n\nc\n");
    assert_eq!(stdout(&out), "c\n");
    assert_eq!(out.status.code(), Some(1), "one failed job");
    assert!(stderr(&out).contains("NUL byte"), "{}", stderr(&out));
    assert!(stderr(&out).contains("use -0"), "{}", stderr(&out));
}

#[test]
fn a_million_input_lines_stream_through_a_shard() {
    let env = TestEnv::new();
    let lines: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    let out = env.run_with_stdin(
        &["map", "-q", "--shard", "7/1000", "--", "echo"],
        lines.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: String = (0..1000).map(|k| format!("{}\n", k * 1000 + 8)).collect();
    assert!(
        stdout(&out) == expected,
        "every 1000th item from the 8th, in order"
    );
    assert_eq!(env.entries().len(), 1000);
    assert_store_clean(&env, "after a million lines");
}

#[test]
fn error_messages_say_what_to_do() {
    let env = TestEnv::new();
    for (args, hint) in [
        (vec!["run", "--ttl", "banana", "--", "true"], "try 90s"),
        (vec!["gc", "--max-size", "lots"], "try 500MB"),
        (vec!["map", "-j", "0", "--", "true"], "try -j 1"),
        (
            vec!["map", "--shard", "3/2", "--", "true"],
            "e.g. --shard 0/4",
        ),
        (vec!["show", "zzz"], "see `jl ls`"),
        (vec!["run", "--stale", "1h", "--", "true"], "--ttl"),
        (vec!["run", "--", "no-such-command-jl"], "command not found"),
    ] {
        let err = stderr(&env.run(&args));
        assert!(err.contains(hint), "{args:?}: {err}");
    }
    let out = env
        .jl()
        .args(["run", "--", "true"])
        .env("JL_MAX_SIZE", "lots")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_says(&stderr(&out), "JL_MAX_SIZE=lots is not a size");
}

#[test]
fn gc_removes_the_temp_files_of_a_jl_killed_with_sigkill_at_once() {
    let env = TestEnv::new();
    let tmp_files = || -> Vec<std::path::PathBuf> {
        let read = std::fs::read_dir(env.store.join("tmp"))
            .into_iter()
            .flatten();
        let files = read.flatten().filter(|f| f.file_type().unwrap().is_file());
        files.map(|f| f.path()).collect()
    };
    let script = "head -c 3000000 /dev/zero | tr '\\0' y; sleep 5";
    let spawn = || {
        env.jl()
            .args(["run", "--", "sh", "-c", script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_for_temp = || {
        let started = std::time::Instant::now();
        while tmp_files().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(20), "no temp file");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // A live writer's temp file stays, however often gc runs.
    let mut live = spawn();
    wait_for_temp();
    let out = env.run(&["gc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tmp_files().len(), 1, "a running jl's temp file is kept");
    live.kill().unwrap();
    live.wait().unwrap();
    // Its writer killed with SIGKILL: garbage at the next gc, not in a day.
    assert_eq!(tmp_files().len(), 1, "SIGKILL left the temp file");
    let report: serde_json::Value =
        serde_json::from_slice(&env.run(&["gc", "--json"]).stdout).unwrap();
    assert_eq!(
        report["tmp_removed"], 2,
        "its temp file and its lock file: {report}"
    );
    assert_eq!(tmp_files(), Vec::<std::path::PathBuf>::new());
}
