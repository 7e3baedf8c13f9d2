//! Store policy: what stays and what goes. `jl gc` and the size bound
//! (`JL_MAX_SIZE`, enforced after every commit) both end in [`collect`],
//! which never holds a store-wide lock, so it is safe beside runs that are
//! writing: it deletes unreferenced blobs only once they are older than
//! [`ORPHAN_GRACE`] (a run publishes its blobs moments before its entry)
//! unless they belonged to an entry this very collection evicted, and
//! leaves every running map's own directory below `tmp/` alone.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::digest::Digest;
use crate::store::local::{digest_of_path, scratch_in_use};
use crate::store::{Entry, Store, ledger, now_ms};

/// Unreferenced blobs younger than this may belong to a run that is
/// committing right now; `gc` leaves them alone.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);
/// Temp files and lock files older than this are garbage.
pub const TMP_GRACE: Duration = Duration::from_secs(24 * 3600);
/// A map's directory below `tmp/` whose lock nobody holds is garbage once
/// this old (a map takes its lock right after making it).
const SCRATCH_GRACE: Duration = Duration::from_secs(60);

#[derive(Serialize, Default)]
pub struct GcReport {
    pub entries_removed: u64,
    pub blobs_removed: u64,
    pub tmp_removed: u64,
    pub bytes_freed: u64,
    pub bytes_left: u64,
    pub dry_run: bool,
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).map_or(0, |m| m.len())
}

/// The disk space a file takes: its allocated blocks, which is what a
/// store of many small files really costs (a 60-byte entry takes 4 KiB).
pub fn on_disk(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).map_or(0, |m| m.blocks() * 512)
}

fn remove(path: &Path, dry_run: bool) -> bool {
    dry_run || std::fs::remove_file(path).is_ok()
}

/// Evicts entries (oldest use first) until the bounds hold, then removes
/// unreferenced blobs and stale temp and lock files. Files that vanish
/// meanwhile (another gc, a repair) are simply skipped.
pub fn collect(
    store: &Store,
    max_size: Option<u64>,
    max_age: Option<Duration>,
    dry_run: bool,
) -> GcReport {
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    if !matches!(store.trust(), crate::store::Trust::Ours) {
        return report; // not made yet: nothing to collect, nothing to write
    }
    let now = SystemTime::now();
    // Of each entry only its blobs are kept: 100,000 entries stay small.
    let mut entries: Vec<(u64, PathBuf, Option<Vec<Digest>>)> = store
        .entry_files()
        .into_iter()
        .map(|p| {
            let blobs = Store::read_entry(&p).ok().map(|e| blobs_of(&e));
            (mtime_ms(&p), p, blobs)
        })
        .collect();
    entries.sort_by_key(|(used, _, _)| *used);
    // A blob may be kept raw and compressed at once (runs at different
    // levels): it takes both.
    let mut blob_sizes: HashMap<Digest, u64> = HashMap::new();
    for path in store.blob_files() {
        if let Some(digest) = digest_of_path(&path) {
            *blob_sizes.entry(digest).or_default() += on_disk(&path);
        }
    }
    let mut refs: HashMap<Digest, u32> = HashMap::new();
    for (_, _, e) in &entries {
        for &d in e.iter().flatten() {
            *refs.entry(d).or_default() += 1;
        }
    }
    // The stat cache counts too, and goes first when the store is over
    // its bound: losing it costs a rehash, not a result.
    let mut stat_files: Vec<(u64, PathBuf, u64)> = store
        .stat_files()
        .into_iter()
        .map(|p| (mtime_ms(&p), on_disk(&p), p))
        .map(|(used, size, p)| (used, p, size))
        .collect();
    stat_files.sort_by_key(|(used, _, _)| *used);
    let mut total: u64 = blob_sizes.values().sum::<u64>()
        + entries.iter().map(|(_, p, _)| on_disk(p)).sum::<u64>()
        + stat_files.iter().map(|(_, _, size)| size).sum::<u64>();
    for (_, path, size) in &stat_files {
        if max_size.is_none_or(|max| total <= max) {
            break;
        }
        if remove(path, dry_run) {
            total = total.saturating_sub(*size);
        }
    }
    let age_limit = max_age.map(|a| now_ms().saturating_sub(a.as_millis() as u64));
    let mut evicted_blobs: HashSet<Digest> = HashSet::new();
    for (used, path, entry) in &entries {
        let too_old = age_limit.is_some_and(|limit| *used < limit);
        let too_big = max_size.is_some_and(|max| total > max);
        let unreadable = entry.is_none();
        if !(too_old || too_big || unreadable) {
            // Oldest use first and the store only shrinks: without an age
            // bound, nothing later is over a bound either.
            if age_limit.is_none() {
                break;
            }
            continue;
        }
        let len = on_disk(path);
        if !remove(path, dry_run) {
            continue;
        }
        report.entries_removed += 1;
        report.bytes_freed += len;
        total = total.saturating_sub(len);
        for &d in entry.iter().flatten() {
            let n = refs.entry(d).or_default();
            *n = n.saturating_sub(1);
            if *n == 0 {
                evicted_blobs.insert(d);
                // Counted now so the size bound sees the blob go.
                let size = blob_sizes.get(&d).copied().unwrap_or(0);
                total = total.saturating_sub(size);
            }
        }
    }
    for digest in blob_sizes.keys() {
        if refs.get(digest).copied().unwrap_or(0) > 0 {
            continue;
        }
        for path in store.blob_forms(digest) {
            if std::fs::symlink_metadata(&path).is_err() {
                continue; // this form is not kept
            }
            let size = on_disk(&path);
            let orphan_old = older_than(&path, ORPHAN_GRACE, now);
            if (evicted_blobs.contains(digest) || orphan_old) && remove(&path, dry_run) {
                report.blobs_removed += 1;
                report.bytes_freed += size;
                if !evicted_blobs.contains(digest) {
                    total = total.saturating_sub(size);
                }
            }
        }
    }
    for manifest in store.manifest_files() {
        let candidates = crate::store::manifest::manifest_at(&manifest).candidates;
        let live = candidates.iter().any(|c| store.action_path(c).exists());
        if !live && !dry_run {
            let _ = std::fs::remove_file(&manifest);
        }
    }
    for lock in std::fs::read_dir(store.root().join("locks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        report.tmp_removed += u64::from(remove_unheld_lock(&lock.path(), dry_run));
    }
    for file in std::fs::read_dir(store.tmp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = file.path();
        let removed = if file.file_type().is_ok_and(|t| t.is_dir()) {
            // A map's own directory: gone with its map, even if young.
            !scratch_in_use(&path)
                && older_than(&path, SCRATCH_GRACE, now)
                && (dry_run || std::fs::remove_dir_all(&path).is_ok())
        } else {
            let dead = crate::store::local::writer_gone(&file.file_name());
            (dead || older_than(&path, TMP_GRACE, now)) && remove(&path, dry_run)
        };
        report.tmp_removed += u64::from(removed);
    }
    report.bytes_left = total;
    if !dry_run {
        let _ = store.ledger_reset(total);
    }
    report
}

/// Removes a lock file nobody holds (left by a jl killed with SIGKILL, or
/// by a jl older than lock removal), taking the lock first so that a jl
/// that opened it meanwhile starts over with a new one.
fn remove_unheld_lock(path: &Path, dry_run: bool) -> bool {
    use rustix::fs::{FlockOperation, flock};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false; // held: a run of this key is under way
    }
    crate::store::local::same_file(&file, path) && remove(path, dry_run)
}

/// The blobs an entry names, once each.
fn blobs_of(entry: &Entry) -> Vec<Digest> {
    let mut blobs: Vec<Digest> = entry.blobs().map(|b| b.digest).collect();
    blobs.sort_unstable_by_key(|d| d.0);
    blobs.dedup();
    blobs
}

fn older_than(path: &Path, age: Duration, now: SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age))
}

impl Store {
    /// Keeps the store under `max` bytes after a commit of `key` that
    /// wrote `bytes`. Cheap: one counter update, unless the ledger says
    /// the store is over; then least recently used entries go, down to
    /// 90% of the bound.
    pub fn enforce_max_size(&self, key: &Digest, bytes: u64, max: u64) {
        let counter = match self.ledger_add(key, bytes) {
            Ok(Some(counter)) => counter,
            Ok(None) => {
                let total = measure(self);
                let _ = self.ledger_reset(total);
                total / ledger::SHARDS
            }
            Err(_) => return,
        };
        if counter.saturating_mul(ledger::SHARDS) <= max {
            return;
        }
        if self.ledger_total().is_ok_and(|total| total > max) {
            collect(self, Some(max * 9 / 10), None, false);
        }
    }
}

/// The disk space of every blob, entry and stat cache file.
fn measure(store: &Store) -> u64 {
    let files = store.blob_files().into_iter().chain(store.entry_files());
    files.chain(store.stat_files()).map(|p| on_disk(&p)).sum()
}

/// The default size bound of a store, as sccache's.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024 * 1024;

/// When `path` last changed, in ms since the epoch (0 when it is gone):
/// for an entry, when it was last used.
pub fn mtime_ms(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}
