//! The front ends: what each subcommand prints and returns. Each calls
//! the engine ([`crate::run`]) and the store; nothing calls a front end
//! but `main.rs`.

pub mod explain;
pub mod manage;
pub mod map;
pub mod report;
pub mod run;

use std::io::{self, Write};

use crate::key::Parts;

/// The key parts of an entry or an action, as `jl show` and `jl explain`
/// print them.
pub fn write_parts(out: &mut impl Write, parts: &Parts) -> io::Result<()> {
    writeln!(out, "executable {} ({})", parts.exe, parts.exe_digest)?;
    for i in &parts.inputs {
        let digest = i.digest.map_or("-".to_string(), |d| d.hex());
        writeln!(out, "input      {} [{:?}] {digest}", i.path, i.kind)?;
    }
    if let Some(d) = parts.stdin {
        writeln!(out, "stdin      {d}")?;
    }
    for e in &parts.env {
        let v = e
            .value
            .map_or("(unset)".to_string(), |d| format!("value digest {d}"));
        writeln!(out, "env        {} {v}", e.name)?;
    }
    if let Some(salt) = &parts.salt {
        writeln!(out, "salt       {salt}")?;
    }
    if let Some(cwd) = &parts.cwd {
        writeln!(out, "cwd (key)  {cwd}")?;
    }
    for o in &parts.outputs {
        writeln!(out, "declared   {o}")?;
    }
    Ok(())
}
