#!/usr/bin/env bash
# Makes a Python virtual environment with PySpark for scripts/spark_classify.py (and tests/spark.rs),
# with pandas and PyArrow for the DataFrame API (mapInPandas). About 660 MB; 40-60 s from PyPI.
# Spark runs on the machine's Java (17 is tested; PySpark 3.5 supports Java 8, 11 and 17).
# Idempotent: an environment that already imports the pinned PySpark is kept.
# Usage: scripts/spark_env.sh [VENV]   (default: target/spark-venv); prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-target/spark-venv}"
pyspark_version="3.5.7"
pins=("pyspark==$pyspark_version" "pandas==2.2.3" "pyarrow==15.0.2" "numpy==1.26.4")

py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c "import pyspark, pandas, pyarrow, sys; sys.exit(pyspark.__version__ != '$pyspark_version')" 2>/dev/null; then
  echo "$py"
  exit 0
fi
python="$(command -v python3 || command -v python || true)"
[ -n "$python" ] || { echo "error: python3 is needed to make $venv" >&2; exit 1; }
command -v java >/dev/null || echo "warning: no java on PATH; Spark needs Java 8, 11 or 17 at run time" >&2
"$python" -m venv "$venv" >&2 || { echo "error: cannot make a virtual environment in $venv (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$py" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2 \
  || { echo "error: pip could not install ${pins[*]} into $venv" >&2; exit 1; }
echo "$py"
