//! `jl run`: one command through the cache. The decisions are the
//! engine's ([`crate::run`]); this is what a user sees: the exit code, the
//! replayed bytes, `-v` lines, the joblog row, the background refresh.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::process::Stdio;

use crate::cli::RunArgs;
use crate::exec::{self, Job};
use crate::key;
use crate::run::{
    Hit, Live, Outcome, Settings, find, log, miss_reason, perform, prepare, program_name,
};
use crate::store::local::Verified;
use crate::store::{Entry, Store, now_ms};

/// Starts this same `jl run` again, detached, to re-run the command and
/// store its result; the caller does not wait. The refresh is told when it
/// was asked for (`JL_REFRESH` holds that time in ms): it skips the lookup
/// and runs under the key's lock, unless by then an entry made after that
/// moment exists, so of two refreshes asked for together the command runs
/// once, however late the second one starts. It is a separate process
/// because it must outlive the caller (a shell prompt).
fn refresh_in_background() {
    use std::os::unix::process::CommandExt;
    let spawned = std::env::current_exe().and_then(|me| {
        std::process::Command::new(me)
            .args(std::env::args_os().skip(1))
            .env(crate::config::REFRESH_ENV, now_ms().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
    });
    if let Err(e) = spawned {
        crate::error::warn(format_args!("cannot start a background refresh: {e}"));
    }
}

/// `jl run`: the whole front end. Returns the exit code.
pub fn main(args: RunArgs, settings: Settings) -> i32 {
    let refreshing = settings.refresh_asked_ms.is_some();
    let argv = args.command;
    let exe = match exec::resolve(&argv[0]) {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("jl: {}", e.message);
            return e.code;
        }
    };
    let store_root = settings.store.as_ref().map(Store::root);
    if let Some(why) = key::misdeclared_outputs(&argv, &settings.key, store_root) {
        eprintln!("jl: error: {why}");
        return crate::error::USAGE;
    }
    if args.warm && !refreshing {
        refresh_in_background();
        return 0;
    }
    // A background refresh gets no stdin, so neither does the caller:
    // their keys must match.
    let no_stdin = args.no_stdin || args.stale.is_some() || args.warm;
    let stdin = match crate::stdin::plan(no_stdin, settings.store.as_ref()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("jl: error: cannot read stdin: {e}");
            return crate::error::USAGE;
        }
    };
    let action = prepare(&settings, &argv, &exe, stdin.digest);
    let line = settings.verbose.then(|| key::shell_line(&argv));
    let look = !(settings.force || refreshing);
    if let (Some(action), Some(store), true) = (&action, &settings.store, look) {
        match find(&settings, store, action) {
            Ok(hit) => {
                if hit.stale {
                    refresh_in_background();
                }
                log_hit(&settings, &argv, &hit.entry, std::time::SystemTime::now());
                return replay(hit, line.as_deref());
            }
            Err(why) => {
                if settings.verbose {
                    log::miss(&action.key.hex(), &miss_reason(store, action, why));
                }
            }
        }
    }
    if let Some(line) = &line {
        log::calling(line);
    }
    let job = Job {
        exe: &exe,
        argv: &argv,
        stdin: stdin.stdio,
        own_group: false,
        timeout: None,
    };
    let started = std::time::SystemTime::now();
    match perform(&settings, action.as_ref(), job, Live::Terminal) {
        Err(e) => {
            eprintln!("jl: {}", e.message);
            e.code
        }
        Ok(Outcome::Hit(hit)) => {
            log_hit(&settings, &argv, &hit.entry, started);
            replay(hit, line.as_deref())
        }
        Ok(Outcome::Ran(ran)) => {
            use std::os::unix::process::ExitStatusExt;
            if settings.verbose {
                log::done(&program_name(&argv), ran.finished.duration);
            }
            let received = ran.stdout.size();
            log_run(
                &settings,
                &argv,
                crate::joblog::Row {
                    seq: 1,
                    start: started,
                    runtime: ran.finished.duration,
                    received,
                    exit: ran.finished.code(),
                    signal: ran.finished.status.signal().unwrap_or(0),
                    command: Vec::new(),
                    cached: false,
                },
            );
            ran.finished.code()
        }
    }
}

/// Appends a hit's row to `JL_LOG`, if set.
fn log_hit(settings: &Settings, argv: &[OsString], entry: &Entry, started: std::time::SystemTime) {
    log_run(
        settings,
        argv,
        crate::joblog::Row {
            seq: 1,
            start: started,
            runtime: started.elapsed().unwrap_or_default(),
            received: entry.stdout.size,
            exit: entry.exit_code,
            signal: 0,
            command: Vec::new(),
            cached: true,
        },
    );
}

/// Appends `row` (its command filled in from `argv`) to `JL_LOG`, if set.
fn log_run(settings: &Settings, argv: &[OsString], row: crate::joblog::Row) {
    if let Some(path) = &settings.log {
        let row = crate::joblog::Row {
            command: key::shell_bytes(argv),
            ..row
        };
        crate::joblog::append_to(path, &row);
    }
}

/// Writes a hit's stdout and stderr and returns its exit code.
fn replay(hit: Hit, line: Option<&str>) -> i32 {
    if let Some(line) = line {
        log::cached(line, hit.entry.duration_ms);
    }
    let write = |v: Verified, fd: std::os::fd::BorrowedFd<'_>| -> io::Result<()> {
        let mut out = File::from(fd.try_clone_to_owned()?);
        v.write_to(&mut out)
    };
    let result = write(hit.stdout, io::stdout().as_fd())
        .and_then(|()| write(hit.stderr, io::stderr().as_fd()));
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("jl: error: cannot write the cached output: {e}");
            crate::error::RUNTIME
        }
        Ok(()) => hit.entry.exit_code,
    }
}
