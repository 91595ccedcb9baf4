//! The `-v` log on stderr: what was loaded and how long it took, which backend
//! runs, and every fallback; `-vv` adds a line per document, `-vvv` the
//! messages of the libraries underneath.
//!
//! The library logs through the `log` facade; this is the small logger the
//! command line installs. Lines go out clear of the progress bar.

use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};

struct Logger {
    level: LevelFilter,
    /// Other crates' messages too (`-vvv`).
    all: bool,
    started: Instant,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level && (self.all || metadata.target().starts_with("stance"))
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "[{:>6.2}s] {}",
            self.started.elapsed().as_secs_f64(),
            super::output::text::escape_controls(&record.args().to_string())
        );
        crate::term::suspend(|| eprintln!("{line}"));
    }

    fn flush(&self) {}
}

/// Installs the logger for `verbosity` (the number of `-v`); 0 logs nothing.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::Off,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let logger = Logger {
        level,
        all: verbosity >= 3,
        started: Instant::now(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}
