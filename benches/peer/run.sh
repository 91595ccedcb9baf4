#!/usr/bin/env bash
# The one command for the peer comparison (issue 11, part 1):
#
#   benches/peer/run.sh [compare.py options]        e.g. --note "quiet machine" --threads 2
#
# 1. creates/updates benches/peer/.venv (setup.sh: PyTorch, transformers, onnxruntime, spaCy,
#    en_core_web_sm, pinned in requirements.txt) and the base model in models/base if missing;
# 2. builds the stance binary if missing (target/release/stance; or set STANCE_BIN);
# 3. builds the news corpus (60 AllSides articles from ../shared, into the git-ignored
#    benches/peer/.cache/news60.jsonl; set ARTICLES=N for another size);
# 4. runs compare.py: the encoder peers (PyTorch fp32, onnxruntime fp32 and int8) and then
#    `stance bench` on the first 2,000 sentences of ../shared/data/conll2003/train.txt at batch
#    sizes 1, 8, 32 with 2 threads; then spaCy en_core_web_sm (tok2vec + ner) and then
#    `stance classify --input jsonl --format jsonl` on the news corpus; prints the tables and
#    the stance ÷ peer ratios, and keeps everything in benches/peer/.cache/results/<time>/.
#
# Without ../shared (or $STANCE_SHARED) it says so and exits 0 without measuring anything.
# `benches/peer/run.sh --help` lists compare.py's options.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="${STANCE_SHARED:-$repo/../shared}"
export STANCE_SHARED="$shared"

case "${1:-}" in
  -h|--help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    echo
    if [ -x "$here/.venv/bin/python" ]; then "$here/.venv/bin/python" "$here/compare.py" --help; fi
    exit 0 ;;
esac

conll="$shared/data/conll2003/train.txt"
news="$shared/data/news/allsides/allsides_intl_politics.jsonl"
if [ ! -f "$conll" ] || [ ! -f "$news" ]; then
  echo "skipped: the shared data is absent (need $conll and $news); nothing measured" >&2
  exit 0
fi

bash "$here/setup.sh"
py="$here/.venv/bin/python"

if [ ! -f "$repo/models/base/model.safetensors" ] || [ ! -f "$repo/models/base/tokenizer.json" ]; then
  bash "$repo/scripts/fetch_base.sh"
fi

stance="${STANCE_BIN:-$repo/target/release/stance}"
if [ ! -x "$stance" ]; then
  echo "building $stance (cargo build --release)" >&2
  (cd "$repo" && cargo build --release)
fi
export STANCE_BIN="$stance"

articles="${ARTICLES:-60}"
corpus="$here/.cache/news$articles.jsonl"
"$py" "$here/make_news_corpus.py" --articles "$articles" --out "$corpus"

cd "$repo"  # stance finds its shipped models under models/
exec "$py" "$here/compare.py" --corpus "$corpus" "$@"
