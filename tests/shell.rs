//! jl inside make and shell pipelines: the README's examples, run as they
//! are written, and make's jobserver bounding `jl map`.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{TestEnv, stderr, stdout};

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
