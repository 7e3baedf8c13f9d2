//! The seccomp-bpf program that stops a traced command only at the
//! system calls that name files, so every other call runs at full speed.

use libc::{c_long, sock_filter};

/// The calls whose paths, results or descriptors `--trace` looks at.
pub const TRACED: &[c_long] = &[
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_rmdir,
    libc::SYS_truncate,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_getdents,
    libc::SYS_getdents64,
    libc::SYS_chmod,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchmodat2,
    libc::SYS_utimensat,
    libc::SYS_utimes,
    libc::SYS_utime,
    libc::SYS_futimesat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_chroot,
    libc::SYS_io_uring_setup,
    libc::SYS_open_by_handle_at,
];

/// `AUDIT_ARCH_X86_64`: the only entry point whose numbers are above.
const ARCH_X86_64: u32 = 0xc000_003e;
/// Calls through the x32 entry point carry this bit.
const X32_BIT: u32 = 0x4000_0000;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
/// The data the tracer reads back (PTRACE_GETEVENTMSG) for a call made
/// through another entry point, whose numbers mean other calls.
pub const FOREIGN: u32 = 1;
/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The program: another architecture or x32 is always traced (so the
/// tracer can refuse to cache it); on x86_64, the calls in [`TRACED`].
pub fn program() -> Vec<sock_filter> {
    let n = TRACED.len();
    let mut prog = vec![
        op(LD_W_ABS, 0, 0, ARCH),
        op(JEQ_K, 1, 0, ARCH_X86_64),
        op(RET_K, 0, 0, RET_TRACE | FOREIGN),
        op(LD_W_ABS, 0, 0, NR),
        op(JGE_K, 0, 1, X32_BIT),
        op(RET_K, 0, 0, RET_TRACE | FOREIGN),
    ];
    for (i, &nr) in TRACED.iter().enumerate() {
        // On a match, jump over the remaining tests and RET_ALLOW.
        let skip = u8::try_from(n - i).expect("a short list");
        prog.push(op(JEQ_K, skip, 0, nr as u32));
    }
    prog.push(op(RET_K, 0, 0, RET_ALLOW));
    prog.push(op(RET_K, 0, 0, RET_TRACE));
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would, on (arch, nr).
    fn verdict(arch: u32, nr: u32) -> u32 {
        let prog = program();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => acc = if i.k == ARCH { arch } else { nr },
                JEQ_K | JGE_K => {
                    let hit = if i.code == JEQ_K {
                        acc == i.k
                    } else {
                        acc >= i.k
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn traces_file_calls_and_foreign_entry_points_only() {
        for &nr in TRACED {
            assert_eq!(verdict(ARCH_X86_64, nr as u32), RET_TRACE, "{nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_mmap,
            libc::SYS_close,
        ] {
            assert_eq!(verdict(ARCH_X86_64, nr as u32), RET_ALLOW, "{nr}");
        }
        assert_eq!(verdict(ARCH_X86_64, X32_BIT | 1), RET_TRACE | FOREIGN);
        assert_eq!(verdict(0x4000_0003, 3), RET_TRACE | FOREIGN, "i386");
    }
}
