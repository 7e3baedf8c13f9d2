//! One action: key -> hit ? replay : execute + commit.
//!
//! This is the only module that decides what a hit and a miss are; `jl
//! map` calls [`find`] and [`perform`] for every job. Store trouble never
//! fails a command here: it is reported once and the command runs
//! uncached.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::digest::{Digest, StatCache};
use crate::exec::{self, Finished, Job, SpawnError, Tee};
use crate::key::{self, Action, KeyOptions};
use crate::store::journal::Event;
use crate::store::local::{Spooled, Verified};
use crate::store::remote::Remote;
use crate::store::{
    Blob, BlobWriter, ENTRY_FORMAT, Entry, Lookup, OutputFile, RawPath, Store, now_ms,
};
use crate::trace::Accesses;

/// How one action (or every job of a map) uses the cache.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `None` runs without the cache.
    pub store: Option<Store>,
    pub key: KeyOptions,
    pub ttl: Option<Duration>,
    /// `jl run --stale`: how long past the TTL an entry is still replayed.
    pub stale: Option<Duration>,
    pub cache_failures: bool,
    pub force: bool,
    pub verbose: bool,
    /// `JL_LOG` / `--log`: one joblog row per run.
    pub log: Option<std::path::PathBuf>,
    /// `--remote`: asked on a local miss, given every commit.
    pub remote: Option<std::sync::Arc<Remote>>,
    /// One per process, shared by every job of a map, so a file hashed
    /// once (an executable, a traced dependency) is not read again.
    pub stat: StatCache,
    /// In a background refresh: when the caller asked for it.
    pub refresh_asked_ms: Option<u64>,
    /// The store's size bound (`JL_MAX_SIZE`), enforced after each commit.
    pub max_size: Option<u64>,
}

/// Reports store trouble: the first time only, so a map of 10,000 jobs on
/// a read-only store says it once.
pub fn store_warning(message: impl std::fmt::Display) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        crate::error::warn(format_args!("{message}; running without the cache"));
    }
}

/// Computes the key, or says why this run cannot be cached.
pub fn prepare(
    settings: &Settings,
    argv: &[OsString],
    exe: &Path,
    stdin: Option<Digest>,
) -> Option<Action> {
    settings.store.as_ref()?;
    match key::build(argv, exe, stdin, &settings.key, &settings.stat) {
        Ok(action) => Some(action),
        Err(e) => {
            crate::error::warn(format_args!("{e}; running without the cache"));
            None
        }
    }
}

/// A usable entry, with its stdout and stderr already verified and its
/// output files restored.
pub struct Hit {
    pub entry: Box<Entry>,
    pub stdout: Verified,
    pub stderr: Verified,
    /// Past `--ttl` but within `--stale`: replayed, and due for a refresh.
    pub stale: bool,
}

/// Why there is nothing to replay, and an entry found broken on the way
/// (left for whoever acts on the miss to remove).
#[derive(Debug)]
pub struct Miss {
    pub why: String,
    pub broken: Option<Digest>,
}

impl Miss {
    fn because(why: impl Into<String>) -> Miss {
        Miss {
            why: why.into(),
            broken: None,
        }
    }
}

/// A stored run an action would replay, not yet verified or restored.
pub struct Found {
    /// The key it is stored under: the action's own, or for `--trace`
    /// the recorded run whose dependencies all hold.
    pub key: Digest,
    pub entry: Box<Entry>,
    /// Past `--ttl` but within `--stale`: replayed, and due for a refresh.
    pub stale: bool,
}

/// The entry an action would replay, with the key it is stored under:
/// the action's own, or for `--trace` the first candidate whose
/// dependencies all hold. `ask_remote`: a local miss asks the remote.
fn entry_for(
    settings: &Settings,
    store: &Store,
    action: &Action,
    ask_remote: bool,
) -> Result<(Digest, Box<Entry>), Miss> {
    if settings.key.trace {
        let stat = &settings.stat;
        let mut broken = None;
        for key in crate::store::manifest::manifest(store, &action.key).candidates {
            match store.lookup(&key) {
                Lookup::Hit(entry) if entry.deps.iter().all(|d| d.holds(stat)) => {
                    return Ok((key, entry));
                }
                Lookup::Corrupt(_) => broken = broken.or(Some(key)),
                Lookup::Hit(_) | Lookup::Miss => {}
            }
        }
        return Err(Miss {
            why: "no recorded run's dependencies all hold".into(),
            broken,
        });
    }
    let mut lookup = store.lookup(&action.key);
    if let (Lookup::Miss, Some(remote), true) = (&lookup, &settings.remote, ask_remote) {
        if remote.fetch(store, &action.key) {
            lookup = store.lookup(&action.key);
        }
    }
    match lookup {
        Lookup::Hit(entry) => Ok((action.key, entry)),
        Lookup::Miss => Err(Miss::because(NO_ENTRY)),
        Lookup::Corrupt(why) => Err(Miss {
            why: format!("corrupt entry: {why}"),
            broken: Some(action.key),
        }),
    }
}

/// Whether a traced entry may write `path`: a place under the working
/// directory or one of `roots` (traced paths outside the working
/// directory are absolute).
fn may_restore_traced(roots: &[std::path::PathBuf], path: &Path) -> bool {
    if path.is_relative() {
        return path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    }
    roots.iter().any(|root| key::is_within(path, root))
}

/// Whether an entry writes only where this invocation allows: declared
/// outputs, or for `--trace` its roots. Names the first path it may not.
fn check_paths(settings: &Settings, action: &Action, entry: &Entry) -> Result<(), String> {
    if !settings.key.trace {
        if let Some(gone) = entry.deleted.first() {
            return Err(gone.display());
        }
        return crate::outputs::check(&crate::outputs::described(entry), &action.outputs);
    }
    let d = crate::outputs::described(entry);
    let cwd = std::env::current_dir().unwrap_or_default();
    let roots = trace_roots(settings, &cwd);
    let restored = entry.outputs.iter().map(|o| &o.path);
    let made = d.dirs.iter().map(|x| &x.path);
    let linked = d.links.iter().map(|x| &x.path);
    match restored
        .chain(made)
        .chain(linked)
        .chain(&entry.deleted)
        .chain(d.absent)
        .find(|p| !may_restore_traced(&roots, &p.to_path()))
    {
        Some(bad) => Err(bad.display()),
        None => Ok(()),
    }
}

/// Decides whether `action` has a stored run to replay: the only place
/// that does. Nothing on disk changes (but for a remote hit, which is
/// written into the local store); a broken entry is named in the miss.
pub fn lookup(
    settings: &Settings,
    store: &Store,
    action: &Action,
    ask_remote: bool,
) -> Result<Found, Miss> {
    let (key, entry) = entry_for(settings, store, action, ask_remote)?;
    if entry.exit_code != 0 && !settings.cache_failures {
        return Err(Miss::because(format!(
            "the stored run failed with exit code {}; only --cache-failures replays a failure",
            entry.exit_code
        )));
    }
    if let Some(from) = entry.failed_from {
        let now = crate::outputs::state(&action.outputs, &settings.stat);
        if now.ok() != Some(from) {
            return Err(Miss::because(
                "the declared outputs are not as the stored failure found them",
            ));
        }
    }
    let stale = match age(settings, &entry) {
        Age::Expired => return Err(Miss::because("expired (older than --ttl)")),
        Age::Stale => true,
        Age::Fresh => false,
    };
    if let Err(bad) = check_paths(settings, action, &entry) {
        // From a shared store, an untraced entry naming an undeclared path
        // is hostile; a traced one may just belong to another checkout.
        return Err(Miss {
            why: format!("entry names an output not declared here: {bad}"),
            broken: (!settings.key.trace).then_some(key),
        });
    }
    Ok(Found { key, entry, stale })
}

/// Replays a stored run's files: checks every blob against its digest,
/// then makes the declared outputs (or a traced run's) as the run left
/// them, and counts the hit. A blob that fails its check makes this a
/// miss, and the broken entry and blobs are removed.
pub fn restore(
    settings: &Settings,
    store: &Store,
    action: &Action,
    found: Found,
) -> Result<Hit, String> {
    let Found { key, entry, stale } = found;
    let verified = (|| {
        let stdout = store.read_blob(&entry.stdout)?;
        let stderr = store.read_blob(&entry.stderr)?;
        // Every output blob is checked before anything is changed on disk.
        for out in &entry.outputs {
            store.read_blob(&out.blob)?;
        }
        let restore_file = |f: &OutputFile| store.restore(f, &f.path.to_path());
        let declared = crate::outputs::described(&entry);
        if settings.key.trace {
            crate::outputs::restore(&declared, &[], restore_file)?;
            remove_deleted(&entry.deleted)?;
        } else {
            crate::outputs::restore(&declared, &action.outputs, restore_file)?;
        }
        Ok::<_, io::Error>((stdout, stderr))
    })();
    match verified {
        Ok((stdout, stderr)) => {
            store.touch(&key);
            store.record(Event::Hit {
                key,
                saved_ms: entry.duration_ms,
            });
            Ok(Hit {
                entry,
                stdout,
                stderr,
                stale,
            })
        }
        Err(e) => {
            if e.kind() == io::ErrorKind::InvalidData {
                for blob in entry.blobs() {
                    if matches!(store.read_blob(&blob), Err(e) if e.kind() == io::ErrorKind::InvalidData)
                    {
                        let _ = store.remove_blob(&blob.digest);
                    }
                }
            }
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::NotFound
            ) {
                let _ = store.remove_entry(&key);
            }
            Err(format!("cannot replay: {e}"))
        }
    }
}

/// [`lookup`] then [`restore`]: the hit a front end replays, or why there
/// is none (a broken entry found on the way is removed, so the command's
/// run replaces it).
pub fn find(settings: &Settings, store: &Store, action: &Action) -> Result<Hit, String> {
    find_in(settings, store, action, true)
}

fn find_in(
    settings: &Settings,
    store: &Store,
    action: &Action,
    ask_remote: bool,
) -> Result<Hit, String> {
    match lookup(settings, store, action, ask_remote) {
        Ok(found) => restore(settings, store, action, found),
        Err(miss) => {
            if let Some(broken) = miss.broken {
                let _ = store.remove_entry(&broken);
            }
            Err(miss.why)
        }
    }
}

/// Removes again what a traced run removed. A directory is removed only
/// when empty, as the command left it; if that fails the hit fails and
/// the command runs.
fn remove_deleted(deleted: &[RawPath]) -> io::Result<()> {
    let mut deleted: Vec<std::path::PathBuf> = deleted.iter().map(RawPath::to_path).collect();
    // Children before their directory.
    deleted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for gone in deleted {
        let removed = match std::fs::symlink_metadata(&gone) {
            Ok(m) if m.is_dir() => std::fs::remove_dir(&gone),
            _ => std::fs::remove_file(&gone),
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The stored entry of the same program whose key parts differ least
/// from `action`'s (the most recently used on a tie), with what differs:
/// the answer to "why was this a miss?" for `jl explain` and `-v`. It
/// reads every entry, so only those who ask pay for it.
pub fn nearest(store: &Store, action: &Action) -> Option<(Digest, Vec<String>)> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    store
        .entry_files()
        .into_iter()
        .filter_map(|path| Some((mtime(&path), Store::read_entry(&path).ok()?)))
        .filter(|(_, e)| e.parts.exe == action.parts.exe && e.key != action.key)
        .map(|(used, e)| {
            let d = key::differences(&e.parts, &action.parts);
            (d.len(), std::cmp::Reverse(used), e.key, d)
        })
        .min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)))
        .map(|(_, _, key, d)| (key, d))
}

/// The reason `-v` gives for a miss: what differs from the nearest entry
/// when there is no entry under this key.
pub fn miss_reason(store: &Store, action: &Action, why: String) -> String {
    if why != NO_ENTRY || action.parts.trace {
        return why;
    }
    match nearest(store, action) {
        Some((_, d)) if !d.is_empty() => d.join("; "),
        _ => format!("{why} for this program"),
    }
}

/// `entry_for`'s answer when nothing is stored under the key.
const NO_ENTRY: &str = "no entry";

/// Whether an action has a usable entry (without replaying it).
pub fn is_fresh(settings: &Settings, store: &Store, action: &Action) -> bool {
    lookup(settings, store, action, false).is_ok()
}

/// An entry's age against `--ttl` and `--stale`.
enum Age {
    Fresh,
    /// Past the TTL by at most `--stale`.
    Stale,
    Expired,
}

fn age(settings: &Settings, entry: &Entry) -> Age {
    let Some(ttl) = settings.ttl else {
        return Age::Fresh;
    };
    let now = now_ms();
    let until = |d: Duration| entry.created_ms.saturating_add(d.as_millis() as u64);
    if until(ttl) >= now {
        Age::Fresh
    } else if settings
        .stale
        .is_some_and(|stale| until(ttl + stale) >= now)
    {
        Age::Stale
    } else {
        Age::Expired
    }
}

/// Where a job's output goes while it runs.
pub enum Live {
    /// Straight to jl's own stdout and stderr (`jl run`).
    Terminal,
    /// Captured only, to be shown later in order (`jl map`).
    Deferred,
}

/// Captured output of a job that ran, for deferred display.
pub enum Captured {
    Blob(Blob),
    /// A blob linked into the map's own directory (`Store::pin`), so no
    /// eviction can take it before it is shown.
    Pinned(tempfile::TempPath, Blob),
    /// Verified bytes of a small cached output (`jl map`).
    Bytes(Vec<u8>),
    Spool(Spooled),
    /// The capture broke (a full disk): nothing to show.
    Lost,
}

impl Captured {
    /// How many bytes it holds, as far as known without reading.
    pub fn size(&self) -> u64 {
        match self {
            Captured::Blob(b) | Captured::Pinned(_, b) => b.size,
            Captured::Bytes(bytes) => bytes.len() as u64,
            Captured::Spool(spooled) => spooled.len(),
            Captured::Lost => 0,
        }
    }
}

/// What happened to an action that was not a hit at first look.
pub enum Outcome {
    /// Another jl ran it meanwhile; this is its result.
    Hit(Hit),
    Ran(Box<Ran>),
}

pub struct Ran {
    pub finished: Finished,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// The miss path: lock the key, run the command teeing its output, commit
/// the entry if the command succeeded and nothing interrupted it.
pub fn perform(
    settings: &Settings,
    action: Option<&Action>,
    job: Job<'_>,
    live: Live,
) -> Result<Outcome, SpawnError> {
    let mut cacheable = action.zip(settings.store.as_ref());
    let _lock = match cacheable.map(|(action, store)| lock_or_hit(settings, store, action)) {
        Some(Locked::Hit(hit)) => return Ok(Outcome::Hit(hit)),
        Some(Locked::Run(lock)) => Some(lock),
        Some(Locked::Unusable) => {
            cacheable = None;
            None
        }
        None => None,
    };
    // Only a failure needs it, and only one that may be stored.
    let outputs_before = cacheable
        .filter(|(a, _)| settings.cache_failures && !a.outputs.is_empty())
        .and_then(|(a, _)| crate::outputs::state(&a.outputs, &settings.stat).ok());
    let (stdout, stderr) = captures(cacheable.map(|(_, store)| store), &live);
    let (mut finished, accesses) = match cacheable.filter(|_| settings.key.trace) {
        Some((_, store)) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            let accesses = Accesses::new(
                trace_ignored(settings, store),
                trace_roots(settings, &cwd),
                settings.stat.clone(),
            );
            let (finished, accesses) = crate::trace::run(job, stdout, stderr, accesses)?;
            (finished, Some(accesses))
        }
        None => (exec::run(job, stdout, stderr)?, None),
    };
    let out_capture = finished.stdout.capture.take();
    let err_capture = finished.stderr.capture.take();
    let capture_error = [&out_capture, &err_capture]
        .into_iter()
        .flatten()
        .find_map(|w| w.error());
    if let (Some(e), Some((_, store))) = (capture_error, cacheable) {
        store_warning(format_args!(
            "cannot write to store {}: {e}",
            store.root().display()
        ));
        cacheable = None;
    }
    let verdict = cacheable.map(|(action, _)| verdict(settings, action, &finished, accesses));
    let (stdout, stderr) = match (cacheable, verdict) {
        (Some((action, store)), Some(Verdict::Store(discovered))) => {
            let commit = Commit {
                settings,
                store,
                action,
                finished: &finished,
                discovered: discovered.as_ref(),
                outputs_before,
                pin: matches!(live, Live::Deferred),
            };
            commit_and_share(commit, out_capture, err_capture)
        }
        _ => (spool(out_capture), spool(err_capture)),
    };
    Ok(Outcome::Ran(Box::new(Ran {
        finished,
        stdout,
        stderr,
    })))
}

/// What the key's lock gave: a result another jl stored meanwhile, the
/// go-ahead to run, or a store that cannot be used.
enum Locked {
    Hit(Hit),
    Run(crate::store::local::KeyLock),
    Unusable,
}

/// Takes the key's lock; whoever held it (another jl, an identical job of
/// this map) may have stored the result meanwhile, so the key is looked
/// up again. A refresh only takes a result made since it was asked for.
fn lock_or_hit(settings: &Settings, store: &Store, action: &Action) -> Locked {
    let lock = match store.prepare().and_then(|()| store.lock(&action.key)) {
        Ok((lock, _waited)) => lock,
        Err(e) => {
            store_warning(format_args!(
                "store {} is unusable: {e}",
                store.root().display()
            ));
            return Locked::Unusable;
        }
    };
    let look_again = match settings.refresh_asked_ms {
        _ if settings.force => false,
        None => true,
        Some(asked) => lookup(settings, store, action, false)
            .is_ok_and(|found| found.entry.created_ms >= asked),
    };
    if look_again {
        if let Ok(hit) = find_in(settings, store, action, false) {
            return Locked::Hit(hit);
        }
    }
    store.record(Event::Miss { key: action.key });
    Locked::Run(lock)
}

/// Where the command's stdout and stderr go: the terminal and the store
/// (`jl run`), or only a capture that keeps every byte (`jl map`).
fn captures(store: Option<&Store>, live: &Live) -> (Tee, Tee) {
    let capture = || match (store, live) {
        (Some(store), Live::Terminal) => Some(store.blob_writer()),
        (Some(store), Live::Deferred) => Some(store.blob_writer().keeping()),
        (None, Live::Deferred) => Some(BlobWriter::new_in(std::env::temp_dir()).keeping()),
        (None, Live::Terminal) => None,
    };
    match live {
        Live::Terminal => (
            Tee::to_fd(io::stdout().as_fd(), capture()),
            Tee::to_fd(io::stderr().as_fd(), capture()),
        ),
        Live::Deferred => (
            Tee {
                capture: capture(),
                ..Tee::default()
            },
            Tee {
                capture: capture(),
                ..Tee::default()
            },
        ),
    }
}

/// Whether a finished run may be stored.
enum Verdict {
    /// Yes, with what a trace found it to depend on.
    Store(Option<crate::deps::Discovered>),
    /// No: a failure not asked to be cached, an interrupted or timed-out
    /// run, output jl could not read or pass on, or a refusal (printed).
    Keep,
}

fn verdict(
    settings: &Settings,
    action: &Action,
    finished: &Finished,
    accesses: Option<Accesses>,
) -> Verdict {
    let read_error = [&finished.stdout, &finished.stderr]
        .into_iter()
        .find_map(|t| t.read_error.as_ref());
    if let Some(e) = read_error {
        crate::error::warn(format_args!(
            "cannot read the command's output ({e}); its result is not cached"
        ));
    }
    let clean = exec::interrupted().is_none()
        && !finished.timed_out
        && read_error.is_none()
        && !finished.stdout.live_broken
        && !finished.stderr.live_broken;
    let wanted = finished.status.success() || settings.cache_failures;
    if !(clean && wanted) {
        return Verdict::Keep;
    }
    let refused = match key::changed_input(action) {
        Some(path) => Err(format!(
            "input '{}' changed while the command ran",
            path.display()
        )),
        None => match accesses {
            None => Ok(None),
            Some(acc) => {
                let cwd = std::env::current_dir().unwrap_or_default();
                crate::deps::discover(&acc, &cwd).map(Some)
            }
        },
    };
    match refused {
        Ok(discovered) => Verdict::Store(discovered),
        Err(why) => {
            crate::error::warn(format_args!("{why}; its result is not cached"));
            Verdict::Keep
        }
    }
}

/// A run's output kept to be shown without being stored.
fn spool(w: Option<BlobWriter>) -> Captured {
    match w.map(BlobWriter::into_spool) {
        Some(Ok(spooled)) => Captured::Spool(spooled),
        _ => Captured::Lost,
    }
}

/// What storing one run needs.
struct Commit<'a> {
    settings: &'a Settings,
    store: &'a Store,
    action: &'a Action,
    finished: &'a Finished,
    discovered: Option<&'a crate::deps::Discovered>,
    outputs_before: Option<Digest>,
    /// Pin the published output for a map that shows it later.
    pin: bool,
}

/// Publishes the captured output and commits the entry, then shares it:
/// uploads it to the remote and keeps the store under its bound. Store
/// trouble is a warning; the output is shown either way.
fn commit_and_share(
    c: Commit<'_>,
    out_capture: Option<BlobWriter>,
    err_capture: Option<BlobWriter>,
) -> (Captured, Captured) {
    let finish = |w: Option<BlobWriter>| {
        let w = w.ok_or_else(|| io::Error::other("output capture was not available"))?;
        c.store.finish_blob_pinned(w, c.pin)
    };
    let published = (finish(out_capture), finish(err_capture));
    let result = match &published {
        (Ok((out, _)), Ok((err, _))) => commit(
            c.store,
            c.action,
            c.finished,
            (*out, *err),
            c.discovered,
            c.outputs_before,
        ),
        (Err(e), _) | (_, Err(e)) => Err(io::Error::new(e.kind(), e.to_string())),
    };
    match result {
        Ok((bytes, entry)) => {
            if let (Some(remote), None) = (&c.settings.remote, c.discovered) {
                remote.upload(c.store, &entry);
            }
            if let Some(max) = c.settings.max_size {
                c.store.enforce_max_size(&entry.key, bytes, max);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            crate::error::warn(format_args!("{e}; its result is not cached"));
        }
        Err(e) => store_warning(format_args!(
            "cannot write to store {}: {e}",
            c.store.root().display()
        )),
    }
    let shown = |published: io::Result<(Blob, Option<tempfile::TempPath>)>| match published {
        Ok((blob, Some(pin))) => Captured::Pinned(pin, blob),
        Ok((blob, None)) => Captured::Blob(blob),
        Err(_) => Captured::Lost,
    };
    (shown(published.0), shown(published.1))
}

/// Where a traced run's writes are kept: the working directory,
/// `--trace-outputs` and declared outputs.
fn trace_roots(settings: &Settings, cwd: &Path) -> Vec<std::path::PathBuf> {
    let declared = settings.key.outputs.iter().map(|o| cwd.join(o));
    std::iter::once(cwd.to_path_buf())
        .chain(settings.key.trace_outputs.iter().cloned())
        .chain(declared.map(|o| crate::trace::normalize(&o)))
        .collect()
}

/// What a trace never records: kernel interfaces, the store itself and
/// the user's `--trace-ignore` prefixes.
fn trace_ignored(settings: &Settings, store: &Store) -> Vec<std::path::PathBuf> {
    let store_root = std::fs::canonicalize(store.root()).unwrap_or_else(|_| store.root().into());
    ["/proc", "/sys", "/dev"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .chain([store_root])
        .chain(settings.key.trace_ignore.iter().cloned())
        .collect()
}

/// Publishes the output files, then the entry naming them and the
/// published stdout and stderr (and for a traced run, its place in the
/// action's manifest).
fn commit(
    store: &Store,
    action: &Action,
    finished: &Finished,
    (stdout, stderr): (Blob, Blob),
    traced: Option<&crate::deps::Discovered>,
    outputs_before: Option<Digest>,
) -> io::Result<(u64, Entry)> {
    let failed_from = match (finished.status.success(), action.outputs.is_empty()) {
        (false, false) => Some(outputs_before.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "the declared outputs could not be read before the run",
            )
        })?),
        _ => None,
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let (key, deps, deleted, recorded) = match traced {
        Some(found) => {
            let files = found.outputs.iter().map(|(path, kept, times)| {
                crate::outputs::store_file(store, path, kept.clone(), *times)
            });
            let dirs = found
                .dirs
                .iter()
                .map(|(path, mode)| crate::store::OutputDir {
                    path: path.clone(),
                    mode: *mode,
                });
            let links = found
                .links
                .iter()
                .map(|(path, target)| crate::store::OutputLink {
                    path: path.clone(),
                    target: RawPath::new(target),
                });
            let recorded = crate::outputs::Recorded {
                files: files.collect::<io::Result<_>>()?,
                dirs: dirs.collect(),
                links: links.collect(),
                absent: Vec::new(),
            };
            (
                crate::deps::candidate_key(&action.key, &found.deps),
                found.deps.clone(),
                found.deleted.clone(),
                recorded,
            )
        }
        None => {
            let recorded = crate::outputs::record(store, &action.outputs)?;
            (action.key, Vec::new(), Vec::new(), recorded)
        }
    };
    let entry = Entry {
        format: ENTRY_FORMAT,
        key,
        parts: action.parts.clone(),
        cwd: cwd.to_string_lossy().into_owned(),
        created_ms: now_ms(),
        duration_ms: finished.duration.as_millis() as u64,
        exit_code: finished.code(),
        stdout,
        stderr,
        outputs: recorded.files,
        output_dirs: recorded.dirs,
        output_links: recorded.links,
        absent: recorded.absent,
        failed_from,
        deps,
        deleted,
    };
    let bytes = store.commit(&entry)?;
    if traced.is_some() {
        crate::store::manifest::add_candidate(store, &action.key, key)?;
    }
    Ok((bytes, entry))
}

/// Joblib-style log lines, printed with `-v`.
pub mod log {
    use std::time::Duration;

    pub fn calling(line: &str) {
        eprintln!("[jl] Calling {line}");
    }

    pub fn done(program: &str, took: Duration) {
        let s = took.as_secs_f64();
        eprintln!("[jl] {program} - {s:.1}s, {:.1}min", s / 60.0);
    }

    pub fn cached(line: &str, saved_ms: u64) {
        eprintln!(
            "[jl] Cached {line} (saved {:.1}s)",
            saved_ms as f64 / 1000.0
        );
    }

    pub fn miss(key: &str, why: &str) {
        eprintln!("[jl] Miss {} ({why})", &key[..12.min(key.len())]);
    }
}

/// The program's name as logs show it.
pub fn program_name(argv: &[OsString]) -> String {
    Path::new(&argv[0])
        .file_name()
        .unwrap_or(argv[0].as_os_str())
        .to_string_lossy()
        .into_owned()
}
