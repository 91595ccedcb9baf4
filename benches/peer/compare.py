#!/usr/bin/env python3
"""Run the peers and stance back to back on the same workloads and print stance ÷ peer ratios.

1. Encoder: encoder_peers.py (PyTorch fp32, onnxruntime fp32 and int8) and then `stance bench`
   on the same CoNLL sentences, batch sizes and thread count. All figures are tokens/s INCLUDING
   [CLS]/[SEP] (padding excluded). `stance bench` reports word pieces WITHOUT [CLS]/[SEP] (as of
   this writing) and times tokenization + forward, so:
     - its rate is converted to specials-included tokens in one place,
       stance_tokens_per_second() below, from the workload's own counts (incl. / excl.); a
       future `stance bench` that reports specials-included counts is read as is;
     - the ratios divide it by the peers' tokens/s WITH their tokenization time added (the same
       scope); forward-only peer figures are printed too (they are what the issue's reference
       numbers are).
2. Whole path: spacy_peer.py (en_core_web_sm, tok2vec + ner, one process) and then
   `stance classify --input jsonl --format jsonl` (default backend) on the same JSON Lines news
   corpus. Words = whitespace-separated tokens of each document's text (str.split()). stance is
   timed as a process (wall clock); its start-up (loading the models, measured as a run over a
   one-sentence corpus) is subtracted for the steady-state figure, as spaCy's load time is excluded
   from its own; both with-load figures are given too.

Results go to a directory (default benches/peer/.cache/results/<UTC time>/): encoder_peers.json,
stance_bench.json (+ .stderr), spacy.json, stance_classify.json, summary.json and summary.md (the
tables as Markdown, for benches/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import CACHE, DEFAULT_CONLL, DEFAULT_MODEL, REPO, Workload, load_workload  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_ENGINES = ("torch-fp32", "ort-fp32", "ort-int8")


# ---------------------------------------------------------------- reading `stance bench`


def parse_stance_bench(stdout: str, stderr: str) -> list[dict]:
    """Rows of `stance bench` output, whatever shape it prints: a JSON array, an object holding
    an array (e.g. {"rows": [...]}), JSON Lines, or the table lines
    ("intra    threads 2  batch   8:    1074 word pieces/s     896 words/s  (3.99 s)")."""

    def rows_of(v):
        if isinstance(v, list):
            return [r for r in v if isinstance(r, dict)]
        if isinstance(v, dict):
            for k in ("rows", "results", "configurations", "runs"):
                if isinstance(v.get(k), list):
                    return rows_of(v[k])
            return [v]
        return []

    text = stdout.strip()
    if text:
        try:
            rows = rows_of(json.loads(text))
            if rows:
                return rows
        except json.JSONDecodeError:
            pass
        rows = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows += rows_of(json.loads(line))
                except json.JSONDecodeError:
                    pass
        if rows:
            return rows
    pat = re.compile(
        r"(?P<parallelism>\w+)\s+threads\s+(?P<threads>\d+)\s+batch\s+(?P<batch_size>\d+):\s*"
        r"(?P<rate>[\d.,]+)\s+(?P<unit>word pieces|wordpieces|tokens)[^/]*/s(?:\s+(?P<wps>[\d.,]+)\s+words/s)?"
        r"(?:.*?\((?P<seconds>[\d.]+)\s*s\))?"
    )
    rows = []
    for line in (stdout + "\n" + stderr).splitlines():
        m = pat.search(line)
        if m:
            incl = "special" in line.lower() and "excl" not in line.lower() and "without" not in line.lower()
            row = {
                "parallelism": m["parallelism"],
                "threads": int(m["threads"]),
                "batch_size": int(m["batch_size"]),
                ("tokens_with_specials_per_second" if incl else "wordpieces_per_second"): float(m["rate"].replace(",", "")),
            }
            if m["seconds"]:
                row["seconds"] = float(m["seconds"])
            rows.append(row)
    return rows


def _num(row: dict, *keys):
    for k in keys:
        if isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool):
            return float(row[k])
    return None


def _special_key(row: dict, rate: bool):
    """A key that names a specials-INCLUDED count (rate=False) or rate (rate=True), if any."""
    for k, v in row.items():
        kl = k.lower()
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if "special" not in kl or not any(w in kl for w in ("with", "incl")):
            continue
        if any(w in kl for w in ("excl", "without", "no_special", "non_special")):
            continue
        if ("per_second" in kl or kl.endswith("_per_s")) == rate:
            return k
    return None


def stance_tokens_per_second(row: dict, wl: Workload) -> tuple[float, str]:
    """THE conversion of a `stance bench` row to tokens/s including [CLS]/[SEP], and how it was
    obtained. Kept in this one place: when `stance bench` reports specials-included tokens, only
    this function decides which figure is used."""
    k = _special_key(row, rate=True)
    if k:
        return float(row[k]), f"reported ({k})"
    seconds = _num(row, "seconds", "elapsed_seconds", "wall_seconds")
    k = _special_key(row, rate=False)
    if k and seconds:
        warn = "" if int(row[k]) == wl.tokens else f"; WARNING the peers' workload has {wl.tokens}"
        return float(row[k]) / seconds, f"reported count ({k}) / seconds{warn}"
    if isinstance(row.get("specials_included"), bool) or isinstance(row.get("includes_specials"), bool):
        incl = bool(row.get("specials_included", row.get("includes_specials")))
        rate = _num(row, "wordpieces_per_second", "tokens_per_second")
        if rate is not None:
            return (rate, "reported (flagged specials-included)") if incl else (
                rate * wl.tokens / wl.tokens_excl_specials,
                "converted (flagged specials-excluded)",
            )
    count = _num(row, "wordpieces", "tokens")
    rate = _num(row, "wordpieces_per_second", "tokens_per_second")
    sentences = _num(row, "sentences") or len(wl.sentences)
    if count is not None and seconds:
        if int(count) == wl.tokens:
            return wl.tokens / seconds, "reported count already includes specials"
        if int(count) == wl.tokens_excl_specials:
            return wl.tokens / seconds, (
                f"converted: workload tokens incl. specials ({wl.tokens}) / stance seconds "
                f"(stance counted {int(count)} without)"
            )
        # A different tokenizer or workload: scale stance's own count by its own specials.
        return (count + 2 * sentences) / seconds, (
            f"converted: (stance's {int(count)} + 2 x {int(sentences)} sentences) / seconds; "
            f"WARNING its count differs from the peers' workload ({wl.tokens_excl_specials} without specials)"
        )
    if rate is not None:
        return rate * wl.tokens / wl.tokens_excl_specials, (
            f"converted: reported rate x {wl.tokens}/{wl.tokens_excl_specials} (assumed specials-excluded)"
        )
    raise ValueError(f"no rate in stance bench row {row}")


# ---------------------------------------------------------------- running things


def run(cmd, **kw) -> subprocess.CompletedProcess:
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run([str(c) for c in cmd], **kw)


def words_of_corpus(path: Path) -> tuple[int, int]:
    docs = words = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                docs += 1
                words += len(json.loads(line)["text"].split())
    return docs, words


def run_rss(cmd, **kw) -> tuple[int, float, float]:
    """Run a command; (exit code, wall seconds, peak RSS MiB of that child from wait4)."""
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    t = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, round(usage.ru_maxrss / 1024, 1)


def time_stance_classify(stance: Path, corpus: Path, threads: int, out_dir: Path, extra: list[str], name: str = "stance_classify") -> dict:
    # Start-up = a run over a one-sentence corpus (loads every model; the faster of two).
    tiny = out_dir / "tiny.jsonl"
    tiny.write_text(json.dumps({"id": "tiny", "text": "Paris accused Rome of fraud."}) + "\n")
    base = [stance, "classify", "--input", "jsonl", "--format", "jsonl", "--threads", str(threads), *extra]
    startups = []
    for _ in range(2):
        code, wall, _ = run_rss(base + [tiny], stdout=subprocess.DEVNULL)
        startups.append(wall)
        if code != 0:
            raise SystemExit(f"stance classify on a one-sentence corpus failed (exit {code})")
    out = out_dir / f"{name}.out.jsonl"
    code, wall, rss = run_rss(base + ["-o", out, corpus])
    if code != 0:
        raise SystemExit(f"stance classify failed (exit {code})")
    docs, words = words_of_corpus(corpus)
    backends, ents, stmts, errors = {}, 0, 0, 0
    with open(out, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            backends[d.get("backend")] = backends.get(d.get("backend"), 0) + 1
            ents += len(d.get("entities", []))
            stmts += len(d.get("statements", []))
            errors += "error" in d
    startup = min(startups)
    return {
        "engine": name.replace("_", "-"),
        "extra": " ".join(extra),
        "command": " ".join(str(c) for c in base) + " -o OUT CORPUS",
        "docs": docs,
        "words": words,
        "threads": threads,
        "backends": backends,
        "entities": ents,
        "statements": stmts,
        "errors": errors,
        "wall_seconds": round(wall, 3),
        "startup_seconds": round(startup, 3),
        "seconds": round(wall - startup, 3),
        "words_per_second": round(words / max(wall - startup, 1e-9), 1),
        "words_per_second_wall": round(words / wall, 1),
        "peak_rss_mib": rss,
    }


# ---------------------------------------------------------------- report


def fmt(x) -> str:
    return "—" if x is None else f"{x:,.0f}"


def ratio(a, b) -> str:
    return "—" if not a or not b else f"{a / b:.2f}"


def report(meta, wl, peers, stance_rows, spacy, classify, classify_int8=None) -> str:
    L = []
    L.append(f"Measured {meta['when']} on {meta['machine']}; threads {meta['threads']}. {meta['note']}")
    if peers or stance_rows:
        L.append("")
        L.append(
            f"Encoder: first {wl.summary()['sentences']:,} sentences of {meta['data_name']}, "
            f"{wl.tokens:,} tokens incl. [CLS]/[SEP] ({wl.tokens_excl_specials:,} without), "
            "length-sorted batches, tokens/s incl. specials."
        )
        L.append("")
        bs = sorted({r["batch_size"] for r in peers} | {r["batch_size"] for r in stance_rows})
        L.append("| engine | " + " | ".join(f"batch {b}" for b in bs) + " |")
        L.append("|---|" + "---:|" * len(bs))
        by = {(r["engine"], r["batch_size"]): r for r in peers}
        for e in PEER_ENGINES:
            if any((e, b) in by for b in bs):
                L.append(
                    f"| {e} forward | "
                    + " | ".join(fmt(by.get((e, b), {}).get("tokens_per_second")) for b in bs)
                    + " |"
                )
        for e in PEER_ENGINES:
            if any((e, b) in by for b in bs):
                L.append(
                    f"| {e} tokenize + forward | "
                    + " | ".join(fmt(by.get((e, b), {}).get("tokens_per_second_with_tokenize")) for b in bs)
                    + " |"
                )
        st = {(r["parallelism"], r["batch_size"]): r for r in stance_rows}
        modes = sorted({r["parallelism"] for r in stance_rows})
        for m in modes:
            L.append(
                f"| stance bench {m} (tokenize + forward) | "
                + " | ".join(fmt(st.get((m, b), {}).get("tokens_per_second")) for b in bs)
                + " |"
            )
        L.append("")
        L.append("Ratios stance ÷ peer (peer with its tokenization time, the scope of stance's timer; >1 = stance faster):")
        L.append("")
        L.append("| stance ÷ | " + " | ".join(f"batch {b}" for b in bs) + " |")
        L.append("|---|" + "---:|" * len(bs))
        for m in modes:
            for e in PEER_ENGINES:
                if any((e, b) in by for b in bs):
                    L.append(
                        f"| {m} ÷ {e} | "
                        + " | ".join(
                            ratio(
                                st.get((m, b), {}).get("tokens_per_second"),
                                by.get((e, b), {}).get("tokens_per_second_with_tokenize"),
                            )
                            for b in bs
                        )
                        + " |"
                    )
        if stance_rows:
            L.append("")
            L.append(f"stance conversion: {stance_rows[0]['tokens_basis']}.")
        if peers:
            from encoder_peers import format_table

            L.append("")
            L.append("Peers in detail (encoder_peers.py; tokens/s incl. specials; latency per batch; RSS per process):")
            L.append("")
            L.append("```text")
            L.append(format_table(peers))
            L.append("```")
    if spacy or classify:
        L.append("")
        d = classify or spacy
        L.append(f"Whole path: {d['docs']} AllSides news articles ({d['words']:,} words = whitespace-separated tokens).")
        L.append("")
        L.append("| engine | words/s (loaded) | words/s (incl. load) | load s | run s | peak RSS MiB |")
        L.append("|---|---:|---:|---:|---:|---:|")
        if spacy:
            L.append(
                f"| spaCy en_core_web_sm ({'+'.join(spacy['pipeline'])}, 1 process) | {fmt(spacy['words_per_second'])} | "
                f"{fmt(spacy['words_per_second_wall'])} | {spacy['load_seconds'] + spacy['warmup_seconds']:.2f} | {spacy['seconds']:.2f} | {fmt(spacy['peak_rss_mib'])} |"
            )
        if classify:
            L.append(
                f"| stance classify --precision f32 (default backend, {classify['threads']} threads) | {fmt(classify['words_per_second'])} | "
                f"{fmt(classify['words_per_second_wall'])} | {classify['startup_seconds']:.2f} | {classify['seconds']:.2f} | {fmt(classify['peak_rss_mib'])} |"
            )
        if classify_int8:
            c = classify_int8
            L.append(
                f"| stance classify --precision int8, the default on VNNI CPUs ({c['threads']} threads) | {fmt(c['words_per_second'])} | "
                f"{fmt(c['words_per_second_wall'])} | {c['startup_seconds']:.2f} | {c['seconds']:.2f} | {fmt(c['peak_rss_mib'])} |"
            )
        if spacy and classify:
            L.append(
                f"| **stance f32 ÷ spaCy** | **{ratio(classify['words_per_second'], spacy['words_per_second'])}** | "
                f"**{ratio(classify['words_per_second_wall'], spacy['words_per_second_wall'])}** | | | |"
            )
        if spacy and classify_int8:
            L.append(
                f"| **stance int8 ÷ spaCy** | **{ratio(classify_int8['words_per_second'], spacy['words_per_second'])}** | "
                f"**{ratio(classify_int8['words_per_second_wall'], spacy['words_per_second_wall'])}** | | | |"
            )
    return "\n".join(L)


def run_stance_bench(a, out: Path, extra: list[str]):
    """`stance bench` on the encoder workload (plus `extra` flags); its rows, or None after
    saying what failed. int8 rows are told apart by their parallelism ("workers int8")."""
    int8 = extra[-1:] == ["int8"]
    name = "stance_bench_int8" if int8 else "stance_bench"
    r = run([a.stance, "bench", "--data", a.data, "--sentences", a.sentences, "--threads", a.threads,
             "--batch-sizes", a.batch_sizes, "--parallelism", a.parallelism, "--format", "json", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    (out / f"{name}.json").write_text(r.stdout)
    (out / f"{name}.stderr").write_text(r.stderr)
    sys.stderr.write(r.stderr)
    label = " ".join(["stance bench", *extra])
    if r.returncode != 0:
        print(f"error: {label} failed (exit {r.returncode})", file=sys.stderr)
        return None
    rows = parse_stance_bench(r.stdout, r.stderr)
    if not rows:
        print(f"error: could not read {label}'s output (see {name}.json)", file=sys.stderr)
        return None
    if int8:
        for row in rows:
            row["parallelism"] = f"{row.get('parallelism', '?')} int8"
    return rows


def csv_list(kind):
    return lambda s: [kind(x) for x in s.split(",") if x.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stance", type=Path, default=Path(os.environ.get("STANCE_BIN", REPO / "target" / "release" / "stance")), help="stance binary (default: $STANCE_BIN or %(default)s)")
    p.add_argument("--data", type=Path, default=DEFAULT_CONLL, help="CoNLL file of the encoder workload (default: %(default)s)")
    p.add_argument("--sentences", type=int, default=2000, help="first N sentences (default: %(default)s)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="peers' model and tokenizer (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,8,32", help="comma-separated (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads of every engine (default: %(default)s)")
    p.add_argument("--parallelism", default="workers,intra", help="stance bench --parallelism (default: %(default)s)")
    p.add_argument("--engines", default=",".join(PEER_ENGINES), help="encoder peers (default: %(default)s)")
    p.add_argument("--corpus", type=Path, default=CACHE / "news60.jsonl", help="whole-path JSON Lines corpus (default: %(default)s)")
    p.add_argument("--classify-arg", action="append", default=[], help="extra argument for stance classify (repeatable), e.g. --classify-arg=--backend=rules")
    p.add_argument("--int8", action="store_true", help="also run stance's int8 path (bench and classify --precision int8; CPUs with AVX-512 VNNI, where it is the default)")
    p.add_argument("--skip-encoder", action="store_true", help="skip part 1 (encoder)")
    p.add_argument("--skip-whole", action="store_true", help="skip part 2 (spaCy and stance classify)")
    p.add_argument("--out", type=Path, help="results directory (default: benches/peer/.cache/results/<UTC time>)")
    p.add_argument("--note", default="", help="a note printed with the tables (e.g. how busy the machine was)")
    a = p.parse_args(argv)

    now = dt.datetime.now(dt.timezone.utc)
    out = a.out or CACHE / "results" / now.strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    if not a.stance.exists():
        print(f"error: no stance binary at {a.stance} (cargo build --release, or set STANCE_BIN)", file=sys.stderr)
        return 1
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    meta = {
        "when": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} logical CPUs, load average {load1:.1f} at start" if load1 is not None else cpu,
        "threads": a.threads,
        "note": a.note,
        "data_name": a.data.name,
    }

    wl = peers = stance_rows = spacy = classify = classify_int8 = None
    peers, stance_rows = [], []
    if not a.skip_encoder:
        if not a.data.exists():
            print(f"skipped encoder part: {a.data} does not exist", file=sys.stderr)
        else:
            wl = load_workload(a.data, a.sentences, a.model)
            r = run([py, HERE / "encoder_peers.py", "--data", a.data, "--sentences", a.sentences, "--model", a.model,
                     "--engines", a.engines, "--batch-sizes", a.batch_sizes, "--threads", a.threads,
                     "--json", out / "encoder_peers.json"])  # fmt: skip
            if r.returncode != 0:
                return r.returncode
            peers = json.loads((out / "encoder_peers.json").read_text())
            stance_rows = []
            for extra in [["--precision", "f32"]] + ([["--precision", "int8"]] if a.int8 else []):
                rows = run_stance_bench(a, out, extra)
                if rows is None:
                    return 1
                stance_rows += rows
            for row in stance_rows:
                row["tokens_per_second"], row["tokens_basis"] = stance_tokens_per_second(row, wl)
                row["parallelism"] = str(row.get("parallelism", "?"))
    if not a.skip_whole:
        if not a.corpus.exists():
            print(f"skipped whole-path part: {a.corpus} does not exist (make_news_corpus.py)", file=sys.stderr)
        else:
            r = run([py, HERE / "spacy_peer.py", a.corpus, "--json", out / "spacy.json"], stdout=subprocess.DEVNULL)
            if r.returncode != 0:
                return r.returncode
            spacy = json.loads((out / "spacy.json").read_text())
            classify = time_stance_classify(a.stance, a.corpus, a.threads, out, a.classify_arg + ["--precision", "f32"])
            (out / "stance_classify.json").write_text(json.dumps(classify, indent=2) + "\n")
            if a.int8:
                classify_int8 = time_stance_classify(
                    a.stance, a.corpus, a.threads, out, a.classify_arg + ["--precision", "int8"], "stance_classify_int8"
                )
                (out / "stance_classify_int8.json").write_text(json.dumps(classify_int8, indent=2) + "\n")

    md = report(meta, wl, peers, stance_rows, spacy, classify, classify_int8)
    (out / "summary.md").write_text(md + "\n")
    summary = {
        "meta": meta,
        "workload": wl.summary() if wl else None,
        "encoder_peers": peers,
        "stance_bench": stance_rows,
        "spacy": spacy,
        "stance_classify": classify,
        "stance_classify_int8": classify_int8,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print()
    print(md)
    print(f"\n(results in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
