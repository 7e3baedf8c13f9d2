//! Spawning a command: finding it on PATH, teeing its output, forwarding
//! signals and turning its end into an exit code.
//!
//! Output is copied in 64 KiB chunks from the child's pipes to the live
//! destination (the terminal) and into a store blob at the same time, so a
//! command printing gigabytes runs with flat memory. Signal handlers are
//! installed only here, on the miss path, so a cache hit never pays for
//! them.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::error;
use crate::store::BlobWriter;

/// Why a command could not be started, with the shell's exit code.
#[derive(Debug)]
pub struct SpawnError {
    pub code: i32,
    pub message: String,
}

/// Finds the program the way `execvp` would: a name with a slash is a
/// path; otherwise the first executable regular file on `PATH`.
pub fn resolve(program: &OsStr) -> Result<PathBuf, SpawnError> {
    let shown = program.to_string_lossy();
    if program.is_empty() {
        return Err(SpawnError {
            code: error::NOT_FOUND,
            message: "empty command name".into(),
        });
    }
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
            Ok(m) if m.is_dir() => Err(not_executable(&shown, "is a directory")),
            Ok(_) => Err(not_executable(&shown, "permission denied")),
            Err(_) => Err(not_found(&shown)),
        };
    }
    let path_var =
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path_var) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(not_found(&shown))
}

fn not_found(shown: &str) -> SpawnError {
    SpawnError {
        code: error::NOT_FOUND,
        message: format!("{shown}: command not found"),
    }
}

fn not_executable(shown: &str, why: &str) -> SpawnError {
    SpawnError {
        code: error::NOT_EXECUTABLE,
        message: format!("{shown}: cannot execute: {why}"),
    }
}

/// Where one output stream of the child goes.
#[derive(Default)]
pub struct Tee {
    /// Shown live (the terminal, or a spool file in `jl map --no-cache`).
    pub live: Option<Box<dyn Write + Send>>,
    /// Captured into the store.
    pub capture: Option<BlobWriter>,
    /// The live side refused bytes (a closed pipe): the capture is partial.
    pub live_broken: bool,
    /// Reading the command's output failed: the capture may be partial.
    pub read_error: Option<io::Error>,
}

impl Tee {
    /// Tee to one of jl's own standard streams (1 or 2) and a capture.
    pub fn to_fd(fd: std::os::fd::BorrowedFd<'_>, capture: Option<BlobWriter>) -> Tee {
        let live: Option<Box<dyn Write + Send>> = fd
            .try_clone_to_owned()
            .ok()
            .map(|owned| Box::new(File::from(owned)) as Box<dyn Write + Send>);
        Tee {
            live,
            capture,
            ..Tee::default()
        }
    }

    pub(crate) fn pump(mut self, mut from: impl Read) -> Tee {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.read_error = Some(e);
                    break;
                }
            };
            if let Some(capture) = self.capture.as_mut() {
                let _ = capture.write(&buf[..n]);
            }
            if let Some(live) = self.live.as_mut() {
                if live.write_all(&buf[..n]).is_err() {
                    // Stop reading: the child meets the closed pipe as it
                    // would have without jl.
                    self.live_broken = true;
                    break;
                }
            }
        }
        if let Some(live) = self.live.as_mut() {
            let _ = live.flush();
        }
        self
    }
}

/// How a finished command ended.
pub struct Finished {
    pub status: ExitStatus,
    pub duration: Duration,
    pub stdout: Tee,
    pub stderr: Tee,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
}

impl Finished {
    pub fn code(&self) -> i32 {
        error::code_of(self.status)
    }
}

/// What a command reads as its standard input.
pub enum Stdin {
    Null,
    Inherit,
    File(File),
}

impl From<Stdin> for Stdio {
    fn from(stdin: Stdin) -> Stdio {
        match stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Inherit => Stdio::inherit(),
            Stdin::File(f) => Stdio::from(f),
        }
    }
}

/// How to run one command.
pub struct Job<'a> {
    pub exe: &'a Path,
    pub argv: &'a [std::ffi::OsString],
    pub stdin: Stdin,
    /// Put the command in its own process group (jobs of `jl map`), so
    /// halting kills everything it started.
    pub own_group: bool,
    pub timeout: Option<Duration>,
}

/// Runs a command to its end, teeing stdout and stderr.
pub fn run(job: Job<'_>, stdout: Tee, stderr: Tee) -> Result<Finished, SpawnError> {
    forward_signals();
    let mut cmd = Command::new(job.exe);
    cmd.arg0(&job.argv[0])
        .args(&job.argv[1..])
        .stdin(Stdio::from(job.stdin))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if job.own_group {
        cmd.process_group(0);
    }
    let start = Instant::now();
    let shown = job.argv[0].to_string_lossy();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => not_found(&shown),
        _ => not_executable(&shown, &e.to_string()),
    })?;
    let pid = child.id();
    register(pid, job.own_group);
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || stdout.pump(out));
    let err_thread = std::thread::spawn(move || stderr.pump(err));
    let mut timed_out = false;
    let status = match job.timeout {
        None => child.wait(),
        Some(limit) => {
            let mut nap = Duration::from_millis(1);
            loop {
                if let Some(status) = child.try_wait().transpose() {
                    break status;
                }
                if start.elapsed() >= limit {
                    timed_out = true;
                    stop_job(pid, job.own_group, |grace| {
                        std::thread::sleep(grace);
                        false
                    });
                    break child.wait();
                }
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
        }
    };
    unregister(pid);
    let status = status.map_err(|e| not_executable(&shown, &e.to_string()))?;
    let stdout = out_thread.join().expect("stdout pump panicked");
    let stderr = err_thread.join().expect("stderr pump panicked");
    Ok(Finished {
        status,
        duration: start.elapsed(),
        stdout,
        stderr,
        timed_out,
    })
}

/// Running children, as (pid, has its own process group).
static CHILDREN: Mutex<Vec<(u32, bool)>> = Mutex::new(Vec::new());
/// The last SIGINT/SIGTERM/SIGHUP jl received, or 0.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// The signal that interrupted jl, if any: nothing may be committed then.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

pub(crate) fn register(pid: u32, group: bool) {
    CHILDREN.lock().expect("registry").push((pid, group));
    if let Some(sig) = interrupted() {
        if let Some(sig) = signal_from(sig) {
            kill_job(pid, group, sig);
        }
    }
}

pub(crate) fn unregister(pid: u32) {
    CHILDREN
        .lock()
        .expect("registry")
        .retain(|(p, _)| *p != pid);
}

fn signal_from(raw: i32) -> Option<rustix::process::Signal> {
    use rustix::process::Signal;
    [Signal::INT, Signal::TERM, Signal::HUP, Signal::KILL]
        .into_iter()
        .find(|s| s.as_raw() == raw)
}

pub(crate) fn kill_job(pid: u32, group: bool, sig: rustix::process::Signal) {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return;
    };
    let _ = if group {
        rustix::process::kill_process_group(pid, sig)
    } else {
        rustix::process::kill_process(pid, sig)
    };
}

/// How long a job stopped for its `--timeout` gets between SIGTERM and
/// SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(200);

/// Stops a job that ran out of time: SIGTERM, then SIGKILL unless
/// `ended(grace)` says it ended within the grace period.
pub(crate) fn stop_job(pid: u32, group: bool, ended: impl FnOnce(Duration) -> bool) {
    kill_job(pid, group, rustix::process::Signal::TERM);
    if !ended(KILL_GRACE) {
        kill_job(pid, group, rustix::process::Signal::KILL);
    }
}

/// Sends `sig` to every running child (and its group, for map jobs).
pub fn signal_all(sig: rustix::process::Signal) {
    for &(pid, group) in CHILDREN.lock().expect("registry").iter() {
        kill_job(pid, group, sig);
    }
}

static FORWARDING: Once = Once::new();

/// Whether a signal now only sets [`interrupted`] instead of ending jl:
/// then a wait that could be long must check it.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub fn catching_signals() -> bool {
    FORWARDING.is_completed()
}

/// From the first spawn on, SIGINT, SIGTERM and SIGHUP are forwarded to
/// every running child and remembered, instead of killing jl mid-write.
/// Call it before starting threads: it also blocks SIGCHLD for the
/// threads started after it.
pub fn forward_signals() {
    FORWARDING.call_once(|| {
        block_child_exits();
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                INTERRUPTED.store(sig, Ordering::SeqCst);
                if let Some(sig) = signal_from(sig) {
                    // A terminal's Ctrl-C already reached children in our
                    // process group; a second SIGINT is harmless.
                    signal_all(sig);
                }
            }
        });
    });
}

/// Blocks SIGCHLD in the calling thread and every thread it starts from
/// now on. jl learns of a child's end by waiting for it, never from the
/// signal; yet its delivery, even unhandled, made a socket read with a
/// timeout (the Redis remote's) fail with EINTR in maps that start
/// children by the thousand. A blocked signal interrupts nothing, and
/// children start with an empty mask (std's spawn and the traced fork
/// both reset it).
fn block_child_exits() {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before
    // use; pthread_sigmask only reads it.
    #[allow(unsafe_code)]
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
