//! Many actions: the item stream, workers, ordering, halting.
//!
//! Three kinds of threads: a reader streams items from stdin or a file; the
//! dispatcher (the main thread) expands each item into a command, computes
//! its key and replays hits at once; `-j` workers run the misses. A single
//! emitter prints each job's output whole, in input order unless
//! `--unordered`. Results waiting to be printed hold digests or temp files,
//! never output bytes, and the dispatcher stays at most a window of jobs
//! ahead of the emitter, so memory is bounded however slow one job is.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use crate::cli::{Halt, MapArgs};
use crate::exec::{self, Job};
use crate::joblog::{self, Row};
use crate::progress::{Counts, Progress};
use crate::run::{self, Captured, Live, Outcome, Settings};
use crate::store::local::{Spooled, Verified};
use crate::store::{Blob, Store};
use crate::tokens::Tokens;

/// A checked `jl map` invocation.
struct Plan {
    template: Vec<OsString>,
    settings: Settings,
    jobs: usize,
    null: bool,
    arg_file: Option<PathBuf>,
    unordered: bool,
    quiet: bool,
    joblog: Option<PathBuf>,
    halt: Option<Halt>,
    retries: u32,
    timeout: Option<Duration>,
    dry_run: bool,
    shard: Option<(u64, u64)>,
    tokens: Tokens,
}

/// `jl map`: returns the exit code (failed jobs, capped at 101).
pub fn main(args: MapArgs) -> anyhow::Result<i32> {
    let plan = plan(args)?;
    let joblog = match &plan.joblog {
        Some(path) => Some(joblog::Writer::create(path)?),
        None => None,
    };
    let items = read_items(plan.arg_file.clone(), plan.null)?;
    if plan.dry_run {
        return dry_run(&plan, items);
    }
    execute(plan, items, joblog)
}

fn plan(args: MapArgs) -> anyhow::Result<Plan> {
    let tokens = Tokens::from_env();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = match args.jobs.as_deref() {
        None => cpus,
        Some(text) => parse_jobs(text, cpus)?,
    };
    let shard = args
        .shard
        .as_deref()
        .map(crate::shard::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let settings = crate::config::settings(&args.key, &args.cache, !args.no_cache);
    Ok(Plan {
        template: args.command,
        settings,
        jobs,
        null: args.null,
        arg_file: args.arg_file,
        unordered: args.unordered,
        quiet: args.quiet,
        joblog: args.joblog,
        halt: args.halt,
        retries: args.retries,
        timeout: args.timeout,
        dry_run: args.dry_run,
        shard,
        tokens,
    })
}

fn parse_jobs(text: &str, cpus: usize) -> anyhow::Result<usize> {
    let n = if let Some(pct) = text.strip_suffix('%') {
        let pct: f64 = pct
            .parse()
            .with_context(|| format!("-j {text}: not a percentage"))?;
        (cpus as f64 * pct / 100.0).round() as usize
    } else {
        text.parse().with_context(|| {
            format!("-j {text}: expected a number of jobs or a percentage like 50%")
        })?
    };
    if n == 0 {
        bail!("-j {text}: at least one job must run (try -j 1)");
    }
    Ok(n)
}

/// Items, streamed by a reader thread. Empty items are skipped.
fn read_items(arg_file: Option<PathBuf>, null: bool) -> anyhow::Result<mpsc::Receiver<Vec<u8>>> {
    let source: Box<dyn Read + Send> = match arg_file {
        Some(path) => Box::new(
            File::open(&path)
                .with_context(|| format!("cannot read the item list {}", path.display()))?,
        ),
        None => Box::new(io::stdin()),
    };
    let (tx, rx) = mpsc::sync_channel(4096);
    std::thread::spawn(move || {
        let sep = if null { b'\0' } else { b'\n' };
        let mut reader = BufReader::with_capacity(256 * 1024, source);
        loop {
            let mut item = Vec::new();
            match reader.read_until(sep, &mut item) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if item.last() == Some(&sep) {
                item.pop();
            }
            if !null && item.last() == Some(&b'\r') {
                item.pop();
            }
            if item.is_empty() {
                continue;
            }
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Expands GNU parallel's placeholders in one word.
pub fn expand(word: &[u8], item: &[u8], seq: u64, slot: usize) -> Option<Vec<u8>> {
    if !word.contains(&b'{') {
        return None;
    }
    let base_start = item.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    let base = &item[base_start..];
    let dir: &[u8] = match item.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(p) => &item[..p],
        None => b".",
    };
    let strip_ext = |s: &[u8], name_start: usize| -> Vec<u8> {
        match s[name_start..].iter().rposition(|&b| b == b'.') {
            Some(p) if p > 0 => s[..name_start + p].to_vec(),
            _ => s.to_vec(),
        }
    };
    let table: [(&[u8], Vec<u8>); 7] = [
        (b"{//}", dir.to_vec()),
        (b"{/.}", strip_ext(base, 0)),
        (b"{/}", base.to_vec()),
        (b"{.}", strip_ext(item, base_start)),
        (b"{#}", seq.to_string().into_bytes()),
        (b"{%}", slot.to_string().into_bytes()),
        (b"{}", item.to_vec()),
    ];
    let mut out = Vec::with_capacity(word.len() + item.len());
    let mut i = 0;
    let mut found = false;
    'scan: while i < word.len() {
        if word[i] == b'{' {
            for (pat, value) in &table {
                if word[i..].starts_with(pat) {
                    out.extend_from_slice(value);
                    i += pat.len();
                    found = true;
                    continue 'scan;
                }
            }
        }
        out.push(word[i]);
        i += 1;
    }
    found.then_some(out)
}

/// The command line of one job: placeholders expanded, or the item
/// appended when the template has none.
fn command_for(template: &[OsString], item: &[u8], seq: u64, slot: usize) -> Vec<OsString> {
    let mut any = false;
    let mut argv: Vec<OsString> = template
        .iter()
        .map(|w| match expand(w.as_bytes(), item, seq, slot) {
            Some(x) => {
                any = true;
                OsString::from_vec(x)
            }
            None => w.clone(),
        })
        .collect();
    if !any {
        argv.push(OsString::from_vec(item.to_vec()));
    }
    argv
}

fn expand_path(path: &std::path::Path, item: &[u8], seq: u64, slot: usize) -> PathBuf {
    match expand(path.as_os_str().as_bytes(), item, seq, slot) {
        Some(x) => PathBuf::from(OsString::from_vec(x)),
        None => path.to_path_buf(),
    }
}

/// One prepared job.
struct Prepared {
    index: u64,
    seq: u64,
    item: Vec<u8>,
    argv: Vec<OsString>,
    settings: Settings,
}

impl Prepared {
    fn new(plan: &Plan, index: u64, seq: u64, item: Vec<u8>) -> Prepared {
        let slot = (index as usize % plan.jobs) + 1;
        let argv = command_for(&plan.template, &item, seq, slot);
        let mut settings = plan.settings.clone();
        for p in settings
            .key
            .inputs
            .iter_mut()
            .chain(settings.key.outputs.iter_mut())
        {
            *p = expand_path(p, &item, seq, slot);
        }
        Prepared {
            index,
            seq,
            item,
            argv,
            settings,
        }
    }
}

/// One finished job, waiting to be printed.
struct Done {
    index: u64,
    seq: u64,
    item: Vec<u8>,
    line: String,
    code: i32,
    signal: Option<i32>,
    cached: bool,
    started: SystemTime,
    runtime: Duration,
    stdout: Captured,
    stderr: Captured,
    error: Option<String>,
    /// Never started because the map is halting: not shown, not counted.
    skipped: bool,
}

fn dry_run(plan: &Plan, items: mpsc::Receiver<Vec<u8>>) -> anyhow::Result<i32> {
    let stat = plan.settings.stat_cache();
    let mut out = io::stdout().lock();
    for (index, seq, item) in numbered(items, plan.shard) {
        let job = Prepared::new(plan, index, seq, item);
        let line = crate::key::shell_line(&job.argv);
        let cached = match (exec::resolve(&job.argv[0]), &job.settings.store) {
            (Ok(exe), Some(store)) => run::prepare(&job.settings, &job.argv, &exe, None, &stat)
                .is_some_and(|action| run::is_fresh(&job.settings, store, &action)),
            _ => false,
        };
        writeln!(out, "{line}{}", if cached { "  # cached" } else { "" })?;
    }
    Ok(0)
}

/// Items with their dispatch index and job number, after sharding.
fn numbered(
    items: mpsc::Receiver<Vec<u8>>,
    shard: Option<(u64, u64)>,
) -> impl Iterator<Item = (u64, u64, Vec<u8>)> {
    items
        .into_iter()
        .enumerate()
        .filter(move |(pos, _)| shard.is_none_or(|(i, n)| *pos as u64 % n == i))
        .enumerate()
        .map(|(index, (pos, item))| (index as u64, pos as u64 + 1, item))
}

/// Shared between the dispatcher, the workers and the emitter.
struct Shared {
    /// Dispatched minus emitted, to bound the dispatcher's lead.
    in_flight: Mutex<u64>,
    /// The most jobs `in_flight` may reach.
    window: u64,
    drained: Condvar,
    halting: AtomicBool,
}

fn execute(
    plan: Plan,
    items: mpsc::Receiver<Vec<u8>>,
    joblog: Option<joblog::Writer>,
) -> anyhow::Result<i32> {
    exec::forward_signals();
    let plan = Arc::new(plan);
    let window = (plan.jobs as u64 * 16).max(1024);
    let shared = Arc::new(Shared {
        in_flight: Mutex::new(0),
        window,
        drained: Condvar::new(),
        halting: AtomicBool::new(false),
    });
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let (total_tx, total_rx) = mpsc::channel::<u64>();
    let emitter = {
        let plan = Arc::clone(&plan);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || emit(&plan, &shared, done_rx, total_rx, joblog))
    };
    let (work_tx, work_rx) =
        mpsc::sync_channel::<(Prepared, PathBuf, Option<crate::key::Action>)>(plan.jobs);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let workers: Vec<_> = (0..plan.jobs)
        .map(|_| {
            let plan = Arc::clone(&plan);
            let shared = Arc::clone(&shared);
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            std::thread::spawn(move || {
                loop {
                    let next = rx.lock().expect("work queue").recv();
                    let Ok((job, exe, action)) = next else { break };
                    let done = work(&plan, &shared, job, &exe, action);
                    if tx.send(done).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();

    let stat = plan.settings.stat_cache();
    let mut exes: HashMap<OsString, Result<PathBuf, exec::SpawnError>> = HashMap::new();
    let mut dispatched = 0u64;
    for (index, seq, item) in numbered(items, plan.shard) {
        if shared.halting.load(Ordering::SeqCst) || exec::interrupted().is_some() {
            break;
        }
        {
            let mut n = shared.in_flight.lock().expect("window");
            while *n >= shared.window {
                n = shared.drained.wait(n).expect("window");
            }
            *n += 1;
        }
        dispatched += 1;
        let job = Prepared::new(&plan, index, seq, item);
        if job.item.contains(&0) {
            let message = "the item holds a NUL byte, which no argument can hold; use -0 to split items at NUL";
            let _ = done_tx.send(failed_to_start(&job, crate::error::USAGE, message.into()));
            continue;
        }
        let store_root = job.settings.store.as_ref().map(Store::root);
        if let Some(why) = crate::key::misdeclared_outputs(&job.argv, &job.settings.key, store_root)
        {
            let _ = done_tx.send(failed_to_start(&job, crate::error::USAGE, why));
            continue;
        }
        let exe = exes
            .entry(job.argv[0].clone())
            .or_insert_with(|| exec::resolve(&job.argv[0]));
        let exe = match exe {
            Ok(exe) => exe.clone(),
            Err(e) => {
                let failed = failed_to_start(&job, e.code, e.message.clone());
                let _ = done_tx.send(failed);
                continue;
            }
        };
        let action = run::prepare(&job.settings, &job.argv, &exe, None, &stat);
        if let (Some(action), Some(store), false) =
            (&action, &job.settings.store, job.settings.force)
        {
            if let Ok(hit) = run::find(&job.settings, store, action) {
                let line = crate::key::shell_line(&job.argv);
                let _ = done_tx.send(Done::hit(
                    &job,
                    line,
                    hit,
                    SystemTime::now(),
                    Duration::ZERO,
                ));
                continue;
            }
        }
        if work_tx.send((job, exe, action)).is_err() {
            break;
        }
    }
    let _ = total_tx.send(dispatched);
    drop(work_tx);
    drop(done_tx);
    for w in workers {
        let _ = w.join();
    }
    let failed = emitter.join().expect("emitter panicked")?;
    if let Some(sig) = exec::interrupted() {
        return Ok(128 + sig);
    }
    Ok(crate::error::code_of_failures(failed))
}

impl Done {
    /// What every outcome of `job` shares; the rest says nothing ran.
    fn of(job: &Prepared, line: String) -> Done {
        Done {
            index: job.index,
            seq: job.seq,
            item: job.item.clone(),
            line,
            code: 0,
            signal: None,
            cached: false,
            started: SystemTime::now(),
            runtime: Duration::ZERO,
            stdout: Captured::Spool(Spooled::default()),
            stderr: Captured::Spool(Spooled::default()),
            error: None,
            skipped: false,
        }
    }

    /// A job answered from the store. Small outputs, already verified,
    /// are kept as bytes; larger ones are read again when printed.
    fn hit(
        job: &Prepared,
        line: String,
        hit: run::Hit,
        started: SystemTime,
        runtime: Duration,
    ) -> Done {
        let keep = |verified: Verified, blob: Blob| match verified {
            Verified::Bytes(bytes) if bytes.len() <= KEPT_OUTPUT => Captured::Bytes(bytes),
            _ => Captured::Blob(blob),
        };
        Done {
            code: hit.entry.exit_code,
            cached: true,
            started,
            runtime,
            stdout: keep(hit.stdout, hit.entry.stdout),
            stderr: keep(hit.stderr, hit.entry.stderr),
            ..Done::of(job, line)
        }
    }
}

/// A cached output up to this size waits for its turn in memory: the
/// window of 16 × -j jobs then holds at most a few MiB.
const KEPT_OUTPUT: usize = 4096;

fn failed_to_start(job: &Prepared, code: i32, message: String) -> Done {
    Done {
        code,
        error: Some(message),
        ..Done::of(job, crate::key::shell_line(&job.argv))
    }
}

/// Runs one missed job on a worker, with retries.
fn work(
    plan: &Plan,
    shared: &Shared,
    job: Prepared,
    exe: &std::path::Path,
    action: Option<crate::key::Action>,
) -> Done {
    let line = crate::key::shell_line(&job.argv);
    let mut attempt = 0;
    loop {
        if shared.halting.load(Ordering::SeqCst) || exec::interrupted().is_some() {
            return Done {
                skipped: true,
                ..Done::of(&job, line)
            };
        }
        if job.settings.verbose {
            run::log::calling(&line);
        }
        let token = plan.tokens.acquire();
        let started = SystemTime::now();
        let clock = Instant::now();
        let spawn = Job {
            exe,
            argv: &job.argv,
            stdin: crate::exec::Stdin::Null,
            own_group: true,
            timeout: plan.timeout,
        };
        let outcome = run::perform(&job.settings, action.as_ref(), spawn, Live::Deferred);
        drop(token);
        let done = match outcome {
            Err(e) => failed_to_start(&job, e.code, e.message),
            Ok(Outcome::Hit(hit)) => Done::hit(&job, line.clone(), hit, started, clock.elapsed()),
            Ok(Outcome::Ran(ran)) => {
                use std::os::unix::process::ExitStatusExt;
                if job.settings.verbose {
                    run::log::done(&run::program_name(&job.argv), ran.finished.duration);
                }
                Done {
                    code: ran.finished.code(),
                    signal: ran.finished.status.signal(),
                    started,
                    runtime: ran.finished.duration,
                    error: ran.finished.timed_out.then(|| "timed out".to_string()),
                    stdout: ran.stdout,
                    stderr: ran.stderr,
                    ..Done::of(&job, line.clone())
                }
            }
        };
        if done.code == 0 || attempt >= plan.retries || exec::interrupted().is_some() {
            if done.code != 0 {
                if let Some(halt) = plan.halt {
                    if !shared.halting.swap(true, Ordering::SeqCst) && halt == Halt::Now {
                        halt_now();
                    }
                }
            }
            return done;
        }
        attempt += 1;
    }
}

/// Kills every running job: SIGTERM to its process group, SIGKILL after a
/// grace period.
fn halt_now() {
    exec::signal_all(rustix::process::Signal::TERM);
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(2));
        exec::signal_all(rustix::process::Signal::KILL);
    });
}

/// Prints finished jobs (in order unless `--unordered`), keeps the counts,
/// writes the joblog. Returns the number of failed jobs.
fn emit(
    plan: &Plan,
    shared: &Shared,
    done_rx: mpsc::Receiver<Done>,
    total_rx: mpsc::Receiver<u64>,
    mut joblog: Option<joblog::Writer>,
) -> anyhow::Result<u64> {
    let mut progress = Progress::new(plan.jobs, plan.quiet);
    let mut counts = Counts::default();
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let store = plan.settings.store.clone();
    let mut stdout_broken = false;
    loop {
        let received = done_rx.recv_timeout(Duration::from_millis(200));
        let disconnected = matches!(received, Err(mpsc::RecvTimeoutError::Disconnected));
        if counts.total.is_none() {
            counts.total = total_rx.try_recv().ok();
        }
        match received {
            Ok(done) => {
                pending.insert(done.index, done);
            }
            Err(_) if disconnected && pending.is_empty() => break,
            Err(_) => {}
        }
        loop {
            let ready = if plan.unordered {
                pending.pop_first().map(|(_, d)| d)
            } else {
                pending.remove(&next)
            };
            let Some(done) = ready else { break };
            next = done.index + 1;
            if done.skipped {
                release(shared);
                continue;
            }
            counts.done += 1;
            counts.cached += done.cached as u64;
            if done.code != 0 {
                counts.failed += 1;
            }
            let bytes =
                progress.suspend(|| write_output(&done, store.as_ref(), &mut stdout_broken));
            if done.code != 0 {
                let why = match (&done.error, done.signal) {
                    (Some(e), _) => e.clone(),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    (None, None) => format!("exit code {}", done.code),
                };
                progress.println(&format!(
                    "jl: job {} failed ({why}): {}",
                    done.seq,
                    shown_item(&done.item)
                ));
            }
            if let Some(log) = joblog.as_mut() {
                log.append(&row(&done, bytes))?;
            }
            if let Some(path) = &plan.settings.log {
                joblog::append_to(path, &row(&done, bytes));
            }
            release(shared);
        }
        if disconnected && !pending.is_empty() && !plan.unordered {
            // Every job has reported; the lowest pending one is next.
            if let Some((&first, _)) = pending.first_key_value() {
                next = first;
            }
        }
        progress.update(counts);
    }
    counts.total = Some(counts.done);
    progress.finish(counts);
    Ok(counts.failed)
}

/// An item as one line of a message: control characters escaped (a name
/// with a newline stays on its line) and a long item cut with an ellipsis.
fn shown_item(item: &[u8]) -> String {
    const MOST: usize = 200;
    let text = String::from_utf8_lossy(item);
    let mut shown = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MOST {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// One job left the window: the dispatcher may start another.
fn release(shared: &Shared) {
    let mut n = shared.in_flight.lock().expect("window");
    // Only a full window can have the dispatcher waiting.
    if *n == shared.window {
        shared.drained.notify_one();
    }
    *n -= 1;
}

fn row(done: &Done, received: u64) -> Row {
    Row {
        seq: done.seq,
        start: done.started,
        runtime: done.runtime,
        received,
        exit: done.code,
        signal: done.signal.unwrap_or(0),
        command: done.line.clone(),
        cached: done.cached,
    }
}

/// Writes one job's stdout then stderr, whole. Returns the stdout size.
fn write_output(done: &Done, store: Option<&Store>, stdout_broken: &mut bool) -> u64 {
    let received = match &done.stdout {
        Captured::Blob(b) => b.size,
        Captured::Bytes(bytes) => bytes.len() as u64,
        Captured::Spool(spooled) => spooled.len(),
        Captured::Lost => 0,
    };
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let streams: [(&Captured, &mut dyn Write, bool); 2] = [
        (&done.stdout, &mut stdout, true),
        (&done.stderr, &mut stderr, false),
    ];
    for (captured, out, is_stdout) in streams {
        let result = match captured {
            Captured::Blob(blob) => match store {
                Some(store) if blob.size > 0 => store.read_blob(blob).and_then(|v| v.write_to(out)),
                _ => Ok(()),
            },
            Captured::Bytes(bytes) => out.write_all(bytes),
            Captured::Spool(spooled) => spooled.write_to(out),
            Captured::Lost => Ok(()),
        };
        if let Err(e) = result {
            if is_stdout && e.kind() == io::ErrorKind::BrokenPipe {
                *stdout_broken = true;
            } else if !*stdout_broken {
                crate::error::warn(format_args!(
                    "cannot show the output of job {}: {e}",
                    done.seq
                ));
            }
        }
    }
    let _ = stdout.flush();
    received
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(word: &str, item: &str) -> String {
        String::from_utf8(
            expand(word.as_bytes(), item.as_bytes(), 7, 2).unwrap_or_else(|| b"-".to_vec()),
        )
        .unwrap()
    }

    #[test]
    fn placeholders_follow_gnu_parallel() {
        let rows = [
            ("{}", "dir/a.b.jpg", "dir/a.b.jpg"),
            ("{.}", "dir/a.b.jpg", "dir/a.b"),
            ("{/}", "dir/a.b.jpg", "a.b.jpg"),
            ("{//}", "dir/a.b.jpg", "dir"),
            ("{/.}", "dir/a.b.jpg", "a.b"),
            ("{.}", "dir.d/noext", "dir.d/noext"),
            ("{//}", "noslash", "."),
            ("{/.}", "noslash", "noslash"),
            ("{//}", "/top", "/"),
            ("{.}", "my file.txt", "my file"),
            ("{#}", "x", "7"),
            ("{%}", "x", "2"),
            ("pre-{/.}.out", "d/f.in", "pre-f.out"),
            ("plain", "x", "-"),
            ("{}{}", "ab", "abab"),
        ];
        for (word, item, want) in rows {
            assert_eq!(x(word, item), want, "{word} on {item}");
        }
    }

    #[test]
    fn items_are_shown_on_one_line_and_cut() {
        assert_eq!(shown_item(b"new\nline\t"), "new\\nline\\t");
        let long = "x".repeat(300);
        assert_eq!(shown_item(long.as_bytes()), format!("{}…", "x".repeat(200)));
    }

    #[test]
    fn jobs_parse() {
        assert_eq!(parse_jobs("3", 8).unwrap(), 3);
        assert_eq!(parse_jobs("50%", 8).unwrap(), 4);
        assert!(parse_jobs("0", 8).is_err());
        assert!(parse_jobs("many", 8).is_err());
    }
}
