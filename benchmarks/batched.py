"""Batched linear algebra: the rules on a stack of matrices against `jnp.linalg` (issue 15).

A `(64, 64, 64)` stack (64 matrices of 64×64), float32: the primal and the gradient of
`sum(sin(f(A)))` (and of `b` for `linear_solve`, with a `(64, 64, 8)` right-hand side), each
rule against the same `jnp.linalg` function, compiled, warmed up and timed interleaved;
ratios are ours / JAX's (median, range over the pairs). Both sides run one batched
factorisation.

Run: `python benchmarks/batched.py [--pairs 7] [--batch 64] [--n 64] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

import jaxrules as jr
from jaxrules.rules import inv, linear_solve, logdet, slogdet

CASES = {
    "linear_solve": (linear_solve, jnp.linalg.solve, True),
    "inv": (inv, jnp.linalg.inv, False),
    "logdet": (logdet, lambda A: jnp.linalg.slogdet(A)[1], False),
    "slogdet": (lambda A: slogdet(A)[1], lambda A: jnp.linalg.slogdet(A)[1], False),
}


def run(pairs: int, batch: int, n: int) -> list[dict]:
    A = jr.inputs.general((batch, n, n))(jax.random.key(0), "float32")
    b = jr.inputs.general((batch, n, 8))(jax.random.key(1), "float32")
    rows = []
    for name, (ours, theirs, with_b) in CASES.items():
        args = (A, b) if with_b else (A,)
        argnums = (0, 1) if with_b else (0,)
        for mode in ("primal", "grad"):
            if mode == "primal":
                f_o, f_t = jax.jit(ours), jax.jit(theirs)
            else:
                loss = lambda f: lambda *a: jnp.sum(jnp.sin(f(*a)))
                f_o = jax.jit(jax.grad(loss(ours), argnums))
                f_t = jax.jit(jax.grad(loss(theirs), argnums))
            t_o, t_t, _, (lo, hi) = _timing.interleaved_ratio(
                lambda f=f_o: f(*args), lambda f=f_t: f(*args), pairs=pairs
            )
            rows.append(
                dict(
                    rule=name,
                    mode=mode,
                    ours_ms=1e3 * t_o,
                    jax_ms=1e3 * t_t,
                    ratio=t_o / t_t,
                    lo=lo,
                    hi=hi,
                )
            )
            print(
                f"{name:13s} {mode:6s} ours {1e3 * t_o:8.3f} ms  jnp.linalg {1e3 * t_t:8.3f} ms  "
                f"ours/JAX {t_o / t_t:.2f} ({lo:.2f}–{hi:.2f})",
                flush=True,
            )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    print(f"{a.batch} matrices of {a.n}x{a.n}, float32, {a.pairs} pairs; {_timing.machine()}")
    rows = run(a.pairs, a.batch, a.n)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(
                {"machine": _timing.machine(), "batch": a.batch, "n": a.n, "rows": rows},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
