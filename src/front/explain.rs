//! `jl explain`: the key of an action and every part that went into it,
//! hit or miss, and on a miss what differs from the nearest entry (the
//! engine's answer, [`crate::run::nearest`]); with `--trace`, the nearest
//! recorded run's dependencies with the changed ones marked.

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::ExplainArgs;
use crate::digest::Digest;
use crate::key::Parts;
use crate::store::Store;

#[derive(Serialize)]
struct Explained<'a> {
    key: String,
    hit: bool,
    parts: &'a Parts,
    nearest: Option<String>,
    differences: Vec<String>,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.key.store)?;
    let exe = crate::exec::resolve(&args.command[0]).map_err(|e| anyhow::anyhow!(e.message))?;
    let stdin = if args.no_stdin {
        None
    } else {
        crate::stdin::digest_for_explain()?
    };
    let settings = crate::config::settings(&args.key, &args.cache, true, None);
    let action = crate::key::build(&args.command, &exe, stdin, &settings.key, &settings.stat)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Hit or miss is the engine's answer, as `jl run` would get it.
    let hit = crate::run::lookup(&settings, &store, &action, false).is_ok();
    if settings.key.trace {
        return explain_traced(&store, &action, hit, args.json);
    }
    let (nearest, differences) = match (hit, crate::run::nearest(&store, &action)) {
        (false, Some((key, d))) => (Some(key.hex()), d),
        _ => (None, Vec::new()),
    };
    let mut out = io::stdout().lock();
    if args.json {
        let e = Explained {
            key: action.key.hex(),
            hit,
            parts: &action.parts,
            nearest,
            differences,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
        return Ok(0);
    }
    write_explained(&mut out, action.key, "", hit, &action.parts)?;
    match (hit, nearest) {
        (true, _) => {}
        (false, None) => writeln!(out, "nearest    none: no entry runs {}", action.parts.exe)?,
        (false, Some(key)) => {
            writeln!(out, "nearest    {key}")?;
            for d in differences {
                writeln!(out, "differs    {d}")?;
            }
        }
    }
    Ok(0)
}

#[derive(Serialize)]
struct ExplainedTrace<'a> {
    key: String,
    hit: bool,
    parts: &'a Parts,
    candidates: usize,
    nearest: Option<String>,
    deps: Vec<CheckedDep>,
}

#[derive(Serialize)]
struct CheckedDep {
    #[serde(flatten)]
    dep: crate::deps::Dep,
    holds: bool,
}

/// `jl explain --trace`: the candidates recorded for this action, and the
/// dependencies of the nearest one (fewest changed; newest on a tie).
fn explain_traced(
    store: &Store,
    action: &crate::key::Action,
    hit: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let stat = store.stat_cache();
    let manifest = crate::store::manifest::manifest(store, &action.key);
    let checked = manifest
        .candidates
        .iter()
        .filter_map(|key| match store.lookup(key) {
            crate::store::Lookup::Hit(entry) => {
                let deps: Vec<CheckedDep> = entry
                    .deps
                    .into_iter()
                    .map(|dep| CheckedDep {
                        holds: dep.holds(&stat),
                        dep,
                    })
                    .collect();
                Some((deps.iter().filter(|d| !d.holds).count(), *key, deps))
            }
            _ => None,
        });
    let nearest = checked.min_by_key(|(changed, _, _)| *changed);
    let (nearest, deps) = match nearest {
        Some((_, key, deps)) => (Some(key.hex()), deps),
        None => (None, Vec::new()),
    };
    let mut out = io::stdout().lock();
    if json {
        let e = ExplainedTrace {
            key: action.key.hex(),
            hit,
            parts: &action.parts,
            candidates: manifest.candidates.len(),
            nearest,
            deps,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
        return Ok(0);
    }
    write_explained(&mut out, action.key, " (traced)", hit, &action.parts)?;
    writeln!(out, "candidates {}", manifest.candidates.len())?;
    match nearest {
        None => writeln!(
            out,
            "nearest    none: no traced run of this command is stored"
        )?,
        Some(key) => {
            writeln!(out, "nearest    {key}")?;
            for d in deps {
                let mark = if d.holds { "same   " } else { "CHANGED" };
                writeln!(out, "{mark}    {}", d.dep.describe())?;
            }
        }
    }
    Ok(0)
}

/// The head of `jl explain`: key, hit or miss, command and key parts.
fn write_explained(
    out: &mut impl Write,
    key: Digest,
    note: &str,
    hit: bool,
    parts: &Parts,
) -> io::Result<()> {
    writeln!(out, "key        {key}{note}")?;
    writeln!(out, "status     {}", if hit { "hit" } else { "miss" })?;
    writeln!(out, "command    {}", crate::key::shell_line(&parts.argv))?;
    super::write_parts(out, parts)
}
