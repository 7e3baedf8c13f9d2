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
        let buf = after_dash_dash(shell, buf);
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
    std::fs::write(man.join("jl.1"), page(cmd.clone(), None)?)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jl-{}", sub.get_name());
        let exit_status = match sub.get_name() {
            "run" => Some(crate::cli::RUN_AFTER_HELP),
            "map" => Some(crate::cli::MAP_AFTER_HELP),
            _ => None,
        };
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("jl {}", sub.get_name()));
        std::fs::write(man.join(format!("{name}.1")), page(sub, exit_status)?)?;
    }
    Ok(())
}

/// One man page: clap_mangen's sections, an EXIT STATUS section from the
/// part of `after_help` after `Exit status:`, ENVIRONMENT and FILES.
fn page(cmd: clap::Command, after_help: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    let exit_status = after_help.and_then(|text| text.split_once("Exit status:\n"));
    if let Some((before, text)) = exit_status {
        let mut roff = Roff::new();
        roff.control("SH", ["EXAMPLES"]);
        roff.control("nf", []);
        roff.text([roman(before.trim_end())]);
        roff.control("fi", []);
        roff.control("SH", ["EXIT STATUS"]);
        let body: Vec<&str> = text.lines().map(str::trim).collect();
        roff.text([roman(body.join(" "))]);
        page.write_all(roff.to_roff().as_bytes())?;
    } else if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(&mut page)?;
    }
    page.write_all(extra_sections().as_bytes())?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    // Each render_* call repeats roff's two-line preamble: keep the first.
    let text = String::from_utf8(page).expect("roff is UTF-8");
    let preamble = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let (first, rest) = text.split_at(preamble.len().min(text.len()));
    Ok(format!("{first}{}", rest.replace(preamble, "")).into_bytes())
}

/// Completion after `jl run --` and `jl map --`: a command name, then that
/// command's own arguments (clap_complete does this only for zsh).
fn after_dash_dash(shell: Shell, generated: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(generated).expect("generated completions are UTF-8");
    match shell {
        Shell::Bash => (text + BASH_AFTER_DASH_DASH).into_bytes(),
        Shell::Fish => {
            let hidden = |sub: &str| {
                let plain = format!("-n \"__fish_jl_using_subcommand {sub}\"");
                let until = format!(
                    "-n \"__fish_jl_using_subcommand {sub}; and not __fish_jl_command_index >/dev/null\""
                );
                (plain, until)
            };
            let mut text = text;
            for sub in ["run", "map"] {
                let (plain, until) = hidden(sub);
                text = text.replace(&plain, &until);
            }
            (text + FISH_AFTER_DASH_DASH).into_bytes()
        }
        _ => text.into_bytes(),
    }
}

const BASH_AFTER_DASH_DASH: &str = r#"
# After `jl run --` or `jl map --`: a command name, then its own arguments
# (through bash-completion's _command_offset when it is there).
_jl_with_command() {
    local i cur=${COMP_WORDS[COMP_CWORD]}
    for ((i = 2; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == -- && ( ${COMP_WORDS[1]} == run || ${COMP_WORDS[1]} == map ) ]]; then
            if declare -F _command_offset >/dev/null; then
                _command_offset $((i + 1))
            elif ((COMP_CWORD == i + 1)); then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
            return 0
        fi
    done
    _jl "$@"
}
complete -F _jl_with_command -o bashdefault -o default jl
"#;

const FISH_AFTER_DASH_DASH: &str = r#"
# After `jl run --` or `jl map --`: a command name, then its own arguments.
function __fish_jl_command_index
    set -l words (commandline -opc)
    for i in (seq 3 (count $words))
        if test "$words[$i]" = "--"
            echo $i
            return 0
        end
    end
    return 1
end
complete -c jl -n '__fish_jl_command_index >/dev/null' -f -a '(__fish_complete_subcommand --fcs-skip=(__fish_jl_command_index))'
"#;

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
