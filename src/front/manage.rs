//! Managing the store: ls, show, stats, gc, rm, clear, verify.
//!
//! These commands read the same files `jl run` writes and never hold a
//! store-wide lock, so they are safe to run while jobs are writing; what
//! `gc` may delete is the store's policy ([`crate::store::gc`]).

use std::collections::HashSet;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{GcArgs, LsArgs, RmArgs, ShowArgs, SortBy, StatsArgs, StoreArgs, VerifyArgs};
use crate::digest::Digest;
use crate::store::local::{digest_of_path, scratch_in_use};
use crate::store::packed;
use crate::store::{Entry, Store, now_ms};
use crate::store::{gc, journal};

/// What `jl ls` shows of an entry: a few fields, not the whole entry, so
/// a listing of 100,000 entries stays small in memory.
struct Listed {
    key: crate::digest::Digest,
    created_ms: u64,
    duration_ms: u64,
    exit_code: i32,
    argv: Vec<String>,
    last_used_ms: u64,
    size: u64,
    hits: u64,
}

fn entry_size(entry: &Entry) -> u64 {
    entry.stdout.size + entry.stderr.size + entry.outputs.iter().map(|o| o.blob.size).sum::<u64>()
}

/// The entries whose command line contains `filter`, read one at a time.
fn list(store: &Store, filter: Option<&str>) -> Vec<Listed> {
    let journal = journal::read(store);
    store
        .entry_files()
        .into_iter()
        .filter_map(|path| {
            let entry = Store::read_entry(&path).ok()?;
            let size = entry_size(&entry);
            let argv = entry.parts.argv;
            if filter.is_some_and(|f| !argv.join(" ").contains(f)) {
                return None;
            }
            Some(Listed {
                key: entry.key,
                created_ms: entry.created_ms,
                duration_ms: entry.duration_ms,
                exit_code: entry.exit_code,
                last_used_ms: gc::mtime_ms(&path),
                size,
                hits: journal.hits.get(&entry.key).copied().unwrap_or(0),
                argv,
            })
        })
        .collect()
}

fn ago(ms: u64) -> String {
    let secs = now_ms().saturating_sub(ms) / 1000;
    let (n, unit) = match secs {
        0..60 => (secs, "s"),
        60..3600 => (secs / 60, "m"),
        3600..86400 => (secs / 3600, "h"),
        _ => (secs / 86400, "d"),
    };
    format!("{n}{unit}")
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

#[derive(Serialize)]
struct LsRow<'a> {
    key: String,
    created_ms: u64,
    last_used_ms: u64,
    size: u64,
    hits: u64,
    duration_ms: u64,
    exit_code: i32,
    argv: &'a [String],
}

pub fn ls(args: LsArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let mut rows = list(&store, args.filter.as_deref());
    match args.sort {
        SortBy::Used => rows.sort_by_key(|r| std::cmp::Reverse(r.last_used_ms)),
        SortBy::Created => rows.sort_by_key(|r| std::cmp::Reverse(r.created_ms)),
        SortBy::Size => rows.sort_by_key(|r| std::cmp::Reverse(r.size)),
        SortBy::Duration => rows.sort_by_key(|r| std::cmp::Reverse(r.duration_ms)),
        SortBy::Hits => rows.sort_by_key(|r| std::cmp::Reverse(r.hits)),
    }
    let mut out = io::stdout().lock();
    let width = terminal_width();
    if width.is_some() && !args.json {
        let header = format!(
            "{:<12}  {:>5}  {:>5}  {:>9}  {:>4}  {:>7}  COMMAND",
            "KEY", "AGE", "USED", "SIZE", "HITS", "TIME"
        );
        writeln!(out, "{}", truncate(&header, width))?;
    }
    for r in &rows {
        if args.json {
            let row = LsRow {
                key: r.key.hex(),
                created_ms: r.created_ms,
                last_used_ms: r.last_used_ms,
                size: r.size,
                hits: r.hits,
                duration_ms: r.duration_ms,
                exit_code: r.exit_code,
                argv: &r.argv,
            };
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            let line = format!(
                "{}  {:>5}  {:>5}  {:>9}  {:>4}  {:>7}  {}",
                &r.key.hex()[..12],
                ago(r.created_ms),
                ago(r.last_used_ms),
                bytesize::ByteSize(r.size).to_string(),
                r.hits,
                seconds(r.duration_ms),
                crate::key::shell_line(&r.argv)
            );
            writeln!(out, "{}", truncate(&line, width))?;
        }
    }
    Ok(0)
}

fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or(Some(120))
}

fn truncate(line: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if line.chars().count() > w => {
            let mut s: String = line.chars().take(w.saturating_sub(1)).collect();
            s.push('…');
            s
        }
        _ => line.to_string(),
    }
}

/// Finds the one entry whose key starts with `prefix`.
fn resolve(store: &Store, prefix: &str) -> anyhow::Result<Digest> {
    let prefix = prefix.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("'{prefix}' is not a key: keys are hex digits (see `jl ls`)");
    }
    let matches: Vec<Digest> = store
        .entry_files()
        .iter()
        .filter_map(|p| digest_of_path(p))
        .filter(|d| d.hex().starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no entry has a key starting with {prefix} (see `jl ls`)"),
        _ => bail!(
            "{} entries have keys starting with {prefix}: give more digits",
            matches.len()
        ),
    }
}

pub fn show(args: ShowArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let key = resolve(&store, &args.key)?;
    let path = store.action_path(&key);
    let entry = Store::read_entry(&path).with_context(|| format!("cannot read entry {key}"))?;
    let hits = journal::read(&store).hits.get(&key).copied().unwrap_or(0);
    let last_used_ms = gc::mtime_ms(&path);
    let mut out = io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&entry)?;
        value["hits"] = hits.into();
        value["last_used_ms"] = last_used_ms.into();
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(0);
    }
    writeln!(out, "key        {}", entry.key)?;
    writeln!(
        out,
        "command    {}",
        crate::key::shell_line(&entry.parts.argv)
    )?;
    writeln!(out, "cwd        {}", entry.cwd)?;
    writeln!(out, "created    {} ago", ago(entry.created_ms))?;
    writeln!(out, "last used  {} ago", ago(last_used_ms))?;
    writeln!(out, "hits       {hits}")?;
    writeln!(out, "duration   {}", seconds(entry.duration_ms))?;
    writeln!(out, "exit code  {}", entry.exit_code)?;
    writeln!(
        out,
        "stdout     {} ({})",
        bytesize::ByteSize(entry.stdout.size),
        entry.stdout.digest
    )?;
    writeln!(
        out,
        "stderr     {} ({})",
        bytesize::ByteSize(entry.stderr.size),
        entry.stderr.digest
    )?;
    for o in &entry.outputs {
        writeln!(
            out,
            "output     {} {:o} {} ({})",
            o.path.display(),
            o.mode,
            bytesize::ByteSize(o.blob.size),
            o.blob.digest
        )?;
    }
    for gone in &entry.deleted {
        writeln!(out, "deletes    {}", gone.display())?;
    }
    super::write_parts(&mut out, &entry.parts)?;
    for dep in &entry.deps {
        writeln!(out, "depends    {}", dep.describe())?;
    }
    Ok(0)
}

#[derive(Serialize)]
struct Stats {
    store: String,
    entries: u64,
    blobs: u64,
    /// What the entries and blobs take on disk, compressed or not.
    bytes: u64,
    /// What they would take uncompressed.
    original_bytes: u64,
    hits: u64,
    misses: u64,
    hit_rate: f64,
    time_saved_ms: u64,
    remote: journal::RemoteCounts,
}

/// What a store holds and takes on disk (`jl stats`, `jl report`).
pub struct Size {
    pub entries: u64,
    pub blobs: u64,
    /// Entries and blobs as they are stored, compressed or not.
    pub bytes: u64,
    /// What they would take uncompressed (a compressed blob's frame says;
    /// not trusted for anything else).
    pub original_bytes: u64,
}

impl Size {
    pub fn of(store: &Store) -> Size {
        let entries = store.entry_files();
        let blobs = store.blob_files();
        let entry_bytes: u64 = entries.iter().map(|p| gc::file_len(p)).sum();
        let stored = |p: &std::path::PathBuf| gc::file_len(p);
        let original = |p: &std::path::PathBuf| match p.extension() {
            Some(e) if e == packed::SUFFIX => packed::claimed_size(p).unwrap_or(0),
            _ => gc::file_len(p),
        };
        Size {
            entries: entries.len() as u64,
            blobs: blobs.len() as u64,
            bytes: entry_bytes + blobs.iter().map(stored).sum::<u64>(),
            original_bytes: entry_bytes + blobs.iter().map(original).sum::<u64>(),
        }
    }
}

pub fn stats(args: StatsArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let journal = journal::read(&store);
    let size = Size::of(&store);
    let lookups = journal.total_hits + journal.misses;
    let s = Stats {
        store: store.root().display().to_string(),
        entries: size.entries,
        blobs: size.blobs,
        bytes: size.bytes,
        original_bytes: size.original_bytes,
        hits: journal.total_hits,
        misses: journal.misses,
        hit_rate: if lookups == 0 {
            0.0
        } else {
            journal.total_hits as f64 / lookups as f64
        },
        time_saved_ms: journal.saved_ms,
        remote: journal.remote,
    };
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(0);
    }
    writeln!(out, "store       {}", s.store)?;
    writeln!(out, "entries     {}", s.entries)?;
    writeln!(out, "blobs       {}", s.blobs)?;
    writeln!(out, "size        {}", bytesize::ByteSize(s.bytes))?;
    if s.original_bytes > s.bytes {
        writeln!(
            out,
            "compressed  from {} ({:.1}x)",
            bytesize::ByteSize(s.original_bytes),
            s.original_bytes as f64 / s.bytes.max(1) as f64
        )?;
    }
    writeln!(out, "hits        {}", s.hits)?;
    writeln!(out, "misses      {}", s.misses)?;
    writeln!(out, "hit rate    {:.1}%", s.hit_rate * 100.0)?;
    writeln!(
        out,
        "time saved  {}",
        humantime::format_duration(Duration::from_secs(s.time_saved_ms / 1000))
    )?;
    let r = &s.remote;
    if r.hits + r.misses + r.errors + r.bytes_up > 0 {
        writeln!(
            out,
            "remote      {} hits, {} misses, {} errors; {} down, {} up",
            r.hits,
            r.misses,
            r.errors,
            bytesize::ByteSize(r.bytes_down),
            bytesize::ByteSize(r.bytes_up)
        )?;
    }
    Ok(0)
}

pub fn gc(args: GcArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let report = gc::collect(
        &store,
        args.max_size.map(|s| s.as_u64()),
        args.max_age,
        args.dry_run,
    );
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "{}removed {} entries, {} blobs, {} temp files: {} freed, {} left",
            if report.dry_run { "would have " } else { "" },
            report.entries_removed,
            report.blobs_removed,
            report.tmp_removed,
            bytesize::ByteSize(report.bytes_freed),
            bytesize::ByteSize(report.bytes_left)
        )?;
    }
    Ok(0)
}

pub fn rm(args: RmArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    for prefix in &args.keys {
        let key = resolve(&store, prefix)?;
        store
            .remove_entry(&key)
            .with_context(|| format!("cannot remove entry {key}"))?;
        println!("removed {}", &key.hex()[..12]);
    }
    Ok(0)
}

pub fn clear(args: StoreArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args)?;
    let mut freed = 0u64;
    let mut files = 0u64;
    for sub in ["actions", "objects", "stat", "tmp", "locks", "size"] {
        let dir = store.root().join(sub);
        if sub == "tmp" {
            // What running maps keep below tmp/ stays: their outputs to show.
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if !scratch_in_use(&path) && std::fs::remove_dir_all(&path).is_ok() {
                        files += 1;
                    }
                } else if std::fs::remove_file(&path).is_ok() {
                    files += 1;
                }
            }
            continue;
        }
        for entry in walkdir::WalkDir::new(&dir).into_iter().flatten() {
            if entry.file_type().is_file() {
                freed += entry.metadata().map_or(0, |m| m.len());
                files += 1;
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
        }
    }
    let _ = std::fs::remove_file(store.root().join("stats.log"));
    println!(
        "cleared {}: {files} files, {} freed",
        store.root().display(),
        bytesize::ByteSize(freed)
    );
    Ok(0)
}

#[derive(Serialize, Default)]
struct VerifyReport {
    entries: u64,
    blobs: u64,
    corrupt_entries: Vec<String>,
    corrupt_blobs: Vec<String>,
    missing_blobs: Vec<String>,
    repaired: bool,
}

/// The digest of a blob file's content (decompressed to the size its
/// frame claims, if it is compressed: a frame that lies cannot match).
fn blob_digest(path: &std::path::Path) -> std::io::Result<Digest> {
    let file = std::fs::File::open(path)?;
    if path.extension().is_some_and(|e| e == packed::SUFFIX) {
        let size = packed::claimed_size(path).ok_or(std::io::ErrorKind::InvalidData)?;
        return crate::digest::hash_reader(packed::reader(&file, size)?).map(|(d, _)| d);
    }
    crate::digest::hash_reader(file).map(|(d, _)| d)
}

/// Re-hashes every blob and parses every entry; with `repair`, removes
/// what is broken so it becomes a miss.
fn check(store: &Store, repair: bool) -> VerifyReport {
    let mut r = VerifyReport {
        repaired: repair,
        ..VerifyReport::default()
    };
    let mut bad_blobs: HashSet<Digest> = HashSet::new();
    for path in store.blob_files() {
        r.blobs += 1;
        let ok = match (digest_of_path(&path), std::fs::symlink_metadata(&path)) {
            (Some(d), Ok(m)) if m.file_type().is_file() => {
                blob_digest(&path).is_ok_and(|got| got == d)
            }
            _ => false,
        };
        if !ok {
            r.corrupt_blobs.push(path.display().to_string());
            if let Some(d) = digest_of_path(&path) {
                bad_blobs.insert(d);
            }
            if repair {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    for path in store.entry_files() {
        r.entries += 1;
        let entry = Store::read_entry(&path).ok().filter(|e| {
            digest_of_path(&path) == Some(e.key) && e.format == crate::store::ENTRY_FORMAT
        });
        let bad = match &entry {
            None => {
                r.corrupt_entries.push(path.display().to_string());
                true
            }
            Some(e) => {
                let mut bad = false;
                for d in e.blobs().map(|b| b.digest) {
                    let empty = d == Digest::of(b"");
                    if !empty && (bad_blobs.contains(&d) || !store.has_blob(&d)) {
                        r.missing_blobs
                            .push(format!("{} (entry {})", d, &e.key.hex()[..12]));
                        bad = true;
                    }
                }
                bad
            }
        };
        if bad && repair {
            let _ = std::fs::remove_file(&path);
        }
    }
    r
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let r = check(&store, args.repair);
    let problems = r.corrupt_entries.len() + r.corrupt_blobs.len() + r.missing_blobs.len();
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        for p in &r.corrupt_entries {
            writeln!(out, "corrupt entry  {p}")?;
        }
        for p in &r.corrupt_blobs {
            writeln!(out, "corrupt blob   {p}")?;
        }
        for p in &r.missing_blobs {
            writeln!(out, "missing blob   {p}")?;
        }
        writeln!(
            out,
            "checked {} entries and {} blobs: {problems} problems{}",
            r.entries,
            r.blobs,
            if args.repair && problems > 0 {
                " (repaired)"
            } else {
                ""
            }
        )?;
    }
    Ok(if problems > 0 && !args.repair {
        crate::error::RUNTIME
    } else {
        0
    })
}
