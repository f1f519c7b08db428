# Shared by bin/demo and bin/test: create .venv once, reinstall only when pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[quanxuan] creating .venv"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
STAMP=".venv/.quanxuan-installed"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[quanxuan] installing dependencies into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
# implicit and LightGBM bring their own threading; nested OpenBLAS threads only slow them down.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The rebuilt e5 model and the embedding cache stay inside the checkout (gitignored).
export QUANXUAN_CACHE_DIR="${QUANXUAN_CACHE_DIR:-$ROOT/.cache/quanxuan}"
