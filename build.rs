//! Embeds `git describe` in the version when building from a checkout, and
//! tells the tests what they may do here: `jl_test_root` when building as
//! root (the tests that need root are ignored, with the reason, otherwise)
//! and `jl_test_system` when `JL_TEST_SYSTEM=1` allows tests to change
//! system paths (CI sets it; the Slurm test writes /etc/slurm).

fn main() {
    let pkg = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let describe = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--tags"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let version = match describe {
        Some(d) => format!("{pkg} ({d})"),
        None => pkg,
    };
    println!("cargo:rustc-env=JL_VERSION={version}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-changed=build.rs");

    println!("cargo::rustc-check-cfg=cfg(jl_test_root)");
    println!("cargo::rustc-check-cfg=cfg(jl_test_system)");
    println!("cargo:rerun-if-env-changed=JL_TEST_SYSTEM");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root {
        println!("cargo::rustc-cfg=jl_test_root");
    }
    if std::env::var("JL_TEST_SYSTEM").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=jl_test_system");
    }
}
