//! The `stance` command line: a thin layer over the library.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use stance::bench::{self, BenchConfig};
use stance::cli::at_least;
use stance::eval::stance as eval_stance;
use stance::input::{self, InputFormat, ReadOptions, Source};
use stance::model::tagger::{InferenceOptions, Precision};
use stance::model::threads::{self, Parallelism};
use stance::model::train::TrainOptions;
use stance::output::{DocWriter, OutputFormat, WriteOptions};
use stance::pipeline::ModelChoice;
use stance::stance::train::StanceTrainOptions;
use stance::term::{self, ColorWhen};
use stance::{BackendChoice, Pipeline};

/// mimalloc keeps freed memory for reuse; with the system allocator every large
/// tensor of a training step is a fresh mapping that the kernel must zero.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc reads this at start-up: milliseconds before freed memory goes back to the
/// system. Unset, `stance` uses [`PURGE_DELAY_MS`] (see `main`).
const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// Freed memory unused for this long goes back to the system: far longer than a
/// training step (under a second), so the buffers every step reuses stay mapped.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

#[derive(Parser)]
#[command(
    name = "stance",
    version,
    about = "Who said what to whom: entities, actors and their threats, accusations and proposals in news",
    long_about = "Reads news articles, tags named entities (PER, ORG, LOC, MISC), groups mentions into \
actors (\"John Kerry\", \"Kerry\" -> one person; \"Washington\", \"U.S.\" -> United States) and finds \
each actor's threats, accusations and proposals, with the target and the cue words.\n\n\
Examples:\n  stance classify data/samples/steel_duties.txt\n  stance classify --format json article.txt > out.json\n  \
cat articles.jsonl | stance classify --input jsonl --format jsonl\n  stance eval stance --data data/heldout/gold.jsonl"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    globals: Globals,
}

/// Options of every command: how much to say on stderr, and colour.
#[derive(Args, Clone, Copy)]
struct Globals {
    /// No progress bar (warnings and errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log load times, the backend chosen and fallbacks on stderr; -vv also each document.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Colour the table: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::default(), global = true)]
    color: ColorWhen,
}

#[derive(Subcommand)]
enum Command {
    /// Find entities, actors and statements in articles.
    #[command(
        after_help = "Examples:\n  stance classify data/samples/steel_duties.txt\n  \
stance classify --format json a.txt b.txt > docs.json          # an array of two documents\n  \
stance classify --format jsonl corpus.jsonl > docs.jsonl        # streams, one document per line\n  \
stance classify --format html -o page.html data/samples/        # every .txt and .jsonl below, one page\n  \
stance classify --format conll article.txt > article.conll     # a token and its IOB2 tag a line\n  \
stance classify --format tsv data/samples/ > statements.tsv    # one statement a row\n  \
echo 'Paris accused Rome of fraud.' | stance classify --format json\n\n\
Offsets in JSON are character offsets (Unicode scalar values, end exclusive) into the input text.\n\
Exit codes: 0 success, 1 failure (bad input, unreadable file), 2 usage error."
    )]
    Classify(ClassifyArgs),
    /// Score a backend against labeled data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Fine-tune models on labeled data.
    #[command(subcommand)]
    Train(TrainCommand),
    /// List the models available on this machine and the default.
    #[command(
        after_help = "Models are looked for under $STANCE_MODELS, models/ beside the executable or the\n\
source tree, and the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub)."
    )]
    Models(ModelsArgs),
    /// Measure model inference throughput (tokens/s) over thread counts, batch sizes and parallelism.
    #[command(
        after_help = "Examples:\n  stance bench --data data/conll/samples.conll --sentences 200\n  \
stance bench --data ../shared/data/conll2003/dev.txt --sentences 2000 \\\n    \
--threads 1,2 --batch-sizes 1,8,32 --parallelism workers,intra\n\n\
Each configuration runs in a fresh process (candle fixes its thread pools at first use), on\n\
the first N sentences of the CoNLL file, each sentence one input, length-sorted into batches."
    )]
    Bench(BenchArgs),
    /// Print a completion script for a shell.
    #[command(after_help = "Examples:\n  \
stance completions bash > ~/.local/share/bash-completion/completions/stance\n  \
stance completions zsh > ~/.zfunc/_stance          # with fpath+=~/.zfunc before compinit\n  \
stance completions fish > ~/.config/fish/completions/stance.fish")]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct ModelsArgs {
    #[command(subcommand)]
    command: Option<ModelsCommand>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Copy a checkpoint directory with its weights in half precision (f16).
    Half {
        /// The checkpoint directory to read.
        src: PathBuf,
        /// The directory to write.
        dst: PathBuf,
    },
    /// Average the weights of several runs of one model into a new model directory.
    ///
    /// Every `.safetensors` file (top level and one directory down) is the element-wise
    /// mean over the runs; every other file, thresholds included, is copied from the
    /// first. The runs must share tensor names and shapes: continue one run from another
    /// (`stance train stance --continue-from`) and average the two. Then refit the
    /// thresholds on tune data with `stance train stance --reuse-actors --out DIR`.
    #[command(after_help = "Example:\n  stance models average --out runs/avg runs/B1 runs/B3")]
    Average {
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Mixing weights, one per model, comma-separated (default: equal).
        #[arg(long, value_delimiter = ',', value_name = "W,W,...")]
        weights: Option<Vec<f64>>,
        /// The model directories to average (two or more).
        #[arg(required = true, num_args = 2..)]
        srcs: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// CoNLL file whose sentences are the workload.
    #[arg(long, required_unless_present = "pipeline")]
    data: Option<PathBuf>,
    /// Time the whole `classify` path (default backend) on a JSON Lines corpus instead:
    /// words/s and seconds per stage (segment, tokenize, entities, actors, stance, output).
    #[arg(long, value_name = "CORPUS.jsonl", conflicts_with = "data")]
    pipeline: Option<PathBuf>,
    /// Number of sentences.
    #[arg(long, default_value_t = 2000)]
    sentences: usize,
    /// Thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = at_least(1))]
    threads: Vec<usize>,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32", value_parser = at_least(1))]
    batch_sizes: Vec<usize>,
    /// Parallelism modes to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "workers,intra"
    )]
    parallelism: Vec<Parallelism>,
    /// Entity model (default: the shipped one).
    #[arg(long)]
    model: Option<String>,
    /// Number format of the dense layers, as `classify --precision`.
    #[arg(long, value_enum, default_value_t = Precision::default())]
    precision: Precision,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Run one configuration in this process and print its JSON (used by bench itself).
    #[arg(long, hide = true)]
    single: bool,
}

impl BenchArgs {
    /// The configuration measured in this process (`--single`, `--pipeline`): the first of each list.
    fn first(&self) -> BenchConfig {
        BenchConfig {
            threads: self.threads[0],
            batch_size: self.batch_sizes[0],
            parallelism: self.parallelism[0],
            precision: self.precision,
        }
    }
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Fine-tune a BERT-family encoder for entity tagging on CoNLL files (IOB1 or IOB2).
    #[command(
        after_help = "Example (the recipe of the shipped default model, into runs/ so that the\n\
shipped one is kept; `stance models half runs/ner DIR` makes its f16 copy):\n  \
scripts/fetch_base.sh\n  \
stance train ner --base models/base --train ../shared/data/conll2003/train.txt \\\n    \
--dev ../shared/data/conll2003/dev.txt --out runs/ner --epochs 6 --lr 1e-4 --batch-size 4 \\\n    \
--context 256 --seed 42\n\n\
The best epoch on --dev is kept in --out. A resumable checkpoint is written to OUT/resume every\n\
--checkpoint-minutes and when --max-minutes runs out; continue with the same command plus --resume."
    )]
    Ner(TrainOptions),
    /// Train the learned stance model (actor classifier, target head, thresholds of the hybrid with the rules).
    #[command(
        after_help = "Example (the shipped model's recipe, into runs/ so that the shipped one is kept): two\n\
epochs on the data of the time, then one more over everything annotated by then, continuing\n\
the trained classifier (same --layout and marker options) instead of starting over:\n  \
stance train stance --ner-model models/ner --out runs/stance --layout sentence \\\n    \
--train data/stance/news/train-rounds1-13.jsonl --train data/stance/conll.jsonl:train \\\n    \
--tune data/stance/news/tune.jsonl --tune data/stance/conll.jsonl:dev --epochs 2\n  \
stance train stance --ner-model models/ner --out runs/stance2 --layout sentence \\\n    \
--train data/stance/news/train-rounds1-57.jsonl --train data/stance/conll.jsonl:train \\\n    \
--tune data/stance/news/tune.jsonl --tune data/stance/conll.jsonl:dev \\\n    \
--continue-from runs/stance/actors --epochs 1 --lr 2e-5\n\n\
Training files are gold JSON Lines (guidelines' format) or stand-off labels on CoNLL-2003 given as\n\
FILE:SPLIT. The --tune documents (without them, a share of the training ones: --holdout) pick the epoch and thresholds;\n\
score the result on dev with `stance eval stance --compare rules,model,auto`."
    )]
    Stance(TrainStanceArgs),
}

#[derive(Args)]
struct TrainStanceArgs {
    /// Training data: gold JSON Lines, or stand-off CoNLL labels as FILE:SPLIT; repeat.
    /// (Not needed with --keep-targets, which trains nothing.)
    #[arg(long, required_unless_present = "keep_targets")]
    train: Vec<String>,
    /// Tuning data (same forms as --train; repeat): picks the epoch, the thresholds and the
    /// hybrid's floors and is never trained on. Without it, --holdout of the training
    /// documents is held back instead.
    #[arg(long)]
    tune: Vec<String>,
    /// Precision of the entity model's pass over every document before training, which
    /// finds the candidate actors: f32 as the models were trained, or int8 (AVX-512 VNNI
    /// CPUs), faster and the way the default pipeline finds them when it classifies.
    #[arg(long, value_enum, value_name = "PRECISION", default_value_t = Precision::F32)]
    reading_precision: Precision,
    #[command(flatten)]
    options: StanceTrainOptions,
}

#[derive(Args)]
struct ClassifyArgs {
    /// Input files or directories; '-' or none reads standard input. `.jsonl` files are read as
    /// JSON Lines; a directory gives the .txt and .jsonl files below it, in path order.
    files: Vec<PathBuf>,
    /// Output format: table for reading, html (one page), json (an object, or an array for several
    /// documents), jsonl (one per line), conll (tokens and IOB2 tags), tsv (one statement a row).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::default())]
    format: OutputFormat,
    /// Input format: auto (JSON Lines for .jsonl files, else text), text (one article per input), jsonl ({"id", "text"} per line).
    #[arg(short, long, value_enum, default_value_t = InputFormat::default())]
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
    #[arg(short, long, value_enum, default_value_t = BackendChoice::default())]
    backend: BackendChoice,
    /// Entity model: a checkpoint directory, or a Hugging Face Hub id ORG/NAME[@REVISION]
    /// (from the local cache; HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE=1 are honoured).
    /// Default: the model shipped under models/ (see `stance models`).
    #[arg(long, value_name = "DIR|ORG/NAME[@REV]")]
    model: Option<String>,
    /// Stance model (a directory made by `stance train stance`). Default: models/stance.
    #[arg(long, value_name = "DIR")]
    stance_model: Option<PathBuf>,
    #[command(flatten)]
    run: InferenceOptions,
}

impl BackendArgs {
    fn model_choice(&self) -> ModelChoice {
        ModelChoice {
            spec: self.model.clone(),
            stance: self.stance_model.clone(),
            options: self.run,
        }
    }
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Score statements against gold JSON Lines (the guidelines' format), as the guidelines' Scoring section says.
    #[command(after_help = "Examples:\n  \
stance eval stance --data data/heldout/gold.jsonl                  # articles no model was trained on\n  \
stance eval stance --data data/heldout/gold.jsonl --compare rules,model,auto\n  \
stance eval stance --data data/samples/gold.jsonl --backend rules --errors\n\n\
Gold lines: {\"id\", \"text\", \"stances\": [{\"actor\": {\"start\", \"end\"}, \"label\", \"target\": {...} | null}]}.\n\
A prediction matches a gold statement when actor spans overlap and labels are equal (one-to-one).\n\
Items with \"ambiguous\": true are optional. Target accuracy is over matched statements.")]
    Stance(EvalStanceArgs),
    /// Score entity tagging on a CoNLL file (IOB1 or IOB2), counted exactly as conlleval counts.
    #[command(
        after_help = "Examples:\n  stance eval ner --data data/conll/samples.conll             # ships with the repository\n  \
stance eval ner --data ../shared/data/conll2003/test.txt\n  \
stance eval ner --data test.txt --backend rules --format json\n\n\
Each document (between -DOCSTART- lines) is tagged as running text; a word takes the tag of\n\
the entity that covers its first character. Reports precision, recall and F1 per type and\n\
micro-averaged, and tokens (words) per second."
    )]
    Ner(EvalNerArgs),
}

#[derive(Args)]
struct EvalNerArgs {
    /// CoNLL file: a word and its tag (last column) per line, blank lines between sentences.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
enum ReportFormat {
    #[default]
    Table,
    Json,
}

#[derive(Args)]
struct EvalStanceArgs {
    /// Gold file in JSON Lines: the guidelines' format, or the project's stand-off
    /// labels on CoNLL-2003 (data/stance/conll.jsonl, joined with ../shared/data/conll2003).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// With stand-off data: only documents of this CoNLL split (train or dev).
    #[arg(long)]
    split: Option<String>,
    /// Score several backends side by side (e.g. rules,model,auto) instead of --backend.
    #[arg(long, value_enum, value_delimiter = ',')]
    compare: Vec<BackendChoice>,
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
    /// Also write the gold documents as read (stand-off labels joined with their text) as JSON
    /// Lines to this file, so that score_stance.py can cross-check the scores.
    #[arg(long)]
    gold_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Keep freed pages mapped for a while: a training step frees and reallocates the
    // same large buffers, and returning them to the kernel at once means zeroing them
    // again (18% slower training). Never returning them cost memory instead: a rare
    // step takes gigabytes for a moment, which were then held
    // for good (a 560-document run stayed at 6.3 GB instead of 1.1 GB, a full epoch grew
    // to 20 GB and was killed); a 10-second delay cost about 10% of training speed there.
    // A setting in the environment (milliseconds) wins.
    // `mi_option_purge_delay` is 15 in mimalloc 2 and 3 (the binding does not name it).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os(PURGE_DELAY_VAR).is_none() {
        // SAFETY: sets a plain integer option of the allocator; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    let matches = Cli::command().long_version(long_version()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some((threads, parallelism)) = model_threads(&cli.command) {
        // Still the only thread: candle reads this on every matrix product.
        std::env::set_var(
            threads::PRODUCT_THREADS_VAR,
            threads::product_threads(threads, parallelism).to_string(),
        );
    }
    let g = cli.globals;
    stance::verbose::init(g.verbose);
    let result = match cli.command {
        Command::Classify(args) => classify(args, g),
        Command::Eval(EvalCommand::Stance(args)) => eval_stance_cmd(args, g),
        Command::Train(TrainCommand::Ner(args)) => train_ner_cmd(args, g),
        Command::Train(TrainCommand::Stance(args)) => train_stance_cmd(args, g),
        Command::Eval(EvalCommand::Ner(args)) => eval_ner_cmd(args),
        Command::Models(ModelsArgs {
            command: Some(ModelsCommand::Half { src, dst }),
        }) => half_cmd(&src, &dst),
        Command::Models(ModelsArgs {
            command: Some(ModelsCommand::Average { out, weights, srcs }),
        }) => average_cmd(&srcs, weights.as_deref(), &out),
        Command::Models(ModelsArgs { command: None }) => models_cmd(),
        Command::Bench(args) => bench_cmd(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "stance", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
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

/// The threads and parallelism a command runs its model with, if it runs one.
fn model_threads(command: &Command) -> Option<(usize, Parallelism)> {
    match command {
        Command::Classify(a) => Some((a.backend.run.threads, a.backend.run.parallelism)),
        Command::Eval(EvalCommand::Stance(a)) => {
            Some((a.backend.run.threads, a.backend.run.parallelism))
        }
        Command::Eval(EvalCommand::Ner(a)) => {
            Some((a.backend.run.threads, a.backend.run.parallelism))
        }
        // Training splits each step over single-threaded workers.
        Command::Train(TrainCommand::Ner(o)) => Some((o.threads, Parallelism::Workers)),
        Command::Train(TrainCommand::Stance(a)) => Some((a.options.threads, Parallelism::Workers)),
        Command::Bench(a) if a.single || a.pipeline.is_some() => {
            let c = a.first();
            Some((c.threads, c.parallelism))
        }
        _ => None,
    }
}

/// `stance --version`: the version and the default models this binary would load.
fn long_version() -> String {
    let shown = |p: Option<PathBuf>| match p {
        Some(p) => p.display().to_string(),
        None => "none installed (the rules backend is used)".into(),
    };
    format!(
        "{}\ndefault entity model: {}\ndefault stance model: {}",
        env!("CARGO_PKG_VERSION"),
        shown(stance::model::source::default_model().ok()),
        shown(stance::model::source::default_stance())
    )
}

/// A closed pipe (`stance ... | head`) is the reader's choice, not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn build_pipeline(args: &BackendArgs) -> Result<Pipeline> {
    let (pipeline, note) = Pipeline::for_backend(args.backend, &args.model_choice())?;
    if let Some(note) = note {
        term::warn(note);
    }
    Ok(pipeline)
}

fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    })
}

fn classify(args: ClassifyArgs, g: Globals) -> Result<ExitCode> {
    let sources: Vec<Source> = if args.files.is_empty() {
        vec![Source::Stdin]
    } else {
        input::expand(&args.files)?
    };
    let pipeline = build_pipeline(&args.backend)?;
    let opts = ReadOptions {
        format: args.input,
        lossy: args.lossy,
    };
    // Input that can hold several documents always gives a JSON array.
    let many = sources.len() > 1
        || args.files.iter().any(|f| f.is_dir())
        || sources
            .iter()
            .any(|s| s.format(args.input) == InputFormat::Jsonl);
    let to_stdout = args.output.is_none();
    let options = WriteOptions {
        many,
        table: term::table_style(to_stdout, g.color),
        info: pipeline.info(),
        title: match sources.as_slice() {
            [one] => format!("stance: {}", one.name().display()),
            _ => format!("stance: {} inputs", sources.len()),
        },
    };
    let mut writer =
        DocWriter::with_options(args.format, open_output(args.output.as_deref())?, options);
    let progress = term::progress(g.quiet, "documents");
    // Output on the terminal the bar is drawn on is written with the bar cleared.
    let clear_of_bar = to_stdout && term::stdout_is_terminal();
    let (mut skipped, mut failed) = (0usize, 0usize);
    let mut failure: Option<anyhow::Error> = None;
    'sources: for source in &sources {
        for item in input::read(source, opts) {
            let record = match item {
                Ok(r) => r,
                Err(e) if args.skip_bad_lines => {
                    term::warn(format!("skipped: {e}"));
                    skipped += 1;
                    continue;
                }
                Err(e) => {
                    failure = Some(e.into());
                    break 'sources;
                }
            };
            for w in &record.warnings {
                term::warn(w);
            }
            let started = std::time::Instant::now();
            // A record that fails inside the pipeline keeps its place in the output,
            // with the reason, instead of vanishing.
            let doc = match pipeline.analyze(&record.id, &record.text) {
                Ok(doc) => doc,
                Err(e) => {
                    let e = anyhow::Error::from(e);
                    term::suspend(|| eprintln!("error: {}: {e:#}", record.id));
                    failed += 1;
                    stance::Document::failed(
                        &record.id,
                        pipeline.backend(),
                        &record.text,
                        format!("{e:#}"),
                    )
                }
            };
            log::debug!(
                "{}: {} chars, {} statements in {:.2} s",
                record.id,
                doc.chars,
                doc.statements.len(),
                started.elapsed().as_secs_f64()
            );
            progress.inc(1);
            if clear_of_bar {
                progress.suspend(|| writer.write(doc, &record.text))?;
            } else {
                writer.write(doc, &record.text)?;
            }
        }
    }
    term::finish(&progress);
    // Close the output even on failure, so what was processed stays valid JSON.
    writer.finish()?;
    if let Some(e) = failure {
        return Err(e);
    }
    if skipped + failed > 0 {
        eprintln!(
            "error: {} of the input's records were not analysed ({skipped} unreadable and skipped, {failed} failed with an `error` field in the output)",
            skipped + failed
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn eval_stance_cmd(args: EvalStanceArgs, g: Globals) -> Result<ExitCode> {
    let splits: Vec<&str> = args.split.iter().map(String::as_str).collect();
    let mut gold = Vec::new();
    for p in &args.data {
        gold.extend(stance::stance::data::load_any(p, &splits)?);
    }
    if let Some(path) = &args.gold_out {
        eval_stance::write_gold(path, &gold)?;
    }
    let mut out = io::stdout().lock();
    if !args.compare.is_empty() {
        let progress = term::progress(g.quiet, "documents");
        let compared = eval_stance::compare(
            &gold,
            &args.compare,
            &args.backend.model_choice(),
            args.errors,
            term::warn,
            || progress.inc(1),
        )?;
        term::finish(&progress);
        match args.format {
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &eval_stance::comparison_json(&compared)?)?;
                writeln!(out)?;
            }
            ReportFormat::Table => write!(
                out,
                "{}",
                eval_stance::format_comparison(&compared, gold.len())
            )?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pipeline = build_pipeline(&args.backend)?;
    let mut predictions = match &args.predictions {
        Some(p) => Some(DocWriter::new(OutputFormat::Jsonl, open_output(Some(p))?)),
        None => None,
    };
    let progress = term::progress(g.quiet, "documents");
    let preds = eval_stance::predict(&pipeline, &gold, |doc, g| {
        progress.inc(1);
        if let Some(w) = predictions.as_mut() {
            w.write(doc, &g.text)
                .map_err(|source| stance::StanceError::Write {
                    path: args.predictions.clone().unwrap_or_default(),
                    source,
                })?;
        }
        Ok(())
    })?;
    term::finish(&progress);
    if let Some(w) = predictions {
        w.finish()?;
    }
    let mut report = eval_stance::score(&gold, &preds);
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

fn train_stance_cmd(args: TrainStanceArgs, g: Globals) -> Result<ExitCode> {
    let train = stance::stance::train::load_sources(&args.train)?;
    let tune = stance::stance::train::load_sources(&args.tune)?;
    eprintln!(
        "{} training documents, {} tuning documents",
        train.len(),
        tune.len()
    );
    let opts = StanceTrainOptions {
        progress: !g.quiet,
        ..args.options
    };
    // The target head learns from these states: f32 unless asked, as the model was trained.
    let inference = InferenceOptions {
        threads: opts.threads,
        precision: args.reading_precision,
        ..Default::default()
    };
    let tagger =
        stance::model::load_tagger(Some(&opts.ner_model.display().to_string()), inference)?;
    let mut sources = args.train.clone();
    sources.extend(
        args.tune
            .iter()
            .map(|t| format!("{}{t}", stance::stance::train::TUNE_SOURCE)),
    );
    stance::stance::train::train_stance(&opts, &train, &tune, sources, &tagger, &mut |l| {
        eprintln!("{l}")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn train_ner_cmd(options: TrainOptions, g: Globals) -> Result<ExitCode> {
    let opts = TrainOptions {
        progress: !g.quiet,
        ..options
    };
    stance::model::train::train_ner(&opts, &mut |line| eprintln!("{line}"))?;
    Ok(ExitCode::SUCCESS)
}

fn eval_ner_cmd(args: EvalNerArgs) -> Result<ExitCode> {
    let docs = stance::conll::read(&args.data)?;
    let (tagger, note) =
        stance::pipeline::entity_tagger(args.backend.backend, &args.backend.model_choice())?;
    if let Some(note) = note {
        term::warn(note);
    }
    let tagger = tagger.as_ref();
    let started = std::time::Instant::now();
    let counts = stance::eval::ner::evaluate(&docs, tagger)?;
    let seconds = started.elapsed().as_secs_f64();
    let sentences = docs.iter().map(|d| d.sentences.len()).sum();
    let report = stance::eval::ner::NerReport::new(
        &counts,
        sentences,
        tagger.backend().as_str(),
        Some(seconds),
    );
    let mut out = io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        ReportFormat::Table => write!(out, "{}", report.table())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn models_cmd() -> Result<ExitCode> {
    use stance::model::source;
    let mut out = io::stdout().lock();
    let entity_models = source::list_local();
    if entity_models.is_empty() {
        writeln!(out, "no models found; the rules backend will be used")?;
        let looked: Vec<String> = source::models_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        writeln!(out, "(looked in: {})", looked.join(", "))?;
    }
    let mark = |default: bool| if default { "*" } else { " " };
    for m in entity_models {
        let labels = stance::model::checkpoint::Checkpoint::open(&m.path)
            .map(|c| c.labels.join(" "))
            .unwrap_or_else(|e| format!("(unusable: {e})"));
        writeln!(
            out,
            "{} {:<28} {}\n    labels: {labels}",
            mark(m.default),
            m.name,
            m.path.display()
        )?;
    }
    for m in source::list_stance_models() {
        let about = match &m.trained_on {
            Ok(data) => format!("stance heads; trained on: {}", data.join(", ")),
            Err(why) => format!("(unusable: {why})"),
        };
        writeln!(
            out,
            "{} {:<28} {}\n    {about}",
            mark(m.default),
            m.name,
            m.path.display()
        )?;
    }
    writeln!(
        out,
        "\n* marks the defaults, loaded when no --model or --stance-model is given."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn bench_cmd(args: BenchArgs) -> Result<ExitCode> {
    let data = match (&args.pipeline, &args.data) {
        (Some(corpus), _) => return bench_pipeline(corpus, &args),
        (None, Some(data)) => data.clone(),
        (None, None) => anyhow::bail!("bench needs --data FILE.conll or --pipeline CORPUS.jsonl"),
    };
    if args.single {
        let row =
            bench::measure_encoder(&data, args.sentences, args.model.as_deref(), &args.first())?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(ExitCode::SUCCESS);
    }
    // candle fixes its thread pools at first use: each configuration in a fresh process.
    let exe = std::env::current_exe()?;
    let configs: Vec<BenchConfig> =
        bench::configurations(&args.parallelism, &args.threads, &args.batch_sizes)
            .into_iter()
            .map(|c| BenchConfig {
                precision: args.precision,
                ..c
            })
            .collect();
    let measure_in_child = |c: &BenchConfig| -> stance::Result<bench::BenchRow> {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench").arg("--single").arg("--data").arg(&data);
        cmd.args(["--sentences", &args.sentences.to_string()]);
        cmd.args(["--threads", &c.threads.to_string()]);
        cmd.args(["--batch-sizes", &c.batch_size.to_string()]);
        cmd.args(["--parallelism", c.parallelism.as_str()]);
        cmd.args(["--precision", c.precision.as_str()]);
        if let Some(m) = &args.model {
            cmd.args(["--model", m]);
        }
        let out = cmd.output().map_err(|source| stance::StanceError::Io {
            path: exe.clone(),
            source,
        })?;
        if !out.status.success() {
            // The child already said what failed; say it once.
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said.trim().trim_start_matches("error: ").to_string();
            return Err(stance::StanceError::Config(said));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| stance::StanceError::Data(format!("reading a bench result: {e}")))
    };
    let table = args.format == ReportFormat::Table;
    let rows = bench::sweep(
        &configs,
        &data,
        args.sentences,
        measure_in_child,
        |row| {
            if table {
                eprintln!("{}", row.line());
            }
        },
        term::warn,
    )?;
    if !table {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `stance bench --pipeline`: the default `classify` path over a JSON Lines corpus, timed
/// per stage, at the first of `--threads`, `--batch-sizes` and `--parallelism`.
fn bench_pipeline(corpus: &Path, args: &BenchArgs) -> Result<ExitCode> {
    let (report, note) = bench::measure_pipeline(corpus, args.model.as_deref(), &args.first())?;
    if let Some(note) = note {
        term::warn(note);
    }
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Table => print!("{}", report.table()),
    }
    Ok(ExitCode::SUCCESS)
}

fn average_cmd(srcs: &[PathBuf], weights: Option<&[f64]>, out: &Path) -> Result<ExitCode> {
    let files = stance::model::average::average_dirs(srcs, weights, out)?;
    for f in files {
        eprintln!(
            "wrote {}: the mean of {} models",
            out.join(f).display(),
            srcs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn half_cmd(src: &Path, dst: &Path) -> Result<ExitCode> {
    stance::model::checkpoint::export_half(src, dst)?;
    eprintln!("wrote {} (f16 weights)", dst.display());
    Ok(ExitCode::SUCCESS)
}
