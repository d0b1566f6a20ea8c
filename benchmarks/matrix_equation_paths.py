"""The matrix equations' accelerator path (the matrix sign iteration) against their Schur path,
both on this CPU (issue 29).

`method="auto"` runs Bartels–Stewart with JAX's Schur decomposition on the CPU and the sign
iteration on GPU and TPU (where JAX has no Schur). This measures what the sign path costs
where both run: `sylvester`, `lyapunov` and `discrete_lyapunov` at n = 50, 200, 500 (stable
inputs, the registered generators), the primal and the gradient of `sum(sin(X))` in all
arguments, compiled, warmed up, timed interleaved; ratios are sign / Schur (median, range over
the pairs); also the relative difference of the two paths' solutions (the accuracy cost, if
any).

Run: `python benchmarks/matrix_equation_paths.py [--pairs 5] [--sizes 50 200 500]
[--dtype float64] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

import jaxrules as jr
from jaxrules.rules import discrete_lyapunov, lyapunov, sylvester


def _inputs(name, n, dtype):
    key = jax.random.key(n)
    A = jr.inputs.stable(n)(key, dtype)
    C = jr.inputs.general((n, n))(jax.random.fold_in(key, 1), dtype)
    if name == "sylvester":
        return (A, jr.inputs.stable(n)(jax.random.fold_in(key, 2), dtype), C)
    if name == "lyapunov":
        return (A, C)
    Ad = jr.inputs.general((n, n), scale=0.8 / n**0.5)(jax.random.fold_in(key, 3), dtype)
    return (Ad, C)


RULES = {"sylvester": sylvester, "lyapunov": lyapunov, "discrete_lyapunov": discrete_lyapunov}


def run(pairs: int, sizes, dtype: str) -> list[dict]:
    rows = []
    for name, rule in RULES.items():
        for n in sizes:
            args = _inputs(name, n, dtype)
            argnums = tuple(range(len(args)))
            fns = {}
            for method in ("sign", "schur"):
                f = lambda *a, m=method: rule(*a, method=m)
                loss = lambda *a, f=f: jnp.sum(jnp.sin(f(*a)))
                fns[method] = (jax.jit(f), jax.jit(jax.grad(loss, argnums)))
            X_sign, X_schur = (np.asarray(fns[m][0](*args)) for m in ("sign", "schur"))
            diff = float(np.linalg.norm(X_sign - X_schur) / np.linalg.norm(X_schur))
            row = dict(rule=name, n=n, dtype=dtype, rel_diff=diff)
            for mode, i in (("primal", 0), ("grad", 1)):
                t_s, t_b = _timing.record_ratio(
                    row,
                    mode,
                    lambda i=i: fns["sign"][i](*args),
                    lambda i=i: fns["schur"][i](*args),
                    pairs=pairs,
                )
                row.update({f"{mode}_sign_ms": 1e3 * t_s, f"{mode}_schur_ms": 1e3 * t_b})
            rows.append(row)
            print(
                f"{name:17s} n={n:4d}  primal sign {row['primal_sign_ms']:9.2f} ms / Schur "
                f"{row['primal_schur_ms']:9.2f} ms = {_timing.ratio_cell(row, 'primal'):18s}  "
                f"grad {_timing.ratio_cell(row, 'grad'):18s}  |ΔX|/|X| {diff:.1e}",
                flush=True,
            )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", a.dtype == "float64")
    print(f"sign path / Schur path, {a.dtype}, {a.pairs} pairs; {_timing.machine()}")
    rows = run(a.pairs, a.sizes, a.dtype)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": _timing.machine(), "dtype": a.dtype, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
