//! Store management: ls, show, stats, explain, gc, rm, clear, verify.

use crate::util::{TestEnv, assert_says, counted, stderr, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// A store with three entries made by real runs, used in this order.
fn three_entries(env: &TestEnv) {
    for word in ["one", "two", "three"] {
        env.run(&["run", "--", "echo", word]);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn ls_lists_entries_and_filters() {
    let env = TestEnv::new();
    three_entries(&env);
    env.run(&["run", "--", "echo", "one"]);
    let out = stdout(&env.run(&["ls"]));
    assert_eq!(out.lines().count(), 3);
    assert!(
        out.lines().next().unwrap().ends_with("echo one"),
        "most recently used first: {out}"
    );
    let filtered = stdout(&env.run(&["ls", "two"]));
    assert_eq!(filtered.lines().count(), 1);
    let rows: Vec<serde_json::Value> = stdout(&env.run(&["ls", "--json", "--sort", "hits"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["argv"], serde_json::json!(["echo", "one"]));
    assert_eq!(rows[0]["hits"], 1);
    assert_eq!(rows[0]["key"].as_str().unwrap().len(), 64);
}

#[test]
fn show_takes_a_key_prefix() {
    let env = TestEnv::new();
    env.write("in.txt", "x");
    env.run(&["run", "--", "cat", "in.txt"]);
    let rows = stdout(&env.run(&["ls", "--json"]));
    let key: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    let key = key["key"].as_str().unwrap();
    let shown = env.run(&["show", &key[..8]]);
    let text = stdout(&shown);
    assert!(text.contains("command    cat in.txt"), "{text}");
    assert!(text.contains("input      in.txt"), "{text}");
    let value = json(&env.run(&["show", "--json", key]));
    assert_eq!(value["key"], key);
    assert_eq!(value["exit_code"], 0);
    let missing = env.run(&["show", "ffffffff"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn stats_count_hits_misses_and_time_saved() {
    let env = TestEnv::new();
    let args = counted("sleep 0.2; echo hi", &[]);
    env.run(&args);
    env.run(&args);
    env.run(&args);
    let s = json(&env.run(&["stats", "--json"]));
    assert_eq!(s["entries"], 1);
    assert_eq!(s["hits"], 2);
    assert_eq!(s["misses"], 1);
    assert!(s["time_saved_ms"].as_u64().unwrap() >= 400);
    assert!(s["bytes"].as_u64().unwrap() > 0);
    assert!(stdout(&env.run(&["stats"])).contains("hit rate    66.7%"));
}

#[test]
fn hits_from_concurrent_runs_are_all_counted() {
    let env = TestEnv::new();
    env.run(&["run", "--", "echo", "x"]);
    let children: Vec<_> = (0..8)
        .map(|_| env.jl().args(["run", "--", "echo", "x"]).spawn().unwrap())
        .collect();
    for mut c in children {
        c.wait().unwrap();
    }
    assert_eq!(json(&env.run(&["stats", "--json"]))["hits"], 8);
}

#[test]
fn a_maps_hits_and_misses_are_all_counted() {
    // A map holds its journal lines and writes them many at once: every
    // one must still land, those past the held size and the last few.
    let env = TestEnv::new();
    let items: String = (0..700).map(|n| format!("{n}\n")).collect();
    let map = ["map", "-q", "-j2", "--", "echo"];
    env.run_with_stdin(&map, items.as_bytes());
    env.run_with_stdin(&map, items.as_bytes());
    let s = json(&env.run(&["stats", "--json"]));
    assert_eq!(
        (s["hits"].as_u64(), s["misses"].as_u64()),
        (Some(700), Some(700))
    );
}

#[test]
fn explain_names_the_changed_input_and_env() {
    let env = TestEnv::new();
    env.write("in.txt", "a");
    env.run(&["run", "--env", "MODE", "--", "cat", "in.txt"]);
    let hit = stdout(&env.run(&["explain", "--env", "MODE", "--", "cat", "in.txt"]));
    assert!(hit.contains("status     hit"), "{hit}");
    env.write("in.txt", "b");
    let miss = stdout(&env.run(&["explain", "--env", "MODE", "--", "cat", "in.txt"]));
    assert!(miss.contains("status     miss"), "{miss}");
    assert!(
        miss.contains("differs    input in.txt changed content"),
        "{miss}"
    );
    env.write("in.txt", "a");
    let out = env
        .jl()
        .args(["explain", "--json", "--env", "MODE", "--", "cat", "in.txt"])
        .env("MODE", "fast")
        .output()
        .unwrap();
    let e = json(&out);
    assert_eq!(e["hit"], false);
    assert_eq!(
        e["differences"],
        serde_json::json!(["env MODE changed value"])
    );
}

#[test]
fn gc_to_a_size_bound_keeps_the_most_recently_used() {
    let env = TestEnv::new();
    for i in 0..5 {
        let script = format!("head -c 10000 /dev/urandom; echo {i}");
        env.run(&["run", "--", "sh", "-c", &script]);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = json(&env.run(&["stats", "--json"]));
    assert_eq!(before["entries"], 5);
    // Each result takes 16 KiB of disk: 12 KiB of output, 4 KiB of entry.
    let report = json(&env.run(&["gc", "--max-size", "40KB", "--json"]));
    assert_eq!(report["entries_removed"], 3);
    assert!(report["bytes_left"].as_u64().unwrap() <= 40_000);
    let rows = stdout(&env.run(&["ls"]));
    assert!(rows.contains("echo 4") && rows.contains("echo 3"), "{rows}");
    assert!(!rows.contains("echo 0"), "{rows}");
    assert_eq!(
        json(&env.run(&["verify", "--json"]))["missing_blobs"],
        serde_json::json!([])
    );
}

#[test]
fn jl_max_size_bounds_the_store_as_runs_write() {
    let env = TestEnv::new();
    let store_bytes = || -> u64 {
        let files = env.blobs().into_iter().chain(env.entries());
        files.map(|p| std::fs::metadata(p).unwrap().len()).sum()
    };
    for i in 0..30 {
        let script = format!("head -c 10000 /dev/urandom; echo {i}");
        let out = env
            .jl()
            .args(["run", "--", "sh", "-c", &script])
            .env("JL_MAX_SIZE", "100KB")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(out.stdout.len(), 10_002 + usize::from(i >= 10));
        assert!(
            store_bytes() <= 100_000 + 11_000,
            "run {i}: the store holds {} bytes",
            store_bytes()
        );
    }
    let entries = json(&env.run(&["stats", "--json"]))["entries"]
        .as_u64()
        .unwrap();
    assert!((5..30).contains(&entries), "{entries} entries kept");
    let last = env.run(&[
        "explain",
        "--json",
        "--",
        "sh",
        "-c",
        "head -c 10000 /dev/urandom; echo 29",
    ]);
    assert_eq!(json(&last)["hit"], true, "the newest entry survives");
    let size: u64 = (0..16)
        .map(|s| {
            env.read(env.store.join(format!("size/{s:x}")))
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(
        size >= store_bytes(),
        "the ledger never under-counts: {size}"
    );
}

#[test]
fn gc_dry_run_removes_nothing_and_max_age_evicts_old_entries() {
    let env = TestEnv::new();
    three_entries(&env);
    let dry = json(&env.run(&["gc", "--max-size", "1B", "--dry-run", "--json"]));
    assert_eq!(dry["entries_removed"], 3);
    assert_eq!(json(&env.run(&["stats", "--json"]))["entries"], 3);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86400);
    let first = &env.entries()[0];
    std::fs::File::open(first)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let r = json(&env.run(&["gc", "--max-age", "1d", "--json"]));
    assert_eq!(r["entries_removed"], 1);
    assert_eq!(json(&env.run(&["stats", "--json"]))["entries"], 2);
}

#[test]
fn gc_evicting_in_a_loop_beside_32_writers_never_tears_an_entry() {
    let env = TestEnv::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A bound far below what the writers store: every pass evicts.
    let gc = {
        let stop = stop.clone();
        let store = env.store.clone();
        std::thread::spawn(move || {
            let mut evicted = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_jl"))
                    .args(["gc", "--max-size", "8KiB", "--json"])
                    .env("JL_STORE", &store)
                    .output()
                    .unwrap();
                if let Ok(report) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                    evicted += report["entries_removed"].as_u64().unwrap_or(0);
                }
            }
            evicted
        })
    };
    let run = |store: &std::path::Path, w: usize, i: usize| {
        let script = format!(
            "head -c 3000 /dev/zero | tr '\\0' {}; echo w{w} i{i}",
            w % 10
        );
        std::process::Command::new(env!("CARGO_BIN_EXE_jl"))
            .args(["run", "--", "sh", "-c", &script])
            .env("JL_STORE", store)
            .output()
            .unwrap()
    };
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let store = env.store.clone();
            std::thread::spawn(move || {
                for i in 0..3 {
                    let first = run(&store, w, i);
                    // Replayed or run again, never other bytes.
                    let again = run(&store, w, i);
                    assert_eq!(first.stdout, again.stdout, "w{w} i{i}");
                    assert!(
                        String::from_utf8_lossy(&again.stdout).ends_with(&format!("w{w} i{i}\n"))
                    );
                    assert!(
                        again.status.success(),
                        "{}",
                        String::from_utf8_lossy(&again.stderr)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let evicted = gc.join().unwrap();
    assert!(evicted > 0, "gc evicted while the writers committed");
    let verify = env.run(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert_says(&stdout(&verify), ": 0 problems");
}

#[test]
fn verify_finds_a_flipped_byte_and_repair_makes_it_a_miss() {
    let env = TestEnv::new();
    env.run(&["run", "--", "echo", "payload"]);
    let blob = &env.blobs()[0];
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(blob).unwrap();
    bytes[0] ^= 1;
    std::fs::write(blob, bytes).unwrap();
    let bad = env.run(&["verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("corrupt blob"), "{}", stdout(&bad));
    assert!(env.run(&["verify", "--repair"]).status.success());
    let clean = json(&env.run(&["verify", "--json"]));
    assert_eq!(clean["entries"], 0);
    assert_eq!(
        stdout(&env.run(&["run", "--", "echo", "payload"])),
        "payload\n"
    );
}

#[test]
fn rm_and_clear_remove_entries() {
    let env = TestEnv::new();
    three_entries(&env);
    let rows = stdout(&env.run(&["ls", "--json"]));
    let key: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    assert!(
        env.run(&["rm", &key["key"].as_str().unwrap()[..10]])
            .status
            .success()
    );
    assert_eq!(env.entries().len(), 2);
    let cleared = env.run(&["clear"]);
    assert!(
        stdout(&cleared).starts_with("cleared "),
        "{}",
        stdout(&cleared)
    );
    assert!(env.entries().is_empty() && env.blobs().is_empty());
    assert_eq!(stdout(&env.run(&["run", "--", "echo", "after"])), "after\n");
}

#[test]
fn jl_log_gets_one_row_per_run_from_concurrent_runs() {
    let env = TestEnv::new();
    let log = env.path("all.log");
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.jl()
                .args(["run", "--", "echo", &format!("job {i}")])
                .env("JL_LOG", &log)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        c.wait().unwrap();
    }
    env.jl()
        .args(["run", "--", "echo", "job 0"])
        .env("JL_LOG", &log)
        .output()
        .unwrap();
    let text = env.read("all.log");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert!(text.starts_with("Seq\tHost\t"), "{text}");
    assert_eq!(rows.len(), 9, "{text}");
    assert!(rows.iter().all(|r| r.split('\t').count() == 10), "{text}");
    assert_eq!(
        rows.iter().filter(|r| r.ends_with("\t1")).count(),
        1,
        "one cached row"
    );
}

#[test]
fn lock_files_go_with_their_runs_and_gc_removes_unheld_ones() {
    let env = TestEnv::new();
    let items: String = (0..100).map(|n| format!("{n}\n")).collect();
    let out = crate::util::spawn_fed(
        env.jl().args(["map", "-q", "-j4", "--", "echo"]),
        items.as_bytes(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let locks = env.store.join("locks");
    assert_eq!(
        crate::util::files_under(&locks),
        Vec::<std::path::PathBuf>::new()
    );
    // One left by a jl killed with SIGKILL, one held by a run under way.
    let left = locks.join("a".repeat(64));
    let held = locks.join("b".repeat(64));
    std::fs::write(&left, "").unwrap();
    std::fs::write(&held, "").unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(&held)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while std::process::Command::new("flock")
        .args(["-n"])
        .arg(&held)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(waited.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = env.jl().args(["gc"]).output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!left.exists(), "an unheld lock file is garbage");
    assert!(held.exists(), "a held one stays");
}

#[test]
fn a_large_journal_is_compacted_and_keeps_its_counts() {
    let env = TestEnv::new();
    env.run(&["run", "--", "echo", "kept"]);
    let first_listed = || -> serde_json::Value {
        let ls = stdout(&env.run(&["ls", "--json"]));
        serde_json::from_str(ls.lines().next().unwrap()).unwrap()
    };
    let key = first_listed()["key"].as_str().unwrap().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // A journal of 70,000 hits of that entry, spread over two days, and a
    // hit of an entry that is gone: as a busy store's, past the bound.
    let gone = "f".repeat(64);
    let mut lines = String::new();
    for n in 0..70_000u64 {
        let at = now - 49 * 3_600_000 + n * 2_500;
        lines.push_str(&format!("h {key} 10 {at}\n"));
    }
    lines.push_str(&format!("h {gone} 10 {now}\n"));
    let journal = env.store.join("stats.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut file, lines.as_bytes()).unwrap();
    assert!(std::fs::metadata(&journal).unwrap().len() > 4 * 1024 * 1024);
    let hit = env
        .jl()
        .env("JL_LOG", env.path("log"))
        .args(["run", "--", "echo", "kept"])
        .output()
        .unwrap();
    assert_eq!(stdout(&hit), "kept\n");
    let size = std::fs::metadata(&journal).unwrap().len();
    assert!(size < 16 * 1024, "the journal is still {size} bytes");
    let s = json(&env.run(&["stats", "--json"]));
    assert_eq!(s["hits"], 70_002, "{s}");
    assert_eq!(s["misses"], 1);
    assert_eq!(s["time_saved_ms"].as_u64().unwrap() / 1000, 700);
    assert_eq!(first_listed()["hits"], 70_001);
    let report = env.run(&["report", "--log", "log", "-o", "page.html"]);
    assert!(report.status.success(), "{}", stderr(&report));
    let page = env.read("page.html");
    assert!(page.contains("Hit rate by hour"), "49 hours of history");
}

#[test]
fn jl_max_size_bounds_the_disk_space_of_many_small_results() {
    // 400 one-line results: each an entry and a blob of a few bytes, that
    // take a 4 KiB block each on disk.
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    for i in 0..400 {
        let out = env
            .jl()
            .args(["run", "--", "echo", &format!("result {i}")])
            .env("JL_MAX_SIZE", "1MB")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let files = env.blobs().into_iter().chain(env.entries());
    let disk: u64 = files
        .map(|p| std::fs::metadata(p).unwrap().blocks() * 512)
        .sum();
    assert!(disk <= 1_000_000, "the store takes {disk} bytes of disk");
    let kept = json(&env.run(&["stats", "--json"]))["entries"]
        .as_u64()
        .unwrap();
    assert!(kept >= 50, "only {kept} entries kept");
}
