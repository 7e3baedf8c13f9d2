//! Compressed blobs: text kept as zstd frames and replayed byte for byte,
//! incompressible output kept raw, and a compressed blob that was tampered
//! with (flipped, truncated, swapped for another frame, lying about its
//! size) is a miss with the right output, never a wrong replay.

use std::path::PathBuf;

use crate::util::{TestEnv, counted, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// One line of [`features`].
const LINE: &str = "feature 0.25 0.50 0.75 1.00\n";

/// Text that zstd shrinks many times: `lines` lines of a feature vector.
fn features(lines: usize) -> String {
    format!("yes '{}' | head -n {lines}", LINE.trim_end())
}

fn packed_blobs(env: &TestEnv) -> Vec<PathBuf> {
    env.blobs()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
        .collect()
}

/// Lets the test rewrite a read-only blob.
fn writable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn text_is_kept_compressed_and_replayed_exactly() {
    let env = TestEnv::new();
    let script = format!("{} | tee out.txt", features(40_000));
    let args = counted(&script, &[]);
    let mut args: Vec<String> = args;
    args.splice(1..1, ["-o".to_string(), "out.txt".to_string()]);
    let first = env.run(&args);
    let want = first.stdout.clone();
    assert_eq!(want.len(), 40_000 * LINE.len());
    let packed = packed_blobs(&env);
    assert_eq!(
        packed.len(),
        1,
        "stdout and out.txt are one blob, compressed"
    );
    std::fs::remove_file(env.path("out.txt")).unwrap();
    let hit = env.run(&args);
    assert_eq!(env.count("count"), 1, "a hit");
    assert!(hit.stdout == want, "stdout replayed byte for byte");
    assert!(
        std::fs::read(env.path("out.txt")).unwrap() == want,
        "out.txt restored"
    );
    let stats = json(&env.run(&["stats", "--json"]));
    let (stored, original) = (
        stats["bytes"].as_u64().unwrap(),
        stats["original_bytes"].as_u64().unwrap(),
    );
    assert!(
        original > 20 * stored,
        "{stored} bytes stored for {original}"
    );
    assert!(stdout(&env.run(&["stats"])).contains("compressed  from"));
    assert!(env.run(&["verify"]).status.success());
}

#[test]
fn level_zero_keeps_blobs_raw_and_noise_stays_raw() {
    let env = TestEnv::new();
    let out = env
        .jl()
        .env("JL_COMPRESS", "0")
        .args(counted(&features(2000), &[]))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(packed_blobs(&env).is_empty(), "JL_COMPRESS=0: raw");
    assert_eq!(env.blobs().len(), 1);
    // Random bytes do not shrink: raw, and restored exactly.
    let noise = [
        "run",
        "-o",
        "noise.bin",
        "--",
        "sh",
        "-c",
        "head -c 200000 /dev/urandom > noise.bin",
    ];
    env.run(&noise);
    let bytes = std::fs::read(env.path("noise.bin")).unwrap();
    assert!(packed_blobs(&env).is_empty(), "noise stays raw");
    std::fs::remove_file(env.path("noise.bin")).unwrap();
    env.run(&noise);
    assert!(std::fs::read(env.path("noise.bin")).unwrap() == bytes);
    // A level out of range is a usage error.
    let bad = env
        .jl()
        .env("JL_COMPRESS", "99")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_large_compressed_output_streams_in_run_and_map() {
    // Over 1 MiB uncompressed: checked once, then decompressed as it is
    // written, not held in memory.
    let env = TestEnv::new();
    let args = counted(&features(100_000), &[]);
    let want = env.run(&args).stdout;
    assert_eq!(want.len(), 100_000 * LINE.len());
    assert_eq!(packed_blobs(&env).len(), 1);
    for _ in 0..2 {
        assert!(env.run(&args).stdout == want);
    }
    assert_eq!(env.count("count"), 1);
    let map = [
        "map",
        "-q",
        "--",
        "sh",
        "-c",
        "echo x >> count; yes \"feature $1\" | head -n 60000",
        "sh",
    ];
    let first = env.run_with_stdin(&map, b"a\nb\n");
    let again = env.run_with_stdin(&map, b"a\nb\n");
    assert_eq!(env.count("count"), 3, "the map's second run replayed both");
    assert_eq!(first.stdout.len(), 2 * 60_000 * 10);
    assert!(again.stdout == first.stdout);
}

#[test]
fn a_tampered_compressed_blob_is_a_miss_never_a_wrong_replay() {
    let env = TestEnv::new();
    let args = counted(&features(5000), &[]);
    let want = env.run(&args).stdout;
    let blob = packed_blobs(&env).pop().expect("a compressed blob");
    let good = std::fs::read(&blob).unwrap();
    // Another valid frame: other text of the same length, and text that
    // is longer than the entry records.
    let frame_of = |text: &[u8]| zstd_frame(&env, text);
    let mut other = want.clone();
    other[100] = b'X';
    let mut longer = want.clone();
    longer.extend_from_slice(b"more\n");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let tampered: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped byte", flipped),
        ("cut in half", good[..good.len() / 2].to_vec()),
        ("another frame", frame_of(&other)),
        ("a longer frame", frame_of(&longer)),
        ("empty", Vec::new()),
    ];
    let mut runs = 1;
    for (what, bytes) in tampered {
        let blob = packed_blobs(&env).pop().expect("the blob is back");
        writable(&blob);
        std::fs::write(&blob, &bytes).unwrap();
        let out = env.run(&args);
        runs += 1;
        assert!(out.stdout == want, "{what}: the right output");
        assert_eq!(env.count("count"), runs, "{what}: a miss, the command ran");
        // Stored again: the next run is a hit with the right bytes.
        assert!(env.run(&args).stdout == want, "{what}: repaired");
        assert_eq!(env.count("count"), runs, "{what}: then a hit");
    }
}

#[test]
fn verify_reads_compressed_blobs() {
    let env = TestEnv::new();
    let args = counted(&features(5000), &[]);
    env.run(&args);
    assert!(env.run(&["verify"]).status.success());
    let blob = packed_blobs(&env).pop().unwrap();
    writable(&blob);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&blob, bytes).unwrap();
    let bad = env.run(&["verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("corrupt blob"), "{}", stdout(&bad));
    assert!(env.run(&["verify", "--repair"]).status.success());
    assert!(env.run(&["verify"]).status.success());
}

/// `text` as one zstd frame, made by jl itself: stored in a scratch store
/// as a run's output.
fn zstd_frame(env: &TestEnv, text: &[u8]) -> Vec<u8> {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("text");
    std::fs::write(&path, text).unwrap();
    let out = env
        .jl()
        .env("JL_STORE", scratch.path().join("store"))
        .args(["run", "--", "cat"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.stdout == text);
    let frames: Vec<PathBuf> = crate::util::files_under(&scratch.path().join("store/objects"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
        .collect();
    assert_eq!(frames.len(), 1);
    std::fs::read(&frames[0]).unwrap()
}

#[test]
fn a_blob_kept_raw_and_compressed_is_read_counted_and_collected_whole() {
    // Runs at different levels can each store the same output: both forms
    // stay (removing one could race with a writer removing the other).
    let env = TestEnv::new();
    let args = counted(&features(3000), &[]);
    let raw = env
        .jl()
        .env("JL_COMPRESS", "0")
        .args(&args)
        .output()
        .unwrap();
    let mut forced = args.clone();
    forced.insert(1, "--force".to_string());
    env.run(&forced);
    assert_eq!(env.blobs().len(), 2, "one raw, one compressed");
    assert_eq!(packed_blobs(&env).len(), 1);
    assert!(env.run(&args).stdout == raw.stdout);
    assert_eq!(env.count("count"), 2, "then a hit");
    assert!(env.run(&["verify"]).status.success());
    let gc = env.run(&["gc", "--max-size", "0"]);
    assert!(gc.status.success());
    assert!(env.blobs().is_empty(), "both forms collected");
}
