"""How long the checker takes, cold (a fresh process each time: nothing compiled or cached).

1. ``jr.check("sin_product")`` against ``jax.test_util.check_grads(order=2, modes=("fwd",
   "rev"))`` on the same function, in the same dtypes (float32 and float64), interleaved
   pairs of fresh processes; the time of the call alone (imports excluded from both).
2. ``jaxrules check`` on the built-in library with default settings (all rules, both dtypes,
   every transform, three seeds), wall time of the whole command.

Run: ``python benchmarks/checker_speed.py [--pairs N] [--no-library] [--json FILE]``.
Never alongside another heavy job: the figures are wall times on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = """
import time, jax
import jaxrules as jr
from jaxrules.rules import sin_product
rec = jr.get("sin_product")
"""

CHECK_GRADS = (
    SETUP
    + """
from jax.test_util import check_grads
t = time.perf_counter()
for dtype in ("float64", "float32"):
    with jax.enable_x64(dtype == "float64"):
        for seed in range(3):
            args = rec.draw(jax.random.key(seed), dtype)
            check_grads(sin_product, tuple(args.values()), order=2, modes=("fwd", "rev"))
print(time.perf_counter() - t)
"""
)

JR_CHECK = (
    SETUP
    + """
t = time.perf_counter()
assert jr.check("sin_product").passed
print(time.perf_counter() - t)
"""
)


def _child(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def sin_product(pairs: int) -> dict:
    jr_t, cg_t = [], []
    for _ in range(pairs):
        jr_t.append(_child(JR_CHECK))
        cg_t.append(_child(CHECK_GRADS))
    ratios = sorted(a / b for a, b in zip(jr_t, cg_t))
    return {
        "jr_check_s": statistics.median(jr_t),
        "check_grads_s": statistics.median(cg_t),
        "ratio_median": statistics.median(ratios),
        "ratio_range": [ratios[0], ratios[-1]],
        "pairs": pairs,
        "what": "jr.check('sin_product') (defaults: float64+float32, eager/jit/vmap, 3 seeds, "
        "order 2) vs check_grads(order=2, modes=('fwd','rev')) at the same 3 seeds in both "
        "dtypes",
    }


def library() -> dict:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "jaxrules", "check"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    tail = r.stdout.strip().splitlines()
    return {
        "wall_s": wall,
        "returncode": r.returncode,
        "summary": [line for line in tail if "passed" in line or "covered" in line],
        "checks": sum(
            int(line.split()[1]) for line in tail if line.split() and line.split()[-1] == "PASS"
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--no-library", action="store_true")
    p.add_argument("--json", default=os.path.join(HERE, "results", "checker_speed.json"))
    a = p.parse_args()
    import jax

    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        "python": platform.python_version(),
        "sin_product": sin_product(a.pairs),
    }
    sp = res["sin_product"]
    print(
        f"jr.check('sin_product') {sp['jr_check_s']:.2f} s, check_grads {sp['check_grads_s']:.2f}"
        f" s: ratio {sp['ratio_median']:.2f} ({sp['ratio_range'][0]:.2f}-"
        f"{sp['ratio_range'][1]:.2f})"
    )
    if not a.no_library:
        res["library"] = library()
        lib = res["library"]
        print(
            f"jaxrules check (built-in library): {lib['wall_s']:.1f} s wall, rc {lib['returncode']}"
        )
        print("\n".join(lib["summary"]))
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
