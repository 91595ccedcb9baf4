//! The `stance` command line: a thin layer over the library.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use stance::eval::stance as eval_stance;
use stance::input::{self, InputFormat, ReadOptions, Source};
use stance::output::{DocWriter, OutputFormat};
use stance::{BackendChoice, Pipeline};

#[derive(Parser)]
#[command(
    name = "stance",
    version,
    about = "Who said what to whom: entities, actors and their threats, accusations and proposals in news",
    long_about = "Reads news articles, tags named entities (PER, ORG, LOC, MISC), groups mentions into \
actors (\"John Kerry\", \"Kerry\" -> one person; \"Washington\", \"U.S.\" -> United States) and finds \
each actor's threats, accusations and proposals, with the target and the cue words.\n\n\
Examples:\n  stance classify data/samples/steel_duties.txt\n  stance classify --format json article.txt > out.json\n  \
cat articles.jsonl | stance classify --input jsonl --format jsonl\n  stance eval stance --data data/samples/gold.jsonl --errors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find entities, actors and statements in articles.
    #[command(
        after_help = "Examples:\n  stance classify data/samples/steel_duties.txt\n  \
stance classify --format json a.txt b.txt > docs.json          # an array of two documents\n  \
stance classify --format jsonl corpus.jsonl > docs.jsonl        # streams, one document per line\n  \
echo 'Paris accused Rome of fraud.' | stance classify --format json\n\n\
Offsets in JSON are character offsets (Unicode scalar values, end exclusive) into the input text.\n\
Exit codes: 0 success, 1 failure (bad input, unreadable file), 2 usage error."
    )]
    Classify(ClassifyArgs),
    /// Score a backend against labeled data.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Args)]
struct ClassifyArgs {
    /// Input files; '-' or none reads standard input. `.jsonl` files are read as JSON Lines.
    files: Vec<PathBuf>,
    /// Output format: table for reading, json (an object, or an array for several documents), jsonl (one per line).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Input format: auto (JSON Lines for .jsonl files, else text), text (one article per input), jsonl ({"id", "text"} per line).
    #[arg(short, long, value_enum, default_value_t = InputFormat::Auto)]
    input: InputFormat,
    #[command(flatten)]
    backend: BackendArgs,
    /// Decode invalid UTF-8 as U+FFFD (with a warning) instead of failing.
    #[arg(long)]
    lossy: bool,
    /// Skip unreadable files and malformed JSON lines (with a warning each) instead of stopping;
    /// the number skipped is printed at the end.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Write the output to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct BackendArgs {
    /// Backend: auto (the model if one loads, else rules), rules (no model needed), model.
    #[arg(short, long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Score statements against gold JSON Lines (the guidelines' format), as the guidelines' Scoring section says.
    #[command(
        after_help = "Example:\n  stance eval stance --data data/samples/gold.jsonl --backend rules --errors\n\n\
Gold lines: {\"id\", \"text\", \"stances\": [{\"actor\": {\"start\", \"end\"}, \"label\", \"target\": {...} | null}]}.\n\
A prediction matches a gold statement when actor spans overlap and labels are equal (one-to-one).\n\
Items with \"ambiguous\": true are optional. Target accuracy is over matched statements."
    )]
    Stance(EvalStanceArgs),
}

#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
enum ReportFormat {
    #[default]
    Table,
    Json,
}

#[derive(Args)]
struct EvalStanceArgs {
    /// Gold file in JSON Lines.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// List misses and false alarms with their sentences.
    #[arg(long)]
    errors: bool,
    /// Also write the predicted documents as JSON Lines to this file (readable by score_stance.py).
    #[arg(long)]
    predictions: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => classify(args),
        Command::Eval(EvalCommand::Stance(args)) => eval_stance_cmd(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A closed pipe (`stance ... | head`) is the reader's choice, not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn build_pipeline(choice: BackendChoice) -> Result<Pipeline> {
    let (pipeline, note) = Pipeline::for_backend(choice)?;
    if let Some(note) = note {
        eprintln!("warning: {note}");
    }
    Ok(pipeline)
}

fn open_output(path: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    })
}

fn classify(args: ClassifyArgs) -> Result<ExitCode> {
    let pipeline = build_pipeline(args.backend.backend)?;
    let sources: Vec<Source> = if args.files.is_empty() {
        vec![Source::Stdin]
    } else {
        args.files.iter().map(|p| Source::from_arg(p)).collect()
    };
    let opts = ReadOptions {
        format: args.input,
        lossy: args.lossy,
    };
    let mut writer = DocWriter::new(args.format, open_output(&args.output)?);
    let progress = progress_bar();
    let mut skipped = 0usize;
    let mut failure: Option<anyhow::Error> = None;
    'sources: for source in &sources {
        for item in input::read(source, opts) {
            let record = match item {
                Ok(r) => r,
                Err(e) if args.skip_bad_lines => {
                    progress.suspend(|| eprintln!("warning: skipped: {e}"));
                    skipped += 1;
                    continue;
                }
                Err(e) => {
                    failure = Some(e.into());
                    break 'sources;
                }
            };
            for w in &record.warnings {
                progress.suspend(|| eprintln!("warning: {w}"));
            }
            let doc = pipeline
                .analyze(&record.id, &record.text)
                .with_context(|| format!("analysing {}", record.id))?;
            progress.inc(1);
            writer.write(doc, &record.text)?;
        }
    }
    progress.finish_and_clear();
    // Close the output even on failure, so what was processed stays valid JSON.
    writer.finish()?;
    if skipped > 0 {
        eprintln!("warning: {skipped} bad input(s) skipped");
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// A spinner with a document count on a terminal; nothing when stderr is redirected.
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {pos} documents ({per_sec}) {elapsed}")
            .expect("valid template"),
    );
    pb
}

fn eval_stance_cmd(args: EvalStanceArgs) -> Result<ExitCode> {
    let gold = eval_stance::load_gold(&args.data)?;
    let pipeline = build_pipeline(args.backend.backend)?;
    let progress = progress_bar();
    let mut preds = Vec::with_capacity(gold.len());
    let mut pred_out = match &args.predictions {
        Some(p) => Some(DocWriter::new(
            OutputFormat::Jsonl,
            open_output(&Some(p.clone()))?,
        )),
        None => None,
    };
    for g in &gold {
        let doc = pipeline.analyze(&g.id, &g.text)?;
        preds.push(eval_stance::Predicted::from_document(&doc));
        if let Some(w) = pred_out.as_mut() {
            w.write(doc, &g.text)?;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    if let Some(w) = pred_out {
        w.finish()?;
    }
    let mut report = eval_stance::score(&gold, &preds);
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            if !args.errors {
                report.errors.clear();
            }
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        ReportFormat::Table => {
            write!(
                out,
                "{}",
                eval_stance::format_table(&report, pipeline.backend().as_str(), args.errors)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
