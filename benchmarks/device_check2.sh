#!/usr/bin/env bash
# Second GPU pass: the implicit rules' tests (verbose, full log, to see any crash) and the
# implicit and overhead benchmark sections. Writes to ${OUT:-/tmp/jaxrules-device}.
set -uo pipefail
OUT="${OUT:-/tmp/jaxrules-device}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
timeout 150 python3 -m pytest -v -p no:cacheprovider -o addopts="" -m "not slow" \
  tests/test_rules_implicit.py tests/test_rules_qp.py tests/test_bench.py tests/test_transforms.py \
  -k "not sylvester and not lyapunov and not cli_bench" > "$OUT/pytest_gpu.txt" 2>&1
echo "pytest rc=$?: $(grep -E 'passed|failed|Aborted|Fatal' "$OUT/pytest_gpu.txt" | tail -3)"
timeout 200 python3 benchmarks/run.py --only implicit overhead --tag gpu --out "$OUT" --pairs 5 \
  2>&1 | grep -v -i warning | tail -40 > "$OUT/run_gpu2.log"
tail -25 "$OUT/run_gpu2.log"
