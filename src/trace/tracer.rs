//! The ptrace side of `--trace`: starts the command stopped, installs the
//! seccomp filter of [`super::filter`], follows every fork, vfork, clone
//! and exec, and reports each file call's path and result to
//! [`Accesses`].
//!
//! The command is forked on a thread of its own, which stays its tracer
//! (ptrace requests must come from the thread that attached) and waits
//! only for its own tracees (`__WNOTHREAD`), so several traced jobs of
//! `jl map` run side by side. Between `fork` and `execve` the child makes
//! only system calls; everything it needs is prepared before the fork.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::Instant;

use libc::{c_int, c_long, pid_t};

use super::resolve::Resolver;
use super::sys;
use super::{Accesses, Look};
use crate::exec::{self, Finished, Job, SpawnError, Stdin, Tee};

const WNOTHREAD: c_int = 0x2000_0000;
const OPTIONS: c_int = libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL;

/// Everything the child needs between fork and exec, made beforehand.
struct Prepared {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// Borrowed from the caller, which keeps it open until the child ran.
    stdin: Option<c_int>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    /// Close-on-exec: the child writes a [`sys::Setup`] code here if it cannot
    /// get traced; a successful exec closes it unwritten.
    status: OwnedFd,
    own_group: bool,
    filter: Vec<libc::sock_filter>,
}

/// What a setup failure code (see [`sys::Setup`]) means to a user.
fn setup_failure_text(code: u8) -> &'static str {
    match code {
        // A child of a traced jl is already its tracer's tracee.
        c if c == sys::Setup::Ptrace as u8 && super::being_traced() => {
            "jl is itself being traced (an outer --trace, a debugger)"
        }
        c if c == sys::Setup::Ptrace as u8 => "ptrace is not allowed here",
        c if c == sys::Setup::NoNewPrivs as u8 => "no_new_privs cannot be set",
        c if c == sys::Setup::Seccomp as u8 => "seccomp filters are not allowed here",
        _ => "the traced exec failed",
    }
}

/// Why `trace` gave no trace.
enum Failure {
    Spawn(SpawnError),
    /// The command never started under the tracer: it can run untraced.
    Unavailable(&'static str, Box<Accesses>),
}

fn cstring(s: &OsStr) -> Result<CString, SpawnError> {
    CString::new(s.as_bytes()).map_err(|_| SpawnError {
        code: crate::error::NOT_EXECUTABLE,
        message: format!("{}: an argument holds a NUL byte", s.to_string_lossy()),
    })
}

fn io_error(e: std::io::Error) -> SpawnError {
    SpawnError {
        code: crate::error::NOT_EXECUTABLE,
        message: format!("cannot start the traced command: {e}"),
    }
}

/// Runs a command under the tracer, teeing its output like
/// [`exec::run`], and returns what it touched. Where tracing is not
/// allowed (a seccomp policy, a ptrace ban), the command runs untraced and
/// the result is marked uncacheable, so `--trace` never fails a command.
pub fn run(
    job: Job<'_>,
    stdout: Tee,
    stderr: Tee,
    accesses: Accesses,
) -> Result<(Finished, Accesses), SpawnError> {
    exec::forward_signals();
    let Job {
        exe,
        argv,
        stdin,
        own_group,
        timeout,
    } = job;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| io_error(e.into()))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let null;
    let stdin_fd = match &stdin {
        Stdin::Inherit => None,
        Stdin::Null => {
            null = File::open("/dev/null").map_err(io_error)?;
            Some(null.as_raw_fd())
        }
        Stdin::File(f) => Some(f.as_raw_fd()),
    };
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        let mut pair = k;
        pair.push("=");
        pair.push(v);
        envp.push(cstring(&pair)?);
    }
    let prepared = Prepared {
        exe: cstring(exe.as_os_str())?,
        argv: argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
        envp,
        stdin: stdin_fd,
        stdout: out_w,
        stderr: err_w,
        status: status_w,
        own_group,
        filter: super::filter::program(),
    };
    let start = Instant::now();
    let (pid_tx, pid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let tracer = std::thread::Builder::new()
        .name("jl-tracer".into())
        .spawn(move || {
            let traced = trace(prepared, File::from(status_r), &pid_tx, accesses);
            let _ = done_tx.send(());
            traced
        })
        .map_err(io_error)?;
    let out_thread = std::thread::spawn(move || stdout.pump(File::from(out_r)));
    let err_thread = std::thread::spawn(move || stderr.pump(File::from(err_r)));
    let pid = pid_rx.recv().ok();
    if let Some(pid) = pid {
        exec::register(pid as u32, own_group);
    }
    let mut timed_out = false;
    if let (Some(limit), Some(pid)) = (timeout, pid) {
        if done_rx.recv_timeout(limit).is_err() {
            timed_out = true;
            exec::stop_job(pid as u32, own_group, |grace| {
                done_rx.recv_timeout(grace).is_ok()
            });
        }
    }
    let traced = tracer.join().expect("the tracer thread panicked");
    if let Some(pid) = pid {
        exec::unregister(pid as u32);
    }
    let stdout = out_thread.join().expect("stdout pump panicked");
    let stderr = err_thread.join().expect("stderr pump panicked");
    let (status, accesses) = match traced {
        Ok(traced) => traced,
        Err(Failure::Spawn(e)) => return Err(e),
        Err(Failure::Unavailable(why, mut accesses)) => {
            accesses.refuse(format!("it could not be traced: {why}"));
            let job = Job {
                exe,
                argv,
                stdin,
                own_group,
                timeout,
            };
            return Ok((exec::run(job, stdout, stderr)?, *accesses));
        }
    };
    Ok((
        Finished {
            status,
            duration: start.elapsed(),
            stdout,
            stderr,
            timed_out,
        },
        accesses,
    ))
}

/// The code a child wrote on the status pipe, if it failed to be traced.
fn setup_failure(mut status: &File) -> Option<&'static str> {
    use std::io::Read;
    let mut code = [0u8];
    match status.read(&mut code) {
        Ok(1) => Some(setup_failure_text(code[0])),
        _ => None,
    }
}

/// On the tracer thread: fork, trace to the end of the last tracee.
fn trace(
    prepared: Prepared,
    status_pipe: File,
    pid_tx: &mpsc::Sender<pid_t>,
    accesses: Accesses,
) -> Result<(ExitStatus, Accesses), Failure> {
    let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
        let each = strings.iter().map(|s| s.as_ptr());
        each.chain([std::ptr::null()]).collect()
    };
    let (argv, envp) = (pointers(&prepared.argv), pointers(&prepared.envp));
    let forked = sys::fork(&sys::Child {
        own_group: prepared.own_group,
        stdin: prepared.stdin,
        stdout: prepared.stdout.as_raw_fd(),
        stderr: prepared.stderr.as_raw_fd(),
        status: prepared.status.as_raw_fd(),
        filter: &prepared.filter,
        exe: &prepared.exe,
        argv: &argv,
        envp: &envp,
    });
    // The write ends now live in the child only, so the pumps see EOF
    // when the last process holding them ends.
    drop(prepared);
    let pid = forked.map_err(|e| Failure::Spawn(io_error(e)))?;
    let _ = pid_tx.send(pid);
    let (stopped, status) = sys::wait(pid, libc::__WALL);
    if stopped != pid || !libc::WIFSTOPPED(status) {
        let why = setup_failure(&status_pipe).unwrap_or("the child did not stop");
        return Err(Failure::Unavailable(why, Box::new(accesses)));
    }
    if !sys::set_options(pid, OPTIONS) {
        sys::kill(pid, libc::SIGKILL);
        sys::wait(pid, libc::__WALL);
        return Err(Failure::Unavailable(
            "ptrace options are refused",
            Box::new(accesses),
        ));
    }
    let mut tracer = Tracer {
        acc: accesses,
        resolver: Resolver::default(),
        started: HashSet::from([pid]),
        pending: HashMap::new(),
        cwd: HashMap::new(),
    };
    tracer.resume(pid, 0);
    let root = tracer.follow(pid);
    if let Some(why) = setup_failure(&status_pipe) {
        return Err(Failure::Unavailable(why, Box::new(tracer.acc)));
    }
    match root {
        Some(status) => Ok((ExitStatus::from_raw(status), tracer.acc)),
        None => Err(Failure::Spawn(io_error(std::io::Error::other(
            "lost track of the traced command",
        )))),
    }
}

/// A file call seen at entry whose result decides what it means. Every
/// path is as the kernel resolves it (see [`super::resolve`]).
enum Pending {
    Open {
        path: PathBuf,
        flags: i64,
        follow: bool,
    },
    Exec(PathBuf),
    /// A call that looks at a path (`stat`, `access`, `readlink`).
    Look {
        path: PathBuf,
        how: Look,
        no_follow: bool,
    },
    Remove(PathBuf),
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Link {
        from: Option<PathBuf>,
        to: PathBuf,
    },
    MakeDir(PathBuf),
    Truncate(PathBuf),
    /// `chmod`: the file's metadata changes, so it is an output.
    Chmod(PathBuf),
    /// `utimensat`, `utimes`: its times are the command's.
    Times(PathBuf),
    /// `mknod`, `mkfifo`.
    MakeNode(PathBuf),
    /// `symlink`: a namespace change, nothing to record but that.
    Symlink(PathBuf),
}

struct Tracer {
    acc: Accesses,
    resolver: Resolver,
    /// Tracees whose first stop was seen (a new child's first stop may
    /// arrive before its parent's fork event).
    started: HashSet<pid_t>,
    pending: HashMap<pid_t, Pending>,
    cwd: HashMap<pid_t, PathBuf>,
}

/// A change to `path` failed: what is there now is what the call met.
/// When it was refused (`EACCES`) and jl is too, the refusal is the
/// dependency; refused otherwise, the run is not cached.
fn failed_at(acc: &mut Accesses, pid: pid_t, path: PathBuf, denied: bool) {
    if !denied {
        acc.look(pid, path, Look::Kind, true);
    } else if !acc.denied(pid, path.clone()) {
        acc.refuse(format!("it was denied a change to '{}'", path.display()));
    }
}

fn errno_of(ret: i64) -> Option<c_int> {
    (-4095..0).contains(&ret).then_some(-ret as c_int)
}

/// Whether `flags` (of an `*at` call) asks not to follow a final symlink.
fn no_follow(flags: u64) -> bool {
    flags & libc::AT_SYMLINK_NOFOLLOW as u64 != 0
}

impl Tracer {
    /// Waits on every tracee until the last one is gone; returns the wait
    /// status of `root`.
    fn follow(&mut self, root: pid_t) -> Option<c_int> {
        let mut root_status = None;
        loop {
            let (pid, status) = sys::wait(-1, libc::__WALL | WNOTHREAD);
            if pid < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    _ => return root_status,
                }
            }
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                if pid == root {
                    root_status = Some(status);
                }
                self.started.remove(&pid);
                self.pending.remove(&pid);
                self.cwd.remove(&pid);
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let sig = libc::WSTOPSIG(status);
            let event = status >> 16;
            match (sig, event) {
                (libc::SIGTRAP, libc::PTRACE_EVENT_SECCOMP) => self.entry(pid),
                (s, 0) if s == libc::SIGTRAP | 0x80 => {
                    self.exit(pid);
                    self.resume(pid, 0);
                }
                (
                    libc::SIGTRAP,
                    libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE,
                ) => self.resume(pid, 0),
                (libc::SIGTRAP, libc::PTRACE_EVENT_EXEC) => {
                    let former = self.event_message(pid) as pid_t;
                    if former != pid {
                        if let Some(p) = self.pending.remove(&former) {
                            self.pending.insert(pid, p);
                        }
                        self.started.remove(&former);
                    }
                    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
                        self.acc.read(exe);
                    }
                    self.resume(pid, 0);
                }
                (libc::SIGSTOP, _) if self.started.insert(pid) => self.resume(pid, 0),
                (sig, _) => self.resume(pid, sig),
            }
        }
    }

    /// Continues a tracee, to its syscall exit when a call is pending.
    fn resume(&self, pid: pid_t, sig: c_int) {
        let request = if self.pending.contains_key(&pid) {
            libc::PTRACE_SYSCALL
        } else {
            libc::PTRACE_CONT
        };
        sys::resume(request, pid, sig);
    }

    fn event_message(&self, pid: pid_t) -> u64 {
        sys::event_message(pid)
    }

    fn regs(&self, pid: pid_t) -> Option<libc::user_regs_struct> {
        sys::regs(pid)
    }

    /// A seccomp stop: a traced call is about to run.
    fn entry(&mut self, pid: pid_t) {
        let Some(regs) = self.regs(pid) else {
            self.resume(pid, 0);
            return;
        };
        if self.event_message(pid) == u64::from(super::filter::FOREIGN) {
            self.acc
                .refuse("it makes 32-bit or x32 system calls, which --trace cannot follow");
            self.resume(pid, 0);
            return;
        }
        let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
        let at = |i: usize| a[i] as i32;
        let here = libc::AT_FDCWD;
        let nr = regs.orig_rax as c_long;
        let look = |path, how, no_follow| Pending::Look {
            path,
            how,
            no_follow,
        };
        let pending = match nr {
            libc::SYS_open => self.open(pid, here, a[0], a[1] as i64),
            libc::SYS_openat => self.open(pid, at(0), a[1], a[2] as i64),
            libc::SYS_openat2 => {
                let flags = read_u64(pid, a[2]).unwrap_or(0) as i64;
                self.open(pid, at(0), a[1], flags)
            }
            libc::SYS_creat => self.open(
                pid,
                here,
                a[0],
                (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as i64,
            ),
            libc::SYS_execve => self.path(pid, here, a[0], true).map(Pending::Exec),
            libc::SYS_execveat => {
                let follow = !no_follow(a[4]);
                self.path_or_fd(pid, at(0), a[1], follow).map(Pending::Exec)
            }
            libc::SYS_rename => self.rename(pid, (here, a[0]), (here, a[1])),
            libc::SYS_renameat => self.rename(pid, (at(0), a[1]), (at(2), a[3])),
            libc::SYS_renameat2 => {
                if a[4] & libc::RENAME_EXCHANGE as u64 != 0 {
                    self.acc.refuse(
                        "it swaps two paths (RENAME_EXCHANGE), which --trace does not replay",
                    );
                }
                self.rename(pid, (at(0), a[1]), (at(2), a[3]))
            }
            libc::SYS_unlink | libc::SYS_rmdir => self.remove(pid, here, a[0]),
            libc::SYS_unlinkat => self.remove(pid, at(0), a[1]),
            libc::SYS_link => self.link(pid, Some((here, a[0], false)), (here, a[1])),
            libc::SYS_linkat => {
                let follow = a[4] & libc::AT_SYMLINK_FOLLOW as u64 != 0;
                self.link(pid, Some((at(0), a[1], follow)), (at(2), a[3]))
            }
            libc::SYS_symlink => self.path(pid, here, a[1], false).map(|p| {
                self.acc.will_change(pid, &p, false);
                Pending::Symlink(p)
            }),
            libc::SYS_symlinkat => self.path(pid, at(1), a[2], false).map(|p| {
                self.acc.will_change(pid, &p, false);
                Pending::Symlink(p)
            }),
            libc::SYS_mkdir => self.path(pid, here, a[0], false).map(Pending::MakeDir),
            libc::SYS_mkdirat => self.path(pid, at(0), a[1], false).map(Pending::MakeDir),
            libc::SYS_mknod => self.path(pid, here, a[0], false).map(Pending::MakeNode),
            libc::SYS_mknodat => self.path(pid, at(0), a[1], false).map(Pending::MakeNode),
            libc::SYS_truncate => self.path(pid, here, a[0], true).map(|p| {
                self.acc.will_change(pid, &p, true);
                Pending::Truncate(p)
            }),
            libc::SYS_chmod => {
                let path = self.path(pid, here, a[0], true);
                self.chmod(pid, path)
            }
            libc::SYS_fchmod => self.chmod(pid, fd_path(pid, at(0))),
            libc::SYS_fchmodat | libc::SYS_fchmodat2 => {
                let follow = nr == libc::SYS_fchmodat || !no_follow(a[3]);
                let path = self.path_or_fd(pid, at(0), a[1], follow);
                self.chmod(pid, path)
            }
            libc::SYS_utimensat => {
                // A null path is `futimens` on the descriptor.
                let path = if a[1] == 0 {
                    fd_path(pid, at(0))
                } else {
                    self.path(pid, at(0), a[1], !no_follow(a[3]))
                };
                path.map(Pending::Times)
            }
            libc::SYS_utimes | libc::SYS_utime => {
                self.path(pid, here, a[0], true).map(Pending::Times)
            }
            libc::SYS_futimesat => self.path(pid, at(0), a[1], true).map(Pending::Times),
            libc::SYS_chroot => {
                self.acc.refuse(
                    "it changes its root directory (chroot), which --trace does not follow",
                );
                None
            }
            libc::SYS_chdir | libc::SYS_fchdir => {
                // Threads may share a working directory: forget them all.
                self.cwd.clear();
                None
            }
            libc::SYS_stat | libc::SYS_access => self
                .path(pid, here, a[0], true)
                .map(|p| look(p, Look::Stat, false)),
            libc::SYS_lstat => self
                .path(pid, here, a[0], false)
                .map(|p| look(p, Look::Stat, true)),
            libc::SYS_readlink => self
                .path(pid, here, a[0], false)
                .map(|p| look(p, Look::Kind, true)),
            libc::SYS_readlinkat => self
                .path(pid, at(0), a[1], false)
                .map(|p| look(p, Look::Kind, true)),
            libc::SYS_newfstatat => {
                let nf = no_follow(a[3]);
                self.path(pid, at(0), a[1], !nf)
                    .map(|p| look(p, Look::Stat, nf))
            }
            libc::SYS_statx => {
                let nf = no_follow(a[2]);
                self.path(pid, at(0), a[1], !nf)
                    .map(|p| look(p, Look::Stat, nf))
            }
            libc::SYS_faccessat => self
                .path(pid, at(0), a[1], true)
                .map(|p| look(p, Look::Stat, false)),
            libc::SYS_faccessat2 => {
                let nf = no_follow(a[3]);
                self.path(pid, at(0), a[1], !nf)
                    .map(|p| look(p, Look::Stat, nf))
            }
            libc::SYS_getdents | libc::SYS_getdents64 => {
                if let Some(dir) = fd_path(pid, at(0)) {
                    self.acc.listed(dir);
                }
                None
            }
            libc::SYS_io_uring_setup => {
                self.acc
                    .refuse("it uses io_uring, which --trace cannot follow");
                None
            }
            libc::SYS_open_by_handle_at => {
                self.acc
                    .refuse("it opens files by handle, which --trace cannot follow");
                None
            }
            _ => None,
        };
        if let Some(p) = pending {
            self.pending.insert(pid, p);
        }
        self.resume(pid, 0);
    }

    /// A syscall-exit stop: the pending call's result is in rax.
    fn exit(&mut self, pid: pid_t) {
        let Some(pending) = self.pending.remove(&pid) else {
            return;
        };
        let Some(regs) = self.regs(pid) else {
            return;
        };
        let ret = regs.rax as i64;
        let ok = ret >= 0;
        let denied = matches!(errno_of(ret), Some(libc::EACCES | libc::EPERM));
        let acc = &mut self.acc;
        let namespace_changed = ok
            && matches!(
                pending,
                Pending::Remove(_)
                    | Pending::Rename { .. }
                    | Pending::Link { .. }
                    | Pending::MakeDir(_)
                    | Pending::MakeNode(_)
                    | Pending::Symlink(_)
            );
        match pending {
            Pending::Open {
                path,
                flags,
                follow,
            } => {
                let access = flags & libc::O_ACCMODE as i64;
                let writes = access != libc::O_RDONLY as i64
                    || flags & (libc::O_CREAT | libc::O_TRUNC) as i64 != 0;
                let exclusive = (libc::O_CREAT | libc::O_EXCL) as i64;
                if ok && flags & libc::O_PATH as i64 != 0 {
                    // A handle for path operations: nothing is read.
                    acc.look(pid, path, Look::Kind, !follow);
                } else if ok && flags & exclusive == exclusive {
                    acc.created(path);
                } else if ok && writes {
                    // What was there before, if it mattered, was taken
                    // at entry (`will_change`).
                    acc.wrote(path);
                } else if ok {
                    acc.read(path);
                } else if denied {
                    if !acc.denied(pid, path.clone()) {
                        acc.refuse(format!("it was denied access to '{}'", path.display()));
                    }
                } else {
                    acc.look(pid, path, Look::Kind, !follow);
                }
            }
            Pending::Exec(path) => {
                if ok {
                    acc.read(path);
                } else if !(denied && acc.denied(pid, path.clone())) {
                    acc.look(pid, path, Look::Stat, false);
                }
            }
            Pending::Look {
                path,
                how,
                no_follow,
            } => {
                if denied && !path.starts_with("/proc") {
                    if !acc.denied(pid, path.clone()) {
                        acc.refuse(format!("it was denied a look at '{}'", path.display()));
                    }
                } else {
                    acc.look(pid, path, how, no_follow);
                }
            }
            Pending::Remove(path) if ok => acc.removed(path),
            Pending::Rename { from, to } if ok => {
                if acc.in_roots(&from) && !acc.in_roots(&to) && !acc.is_ignored(&to) {
                    acc.refuse(format!(
                        "it moved '{}' to '{}', out of where outputs are kept, which a hit could not redo",
                        from.display(),
                        to.display()
                    ));
                }
                acc.removed(from);
                acc.wrote(to);
            }
            Pending::Link { from, to } if ok => {
                if let Some(from) = from {
                    acc.read(from);
                }
                acc.created(to);
            }
            Pending::MakeDir(path) if ok => acc.made_dir(path),
            Pending::Truncate(path) | Pending::Chmod(path) if ok => acc.wrote(path),
            Pending::Times(path) if ok => acc.set_times(pid, path),
            Pending::MakeNode(path) if ok => {
                if acc.in_roots(&path) {
                    acc.refuse(format!(
                        "it made the special file '{}', which --trace does not restore",
                        path.display()
                    ));
                }
            }
            Pending::Symlink(path) if ok => acc.created(path),
            // A change that failed looked at its paths: what made it fail
            // (a missing directory, a name taken) decides what follows.
            Pending::Remove(path)
            | Pending::MakeDir(path)
            | Pending::Truncate(path)
            | Pending::Chmod(path)
            | Pending::Times(path)
            | Pending::MakeNode(path)
            | Pending::Symlink(path) => failed_at(acc, pid, path, denied),
            Pending::Rename { from, to } => {
                failed_at(acc, pid, from, denied);
                failed_at(acc, pid, to, denied);
            }
            Pending::Link { from, to } => {
                if let Some(from) = from {
                    failed_at(acc, pid, from, denied);
                }
                failed_at(acc, pid, to, denied);
            }
        }
        if namespace_changed {
            self.resolver.forget();
        }
    }

    fn open(&mut self, pid: pid_t, dirfd: i32, addr: u64, flags: i64) -> Option<Pending> {
        if flags & libc::O_TMPFILE as i64 == libc::O_TMPFILE as i64 {
            // Nameless until linked into place, which `linkat` shows.
            return None;
        }
        let exclusive = (libc::O_CREAT | libc::O_EXCL) as i64;
        let follow = flags & libc::O_NOFOLLOW as i64 == 0 && flags & exclusive != exclusive;
        let path = self.path(pid, dirfd, addr, follow)?;
        let access = flags & libc::O_ACCMODE as i64;
        let changes =
            access != libc::O_RDONLY as i64 || flags & (libc::O_CREAT | libc::O_TRUNC) as i64 != 0;
        if changes && flags & libc::O_PATH as i64 == 0 {
            // Without O_TRUNC, what is there may survive into the result.
            self.acc
                .will_change(pid, &path, flags & libc::O_TRUNC as i64 == 0);
        }
        Some(Pending::Open {
            path,
            flags,
            follow,
        })
    }

    fn remove(&mut self, pid: pid_t, dirfd: i32, addr: u64) -> Option<Pending> {
        let path = self.path(pid, dirfd, addr, false)?;
        self.acc.will_remove(pid, &path);
        Some(Pending::Remove(path))
    }

    fn rename(&mut self, pid: pid_t, from: (i32, u64), to: (i32, u64)) -> Option<Pending> {
        let from = self.path(pid, from.0, from.1, false)?;
        let to = self.path(pid, to.0, to.1, false)?;
        // What is renamed is read; what it replaces only matters if read.
        self.acc.will_change(pid, &from, true);
        self.acc.will_change(pid, &to, false);
        Some(Pending::Rename { from, to })
    }

    fn link(
        &mut self,
        pid: pid_t,
        from: Option<(i32, u64, bool)>,
        to: (i32, u64),
    ) -> Option<Pending> {
        let from = from.and_then(|(fd, addr, follow)| self.path(pid, fd, addr, follow));
        let to = self.path(pid, to.0, to.1, false)?;
        self.acc.will_change(pid, &to, false);
        Some(Pending::Link { from, to })
    }

    fn chmod(&mut self, pid: pid_t, path: Option<PathBuf>) -> Option<Pending> {
        let path = path?;
        // A directory's mode is not restored; a file's is, with its content.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            self.acc.will_change(pid, &path, true);
            return Some(Pending::Chmod(path));
        }
        None
    }

    /// The path a call names, resolved as the kernel resolves it from the
    /// process's working directory or the call's directory descriptor;
    /// every symlink passed is recorded, and how the path was named.
    /// `follow`: the call follows a symlink in the last component.
    fn path(&mut self, pid: pid_t, dirfd: i32, addr: u64, follow: bool) -> Option<PathBuf> {
        let raw = PathBuf::from(OsString::from_vec(read_cstr(pid, addr)?));
        if raw.as_os_str().is_empty() {
            return None;
        }
        let absolute = raw.is_absolute();
        let base = if absolute {
            PathBuf::from("/")
        } else if dirfd == libc::AT_FDCWD {
            self.cwd_of(pid)?
        } else {
            fd_path(pid, dirfd)?
        };
        let resolved = self.resolver.resolve(pid, &base, &raw, follow);
        for (link, target) in resolved.links {
            self.acc.passed_link(link, target, absolute);
        }
        for dir in resolved.left {
            self.acc.name(&dir, absolute);
            self.acc.look(pid, dir, Look::Kind, false);
        }
        if resolved.nowhere {
            return None;
        }
        self.acc.name(&resolved.path, absolute);
        Some(resolved.path)
    }

    /// As [`Tracer::path`]; an empty path names the descriptor itself.
    fn path_or_fd(&mut self, pid: pid_t, dirfd: i32, addr: u64, follow: bool) -> Option<PathBuf> {
        match read_cstr(pid, addr) {
            Some(raw) if raw.is_empty() => fd_path(pid, dirfd),
            _ => self.path(pid, dirfd, addr, follow),
        }
    }

    fn cwd_of(&mut self, pid: pid_t) -> Option<PathBuf> {
        if let Some(cwd) = self.cwd.get(&pid) {
            return Some(cwd.clone());
        }
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        self.cwd.insert(pid, cwd.clone());
        Some(cwd)
    }
}

/// The file a tracee's descriptor is open on, if it is a path.
fn fd_path(pid: pid_t, fd: i32) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    path.is_absolute().then_some(path)
}

use sys::read_mem;

fn read_u64(pid: pid_t, addr: u64) -> Option<u64> {
    let mut buf = [0u8; 8];
    (read_mem(pid, addr, &mut buf) == 8).then(|| u64::from_ne_bytes(buf))
}

/// A NUL-terminated string of a tracee, read a page at a time so a string
/// ending just before an unmapped page is still read.
fn read_cstr(pid: pid_t, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < libc::PATH_MAX as usize {
        let mut page = [0u8; 4096];
        let len = 4096 - (at % 4096) as usize;
        let n = read_mem(pid, at, &mut page[..len]);
        if n == 0 {
            return None;
        }
        if let Some(end) = page[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&page[..end]);
            return Some(out);
        }
        out.extend_from_slice(&page[..n]);
        at += n as u64;
    }
    None
}
