//! The one place that reports a map's progress on stderr.
//!
//! On a terminal: an indicatif bar (a spinner until the number of items is
//! known). Elsewhere: joblib-style lines at growing intervals, so a log
//! file gets a few lines, not thousands, plus a final summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts shown by the progress display.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub done: u64,
    pub cached: u64,
    pub failed: u64,
    /// Stopped by Ctrl-C or SIGTERM: neither done well nor failed.
    pub interrupted: u64,
    /// Known once all items have been read.
    pub total: Option<u64>,
}

impl Counts {
    /// `cached 80 | failed 0`, and how many were interrupted if any.
    fn message(&self) -> String {
        let mut text = format!("cached {} | failed {}", self.cached, self.failed);
        if self.interrupted > 0 {
            text.push_str(&format!(" | interrupted {}", self.interrupted));
        }
        text
    }
}

pub struct Progress {
    prefix: String,
    start: Instant,
    mode: Mode,
}

enum Mode {
    Quiet,
    Bar(ProgressBar),
    Lines { next: Duration },
}

impl Progress {
    /// Chooses the display: nothing with `quiet`, a bar on a terminal,
    /// log lines otherwise.
    pub fn new(jobs: usize, quiet: bool) -> Progress {
        let prefix = format!("[jl map -j{jobs}]");
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(spinner_style());
            bar.enable_steady_tick(Duration::from_millis(100));
            Mode::Bar(bar)
        } else {
            Mode::Lines {
                next: Duration::from_secs(1),
            }
        };
        Progress {
            prefix,
            start: Instant::now(),
            mode,
        }
    }

    /// Updates the display with new counts.
    pub fn update(&mut self, c: Counts) {
        let elapsed = self.start.elapsed();
        match &mut self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                if let Some(total) = c.total {
                    if bar.length() != Some(total) {
                        bar.set_length(total);
                        bar.set_style(bar_style());
                    }
                }
                bar.set_position(c.done);
                bar.set_message(c.message());
            }
            Mode::Lines { next } => {
                if elapsed >= *next {
                    eprintln!("{}", line(&self.prefix, c, elapsed));
                    *next = (*next * 2).min(elapsed + Duration::from_secs(60));
                }
            }
        }
    }

    /// Prints a line above the bar (or just a line), e.g. a failure.
    pub fn println(&self, text: &str) {
        match &self.mode {
            Mode::Bar(bar) => bar.suspend(|| eprintln!("{text}")),
            _ => eprintln!("{text}"),
        }
    }

    /// Runs `f` with the bar hidden (for writing job output).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.mode {
            Mode::Bar(bar) => bar.suspend(f),
            _ => f(),
        }
    }

    /// Clears the bar and prints the summary line.
    pub fn finish(&mut self, c: Counts) {
        let elapsed = self.start.elapsed();
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                bar.finish_and_clear();
                eprintln!("{}", line(&self.prefix, c, elapsed));
            }
            Mode::Lines { .. } => eprintln!("{}", line(&self.prefix, c, elapsed)),
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] Done {pos} | {msg} | {rate}")
        .expect("valid template")
        .with_key("rate", rate)
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "[{elapsed_precise}] {wide_bar} {pos}/{len} | {msg} | {rate} | eta {eta}",
    )
    .expect("valid template")
    .with_key("rate", rate)
}

/// Jobs per second as a person reads it: `6.9/s`, `1234/s`.
fn rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let per_sec = state.per_sec();
    let _ = if per_sec < 100.0 {
        write!(w, "{per_sec:.1}/s")
    } else {
        write!(w, "{per_sec:.0}/s")
    };
}

/// `[jl map -j8] Done 120/5000 | cached 80 | failed 0 | elapsed 3.1s | eta 2m01s`
pub fn line(prefix: &str, c: Counts, elapsed: Duration) -> String {
    let total = c.total.map_or("?".to_string(), |t| t.to_string());
    let eta = match c.total {
        Some(total) if c.done > 0 && total >= c.done => {
            let left = elapsed.as_secs_f64() / c.done as f64 * (total - c.done) as f64;
            clock(Duration::from_secs_f64(left))
        }
        _ => "?".to_string(),
    };
    format!(
        "{prefix} Done {}/{total} | {} | elapsed {:.1}s | eta {eta}",
        c.done,
        c.message(),
        elapsed.as_secs_f64()
    )
}

/// Short human durations: 45s, 2m01s, 1h05m.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_joblib() {
        let c = Counts {
            done: 120,
            cached: 80,
            failed: 0,
            interrupted: 0,
            total: Some(5000),
        };
        let text = line("[jl map -j8]", c, Duration::from_millis(3100));
        assert!(text.starts_with(
            "[jl map -j8] Done 120/5000 | cached 80 | failed 0 | elapsed 3.1s | eta "
        ));
        assert_eq!(clock(Duration::from_secs(121)), "2m01s");
    }
}
