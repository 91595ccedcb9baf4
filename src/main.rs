//! The `stance` command line: a thin layer over the library.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{
    ArgAction, Args, ColorChoice, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};

use stance::eval::stance as eval_stance;
use stance::input::{self, InputFormat, ReadOptions, Source};
use stance::model::aggregate::Aggregation;
use stance::model::tagger::InferenceOptions;
use stance::model::threads::{self, Parallelism};
use stance::output::{DocWriter, OutputFormat, WriteOptions};
use stance::pipeline::ModelChoice;
use stance::term;
use stance::{BackendChoice, Pipeline};

/// mimalloc keeps freed memory for reuse; with the system allocator every large
/// tensor of a training step is a fresh mapping that the kernel must zero.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
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
}

#[derive(Args)]
struct BenchArgs {
    /// CoNLL file whose sentences are the workload.
    #[arg(long, required_unless_present = "pipeline")]
    data: Option<PathBuf>,
    /// Time the whole `classify` path (default backend) on a JSON Lines corpus instead:
    /// words/s and seconds per stage (segment, entities, actors, stance, output).
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
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Run one configuration in this process and print its JSON (used by bench itself).
    #[arg(long, hide = true)]
    single: bool,
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
    Ner(TrainNerArgs),
    /// Train the learned stance model (actor classifier, target head, thresholds of the hybrid with the rules).
    #[command(
        after_help = "Example (the shipped model's recipe, into runs/ so that the shipped one is kept):\n  \
stance train stance --ner-model models/ner --out runs/stance --layout sentence \\\n    \
--train data/stance/news/train-rounds1-3.jsonl --train data/stance/conll.jsonl:train \\\n    \
--tune data/stance/news/tune.jsonl --tune data/stance/conll.jsonl:dev --epochs 5\n\n\
Training files are gold JSON Lines (guidelines' format) or stand-off labels on CoNLL-2003 given as\n\
FILE:SPLIT. The --tune documents (without them, a share of the training ones: --holdout) pick the epoch and thresholds;\n\
score the result on dev with `stance eval stance --compare rules,model,auto`."
    )]
    Stance(TrainStanceArgs),
}

#[derive(Args)]
struct TrainStanceArgs {
    /// The trained entity model: it finds the candidate actors, its encoder
    /// states feed the target head, and the actor classifier starts from its weights.
    #[arg(long, default_value = "models/ner")]
    ner_model: PathBuf,
    /// Training data: gold JSON Lines, or stand-off CoNLL labels as FILE:SPLIT; repeat.
    #[arg(long, required = true)]
    train: Vec<String>,
    /// Output directory (actors/, targets.safetensors, stance.json).
    #[arg(long, default_value = "models/stance")]
    out: PathBuf,
    /// Epochs of the actor classifier.
    #[arg(long, default_value_t = 7, value_parser = at_least(1))]
    epochs: usize,
    /// Peak learning rate of the actor classifier's encoder.
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Epochs of the target head.
    #[arg(long, default_value_t = 30, value_parser = at_least(1))]
    target_epochs: usize,
    /// Candidates per step.
    #[arg(long, default_value_t = 16, value_parser = at_least(1))]
    batch_size: usize,
    /// Share of negative candidates (mentions that are no actor) seen per epoch.
    #[arg(long, default_value_t = 0.4)]
    negatives: f64,
    /// Keep the actor classifier already in OUT/actors; refit thresholds and the target head.
    #[arg(long)]
    reuse_actors: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Tuning data (same forms as --train; repeat): picks the epoch, the thresholds and the
    /// hybrid's floors and is never trained on. Without it, --holdout of the training
    /// documents is held back instead.
    #[arg(long)]
    tune: Vec<String>,
    /// Share of training documents held back to choose thresholds and fit the hybrid
    /// (only without --tune).
    #[arg(long, default_value_t = 0.15)]
    holdout: f64,
    /// Training target of a statement marked ambiguous (its label's probability); the
    /// annotators could go either way, so neither 0 nor 1 is the truth.
    #[arg(long, default_value_t = 0.5)]
    ambiguous_target: f32,
    /// Loss weight of positive examples.
    #[arg(long, default_value_t = 2.0)]
    positive_weight: f64,
    /// How the actor classifier reads candidates: one encoder pass per candidate, or one per
    /// sentence with every candidate marked (several times cheaper).
    #[arg(long, value_enum, default_value_t = stance::stance::markers::MarkerLayout::Candidate)]
    layout: stance::stance::markers::MarkerLayout,
    /// With the sentence layout, do not train the actor classifier's own target scorer
    /// (targets then come from the separate head over the entity model's states).
    #[arg(long)]
    no_pair_targets: bool,
    /// Weight of the target scorer's loss beside the labels' loss.
    #[arg(long, default_value_t = 1.0)]
    target_weight: f64,
    /// Sentences before each candidate's sentence that the actor classifier also reads.
    #[arg(long, default_value_t = 0)]
    context_sentences: usize,
    /// Worker threads.
    #[arg(long, value_parser = at_least(1))]
    threads: Option<usize>,
}

#[derive(Args)]
struct TrainNerArgs {
    /// Base encoder directory (config.json, tokenizer.json, model.safetensors).
    #[arg(long, default_value = "models/base")]
    base: PathBuf,
    /// Training file(s) in CoNLL format; repeat to train on several.
    #[arg(long, required = true)]
    train: Vec<PathBuf>,
    /// Development file, scored after each epoch; the best epoch is kept.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Output directory for the trained model.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 3, value_parser = at_least(1))]
    epochs: usize,
    /// Peak learning rate (after warm-up; decays linearly to 0).
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Windows per step.
    #[arg(long, default_value_t = 16, value_parser = at_least(1))]
    batch_size: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after this many minutes, saving a checkpoint to resume from.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Continue the run saved in OUT/resume.
    #[arg(long)]
    resume: bool,
    /// Window length in wordpieces: the document context each token sees.
    #[arg(long, default_value_t = 256)]
    context: usize,
    /// Share of steps for the learning-rate warm-up.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Largest global gradient norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Leave out the word-shape (casing) embedding.
    #[arg(long)]
    no_casing: bool,
    /// Worker threads (one per core by default).
    #[arg(long, value_parser = at_least(1))]
    threads: Option<usize>,
    /// Train on the first N documents only (quick trials).
    #[arg(long)]
    limit_docs: Option<usize>,
    /// Minutes between resumable checkpoints.
    #[arg(long, default_value_t = 10.0)]
    checkpoint_minutes: f64,
    /// Store the released weights in half precision (f16).
    #[arg(long)]
    half: bool,
}

#[derive(Args)]
struct ClassifyArgs {
    /// Input files or directories; '-' or none reads standard input. `.jsonl` files are read as
    /// JSON Lines; a directory gives the .txt and .jsonl files below it, in path order.
    files: Vec<PathBuf>,
    /// Output format: table for reading, html (one page), json (an object, or an array for several
    /// documents), jsonl (one per line), conll (tokens and IOB2 tags), tsv (one statement a row).
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
    /// Entity model: a checkpoint directory, or a Hugging Face Hub id ORG/NAME[@REVISION]
    /// (from the local cache; HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE=1 are honoured).
    /// Default: the model shipped under models/ (see `stance models`).
    #[arg(long, value_name = "DIR|ORG/NAME[@REV]")]
    model: Option<String>,
    /// Stance model (a directory made by `stance train stance`). Default: models/stance.
    #[arg(long, value_name = "DIR")]
    stance_model: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// How the transformer runs.
#[derive(Args, Clone)]
struct RunArgs {
    /// How word-piece predictions become words, as the Hugging Face pipeline's aggregation_strategy.
    #[arg(long, value_enum, default_value_t = Aggregation::First)]
    aggregation: Aggregation,
    /// Windows per batch (length-sorted).
    #[arg(long, default_value_t = 32, value_parser = at_least(1))]
    batch_size: usize,
    /// Longest window in word pieces, at least 16 and at most the model's limit
    /// (default: the context the model was trained with).
    #[arg(long, value_parser = at_least(16))]
    context: Option<usize>,
    /// Word pieces shared by consecutive windows of a long text; each token is read from
    /// the window where it sits most central.
    #[arg(long, default_value_t = 64)]
    stride: usize,
    /// CPU threads (default: every core).
    #[arg(long, value_parser = at_least(1))]
    threads: Option<usize>,
    /// workers: one single-threaded worker per thread, each on its own batches;
    /// intra: one batch at a time, each matrix product split over the threads.
    #[arg(long, value_enum, default_value_t = Parallelism::Workers)]
    parallelism: Parallelism,
}

impl RunArgs {
    /// Inference options; also sets the thread count candle reads (call before any model work).
    fn options(&self) -> InferenceOptions {
        let threads = self.threads.unwrap_or_else(threads::available).max(1);
        threads::configure(threads, self.parallelism);
        InferenceOptions {
            batch_size: self.batch_size.max(1),
            context: self.context,
            stride: self.stride,
            aggregation: self.aggregation,
            threads,
            parallelism: self.parallelism,
        }
    }
}

impl BackendArgs {
    fn model_choice(&self) -> ModelChoice {
        ModelChoice {
            spec: self.model.clone(),
            stance: self.stance_model.clone(),
            options: self.run.options(),
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

/// A clap parser for a count of at least `min` (a usage error, exit 2, below it).
fn at_least(min: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..)
}

fn main() -> ExitCode {
    // Keep freed pages mapped: a training step frees and reallocates the same
    // large buffers, and returning them to the kernel means zeroing them again
    // (measured: 18% more training throughput).
    // `mi_option_purge_delay` is 15 in mimalloc 2 and 3 (the binding does not name it).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a plain integer option of the allocator; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let matches = Cli::command().long_version(long_version()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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

fn open_output(path: &Option<PathBuf>) -> Result<Box<dyn Write>> {
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
            .any(|s| s.format(args.input) == stance::input::InputFormat::Jsonl);
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
    let mut writer = DocWriter::with_options(args.format, open_output(&args.output)?, options);
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

fn load_gold_files(paths: &[PathBuf], split: Option<&str>) -> Result<Vec<eval_stance::GoldDoc>> {
    let splits: Vec<&str> = split.into_iter().collect();
    let mut gold = Vec::new();
    for p in paths {
        gold.extend(stance::stance::data::load_any(p, &splits)?);
    }
    Ok(gold)
}

/// Runs a pipeline over gold documents; optionally writes the predicted documents.
fn predict(
    pipeline: &Pipeline,
    gold: &[eval_stance::GoldDoc],
    predictions: Option<&PathBuf>,
    quiet: bool,
) -> Result<Vec<Vec<eval_stance::Predicted>>> {
    let progress = term::progress(quiet, "documents");
    let mut preds = Vec::with_capacity(gold.len());
    let mut pred_out = match predictions {
        Some(p) => Some(DocWriter::new(
            OutputFormat::Jsonl,
            open_output(&Some(p.clone()))?,
        )),
        None => None,
    };
    for g in gold {
        let doc = pipeline.analyze(&g.id, &g.text)?;
        preds.push(eval_stance::Predicted::from_document(&doc));
        if let Some(w) = pred_out.as_mut() {
            w.write(doc, &g.text)?;
        }
        progress.inc(1);
    }
    term::finish(&progress);
    if let Some(w) = pred_out {
        w.finish()?;
    }
    Ok(preds)
}

/// Writes gold documents as JSON Lines (the guidelines' format).
fn write_gold(path: &Path, gold: &[eval_stance::GoldDoc]) -> Result<()> {
    let mut w = open_output(&Some(path.to_path_buf()))?;
    for g in gold {
        serde_json::to_writer(&mut w, g)?;
        writeln!(w)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn eval_stance_cmd(args: EvalStanceArgs, g: Globals) -> Result<ExitCode> {
    let gold = load_gold_files(&args.data, args.split.as_deref())?;
    if let Some(path) = &args.gold_out {
        write_gold(path, &gold)?;
    }
    let mut out = io::stdout().lock();
    if !args.compare.is_empty() {
        let mut reports = Vec::new();
        for &choice in &args.compare {
            // The rules read no model: the models named are for the other backends.
            let rules = choice == BackendChoice::Rules;
            let backend = BackendArgs {
                backend: choice,
                model: args.backend.model.clone().filter(|_| !rules),
                stance_model: args.backend.stance_model.clone().filter(|_| !rules),
                run: args.backend.run.clone(),
            };
            let pipeline = build_pipeline(&backend)?;
            let preds = predict(&pipeline, &gold, None, g.quiet)?;
            let mut report = eval_stance::score(&gold, &preds);
            if !args.errors {
                report.errors.clear();
            }
            reports.push((
                choice.as_str().to_string(),
                pipeline.backend().as_str(),
                report,
            ));
        }
        match args.format {
            ReportFormat::Json => {
                let map: serde_json::Map<String, serde_json::Value> = reports
                    .iter()
                    .map(|(name, _, r)| Ok((name.clone(), serde_json::to_value(r)?)))
                    .collect::<Result<_>>()?;
                serde_json::to_writer_pretty(&mut out, &map)?;
                writeln!(out)?;
            }
            ReportFormat::Table => write!(
                out,
                "{}",
                eval_stance::format_comparison(&reports, gold.len())
            )?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pipeline = build_pipeline(&args.backend)?;
    let preds = predict(&pipeline, &gold, args.predictions.as_ref(), g.quiet)?;
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
    let threads = args.threads.unwrap_or_else(threads::available);
    threads::configure(threads, Parallelism::Workers);
    let train = stance::stance::train::load_sources(&args.train)?;
    let tune = stance::stance::train::load_sources(&args.tune)?;
    eprintln!(
        "{} training documents, {} tuning documents",
        train.len(),
        tune.len()
    );
    let options = InferenceOptions {
        threads,
        ..Default::default()
    };
    let tagger = stance::model::load_tagger(Some(&args.ner_model.display().to_string()), options)?;
    let opts = stance::stance::train::StanceTrainOptions {
        ner_model: args.ner_model,
        out: args.out,
        epochs: args.epochs,
        lr: args.lr,
        target_epochs: args.target_epochs,
        hidden: 128,
        seed: args.seed,
        holdout: args.holdout,
        ambiguous_target: args.ambiguous_target,
        layout: args.layout,
        pair_targets: !args.no_pair_targets,
        target_weight: args.target_weight,
        context: args.context_sentences,
        positive_weight: args.positive_weight,
        negatives: args.negatives,
        reuse_actors: args.reuse_actors,
        batch_size: args.batch_size,
        threads,
        progress: !g.quiet && io::stderr().is_terminal(),
    };
    let mut sources = args.train.clone();
    sources.extend(args.tune.iter().map(|t| format!("tune: {t}")));
    stance::stance::train::train_stance(&opts, &train, &tune, sources, &tagger, &mut |l| {
        eprintln!("{l}")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn train_ner_cmd(args: TrainNerArgs, g: Globals) -> Result<ExitCode> {
    let threads = args.threads.unwrap_or_else(threads::available);
    threads::configure(threads, Parallelism::Workers);
    let opts = stance::model::train::TrainOptions {
        base: args.base,
        train: args.train,
        dev: args.dev,
        out: args.out,
        epochs: args.epochs,
        lr: args.lr,
        batch_size: args.batch_size,
        seed: args.seed,
        max_minutes: args.max_minutes,
        resume: args.resume,
        warmup: args.warmup,
        weight_decay: args.weight_decay,
        clip: args.clip,
        context: args.context,
        casing: !args.no_casing,
        threads,
        limit_docs: args.limit_docs,
        checkpoint_minutes: args.checkpoint_minutes,
        half: args.half,
        progress: !g.quiet && io::stderr().is_terminal(),
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
    let models = stance::model::source::list_local();
    let mut out = io::stdout().lock();
    if models.is_empty() {
        writeln!(out, "no models found; the rules backend will be used")?;
        writeln!(
            out,
            "(looked in: {})",
            stance::model::source::models_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    for m in models {
        let labels = stance::model::checkpoint::Checkpoint::open(&m.path)
            .map(|c| c.labels.join(" "))
            .unwrap_or_else(|e| format!("(unusable: {e})"));
        writeln!(
            out,
            "{} {:<28} {}\n    labels: {}",
            if m.default { "*" } else { " " },
            m.name,
            m.path.display(),
            labels
        )?;
    }
    // Stance models: directories with a stance.json (the first one found is the default).
    let mut default_shown = false;
    let mut seen = std::collections::HashSet::new();
    for dir in stance::model::source::models_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut dirs: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("stance.json").is_file())
            .filter(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())))
            .collect();
        dirs.sort();
        for path in dirs {
            let about = std::fs::read_to_string(path.join("stance.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .map(|v| {
                    let data = v["trained_on"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    format!("stance heads; trained on: {data}")
                })
                .unwrap_or_else(|| "(unusable: stance.json does not parse)".into());
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let default = !default_shown && name == "stance";
            default_shown |= default;
            let mark = if default { "*" } else { " " };
            writeln!(out, "{mark} {name:<28} {}\n    {about}", path.display())?;
        }
    }
    writeln!(
        out,
        "\n* marks the defaults, loaded when no --model or --stance-model is given."
    )?;
    Ok(ExitCode::SUCCESS)
}

/// One measured configuration of `stance bench`.
#[derive(serde::Serialize, serde::Deserialize)]
struct BenchRow {
    threads: usize,
    batch_size: usize,
    parallelism: String,
    sentences: usize,
    words: usize,
    wordpieces: usize,
    seconds: f64,
    wordpieces_per_second: f64,
    words_per_second: f64,
    /// Word pieces plus [CLS] and [SEP] of every sentence: what the encoder reads, and
    /// what Python peers count.
    #[serde(default)]
    tokens: usize,
    /// `tokens` over `seconds` (tokenization and forward pass).
    #[serde(default)]
    tokens_per_second: f64,
    /// Tokenizing the workload alone (part of `seconds`).
    #[serde(default)]
    tokenize_seconds: f64,
    /// `tokens` over the forward pass alone (`seconds` less `tokenize_seconds`).
    #[serde(default)]
    forward_tokens_per_second: f64,
    /// Loading the model (config, tokenizer, weights).
    #[serde(default)]
    load_seconds: f64,
    /// Peak resident memory of the measuring process, where the OS says it (Linux).
    #[serde(default)]
    peak_rss_mb: Option<f64>,
}

/// Special tokens around each sentence: [CLS] and [SEP].
const SPECIAL_TOKENS_PER_SEQUENCE: usize = 2;

/// Peak resident set size of this process in MB (`VmHWM` in /proc/self/status).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

fn bench_cmd(args: BenchArgs) -> Result<ExitCode> {
    let data = match (&args.pipeline, &args.data) {
        (Some(corpus), _) => return bench_pipeline(corpus, &args),
        (None, Some(data)) => data.clone(),
        (None, None) => anyhow::bail!("bench needs --data FILE.conll or --pipeline CORPUS.jsonl"),
    };
    if args.single {
        let (t, b, p) = (args.threads[0], args.batch_sizes[0], args.parallelism[0]);
        threads::configure(t, p);
        let options = InferenceOptions {
            batch_size: b,
            threads: t,
            parallelism: p,
            ..Default::default()
        };
        let loading = std::time::Instant::now();
        let tagger = stance::model::load_tagger(args.model.as_deref(), options)?;
        let load_seconds = loading.elapsed().as_secs_f64();
        let docs = stance::conll::read(&data)?;
        let sentences: Vec<&stance::conll::Sentence> = docs
            .iter()
            .flat_map(|d| &d.sentences)
            .take(args.sentences)
            .collect();
        let mut text = String::new();
        let mut units = Vec::new();
        for s in &sentences {
            let start = text.len();
            text.push_str(&s.words.join(" "));
            units.push(stance::span::Span::new(start, text.len()));
            text.push('\n');
        }
        let tokenizing = std::time::Instant::now();
        let wordpieces: usize = units
            .iter()
            .map(|u| {
                tagger
                    .text_encoder()
                    .encode(&text, *u)
                    .map(|t| t.len())
                    .unwrap_or(0)
            })
            .sum();
        let tokenize_seconds = tokenizing.elapsed().as_secs_f64();
        tagger.probabilities(&text, &units[..units.len().min(16)])?; // warm-up
        let started = std::time::Instant::now();
        tagger.probabilities(&text, &units)?;
        let seconds = started.elapsed().as_secs_f64();
        let words = sentences.iter().map(|s| s.words.len()).sum::<usize>();
        let tokens = wordpieces + SPECIAL_TOKENS_PER_SEQUENCE * units.len();
        let row = BenchRow {
            threads: t,
            batch_size: b,
            parallelism: p.as_str().to_string(),
            sentences: sentences.len(),
            words,
            wordpieces,
            seconds,
            wordpieces_per_second: (wordpieces as f64 / seconds).round(),
            words_per_second: (words as f64 / seconds).round(),
            tokens,
            tokens_per_second: (tokens as f64 / seconds).round(),
            tokenize_seconds,
            forward_tokens_per_second: (tokens as f64 / (seconds - tokenize_seconds).max(1e-9))
                .round(),
            load_seconds,
            peak_rss_mb: peak_rss_mb(),
        };
        println!("{}", serde_json::to_string(&row)?);
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for &p in &args.parallelism {
        for &t in &args.threads {
            for &b in &args.batch_sizes {
                let mut cmd = std::process::Command::new(&exe);
                cmd.arg("bench").arg("--single").arg("--data").arg(&data);
                cmd.args([
                    "--sentences",
                    &args.sentences.to_string(),
                    "--threads",
                    &t.to_string(),
                ]);
                cmd.args(["--batch-sizes", &b.to_string(), "--parallelism", p.as_str()]);
                if let Some(m) = &args.model {
                    cmd.args(["--model", m]);
                }
                let out = cmd.output().context("running a bench configuration")?;
                if !out.status.success() {
                    // The child already said what failed; say it once, with the configuration.
                    let said = String::from_utf8_lossy(&out.stderr);
                    let said = said.trim().trim_start_matches("error: ");
                    anyhow::bail!("{} ({:?}, {t} threads, batch {b})", said, p);
                }
                let row: BenchRow =
                    serde_json::from_slice(&out.stdout).context("reading a bench result")?;
                if rows.is_empty() && row.sentences < args.sentences {
                    term::warn(format!(
                        "{} holds {} sentences, fewer than --sentences {}: measuring those",
                        data.display(),
                        row.sentences,
                        args.sentences
                    ));
                }
                if args.format == ReportFormat::Table {
                    eprintln!(
                        "{:<8} threads {t}  batch {b:>3}: {:>7.0} tokens/s with [CLS]/[SEP] ({:>7.0} forward only)  {:>7.0} words/s  ({:.2} s, tokenizing {:.2} s; load {:.2} s; peak RSS {} MB)",
                        row.parallelism,
                        row.tokens_per_second,
                        row.forward_tokens_per_second,
                        row.words_per_second,
                        row.seconds,
                        row.tokenize_seconds,
                        row.load_seconds,
                        row.peak_rss_mb.map_or("?".into(), |m| format!("{m:.0}"))
                    );
                }
                rows.push(row);
            }
        }
    }
    if args.format == ReportFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `stance bench --pipeline`: the default `classify` path over a JSON Lines corpus, timed
/// per stage, at the first of `--threads` and `--batch-sizes`.
fn bench_pipeline(corpus: &std::path::Path, args: &BenchArgs) -> Result<ExitCode> {
    let (t, b, p) = (args.threads[0], args.batch_sizes[0], args.parallelism[0]);
    threads::configure(t, p);
    let choice = stance::pipeline::ModelChoice {
        spec: args.model.clone(),
        stance: None,
        options: InferenceOptions {
            batch_size: b,
            threads: t,
            parallelism: p,
            ..Default::default()
        },
    };
    let loading = std::time::Instant::now();
    let (pipeline, note) = Pipeline::for_backend(stance::BackendChoice::Auto, &choice)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    if let Some(note) = note {
        term::warn(note);
    }
    let source = Source::File(corpus.to_path_buf());
    let opts = ReadOptions {
        format: stance::input::InputFormat::Jsonl,
        lossy: false,
    };
    let mut times = stance::pipeline::StageTimes::default();
    let (mut documents, mut words) = (0usize, 0usize);
    let started = std::time::Instant::now();
    for record in input::read(&source, opts) {
        let record = record?;
        let doc = pipeline.analyze_timed(&record.id, &record.text, &mut times)?;
        let writing = std::time::Instant::now();
        let line = serde_json::to_string(&doc)?;
        std::hint::black_box(line);
        times.output += writing.elapsed().as_secs_f64();
        documents += 1;
        words += record.text.split_whitespace().count();
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "corpus": corpus.display().to_string(),
        "backend": pipeline.backend().as_str(),
        "threads": t,
        "batch_size": b,
        "parallelism": p.as_str(),
        "documents": documents,
        "words": words,
        "seconds": seconds,
        "words_per_second": (words as f64 / seconds).round(),
        "load_seconds": load_seconds,
        "stages": times,
        "peak_rss_mb": peak_rss_mb(),
    });
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Table => {
            println!(
                "{documents} documents, {words} words in {seconds:.2} s: {:.0} words/s (backend {}, {t} threads, batch {b}; load {load_seconds:.2} s)",
                words as f64 / seconds,
                pipeline.backend().as_str()
            );
            for (stage, s) in times.rows() {
                println!("  {stage:<9} {s:>9.3} s  {:>5.1}%", 100.0 * s / seconds);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn half_cmd(src: &std::path::Path, dst: &std::path::Path) -> Result<ExitCode> {
    stance::model::checkpoint::export_half(src, dst)?;
    eprintln!("wrote {} (f16 weights)", dst.display());
    Ok(ExitCode::SUCCESS)
}
