//! Inputs that change under jl: rewritten or deleted while the command
//! runs, growing while they are hashed, unreadable. None may ever lead to
//! a replayed result that does not belong to the input's content.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::util::{TestEnv, assert_says, counted, stderr, stdout};

/// A command that announces it started (file `started`), waits for the
/// file `go`, then does `body`.
fn paused(body: &str) -> Vec<String> {
    counted(
        &format!("touch started; while [ ! -e go ]; do sleep 0.01; done; {body}"),
        &["in.txt"],
    )
}

fn start(env: &TestEnv, args: &[String]) -> Child {
    env.jl()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the paused command started, lets `meddle` act, says go.
fn meddle_then_go(env: &TestEnv, meddle: impl FnOnce()) {
    while !env.path("started").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    meddle();
    env.write("go", "");
}

#[test]
fn an_input_rewritten_while_the_command_runs_is_not_cached() {
    let env = TestEnv::new();
    env.write("in.txt", "v1\n");
    let args = paused("cat \"$1\"");
    let child = start(&env, &args);
    meddle_then_go(&env, || {
        env.write("in.txt", "v2\n");
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "v2\n", "the command saw the new content");
    assert!(out.status.success());
    assert_says(
        &stderr(&out),
        "input 'in.txt' changed while the command ran",
    );
    assert!(env.entries().is_empty(), "nothing stored under v1's key");

    // Back to v1: must run again and print v1, never replay v2.
    env.write("in.txt", "v1\n");
    let out = env.run(&args);
    assert_eq!(stdout(&out), "v1\n");
    assert_eq!(env.count("count"), 2);
}

#[test]
fn a_file_deep_in_a_directory_input_rewritten_while_the_command_runs_is_not_cached() {
    // A directory input is watched as one digest of every entry's
    // identity: a file two levels down, same size, counts.
    let env = TestEnv::new();
    env.write("tree/sub/deep.txt", "v1\n");
    env.write("tree/top.txt", "t\n");
    let args = counted(
        "touch started; while [ ! -e go ]; do sleep 0.01; done; cat \"$1\"/sub/deep.txt",
        &["tree"],
    );
    let child = start(&env, &args);
    meddle_then_go(&env, || {
        env.write("tree/sub/deep.txt", "v2\n");
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "v2\n");
    assert_says(&stderr(&out), "input 'tree' changed while the command ran");
    assert!(env.entries().is_empty(), "nothing stored under v1's key");
    env.write("tree/sub/deep.txt", "v1\n");
    assert_eq!(stdout(&env.run(&args)), "v1\n");
}

#[test]
fn an_input_deleted_before_the_command_reads_it_is_not_cached() {
    let env = TestEnv::new();
    env.write("in.txt", "v1\n");
    let args = paused("cat \"$1\" 2>/dev/null || echo gone");
    let child = start(&env, &args);
    meddle_then_go(&env, || std::fs::remove_file(env.path("in.txt")).unwrap());
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "gone\n");
    assert!(out.status.success(), "the command's success stands");
    assert!(stderr(&out).contains("changed while the command ran"));
    assert!(env.entries().is_empty());

    env.write("in.txt", "v1\n");
    std::fs::remove_file(env.path("go")).unwrap();
    std::fs::remove_file(env.path("started")).unwrap();
    let child = start(&env, &args);
    meddle_then_go(&env, || {});
    assert_eq!(stdout(&child.wait_with_output().unwrap()), "v1\n");
    assert_eq!(env.entries().len(), 1, "an undisturbed run is stored");
}

#[test]
fn an_input_growing_while_it_is_hashed_is_never_stored() {
    let env = TestEnv::new();
    let big = env.write("big.bin", vec![7u8; 32 << 20]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(big).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&[1u8; 4096]).unwrap();
            }
        })
    };
    for _ in 0..3 {
        let out = env.run(&["run", "--", "wc", "-c", "big.bin"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("jl: warning:"), "{}", stderr(&out));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(env.entries().is_empty(), "a moving input is never stored");
}

#[test]
fn an_unreadable_input_runs_the_command_uncached() {
    let env = TestEnv::new();
    env.write_unreadable("secret.txt", "hidden\n");
    let script = "cat \"$1\" 2>/dev/null || echo unreadable";
    let mut jl = env.jl_unprivileged();
    let out = jl
        .args(["run", "--", "sh", "-c", script, "sh", "secret.txt"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "unreadable\n");
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot hash input 'secret.txt'") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(env.entries().is_empty());
}
