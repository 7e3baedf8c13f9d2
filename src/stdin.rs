//! How stdin enters the key and reaches the command: the bytes the
//! command can read are part of its key, and nothing else about stdin is.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use crate::digest::Digest;
use crate::exec::Stdin;
use crate::store::Store;

/// How stdin enters the key and reaches the command.
pub struct Plan {
    pub digest: Option<Digest>,
    pub stdio: Stdin,
}

/// A pipe, FIFO or socket is read to its end into a temp file (hashed as it
/// goes) which the command then reads; a regular file is hashed from its
/// current offset and handed over untouched; a terminal or /dev/null passes
/// through unhashed. Nothing to read is no stdin in the key.
pub fn plan(no_stdin: bool, store: Option<&Store>) -> io::Result<Plan> {
    use rustix::fs::FileType;
    if no_stdin {
        return Ok(Plan {
            digest: None,
            stdio: Stdin::Null,
        });
    }
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    let stat = match rustix::fs::fstat(fd) {
        Ok(stat) => stat,
        // A closed stdin: nothing to hash, nothing to pass.
        Err(_) => {
            return Ok(Plan {
                digest: None,
                stdio: Stdin::Null,
            });
        }
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {
            let offset = rustix::fs::seek(fd, rustix::fs::SeekFrom::Current(0))?;
            let read = crate::digest::hash_reader(File::from(fd.try_clone_to_owned()?))?;
            rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(offset))?;
            Ok(Plan {
                digest: bytes_to_read(read),
                stdio: Stdin::Inherit,
            })
        }
        FileType::Fifo | FileType::Socket => {
            let dir = store
                .map(Store::tmp_dir)
                .filter(|d| d.is_dir())
                .unwrap_or_else(std::env::temp_dir);
            let mut spool = tempfile::tempfile_in(&dir).or_else(|_| tempfile::tempfile())?;
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut reader = stdin.lock();
            let mut size = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buf[..n]);
                spool.write_all(&buf[..n])?;
                size += n as u64;
            }
            use std::io::Seek;
            spool.rewind()?;
            Ok(Plan {
                digest: bytes_to_read((Digest::from_hasher(&hasher), size)),
                stdio: Stdin::File(spool),
            })
        }
        _ => Ok(Plan {
            digest: None,
            stdio: Stdin::Inherit,
        }),
    }
}

/// The key's stdin component: the digest of the bytes the command can
/// read, or none when there are none, so an empty pipe, an empty file,
/// /dev/null and a closed stdin are one key (`make -j` hands all but one
/// recipe a closed or broken stdin).
fn bytes_to_read((digest, size): (Digest, u64)) -> Option<Digest> {
    (size > 0).then_some(digest)
}

/// The stdin digest `jl run` would use here (for `jl explain`).
pub fn digest_for_explain() -> io::Result<Option<Digest>> {
    Ok(plan(false, None)?.digest)
}
