//! The clap definition: the shape of the command line and its help text.
//! Nothing here touches the disk; `config` turns these into checked values.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Cache and parallelize any shell command, like joblib's Memory and Parallel";

const LONG_ABOUT: &str = "\
jl gives any shell command transparent disk caching: the first run executes \
the command and stores its stdout, stderr, exit code and declared output \
files under a key made of the command line, the executable and the content \
of its input files; every later identical run replays the stored result in \
milliseconds without running anything. `jl map` runs a command over many \
files in parallel, every job cached, so re-running a map only does what is \
left.";

const EXAMPLES: &str = "\
Examples:
  jl run -- sha256sum big.iso           second run replays instantly
  jl run -o thumb.png -- convert a.jpg -resize 64x64 thumb.png
  find pics -name '*.jpg' | jl map -j8 -- identify -verbose
  jl stats                              what the cache holds and saved
  jl explain -- sha256sum big.iso       why was this not a hit?";

#[derive(Debug, Parser)]
#[command(
    name = "jl",
    version = crate::VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    subcommand_required = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command through the cache: replay it if it ran before
    ///
    /// jl run computes a key from the command line, the executable's
    /// content, the content of every input (arguments that name files or
    /// directories, -i paths), stdin, --env variables and the salt. If an
    /// entry is stored under that key, its stdout, stderr and exit status
    /// are replayed and its declared outputs (-o) restored exactly, and the
    /// command does not run. Otherwise the command runs with its output
    /// streaming through, and a successful run is stored. The cache never
    /// makes a command fail: store trouble is one warning and an uncached
    /// run. With --trace, jl finds the inputs and outputs itself by
    /// watching the command's file system calls.
    Run(RunArgs),
    /// Run a command over many items in parallel, every job cached
    ///
    /// jl map reads items from stdin (one per line, or NUL-separated with
    /// -0, or from a file with -a) and runs the command once per item with
    /// GNU parallel's placeholders substituted, up to -j jobs at once. Each
    /// job is exactly a jl run action: hits are replayed without starting
    /// anything, so running the same map again only does what is left.
    /// Output is printed whole per job, in input order unless --unordered;
    /// progress goes to stderr.
    Map(MapArgs),
    /// List cached entries
    Ls(LsArgs),
    /// Show one entry in full
    Show(ShowArgs),
    /// Show what the store holds and what it saved
    Stats(StatsArgs),
    /// Print an action's key and every component that went into it
    Explain(ExplainArgs),
    /// Evict entries (least recently used first) and unreferenced blobs
    Gc(GcArgs),
    /// Remove entries
    Rm(RmArgs),
    /// Remove everything in the store
    Clear(StoreArgs),
    /// Re-hash every blob and parse every entry
    Verify(VerifyArgs),
    /// Draw a run's timeline, cache hits and slowest jobs as an HTML page
    ///
    /// jl report reads a joblog (jl map --joblog, or GNU parallel's) or a
    /// JL_LOG file (rows of many jl processes) and writes one self-contained
    /// HTML page: a timeline with one lane per worker and one bar per job,
    /// coloured by cache hit, ran, failed or interrupted; the totals (jobs,
    /// hits, failures, wall time, the time the cache saved, how busy the
    /// workers were); the 20 slowest jobs; how long jobs ran; and the
    /// store's hit rate over time.
    Report(ReportArgs),
    /// Write completions and man pages (for packaging and CI)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store directory [default: the user cache dir, e.g. ~/.cache/jl]
    #[arg(long, env = "JL_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// What goes into the key and how results are kept: shared by run, map
/// and explain.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// An input file or directory (hashed by content; repeatable)
    #[arg(short, long = "input", value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// An output file or directory: stored after a miss, restored on a hit
    #[arg(short, long = "output", value_name = "PATH")]
    pub output: Vec<PathBuf>,
    /// Include this environment variable's value in the key (repeatable)
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<OsString>,
    /// Do not treat arguments that name existing files as inputs
    #[arg(long)]
    pub no_auto_inputs: bool,
    /// Include the working directory in the key
    #[arg(long)]
    pub cwd: bool,
    /// Extra text to mix into the key (e.g. a version of your own)
    #[arg(long, value_name = "STRING")]
    pub salt: Option<OsString>,
    /// Leave arguments matching this glob out of the key (repeatable),
    /// e.g. --ignore-arg '--threads=*'
    #[arg(long, value_name = "GLOB", value_parser = parse_glob, allow_hyphen_values = true)]
    pub ignore_arg: Vec<glob::Pattern>,
    /// Find inputs and outputs by watching the command's file system calls
    /// (ptrace): nothing needs declaring
    #[arg(long)]
    pub trace: bool,
    /// With --trace, also capture and restore files written under DIR
    /// (the working directory always is; repeatable)
    #[arg(long, value_name = "DIR", requires = "trace")]
    pub trace_outputs: Vec<PathBuf>,
    /// With --trace, do not record accesses under PREFIX (repeatable;
    /// /proc, /sys, /dev and the store always are ignored)
    #[arg(long, value_name = "PREFIX", requires = "trace")]
    pub trace_ignore: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// How cached results are used: shared by run and map.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// Cache non-zero exits too (by default only exit 0 is cached)
    #[arg(long)]
    pub cache_failures: bool,
    /// Run even on a hit, and replace the entry
    #[arg(long)]
    pub force: bool,
    /// Say on stderr what ran, what was cached and why
    #[arg(short, long)]
    pub verbose: bool,
    /// Append a joblog row for every run to FILE (shared by concurrent jl)
    #[arg(long, env = "JL_LOG", value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// A remote cache shared with other machines: http(s)://host:port/prefix,
    /// s3://bucket/prefix, azblob://container/prefix or redis://host:port/db
    #[arg(long, env = "JL_REMOTE", value_name = "URL", value_parser = RemoteUrl)]
    pub remote: Option<String>,
    /// Use the remote cache for hits only; never upload
    #[arg(long)]
    pub remote_read_only: bool,
    /// Give up on the remote after this long without an answer
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub remote_timeout: Duration,
    /// Compress new blobs with zstd at LEVEL (0: off; 1, the default, is
    /// fast; up to 19). Blobs stay raw where that does not pay
    #[arg(long, env = "JL_COMPRESS", value_name = "LEVEL", default_value_t = crate::store::packed::DEFAULT_LEVEL,
          value_parser = clap::value_parser!(i32).range(0..=crate::store::packed::MAX_LEVEL as i64))]
    pub compress: i32,
}

#[derive(Debug, Args)]
#[command(after_help = RUN_AFTER_HELP)]
pub struct RunArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Give the command /dev/null as stdin (stdin is not read or hashed)
    #[arg(short = 'n', long)]
    pub no_stdin: bool,
    /// Past --ttl by at most DURATION, replay the entry at once and
    /// refresh it in the background
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "ttl")]
    pub stale: Option<Duration>,
    /// Refresh the entry in the background; print nothing, exit 0
    #[arg(long, conflicts_with = "stale")]
    pub warm: bool,
    /// The command and its arguments (`--` before it is optional)
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD", value_hint = clap::ValueHint::CommandWithArguments)]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Halt {
    /// Kill running jobs at the first failure
    Now,
    /// Start nothing new at the first failure, let running jobs finish
    Soon,
}

/// Examples and the exit status of `jl run` (`--help`; the man page takes
/// its EXIT STATUS section from the part after `Exit status:`).
pub const RUN_AFTER_HELP: &str = "\
Examples:
  jl run -- sha256sum big.iso
  jl run -i src/ -o out.bin -- ./build.sh
  curl -s https://example.org/data.csv | jl run --ttl 1h -- python3 summarize.py
  jl run --env LANG -- sort words.txt
  jl run --trace -- gcc -O2 -c foo.c     # inputs and foo.o found by tracing

Exit status:
  the command's own status, replayed or not; 128+N when it was killed by
  signal N; 127 when it is not found, 126 when it cannot be executed; 2 for
  jl's own usage errors.";

/// Placeholders, examples and the exit status of `jl map`.
pub const MAP_AFTER_HELP: &str = "\
Placeholders: {} item, {.} without extension, {/} basename, {//} dirname,
{/.} basename without extension, {#} line number, {%} worker slot.
Without a placeholder the item is appended as the last argument.

Examples:
  find pics -name '*.jpg' | jl map -j8 -- identify
  find . -name '*.wav' -print0 | jl map -0 -o '{.}.flac' -- flac -s -o {.}.flac {}
  jl map -a list.txt --joblog jobs.tsv -- ./extract.sh {} {/.}.json
  find src -name '*.c' | jl map --trace -- gcc -c {} -o {.}.o

Exit status:
  0 when every job succeeded; else the number of failed jobs, capped at 101
  (a job whose output could not be shown counts as failed); with --halt,
  the status of the job that failed first; 127 (126) when the command is
  not found (cannot be executed); 2 for usage errors; 130 or 143 after
  SIGINT or SIGTERM; 141 when its stdout closed.";

#[derive(Debug, Args)]
#[command(after_help = MAP_AFTER_HELP)]
pub struct MapArgs {
    /// Parallel jobs: a number, or a percentage of CPUs like 50% [default: CPUs]
    #[arg(short, long, value_name = "N", help_heading = "Map options")]
    pub jobs: Option<String>,
    /// Items are separated by NUL, not newline
    #[arg(short = '0', long, help_heading = "Map options")]
    pub null: bool,
    /// Read items from FILE instead of stdin
    #[arg(short = 'a', long, value_name = "FILE", help_heading = "Map options")]
    pub arg_file: Option<PathBuf>,
    /// Print output as jobs finish, not in input order
    #[arg(long, help_heading = "Map options")]
    pub unordered: bool,
    /// Run without the store (nothing is read or written)
    #[arg(long, help_heading = "Map options")]
    pub no_cache: bool,
    /// Silence progress
    #[arg(short, long, help_heading = "Map options")]
    pub quiet: bool,
    /// Write a GNU parallel style joblog (plus a Cached column) to FILE
    #[arg(long, value_name = "FILE", help_heading = "Map options")]
    pub joblog: Option<PathBuf>,
    /// Stop at the first failure; the map exits with that job's status
    #[arg(long, value_enum, value_name = "WHEN", help_heading = "Map options")]
    pub halt: Option<Halt>,
    /// Run a failing job up to N times in all (as GNU parallel's --retries)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Map options"
    )]
    pub retries: u32,
    /// Kill a job that runs longer than this (e.g. 30s, 5m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Map options")]
    pub timeout: Option<Duration>,
    /// Print each command and whether it is cached; run nothing
    #[arg(long, help_heading = "Map options")]
    pub dry_run: bool,
    /// Take only items whose 0-based position mod N is I (I/N), or let a
    /// job array's variables say (auto: Slurm, SGE, LSF, PBS, Kubernetes,
    /// HyperQueue, AWS Batch)
    #[arg(long, value_name = "I/N|auto", help_heading = "Map options")]
    pub shard: Option<String>,
    #[command(flatten, next_help_heading = "Key options (as jl run)")]
    pub key: KeyArgs,
    #[command(flatten, next_help_heading = "Cache options (as jl run)")]
    pub cache: CacheArgs,
    /// The command template and its arguments (`--` before it is optional)
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD", value_hint = clap::ValueHint::CommandWithArguments)]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// Most recently used first
    Used,
    /// Newest first
    Created,
    /// Largest first
    Size,
    /// Longest run time first
    Duration,
    /// Most hits first
    Hits,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only entries whose command line contains this text
    pub filter: Option<String>,
    /// Sort order
    #[arg(long, value_enum, default_value = "used")]
    pub sort: SortBy,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A key, or any unique prefix of one
    pub key: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  jl map -j4 --joblog run.log -- ./extract.sh < files.txt
  jl report --joblog run.log -o report.html
  JL_LOG=all.log make -j8 && jl report --log all.log -o build.html")]
pub struct ReportArgs {
    /// A joblog of jl map --joblog (or GNU parallel's --joblog)
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "log",
        conflicts_with = "log"
    )]
    pub joblog: Option<PathBuf>,
    /// A log of JL_LOG / --log (rows of every jl process that wrote it)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Write the page to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// As `jl run` takes them: `--ttl` and `--cache-failures` change what
    /// is a hit.
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Leave stdin out (as `jl run -n` would)
    #[arg(short = 'n', long)]
    pub no_stdin: bool,
    #[arg(long)]
    pub json: bool,
    /// The command and its arguments (`--` before it is optional)
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Evict least recently used entries until the store is this small (e.g. 5GiB)
    #[arg(long, value_name = "SIZE", env = "JL_MAX_SIZE", value_parser = parse_size)]
    pub max_size: Option<bytesize::ByteSize>,
    /// Evict entries not used for this long (e.g. 30d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    /// Say what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keys or unique key prefixes
    #[arg(required = true)]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Remove corrupt entries and blobs so they become misses
    #[arg(long)]
    pub repair: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The repository root to write completions/ and man/ into
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Prints clap's error (or help), with a hint for two common slips: a
/// misspelt subcommand, and run or map options given before it.
/// `jl run ARGS` parsed by the `run` subcommand's parser alone: building
/// the parser of every subcommand costs about as much as a hit's lookup,
/// and a hit is the hot path. Whatever this parser refuses (`--help`, a
/// mistake) goes through the whole parser, which says it as usual.
pub fn run_args_alone() -> Option<RunArgs> {
    run_args_from(std::env::args_os().skip(1))
}

fn run_args_from(mut words: impl Iterator<Item = OsString>) -> Option<RunArgs> {
    use clap::{Args, FromArgMatches};
    if words.next()? != "run" {
        return None;
    }
    let parser = RunArgs::augment_args(clap::Command::new("run").no_binary_name(true));
    let matches = parser.try_get_matches_from(words).ok()?;
    RunArgs::from_arg_matches(&matches).ok()
}

pub fn usage_error(e: clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let _ = e.print();
    if !e.use_stderr() {
        return 0; // --help, --version
    }
    let words: Vec<String> = std::env::args().skip(1).collect();
    let subcommands: Vec<String> = <Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    let given = match e.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    match (e.kind(), given) {
        (ErrorKind::InvalidSubcommand, Some(given)) => {
            let near: Vec<&String> = subcommands
                .iter()
                .filter(|s| edit_distance(s, &given) <= 1 || s.starts_with(&given))
                .collect();
            if !near.is_empty() {
                let names: Vec<String> = near.iter().map(|s| format!("'{s}'")).collect();
                eprintln!("hint: did you mean {}?", names.join(" or "));
            }
        }
        (ErrorKind::UnknownArgument, _) => {
            if let Some(sub) = words.iter().find(|w| subcommands.contains(w)) {
                eprintln!("hint: options of jl {sub} go after it: jl {sub} [OPTIONS] -- CMD");
            }
        }
        _ => {}
    }
    crate::error::USAGE
}

/// The Levenshtein distance of two short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Durations as users write them: 90s, 1h, 7d, 1h30m.
fn parse_size(text: &str) -> Result<bytesize::ByteSize, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not a size (try 500MB, 10GiB)"))
}

/// Checks `--remote` without echoing it: clap would quote a rejected
/// value whole, credentials and all.
#[derive(Clone)]
struct RemoteUrl;

impl clap::builder::TypedValueParser for RemoteUrl {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        use clap::error::ErrorKind;
        let url = value.to_str().ok_or_else(|| {
            clap::Error::raw(ErrorKind::InvalidUtf8, "--remote: the URL is not UTF-8\n")
        })?;
        if !url.is_empty() {
            crate::store::remote::Remote::new(url, None, false, Duration::from_secs(1), None)
                .map_err(|e| clap::Error::raw(ErrorKind::ValueValidation, format!("{e}\n")))?;
        }
        Ok(url.to_string())
    }
}

fn parse_glob(text: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(text).map_err(|e| format!("not a glob pattern: {e}"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (try 90s, 15m, 1h, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn run_alone_parses_as_the_whole_parser_or_leaves_it_to_it() {
        let lines = [
            "run -- echo hi",
            "run echo hi",
            "run -v -i in.txt -o out.txt --env LANG --salt 2 -- sh -c 'x' sh",
            "run --ttl 1h --stale 5m -n -- date",
            "run --trace --trace-ignore /tmp -- make -j2",
            "run --no-such-option -- true",
            "run --help",
            "run",
            "map -- true",
            "run --stale 5m -- true",
        ];
        for line in lines {
            let words: Vec<OsString> = shlex::split(line)
                .unwrap()
                .into_iter()
                .map(Into::into)
                .collect();
            let alone = run_args_from(words.clone().into_iter()).map(|a| format!("{a:?}"));
            let whole = Cli::try_parse_from(std::iter::once(OsString::from("jl")).chain(words));
            match (alone, whole) {
                (
                    Some(alone),
                    Ok(Cli {
                        command: Command::Run(args),
                    }),
                ) => {
                    assert_eq!(alone, format!("{args:?}"), "{line}")
                }
                (Some(alone), whole) => panic!("{line}: alone {alone}, whole {whole:?}"),
                // Refused alone: the whole parser decides, whatever it says.
                (None, _) => {}
            }
        }
        assert!(run_args_from(["run", "--", "true"].map(OsString::from).into_iter()).is_some());
        assert!(run_args_from(["run", "--help"].map(OsString::from).into_iter()).is_none());
    }
}
