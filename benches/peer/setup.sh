#!/usr/bin/env bash
# Creates benches/peer/.venv with the peers of `stance bench` (PyTorch, onnxruntime, spaCy),
# pinned in requirements.txt. Idempotent: an existing environment with everything installed is kept.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "peer environment ready: $venv"
