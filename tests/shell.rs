//! jl inside make and shell pipelines: the README's examples, run as they
//! are written, and make's jobserver bounding `jl map`.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{TestEnv, assert_says, stderr, stdout};

/// `make ARGS...` in the test dir, with `JL` pointing at the built binary.
fn make(env: &TestEnv, args: &[&str]) -> Output {
    let out = Command::new("make")
        .current_dir(env.root())
        .arg("-s")
        .args(args)
        .arg(format!("JL={}", env!("CARGO_BIN_EXE_jl")))
        .env("JL_STORE", &env.store)
        .env("JL_LOG", env.path("jl.log"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .expect("make runs (install make)");
    assert!(out.status.success(), "make failed: {}", stderr(&out));
    out
}

/// The `Cached` column of each row of a joblog-format log.
fn cached_column(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .skip(1)
        .map(|row| row.rsplit('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn makefile_example_builds_then_replays_every_step() {
    let env = TestEnv::new();
    let makefile = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/make/Makefile");
    std::fs::copy(makefile, env.path("Makefile")).unwrap();
    env.write("texts/a.txt", "one two three\n");
    env.write("texts/b.txt", "one two three four five\n");
    env.write("texts/c.txt", "one\n");
    env.write("texts/d.txt", "one two\n");

    make(&env, &["-j2"]);
    let counts = "texts/a.txt 3\ntexts/b.txt 5\ntexts/c.txt 1\ntexts/d.txt 2\n";
    let top = "texts/b.txt 5\ntexts/a.txt 3\ntexts/d.txt 2\n";
    assert_eq!(env.read("counts.tsv"), counts);
    assert_eq!(env.read("top.txt"), top);
    assert_eq!(cached_column(&env.path("jl.log")), ["0"; 5]);

    std::fs::remove_file(env.path("top.txt")).unwrap();
    make(&env, &["-B", "-j2"]);
    assert_eq!(env.read("counts.tsv"), counts);
    assert_eq!(env.read("top.txt"), top, "jl run -o restored the target");
    let cached = cached_column(&env.path("jl.log"));
    assert_eq!(cached[5..], ["1"; 5], "the rebuild ran nothing");

    env.write("texts/c.txt", "one two three four five six\n");
    make(&env, &["-j2"]);
    assert_eq!(
        env.read("top.txt"),
        "texts/c.txt 6\ntexts/b.txt 5\ntexts/a.txt 3\n"
    );
    let cached = cached_column(&env.path("jl.log"));
    assert_eq!(
        cached[10..],
        ["1", "1", "0", "1", "0"],
        "only c.txt and top.txt re-ran"
    );
}

/// A job that records how many jobs run at once (itself included) in
/// `peaks`, then lingers so its neighbours overlap it.
const PROBE: &str = "mkdir running/$1 && ls running | wc -l >> peaks; sleep 0.5; rmdir running/$1";

fn peak(env: &TestEnv) -> usize {
    let peak = env
        .read("peaks")
        .lines()
        .map(|n| n.trim().parse::<usize>().unwrap())
        .max()
        .unwrap();
    std::fs::remove_file(env.path("peaks")).unwrap();
    peak
}

#[test]
fn make_jobserver_bounds_the_jobs_of_jl_map() {
    let env = TestEnv::new();
    env.write("probe.sh", PROBE);
    std::fs::create_dir(env.path("running")).unwrap();
    let map = "seq 8 | $(JL) map -q -j8 --no-cache -- sh probe.sh";

    env.write("items", "1\n2\n3\n4\n5\n6\n7\n8\n");
    let out = env
        .jl()
        .args([
            "map",
            "-q",
            "-j8",
            "--no-cache",
            "-a",
            "items",
            "--",
            "sh",
            "probe.sh",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(peak(&env) > 2, "without make, -j8 runs more than 2 at once");

    env.write("Makefile", format!("all:\n\t+{map}\n"));
    let out = make(&env, &["-j2"]);
    assert_eq!(stdout(&out), "");
    assert_eq!(peak(&env), 2, "make -j2 allows jl two jobs at once");
}

/// Runs a README snippet with `sh` in `dir`, with the built jl on PATH,
/// after checking that the README really holds it.
fn readme_snippet(env: &TestEnv, dir: &Path, snippet: &str) -> Output {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    assert!(readme.unwrap().contains(snippet), "README lost:\n{snippet}");
    sh_with_jl(env, dir, snippet)
}

/// Runs `script` with `sh` in `dir`, with the built jl on PATH and this
/// env's store and log.
fn sh_with_jl(env: &TestEnv, dir: &Path, snippet: &str) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_jl")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .args(["-c", snippet])
        .current_dir(dir)
        .env("PATH", path)
        .env("JL_STORE", &env.store)
        .env("JL_LOG", env.path("jl.log"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{snippet}: {}", stderr(&out));
    out
}

fn sorted_lines(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = stdout(out).lines().map(String::from).collect();
    lines.sort();
    lines
}

fn three_texts(env: &TestEnv, dir: &str) {
    env.write(format!("{dir}/texts/a.txt"), "one two three\n");
    env.write(format!("{dir}/texts/with space.txt"), "one\n");
    env.write(format!("{dir}/texts/sub/b.txt"), "one two\n");
}

#[test]
fn readme_loop_and_pipeline_agree_and_replay() {
    let env = TestEnv::new();
    three_texts(&env, "p");
    let dir = env.path("p");
    let shell_loop = r#"for f in texts/*.txt; do jl run -- wc -w "$f"; done"#;
    let pipeline = "find texts -name '*.txt' -print0 | jl map -0 -j8 -- wc -w";
    let looped = readme_snippet(&env, &dir, shell_loop);
    assert_eq!(stdout(&looped), "3 texts/a.txt\n1 texts/with space.txt\n");
    let mapped = readme_snippet(&env, &dir, pipeline);
    assert_eq!(
        sorted_lines(&mapped),
        [
            "1 texts/with space.txt",
            "2 texts/sub/b.txt",
            "3 texts/a.txt"
        ]
    );
    let again = readme_snippet(&env, &dir, pipeline);
    assert_eq!(sorted_lines(&again), sorted_lines(&mapped));
    let cached = cached_column(&env.path("jl.log"));
    assert_eq!(cached[..2], ["0", "0"], "the loop ran");
    assert_eq!(
        cached[2..].iter().filter(|c| *c == "1").count(),
        5,
        "the map hit twice, the rerun all"
    );
}

#[test]
fn readme_ci_cache_directory_hits_in_a_fresh_checkout() {
    let env = TestEnv::new();
    let snippet = "export JL_STORE=$PWD/.jl-cache   # cache .jl-cache/ between CI runs\n\
                   find texts -name '*.txt' -print0 | jl map -0 -- wc -w";
    three_texts(&env, "ci1");
    let first = readme_snippet(&env, &env.path("ci1"), snippet);
    // A new checkout elsewhere: fresh files, the cache directory restored.
    three_texts(&env, "elsewhere/ci2");
    let status = Command::new("cp")
        .arg("-r")
        .arg(env.path("ci1/.jl-cache"))
        .arg(env.path("elsewhere/ci2/.jl-cache"))
        .status()
        .unwrap();
    assert!(status.success());
    let second = readme_snippet(&env, &env.path("elsewhere/ci2"), snippet);
    assert_eq!(sorted_lines(&second), sorted_lines(&first));
    let cached = cached_column(&env.path("jl.log"));
    assert_eq!(
        cached,
        ["0", "0", "0", "1", "1", "1"],
        "all hits after the move"
    );
}

#[test]
fn readme_background_refresh_and_ignored_arguments() {
    let env = TestEnv::new();
    let dir = env.root();
    let prompt =
        "jl run --ttl 1m --stale 1d -- date +%H:%M   # in a prompt: at once, refreshed behind";
    let first = readme_snippet(&env, dir, prompt);
    assert_eq!(stdout(&readme_snippet(&env, dir, prompt)), stdout(&first));

    let cron = "jl run --warm --ttl 1h -- du -sh /usr/share/common-licenses   # from cron";
    let warmed = readme_snippet(&env, dir, cron);
    assert!(warmed.stdout.is_empty(), "--warm prints nothing");
    let start = std::time::Instant::now();
    while env.entries().len() < 2 {
        assert!(start.elapsed().as_secs() < 20, "the warm run never stored");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    env.write("words.txt", "pear\napple\nfig\n");
    let sort = "jl run --ignore-arg '--parallel=*' -- sort --parallel=4 words.txt";
    assert_eq!(
        stdout(&readme_snippet(&env, dir, sort)),
        "apple\nfig\npear\n"
    );
    let two = sort.replace("--parallel=4", "--parallel=2");
    let log_rows = cached_column(&env.path("jl.log")).len();
    let out = sh_with_jl(&env, dir, &two);
    assert_eq!(stdout(&out), "apple\nfig\npear\n");
    let cached = cached_column(&env.path("jl.log"));
    assert_eq!(
        cached[log_rows..],
        ["1"],
        "--parallel=2 hit --parallel=4's entry"
    );
}

/// `text` with what varies from run to run written alike: runs of eight
/// or more hex digits (an abbreviating `…` included) and durations.
fn masked(text: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let hex = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        let digits = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == '.')
            .count();
        if hex >= 8 {
            out.push_str("<hex>");
            i += hex;
            if chars.get(i) == Some(&'…') {
                i += 1;
            }
        } else if digits >= 3 && chars[i..i + digits].contains(&'.') {
            out.push_str("<n>");
            i += digits;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The lines of the README block that follows the lines of `start`.
fn readme_block(start: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let from = readme
        .find(start)
        .unwrap_or_else(|| panic!("README lost {start}"));
    let mut lines = readme[from..].lines().skip(start.lines().count());
    lines
        .by_ref()
        .take_while(|l| !l.starts_with("```") && !l.starts_with("$ jl gc"))
        .map(masked)
        .collect()
}

#[test]
fn readme_verbose_and_explain_samples_are_what_jl_prints() {
    let env = TestEnv::new();
    env.write("texts/a.txt", "one two three\n");
    let run = || {
        let out = env.run(&["run", "-v", "--", "wc", "-w", "texts/a.txt"]);
        stderr(&out).lines().map(masked).collect::<Vec<String>>()
    };
    let mut printed = run();
    printed.extend(run());
    env.write("texts/a.txt", "one two three four\n");
    printed.extend(run());
    let block = readme_block("<!-- verbose sample -->\n```");
    assert_eq!(printed, block);

    env.write("texts/a.txt", "five\n");
    let explained = stdout(&env.run(&["explain", "--", "wc", "-w", "texts/a.txt"]));
    let explained: Vec<String> = explained.lines().map(masked).collect();
    assert_eq!(explained, readme_block("$ jl explain -- wc -w texts/a.txt"));
}

#[test]
fn the_makefile_example_refuses_to_run_without_texts() {
    let env = TestEnv::new();
    let makefile = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/make/Makefile");
    std::fs::copy(makefile, env.path("Makefile")).unwrap();
    let out = Command::new("make")
        .current_dir(env.root())
        .env_remove("MAKEFLAGS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_says(&stderr(&out), "no texts/*.txt here");
    assert!(
        !env.path("counts.tsv").exists(),
        "no empty result is written"
    );
}
