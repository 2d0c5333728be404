//! Progress of a long command (replay, simulate, migrate): a bar with counts, rate and ETA
//! when a person watches stderr on a terminal, and plain periodic lines when it goes to a log
//! or a pipe, where a redrawn bar would be noise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a line is printed when stderr is not a terminal, unless told.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// The progress of `done` out of `total` (when known) `unit`s.
#[derive(Debug)]
pub struct Progress {
    label: String,
    unit: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
    line_every: Duration,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar on a terminal, lines otherwise.
    pub fn new(label: &str, unit: &'static str, total: Option<u64>) -> Self {
        Self::with_terminal(label, unit, total, std::io::stderr().is_terminal())
    }

    /// As [`Progress::new`], with the choice made by the caller (tests).
    pub fn with_terminal(
        label: &str,
        unit: &'static str,
        total: Option<u64>,
        terminal: bool,
    ) -> Self {
        let bar = terminal.then(|| {
            let bar = match total {
                Some(total) => {
                    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                }
                None => ProgressBar::new_spinner().with_finish(indicatif::ProgressFinish::AndLeave),
            };
            let template = if total.is_some() {
                "{prefix} [{bar:30}] {pos}/{len} {unit} ({per_sec}, eta {eta}) {msg}"
            } else {
                "{prefix} {spinner} {pos} {unit} ({per_sec}) {msg}"
            };
            let template = template.replace("{unit}", unit);
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            label: label.to_owned(),
            unit,
            total,
            done: 0,
            started: now,
            last_line: now,
            line_every: LINE_EVERY,
            bar,
        }
    }

    /// Lines (when not on a terminal) at most this often.
    pub fn lines_every(mut self, interval: Duration) -> Self {
        self.line_every = interval;
        self
    }

    /// Sets how many are done, with a short note (statuses, latency) after the counts.
    pub fn set(&mut self, done: u64, note: &str) {
        self.done = done;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(note.to_owned());
            }
            None if self.last_line.elapsed() >= self.line_every => {
                self.last_line = Instant::now();
                eprintln!("{}", self.line(note));
            }
            None => {}
        }
    }

    /// The last word: the bar left at its end, or a final line.
    pub fn finish(&mut self, note: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(note.to_owned());
                bar.finish();
            }
            None => eprintln!("{}", self.line(note)),
        }
    }

    /// `label: done/total unit (percent), rate/s, eta …` — what a log line says.
    pub fn line(&self, note: &str) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / elapsed;
        let counts = match self.total {
            Some(total) => {
                let percent = if total == 0 {
                    100.0
                } else {
                    self.done as f64 * 100.0 / total as f64
                };
                let eta = if rate > 0.0 && total > self.done {
                    format!(", eta {:.0} s", (total - self.done) as f64 / rate)
                } else {
                    String::new()
                };
                format!(
                    "{}/{total} {} ({percent:.0}%), {rate:.0}/s{eta}",
                    self.done, self.unit
                )
            }
            None => format!("{} {}, {rate:.0}/s", self.done, self.unit),
        };
        let note = if note.is_empty() {
            String::new()
        } else {
            format!("  {note}")
        };
        format!("{}: {counts}{note}", self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_counts_percent_rate_and_eta() {
        let mut progress = Progress::with_terminal("replay", "events", Some(200), false);
        progress.done = 50;
        let line = progress.line("");
        assert!(line.starts_with("replay: 50/200 events (25%), "), "{line}");
        assert!(line.contains("/s, eta "), "{line}");
        let open = Progress::with_terminal("simulate", "requests", None, false);
        assert_eq!(
            open.line("2xx 0").split(',').next(),
            Some("simulate: 0 requests")
        );
    }
}
