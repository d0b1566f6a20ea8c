"""Side by side: ``jax.test_util.check_grads`` and ``jr.check`` on the same rules.

Runs both over the corpus of wrong rules (``tests/wrong_rules.py``) and their correct twins,
at the same random points, and counts how many wrong rules each catches and how many correct
ones each fails, in single precision (float32, or complex64 for the rules registered for
complex numbers only) and double (float64 / complex128).

Run: ``python benchmarks/checker_vs_check_grads.py [--seeds N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np
from jax.test_util import check_grads

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
import _timing  # noqa: E402
import wrong_rules as W  # noqa: E402

import jaxrules as jr  # noqa: E402


def _dtype(rule, real: str) -> str:
    """`real`, or the complex dtype of its precision for a rule registered complex-only."""
    return (
        real
        if real in rule.check.dtypes
        else {"float32": "complex64", "float64": "complex128"}[real]
    )


def _check_grads_fails(rule, dtype, seed) -> bool:
    """True if jax.test_util.check_grads raises for this rule at this point."""
    dtype = _dtype(rule, dtype)
    args = rule.draw(jax.random.key(seed), dtype)
    names = list(args)
    f = lambda *xs: rule.fn(**dict(zip(names, xs)))
    try:
        check_grads(f, tuple(args.values()), order=rule.check.order, modes=("fwd", "rev"))
    except Exception:
        return True
    return False


def _jr_fails(rule, reg, dtype, seed) -> bool:
    dtype = _dtype(rule, dtype)
    return not jr.check(
        rule.name, registry=reg, seeds=[seed], dtypes=(dtype,), transforms=("jit", "vmap")
    ).passed


def run(seeds: int):
    rows = {}
    for dtype in ("float32", "float64"):
        ctx = jax.enable_x64(dtype == "float64")
        with ctx:
            wrong = list(W.WRONG)
            right = list(W.RIGHT)
            cg_caught = sum(
                any(_check_grads_fails(r, dtype, s) for s in range(seeds)) for r in wrong
            )
            jr_caught = sum(
                any(_jr_fails(r, W.WRONG, dtype, s) for s in range(seeds)) for r in wrong
            )
            cg_false = sum(_check_grads_fails(r, dtype, s) for r in right for s in range(seeds))
            jr_false = sum(_jr_fails(r, W.RIGHT, dtype, s) for r in right for s in range(seeds))
            missed_cg = [
                r.name
                for r in wrong
                if not any(_check_grads_fails(r, dtype, s) for s in range(seeds))
            ]
        rows[dtype] = dict(
            wrong_rules=len(wrong),
            correct_checks=len(right) * seeds,
            check_grads_caught=cg_caught,
            jr_check_caught=jr_caught,
            check_grads_false_failures=cg_false,
            jr_check_false_failures=jr_false,
            check_grads_missed=missed_cg,
        )
    return rows


def table(rows) -> str:
    out = [
        "| dtype | wrong rules caught: check_grads | jr.check | correct (rule, seed) pairs failed: check_grads | jr.check |",
        "|---|---|---|---|---|",
    ]
    for dtype, r in rows.items():
        out.append(
            f"| {dtype} | {r['check_grads_caught']}/{r['wrong_rules']} | "
            f"{r['jr_check_caught']}/{r['wrong_rules']} | "
            f"{r['check_grads_false_failures']}/{r['correct_checks']} | "
            f"{r['jr_check_false_failures']}/{r['correct_checks']} |"
        )
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    rows = run(a.seeds)
    print(f"machine: {_timing.machine()}; {a.seeds} seeds per rule")
    print(table(rows))
    for dtype, r in rows.items():
        print(f"check_grads missed in {dtype}: {', '.join(r['check_grads_missed']) or 'none'}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": _timing.machine(), "seeds": a.seeds, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
