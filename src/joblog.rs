//! The execution log: GNU parallel's joblog columns plus `Cached`.
//!
//! Used by `jl map --joblog FILE` and by `JL_LOG` / `--log FILE` for every
//! `jl run` and map job. Each row is written with one `write` on a file
//! opened for appending, so rows from concurrent jl processes never
//! interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;

pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tCached\n";

/// One job's row.
#[derive(Clone, Debug)]
pub struct Row {
    pub seq: u64,
    pub start: SystemTime,
    pub runtime: Duration,
    pub received: u64,
    pub exit: i32,
    pub signal: i32,
    /// The command line's raw bytes.
    pub command: Vec<u8>,
    pub cached: bool,
}

impl Row {
    pub fn format(&self) -> Vec<u8> {
        let start = self
            .start
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        // Tabs and newlines in a command would break the columns.
        let command = self
            .command
            .iter()
            .map(|&b| if b == b'\t' || b == b'\n' { b' ' } else { b });
        // As GNU parallel: a job killed by a signal has Exitval 0.
        let exit = if self.signal != 0 { 0 } else { self.exit };
        let mut row = format!(
            "{}\t:\t{start:.3}\t{:.3}\t0\t{}\t{exit}\t{}\t",
            self.seq,
            self.runtime.as_secs_f64(),
            self.received,
            self.signal,
        )
        .into_bytes();
        row.extend(command);
        row.extend_from_slice(format!("\t{}\n", self.cached as u8).as_bytes());
        row
    }
}

/// An append-only log file; the header is written when the file is new.
pub struct Writer {
    file: File,
}

impl Writer {
    /// Opens (creating) a log for appending. A new log appears with its
    /// header already in it (hard-linked from a temp file), so a row from
    /// a concurrent jl can never land before the header.
    pub fn create(path: &Path) -> anyhow::Result<Writer> {
        let open = || OpenOptions::new().append(true).open(path);
        let file = match open() {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let mut tmp = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| format!("cannot create the log {}", path.display()))?;
                tmp.write_all(HEADER.as_bytes())?;
                // Losing the race to another jl is fine: its header is in.
                let _ = std::fs::hard_link(tmp.path(), path);
                open()?
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open the log {}", path.display()));
            }
        };
        Ok(Writer { file })
    }

    pub fn append(&mut self, row: &Row) -> io::Result<()> {
        self.file.write_all(&row.format())
    }
}

/// Appends one row to the log at `path`, reporting trouble as a warning:
/// a log must never fail the command it records.
pub fn append_to(path: &Path, row: &Row) {
    let result = Writer::create(path).and_then(|mut w| Ok(w.append(row)?));
    if let Err(e) = result {
        crate::error::warn(format_args!("{e:#}"));
    }
}
