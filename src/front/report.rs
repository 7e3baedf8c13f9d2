//! `jl report`: a run seen at a glance. A joblog of thousands of jobs
//! answers "why was this slow?" only when plotted: which jobs were slow,
//! whether the workers were busy, what the cache saved, what failed. The
//! page is one self-contained HTML file (inline SVG and CSS, a few lines of
//! plain JavaScript), readable offline and small however long the log.

use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

use crate::cli::ReportArgs;

/// One row of a joblog (`jl map --joblog`, `JL_LOG`, GNU parallel's).
#[derive(Clone, Debug)]
struct Job {
    seq: u64,
    start: f64,
    runtime: f64,
    exit: i32,
    signal: i32,
    command: String,
    cached: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Hit,
    Ran,
    Interrupted,
    Failed,
}

impl Kind {
    fn of(job: &Job) -> Kind {
        if job.cached {
            Kind::Hit
        } else if job.signal != 0 {
            Kind::Interrupted
        } else if job.exit != 0 {
            Kind::Failed
        } else {
            Kind::Ran
        }
    }

    fn class(self) -> &'static str {
        match self {
            Kind::Hit => "hit",
            Kind::Ran => "ran",
            Kind::Interrupted => "int",
            Kind::Failed => "fail",
        }
    }
}

/// The timeline's width in pixels: more bars than this per lane are
/// merged, pixel by pixel.
const WIDTH: f64 = 1000.0;
/// The slowest jobs listed.
const SLOWEST: usize = 20;

pub fn report(args: ReportArgs) -> anyhow::Result<i32> {
    let path = args
        .joblog
        .as_deref()
        .or(args.log.as_deref())
        .expect("clap requires one");
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (jobs, skipped) = parse(&String::from_utf8_lossy(&text));
    if jobs.is_empty() {
        anyhow::bail!(
            "{} holds no joblog rows (expected the columns of jl map --joblog or JL_LOG)",
            path.display()
        );
    }
    let store = crate::config::store(&args.store)
        .filter(|s| matches!(s.trust(), crate::store::Trust::Ours));
    let page = render(path, &jobs, skipped, store.as_ref());
    match &args.output {
        Some(out) => {
            std::fs::write(out, page).with_context(|| format!("cannot write {}", out.display()))?
        }
        None => io::stdout().lock().write_all(page.as_bytes())?,
    }
    Ok(0)
}

/// The rows of a joblog, and how many lines were not rows.
fn parse(text: &str) -> (Vec<Job>, usize) {
    let mut jobs = Vec::new();
    let mut skipped = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.first() == Some(&"Seq") {
            continue;
        }
        let job = (cols.len() >= 9)
            .then(|| {
                Some(Job {
                    seq: cols[0].parse().ok()?,
                    start: cols[2].parse().ok()?,
                    runtime: cols[3].parse::<f64>().ok()?.max(0.0),
                    exit: cols[6].parse().ok()?,
                    signal: cols[7].parse().ok()?,
                    command: cols[8].to_string(),
                    cached: cols.get(9) == Some(&"1"),
                })
            })
            .flatten();
        match job {
            Some(job) => jobs.push(job),
            None => skipped += 1,
        }
    }
    (jobs, skipped)
}

/// Lane of each job (in `jobs` order): a job goes to the lane that has
/// been free the longest, as a free worker would take it.
fn lanes(jobs: &[Job]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| jobs[a].start.total_cmp(&jobs[b].start));
    // (free since, lane), earliest first; f64 as ordered bits (all >= 0).
    let mut free: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut lane_of = vec![0; jobs.len()];
    let mut count = 0;
    for i in order {
        let job = &jobs[i];
        let lane = match free.peek() {
            // Within half a millisecond (the log's precision): a worker
            // takes its next job as the last one ends.
            Some(std::cmp::Reverse((end, _))) if f64::from_bits(*end) <= job.start + 0.0005 => {
                free.pop().expect("peeked").0.1
            }
            _ => {
                count += 1;
                count - 1
            }
        };
        lane_of[i] = lane;
        let end = (job.start + job.runtime).max(0.0);
        free.push(std::cmp::Reverse((end.to_bits(), lane)));
    }
    (lane_of, count)
}

/// What the page says in numbers.
struct Totals {
    jobs: usize,
    hits: usize,
    failed: usize,
    interrupted: usize,
    wall: f64,
    busy: f64,
    saved: f64,
    lanes: usize,
}

fn totals(jobs: &[Job], lanes: usize) -> Totals {
    let t0 = jobs.iter().map(|j| j.start).fold(f64::INFINITY, f64::min);
    let t1 = jobs
        .iter()
        .map(|j| j.start + j.runtime)
        .fold(f64::NEG_INFINITY, f64::max);
    // A hit saved what the same command took when it last ran in the log.
    let mut ran: HashMap<&str, f64> = HashMap::new();
    for j in jobs
        .iter()
        .filter(|j| !j.cached && j.exit == 0 && j.signal == 0)
    {
        ran.insert(&j.command, j.runtime);
    }
    let count = |k: Kind| jobs.iter().filter(|j| Kind::of(j) == k).count();
    Totals {
        jobs: jobs.len(),
        hits: count(Kind::Hit),
        failed: count(Kind::Failed),
        interrupted: count(Kind::Interrupted),
        wall: (t1 - t0).max(0.0),
        busy: jobs.iter().filter(|j| !j.cached).map(|j| j.runtime).sum(),
        saved: jobs
            .iter()
            .filter(|j| j.cached)
            .filter_map(|j| ran.get(j.command.as_str()))
            .sum(),
        lanes,
    }
}

fn render(
    source: &Path,
    jobs: &[Job],
    skipped: usize,
    store: Option<&crate::store::Store>,
) -> String {
    let (lane_of, lanes) = lanes(jobs);
    let t = totals(jobs, lanes);
    let mut page = String::with_capacity(64 * 1024);
    let title = format!("jl report: {}", source.display());
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let utilisation = if t.wall > 0.0 && t.lanes > 0 {
        100.0 * t.busy / (t.wall * t.lanes as f64)
    } else {
        0.0
    };
    let _ = writeln!(
        page,
        "<table class=\"totals\"><tr><th>jobs</th><td id=\"jobs\">{}</td><th>hits</th><td id=\"hits\">{}</td><th>misses</th><td>{}</td><th>failed</th><td>{}</td><th>interrupted</th><td>{}</td></tr>\
<tr><th>wall time</th><td>{}</td><th>time saved by the cache</th><td>{}</td><th>workers</th><td>{}</td><th>utilisation</th><td>{utilisation:.0}%</td><th></th><td></td></tr></table>",
        t.jobs,
        t.hits,
        t.jobs - t.hits,
        t.failed,
        t.interrupted,
        seconds(t.wall),
        seconds(t.saved),
        t.lanes,
    );
    if skipped > 0 {
        let _ = writeln!(
            page,
            "<p class=\"note\">{skipped} lines of the log were not joblog rows and are left out.</p>"
        );
    }
    timeline(&mut page, jobs, &lane_of, lanes);
    slowest(&mut page, jobs);
    histogram(&mut page, jobs);
    if let Some(store) = store {
        store_section(&mut page, store);
    }
    page.push_str(SCRIPT);
    page.push_str("</body></html>\n");
    page
}

fn timeline(page: &mut String, jobs: &[Job], lane_of: &[usize], lanes: usize) {
    let t0 = jobs.iter().map(|j| j.start).fold(f64::INFINITY, f64::min);
    let t1 = jobs
        .iter()
        .map(|j| j.start + j.runtime)
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (t1 - t0).max(1e-3);
    let lane_h = (600.0 / lanes as f64).clamp(2.0, 16.0);
    let left = 40.0;
    let height = lane_h * lanes as f64 + 30.0;
    let _ = write!(
        page,
        "<h2>Timeline</h2>\n<p class=\"legend\"><span class=\"key hit\"></span>cache hit <span class=\"key ran\"></span>ran <span class=\"key fail\"></span>failed <span class=\"key int\"></span>interrupted</p>\n\
<svg id=\"timeline\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"one lane per worker, one bar per job\">\n",
        WIDTH + left + 10.0
    );
    for lane in 0..lanes {
        let y = lane as f64 * lane_h;
        let _ = writeln!(
            page,
            "<rect class=\"lane\" x=\"{left}\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{lane_h:.1}\"/>"
        );
        if lanes <= 40 {
            let _ = writeln!(
                page,
                "<text class=\"label\" x=\"{}\" y=\"{:.1}\">{}</text>",
                left - 4.0,
                y + lane_h * 0.75,
                lane + 1
            );
        }
    }
    let x = |t: f64| left + (t - t0) / span * WIDTH;
    if jobs.len() as f64 <= WIDTH * 4.0 {
        // One bar per job, with its details on hover.
        for (job, &lane) in jobs.iter().zip(lane_of) {
            let kind = Kind::of(job);
            let w = (job.runtime / span * WIDTH).max(1.0);
            let _ = writeln!(
                page,
                "<rect class=\"bar {}\" x=\"{:.2}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\"><title>#{} {} ({}, {})</title></rect>",
                kind.class(),
                x(job.start),
                lane as f64 * lane_h + 1.0,
                (lane_h - 2.0).max(1.0),
                job.seq,
                escape(&job.command),
                seconds(job.runtime),
                describe(job)
            );
        }
    } else {
        // Too many to draw one by one: each pixel of a lane shows the
        // worst of the jobs in it, runs of one kind merged into one bar.
        let mut cells: Vec<Vec<Option<Kind>>> = vec![vec![None; WIDTH as usize]; lanes];
        for (job, &lane) in jobs.iter().zip(lane_of) {
            let from = ((job.start - t0) / span * WIDTH) as usize;
            let to = (((job.start + job.runtime - t0) / span * WIDTH) as usize).max(from);
            for cell in &mut cells[lane][from.min(WIDTH as usize - 1)..=to.min(WIDTH as usize - 1)]
            {
                *cell = (*cell).max(Some(Kind::of(job)));
            }
        }
        for (lane, row) in cells.iter().enumerate() {
            let mut px = 0;
            while px < row.len() {
                let Some(kind) = row[px] else {
                    px += 1;
                    continue;
                };
                let run = row[px..].iter().take_while(|c| **c == Some(kind)).count();
                let _ = writeln!(
                    page,
                    "<rect class=\"bar {}\" x=\"{:.0}\" y=\"{:.1}\" width=\"{run}\" height=\"{:.1}\"/>",
                    kind.class(),
                    left + px as f64,
                    lane as f64 * lane_h + 1.0,
                    (lane_h - 2.0).max(1.0)
                );
                px += run;
            }
        }
        let _ = writeln!(
            page,
            "<text class=\"label\" x=\"{left}\" y=\"{:.1}\">{} jobs: each bar is every job of its lane within its pixels</text>",
            height - 18.0,
            jobs.len()
        );
    }
    let _ = writeln!(
        page,
        "<text class=\"label start\" x=\"{left}\" y=\"{:.1}\">0 s</text><text class=\"label\" x=\"{}\" y=\"{:.1}\">{}</text>\n</svg>",
        height - 4.0,
        left + WIDTH,
        height - 4.0,
        seconds(span)
    );
}

fn slowest(page: &mut String, jobs: &[Job]) {
    let mut by_time: Vec<&Job> = jobs.iter().collect();
    by_time.sort_by(|a, b| b.runtime.total_cmp(&a.runtime));
    page.push_str("<h2>Slowest jobs</h2>\n<table id=\"slowest\"><tr><th>#</th><th>time</th><th>result</th><th>command</th></tr>\n");
    for job in by_time.iter().take(SLOWEST) {
        let _ = writeln!(
            page,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            Kind::of(job).class(),
            job.seq,
            seconds(job.runtime),
            describe(job),
            escape(&job.command)
        );
    }
    page.push_str("</table>\n");
}

/// Durations of the jobs that ran, in buckets spaced by powers of two.
fn histogram(page: &mut String, jobs: &[Job]) {
    let ran: Vec<f64> = jobs
        .iter()
        .filter(|j| !j.cached)
        .map(|j| j.runtime.max(0.001))
        .collect();
    page.push_str("<h2>How long jobs ran</h2>\n");
    if ran.is_empty() {
        page.push_str("<p>Every job was a cache hit.</p>\n");
        return;
    }
    let bucket = |t: f64| (t.log2().floor() as i32).clamp(-10, 20);
    let lo = ran.iter().map(|&t| bucket(t)).min().expect("not empty");
    let hi = ran.iter().map(|&t| bucket(t)).max().expect("not empty");
    let mut counts = vec![0usize; (hi - lo + 1) as usize];
    for &t in &ran {
        counts[(bucket(t) - lo) as usize] += 1;
    }
    let most = *counts.iter().max().expect("not empty") as f64;
    let bar_w = 48.0;
    let _ = writeln!(
        page,
        "<svg id=\"histogram\" width=\"{}\" height=\"170\" role=\"img\" aria-label=\"jobs by duration\">",
        counts.len() as f64 * bar_w + 20.0
    );
    for (i, &n) in counts.iter().enumerate() {
        let h = 120.0 * n as f64 / most;
        let x = 10.0 + i as f64 * bar_w;
        let from = 2f64.powi(lo + i as i32);
        let _ = writeln!(
            page,
            "<rect class=\"hist\" x=\"{x:.0}\" y=\"{:.1}\" width=\"{}\" height=\"{h:.1}\"><title>{n} jobs of {} to {}</title></rect>\
<text class=\"label start\" x=\"{x:.0}\" y=\"{:.1}\">{n}</text><text class=\"label start\" x=\"{x:.0}\" y=\"160\">≥{}</text>",
            130.0 - h,
            bar_w - 4.0,
            seconds(from),
            seconds(from * 2.0),
            (125.0 - h).max(10.0),
            seconds(from)
        );
    }
    page.push_str("</svg>\n");
}

/// The store's numbers, and its hit rate by day (or by hour, for a short
/// history) from the journal.
fn store_section(page: &mut String, store: &crate::store::Store) {
    let counts = crate::store::journal::read(store);
    let size = super::manage::Size::of(store);
    let lookups = counts.total_hits + counts.misses;
    let rate = if lookups == 0 {
        0.0
    } else {
        100.0 * counts.total_hits as f64 / lookups as f64
    };
    let _ = writeln!(
        page,
        "<h2>The store</h2>\n<table class=\"totals\"><tr><th>store</th><td>{}</td><th>entries</th><td>{}</td><th>size</th><td>{}</td><th>hit rate</th><td>{rate:.1}%</td></tr></table>",
        escape(&store.root().display().to_string()),
        size.entries,
        bytesize::ByteSize(size.bytes)
    );
    let hours = &counts.hours;
    let (Some(t0), Some(t1)) = (hours.keys().next(), hours.keys().next_back()) else {
        return;
    };
    // Hours, or days for a history of more than three days.
    let per: u64 = if t1 - t0 > 3 * 24 { 24 } else { 1 };
    let step = per * 3_600_000;
    let mut buckets: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    for (hour, (hits, misses)) in hours {
        let b = buckets.entry(hour / per).or_default();
        b.0 += hits;
        b.1 += misses;
    }
    let _ = writeln!(
        page,
        "<p>Hit rate by {}:</p><svg id=\"hitrate\" width=\"{}\" height=\"140\" role=\"img\" aria-label=\"hit rate over time\">",
        if step == 3_600_000 { "hour" } else { "day" },
        buckets.len() as f64 * 24.0 + 20.0
    );
    for (i, (when, (hits, misses))) in buckets.iter().enumerate() {
        let share = *hits as f64 / (hits + misses).max(1) as f64;
        let h = 120.0 * share;
        let label = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(when * step),
        );
        let _ = writeln!(
            page,
            "<rect class=\"hist\" x=\"{}\" y=\"{:.1}\" width=\"20\" height=\"{h:.1}\"><title>{label}: {hits} hits, {misses} misses</title></rect>",
            10 + i * 24,
            125.0 - h
        );
    }
    page.push_str("</svg>\n");
}

fn describe(job: &Job) -> String {
    match Kind::of(job) {
        Kind::Hit => "cache hit".into(),
        Kind::Ran => "ran".into(),
        Kind::Failed => format!("exit {}", job.exit),
        Kind::Interrupted => format!("signal {}", job.signal),
    }
}

fn seconds(t: f64) -> String {
    if t >= 3600.0 {
        format!("{:.1} h", t / 3600.0)
    } else if t >= 60.0 {
        format!("{:.1} min", t / 60.0)
    } else if t >= 1.0 {
        format!("{t:.2} s")
    } else {
        format!("{:.0} ms", t * 1000.0)
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:18px}h2{font-size:15px;margin-top:28px}\
table{border-collapse:collapse}td,th{padding:3px 8px;text-align:left;border-bottom:1px solid #eee}\
.totals th{color:#666;font-weight:normal}\
code{font-size:12px}.note{color:#a60}\
.lane{fill:#f6f6f6}.label{font-size:10px;fill:#666;text-anchor:end}.label.start{text-anchor:start}\
.bar.hit,.key.hit{fill:#6baed6;background:#6baed6}.bar.ran,.key.ran{fill:#31a354;background:#31a354}\
.bar.fail,.key.fail{fill:#de2d26;background:#de2d26}.bar.int,.key.int{fill:#fd8d3c;background:#fd8d3c}\
.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}\
.hist{fill:#756bb1}tr.fail td{color:#de2d26}";

/// Counts what was drawn, for a reader (or a test) to check.
const SCRIPT: &str = "<script>\ndocument.addEventListener('DOMContentLoaded', function () {\n  var bars = document.querySelectorAll('#timeline rect.bar').length;\n  document.body.setAttribute('data-bars', String(bars));\n  document.body.setAttribute('data-lanes', String(document.querySelectorAll('#timeline rect.lane').length));\n});\n</script>\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn job(seq: u64, start: f64, runtime: f64) -> Job {
        Job {
            seq,
            start,
            runtime,
            exit: 0,
            signal: 0,
            command: format!("cmd {seq}"),
            cached: false,
        }
    }

    #[test]
    fn overlapping_jobs_take_separate_lanes_and_free_lanes_are_reused() {
        let jobs = [
            job(1, 0.0, 2.0),
            job(2, 0.5, 1.0),
            job(3, 1.5, 1.0),
            job(4, 2.0, 1.0),
        ];
        let (lane_of, lanes) = lanes(&jobs);
        assert_eq!(lanes, 2);
        assert_ne!(lane_of[0], lane_of[1]);
        assert_eq!(lane_of[2], lane_of[1], "job 2 ended at 1.5");
        assert_eq!(lane_of[3], lane_of[0], "job 1 ended at 2.0");
    }

    #[test]
    fn rows_of_jl_and_gnu_parallel_parse_and_other_lines_are_counted() {
        let text = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tCached\n\
1\t:\t100.0\t2.5\t0\t3\t0\t0\techo a\t0\n\
2\t:\t101.0\t0.0\t0\t3\t0\t0\techo a\t1\n\
3\t:\t101.0\t1.0\t0\t0\t1\t0\tfalse\n\
garbage\n";
        let (jobs, skipped) = parse(text);
        assert_eq!((jobs.len(), skipped), (3, 1));
        assert!(jobs[1].cached && !jobs[2].cached);
        let t = totals(&jobs, 1);
        assert_eq!((t.hits, t.failed), (1, 1));
        assert_eq!(t.saved, 2.5, "the hit saved what echo a took");
    }
}
