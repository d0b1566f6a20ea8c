#!/usr/bin/env bash
# A short, prepared check on an accelerator machine whose Python already has JAX with CUDA,
# pytest, scipy and chex (jaxrules is used from the checkout; nothing is installed).
# Writes logs and JSON results to ${OUT:-/tmp/jaxrules-device}.
set -uo pipefail
OUT="${OUT:-/tmp/jaxrules-device}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())" | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/env.txt" 2>&1
# The fast tier, on the accelerator and on the newest JAX there. Deselected: tests that need
# the installed package's entry points or 4 host devices, and the Schur-based rules (JAX
# lowers the Schur decomposition on CPU only).
timeout 300 python3 -m pytest -q -p no:cacheprovider -o addopts="" -m "not slow" tests \
  --deselect tests/test_cli_plugin.py --deselect tests/test_distributed.py \
  -k "not sylvester and not lyapunov and not matrix_equations and not builtin_library" \
  2>&1 | tail -40 > "$OUT/pytest.txt"
echo "pytest: $(tail -1 "$OUT/pytest.txt")"
timeout 200 python3 benchmarks/linalg.py --sizes 100 1000 4000 --dtypes float32 float64 --pairs 5 \
  --rules linear_solve inv logdet lstsq --json "$OUT/linalg_gpu.json" 2>&1 | grep -v Warning | tee "$OUT/linalg_gpu.txt"
timeout 60 python3 benchmarks/overhead.py --json "$OUT/overhead_gpu.json" 2>&1 | grep -v Warning | tee "$OUT/overhead_gpu.txt"
