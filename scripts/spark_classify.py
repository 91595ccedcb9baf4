#!/usr/bin/env python3
"""Classify a JSON Lines corpus with Apache Spark, through stance's streaming mode.

Each Spark partition is streamed through ONE long-lived `stance classify --input jsonl --format jsonl`
process (the models load once per partition, never once per record); the documents it writes become
JSON Lines part files in OUT_DIR (part-00000, part-00001, ... in input order, plus Spark's _SUCCESS).

  spark_classify.py --input corpus.jsonl --output out/                      # local[*], default backend
  spark_classify.py --input corpus.jsonl --output out/ --master 'local[2]' --partitions 8 -- --backend rules
  spark-submit --master yarn ... scripts/spark_classify.py --input hdfs:///news.jsonl --output hdfs:///out
                                                                            # a cluster: see docs/scale.md

Input: one {"id": ..., "text": ...} object per line (a file, a directory or a glob that Spark can read).
Output: one stance document per non-blank input line, exactly once (see README.md for the document).
  - A record stance cannot analyse comes back with an `error` field (stance's own failed document).
  - A line that is not a JSON object, or lacks a string "text" (what `stance classify --skip-bad-lines`
    would skip with a warning), also comes back once: {"id", "error", "line", ...} with empty lists.
    Its id is the record's own, or INPUT:LINE (1-based) as stance names records without an id.
  - Blank lines are not records (stance skips them too).
  A stance process that crashes or stops early makes the task fail, and Spark runs it again; the
  output committer keeps only one successful attempt per partition, so a retry never duplicates lines.

The binary: --stance-bin, else $STANCE_BIN, else `stance` on PATH; on executors a relative path or
bare name is also looked for in the working directory and Spark's files directory (--files/--archives).
Models: --models or $STANCE_MODELS (resolved the same way), else models/ beside the binary.

Exit codes: 0 every record analysed; 1 some records came back with an `error` field, or the job
failed; 2 usage error (bad options, missing input, existing output, binary not found).
"""
import argparse
import collections
import glob
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Options of `stance classify` that this script sets itself.
RESERVED = {"-f", "--format", "-i", "--input", "-o", "--output"}

# Lines of stance's standard error kept for error messages.
STDERR_TAIL = 40


class UsageError(Exception):
    pass


# ------------------------------------------------------------------------------- records


def _reject_constant(name):
    # serde_json (which stance uses) has no NaN or Infinity; Python's json would accept them.
    raise ValueError(f"invalid number {name}")


def _id_string(value):
    """The id as stance writes it: a string as is, an integer in decimal; None when absent or null.
    Raises ValueError for any other type."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError('"id" must be a string or a number')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise ValueError('"id" must be a string or a number')


def error_document(doc_id, message, line):
    """A record that never reached stance: the document's lists empty, the reason in `error`."""
    return {
        "id": doc_id,
        "backend": None,
        "entities": [],
        "actors": [],
        "statements": [],
        "sentences": [],
        "chars": 0,
        "error": message,
        "line": line,
    }


def prepare(line, lineno, source):
    """One input line -> None (blank: not a record), ("ok", id, payload) where payload is the
    normalised JSON line for stance, or ("err", id, error_document_json)."""
    if not line.strip():
        return None
    where = f"{source}:{lineno}"
    fallback_id = where
    try:
        value = json.loads(line, parse_constant=_reject_constant)
    except ValueError as e:
        return ("err", fallback_id, _dump(error_document(fallback_id, f"{where}: malformed JSON: {e}", lineno)))
    if not isinstance(value, dict):
        msg = f'{where}: expected a JSON object like {{"id": ..., "text": ...}}'
        return ("err", fallback_id, _dump(error_document(fallback_id, msg, lineno)))
    try:
        doc_id = _id_string(value.get("id"))
    except ValueError as e:
        return ("err", fallback_id, _dump(error_document(fallback_id, f"{where}: {e}", lineno)))
    if doc_id is None:
        doc_id = fallback_id
    text = value.get("text")
    problem = None
    if "text" not in value:
        problem = 'missing "text" field'
    elif not isinstance(text, str):
        problem = '"text" must be a string'
    else:
        try:
            # Lone surrogates ("\ud800") parse in Python but are not Unicode text; stance refuses them.
            text.encode("utf-8")
            doc_id.encode("utf-8")
        except UnicodeEncodeError:
            problem = "malformed JSON: a lone surrogate in a \\u escape"
    if problem:
        return ("err", doc_id, _dump(error_document(doc_id, f"{where}: {problem}", lineno)))
    return ("ok", doc_id, _dump({"id": doc_id, "text": text}))


def _dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


_DECODER = {}  # filled on first use: a decoder cannot be pickled to the executors


def output_id(line):
    """The `id` of a document line written by stance (the first field; a full parse otherwise)."""
    if line.startswith('{"id":'):
        try:
            decoder = _DECODER.setdefault("id", json.JSONDecoder())
            value, _ = decoder.raw_decode(line, 6)
            if isinstance(value, str):
                return value
        except ValueError:
            pass
    doc = json.loads(line)
    return doc.get("id")


def has_error(line):
    # A quote inside a JSON string is escaped, so `"error":` can only be a key; stance's documents
    # have no other key of that name.
    return '"error":' in line


# ------------------------------------------------------------------------- executor side


def _spark_files_dir():
    try:
        from pyspark import SparkFiles

        return SparkFiles.getRootDirectory()
    except Exception:  # not inside Spark, or no SparkContext files yet
        return None


def resolve_path(path, want_executable=False):
    """An absolute path for `path` on this machine: as is when absolute; a relative path in the
    working directory or Spark's files directory; a bare command name also on PATH. None if absent."""
    if os.path.isabs(path):
        return path if os.path.exists(path) else None
    roots = [os.getcwd()]
    files = _spark_files_dir()
    if files:
        roots.append(files)
    for root in roots:
        p = os.path.join(root, path)
        if os.path.exists(p):
            if want_executable and os.path.isfile(p) and not os.access(p, os.X_OK):
                # --files copies may lose the executable bit.
                try:
                    os.chmod(p, os.stat(p).st_mode | 0o755)
                except OSError:
                    pass
            return os.path.abspath(p)
    if want_executable and os.sep not in path:
        return shutil.which(path)
    return None


class StanceFailed(RuntimeError):
    """The stance process crashed or its output does not account for every record: Spark retries."""


def classify_partition(cfg, rows):
    """Streams one partition's (line, index) rows through one stance process; yields one JSON line
    per non-blank input line, in input order."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return  # an empty partition starts no process (and loads no model)
    rows = itertools.chain([first], rows)
    binary = resolve_path(cfg["bin"], want_executable=True)
    if binary is None:
        raise StanceFailed(
            f"stance binary {cfg['bin']!r} not found on executor (cwd {os.getcwd()}, "
            f"Spark files {_spark_files_dir()}, PATH); set STANCE_BIN or ship it with --files/--archives"
        )
    env = dict(os.environ)
    if cfg.get("models"):
        models = resolve_path(cfg["models"])
        if models is None:
            raise StanceFailed(f"models directory {cfg['models']!r} not found on executor")
        env["STANCE_MODELS"] = models
    cmd = [binary, "classify", "--input", "jsonl", "--format", "jsonl", "--skip-bad-lines", *cfg["stance_args"]]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    pending = queue.Queue()
    END = object()
    writer_error = []
    stderr_tail = collections.deque(maxlen=STDERR_TAIL)

    def feed():
        try:
            for line, index in rows:
                item = prepare(line, index + 1, cfg["source"])
                if item is None:
                    continue
                # Queue before writing: the reader must know what to expect before stance answers.
                pending.put(item)
                if item[0] == "ok":
                    proc.stdin.write(item[2].encode("utf-8") + b"\n")
        except BrokenPipeError as e:
            writer_error.append(e)  # stance stopped reading: judged below by its exit code
            for line, index in rows:  # the remaining records still need their places
                item = prepare(line, index + 1, cfg["source"])
                if item is not None:
                    pending.put(item)
        except BaseException as e:  # noqa: BLE001 - reported in the task's error
            writer_error.append(e)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass
            pending.put(END)

    def drain_stderr():
        for raw in proc.stderr:
            stderr_tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=drain_stderr, daemon=True)]
    for t in threads:
        t.start()

    def why():
        tail = "\n".join(stderr_tail)
        return f"\n{' '.join(cmd)}\nstance's standard error (last lines):\n{tail}" if tail else f"\n{' '.join(cmd)}"

    finished = False
    try:
        out = (raw.decode("utf-8").rstrip("\n") for raw in proc.stdout)
        lookahead = None  # a stance line read while looking for a record it skipped
        skipped, failed = 0, 0
        while True:
            item = pending.get()
            if item is END:
                break
            kind, doc_id, payload = item
            if kind == "err":
                yield payload
                continue
            line = lookahead if lookahead is not None else next(out, None)
            lookahead = None
            if line is not None and output_id(line) == doc_id:
                if has_error(line):
                    failed += 1
                yield line
                continue
            # stance wrote nothing for this record (it skipped it, or it stopped): its place is
            # kept with an error; whether that is acceptable is decided from the exit code below.
            lookahead = line
            skipped += 1
            yield _dump(error_document(doc_id, f"stance skipped this record (see its warnings): {doc_id}", None))
        extra = lookahead if lookahead is not None else next(out, None)
        for t in threads:
            t.join()
        rc = proc.wait()
        finished = True
        if writer_error and not isinstance(writer_error[0], BrokenPipeError):
            raise StanceFailed(f"feeding stance failed: {writer_error[0]!r}{why()}")
        if rc < 0:
            raise StanceFailed(f"stance was killed by signal {-rc}{why()}")
        if rc not in (0, 1):
            raise StanceFailed(f"stance exited with status {rc}{why()}")
        if extra is not None:
            raise StanceFailed(f"stance wrote a document no record asked for (id {output_id(extra)!r}){why()}")
        if skipped:
            # Accept only records stance itself reports as unreadable and skipped; anything else
            # (a crash, a fatal error part-way) fails the task so Spark runs it again.
            said = re.search(r"(\d+) unreadable and skipped", "\n".join(stderr_tail))
            if rc != 1 or said is None or int(said.group(1)) != skipped:
                raise StanceFailed(f"stance stopped before writing {skipped} of the partition's documents{why()}")
        elif rc == 1 and failed == 0:
            raise StanceFailed(f"stance failed (exit 1) though every document was written without error{why()}")
    finally:
        if not finished:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------- from your own Spark code


def config(stance_bin=None, stance_args=(), models=None, threads=1, source="dataframe"):
    """Settings for classify_partition and pandas_batches, for use from your own Spark code.
    stance_bin and models are paths as seen by executors (default: $STANCE_BIN or `stance` on PATH,
    and $STANCE_MODELS or models/ beside the binary); threads is stance's --threads per process."""
    args = list(stance_args)
    if not any(a == "--threads" or a.startswith("--threads=") for a in args):
        args += ["--threads", str(threads)]
    return {
        "bin": stance_bin or os.environ.get("STANCE_BIN") or "stance",
        "models": models or os.environ.get("STANCE_MODELS") or None,
        "stance_args": args,
        "source": source,
    }


def _plain(value):
    """A pandas/NumPy cell as a plain Python value for JSON (missing values as None)."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # NumPy scalars
    if isinstance(value, float) and value != value:
        return None  # NaN: pandas' missing value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (ImportError, TypeError, ValueError):
        pass
    return value


def pandas_batches(cfg, batches, rows_per_batch=1000):
    """For DataFrame.mapInPandas: pandas DataFrames with columns "id" and "text" in (one partition's
    batches), DataFrames with "id" (string), "doc" (the document as JSON) and "error" (null unless
    the record failed) out, one row per input row, in order, through ONE stance process:

        df.mapInPandas(lambda it: pandas_batches(cfg, it), schema="id string, doc string, error string")

    A row without an id is named SOURCE#PARTITION:ROW (ROW 1-based within the partition)."""
    import pandas as pd

    part = 0
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else 0
    except ImportError:
        pass
    cfg = dict(cfg, source=f"{cfg.get('source', 'dataframe')}#{part}")

    def rows():
        k = 0
        for pdf in batches:
            for doc_id, text in zip(pdf["id"], pdf["text"]):
                yield _dump({"id": _plain(doc_id), "text": _plain(text)}), k
                k += 1

    out = []
    for line in classify_partition(cfg, rows()):
        out.append((output_id(line), line, json.loads(line).get("error") if has_error(line) else None))
        if len(out) >= rows_per_batch:
            yield pd.DataFrame(out, columns=["id", "doc", "error"])
            out = []
    if out:
        yield pd.DataFrame(out, columns=["id", "doc", "error"])


# ---------------------------------------------------------------------------- driver side


def parse_args(argv):
    if "--" in argv:
        cut = argv.index("--")
        own, stance_args = argv[:cut], argv[cut + 1 :]
    else:
        own, stance_args = argv, []
    p = argparse.ArgumentParser(
        prog="spark_classify.py",
        description="Classify a JSON Lines corpus ({\"id\", \"text\"} per line) with Apache Spark: each "
        "partition is streamed through one long-lived `stance classify --input jsonl --format jsonl` "
        "process, and every input record comes back exactly once in JSON Lines part files.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""arguments after `--` go to `stance classify` (not --format, --input, --output):
  spark_classify.py --input corpus.jsonl --output out --master 'local[2]' -- --backend rules
  spark_classify.py --input corpus.jsonl --output out --partitions 16 -- --batch-size 16

A record that fails comes back with an `error` field and is counted, never dropped. Without --master
the master comes from spark-submit, else it is local[*]; 'local[N,F]' retries a failed
task F-1 times in local mode (plain local[N] does not retry). The recipe for a cluster is in docs/scale.md.

exit codes: 0 every record analysed, 1 some records have an `error` field or the job failed, 2 usage error""",
    )
    p.add_argument("--input", required=True, metavar="IN", help="JSON Lines input: a file, directory or glob Spark can read (local path, hdfs://, s3a://, ...)")
    p.add_argument("--output", required=True, metavar="OUT_DIR", help="output directory for the part files; must not exist unless --overwrite")
    p.add_argument("--master", help="Spark master URL, e.g. local[2], local[2,4], spark://host:7077, yarn (default: from spark-submit, else local[*])")
    p.add_argument("--partitions", type=int, metavar="N", help="number of partitions, i.e. stance processes over the job (default: Spark's default parallelism, the total executor cores); each one loads the models once")
    p.add_argument("--stance-bin", metavar="PATH", help="the stance binary as seen by executors (default: $STANCE_BIN, else `stance` on PATH)")
    p.add_argument("--models", metavar="DIR", help="models directory as seen by executors, passed as STANCE_MODELS (default: $STANCE_MODELS, else models/ beside the binary)")
    p.add_argument("--overwrite", action="store_true", help="delete OUT_DIR first if it exists")
    p.add_argument("--compress", action="store_true", help="write gzip-compressed part files (part-00000.gz, ...)")
    p.add_argument("--quiet", action="store_true", help="no summary line on standard error")
    args = p.parse_args(own)
    args.stance_args = stance_args
    if args.partitions is not None and args.partitions < 1:
        p.error("--partitions must be at least 1")
    bad = [a for a in stance_args if a.split("=", 1)[0] in RESERVED or re.fullmatch(r"-[fio].+", a)]
    if bad:
        p.error(f"{' '.join(bad)}: the script sets stance's --input, --format and --output itself")
    return args


def _driver_binary(args):
    name = args.stance_bin or os.environ.get("STANCE_BIN") or "stance"
    found = name if os.path.isabs(name) and os.path.exists(name) else None
    if found is None and os.sep in name and os.path.exists(name):
        found = os.path.abspath(name)
    if found is None and os.sep not in name:
        found = shutil.which(name)
    return name, found


def _hadoop_fs(sc, path):
    jvm = sc._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(sc._jsc.hadoopConfiguration()), hpath


def _local_path(path):
    return path if "://" not in path and not path.startswith("file:") else None


def run(args):
    # Checks that need no Spark (local paths) come first: a usage error should not take a JVM start.
    if _local_path(args.input) and not glob.glob(args.input):
        raise UsageError(f"{args.input}: no such input")
    if _local_path(args.output) and os.path.exists(args.output) and not args.overwrite:
        raise UsageError(f"{args.output} already exists (pass --overwrite to replace it)")
    name, found = _driver_binary(args)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # started by spark-submit, master set there
    master = args.master or (None if under_submit else "local[*]")
    models = args.models or os.environ.get("STANCE_MODELS") or None

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError("PySpark is not installed: scripts/spark_env.sh makes a virtual environment with it")

    if master and master.startswith("local"):
        # Local Python workers must be this interpreter (the one that has PySpark).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("stance-classify")
    if not sys.stderr.isatty():
        builder = builder.config("spark.ui.showConsoleProgress", "false")  # no progress bars in logs
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel("WARN")
    try:
        if sc.master.startswith("local"):
            # Local executors share this machine: check now and pass absolute paths (an archive
            # given to spark-submit --archives is unpacked in the driver's Spark files directory).
            found = found or resolve_path(name, want_executable=True)
            if found is None:
                raise UsageError(
                    f"stance binary {name!r} not found: build it (cargo build --release) and pass "
                    "--stance-bin target/release/stance or set STANCE_BIN"
                )
            name = found
            if models:
                found_models = resolve_path(models)
                if found_models is None or not os.path.isdir(found_models):
                    raise UsageError(f"models directory {models!r} not found")
                models = found_models
        return _job(sc, args, name, models)
    finally:
        spark.stop()


def _count_lines(lines):
    n = records = 0
    for line in lines:
        n += 1
        records += bool(line.strip())
    yield (n, records)


def _job(sc, args, binary, models):
    start = time.time()
    fs, inp = _hadoop_fs(sc, args.input)
    if not fs.globStatus(inp):
        raise UsageError(f"{args.input}: no such input")
    ofs, outp = _hadoop_fs(sc, args.output)
    if ofs.exists(outp):
        if not args.overwrite:
            raise UsageError(f"{args.output} already exists (pass --overwrite to replace it)")
        ofs.delete(outp, True)

    # One stance process per task: unless told otherwise, it gets the task's cores (--threads).
    cfg = config(binary, args.stance_args, models, sc.getConf().get("spark.task.cpus", "1"), args.input)

    want = args.partitions or sc.defaultParallelism
    lines = sc.textFile(args.input, minPartitions=want)
    if lines.getNumPartitions() > want:
        lines = lines.coalesce(want)  # no shuffle: input order is kept
    partitions = lines.getNumPartitions()
    # One pass to count lines per partition: the line numbers of records without an id, and the
    # number of records the output must hold.
    counts = lines.mapPartitions(_count_lines).collect()
    offsets = list(itertools.accumulate([0] + [n for n, _ in counts[:-1]]))
    records = sum(r for _, r in counts)
    counted = time.time()

    def numbered(index, it):
        first = offsets[index]
        return classify_partition(cfg, ((line, first + k) for k, line in enumerate(it)))

    docs = lines.mapPartitionsWithIndex(numbered)
    codec = "org.apache.hadoop.io.compress.GzipCodec" if args.compress else None
    docs.saveAsTextFile(args.output, compressionCodecClass=codec)
    classified = time.time()

    # Count what was written (the committed output, not accumulators, which retries can inflate).
    written, errors = (
        sc.textFile(args.output).map(lambda l: (1, 1 if has_error(l) else 0)).fold((0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1]))
    )
    summary = {
        "output": args.output,
        "partitions": partitions,
        "records": records,
        "documents": written,
        "errors": errors,
        "seconds": round(classified - start, 3),
        "classify_seconds": round(classified - counted, 3),
    }
    print(json.dumps(summary))
    if not args.quiet:
        print(
            f"{written} documents from {records} records in {partitions} partitions, {errors} with an `error` field, "
            f"{summary['seconds']:.1f} s -> {args.output}",
            file=sys.stderr,
        )
    if written != records:
        print(f"error: {records} records in, {written} documents out", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if errors else EXIT_OK


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # a failed Spark job: one line, not the JVM's whole trace
        msg = [m.strip() for m in str(e).strip().splitlines() if m.strip()]
        first = next((m for m in msg if m.startswith("StanceFailed:")), None)
        first = first or next((m for m in msg if "Exception:" in m or "Error:" in m), None)
        first = first or (msg[0] if msg else repr(e))
        print(f"error: the Spark job failed: {first.strip()}", file=sys.stderr)
        if os.environ.get("STANCE_SPARK_DEBUG"):
            raise
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
