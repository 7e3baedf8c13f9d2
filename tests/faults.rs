//! Faults: unusable stores, a full disk, hostile entries, kill -9.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{Mount, TestEnv, counted, is_root, stderr, stdout};

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
fn a_full_disk_still_gives_the_whole_output_and_status() {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs; CI runs as root");
        return;
    }
    let env = TestEnv::new();
    let _full = Mount::tmpfs(&env.store, "1m", "");
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

#[test]
fn kill_9_mid_write_never_leaves_a_broken_store() {
    let env = TestEnv::new();
    let script = "echo x >> count; head -c 2000000 /dev/zero | tr '\\0' y; head -c 500000 /dev/zero > out.bin";
    let args = ["run", "-o", "out.bin", "--", "sh", "-c", script];
    for i in 0..12u64 {
        let mut child = env.jl().args(args).stdout(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(2 + i * 3));
        child.kill().unwrap();
        child.wait().unwrap();
        let verify = env.run(&["verify", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
        assert_eq!(
            report["corrupt_entries"],
            serde_json::json!([]),
            "iteration {i}"
        );
        assert_eq!(
            report["corrupt_blobs"],
            serde_json::json!([]),
            "iteration {i}"
        );
        assert_eq!(
            report["missing_blobs"],
            serde_json::json!([]),
            "iteration {i}"
        );
    }
    let out = env.run(&args);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 2_000_000);
    std::fs::remove_file(env.path("out.bin")).unwrap();
    let again = env.run(&args);
    assert_eq!(again.stdout.len(), 2_000_000);
    assert_eq!(
        std::fs::metadata(env.path("out.bin")).unwrap().len(),
        500_000
    );
}

#[test]
fn bad_options_are_usage_errors_that_touch_nothing() {
    let env = TestEnv::new();
    for args in [
        vec!["run", "--ttl", "banana", "--", "true"],
        vec!["run", "--bogus", "--", "true"],
        vec!["run", "--"],
        vec!["map", "-j", "0", "--", "true"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
    }
    assert!(!env.store.exists());
}
