//! The error policy and named exit codes.
//!
//! jl has two kinds of failure and they never mix:
//! - **jl's own usage errors** (bad options, an unknown key): an `anyhow`
//!   error printed as `jl: error: ...`, exit [`USAGE`].
//! - **store trouble** (read-only, full, corrupt, locked): never an error.
//!   It is reported once with [`warn`] and the command runs uncached, so
//!   the cache can never turn a good command into a failure.
//!
//! The wrapped command's status passes through untouched; see [`code_of`].
//! A store command that fails at its work (I/O) exits [`RUNTIME`].

use std::process::ExitStatus;

/// A store command that could not do its work (an unreadable store, a
/// joblog that cannot be written, files that cannot be removed) or, for
/// `jl verify`, found problems.
pub const RUNTIME: i32 = 1;
/// jl's own usage errors (bad flags, bad durations, unknown keys, a store
/// jl does not trust).
pub const USAGE: i32 = 2;
/// The command exists but could not be executed (permissions, a directory).
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found on `PATH`.
pub const NOT_FOUND: i32 = 127;
/// Exit statuses of `jl map` are capped here, as GNU parallel does.
pub const MAX_FAILED_JOBS: i32 = 101;

/// The shell's convention for a child status: its code, or 128 + signal.
pub fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// The exit status for an error a command returns: [`RUNTIME`] when the
/// system refused something (an I/O error anywhere in its chain), else
/// [`USAGE`].
pub fn code_of_error(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<std::io::Error>()) {
        RUNTIME
    } else {
        USAGE
    }
}

/// The exit status of a map: the number of failed jobs, capped.
pub fn code_of_failures(failed: u64) -> i32 {
    failed.min(MAX_FAILED_JOBS as u64) as i32
}

/// Prints one `jl: warning: ...` line on stderr.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("jl: warning: {message}");
}
