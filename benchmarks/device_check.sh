#!/usr/bin/env bash
# A short, prepared check on an accelerator machine whose Python already has JAX with CUDA,
# pytest, scipy and chex (jaxrules is used from the checkout; nothing is installed).
# Writes at most 8 files to ${OUT:-/tmp/jaxrules-device}: env, pytest log, and the GPU results
# of benchmarks/run.py (summary_gpu.md and one JSON per section).
set -uo pipefail
OUT="${OUT:-/tmp/jaxrules-device}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())" | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/env.txt" 2>&1
python3 -c "import lineax, jaxopt, optimistix" >> "$OUT/env.txt" 2>&1 || echo "peers: not all installed" >> "$OUT/env.txt"
# The tests of the newest parts, on the accelerator and the newest JAX there (the Schur-based
# rules are CPU-only in JAX).
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" -m "not slow" \
  tests/test_rules_implicit.py tests/test_rules_qp.py tests/test_bench.py tests/test_transforms.py \
  -k "not sylvester and not lyapunov and not cli_bench" 2>&1 | tail -30 > "$OUT/pytest.txt"
echo "pytest: $(tail -1 "$OUT/pytest.txt")"
timeout 330 python3 benchmarks/run.py --only library peers implicit overhead --tag gpu \
  --out "$OUT" --pairs 5 2>&1 | grep -v -i warning | tail -60 > "$OUT/run_gpu.log"
tail -5 "$OUT/run_gpu.log"
ls "$OUT"
