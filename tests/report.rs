//! `jl report`: a joblog becomes one self-contained HTML page, checked as
//! markup and, where Chromium is installed (CI installs it), as a browser
//! renders it.

use std::path::Path;
use std::process::Command;

use crate::util::{TestEnv, assert_says, skip, stderr};

fn count(page: &str, what: &str) -> usize {
    page.matches(what).count()
}

/// Two maps into one joblog: 12 jobs (one fails), then 16 (11 hits, the
/// failure again, 4 new).
fn two_maps(env: &TestEnv) {
    let map = [
        "map",
        "-q",
        "-j2",
        "--joblog",
        "run.log",
        "--",
        "sh",
        "-c",
        "sleep 0.0$(($1 % 5)); [ $1 != 5 ]",
        "sh",
    ];
    let items = |n: u32| (1..=n).map(|i| format!("{i}\n")).collect::<String>();
    env.run_with_stdin(&map, items(12).as_bytes());
    env.run_with_stdin(&map, items(16).as_bytes());
}

fn report(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["report"];
    all.extend(args);
    all.extend(["-o", "report.html"]);
    let out = env.run(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(env.path("report.html")).unwrap()
}

#[test]
fn a_maps_joblog_becomes_a_page_with_a_bar_per_job() {
    let env = TestEnv::new();
    two_maps(&env);
    let page = report(&env, &["--joblog", "run.log"]);
    assert_eq!(count(&page, "<rect class=\"bar "), 28, "one bar per row");
    assert_eq!(count(&page, "<rect class=\"bar hit\""), 11);
    assert_eq!(count(&page, "<rect class=\"bar fail\""), 2);
    let lanes = count(&page, "<rect class=\"lane\"");
    assert!(
        (2..=4).contains(&lanes),
        "-j2: two workers, and hits between: {lanes}"
    );
    assert!(page.contains("<td id=\"jobs\">28</td>") && page.contains("<td id=\"hits\">11</td>"));
    // Each lane is labelled with its worker, and the time axis with its span.
    assert_eq!(count(&page, "<text class=\"label\" x=\"36\""), lanes);
    assert!(page.contains(">0 s</text>"));
    assert_eq!(count(&page, "<tr class="), 20, "the 20 slowest jobs");
    assert!(page.contains("id=\"histogram\"") && page.contains("id=\"hitrate\""));
    // Self-contained: nothing is fetched.
    for fetch in ["http://", "https://", " src=", "<link"] {
        assert!(!page.contains(fetch), "the page fetches {fetch}");
    }
    // A command is shown as text, never as markup.
    assert!(page.contains("[ $1 != 5 ]"));
}

#[test]
fn a_jl_log_of_concurrent_processes_is_drawn_in_lanes() {
    let env = TestEnv::new();
    let children: Vec<_> = (0..6)
        .map(|n| {
            env.jl()
                .args(["run", "--log", "all.log", "--", "sh", "-c"])
                .arg(format!("sleep 0.3; echo {n}"))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let page = report(&env, &["--log", "all.log"]);
    assert_eq!(count(&page, "<rect class=\"bar ran\""), 6);
    assert!(
        count(&page, "<rect class=\"lane\"") >= 2,
        "they ran at once"
    );
}

#[test]
fn a_huge_joblog_is_drawn_pixel_by_pixel() {
    let env = TestEnv::new();
    let mut log = String::from(
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tCached\n",
    );
    for n in 0..100_000u64 {
        let start = 1_000_000.0 + (n / 8) as f64 * 0.01;
        let exit = u8::from(n % 997 == 0);
        let cached = u8::from(n % 3 == 0);
        log.push_str(&format!(
            "{n}\t:\t{start:.3}\t0.010\t0\t0\t{exit}\t0\tjob {n}\t{cached}\n"
        ));
    }
    std::fs::write(env.path("big.log"), log).unwrap();
    let page = report(&env, &["--joblog", "big.log"]);
    let lanes = count(&page, "<rect class=\"lane\"");
    let bars = count(&page, "<rect class=\"bar ");
    assert_eq!(lanes, 8);
    assert!(
        bars > 0 && bars <= lanes * 1000,
        "{bars} bars for {lanes} lanes"
    );
    assert!(
        page.len() < 2 << 20,
        "the page stays small: {} bytes",
        page.len()
    );
    assert!(page.contains("100000 jobs: each bar"));
    assert!(page.contains("<td id=\"jobs\">100000</td>"));
}

#[test]
fn the_page_renders_in_a_browser_without_errors() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        skip("Chromium is not installed (.ci/run installs it)");
        return;
    };
    let env = TestEnv::new();
    two_maps(&env);
    report(&env, &["--joblog", "run.log"]);
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", env.path("report.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-bars=\"28\""),
        "the page's script ran and counted 28 bars: {}",
        dom.lines()
            .find(|l| l.contains("<body"))
            .unwrap_or("no body")
    );
    let messages = stderr(&out);
    let console: Vec<&str> = messages
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
}

#[test]
fn a_file_that_is_no_joblog_is_a_clear_error() {
    let env = TestEnv::new();
    env.write("notes.txt", "just some text\n");
    let out = env.run(&["report", "--joblog", "notes.txt"]);
    assert_eq!(out.status.code(), Some(2), "the wrong file given");
    assert_says(&stderr(&out), "notes.txt holds no joblog rows");
    let missing = env.run(&["report", "--joblog", "nope.log"]);
    assert_says(&stderr(&missing), "cannot read nope.log");
    assert_eq!(env.run(&["report"]).status.code(), Some(2), "which log?");
}
