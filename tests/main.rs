//! jl's integration tests: the real binary, real commands, a temp store each.

mod util;

mod compression;
mod controls;
mod faults;
mod fidelity;
mod generated;
mod inputs;
mod map;
mod oracle;
mod real_build;
#[cfg(feature = "remote")]
mod remote;
mod replay;
mod report;
mod run;
mod shell;
mod slurm;
mod store;
mod trace;
mod trace_rules;
mod trust;
