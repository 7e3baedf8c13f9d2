//! The hit/miss journal (`stats.log`): one line per event, written by
//! [`Store::record`] and read back by [`read`] for `jl stats` and `jl ls`.
//!
//! Each event is one short line written with one `write` on a file opened
//! for appending, so concurrent jl processes never tear each other's
//! lines and nothing is locked. This module is the only place that knows
//! the line format.
//!
//! The journal is kept small: once it passes [`COMPACT_AT`], the jl that
//! notices rewrites it as totals, hits per stored key and hit and miss
//! counts per hour ([`Store::compact_journal`]), and renames that over it.
//! A jl that still holds the old file sees the new one at its next write.
//! A line written by another jl while the journal is being rewritten may
//! be lost: a count, never a result.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

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
    file: Mutex<Option<File>>,
    held: Mutex<Option<Vec<u8>>>,
}

/// Held lines are written once they reach this size.
const HELD_MAX: usize = 16 * 1024;

/// The journal is compacted once it is this large.
pub const COMPACT_AT: u64 = 4 * 1024 * 1024;

/// At most this many keys (the most hit) keep their own hit count through
/// a compaction.
const KEPT_KEYS: usize = 20_000;

/// An hour, in ms: the finest time a compacted journal keeps.
const HOUR_MS: u64 = 3_600_000;

impl Journal {
    fn write(&self, store: &Store, lines: &[u8]) {
        let path = store.root().join("stats.log");
        let mut slot = self.file.lock().expect("journal file");
        // Opened at the first record that can (the store may not exist
        // yet when a remote miss is recorded), then kept while it is the
        // journal: a compaction by another jl replaces it.
        let current = slot
            .as_ref()
            .is_some_and(|f| crate::store::local::same_file(f, &path));
        if !current {
            let opened = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path);
            *slot = opened.ok();
        }
        let Some(file) = slot.as_mut() else { return };
        if file.metadata().is_ok_and(|m| m.len() >= COMPACT_AT) {
            store.compact_journal();
            let reopened = OpenOptions::new().append(true).open(&path);
            if let Ok(reopened) = reopened {
                *file = reopened;
            }
        }
        let _ = file.write_all(lines);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let held = self.held.get_mut().map(Option::take);
        let file = self.file.get_mut().map(Option::take);
        if let (Ok(Some(mut file)), Ok(Some(lines))) = (file, held) {
            let _ = file.write_all(&lines);
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
                    self.journal.write(self, lines);
                    lines.clear();
                }
            }
            None => {
                drop(held);
                self.journal.write(self, line.as_bytes());
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
            self.journal.write(self, lines);
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
    /// Hits and misses by hour (ms since the epoch / 3,600,000), where
    /// the journal says when.
    pub hours: BTreeMap<u64, (u64, u64)>,
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
    match File::open(store.root().join("stats.log")) {
        Ok(file) => read_from(BufReader::new(file)),
        Err(_) => Counts::default(),
    }
}

/// Counts the lines of a journal, a line at a time.
fn read_from(mut text: impl BufRead) -> Counts {
    let mut c = Counts::default();
    let mut line = String::new();
    loop {
        line.clear();
        match text.read_line(&mut line) {
            Ok(0) | Err(_) => return c,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if c.add_summary(line).is_some() {
            continue;
        }
        let Some((event, at)) = Event::parse(line) else {
            continue;
        };
        match (event, at) {
            (Event::Hit { .. }, Some(at)) => c.hours.entry(at / HOUR_MS).or_default().0 += 1,
            (Event::Miss { .. }, Some(at)) => c.hours.entry(at / HOUR_MS).or_default().1 += 1,
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
}

impl Counts {
    /// Adds a line of a compacted journal: `s` totals, `k` a key's hits,
    /// `t` an hour's hits and misses. `None` for any other line.
    fn add_summary(&mut self, line: &str) -> Option<()> {
        let mut words = line.split(' ');
        let kind = words.next()?;
        if !matches!(kind, "s" | "k" | "t") {
            return None;
        }
        if kind == "k" {
            let key = Digest::parse(words.next()?)?;
            *self.hits.entry(key).or_default() += words.next()?.parse::<u64>().ok()?;
            return Some(());
        }
        let n: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
        match (kind, n.as_slice()) {
            ("s", &[hits, misses, saved, rh, rm, re, down, up]) => {
                self.total_hits += hits;
                self.misses += misses;
                self.saved_ms += saved;
                self.remote.hits += rh;
                self.remote.misses += rm;
                self.remote.errors += re;
                self.remote.bytes_down += down;
                self.remote.bytes_up += up;
            }
            ("t", &[hour, hits, misses]) => {
                let h = self.hours.entry(hour).or_default();
                h.0 += hits;
                h.1 += misses;
            }
            _ => {}
        }
        Some(())
    }

    /// The counts as the lines of a compacted journal, keeping the hits
    /// of the keys `keep` says are stored (at most [`KEPT_KEYS`], the most
    /// hit).
    fn summary(&self, keep: impl Fn(&Digest) -> bool) -> String {
        let r = &self.remote;
        let mut out = format!(
            "s {} {} {} {} {} {} {} {}\n",
            self.total_hits,
            self.misses,
            self.saved_ms,
            r.hits,
            r.misses,
            r.errors,
            r.bytes_down,
            r.bytes_up
        );
        for (hour, (hits, misses)) in &self.hours {
            out.push_str(&format!("t {hour} {hits} {misses}\n"));
        }
        let mut keys: Vec<(&Digest, &u64)> = self.hits.iter().collect();
        keys.sort_by(|a, b| b.1.cmp(a.1));
        let kept = keys
            .into_iter()
            .filter(|(key, _)| keep(key))
            .take(KEPT_KEYS);
        for (key, hits) in kept {
            out.push_str(&format!("k {key} {hits}\n"));
        }
        out
    }
}

impl Store {
    /// Rewrites the journal as its counts (see the module's doc). One jl
    /// at a time: another that is at it already is left to it.
    pub fn compact_journal(&self) {
        use rustix::fs::{FlockOperation, flock};
        let path = self.root().join("stats.log");
        let Ok(file) = File::open(&path) else { return };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err()
            || !crate::store::local::same_file(&file, &path)
        {
            return;
        }
        let counts = read_from(BufReader::new(&file));
        let summary = counts.summary(|key| self.action_path(key).exists());
        let written = crate::store::local::temp_in(&self.tmp_dir()).and_then(|mut tmp| {
            tmp.write_all(summary.as_bytes())?;
            tmp.persist(&path).map_err(|e| e.error)
        });
        if let Ok(new) = written {
            use std::os::unix::fs::PermissionsExt;
            let _ = new.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
    }
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

    #[test]
    fn a_compacted_journal_counts_what_the_lines_counted() {
        let (a, b, gone) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"gone"));
        let mut lines = String::new();
        for n in 0..5000u64 {
            let at = 1_700_000_000_000 + n * 60_000;
            let key = [a, b, gone][(n % 3) as usize];
            let event = match n % 4 {
                0 => Event::Miss { key },
                3 => Event::RemoteUpload { key, bytes: n },
                _ => Event::Hit { key, saved_ms: n },
            };
            lines.push_str(&event.line(at));
        }
        lines.push_str("re\nh 0000 not a line\n");
        let before = read_from(lines.as_bytes());
        let summary = before.summary(|key| *key != gone);
        assert!(summary.len() < lines.len() / 20, "{} bytes", summary.len());
        let after = read_from(summary.as_bytes());
        assert_eq!(after.total_hits, before.total_hits);
        assert_eq!(after.misses, before.misses);
        assert_eq!(after.saved_ms, before.saved_ms);
        assert_eq!(after.remote.bytes_up, before.remote.bytes_up);
        assert_eq!(after.remote.errors, 1);
        assert_eq!(after.hours, before.hours);
        assert_eq!(after.hits.get(&a), before.hits.get(&a));
        assert_eq!(after.hits.get(&b), before.hits.get(&b));
        assert_eq!(after.hits.get(&gone), None, "a key no longer stored");
        // Compacting again, with new lines after it, adds up.
        let again = format!(
            "{summary}{}",
            Event::Hit {
                key: a,
                saved_ms: 1
            }
            .line(0)
        );
        let again = read_from(again.as_bytes()).summary(|_| true);
        assert_eq!(
            read_from(again.as_bytes()).total_hits,
            before.total_hits + 1
        );
    }
}
