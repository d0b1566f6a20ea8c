"""Audit JAX's own differentiable linear algebra with ``jr.check``, as a user would.

Each function is checked with **no reference**: its JVPs against central finite differences
(Richardson) of its own primal in float64, its VJPs against its JVPs (``<w, Jv> = <Jᵀw, v>``),
its linearity, under ``jit`` and ``vmap`` — at general points, at structured ones (symmetric,
SPD, triangular) and at degenerate ones (repeated eigenvalues or singular values, singular,
rank-deficient, near zero). A failure is a *finding*: either a wrong derivative, or a
derivative that JAX returns where none exists (NaN, inf, or a finite value that finite
differences contradict), which the table then says.

Run: ``python benchmarks/audit_jax.py [--only NAME] [--point KIND] [--markdown FILE]``. This is
the recipe for auditing any function: ``jr.check(fn, reference=None, inputs={...})``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

import jaxrules as jr
from jaxrules.inputs import Generator

HERE = os.path.dirname(os.path.abspath(__file__))
N = 4


# -- points --------------------------------------------------------------------------------------
def _orth(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _sym(x):
    return (x + jnp.swapaxes(x, -1, -2)) / 2


def with_singular_values(s, name):
    s = np.asarray(s, float)
    return Generator(name, lambda rng: (_orth(rng, N) * s) @ _orth(rng, N).T)


def with_eigenvalues(lam, name):
    lam = np.asarray(lam, float)

    def draw(rng):
        q = _orth(rng, N)
        return (q * lam) @ q.T

    return Generator(name, draw, project=_sym)


def triangular(name):
    def draw(rng):
        return np.tril(rng.standard_normal((N, N)) / 2) + np.diag(rng.uniform(1, 2, N))

    return Generator(name, draw, project=jnp.tril)


POINTS = {
    "general": jr.inputs.general((N, N)),
    "singular": with_singular_values([1.0, 0.7, 0.4, 0.0], "singular (rank 3)"),
    "near-singular": with_singular_values([1.0, 0.7, 0.4, 1e-6], "near singular (cond 1e6)"),
    "repeated singular values": with_singular_values([1.0, 0.5, 0.5, 0.2], "repeated σ"),
    "near zero": with_singular_values([1e-8, 5e-9, 3e-9, 1e-9], "near zero (norm 1e-8)"),
    "spd": jr.inputs.spd(N),
    "symmetric": jr.inputs.symmetric(N),
    "repeated eigenvalues": with_eigenvalues([2.0, 1.0, 1.0, -0.5], "repeated λ"),
    "lower": triangular("lower triangular"),
}
rhs = jr.inputs.general((N, 2))


def _cho_solve(c, b):
    return jsl.cho_solve((c, True), b)


# name: (function, argument generators by point kind, extra inputs)
TARGETS = {
    "jnp.linalg.solve": (jnp.linalg.solve, ["general", "near-singular", "singular"], {"b": rhs}),
    "jnp.linalg.inv": (jnp.linalg.inv, ["general", "near-singular", "singular"], {}),
    "jnp.linalg.slogdet": (jnp.linalg.slogdet, ["general", "near-singular", "singular"], {}),
    "jnp.linalg.det": (jnp.linalg.det, ["general", "singular", "near zero"], {}),
    "jnp.linalg.lstsq": (
        lambda a, b: jnp.linalg.lstsq(a, b)[0],
        ["general", "singular"],
        {"b": rhs},
    ),
    "jnp.linalg.pinv": (jnp.linalg.pinv, ["general", "singular", "near-singular"], {}),
    "jnp.linalg.eigh": (jnp.linalg.eigh, ["symmetric", "repeated eigenvalues"], {}),
    "jnp.linalg.eigvalsh": (jnp.linalg.eigvalsh, ["symmetric", "repeated eigenvalues"], {}),
    "jnp.linalg.svd": (jnp.linalg.svd, ["general", "repeated singular values", "singular"], {}),
    "jnp.linalg.svdvals": (
        lambda a: jnp.linalg.svd(a, compute_uv=False),
        ["general", "repeated singular values", "singular"],
        {},
    ),
    "jnp.linalg.cholesky": (jnp.linalg.cholesky, ["spd"], {}),
    "jnp.linalg.qr": (jnp.linalg.qr, ["general", "singular"], {}),
    "jax.scipy.linalg.expm": (jsl.expm, ["general", "near zero"], {}),
    "jax.scipy.linalg.sqrtm": (lambda a: jsl.sqrtm(a).real, ["spd"], {}),
    "jax.scipy.linalg.solve_triangular": (
        lambda a, b: jsl.solve_triangular(a, b, lower=True),
        ["lower"],
        {"b": rhs},
    ),
    "jax.scipy.linalg.cho_solve": (_cho_solve, ["lower"], {"b": rhs}),
}


def _first_param(fn) -> str:
    import inspect

    return next(iter(inspect.signature(fn).parameters))


def jax_says(fn, inputs) -> str:
    """What JAX's own JVP returns at the first seed's point: finite, or NaN/inf."""
    key = jax.random.key(0)
    args = {n: g(jax.random.fold_in(key, i), "float64") for i, (n, g) in enumerate(inputs.items())}
    tangents = {n: jnp.ones_like(a) for n, a in args.items()}
    names = list(args)
    try:
        _, t = jax.jvp(
            lambda *xs: fn(**dict(zip(names, xs))),
            tuple(args.values()),
            tuple(tangents.values()),
        )
    except Exception as e:
        return f"raises {type(e).__name__}"
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]
    bad = sum(int(np.sum(~np.isfinite(x))) for x in leaves)
    total = sum(x.size for x in leaves)
    big = max((float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0)) for x in leaves), default=0.0)
    return f"{bad}/{total} NaN/inf" if bad else f"finite (max {big:.2g})"


def audit(only=None, point=None, seeds=2):
    rows = []
    for name, (fn, kinds, extra) in TARGETS.items():
        if only and name != only:
            continue
        for kind in kinds:
            if point and kind != point:
                continue
            inputs = {_first_param(fn): POINTS[kind], **extra}
            t = time.perf_counter()
            try:
                report = jr.check(
                    fn,
                    reference=None,
                    inputs=inputs,
                    dtypes=("float64",),
                    transforms=("jit", "vmap"),
                    seeds=seeds,
                )
                fails = report.failures
                worst = max(fails, key=lambda r: r.error / max(r.tol, 1e-300)) if fails else None
                verdict = "pass" if report.passed else "FINDING"
                what = (
                    f"{worst.check} ({worst.where}, {worst.transform}): {worst.outcome()}"
                    if worst
                    else f"{len(report.results)} checks, worst err/tol {report.worst_ratio:.2g}"
                )
            except Exception as e:  # an exception is a finding too
                verdict, what = "FINDING", f"raised {type(e).__name__}: {str(e).splitlines()[0]}"
            with jax.enable_x64(True):
                returned = jax_says(fn, inputs)
            rows.append(
                {
                    "function": name,
                    "point": kind,
                    "verdict": verdict,
                    "jax_jvp": returned,
                    "detail": what.splitlines()[0],
                    "seconds": round(time.perf_counter() - t, 1),
                    "reproduce": f"python benchmarks/audit_jax.py --only {name} --point '{kind}'",
                }
            )
            r = rows[-1]
            print(f"{r['verdict']:<8} {name:<34} {kind:<25} [{returned}] {r['detail']}", flush=True)
    return rows


def markdown(rows) -> str:
    out = [
        "| function | point | verdict | JAX's JVP there | what the checker says |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        detail = r["detail"].replace("|", "\\|")
        out.append(
            f"| `{r['function']}` | {r['point']} | {r['verdict']} | {r['jax_jvp']} | {detail} |"
        )
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None)
    p.add_argument("--point", default=None)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--json", default=os.path.join(HERE, "results", "audit_jax.json"))
    p.add_argument("--markdown", default=None)
    a = p.parse_args()
    rows = audit(a.only, a.point, a.seeds)
    if not a.only and not a.point:
        with open(a.json, "w") as fh:
            json.dump({"jax": jax.__version__, "rows": rows}, fh, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as fh:
            fh.write(markdown(rows) + "\n")
    n = sum(r["verdict"] != "pass" for r in rows)
    print(f"\n{len(rows)} (function, point) pairs, {n} finding(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
