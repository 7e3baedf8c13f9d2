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
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
use crate::template::{self, Template};
use crate::tokens::Tokens;

/// A checked `jl map` invocation.
struct Plan {
    template: Template,
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
    // A command that cannot run fails once, before any item is read, as
    // with xargs; a program named by a placeholder is looked up per job.
    if let Some(program) = plan.template.fixed_program() {
        if let Err(e) = exec::resolve(program) {
            eprintln!("jl: {}", e.message);
            return Ok(e.code);
        }
    }
    let joblog = match &plan.joblog {
        Some(path) => Some(joblog::Writer::create(path)?),
        None => None,
    };
    let (items, total) = read_items(plan.arg_file.clone(), plan.null, plan.shard)?;
    if plan.dry_run {
        return dry_run(&plan, items);
    }
    execute(plan, items, total, joblog)
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
    if args.timeout == Some(Duration::ZERO) {
        bail!("--timeout 0: give a time above zero (e.g. 30s), or leave --timeout out");
    }
    let settings = crate::config::settings(&args.key, &args.cache, !args.no_cache, None);
    Ok(Plan {
        template: Template::new(args.command),
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
    if n > MAX_JOBS {
        bail!("-j {text}: at most {MAX_JOBS} jobs run at once");
    }
    Ok(n)
}

/// The most jobs `-j` may ask for: each running job is a thread and a
/// process, and far more than the machine can run only costs memory.
const MAX_JOBS: usize = 4096;

/// One record of the item stream.
enum Record {
    /// A non-empty item and its line (or NUL-separated record) number.
    Item(u64, Vec<u8>),
    /// Reading failed: the items end here, and the map fails.
    Failed(io::Error),
}

/// The number of jobs, once the item stream has ended.
#[derive(Clone, Default)]
struct Total(Arc<AtomicU64>);

impl Total {
    const UNKNOWN: u64 = u64::MAX;

    fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::SeqCst)).filter(|&n| n != Total::UNKNOWN)
    }
}

/// Items, streamed by a reader thread. Empty items are skipped, but they
/// count in the line numbers (`{#}`). When the stream ends, the number of
/// jobs it makes (after `--shard`) is known, for the progress display.
fn read_items(
    arg_file: Option<PathBuf>,
    null: bool,
    shard: Option<(u64, u64)>,
) -> anyhow::Result<(Items, Total)> {
    let source: Box<dyn Read + Send> = match arg_file {
        Some(path) => Box::new(
            File::open(&path)
                .with_context(|| format!("cannot read the item list {}", path.display()))?,
        ),
        None => {
            use std::io::IsTerminal;
            if io::stdin().is_terminal() {
                eprintln!("jl: reading items from the terminal, one per line; Ctrl-D ends them");
            }
            Box::new(io::stdin())
        }
    };
    let total = Total(Arc::new(AtomicU64::new(Total::UNKNOWN)));
    let known = total.clone();
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::spawn(move || {
        let mut items = 0u64;
        let sep = if null { b'\0' } else { b'\n' };
        let mut reader = BufReader::with_capacity(256 * 1024, source);
        let mut line = 0u64;
        let mut batch = Vec::new();
        loop {
            // Items go in batches, each one handoff between threads; a
            // batch leaves as soon as the next read could wait for input.
            let full = batch.len() >= ITEM_BATCH;
            let may_wait = !batch.is_empty() && reader.buffer().is_empty();
            if (full || may_wait) && tx.send(std::mem::take(&mut batch)).is_err() {
                return;
            }
            let mut item = Vec::new();
            match reader.read_until(sep, &mut item) {
                Ok(0) => {
                    let jobs = match shard {
                        None => items,
                        Some((i, n)) => items / n + u64::from(i < items % n),
                    };
                    known.0.store(jobs, Ordering::SeqCst);
                    break;
                }
                Ok(_) => line += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    batch.push(Record::Failed(e));
                    break;
                }
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
            items += 1;
            batch.push(Record::Item(line, item));
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
    });
    Ok((
        Items {
            rx,
            batch: Vec::new().into_iter(),
        },
        total,
    ))
}

/// The most items the reader hands over at once.
const ITEM_BATCH: usize = 512;

/// The item stream, as the reader thread hands it over.
struct Items {
    rx: mpsc::Receiver<Vec<Record>>,
    batch: std::vec::IntoIter<Record>,
}

impl Items {
    /// Whether the next item may have to wait for the reader.
    fn may_wait(&self) -> bool {
        self.batch.len() == 0
    }
}

impl Iterator for Items {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.batch.next() {
                return Some(record);
            }
            self.batch = self.rx.recv().ok()?.into_iter();
        }
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
    /// The job as its key sees it: `{%}` is left as it is, since which
    /// worker runs a job chooses a resource, not a result.
    fn new(plan: &Plan, index: u64, seq: u64, item: Vec<u8>) -> Prepared {
        let job = template::Job {
            item: &item,
            seq,
            slot: None,
        };
        let argv = plan.template.command(job);
        let mut settings = plan.settings.clone();
        for p in settings
            .key
            .inputs
            .iter_mut()
            .chain(settings.key.outputs.iter_mut())
        {
            *p = template::path(p, job);
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

impl Prepared {
    /// The command line run by the worker holding `slot` (`{%}`).
    fn argv_in(&self, plan: &Plan, slot: usize) -> Vec<OsString> {
        plan.template.command(template::Job {
            item: &self.item,
            seq: self.seq,
            slot: Some(slot),
        })
    }
}

/// One finished job, waiting to be printed.
struct Done {
    index: u64,
    seq: u64,
    item: Vec<u8>,
    /// The command line's raw bytes (joblogs, messages).
    line: Vec<u8>,
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

fn dry_run(plan: &Plan, items: Items) -> anyhow::Result<i32> {
    let mut out = io::stdout().lock();
    let mut items = Numbered::new(items, plan.shard);
    for (index, seq, item) in items.by_ref() {
        let job = Prepared::new(plan, index, seq, item);
        let line = crate::key::shell_bytes(&job.argv);
        let cached = match (exec::resolve(&job.argv[0]), &job.settings.store) {
            (Ok(exe), Some(store)) => run::prepare(&job.settings, &job.argv, &exe, None)
                .is_some_and(|action| run::is_fresh(&job.settings, store, &action)),
            _ => false,
        };
        out.write_all(&line)?;
        writeln!(out, "{}", if cached { "  # cached" } else { "" })?;
    }
    match items.failed {
        Some(e) => Err(e).context("cannot read the items"),
        None => Ok(0),
    }
}

/// Items with their dispatch index and line number, after sharding. A
/// read error ends them and is kept in `failed`.
struct Numbered {
    items: Items,
    shard: Option<(u64, u64)>,
    /// Items read, and items kept (the dispatch index).
    read: u64,
    kept: u64,
    failed: Option<io::Error>,
}

impl Numbered {
    fn new(items: Items, shard: Option<(u64, u64)>) -> Numbered {
        Numbered {
            items,
            shard,
            read: 0,
            kept: 0,
            failed: None,
        }
    }
}

impl Iterator for Numbered {
    type Item = (u64, u64, Vec<u8>);

    fn next(&mut self) -> Option<(u64, u64, Vec<u8>)> {
        if self.failed.is_some() {
            return None;
        }
        loop {
            let (line, item) = match self.items.next()? {
                Record::Item(line, item) => (line, item),
                Record::Failed(e) => {
                    self.failed = Some(e);
                    return None;
                }
            };
            let pos = self.read;
            self.read += 1;
            if self.shard.is_none_or(|(i, n)| pos % n == i) {
                self.kept += 1;
                return Some((self.kept - 1, line, item));
            }
        }
    }
}

/// Shared between the dispatcher, the workers and the emitter.
struct Shared {
    /// Dispatched minus emitted, to bound the dispatcher's lead.
    in_flight: Mutex<u64>,
    /// The most jobs `in_flight` may reach.
    window: u64,
    drained: Condvar,
    halting: AtomicBool,
    /// jl's stdout was closed (`| head`): nothing more is started.
    stdout_closed: AtomicBool,
    /// The status of the job whose failure set off `--halt`.
    halted_by: Mutex<Option<i32>>,
    total: Total,
}

/// A missed job on its way to a worker.
type Work = (Prepared, PathBuf, Option<crate::key::Action>);

fn execute(
    mut plan: Plan,
    items: Items,
    total: Total,
    joblog: Option<joblog::Writer>,
) -> anyhow::Result<i32> {
    exec::forward_signals();
    // The map's own directory below the store's tmp/: its spools and the
    // outputs waiting to be shown live there, out of gc's and clear's
    // reach. A store that cannot be written still replays hits.
    let _scratch = match plan
        .settings
        .store
        .as_ref()
        .map(|s| s.prepare().and_then(|()| s.scratch()))
    {
        Some(Ok((store, scratch))) => {
            plan.settings.store = Some(store);
            Some(scratch)
        }
        _ => None,
    };
    if let Some(store) = &plan.settings.store {
        store.hold_journal();
    }
    let plan = Arc::new(plan);
    let window = (plan.jobs as u64 * 16).max(1024);
    let shared = Arc::new(Shared {
        in_flight: Mutex::new(0),
        window,
        drained: Condvar::new(),
        halting: AtomicBool::new(false),
        stdout_closed: AtomicBool::new(false),
        halted_by: Mutex::new(None),
        total,
    });
    let (done_tx, done_rx) = mpsc::channel::<Vec<Done>>();
    let emitter = {
        let plan = Arc::clone(&plan);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || emit(&plan, &shared, done_rx, joblog))
    };
    let (work_tx, work_rx) = mpsc::sync_channel::<Work>(plan.jobs);
    let work_rx = Arc::new(Mutex::new(work_rx));
    // Workers start as misses need them, up to -j.
    let workers = Mutex::new(Vec::new());
    // Worker N holds slot N (`{%}`) for every job it runs.
    let start_worker = |slot: usize| {
        let plan = Arc::clone(&plan);
        let shared = Arc::clone(&shared);
        let rx = Arc::clone(&work_rx);
        let tx = done_tx.clone();
        std::thread::spawn(move || {
            loop {
                let next = rx.lock().expect("work queue").recv();
                let Ok((job, exe, action)) = next else { break };
                let done = work(&plan, &shared, job, &exe, action, slot);
                if tx.send(vec![done]).is_err() {
                    break;
                }
            }
        })
    };
    let items = Mutex::new(Numbered::new(items, plan.shard));
    let exes = Mutex::new(HashMap::new());
    let order = Mutex::new(InOrder::default());
    let dispatcher = Dispatcher {
        order: &order,
        plan: &plan,
        shared: &shared,
        items: &items,
        exes: &exes,
        done_tx: &done_tx,
        work_tx: &work_tx,
        workers: &workers,
        start_worker: &start_worker,
    };
    // Lookups run side by side: the main thread and one more thread per
    // core (up to -j), so a map of hits uses every core; with a remote,
    // -j of them, so its round trips overlap as jobs do.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lookers = match plan.settings.remote {
        Some(_) => plan.jobs.min(MAX_REMOTE_LOOKERS),
        None => cores.min(plan.jobs).min(8),
    }
    .max(1);
    std::thread::scope(|scope| {
        for _ in 1..lookers {
            scope.spawn(|| dispatcher.run());
        }
        dispatcher.run();
    });
    let mut items = items.into_inner().expect("items");
    let (dispatched, read_error) = (items.kept, items.failed.take());
    drop(work_tx);
    drop(done_tx);
    for w in workers.into_inner().expect("workers") {
        let _ = w.join();
    }
    let failed = emitter.join().expect("emitter panicked")?;
    if let Some(remote) = &plan.settings.remote {
        remote.finish();
    }
    if let Some(store) = &plan.settings.store {
        store.flush_journal();
    }
    if let Some(sig) = exec::interrupted() {
        return Ok(128 + sig);
    }
    if shared.stdout_closed.load(Ordering::SeqCst) {
        return Ok(128 + libc_sigpipe());
    }
    // As GNU parallel: a halted map exits with the failing job's status.
    if let Some(code) = *shared.halted_by.lock().expect("halt") {
        return Ok(code);
    }
    if let Some(e) = read_error {
        eprintln!("jl: error: cannot read the items after item {dispatched}: {e}");
        return Ok(crate::error::code_of_failures(failed + 1));
    }
    Ok(crate::error::code_of_failures(failed))
}

/// What the threads that look items up share: each takes the next item,
/// computes its key and replays a hit itself; a miss goes to a worker.
struct Dispatcher<'a, W> {
    plan: &'a Plan,
    shared: &'a Shared,
    items: &'a Mutex<Numbered>,
    exes: &'a Mutex<HashMap<OsString, Result<PathBuf, exec::SpawnError>>>,
    done_tx: &'a mpsc::Sender<Vec<Done>>,
    work_tx: &'a mpsc::SyncSender<Work>,
    /// Misses start in input order, as with GNU parallel, whichever
    /// thread looked them up first.
    order: &'a Mutex<InOrder>,
    workers: &'a Mutex<Vec<std::thread::JoinHandle<()>>>,
    start_worker: &'a W,
}

/// The jobs looked up out of order, waiting for the ones before them.
#[derive(Default)]
struct InOrder {
    /// Every job below this index has been answered or sent to a worker.
    next: u64,
    waiting: BTreeMap<u64, Option<Work>>,
}

/// What looking a job up came to (returned once, never kept: its size
/// does not matter).
#[allow(clippy::large_enum_variant)]
enum Looked {
    /// Answered here: a hit, or a job that cannot start.
    Answered(Done),
    Miss(Work),
}

impl<W: Fn(usize) -> std::thread::JoinHandle<()>> Dispatcher<'_, W> {
    fn run(&self) {
        let shared = self.shared;
        // Jobs answered here go to the emitter in batches, each one
        // handoff between threads; a batch leaves before this thread may
        // wait for anything.
        let mut answered: Vec<Done> = Vec::new();
        let hand_over = |answered: &mut Vec<Done>| {
            if !answered.is_empty() {
                let _ = self.done_tx.send(std::mem::take(answered));
            }
        };
        loop {
            if answered.len() >= DONE_BATCH {
                hand_over(&mut answered);
            }
            let next = {
                let mut items = match self.items.try_lock() {
                    Ok(items) => items,
                    Err(_) => {
                        hand_over(&mut answered);
                        self.items.lock().expect("items")
                    }
                };
                if items.items.may_wait() {
                    hand_over(&mut answered);
                }
                items.next()
            };
            let Some((index, seq, item)) = next else {
                break;
            };
            if shared.halting.load(Ordering::SeqCst) || exec::interrupted().is_some() {
                break;
            }
            {
                let mut n = shared.in_flight.lock().expect("window");
                if *n >= shared.window {
                    hand_over(&mut answered);
                }
                while *n >= shared.window {
                    n = shared.drained.wait(n).expect("window");
                }
                *n += 1;
            }
            let miss = match self.look_up(Prepared::new(self.plan, index, seq, item)) {
                Looked::Answered(done) => {
                    answered.push(done);
                    None
                }
                Looked::Miss(work) => {
                    hand_over(&mut answered);
                    Some(work)
                }
            };
            let started = self.start_in_order(index, miss, || hand_over(&mut answered));
            if !started {
                break;
            }
        }
        hand_over(&mut answered);
    }

    fn look_up(&self, job: Prepared) -> Looked {
        if job.item.contains(&0) {
            let message = "the item holds a NUL byte, which no argument can hold; use -0 to split items at NUL";
            return Looked::Answered(failed_to_start(&job, crate::error::USAGE, message.into()));
        }
        let store_root = job.settings.store.as_ref().map(Store::root);
        if let Some(why) = crate::key::misdeclared_outputs(&job.argv, &job.settings.key, store_root)
        {
            return Looked::Answered(failed_to_start(&job, crate::error::USAGE, why));
        }
        let exe = self
            .exes
            .lock()
            .expect("programs")
            .entry(job.argv[0].clone())
            .or_insert_with(|| exec::resolve(&job.argv[0]))
            .as_ref()
            .map(PathBuf::clone)
            .map_err(|e| (e.code, e.message.clone()));
        let exe = match exe {
            Ok(exe) => exe,
            Err((code, message)) => return Looked::Answered(failed_to_start(&job, code, message)),
        };
        let action = run::prepare(&job.settings, &job.argv, &exe, None);
        if let (Some(action), Some(store), false) =
            (&action, &job.settings.store, job.settings.force)
        {
            if let Ok(hit) = run::find(&job.settings, store, action) {
                let line = crate::key::shell_bytes(&job.argv);
                if job.settings.verbose {
                    run::log::cached(&String::from_utf8_lossy(&line), hit.entry.duration_ms);
                }
                let now = SystemTime::now();
                // A hit whose output went meanwhile runs after all.
                if let Some(done) = Done::hit(&job, line, hit, store, now, Duration::ZERO) {
                    return Looked::Answered(done);
                }
            }
        }
        Looked::Miss((job, exe, action))
    }

    /// Records that job `index` was looked up, and hands every miss whose
    /// turn has come to the workers, in input order. False once the
    /// workers are gone.
    fn start_in_order(&self, index: u64, miss: Option<Work>, before_wait: impl FnOnce()) -> bool {
        let mut order = match self.order.try_lock() {
            Ok(order) => order,
            Err(_) => {
                before_wait();
                self.order.lock().expect("order")
            }
        };
        order.waiting.insert(index, miss);
        loop {
            let next = order.next;
            let Some(miss) = order.waiting.remove(&next) else {
                return true;
            };
            order.next += 1;
            let Some(work) = miss else { continue };
            {
                let mut workers = self.workers.lock().expect("workers");
                if workers.len() < self.plan.jobs {
                    let slot = workers.len() + 1;
                    workers.push((self.start_worker)(slot));
                }
            }
            // Under the lock, so no other miss can overtake this one.
            if self.work_tx.send(work).is_err() {
                return false;
            }
        }
    }
}

/// SIGPIPE's number, for the shell's 128 + N when stdout closed.
fn libc_sigpipe() -> i32 {
    rustix::process::Signal::PIPE.as_raw()
}

impl Done {
    /// What every outcome of `job` shares; the rest says nothing ran.
    fn of(job: &Prepared, line: Vec<u8>) -> Done {
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
    /// are kept as bytes; larger ones are pinned (`Store::pin`) and read
    /// again when printed. `None` when an output is gone already.
    fn hit(
        job: &Prepared,
        line: Vec<u8>,
        hit: run::Hit,
        store: &Store,
        started: SystemTime,
        runtime: Duration,
    ) -> Option<Done> {
        let keep = |verified: Verified, blob: Blob| match verified {
            Verified::Bytes(bytes) if bytes.len() <= KEPT_OUTPUT => Some(Captured::Bytes(bytes)),
            Verified::Bytes(_) => store.pin(&blob).ok().map(|pin| Captured::Pinned(pin, blob)),
            Verified::File(file) | Verified::Packed(file, _) => {
                // Pinned by name, then checked to be the file verified.
                let pin = store.pin(&blob).ok()?;
                let same = |m: std::fs::Metadata| (m.dev(), m.ino());
                let pinned = std::fs::metadata(&pin).ok().map(same);
                (pinned.is_some() && pinned == file.metadata().ok().map(same))
                    .then_some(Captured::Pinned(pin, blob))
            }
        };
        Some(Done {
            code: hit.entry.exit_code,
            cached: true,
            started,
            runtime,
            stdout: keep(hit.stdout, hit.entry.stdout)?,
            stderr: keep(hit.stderr, hit.entry.stderr)?,
            ..Done::of(job, line)
        })
    }
}

/// The most threads that look items up at once with a remote cache.
const MAX_REMOTE_LOOKERS: usize = 64;

/// The most answered jobs the dispatcher hands the emitter at once.
const DONE_BATCH: usize = 64;

/// A cached output up to this size waits for its turn in memory: the
/// window of 16 × -j jobs then holds at most a few MiB.
const KEPT_OUTPUT: usize = 4096;

fn failed_to_start(job: &Prepared, code: i32, message: String) -> Done {
    Done {
        code,
        error: Some(message),
        ..Done::of(job, crate::key::shell_bytes(&job.argv))
    }
}

/// Runs one missed job on a worker, with retries.
fn work(
    plan: &Plan,
    shared: &Shared,
    job: Prepared,
    exe: &std::path::Path,
    action: Option<crate::key::Action>,
    slot: usize,
) -> Done {
    let argv = job.argv_in(plan, slot);
    let line = crate::key::shell_bytes(&argv);
    let mut attempt = 0;
    loop {
        if shared.halting.load(Ordering::SeqCst) || exec::interrupted().is_some() {
            return Done {
                skipped: true,
                ..Done::of(&job, line)
            };
        }
        if job.settings.verbose {
            run::log::calling(&String::from_utf8_lossy(&line));
        }
        let token = plan.tokens.acquire();
        let started = SystemTime::now();
        let clock = Instant::now();
        let spawn = Job {
            exe,
            argv: &argv,
            stdin: crate::exec::Stdin::Null,
            own_group: true,
            timeout: plan.timeout,
        };
        let outcome = run::perform(&job.settings, action.as_ref(), spawn, Live::Deferred);
        drop(token);
        let done = match outcome {
            Err(e) => failed_to_start(&job, e.code, e.message),
            Ok(Outcome::Hit(hit)) => {
                let store = job.settings.store.as_ref().expect("a hit has a store");
                match Done::hit(&job, line.clone(), hit, store, started, clock.elapsed()) {
                    Some(done) => done,
                    // Its output went before it was pinned: run it.
                    None => continue,
                }
            }
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
        // --retries N: N attempts in all, as GNU parallel.
        let last_attempt = attempt + 1 >= plan.retries.max(1);
        if done.code == 0 || last_attempt || exec::interrupted().is_some() {
            if done.code != 0 && exec::interrupted().is_none() {
                if let Some(halt) = plan.halt {
                    if !shared.halting.swap(true, Ordering::SeqCst) {
                        *shared.halted_by.lock().expect("halt") = Some(done.code);
                        if halt == Halt::Now {
                            halt_now();
                        }
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
/// writes the joblog. Returns the number of failed jobs, counting a job
/// whose output could not be shown as failed.
fn emit(
    plan: &Plan,
    shared: &Shared,
    done_rx: mpsc::Receiver<Vec<Done>>,
    mut joblog: Option<joblog::Writer>,
) -> anyhow::Result<u64> {
    let mut progress = Progress::new(plan.jobs, plan.quiet);
    let mut counts = Counts::default();
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let store = plan.settings.store.clone();
    loop {
        let received = done_rx.recv_timeout(Duration::from_millis(200));
        let disconnected = matches!(received, Err(mpsc::RecvTimeoutError::Disconnected));
        if counts.total.is_none() {
            counts.total = shared.total.get();
        }
        match received {
            Ok(batch) => {
                pending.extend(batch.into_iter().map(|done| (done.index, done)));
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
            let shown = if shared.stdout_closed.load(Ordering::SeqCst) {
                Ok(done.stdout.size())
            } else {
                progress.suspend(|| write_output(&done, store.as_ref()))
            };
            let lost = match shown {
                Ok(_) => None,
                Err(Shown::StdoutClosed) => {
                    // As GNU parallel: start nothing new, stop what runs.
                    if !shared.stdout_closed.swap(true, Ordering::SeqCst) {
                        shared.halting.store(true, Ordering::SeqCst);
                        halt_now();
                    }
                    None
                }
                Err(Shown::Lost(e)) => Some(e),
            };
            // A job Ctrl-C (or SIGTERM) stopped is interrupted, not failed.
            let interrupted = exec::interrupted().is_some() && done.signal.is_some();
            if interrupted {
                counts.interrupted += 1;
            } else if done.code != 0 || lost.is_some() {
                counts.failed += 1;
            }
            let closed = shared.stdout_closed.load(Ordering::SeqCst);
            if done.code != 0 && !closed && !interrupted {
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
            if let Some(e) = &lost {
                progress.println(&format!(
                    "jl: job {}: its output could not be shown ({e}): {}",
                    done.seq,
                    shown_item(&done.item)
                ));
            }
            let bytes = done.stdout.size();
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
    // The real total if the items were all read (10/20 after a Ctrl-C).
    counts.total = Some(shared.total.get().unwrap_or(counts.done).max(counts.done));
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

/// Why a job's output was not all shown.
enum Shown {
    /// jl's own stdout is closed: nobody reads any more.
    StdoutClosed,
    /// The output itself is gone or broken.
    Lost(String),
}

/// Writes one job's stdout then stderr, whole.
fn write_output(done: &Done, store: Option<&Store>) -> Result<u64, Shown> {
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let mut lost = None;
    let streams: [(&Captured, &mut dyn Write, bool); 2] = [
        (&done.stdout, &mut stdout, true),
        (&done.stderr, &mut stderr, false),
    ];
    for (captured, out, is_stdout) in streams {
        let written = match (captured, store) {
            (Captured::Blob(blob), Some(store)) if blob.size > 0 => {
                store.read_blob(blob).and_then(|v| v.write_to(out))
            }
            (Captured::Pinned(path, blob), Some(store)) => {
                store.read_pinned(path, blob).and_then(|v| v.write_to(out))
            }
            (Captured::Blob(_) | Captured::Pinned(..), _) => Ok(()),
            (Captured::Bytes(bytes), _) => out.write_all(bytes),
            (Captured::Spool(spooled), _) => spooled.write_to(out),
            (Captured::Lost, _) => Err(io::Error::other("its capture broke")),
        };
        match written {
            Err(e) if is_stdout && e.kind() == io::ErrorKind::BrokenPipe => {
                return Err(Shown::StdoutClosed);
            }
            Err(e) => lost = lost.or(Some(e.to_string())),
            Ok(()) => {}
        }
    }
    if let Err(e) = stdout.flush() {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Err(Shown::StdoutClosed);
        }
    }
    match lost {
        Some(e) => Err(Shown::Lost(e)),
        None => Ok(done.stdout.size()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
