//! The hit/miss journal (`stats.log`): one line per event, written by
//! [`Store::record`] and read back by [`read`] for `jl stats` and `jl ls`.
//!
//! Each event is one short line written with one `write` on a file opened
//! for appending, so concurrent jl processes never tear each other's
//! lines and nothing is locked. This module is the only place that knows
//! the line format.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use crate::digest::Digest;
use crate::store::Store;

/// Something worth counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A replay, and the run time it saved.
    Hit {
        key: Digest,
        saved_ms: u64,
    },
    /// A lookup that found nothing usable; the command ran.
    Miss {
        key: Digest,
    },
    /// An entry fetched from the remote cache, with its bytes.
    RemoteHit {
        key: Digest,
        bytes: u64,
    },
    RemoteMiss {
        key: Digest,
    },
    /// An entry uploaded, with its bytes.
    RemoteUpload {
        key: Digest,
        bytes: u64,
    },
    /// The remote failed and was turned off for the rest of that jl.
    RemoteError,
}

impl Event {
    /// The event's line; a hit or a miss also says when (ms since the
    /// epoch), for `jl report`'s hit rate over time.
    fn line(self, at_ms: u64) -> String {
        match self {
            Event::Hit { key, saved_ms } => format!("h {key} {saved_ms} {at_ms}\n"),
            Event::Miss { key } => format!("m {key} {at_ms}\n"),
            Event::RemoteHit { key, bytes } => format!("rh {key} {bytes}\n"),
            Event::RemoteMiss { key } => format!("rm {key}\n"),
            Event::RemoteUpload { key, bytes } => format!("ru {key} {bytes}\n"),
            Event::RemoteError => "re\n".to_string(),
        }
    }

    /// The event of a line, and when it happened if the line says (lines
    /// of older jl do not).
    fn parse(line: &str) -> Option<(Event, Option<u64>)> {
        let mut words = line.split(' ');
        let kind = words.next()?;
        if kind == "re" {
            return Some((Event::RemoteError, None));
        }
        let key = Digest::parse(words.next()?)?;
        let mut number = || words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let event = match kind {
            "h" => Event::Hit {
                key,
                saved_ms: number(),
            },
            "m" => Event::Miss { key },
            "rh" => Event::RemoteHit {
                key,
                bytes: number(),
            },
            "rm" => Event::RemoteMiss { key },
            "ru" => Event::RemoteUpload {
                key,
                bytes: number(),
            },
            _ => return None,
        };
        Some((event, Some(number()).filter(|&at| at > 0)))
    }
}

/// The open journal of a store, and the lines held back while a map
/// runs (see [`Store::hold_journal`]).
#[derive(Debug, Default)]
pub struct Journal {
    file: OnceLock<File>,
    held: Mutex<Option<Vec<u8>>>,
}

/// Held lines are written once they reach this size.
const HELD_MAX: usize = 16 * 1024;

impl Journal {
    fn write(&self, root: &Path, lines: &[u8]) {
        // Opened at the first record that can (the store may not exist
        // yet when a remote miss is recorded), then kept.
        if self.file.get().is_none() {
            let opened = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(root.join("stats.log"));
            if let Ok(file) = opened {
                let _ = self.file.set(file);
            }
        }
        if let Some(mut file) = self.file.get() {
            let _ = file.write_all(lines);
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let held = self.held.get_mut().map(Option::take);
        if let (Some(file), Ok(Some(lines))) = (self.file.get(), held) {
            let _ = (&*file).write_all(&lines);
        }
    }
}

impl Store {
    /// Appends an event to the journal. Never fails: a journal that
    /// cannot be written only costs a count.
    pub fn record(&self, event: Event) {
        let line = event.line(crate::store::now_ms());
        let mut held = self.journal.held.lock().expect("journal");
        match held.as_mut() {
            Some(lines) => {
                lines.extend_from_slice(line.as_bytes());
                if lines.len() >= HELD_MAX {
                    self.journal.write(self.root(), lines);
                    lines.clear();
                }
            }
            None => {
                drop(held);
                self.journal.write(self.root(), line.as_bytes());
            }
        }
    }

    /// From now on, hold the journal's lines and write them many at once
    /// (a map's hits would otherwise cost a `write` each). Each write is
    /// still one `write` of whole lines, so concurrent jl processes never
    /// tear each other's. [`Store::flush_journal`] writes what is held.
    pub fn hold_journal(&self) {
        let mut held = self.journal.held.lock().expect("journal");
        held.get_or_insert_with(Vec::new);
    }

    /// Writes the lines held so far.
    pub fn flush_journal(&self) {
        let mut held = self.journal.held.lock().expect("journal");
        if let Some(lines) = held.as_mut().filter(|l| !l.is_empty()) {
            self.journal.write(self.root(), lines);
            lines.clear();
        }
    }
}

/// Counts from the journal.
#[derive(Default)]
pub struct Counts {
    pub hits: HashMap<Digest, u64>,
    pub total_hits: u64,
    pub misses: u64,
    pub saved_ms: u64,
    pub remote: RemoteCounts,
    /// When each hit (`true`) and miss happened, where the journal says.
    pub times: Vec<(u64, bool)>,
}

/// What the remote cache did.
#[derive(Default, Serialize)]
pub struct RemoteCounts {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub bytes_down: u64,
    pub bytes_up: u64,
}

/// Reads the journal; a missing one counts nothing, an unknown line is
/// skipped.
pub fn read(store: &Store) -> Counts {
    let mut c = Counts::default();
    let Ok(text) = std::fs::read_to_string(store.root().join("stats.log")) else {
        return c;
    };
    for (event, at) in text.lines().filter_map(Event::parse) {
        match (event, at) {
            (Event::Hit { .. }, Some(at)) => c.times.push((at, true)),
            (Event::Miss { .. }, Some(at)) => c.times.push((at, false)),
            _ => {}
        }
        match event {
            Event::Hit { key, saved_ms } => {
                *c.hits.entry(key).or_default() += 1;
                c.total_hits += 1;
                c.saved_ms += saved_ms;
            }
            Event::Miss { .. } => c.misses += 1,
            Event::RemoteHit { bytes, .. } => {
                c.remote.hits += 1;
                c.remote.bytes_down += bytes;
            }
            Event::RemoteMiss { .. } => c.remote.misses += 1,
            Event::RemoteUpload { bytes, .. } => c.remote.bytes_up += bytes,
            Event::RemoteError => c.remote.errors += 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_back_as_written() {
        let key = Digest::of(b"k");
        let events = [
            Event::Hit { key, saved_ms: 42 },
            Event::Miss { key },
            Event::RemoteHit { key, bytes: 7 },
            Event::RemoteMiss { key },
            Event::RemoteUpload { key, bytes: 9 },
            Event::RemoteError,
        ];
        for e in events {
            let at = match e {
                Event::Hit { .. } | Event::Miss { .. } => Some(7),
                _ => None,
            };
            assert_eq!(Event::parse(e.line(7).trim_end()), Some((e, at)));
        }
        // A line of an older jl, without the time.
        assert_eq!(
            Event::parse(&format!("h {key} 42")),
            Some((Event::Hit { key, saved_ms: 42 }, None))
        );
    }
}
