//! A real build under `--trace`: the C sources of the blake3 crate jl
//! depends on (not code written for the test), built by make -j2 with
//! `CC="jl run --trace -- gcc"` and `-MMD -MP` dependency files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TestEnv, installed, skip, stderr};

/// The C sources shipped in the blake3 crate, as cargo unpacked it for
/// jl's own build (its version read from Cargo.lock); None when this
/// build did not use cargo's registry (vendored sources).
fn blake3_c_sources() -> Option<PathBuf> {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"blake3\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .expect("blake3 in Cargo.lock");
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .flatten()
        .map(|index| index.path().join(format!("blake3-{version}/c")))
        .find(|c| c.join("blake3.c").is_file())
}

const MAKEFILE: &str = "\
CFLAGS = -O2 -MMD -MP -DBLAKE3_NO_SSE2 -DBLAKE3_NO_SSE41 -DBLAKE3_NO_AVX2 -DBLAKE3_NO_AVX512
OBJS = blake3.o blake3_dispatch.o blake3_portable.o example.o
all: $(OBJS)
%.o: %.c
\t$(CC) $(CFLAGS) -c $< -o $@
clean:
\trm -f *.o *.d
-include $(OBJS:.o=.d)
";

const FILES: [&str; 6] = [
    "blake3.c",
    "blake3_dispatch.c",
    "blake3_portable.c",
    "example.c",
    "blake3.h",
    "blake3_impl.h",
];

fn make(dir: &Path, env: &TestEnv, args: &[&str], log: &Path) -> std::process::Output {
    let cc = format!("{} run --trace -- gcc", env!("CARGO_BIN_EXE_jl"));
    let out = Command::new("make")
        .args(["-j2", &format!("CC={cc}")])
        .args(args)
        .current_dir(dir)
        .env("JL_STORE", &env.store)
        .env("JL_LOG", log)
        .env_remove("MAKEFLAGS")
        .output()
        .unwrap();
    assert!(out.status.success(), "make {args:?}: {}", stderr(&out));
    out
}

/// The compiles of one build from the JL_LOG rows it added: (source,
/// whether it was a hit).
fn compiles(log: &Path, skip: usize) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut rows: Vec<(String, bool)> = text
        .lines()
        .filter(|l| !l.starts_with("Seq"))
        .skip(skip)
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let command = cols[8];
            let source = command
                .split(' ')
                .find(|w| w.ends_with(".c"))
                .unwrap()
                .to_string();
            (source, cols[9] == "1")
        })
        .collect();
    rows.sort();
    rows
}

fn objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "o"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_real_c_build_replays_after_make_clean_and_rebuilds_only_what_a_header_edit_touches() {
    installed("gcc", "gcc");
    installed("make", "make");
    let env = TestEnv::new();
    let Some(src) = blake3_c_sources() else {
        skip("blake3's C sources are not in cargo's registry (a vendored build)");
        return;
    };
    let (traced, plain) = (env.path("traced"), env.path("plain"));
    for dir in [&traced, &plain] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("Makefile"), MAKEFILE).unwrap();
        for f in FILES {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
    }
    let log = env.path("jl.log");
    let built = Command::new("make")
        .args(["-j2", "CC=gcc"])
        .current_dir(&plain)
        .env_remove("MAKEFLAGS")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", stderr(&built));

    make(&traced, &env, &[], &log);
    let first = compiles(&log, 0);
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|(_, hit)| !hit), "{first:?}");
    assert_eq!(
        objects(&traced),
        objects(&plain),
        "traced objects are a plain build's"
    );
    assert!(
        traced.join("blake3.d").is_file(),
        "-MMD dependency files are outputs too"
    );

    make(&traced, &env, &["clean"], &log);
    make(&traced, &env, &[], &log);
    let again = compiles(&log, 4);
    assert_eq!(again.len(), 4);
    assert!(
        again.iter().all(|(_, hit)| *hit),
        "no compiler ran after make clean: {again:?}"
    );
    assert_eq!(
        objects(&traced),
        objects(&plain),
        "replayed objects are byte-identical"
    );
    assert!(traced.join("example.d").is_file());

    // A header edit, then a clean build: jl (not make, which has nothing
    // left to go by) compiles exactly the files that include it.
    let header = traced.join("blake3_impl.h");
    let mut text = std::fs::read_to_string(&header).unwrap();
    text.push_str("\n/* edited */\n");
    std::fs::write(&header, text).unwrap();
    make(&traced, &env, &["clean"], &log);
    make(&traced, &env, &[], &log);
    let edited = compiles(&log, 8);
    let ran: Vec<&str> = edited
        .iter()
        .filter(|(_, hit)| !hit)
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(
        ran,
        ["blake3.c", "blake3_dispatch.c", "blake3_portable.c"],
        "{edited:?}"
    );
}
