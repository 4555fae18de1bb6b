//! Progress of one-shot runs over files (`run`, `baseline build`, `report`).
//!
//! When stderr is a terminal and every input is a file or directory, a bar shows the
//! bytes read of the inputs' total size (compressed bytes for gzip files, as on disk),
//! records per second and the time left. Otherwise nothing is drawn: stderr of a run in
//! a pipeline or under a test carries its logs and summary only.
//!
//! While a bar is shown, log lines go through [`LogWriter`], which lifts the bar for
//! the line and draws it again below, so logs and the bar never overwrite each other.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::intake::{Input, file_bytes_read, list_files};

/// The bar being shown, for [`LogWriter`].
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Records between two updates of the bar.
const UPDATE_EVERY: u64 = 4096;

/// The progress of one run; a no-op when hidden.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// [`file_bytes_read`] when the run started.
    base: u64,
    records: u64,
    next_update: u64,
}

impl Progress {
    /// A bar over the total size of `inputs` when stderr is a terminal and no input is
    /// stdin (whose size is unknown); hidden otherwise.
    pub fn for_inputs(inputs: &[Input]) -> Progress {
        let shown = std::io::stderr().is_terminal()
            && !inputs.is_empty()
            && inputs.iter().all(|i| matches!(i, Input::Path(_)));
        if !shown {
            return Progress::hidden();
        }
        let total = inputs
            .iter()
            .filter_map(|input| match input {
                Input::Path(path) => list_files(path).ok(),
                Input::Stdin => None,
            })
            .flatten()
            .filter_map(|file| std::fs::metadata(file).ok())
            .map(|meta| meta.len())
            .sum();
        Progress::with_total(total, ProgressDrawTarget::stderr())
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            started: Instant::now(),
            base: file_bytes_read(),
            records: 0,
            next_update: UPDATE_EVERY,
        }
    }

    fn with_total(total: u64, target: ProgressDrawTarget) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message("0 records");
        bar.enable_steady_tick(Duration::from_millis(200));
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        Progress {
            bar: Some(bar),
            started: Instant::now(),
            base: file_bytes_read(),
            records: 0,
            next_update: 0,
        }
    }

    /// Counts `n` records read (parsed or prefiltered) and refreshes the bar now and then.
    pub fn records(&mut self, n: u64) {
        self.records += n;
        if self.records < self.next_update {
            return;
        }
        self.next_update = self.records + UPDATE_EVERY;
        if let Some(bar) = &self.bar {
            bar.set_position(file_bytes_read().saturating_sub(self.base));
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} records, {}/s",
                HumanCount(self.records),
                HumanCount((self.records as f64 / secs) as u64)
            ));
        }
    }

    /// Removes the bar (before the summary is printed).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
            bar.finish_and_clear();
        }
    }
}

/// Stderr for log lines that lifts the progress bar, if one is shown, for each write.
///
/// Pass `|| LogWriter` to `tracing_subscriber::fmt().with_writer`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_bar_reports_records_and_bytes() {
        let progress = Progress::with_total(1000, ProgressDrawTarget::hidden());
        let bar = progress.bar.clone().unwrap();
        let mut progress = progress;
        progress.records(UPDATE_EVERY + 1);
        assert!(
            bar.message().starts_with("4,097 records, "),
            "{}",
            bar.message()
        );
        assert_eq!(bar.length(), Some(1000));
        progress.finish();
        assert!(ACTIVE.lock().unwrap().is_none());
    }

    #[test]
    fn stdin_and_non_terminals_get_no_bar() {
        assert!(Progress::for_inputs(&[Input::Stdin]).bar.is_none());
        // Under `cargo test` stderr is captured or a pipe in CI; either way a file
        // input only gets a bar on a terminal.
        let file = Progress::for_inputs(&[Input::Path("Cargo.toml".into())]);
        assert_eq!(file.bar.is_some(), std::io::stderr().is_terminal());
    }
}
