//! Progress of the long commands (`migrate-data`, `import-django`, `backup`), on standard
//! error: a bar (indicatif) when that is a terminal, and plain lines otherwise — one each time
//! another tenth is done, and at least every ten seconds — so logs and cron mails stay
//! readable.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

/// The longest a plain-mode step stays silent.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// One step's progress (e.g. one table), out of a known total.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    output: Output,
}

enum Output {
    Bar(ProgressBar),
    Plain {
        /// The tenths already reported.
        tenths: u64,
        last_line: Instant,
    },
}

impl Progress {
    /// Starts a step of `total` units (rows, pages), as a bar on a terminal.
    pub fn new(label: &str, total: u64) -> Progress {
        Progress::with_bar(label, total, std::io::stderr().is_terminal())
    }

    /// Starts a step drawn as a bar or written as plain lines.
    pub fn with_bar(label: &str, total: u64, bar: bool) -> Progress {
        let output = if bar {
            let style = ProgressStyle::with_template(
                "{msg:>16} [{bar:40}] {human_pos}/{human_len} ({percent}%, {eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            let bar = ProgressBar::new(total)
                .with_style(style)
                .with_message(label.to_owned());
            Output::Bar(bar)
        } else {
            Output::Plain {
                tenths: 0,
                last_line: Instant::now(),
            }
        };
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            output,
        }
    }

    /// Records `n` more units done.
    pub fn add(&mut self, n: u64) {
        self.set(self.done + n);
    }

    /// Records that `done` units are done.
    pub fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        match &mut self.output {
            Output::Bar(bar) => bar.set_position(self.done),
            Output::Plain { tenths, last_line } => {
                let now_tenths = (self.done * 10).checked_div(self.total).unwrap_or(10);
                if now_tenths > *tenths || last_line.elapsed() >= PLAIN_EVERY {
                    *tenths = now_tenths;
                    *last_line = Instant::now();
                    eprintln!("{}", self.line());
                }
            }
        }
    }

    /// Ends the step (as done, whatever was counted).
    pub fn finish(mut self) {
        match &self.output {
            Output::Bar(bar) => bar.finish(),
            Output::Plain { tenths, .. } => {
                if *tenths < 10 {
                    self.done = self.total;
                    eprintln!("{}", self.line());
                }
            }
        }
    }

    /// `messages: 4,000/10,000 (40%)`.
    fn line(&self) -> String {
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        format!(
            "{}: {}/{} ({percent}%)",
            self.label,
            grouped(self.done),
            grouped(self.total)
        )
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far_in_plain_numbers() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        let mut progress = Progress::with_bar("messages", 10_000, false);
        progress.add(4_000);
        assert_eq!(progress.line(), "messages: 4,000/10,000 (40%)");
        progress.add(1_000_000);
        assert_eq!(progress.line(), "messages: 10,000/10,000 (100%)");
        assert_eq!(
            Progress::with_bar("empty", 0, false).line(),
            "empty: 0/0 (100%)"
        );
    }

    #[test]
    fn a_bar_follows_the_count() {
        let mut progress = Progress::with_bar("pages", 100, true);
        progress.add(30);
        progress.set(45);
        let Output::Bar(bar) = &progress.output else {
            panic!("a bar was asked for");
        };
        assert_eq!((bar.position(), bar.length()), (45, Some(100)));
        progress.finish();
    }
}
