//! The size ledger: how big the store is, without listing it.
//!
//! Enforcing `JL_MAX_SIZE` after every write must not mean walking 100,000
//! blobs. Like ccache's per-directory counters, `size/0` … `size/f` each
//! hold a byte count; a commit adds what it wrote to the counter of its
//! key's first hex digit, under that file's lock. Keys are uniform, so one
//! counter times 16 estimates the whole store and a commit reads nothing
//! else unless that estimate is over the bound.
//!
//! The ledger only ever over-estimates: a commit counts its blobs even when
//! an identical blob was already stored. Every `gc` measures the real size
//! and writes it back, spread over the counters. A missing `size/` means
//! "never measured": the first commit measures and creates it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use rustix::fs::{FlockOperation, flock};

use crate::digest::Digest;
use crate::store::Store;

/// Number of counter files; keys select one by their first hex digit.
pub const SHARDS: u64 = 16;

impl Store {
    fn ledger_dir(&self) -> PathBuf {
        self.root().join("size")
    }

    fn ledger_file(&self, shard: usize) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.ledger_dir().join(format!("{shard:x}")))
    }

    /// Adds `bytes` to the counter of `key`; returns the counter's new
    /// value, or `None` when the store has no ledger yet.
    pub fn ledger_add(&self, key: &Digest, bytes: u64) -> io::Result<Option<u64>> {
        let shard = usize::from(key.0[0] >> 4);
        let mut file = match self.ledger_file(shard) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        flock(&file, FlockOperation::LockExclusive)?;
        let value = read_counter(&mut file)?.saturating_add(bytes);
        write_counter(&mut file, value)?;
        Ok(Some(value))
    }

    /// The sum of all counters (each read under its lock).
    pub fn ledger_total(&self) -> io::Result<u64> {
        let mut total = 0u64;
        for shard in 0..SHARDS as usize {
            let mut file = self.ledger_file(shard)?;
            flock(&file, FlockOperation::LockShared)?;
            total = total.saturating_add(read_counter(&mut file)?);
        }
        Ok(total)
    }

    /// Records a measured store size, spread evenly over the counters.
    pub fn ledger_reset(&self, total: u64) -> io::Result<()> {
        // Not recursive: a store that is not made yet gets nothing.
        match fs::DirBuilder::new().mode(0o700).create(self.ledger_dir()) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        for shard in 0..SHARDS {
            let mut file = self.ledger_file(shard as usize)?;
            flock(&file, FlockOperation::LockExclusive)?;
            let share = total / SHARDS + u64::from(shard < total % SHARDS);
            write_counter(&mut file, share)?;
        }
        Ok(())
    }
}

/// A counter file holds a decimal number; anything else counts as 0 (the
/// next gc rewrites it).
fn read_counter(file: &mut File) -> io::Result<u64> {
    let mut text = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut text)?;
    Ok(String::from_utf8_lossy(&text).trim().parse().unwrap_or(0))
}

fn write_counter(file: &mut File, value: u64) -> io::Result<()> {
    let text = format!("{value}\n");
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.set_len(text.len() as u64)
}
