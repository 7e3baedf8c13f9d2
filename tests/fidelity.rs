//! What people coming from GNU parallel and xargs expect of `jl map`, and
//! what a user sees: placeholders, slots, joblog, retries, halting,
//! progress, help, completion.

use std::process::{Command, Stdio};

use crate::util::{TestEnv, assert_says, skip, spawn_fed, stderr, stdout};

/// Hostile item names (no newline: GNU parallel's Perl regexes treat a
/// newline specially, jl treats every byte alike; see the README). None
/// whose dirname is `/`: an argument naming `/` is an input, hashed whole.
fn hostile_items() -> Vec<Vec<u8>> {
    let mut items: Vec<Vec<u8>> = [
        "dir/a.b.jpg",
        "sp ace/x y.tar.gz",
        "-lead.txt",
        ".hidden",
        "dir/.hidden",
        "a//b",
        "dir/",
        "a/",
        "up/../x.z",
        "file.",
        "$(touch x).c",
        "it's \"q\".d",
        "tab\there.e",
        "{}.f",
        "semi;colon",
        "*.star",
        "ünï/cödé.tar",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    items.push(b"bad\xffutf8/x\xfe.y".to_vec());
    items
}

fn nul_list(items: &[Vec<u8>]) -> Vec<u8> {
    items
        .iter()
        .flat_map(|i| i.iter().copied().chain([0]))
        .collect()
}

#[test]
fn placeholders_substitute_as_gnu_parallel_does() {
    let Some(parallel) = ["/usr/bin/parallel", "/usr/local/bin/parallel"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        skip("GNU parallel is not installed (.ci/run installs it)");
        return;
    };
    let env = TestEnv::new();
    let input = nul_list(&hostile_items());
    let words = [
        "{}",
        "{.}",
        "{/}",
        "{//}",
        "{/.}",
        "{#}",
        "{%}",
        "<{}>",
        "p{.}q{/}r{//}s{/.}t{#}u",
    ];
    for word in words {
        let theirs = spawn_fed(
            Command::new(parallel)
                .args(["-0", "-k", "-j1", "-q", "printf", "[%s]\\n", word])
                .env("PARALLEL_HOME", env.path("parallel-home")),
            &input,
        )
        .wait_with_output()
        .unwrap();
        let ours = spawn_fed(
            env.jl()
                .args(["map", "-0", "-q", "-j1", "--", "printf", "[%s]\\n", word]),
            &input,
        )
        .wait_with_output()
        .unwrap();
        assert!(theirs.status.success(), "{}", stderr(&theirs));
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{word}"
        );
        assert_eq!(ours.stdout, theirs.stdout, "{word}: raw bytes");
    }
    assert!(!env.path("x").exists());
}

#[test]
fn line_numbers_count_empty_lines() {
    let env = TestEnv::new();
    let out = env.run_with_stdin(&["map", "-q", "--", "echo", "{#}:{}"], b"a\n\nb\n");
    assert_eq!(stdout(&out), "1:a\n3:b\n");
}

#[test]
fn a_slot_is_held_by_one_job_at_a_time_and_is_not_in_the_key() {
    let env = TestEnv::new();
    // Each job takes its slot's lock directory for a while: two jobs in
    // one slot at once would find it taken.
    let script = "mkdir lock{%} 2>/dev/null || echo CLASH {%}; echo x >> count; \
                  sleep 0.1; rmdir lock{%}; echo {}";
    let items: String = (1..=12).map(|i| format!("{i}\n")).collect();
    let first = env.run_with_stdin(
        &["map", "-q", "-j3", "--", "sh", "-c", script],
        items.as_bytes(),
    );
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(!stdout(&first).contains("CLASH"), "{}", stdout(&first));
    assert_eq!(env.count("count"), 12);
    let slots = env.run_with_stdin(
        &["map", "-q", "-j3", "--force", "--", "echo", "{%}"],
        items.as_bytes(),
    );
    assert!(
        stdout(&slots).lines().all(|s| ["1", "2", "3"].contains(&s)),
        "{}",
        stdout(&slots)
    );
    // Another -j puts jobs in other slots: still the same keys.
    let again = env.run_with_stdin(
        &["map", "-q", "-j1", "--", "sh", "-c", script],
        items.as_bytes(),
    );
    assert_eq!(stdout(&again), stdout(&first));
    assert_eq!(env.count("count"), 12, "every job was a hit");
}

#[test]
fn the_joblog_writes_signals_and_raw_bytes_as_gnu_parallel_does() {
    let env = TestEnv::new();
    let log = env.path("jobs.tsv");
    let out = spawn_fed(
        env.jl().args(["map", "-q", "--joblog"]).arg(&log).args([
            "--",
            "sh",
            "-c",
            "kill -9 $$",
            "sh",
        ]),
        b"x\xff\n",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read(&log).unwrap();
    let row: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .nth(1)
        .unwrap()
        .split(|&b| b == b'\t')
        .collect();
    assert_eq!(row[6], b"0", "Exitval of a killed job");
    assert_eq!(row[7], b"9", "Signal");
    assert!(
        row[8].windows(2).any(|w| w == b"x\xff"),
        "the item's raw bytes"
    );
    let dry = spawn_fed(
        env.jl().args(["map", "--dry-run", "--", "echo"]),
        b"a\xfe\n",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(
        dry.stdout, b"echo 'a\xfe'\n",
        "raw bytes, quoted for a shell"
    );
}

#[test]
fn retries_count_attempts_in_all_and_halt_exits_with_the_failing_status() {
    let env = TestEnv::new();
    let out = env.run_with_stdin(
        &[
            "map",
            "-q",
            "--retries",
            "3",
            "--",
            "sh",
            "-c",
            "echo x >> count; exit 1",
        ],
        b"a\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.count("count"), 3, "three attempts in all, as parallel");
    for when in ["now", "soon"] {
        let out = env.run_with_stdin(
            &[
                "map",
                "-q",
                "-j2",
                "--halt",
                when,
                "--",
                "sh",
                "-c",
                "sleep 0.$1; exit $1",
                "sh",
            ],
            b"5\n3\n1\n",
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "--halt {when}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_map_reading_a_terminal_says_so() {
    let env = TestEnv::new();
    let jl = env!("CARGO_BIN_EXE_jl");
    let out = spawn_fed(
        Command::new("script")
            .args(["-qec", &format!("{jl} map -q -- echo"), "/dev/null"])
            .env("JL_STORE", &env.store)
            .current_dir(env.root()),
        b"a\n\x04",
    )
    .wait_with_output()
    .unwrap();
    let text = stdout(&out);
    assert!(text.contains("reading items from the terminal"), "{text}");
    assert!(text.contains("Ctrl-D"), "{text}");
}

#[test]
fn progress_knows_the_total_once_the_items_end() {
    let env = TestEnv::new();
    let items: String = (1..=40).map(|i| format!("{i}\n")).collect();
    let out = env.run_with_stdin(
        &["map", "-j2", "--", "sh", "-c", "sleep 0.06"],
        items.as_bytes(),
    );
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("Done")).collect();
    assert!(
        lines.len() >= 2,
        "a progress line and the summary: {lines:?}"
    );
    assert!(lines.iter().all(|l| l.contains("/40 ")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("eta ?")), "{lines:?}");
}

#[test]
fn the_bar_shows_a_rate_a_person_reads() {
    let env = TestEnv::new();
    let jl = env!("CARGO_BIN_EXE_jl");
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("seq 30 | {jl} map -j2 -- sh -c 'sleep 0.05'"),
            "/dev/null",
        ])
        .env("JL_STORE", &env.store)
        .current_dir(env.root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    let rates: Vec<&str> = text
        .split(['|', '\r', '\n'])
        .map(str::trim)
        .filter(|w| w.ends_with("/s"))
        .collect();
    assert!(!rates.is_empty(), "{text}");
    for rate in rates {
        let number = rate.trim_end_matches("/s");
        let decimals = number.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 1, "{rate}");
    }
}

#[test]
fn ctrl_c_reports_interrupted_jobs_apart_from_failures() {
    let env = TestEnv::new();
    let items: String = (1..=20).map(|i| format!("{i}\n")).collect();
    let child = spawn_fed(
        env.jl().args(["map", "-j2", "--", "sh", "-c", "sleep 10"]),
        items.as_bytes(),
    );
    std::thread::sleep(std::time::Duration::from_millis(800));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = stderr(&out);
    let summary = err.lines().last().unwrap();
    assert!(summary.contains("/20 "), "{err}");
    assert!(
        summary.contains("failed 0") && summary.contains("interrupted 2"),
        "{err}"
    );
    assert!(!err.contains("killed by signal"), "{err}");
}

#[test]
fn verbose_maps_say_which_jobs_were_cached() {
    let env = TestEnv::new();
    env.run_with_stdin(&["map", "-q", "--", "echo"], b"a\nb\n");
    let out = env.run_with_stdin(&["map", "-q", "-v", "--", "echo"], b"a\nb\n");
    assert_says(&stderr(&out), "[jl] Cached echo a");
    assert_says(&stderr(&out), "[jl] Cached echo b");
}

#[test]
fn help_puts_map_options_first_and_pages_say_the_exit_status() {
    let env = TestEnv::new();
    let help = stdout(&env.run(&["map", "--help"]));
    let map_at = help.find("Map options:").expect("a heading of map's own");
    let jobs = help.find("--jobs").unwrap();
    let input = help.find("--input").unwrap();
    assert!(map_at < jobs && jobs < input, "{help}");
    for page in ["man/jl-run.1", "man/jl-map.1"] {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(page))
                .unwrap();
        assert!(text.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(text.contains(".SH DESCRIPTION"), "{page}");
    }
    let run_help = stdout(&env.run(&["run", "--help"]));
    assert!(
        run_help.contains("Exit status:") && run_help.contains("127"),
        "{run_help}"
    );
}

#[test]
fn slips_on_the_command_line_get_a_hint() {
    let env = TestEnv::new();
    let out = env.run(&["rn", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert_says(&stderr(&out), "did you mean 'run'");
    let out = env.run(&["-j8", "map", "--", "echo"]);
    assert_eq!(out.status.code(), Some(2));
    assert_says(&stderr(&out), "options of jl map go after it");
}

#[test]
fn bash_completes_a_command_and_then_its_files_after_dash_dash() {
    let env = TestEnv::new();
    env.write("notes.txt", "x");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/jl.bash");
    let complete = |words: &str| {
        let probe = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _jl_with_command jl; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .args(["-c", &probe])
            .current_dir(env.root())
            .output()
            .unwrap();
        stdout(&out)
    };
    assert!(
        complete("jl run -- gre").lines().any(|w| w == "grep"),
        "a command name"
    );
    let files = complete("jl run -- cat no");
    assert!(files.lines().any(|w| w == "notes.txt"), "{files}");
    assert!(!files.contains("--input"), "not jl's options: {files}");
    assert!(
        complete("jl run --inp").contains("--input"),
        "jl's own options before --"
    );
}

#[test]
fn ls_has_a_header_on_a_terminal_only() {
    let env = TestEnv::new();
    env.run(&["run", "--", "echo", "hi"]);
    let plain = stdout(&env.run(&["ls"]));
    assert!(!plain.contains("KEY"), "{plain}");
    let jl = env!("CARGO_BIN_EXE_jl");
    let out = Command::new("script")
        .args(["-qec", &format!("{jl} ls"), "/dev/null"])
        .env("JL_STORE", &env.store)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(stdout(&out).starts_with("KEY"), "{}", stdout(&out));
}
