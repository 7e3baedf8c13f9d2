//! Managing the store: ls, show, stats, explain, gc, rm, clear, verify.
//!
//! These commands read the same files `jl run` writes and never hold a
//! store-wide lock, so they are safe to run while jobs are writing: `gc`
//! only deletes unreferenced blobs that are older than [`ORPHAN_GRACE`]
//! (a run publishes its blobs moments before its entry) unless they
//! belonged to an entry this very `gc` evicted.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{
    ExplainArgs, GcArgs, LsArgs, RmArgs, ShowArgs, SortBy, StatsArgs, StoreArgs, VerifyArgs,
};
use crate::digest::Digest;
use crate::key::Parts;
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

/// An entry with what the listing commands show about it.
struct Listed {
    entry: Entry,
    last_used_ms: u64,
    size: u64,
    hits: u64,
}

/// Hit and miss counts from the journal.
#[derive(Default)]
struct Journal {
    hits: HashMap<Digest, u64>,
    total_hits: u64,
    misses: u64,
    saved_ms: u64,
    remote: RemoteStats,
}

/// What the remote cache did, from the journal.
#[derive(Default, Serialize)]
struct RemoteStats {
    hits: u64,
    misses: u64,
    errors: u64,
    bytes_down: u64,
    bytes_up: u64,
}

fn read_journal(store: &Store) -> Journal {
    let mut j = Journal::default();
    let Ok(text) = std::fs::read_to_string(store.root().join("stats.log")) else {
        return j;
    };
    for line in text.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next().and_then(Digest::parse)) {
            (Some("h"), Some(key)) => {
                *j.hits.entry(key).or_default() += 1;
                j.total_hits += 1;
                j.saved_ms += number(words.next());
            }
            (Some("m"), Some(_)) => j.misses += 1,
            (Some("rh"), Some(_)) => {
                j.remote.hits += 1;
                j.remote.bytes_down += number(words.next());
            }
            (Some("rm"), Some(_)) => j.remote.misses += 1,
            (Some("ru"), Some(_)) => j.remote.bytes_up += number(words.next()),
            (Some("re"), None) => j.remote.errors += 1,
            _ => {}
        }
    }
    j
}

fn number(word: Option<&str>) -> u64 {
    word.and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn mtime_ms(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

fn entry_size(entry: &Entry) -> u64 {
    entry.stdout.size + entry.stderr.size + entry.outputs.iter().map(|o| o.blob.size).sum::<u64>()
}

fn list(store: &Store) -> Vec<Listed> {
    let journal = read_journal(store);
    store
        .entry_files()
        .into_iter()
        .filter_map(|path| {
            let entry = Store::read_entry(&path).ok()?;
            Some(Listed {
                last_used_ms: mtime_ms(&path),
                size: entry_size(&entry),
                hits: journal.hits.get(&entry.key).copied().unwrap_or(0),
                entry,
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
    let mut rows = list(&store);
    if let Some(filter) = &args.filter {
        rows.retain(|r| r.entry.parts.argv.join(" ").contains(filter.as_str()));
    }
    match args.sort {
        SortBy::Used => rows.sort_by_key(|r| std::cmp::Reverse(r.last_used_ms)),
        SortBy::Created => rows.sort_by_key(|r| std::cmp::Reverse(r.entry.created_ms)),
        SortBy::Size => rows.sort_by_key(|r| std::cmp::Reverse(r.size)),
        SortBy::Duration => rows.sort_by_key(|r| std::cmp::Reverse(r.entry.duration_ms)),
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
                key: r.entry.key.hex(),
                created_ms: r.entry.created_ms,
                last_used_ms: r.last_used_ms,
                size: r.size,
                hits: r.hits,
                duration_ms: r.entry.duration_ms,
                exit_code: r.entry.exit_code,
                argv: &r.entry.parts.argv,
            };
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            let line = format!(
                "{}  {:>5}  {:>5}  {:>9}  {:>4}  {:>7}  {}",
                &r.entry.key.hex()[..12],
                ago(r.entry.created_ms),
                ago(r.last_used_ms),
                bytesize::ByteSize(r.size).to_string(),
                r.hits,
                seconds(r.entry.duration_ms),
                crate::key::shell_line(&r.entry.parts.argv)
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
    let hits = read_journal(&store).hits.get(&key).copied().unwrap_or(0);
    let last_used_ms = mtime_ms(&path);
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
    write_parts(&mut out, &entry.parts)?;
    for dep in &entry.deps {
        writeln!(out, "depends    {}", dep.describe())?;
    }
    Ok(0)
}

/// The head of `jl explain`: key, hit or miss, command and key parts.
fn write_explained(
    out: &mut impl Write,
    key: Digest,
    note: &str,
    hit: bool,
    parts: &Parts,
) -> io::Result<()> {
    writeln!(out, "key        {key}{note}")?;
    writeln!(out, "status     {}", if hit { "hit" } else { "miss" })?;
    writeln!(out, "command    {}", crate::key::shell_line(&parts.argv))?;
    write_parts(out, parts)
}

fn write_parts(out: &mut impl Write, parts: &Parts) -> io::Result<()> {
    writeln!(out, "executable {} ({})", parts.exe, parts.exe_digest)?;
    for i in &parts.inputs {
        let digest = i.digest.map_or("-".to_string(), |d| d.hex());
        writeln!(out, "input      {} [{:?}] {digest}", i.path, i.kind)?;
    }
    if let Some(d) = parts.stdin {
        writeln!(out, "stdin      {d}")?;
    }
    for e in &parts.env {
        let v = e
            .value
            .map_or("(unset)".to_string(), |d| format!("value digest {d}"));
        writeln!(out, "env        {} {v}", e.name)?;
    }
    if let Some(salt) = &parts.salt {
        writeln!(out, "salt       {salt}")?;
    }
    if let Some(cwd) = &parts.cwd {
        writeln!(out, "cwd (key)  {cwd}")?;
    }
    for o in &parts.outputs {
        writeln!(out, "declared   {o}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Stats {
    store: String,
    entries: u64,
    blobs: u64,
    bytes: u64,
    hits: u64,
    misses: u64,
    hit_rate: f64,
    time_saved_ms: u64,
    remote: RemoteStats,
}

pub fn stats(args: StatsArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let journal = read_journal(&store);
    let entries = store.entry_files();
    let blobs = store.blob_files();
    let bytes = entries.iter().chain(&blobs).map(|p| file_len(p)).sum();
    let lookups = journal.total_hits + journal.misses;
    let s = Stats {
        store: store.root().display().to_string(),
        entries: entries.len() as u64,
        blobs: blobs.len() as u64,
        bytes,
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

#[derive(Serialize)]
struct Explained<'a> {
    key: String,
    hit: bool,
    parts: &'a Parts,
    nearest: Option<String>,
    differences: Vec<String>,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.key.store)?;
    let exe = crate::exec::resolve(&args.command[0]).map_err(|e| anyhow::anyhow!(e.message))?;
    let stdin = if args.no_stdin {
        None
    } else {
        crate::run::stdin_digest_for_explain()?
    };
    let opts = crate::config::key_options(&args.key);
    let action = crate::key::build(&args.command, &exe, stdin, &opts, &store.stat_cache())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if opts.trace {
        return explain_traced(&store, &action, args.json);
    }
    let hit = matches!(store.lookup(&action.key), crate::store::Lookup::Hit(_));
    let (nearest, differences) = match (hit, crate::run::nearest(&store, &action)) {
        (false, Some((key, d))) => (Some(key.hex()), d),
        _ => (None, Vec::new()),
    };
    let mut out = io::stdout().lock();
    if args.json {
        let e = Explained {
            key: action.key.hex(),
            hit,
            parts: &action.parts,
            nearest,
            differences,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
        return Ok(0);
    }
    write_explained(&mut out, action.key, "", hit, &action.parts)?;
    match (hit, nearest) {
        (true, _) => {}
        (false, None) => writeln!(out, "nearest    none: no entry runs {}", action.parts.exe)?,
        (false, Some(key)) => {
            writeln!(out, "nearest    {key}")?;
            for d in differences {
                writeln!(out, "differs    {d}")?;
            }
        }
    }
    Ok(0)
}

#[derive(Serialize)]
struct ExplainedTrace<'a> {
    key: String,
    hit: bool,
    parts: &'a Parts,
    candidates: usize,
    nearest: Option<String>,
    deps: Vec<CheckedDep>,
}

#[derive(Serialize)]
struct CheckedDep {
    #[serde(flatten)]
    dep: crate::deps::Dep,
    holds: bool,
}

/// `jl explain --trace`: the candidates recorded for this action, and the
/// dependencies of the nearest one (fewest changed; newest on a tie).
fn explain_traced(store: &Store, action: &crate::key::Action, json: bool) -> anyhow::Result<i32> {
    let stat = store.stat_cache();
    let manifest = crate::deps::manifest(store, &action.key);
    let checked = manifest
        .candidates
        .iter()
        .filter_map(|key| match store.lookup(key) {
            crate::store::Lookup::Hit(entry) => {
                let deps: Vec<CheckedDep> = entry
                    .deps
                    .into_iter()
                    .map(|dep| CheckedDep {
                        holds: dep.holds(&stat),
                        dep,
                    })
                    .collect();
                Some((deps.iter().filter(|d| !d.holds).count(), *key, deps))
            }
            _ => None,
        });
    let nearest = checked.min_by_key(|(changed, _, _)| *changed);
    let hit = nearest
        .as_ref()
        .is_some_and(|(changed, _, _)| *changed == 0);
    let (nearest, deps) = match nearest {
        Some((_, key, deps)) => (Some(key.hex()), deps),
        None => (None, Vec::new()),
    };
    let mut out = io::stdout().lock();
    if json {
        let e = ExplainedTrace {
            key: action.key.hex(),
            hit,
            parts: &action.parts,
            candidates: manifest.candidates.len(),
            nearest,
            deps,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
        return Ok(0);
    }
    write_explained(&mut out, action.key, " (traced)", hit, &action.parts)?;
    writeln!(out, "candidates {}", manifest.candidates.len())?;
    match nearest {
        None => writeln!(
            out,
            "nearest    none: no traced run of this command is stored"
        )?,
        Some(key) => {
            writeln!(out, "nearest    {key}")?;
            for d in deps {
                let mark = if d.holds { "same   " } else { "CHANGED" };
                writeln!(out, "{mark}    {}", d.dep.describe())?;
            }
        }
    }
    Ok(0)
}

#[derive(Serialize, Default)]
struct GcReport {
    entries_removed: u64,
    blobs_removed: u64,
    tmp_removed: u64,
    bytes_freed: u64,
    bytes_left: u64,
    dry_run: bool,
}

pub fn gc(args: GcArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let report = collect(
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

fn file_len(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).map_or(0, |m| m.len())
}

fn remove(path: &Path, dry_run: bool) -> bool {
    dry_run || std::fs::remove_file(path).is_ok()
}

/// Evicts entries (oldest use first) until the bounds hold, then removes
/// unreferenced blobs and stale temp and lock files. Files that vanish
/// meanwhile (another gc, a repair) are simply skipped.
fn collect(
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
    let mut entries: Vec<(u64, PathBuf, Option<Entry>)> = store
        .entry_files()
        .into_iter()
        .map(|p| (mtime_ms(&p), Store::read_entry(&p).ok(), p))
        .map(|(used, e, p)| (used, p, e))
        .collect();
    entries.sort_by_key(|(used, _, _)| *used);
    let blob_sizes: HashMap<Digest, u64> = store
        .blob_files()
        .iter()
        .filter_map(|p| Some((digest_of_path(p)?, file_len(p))))
        .collect();
    let mut refs: HashMap<Digest, u32> = HashMap::new();
    for (_, _, e) in &entries {
        for d in e.iter().flat_map(|e| e.blobs().map(|b| b.digest)) {
            *refs.entry(d).or_default() += 1;
        }
    }
    let mut total: u64 =
        blob_sizes.values().sum::<u64>() + entries.iter().map(|(_, p, _)| file_len(p)).sum::<u64>();
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
        let len = file_len(path);
        if !remove(path, dry_run) {
            continue;
        }
        report.entries_removed += 1;
        report.bytes_freed += len;
        total = total.saturating_sub(len);
        for d in entry.iter().flat_map(|e| e.blobs().map(|b| b.digest)) {
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
    for (digest, size) in &blob_sizes {
        if refs.get(digest).copied().unwrap_or(0) > 0 {
            continue;
        }
        let path = store.object_path(digest);
        let orphan_old = older_than(&path, ORPHAN_GRACE, now);
        if (evicted_blobs.contains(digest) || orphan_old) && remove(&path, dry_run) {
            report.blobs_removed += 1;
            report.bytes_freed += size;
            if !evicted_blobs.contains(digest) {
                total = total.saturating_sub(*size);
            }
        }
    }
    for manifest in store.manifest_files() {
        let candidates = crate::deps::manifest_at(&manifest).candidates;
        let live = candidates.iter().any(|c| store.action_path(c).exists());
        if !live && !dry_run {
            let _ = std::fs::remove_file(&manifest);
        }
    }
    for dir in [store.tmp_dir(), store.root().join("locks")] {
        for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = file.path();
            let removed = if file.file_type().is_ok_and(|t| t.is_dir()) {
                // A map's own directory: gone with its map, even if young.
                !scratch_in_use(&path)
                    && older_than(&path, SCRATCH_GRACE, now)
                    && (dry_run || std::fs::remove_dir_all(&path).is_ok())
            } else {
                older_than(&path, TMP_GRACE, now) && remove(&path, dry_run)
            };
            report.tmp_removed += u64::from(removed);
        }
    }
    report.bytes_left = total;
    if !dry_run {
        let _ = store.ledger_reset(total);
    }
    report
}

fn older_than(path: &Path, age: Duration, now: SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age))
}

/// Enforces `JL_MAX_SIZE` after a commit of `key` that wrote `bytes`.
/// Cheap: one counter update, unless the ledger says the store is over.
pub fn auto_gc(store: &Store, key: &Digest, bytes: u64) {
    let max = match std::env::var("JL_MAX_SIZE") {
        Ok(v) => match v.parse::<bytesize::ByteSize>() {
            Ok(s) => s.as_u64(),
            Err(_) => {
                crate::error::warn(format_args!(
                    "JL_MAX_SIZE={v} is not a size (try 10GiB); the store is not bounded"
                ));
                return;
            }
        },
        Err(_) => DEFAULT_MAX_SIZE,
    };
    let counter = match store.ledger_add(key, bytes) {
        Ok(Some(counter)) => counter,
        Ok(None) => {
            let total = measure(store);
            let _ = store.ledger_reset(total);
            total / ledger::SHARDS
        }
        Err(_) => return,
    };
    if counter.saturating_mul(ledger::SHARDS) <= max {
        return;
    }
    if store.ledger_total().is_ok_and(|total| total > max) {
        collect(store, Some(max * 9 / 10), None, false);
    }
}

/// The bytes of every blob and entry file.
fn measure(store: &Store) -> u64 {
    let files = store.blob_files().into_iter().chain(store.entry_files());
    files.map(|p| file_len(&p)).sum()
}

/// The default size bound of a store, as sccache's.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024 * 1024;

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

pub fn verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let store = crate::config::required_store(&args.store)?;
    let mut r = VerifyReport {
        repaired: args.repair,
        ..VerifyReport::default()
    };
    let mut bad_blobs: HashSet<Digest> = HashSet::new();
    for path in store.blob_files() {
        r.blobs += 1;
        let ok = match (digest_of_path(&path), std::fs::symlink_metadata(&path)) {
            (Some(d), Ok(m)) if m.file_type().is_file() => std::fs::File::open(&path)
                .and_then(crate::digest::hash_reader)
                .is_ok_and(|(got, _)| got == d),
            _ => false,
        };
        if !ok {
            r.corrupt_blobs.push(path.display().to_string());
            if let Some(d) = digest_of_path(&path) {
                bad_blobs.insert(d);
            }
            if args.repair {
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
                    if !empty && (bad_blobs.contains(&d) || !store.object_path(&d).exists()) {
                        r.missing_blobs
                            .push(format!("{} (entry {})", d, &e.key.hex()[..12]));
                        bad = true;
                    }
                }
                bad
            }
        };
        if bad && args.repair {
            let _ = std::fs::remove_file(&path);
        }
    }
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
    Ok(if problems > 0 && !args.repair { 1 } else { 0 })
}
