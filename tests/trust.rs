//! Trust boundaries: the only store jl replays from is one the user owns
//! and jl made; file names never run as shell code; secrets never print;
//! and a map never loses a finished job's output.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::util::{TestEnv, assert_says, counted, spawn_fed, stderr, stdout};

#[test]
#[cfg_attr(
    not(jl_test_root),
    ignore = "needs root to make a store as another user (CI runs as root)"
)]
fn a_store_another_user_made_replays_nothing() {
    let env = TestEnv::new();
    let planted = env
        .jl_as_nobody()
        .args(["run", "--", "whoami"])
        .output()
        .unwrap();
    assert_eq!(stdout(&planted), "nobody\n");
    let out = env.run(&["run", "--", "whoami"]);
    assert_eq!(stdout(&out), "root\n", "replayed from another user's store");
    let err = stderr(&out);
    assert_eq!(err.matches("jl: warning:").count(), 1, "{err}");
    assert!(err.contains("owned by uid 65534"), "{err}");
}

#[test]
fn a_store_others_can_write_to_replays_nothing() {
    let env = TestEnv::new();
    let args = counted("echo ran", &[]);
    env.run(&args);
    std::fs::set_permissions(&env.store, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&args);
    assert_eq!(stdout(&out), "ran\n");
    assert_eq!(
        env.count("count"),
        2,
        "no hit from a store others can write"
    );
    assert_says(&stderr(&out), "others can write to it");
    assert_eq!(env.run(&["ls"]).status.code(), Some(2));
}

/// A directory shaped like a bare git repository.
fn not_a_store(env: &TestEnv) -> std::path::PathBuf {
    let repo = env.path("repo.git");
    for (path, content) in [
        ("HEAD", "ref\n"),
        ("objects/ab/cdef", "blob"),
        ("tmp/old", "x"),
    ] {
        env.write(format!("repo.git/{path}"), content);
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(90 * 24 * 3600);
    let f = std::fs::File::options()
        .write(true)
        .open(repo.join("tmp/old"))
        .unwrap();
    f.set_modified(old).unwrap();
    repo
}

fn tree(dir: &std::path::Path) -> Vec<String> {
    crate::util::files_under(dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn store_commands_refuse_a_directory_jl_did_not_make() {
    let env = TestEnv::new();
    let repo = not_a_store(&env);
    let before = tree(&repo);
    let commands: [&[&str]; 7] = [
        &["clear"],
        &["gc", "--max-size", "1KiB", "--max-age", "1s"],
        &["rm", "abcdef"],
        &["verify", "--repair"],
        &["ls"],
        &["stats"],
        &["show", "ab"],
    ];
    for args in commands {
        let out = env.jl().args(args).env("JL_STORE", &repo).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("repo.git"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("not a jl store"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // jl run uses it for nothing: it runs, warns once, writes nothing.
    let out = env
        .jl()
        .args(counted("echo ran", &[]))
        .env("JL_STORE", &repo)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "ran\n");
    assert_eq!(stderr(&out).matches("jl: warning:").count(), 1);
    assert_eq!(tree(&repo), before, "the directory was changed");
}

#[test]
fn a_store_of_another_version_is_foreign_for_hits_and_commands() {
    for version in [Some("2\n"), None] {
        let env = TestEnv::new();
        let args = counted("echo ran", &[]);
        env.run(&args);
        match version {
            Some(v) => std::fs::write(env.store.join("VERSION"), v).unwrap(),
            None => std::fs::remove_file(env.store.join("VERSION")).unwrap(),
        }
        let out = env.run(&args);
        assert_eq!(
            env.count("count"),
            2,
            "{version:?}: a hit from a foreign store"
        );
        assert_eq!(
            stderr(&out).matches("jl: warning:").count(),
            1,
            "{}",
            stderr(&out)
        );
        for command in [&["ls"][..], &["stats"], &["gc"], &["verify"]] {
            let out = env.run(command);
            assert_eq!(out.status.code(), Some(2), "{command:?}");
            if version.is_some() {
                assert!(stderr(&out).contains("store format 1"), "{}", stderr(&out));
            }
        }
        assert!(!env.entries().is_empty(), "its entries are left alone");
    }
}

/// Names that are code to a shell that reads them unquoted.
fn hostile_names() -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = [
        "a$(touch PWNED1).jpg",
        "a`touch PWNED2`.jpg",
        "a; touch PWNED3",
        "*",
        "it's",
        "say \"hi\"",
        "new\nline",
        "-n",
        "two  spaces",
        "$HOME",
        "back\\slash",
        "{}",
        "tab\there",
        "a|touch PWNED4",
        "~",
        "x=1",
        "!event",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    names.push(vec![b'n', 0xff, 0xfe, b'.', b'x']);
    names
}

#[test]
fn a_file_name_in_a_shell_script_is_one_word_and_never_code() {
    let env = TestEnv::new();
    let names = hostile_names();
    let mut items = Vec::new();
    for name in &names {
        items.extend_from_slice(name);
        items.push(0);
    }
    let want: Vec<u8> = items.clone();
    // Inside the -c script: quoted for the shell.
    for shell in [&["sh", "-c"][..], &["bash", "-ec"], &["sh", "-e", "-c"]] {
        let mut args = vec!["map", "-0", "-q", "-j2", "--"];
        args.extend(shell);
        args.push(r#"printf '%s\0' {}"#);
        let out = spawn_fed(env.jl().args(&args), &items)
            .wait_with_output()
            .unwrap();
        assert_eq!(out.stdout, want, "{shell:?}: {}", stderr(&out));
        // And the other placeholders too.
        let mut args = vec!["map", "-0", "-q", "--"];
        args.extend(shell);
        args.push(r#"printf '%s|%s|%s\0' {/} {.} {//}"#);
        let out = spawn_fed(env.jl().args(&args), &items)
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A plain argument: substituted raw, since no shell reads it.
    let out = spawn_fed(
        env.jl()
            .args(["map", "-0", "-q", "--", "printf", r"%s\0", "{}"]),
        &items,
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.stdout, want);
    let pwned: Vec<_> = std::fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(b"PWNED"))
        .collect();
    assert!(pwned.is_empty(), "a name ran as code: {pwned:?}");
}

#[test]
fn secrets_in_a_remote_url_or_header_never_print() {
    let env = TestEnv::new();
    let out = env
        .jl()
        .args([
            "run",
            "--remote",
            "http://user:PASSWORD1@127.0.0.1:9/jl?token=QUERYSECRET&x=y",
            "--remote-timeout",
            "1s",
            "--",
            "echo",
            "hi",
        ])
        .env("JL_REMOTE_HEADER", "Authorization: Bearer HEADERSECRET")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "hi\n");
    let err = stderr(&out);
    assert!(err.contains("jl: warning: remote cache"), "{err}");
    for secret in ["PASSWORD1", "QUERYSECRET", "HEADERSECRET"] {
        assert!(!err.contains(secret), "{secret} printed: {err}");
    }
    let bad = env.run(&[
        "run",
        "--remote",
        "ftps://bob:TOPSECRET@h/x?k=QSECRET",
        "--",
        "true",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!stderr(&bad).contains("SECRET"), "{}", stderr(&bad));
}

/// A map whose first job waits `slow` seconds, over `n` items printing
/// 20,000 bytes each, in a store bounded by `max_size` if given.
fn slow_first_map(
    env: &TestEnv,
    n: usize,
    slow: &str,
    max_size: Option<&str>,
) -> std::process::Child {
    let script = format!(
        r#"if [ "$1" = 1 ]; then sleep {slow}; fi; head -c 20000 /dev/zero | tr '\0' "$(($1 % 10))"; echo"#
    );
    let items: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let mut cmd = env.jl();
    if let Some(size) = max_size {
        cmd.env("JL_MAX_SIZE", size);
    }
    spawn_fed(
        cmd.args(["map", "-q", "-j4", "--", "sh", "-c", &script, "sh"]),
        items.as_bytes(),
    )
}

fn assert_every_line_whole(out: &std::process::Output, n: usize) {
    let text = stdout(out);
    assert_eq!(text.lines().count(), n, "{}", stderr(out));
    for (i, line) in text.lines().enumerate() {
        let digit = char::from(b'0' + ((i + 1) % 10) as u8);
        assert!(
            line.len() == 20000 && line.chars().all(|c| c == digit),
            "job {}",
            i + 1
        );
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert!(
        !stderr(out).contains("could not be shown"),
        "{}",
        stderr(out)
    );
}

#[test]
fn eviction_never_takes_output_a_map_has_yet_to_show() {
    let env = TestEnv::new();
    let out = slow_first_map(&env, 60, "1", Some("64KiB"))
        .wait_with_output()
        .unwrap();
    assert_every_line_whole(&out, 60);
    assert!(
        crate::util::files_under(&env.store.join("tmp")).is_empty(),
        "pins are removed"
    );
}

#[test]
fn gc_and_clear_during_a_map_never_take_its_output() {
    for during in [&["gc", "--max-size", "1KiB"][..], &["clear"]] {
        let env = TestEnv::new();
        env.run(&["run", "--", "true"]);
        let child = slow_first_map(&env, 30, "2", None);
        std::thread::sleep(std::time::Duration::from_millis(800));
        let out = env.run(during);
        assert!(out.status.success(), "{during:?}: {}", stderr(&out));
        let out = child.wait_with_output().unwrap();
        assert_every_line_whole(&out, 30);
    }
}

#[test]
fn an_output_a_map_cannot_show_fails_the_map_and_names_the_job() {
    // Raw and compressed: the printer checks the pinned blob either way.
    for level in ["0", "1"] {
        an_output_a_map_cannot_show(level);
    }
}

fn an_output_a_map_cannot_show(level: &str) {
    let env = TestEnv::new();
    // Job 2's output is cached; the map replays it while job 1 sleeps.
    let big = r#"head -c 9000 /dev/zero | tr '\0' x"#;
    let script = format!(r#"if [ "$1" = 1 ]; then sleep 3; else {big}; fi"#);
    let first = spawn_fed(
        env.jl()
            .env("JL_COMPRESS", level)
            .args(["map", "-q", "--", "sh", "-c", &script, "sh"]),
        b"2\n",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(first.stdout.len(), 9000);
    let child = spawn_fed(
        env.jl()
            .env("JL_COMPRESS", level)
            .args(["map", "-q", "-j2", "--", "sh", "-c", &script, "sh"]),
        b"1\n2\n",
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // Tamper with the cached blob in place (its pin is the same file).
    let blobs = env.blobs();
    assert_eq!(blobs.len(), 1, "stdout's blob, raw or compressed");
    for blob in blobs {
        let mut perms = std::fs::metadata(&blob).unwrap().permissions();
        perms.set_mode(0o644);
        std::fs::set_permissions(&blob, perms).unwrap();
        std::fs::write(&blob, "y".repeat(9000)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert_says(&stderr(&out), "jl: job 2: its output could not be shown");
    assert!(!stdout(&out).contains('y'), "tampered bytes were shown");
}

#[test]
fn a_map_whose_stdout_closes_stops_and_exits_141() {
    let env = TestEnv::new();
    let items: String = (1..=40).map(|i| format!("{i}\n")).collect();
    let out = Command::new("sh")
        .args(["-c", r#""$@" | head -n 1; exit "${PIPESTATUS:-0}""#, "sh"])
        .arg("bash")
        .args([
            "-c",
            r#"printf '%s' "$ITEMS" | "$0" map -j2 -q -- sh -c 'echo x >> count; sleep 0.05; echo "$1"' sh; echo "status $?" >&2"#,
            env!("CARGO_BIN_EXE_jl"),
        ])
        .env("ITEMS", &items)
        .env("JL_STORE", &env.store)
        .current_dir(env.root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "1\n");
    assert!(stderr(&out).contains("status 141"), "{}", stderr(&out));
    assert!(
        env.count("count") < 10,
        "{} jobs ran after stdout closed",
        env.count("count")
    );
}

#[test]
fn absurd_jobs_are_refused_and_workers_start_only_as_needed() {
    let env = TestEnv::new();
    let out = env.run_with_stdin(&["map", "-j", "100000", "--", "echo"], b"x\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at most 4096"), "{}", stderr(&out));
    let out = env.run_with_stdin(&["map", "-q", "-j", "4096", "--", "echo"], b"x\n");
    assert_eq!(stdout(&out), "x\n", "{}", stderr(&out));
    let out = env.run_with_stdin(&["map", "--timeout", "0", "--", "echo"], b"x\n");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_command_that_cannot_run_fails_once_before_any_item() {
    let env = TestEnv::new();
    let items: String = (1..=200).map(|i| format!("{i}\n")).collect();
    let out = env.run_with_stdin(&["map", "--", "nosuchcmd"], items.as_bytes());
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(stderr(&out), "jl: nosuchcmd: command not found\n");
    env.write("script.sh", "echo hi\n");
    let out = env.run_with_stdin(&["map", "--", "./script.sh"], items.as_bytes());
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn an_item_stream_that_fails_to_read_fails_the_map() {
    let env = TestEnv::new();
    std::fs::create_dir(env.path("dir")).unwrap();
    let out = env.run(&["map", "-q", "-a", "dir", "--", "echo"]);
    assert_ne!(out.status.code(), Some(0));
    assert_says(&stderr(&out), "cannot read the items");
}

#[test]
fn a_failed_job_is_reported_on_one_line_with_a_long_item_cut() {
    let env = TestEnv::new();
    let long = "x".repeat(1000);
    let items = format!("{long}\0new\nline\0");
    let out = spawn_fed(
        env.jl()
            .args(["map", "-0", "-q", "--", "sh", "-c", "exit 3", "sh"]),
        items.as_bytes(),
    )
    .wait_with_output()
    .unwrap();
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("): new\\nline\n"), "{err}");
    let first = err.lines().next().unwrap();
    assert!(first.ends_with('…') && first.len() < 300, "{err}");
}

#[test]
fn a_store_whose_creation_was_killed_is_made_again_not_refused() {
    let env = TestEnv::new();
    for dir in ["objects", "actions", "tmp", "locks", "stat"] {
        std::fs::create_dir_all(env.store.join(dir)).unwrap();
    }
    std::fs::write(env.store.join("tmp/.jlAbC123"), "1\n").unwrap();
    let out = env.run(&counted("echo ran", &[]));
    assert_eq!(stderr(&out), "", "no warning");
    assert!(env.store.join("VERSION").exists());
    env.run(&counted("echo ran", &[]));
    assert_eq!(env.count("count"), 1, "a hit from the store made again");
    assert!(env.run(&["verify"]).status.success());
}
