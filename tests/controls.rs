//! The controls users of bkt and joblib reach for: --stale, --warm and
//! --ignore-arg.

use std::time::{Duration, Instant};

use crate::util::{TestEnv, counted, counted_with, stdout};

/// Polls until `done` holds; a background refresh that never finishes
/// fails the test instead of hanging it.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rows in the JL_LOG file (one per run, the background ones included).
fn log_rows(env: &TestEnv) -> usize {
    std::fs::read_to_string(env.path("jl.log"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn stale_replays_at_once_and_refreshes_in_the_background() {
    let env = TestEnv::new();
    // Each run prints how many times it ran; the refresh waits for `go`.
    let script = "echo x >> count; if [ -e refreshing ]; then while [ ! -e go ]; do sleep 0.01; done; fi; wc -l < count";
    let run = || {
        env.jl()
            .args([
                "run", "--ttl", "2s", "--stale", "1h", "--", "sh", "-c", script,
            ])
            .env("JL_LOG", env.path("jl.log"))
            .output()
            .unwrap()
    };
    assert_eq!(stdout(&run()).trim(), "1");
    std::thread::sleep(Duration::from_millis(2100));
    env.write("refreshing", "");
    // Stale: the old result at once, though the refresh is blocked on `go`.
    assert_eq!(stdout(&run()).trim(), "1");
    assert_eq!(stdout(&run()).trim(), "1", "a second stale replay");
    eventually("the refresh started", || env.count("count") == 2);
    env.write("go", "");
    // Two stale replays started two refreshes; the lock lets one run.
    eventually("both refreshes ended", || log_rows(&env) == 5);
    assert_eq!(
        env.count("count"),
        2,
        "the command ran once more, not twice"
    );
    assert_eq!(stdout(&run()).trim(), "2", "the refreshed result");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn past_the_stale_window_is_a_plain_miss() {
    let env = TestEnv::new();
    let args = counted_with(
        &["--ttl", "1s", "--stale", "1s"],
        "echo $(wc -l < count)",
        &[],
    );
    assert_eq!(stdout(&env.run(&args)), "1\n");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(stdout(&env.run(&args)), "2\n", "ran in the foreground");
}

#[test]
fn stale_needs_a_ttl() {
    let env = TestEnv::new();
    let out = env.run(&["run", "--stale", "1h", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn warm_fills_the_cache_in_the_background_and_prints_nothing() {
    let env = TestEnv::new();
    let args = counted("echo warmed", &[]);
    let warm = counted_with(&["--warm"], "echo warmed", &[]);
    let out = env.run(&warm);
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    eventually("the entry is stored", || env.entries().len() == 1);
    assert_eq!(stdout(&env.run(&args)), "warmed\n");
    assert_eq!(env.count("count"), 1, "the plain run was a hit");
}

#[test]
fn ignored_arguments_are_passed_but_not_keyed() {
    let env = TestEnv::new();
    let script = "echo x >> count; echo \"$@\"";
    let run = |threads: &str| {
        let out = env.run(&[
            "run",
            "--ignore-arg",
            "--threads=*",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            "data",
            threads,
        ]);
        stdout(&out)
    };
    assert_eq!(run("--threads=4"), "data --threads=4\n");
    assert_eq!(run("--threads=8"), "data --threads=4\n", "a hit, replayed");
    assert_eq!(env.count("count"), 1);
    let out = env.run(&["run", "--", "sh", "-c", script, "sh", "data", "--threads=8"]);
    assert_eq!(
        stdout(&out),
        "data --threads=8\n",
        "without the flag: a miss"
    );
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_refresh_started_after_another_one_finished_runs_nothing() {
    let env = TestEnv::new();
    let now_ms = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since.unwrap().as_millis().to_string()
    };
    let args = counted_with(&["--ttl", "1h"], "echo run", &[]);
    let asked = now_ms();
    env.run(&args);
    // What a late background refresh sees: an entry newer than its request.
    let late = env
        .jl()
        .args(&args)
        .env("JL_REFRESH", &asked)
        .output()
        .unwrap();
    assert!(late.status.success());
    assert_eq!(env.count("count"), 1, "already refreshed: not run again");
    std::thread::sleep(Duration::from_millis(5));
    let due = env
        .jl()
        .args(&args)
        .env("JL_REFRESH", now_ms())
        .output()
        .unwrap();
    assert!(due.status.success());
    assert_eq!(env.count("count"), 2, "asked for after the entry: runs");
}
