//! The checked-in completions and man pages match the current CLI.
//! Regenerate with `cargo run -- generate .`.

use crate::util::files_under;

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let fresh = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_jl"))
        .arg("generate")
        .arg(fresh.path())
        .status()
        .unwrap();
    assert!(status.success());
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = files_under(fresh.path());
    assert!(generated.len() >= 10);
    for file in generated {
        let rel = file.strip_prefix(fresh.path()).unwrap();
        let checked_in = std::fs::read(repo.join(rel)).unwrap_or_default();
        assert!(
            checked_in == std::fs::read(&file).unwrap(),
            "{} is out of date: run `cargo run -- generate .` and commit",
            rel.display()
        );
    }
}

#[test]
fn help_explains_the_tool_and_no_arguments_print_usage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: jl"));
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_jl"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--input") && text.contains("Examples:"),
        "{text}"
    );
}
