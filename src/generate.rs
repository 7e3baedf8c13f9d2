//! `jl generate DIR`: writes the shell completions and man pages that are
//! checked in under `completions/` and `man/`, from the clap definition, so
//! they never drift from the real command line (a test compares them).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{Roff, bold, roman};

use crate::cli::{Cli, GenerateArgs};

pub fn main(args: GenerateArgs) -> anyhow::Result<i32> {
    write_all(&args.dir)?;
    Ok(0)
}

/// The clap command as documented: the plain package version, so the
/// generated files do not change with every commit.
fn command() -> clap::Command {
    Cli::command().version(env!("CARGO_PKG_VERSION"))
}

pub fn write_all(root: &Path) -> anyhow::Result<()> {
    let completions = root.join("completions");
    let man = root.join("man");
    for dir in [&completions, &man] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut cmd = command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "jl", &mut buf);
        let name = match shell {
            Shell::Bash => "jl.bash".to_string(),
            Shell::Zsh => "_jl".to_string(),
            Shell::Fish => "jl.fish".to_string(),
            Shell::Elvish => "jl.elv".to_string(),
            _ => "_jl.ps1".to_string(),
        };
        std::fs::write(completions.join(name), buf)?;
    }
    let cmd = command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    page.write_all(extra_sections().as_bytes())?;
    std::fs::write(man.join("jl.1"), page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jl-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("jl {}", sub.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        page.write_all(extra_sections().as_bytes())?;
        std::fs::write(man.join(format!("{name}.1")), page)?;
    }
    Ok(())
}

/// ENVIRONMENT and FILES, shared by every page.
fn extra_sections() -> String {
    let mut roff = Roff::new();
    definitions(
        &mut roff,
        "ENVIRONMENT",
        &[
            (
                "JL_STORE",
                "The store directory (as --store). Default: the user cache directory, e.g. ~/.cache/jl.",
            ),
            (
                "JL_MAX_SIZE",
                "Size bound of the store, enforced after writes and by jl gc (default 10 GiB), e.g. 5GiB.",
            ),
            (
                "JL_LOG",
                "Append one joblog row per jl run and per map job to this file (as --log).",
            ),
        ],
    );
    definitions(
        &mut roff,
        "FILES",
        &[
            ("$JL_STORE/VERSION", "Store format version."),
            (
                "$JL_STORE/objects/ab/<hex>",
                "Blobs (stdout, stderr, output files) by BLAKE3 digest; read-only.",
            ),
            (
                "$JL_STORE/actions/ab/<hex>.json",
                "One entry per action key.",
            ),
            (
                "$JL_STORE/tmp/",
                "Partial writes; renamed into place when complete.",
            ),
            (
                "$JL_STORE/locks/",
                "Per-key lock files: identical runs execute once.",
            ),
            (
                "$JL_STORE/stat/",
                "Digests of large files by (device, inode, size, mtime, ctime).",
            ),
            (
                "$JL_STORE/stats.log",
                "Hit and miss journal read by jl stats and jl ls.",
            ),
            (
                "$JL_STORE/size/",
                "The size ledger: bytes committed, in 16 counters; JL_MAX_SIZE is checked against it.",
            ),
        ],
    );
    roff.to_roff()
}

/// A section of `.TP` definitions: a bold name, then its text.
fn definitions(roff: &mut Roff, section: &str, items: &[(&str, &str)]) {
    roff.control("SH", [section]);
    for (name, text) in items {
        roff.control("TP", [])
            .text([bold(*name)])
            .text([roman(*text)]);
    }
}
