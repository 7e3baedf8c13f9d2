//! The system layer of `--trace`: fork and the traced child's own setup,
//! ptrace requests, waits, signals and reads of a tracee's memory, as safe
//! functions. This is the module of jl that holds `unsafe` (besides the
//! jobserver's one call in `tokens.rs` and the signal mask in `exec.rs`); each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CStr;

use libc::{c_int, c_long, pid_t};

/// The step at which a forked child failed to put itself under the
/// tracer; written as one byte on its status pipe.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Setup {
    Ptrace = 1,
    NoNewPrivs = 2,
    Seccomp = 3,
    Exec = 4,
}

/// Everything the child needs between fork and exec, made beforehand:
/// after the fork it may only make system calls.
pub struct Child<'a> {
    pub own_group: bool,
    /// Installed as descriptor 0, if any (else stdin is inherited).
    pub stdin: Option<c_int>,
    pub stdout: c_int,
    pub stderr: c_int,
    /// Close-on-exec: a [`Setup`] code is written here if the child cannot
    /// get traced; a successful exec closes it unwritten.
    pub status: c_int,
    pub filter: &'a [libc::sock_filter],
    pub exe: &'a CStr,
    /// Null-terminated arrays of pointers into strings that outlive the
    /// fork.
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
}

/// Forks a child that asks to be traced, stops itself for the tracer to
/// set its options, installs the seccomp filter and execs. Returns the
/// child's pid in the parent; never returns in the child.
pub fn fork(child: &Child<'_>) -> std::io::Result<pid_t> {
    assert_eq!(child.argv.last(), Some(&std::ptr::null()));
    assert_eq!(child.envp.last(), Some(&std::ptr::null()));
    let prog = libc::sock_fprog {
        len: u16::try_from(child.filter.len()).expect("a short filter"),
        filter: child.filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: between fork and exec the child only makes async-signal-safe
    // system calls on memory made before the fork (`child`, `prog`), which
    // the parent keeps alive until the fork has returned; it then execs or
    // calls `_exit`, so it never returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; this is the child.
        unsafe { set_up_and_exec(child, &prog) }
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid)
}

/// The forked child's side. Only system calls; no allocation.
///
/// # Safety
/// Call only in a freshly forked child, with pointers that stay valid.
unsafe fn set_up_and_exec(child: &Child<'_>, prog: &libc::sock_fprog) -> ! {
    // SAFETY: every call takes plain integers or pointers the caller keeps
    // valid (see `fork`); none allocates or takes a lock.
    unsafe {
        let fail = |step: Setup| -> ! {
            let code = [step as u8];
            libc::write(child.status, code.as_ptr().cast(), 1);
            libc::_exit(126)
        };
        if child.own_group {
            libc::setpgid(0, 0);
        }
        // dup2 onto itself would keep close-on-exec: clear it instead.
        let install = |fd: c_int, target: c_int| {
            if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else {
                libc::dup2(fd, target);
            }
        };
        if let Some(fd) = child.stdin {
            install(fd, 0);
        }
        install(child.stdout, 1);
        install(child.stderr, 2);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
            fail(Setup::Ptrace);
        }
        libc::raise(libc::SIGSTOP);
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail(Setup::NoNewPrivs);
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            prog as *const libc::sock_fprog,
        ) != 0
        {
            fail(Setup::Seccomp);
        }
        libc::execve(child.exe.as_ptr(), child.argv.as_ptr(), child.envp.as_ptr());
        fail(Setup::Exec)
    }
}

/// `waitpid(pid, flags)`: the pid that changed state (negative on error,
/// with errno set) and its status.
pub fn wait(pid: pid_t, flags: c_int) -> (pid_t, c_int) {
    let mut status = 0;
    // SAFETY: `status` is a valid place for the kernel to write an int.
    let got = unsafe { libc::waitpid(pid, &mut status, flags) };
    (got, status)
}

/// Sends `sig` to `pid`.
pub fn kill(pid: pid_t, sig: c_int) {
    // SAFETY: a plain system call with integer arguments.
    unsafe { libc::kill(pid, sig) };
}

/// `PTRACE_SETOPTIONS` on a stopped tracee; whether it was accepted.
pub fn set_options(pid: pid_t, options: c_int) -> bool {
    // SAFETY: a ptrace request with integer arguments only.
    unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options as c_long) == 0 }
}

/// Continues a stopped tracee with `request` (`PTRACE_CONT`,
/// `PTRACE_SYSCALL`), delivering `sig` (0 for none).
pub fn resume(request: libc::c_uint, pid: pid_t, sig: c_int) {
    // SAFETY: a ptrace request with integer arguments only.
    unsafe { libc::ptrace(request, pid, 0, sig as c_long) };
}

/// `PTRACE_GETEVENTMSG`: the event's message (a new pid, a former pid,
/// seccomp's return data).
pub fn event_message(pid: pid_t) -> u64 {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: GETEVENTMSG writes one unsigned long into `msg`.
    unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg as *mut _) };
    msg as u64
}

/// The registers of a stopped tracee.
pub fn regs(pid: pid_t) -> Option<libc::user_regs_struct> {
    // SAFETY: a zeroed register struct is a valid value (integers only),
    // and GETREGS fills exactly that struct.
    unsafe {
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        let r = libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _);
        (r == 0).then_some(regs)
    }
}

/// Reads up to `buf.len()` bytes of a tracee's memory at `addr`; how many
/// it read.
pub fn read_mem(pid: pid_t, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, and
    // reads the other process's memory, never ours.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n.max(0) as usize
}
