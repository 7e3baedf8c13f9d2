//! `jl map`: placeholders, ordering, failures, halting, resuming, joblog,
//! progress and scale.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{TestEnv, spawn_fed, stderr, stdout};

/// `jl map ARGS...` with `items` on stdin.
fn map(env: &TestEnv, args: &[&str], items: &str) -> std::process::Output {
    let mut full = vec!["map"];
    full.extend_from_slice(args);
    env.run_with_stdin(&full, items.as_bytes())
}

#[test]
fn placeholders_expand_like_gnu_parallel() {
    let env = TestEnv::new();
    let items = "dir/a.b.jpg\nno ext\n/top.txt\nsp ace/f.tar.gz\n";
    let out = map(
        &env,
        &[
            "-j2",
            "-q",
            "--",
            "printf",
            "%s|%s|%s|%s|%s|%s\\n",
            "{}",
            "{.}",
            "{/}",
            "{//}",
            "{/.}",
            "{#}",
        ],
        items,
    );
    assert_eq!(
        stdout(&out),
        "dir/a.b.jpg|dir/a.b|a.b.jpg|dir|a.b|1\n\
         no ext|no ext|no ext|.|no ext|2\n\
         /top.txt|/top|top.txt|/|top|3\n\
         sp ace/f.tar.gz|sp ace/f.tar|f.tar.gz|sp ace|f.tar|4\n"
    );
}

#[test]
fn without_a_placeholder_the_item_is_appended() {
    let env = TestEnv::new();
    let out = map(&env, &["-q", "--", "echo", "item:"], "x\ny\n");
    assert_eq!(stdout(&out), "item: x\nitem: y\n");
}

#[test]
fn output_keeps_input_order_and_never_interleaves() {
    let env = TestEnv::new();
    let items: String = (1..=12).map(|i| format!("{i}\n")).collect();
    let script = "sleep 0.$(( ($1 * 7) % 5 )); echo start $1; echo end $1";
    let out = map(&env, &["-j4", "-q", "--", "sh", "-c", script, "sh"], &items);
    let want: String = (1..=12).map(|i| format!("start {i}\nend {i}\n")).collect();
    assert_eq!(stdout(&out), want);
}

#[test]
fn unordered_prints_as_jobs_finish() {
    let env = TestEnv::new();
    let out = map(
        &env,
        &[
            "-j2",
            "-q",
            "--unordered",
            "--",
            "sh",
            "-c",
            "sleep $1; echo $1",
            "sh",
        ],
        "1\n0\n",
    );
    assert_eq!(stdout(&out), "0\n1\n");
}

#[test]
fn the_exit_status_counts_failed_jobs_and_each_is_reported() {
    let env = TestEnv::new();
    let out = map(
        &env,
        &["-q", "--", "sh", "-c", "exit $(( $1 % 2 ))", "sh"],
        "1\n2\n3\n4\n5\n",
    );
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("jl: job 3 failed (exit code 1): 3"), "{err}");
    assert_eq!(err.matches("failed (exit code").count(), 3);
}

#[test]
fn the_exit_status_is_capped_at_101() {
    let env = TestEnv::new();
    let items: String = (1..=110).map(|i| format!("{i}\n")).collect();
    let out = map(&env, &["-q", "--", "false"], &items);
    assert_eq!(out.status.code(), Some(101));
}

#[test]
fn halt_now_kills_running_jobs() {
    let env = TestEnv::new();
    let script = "if [ $1 = fail ]; then sleep 0.3; exit 1; fi; sleep 5; echo finished >> marker";
    let out = map(
        &env,
        &["-j2", "-q", "--halt", "now", "--", "sh", "-c", script, "sh"],
        "slow\nfail\nslow2\n",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(!env.path("marker").exists(), "the running job was killed");
    assert!(stderr(&out).contains("failed"), "{}", stderr(&out));
}

#[test]
fn halt_soon_lets_running_jobs_finish_and_starts_nothing_new() {
    let env = TestEnv::new();
    let script = "if [ $1 = fail ]; then exit 1; fi; sleep 0.5; echo $1 >> marker";
    map(
        &env,
        &[
            "-j2", "-q", "--halt", "soon", "--", "sh", "-c", script, "sh",
        ],
        "a\nfail\nb\nc\nd\n",
    );
    let marker = env.read("marker");
    assert!(marker.contains("a\n"), "the running job finished: {marker}");
    assert!(!marker.contains('d'), "nothing new started: {marker}");
}

#[test]
fn a_second_identical_map_runs_nothing_and_prints_the_same_bytes() {
    let env = TestEnv::new();
    let items: String = (1..=20).map(|i| format!("{i}\n")).collect();
    let args = [
        "-j3",
        "-q",
        "--",
        "sh",
        "-c",
        "echo x >> count; echo out $1; echo err $1 >&2",
        "sh",
    ];
    let first = map(&env, &args, &items);
    let second = map(&env, &args, &items);
    assert_eq!(env.count("count"), 20);
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.stderr, second.stderr);
    assert!(stdout(&second).starts_with("out 1\nout 2\n"));
}

#[test]
fn an_interrupted_map_resumes_where_it_stopped() {
    let env = TestEnv::new();
    let items: String = (1..=6).map(|i| format!("{i}\n")).collect();
    let args = [
        "map",
        "-j2",
        "-q",
        "--",
        "sh",
        "-c",
        "sleep 0.4; echo $1 >> count; echo $1",
        "sh",
    ];
    let child = spawn_fed(env.jl().args(args), items.as_bytes());
    // Interrupted once a job's result is stored: the others take 0.4 s each.
    let started = std::time::Instant::now();
    while env.entries().is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let ran_first = env.count("count");
    let stored = env.entries().len();
    assert!(
        (1..6).contains(&stored),
        "some but not all jobs stored: {stored}"
    );
    let again = env.run_with_stdin(&args, items.as_bytes());
    assert!(again.status.success());
    assert_eq!(stdout(&again), items);
    // Interrupted jobs committed nothing: exactly the jobs not stored run
    // again.
    let lines = env.read("count");
    let mut seen: Vec<&str> = lines.lines().collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);
    assert_eq!(
        env.count("count"),
        ran_first + (6 - stored),
        "stored jobs were not re-run, the others were"
    );
}

#[test]
fn the_joblog_has_one_row_per_job() {
    let env = TestEnv::new();
    let log = env.path("jobs.tsv");
    let log_s = log.to_str().unwrap();
    let args = [
        "-q",
        "--joblog",
        log_s,
        "--",
        "sh",
        "-c",
        "echo hi; exit $1",
        "sh",
    ];
    map(&env, &args, "0\n3\n0\n");
    map(&env, &args, "0\n");
    let text = env.read("jobs.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tCached"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(row.len(), 10);
        row[2].parse::<f64>().unwrap();
        row[3].parse::<f64>().unwrap();
        assert_eq!(row[5], "3", "Receive is the stdout size");
    }
    assert_eq!(rows[1][6], "3");
    assert_eq!(rows[1][9], "0");
    assert_eq!(rows[3][9], "1", "the last run was cached");
    assert!(rows[0][8].starts_with("sh -c"));
}

#[test]
fn null_separated_items_may_hold_newlines_and_spaces() {
    let env = TestEnv::new();
    let out = map(&env, &["-0", "-q", "--", "printf", "[%s]"], "a b\0c\nd\0");
    assert_eq!(stdout(&out), "[a b][c\nd]");
}

#[test]
fn empty_lines_are_skipped() {
    let env = TestEnv::new();
    let out = map(&env, &["-q", "--", "echo"], "a\n\n\nb\n");
    assert_eq!(stdout(&out), "a\nb\n");
}

#[test]
fn item_lists_come_from_a_file_too() {
    let env = TestEnv::new();
    env.write("list", "x\ny\n");
    let out = env.run(&["map", "-q", "-a", "list", "--", "echo"]);
    assert_eq!(stdout(&out), "x\ny\n");
}

#[test]
fn outputs_with_placeholders_are_restored_per_job() {
    let env = TestEnv::new();
    env.write("a.in", "A");
    env.write("b.in", "B");
    let args = [
        "-q",
        "-o",
        "{.}.out",
        "--",
        "sh",
        "-c",
        "echo x >> count; tr A-Z a-z < $1 > ${1%.in}.out",
        "sh",
    ];
    map(&env, &args, "a.in\nb.in\n");
    std::fs::remove_file(env.path("a.out")).unwrap();
    std::fs::remove_file(env.path("b.out")).unwrap();
    map(&env, &args, "a.in\nb.in\n");
    assert_eq!(env.count("count"), 2);
    assert_eq!(env.read("a.out"), "a");
    assert_eq!(env.read("b.out"), "b");
}

#[test]
fn progress_lines_appear_when_stderr_is_not_a_terminal() {
    let env = TestEnv::new();
    let out = map(
        &env,
        &["-j2", "--", "sh", "-c", "sleep 0.6", "sh"],
        "1\n2\n3\n4\n",
    );
    let err = stderr(&out);
    assert!(err.contains("[jl map -j2] Done "), "{err}");
    assert!(
        err.contains("Done 4/4 | cached 0 | failed 0 | elapsed "),
        "{err}"
    );
    assert!(
        err.lines().count() >= 2,
        "an interim line and the summary: {err}"
    );
    let quiet = map(&env, &["-q", "--", "true"], "1\n");
    assert_eq!(stderr(&quiet), "");
}

#[test]
fn the_progress_bar_renders_on_a_terminal() {
    let env = TestEnv::new();
    env.write("items", "1\n2\n3\n");
    let inner = format!(
        "{} map -j2 -a items -- sh -c 'sleep 0.3' sh",
        env!("CARGO_BIN_EXE_jl")
    );
    // `script` gives jl a pseudo-terminal for stdout and stderr.
    let out = std::process::Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .current_dir(env.root())
        .env("JL_STORE", &env.store)
        .env("COLUMNS", "100")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    // Only the bar draws these: its clock, its cells and its rate (the
    // summary line after it has none of them).
    assert!(screen.contains("[00:00:0"), "the bar's clock: {screen}");
    assert!(screen.contains("/3 | cached 0 | failed 0 | "), "{screen}");
    assert!(screen.contains("/s | eta"), "the bar's rate: {screen}");
    assert!(
        screen.contains("[jl map -j2] Done 3/3"),
        "the summary after it: {screen}"
    );
}

#[test]
fn dry_run_prints_commands_and_what_is_cached() {
    let env = TestEnv::new();
    map(&env, &["-q", "--", "echo"], "a\n");
    let out = map(
        &env,
        &["--dry-run", "--", "sh", "-c", "echo x >> count", "sh"],
        "a\n",
    );
    assert_eq!(env.count("count"), 0);
    assert_eq!(stdout(&out), "sh -c 'echo x >> count' sh a\n");
    let out = map(&env, &["--dry-run", "--", "echo"], "a\nb\n");
    assert_eq!(stdout(&out), "echo a  # cached\necho b\n");
}

#[test]
fn retries_rerun_failing_jobs() {
    let env = TestEnv::new();
    let script = "echo x >> count; [ $(wc -l < count) -ge 3 ]";
    let out = map(
        &env,
        &["-q", "--retries", "3", "--", "sh", "-c", script, "sh"],
        "a\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("count"), 3);
}

#[test]
fn timeout_kills_slow_jobs() {
    let env = TestEnv::new();
    let out = map(
        &env,
        &[
            "-q",
            "--timeout",
            "300ms",
            "--",
            "sh",
            "-c",
            "sleep 5; echo late",
            "sh",
        ],
        "a\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn shards_split_a_map_between_machines() {
    let env = TestEnv::new();
    let items = "a\nb\nc\nd\ne\n";
    let s0 = map(
        &env,
        &["-q", "--shard", "0/2", "--", "echo", "{#}", "{}"],
        items,
    );
    let s1 = map(
        &env,
        &["-q", "--shard", "1/2", "--", "echo", "{#}", "{}"],
        items,
    );
    assert_eq!(stdout(&s0), "1 a\n3 c\n5 e\n");
    assert_eq!(stdout(&s1), "2 b\n4 d\n");
    let all = map(&env, &["--", "echo", "{#}", "{}"], items);
    assert!(stderr(&all).contains("cached 5"), "{}", stderr(&all));
}

#[test]
fn no_cache_writes_nothing_to_the_store() {
    let env = TestEnv::new();
    let out = map(&env, &["-q", "--no-cache", "--", "echo"], "a\nb\n");
    assert_eq!(stdout(&out), "a\nb\n");
    assert!(env.entries().is_empty());
}

#[test]
fn bad_job_counts_are_usage_errors() {
    let env = TestEnv::new();
    let out = map(&env, &["-j", "0", "--", "true"], "a\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("-j 0"), "{}", stderr(&out));
}

#[test]
fn a_hundred_thousand_items_stream_through() {
    let env = TestEnv::new();
    // Every item maps to the same command, so one job runs and the rest
    // are hits: this exercises streaming and replay at scale.
    let items: String = (0..100_000).map(|i| format!("same/{i}\n")).collect();
    let out = map(&env, &["-j2", "-q", "--", "echo", "{//}"], &items);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 100_000 * 5);
}
