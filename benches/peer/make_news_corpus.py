#!/usr/bin/env python3
"""Build the whole-path benchmark corpus: N real news articles as JSON Lines ({"id", "text"}).

Source: ../shared/data/news/allsides/allsides_intl_politics.jsonl (AllSides international and
security articles; see its SOURCE.md). The article texts are the publishers' copyright and must
not be committed, so the corpus is written under benches/peer/.cache/ (git-ignored) and rebuilt
from shared/ on each machine.

Selection (fixed, deterministic): the articles sorted by their `ID`, skipping those whose body
(`content_original`) has fewer than --min-words whitespace-separated words, the first N kept.
`text` is the body; `id` is "allsides:<ID>". Words are counted as whitespace-separated tokens of
`text` (Python's str.split()), the same definition the comparison uses for `stance classify`
and spaCy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import CACHE, DEFAULT_SHARED  # noqa: E402

DEFAULT_SOURCE = DEFAULT_SHARED / "data" / "news" / "allsides" / "allsides_intl_politics.jsonl"


def build(source: Path, n: int, min_words: int) -> list[dict]:
    rows = []
    with open(source, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    rows.sort(key=lambda r: str(r.get("ID", "")))
    out = []
    for r in rows:
        text = (r.get("content_original") or "").strip()
        if len(text.split()) < min_words:
            continue
        out.append({"id": f"allsides:{r['ID']}", "text": text})
        if len(out) == n:
            break
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="AllSides JSON Lines (default: %(default)s)")
    p.add_argument("-n", "--articles", type=int, default=60, help="number of articles (default: %(default)s)")
    p.add_argument("--min-words", type=int, default=50, help="skip bodies shorter than this (default: %(default)s)")
    p.add_argument("-o", "--out", type=Path, help="output file (default: benches/peer/.cache/news<N>.jsonl)")
    a = p.parse_args(argv)
    if not a.source.exists():
        print(f"skipped: {a.source} does not exist (shared/ data absent)", file=sys.stderr)
        return 3
    out = a.out or CACHE / f"news{a.articles}.jsonl"
    docs = build(a.source, a.articles, a.min_words)
    if len(docs) < a.articles:
        print(f"warning: only {len(docs)} articles qualify", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    words = sum(len(d["text"].split()) for d in docs)
    print(f"wrote {out}: {len(docs)} articles, {words:,} words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
