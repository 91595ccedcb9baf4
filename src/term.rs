//! What the terminal gets: a progress bar on stderr that never mixes into the
//! output, the table's width, and whether to colour it.
//!
//! The progress bar is drawn only when stderr is a terminal and the user did
//! not ask for `--quiet`; anything else written while it is shown (output on
//! the same terminal, warnings, the `-v` log) goes through [`suspend`], which
//! clears the bar, writes, and redraws it below.

use std::io::{self, IsTerminal};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::output::TableStyle;

/// The bar being shown, if any, so that every writer can clear it first.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// A document counter on stderr: hidden when stderr is not a terminal or `quiet`.
pub fn progress(quiet: bool, unit: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{pos}} {unit} ({{per_sec}}) {{elapsed}}"
        ))
        .expect("valid template"),
    );
    if let Ok(mut active) = ACTIVE.lock() {
        *active = Some(pb.clone());
    }
    pb
}

/// Clears the bar and forgets it (at the end of a run).
pub fn finish(pb: &ProgressBar) {
    pb.finish_and_clear();
    if let Ok(mut active) = ACTIVE.lock() {
        *active = None;
    }
}

/// Runs `f` (which writes to the terminal) with the progress bar cleared, and redraws it after.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let active = ACTIVE.lock().ok().and_then(|a| a.clone());
    match active {
        Some(pb) if !pb.is_finished() => pb.suspend(f),
        _ => f(),
    }
}

/// `warning: ...` on stderr, clear of the progress bar.
pub fn warn(message: impl std::fmt::Display) {
    suspend(|| eprintln!("warning: {message}"));
}

/// When to colour output (`--color auto|always|never`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` (or `CLICOLOR=0`, or `TERM=dumb`) says otherwise.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// The name users write.
    pub fn as_str(&self) -> &'static str {
        match self {
            ColorWhen::Auto => "auto",
            ColorWhen::Always => "always",
            ColorWhen::Never => "never",
        }
    }
}

/// The table's layout for output to standard output (`to_stdout`) or a file:
/// the terminal's width when stdout is one (else `$COLUMNS`, else 100), and
/// colour per `choice`, where `auto` colours a terminal unless `NO_COLOR` is set
/// (or `CLICOLOR=0`, or `TERM=dumb`); a file is never coloured unless `always`.
pub fn table_style(to_stdout: bool, choice: ColorWhen) -> TableStyle {
    let terminal = to_stdout && io::stdout().is_terminal();
    let width = terminal
        .then(|| terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| w.0 as usize))
        .flatten()
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(100);
    let color = match choice {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            to_stdout && anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never
        }
    };
    TableStyle { width, color }
}

/// Whether stdout is a terminal (output there must be written clear of the bar).
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}
