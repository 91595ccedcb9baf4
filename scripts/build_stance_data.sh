#!/usr/bin/env bash
# Rebuilds the stance data files from their sources (all written by the team):
#   data/stance/conll.jsonl          stand-off labels on CoNLL-2003 (first annotation pass)
#   data/stance/written/{train,dev}.jsonl   gold for the team's written articles; articles 01-03 of
#                                    each spec-*.jsonl batch are dev, the rest train; the later
#                                    extra-*.jsonl batches are all train (the dev split stays as it was)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/stance_data.py convert data/stance/raw/pass1-*.jsonl --out data/stance/conll.jsonl
: > data/stance/written/train.jsonl
: > data/stance/written/dev.jsonl
for spec in data/stance/written/spec-*.jsonl; do
  python3 scripts/gold_from_spec.py "$spec" | python3 -c '
import json, sys
train = open("data/stance/written/train.jsonl", "a", encoding="utf-8")
dev = open("data/stance/written/dev.jsonl", "a", encoding="utf-8")
for line in sys.stdin:
    d = json.loads(line)
    n = int(d["id"].rsplit("-", 1)[1])
    (dev if n <= 3 else train).write(line)
'
done
for extra in data/stance/written/extra-*.jsonl; do
  [ -e "$extra" ] || continue
  python3 scripts/gold_from_spec.py "$extra" >> data/stance/written/train.jsonl
done
for f in data/stance/written/train.jsonl data/stance/written/dev.jsonl; do
  python3 -c '
import json, sys, collections
c = collections.Counter(); n = 0
for l in open(sys.argv[1]):
    n += 1
    for s in json.loads(l)["stances"]:
        c[s["label"]] += 1
print(sys.argv[1], n, "articles", dict(c))' "$f"
done
