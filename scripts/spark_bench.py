#!/usr/bin/env python3
"""Throughput of scripts/spark_classify.py (Spark local mode) against a direct run of stance on the
same machine and the same corpus, back to back; prints a Markdown table (benches/README.md, Spark).

  scripts/spark_bench.py                                  # rules on 4,460 docs, default backend on 80
  scripts/spark_bench.py --rules-copies 2 --model-docs 20 # quicker

The corpus is the team's written articles (data/stance/written/*.jsonl), copied with new ids for the
rules runs. Each stance process is timed by /usr/bin/time through a wrapper (STANCE_BIN), so the
table also gives the time inside stance per partition; the rest of a Spark run's wall time is the
JVM, the Python workers and Spark's own jobs. Needs target/release/stance and scripts/spark_env.sh.
Exit codes: 0 done, 1 a run failed, 2 usage error.
"""
import argparse
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus(path, copies, limit=None):
    docs = []
    for f in sorted(glob.glob(os.path.join(ROOT, "data/stance/written/*.jsonl"))):
        stem = os.path.splitext(os.path.basename(f))[0]
        for line in open(f, encoding="utf-8"):
            d = json.loads(line)
            docs.append((f"{stem}/{d['id']}", d["text"]))
    if limit:
        docs = docs[:limit]
    words = 0
    with open(path, "w", encoding="utf-8") as out:
        for c in range(copies):
            for doc_id, text in docs:
                out.write(json.dumps({"id": f"{doc_id}#{c}", "text": text}, ensure_ascii=False) + "\n")
                words += len(text.split())
    return len(docs) * copies, words


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, env=None, stdin=None):
    t, c = time.perf_counter(), _children_cpu()
    p = subprocess.run(cmd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timed.cpu = _children_cpu() - c
    return time.perf_counter() - t, p


def stance_times(log):
    """(wall s, user+sys s, max RSS MB) of each stance process the wrapper timed."""
    rows = []
    if os.path.exists(log):
        for line in open(log):
            parts = line.split()
            if len(parts) == 4:
                rows.append((float(parts[0]), float(parts[1]) + float(parts[2]), int(parts[3]) / 1024))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules-copies", type=int, default=10, help="copies of the 446 written articles for the rules runs (default 10)")
    ap.add_argument("--model-docs", type=int, default=80, help="articles for the default-backend runs (default 80; 0 skips them)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of (direct, Spark with 2 partitions, Spark with 8), interleaved (default 2)")
    ap.add_argument("--stance-bin", default=os.path.join(ROOT, "target/release/stance"))
    args = ap.parse_args()
    if not os.access(args.stance_bin, os.X_OK):
        print(f"error: {args.stance_bin} not found (cargo build --release)", file=sys.stderr)
        return 2
    if not shutil.which("java") or not os.path.exists("/usr/bin/time"):
        print("error: java and /usr/bin/time are needed", file=sys.stderr)
        return 2
    env_py = subprocess.run([os.path.join(ROOT, "scripts/spark_env.sh")], stdout=subprocess.PIPE, text=True)
    if env_py.returncode != 0:
        return 1
    python = os.path.join(ROOT, env_py.stdout.strip())
    work = tempfile.mkdtemp(prefix="spark-bench-")
    rows = []

    def direct(label, path, n, words, backend):
        t, p = timed([args.stance_bin, "classify", "--input", "jsonl", "--format", "jsonl", "--backend", backend, "--threads", "2", "-o", os.devnull, path])
        if p.returncode != 0:
            raise SystemExit(f"direct run failed: {p.stderr}")
        rows.append((label, "direct, --threads 2", n, words, t, t, [(t, timed.cpu, None)]))

    def spark(label, path, n, words, backend, partitions):
        log = os.path.join(work, f"times-{len(rows)}.txt")
        wrapper = os.path.join(work, "stance-timed")
        with open(wrapper, "w") as w:
            w.write(f"#!/bin/sh\nexec /usr/bin/time -a -o \"$STANCE_TIME_LOG\" -f '%e %U %S %M' '{args.stance_bin}' \"$@\"\n")
        os.chmod(wrapper, 0o755)
        out = os.path.join(work, f"out-{len(rows)}")
        env = dict(os.environ, STANCE_BIN=wrapper, STANCE_TIME_LOG=log)
        env.pop("PYSPARK_PYTHON", None)
        cmd = [python, os.path.join(ROOT, "scripts/spark_classify.py"), "--input", path, "--output", out,
               "--master", "local[2]", "--partitions", str(partitions), "--quiet", "--", "--backend", backend]
        t, p = timed(cmd, env=env)
        if p.returncode != 0:
            raise SystemExit(f"spark run failed ({p.returncode}): {p.stderr[-3000:]}")
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        assert summary["documents"] == n and summary["errors"] == 0, summary
        procs = stance_times(log)
        rows.append((label, f"Spark local[2], {partitions} partitions", n, words, t, summary["classify_seconds"], procs))

    one = os.path.join(work, "one.jsonl")
    with open(one, "w") as f:
        f.write(json.dumps({"id": "one", "text": "Paris accused Rome of fraud."}) + "\n")

    def startup(backend):
        samples = []
        for _ in range(3):
            t, p = timed([args.stance_bin, "classify", "--input", "jsonl", "--format", "jsonl", "--backend", backend, "--threads", "1",
                          "-o", os.devnull, one])
            samples.append(t)
        return statistics.median(samples)

    rules = os.path.join(work, "rules.jsonl")
    n, words = corpus(rules, args.rules_copies)
    print(f"rules corpus: {n} docs, {words} words; model corpus: {args.model_docs} docs", file=sys.stderr)
    start_rules, start_auto = startup("rules"), startup("auto")
    for _ in range(args.repeat):
        direct("rules", rules, n, words, "rules")
        spark("rules", rules, n, words, "rules", 2)
        spark("rules", rules, n, words, "rules", 8)
    if args.model_docs:
        model = os.path.join(work, "model.jsonl")
        m, mwords = corpus(model, 1, args.model_docs)
        for _ in range(args.repeat):
            direct("auto (default)", model, m, mwords, "auto")
            spark("auto (default)", model, m, mwords, "auto", 2)
            spark("auto (default)", model, m, mwords, "auto", 8)

    print(f"stance start-up and one short document, median of 3: rules {start_rules:.3f} s, auto (loads both models) {start_auto:.2f} s\n")
    print("| backend | run | docs | words | wall s | docs/s | words/s | classify job s (no JVM start, no counting pass) | stance processes: wall s each (min-max), CPU s total, max RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, run, n, words, wall, job, procs in rows:
        proc = "-" if procs is None else (
            f"{len(procs)}: {min(p[0] for p in procs):.2f}-{max(p[0] for p in procs):.2f}, {sum(p[1] for p in procs):.1f}"
            + (f", {max(p[2] for p in procs):.0f}" if procs[0][2] is not None else "") if procs else "0")
        print(f"| {label} | {run} | {n} | {words} | {wall:.2f} | {n / wall:.1f} | {words / wall:.0f} | {job:.2f} | {proc} |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
