"""Linear-algebra rules against JAX's own differentiation (and SciPy for matrix equations).

For each rule and size: the primal, and the gradient of ``<w, f(...)>`` (a fixed random
``w``), through the jaxrules rule and through JAX differentiating its own function, each
``jit``-compiled and warmed up; timings interleaved (ours, JAX's, ours, ...), median ratio
and its range over the pairs.

Run: ``python benchmarks/linalg.py [--sizes 100 500 1000] [--dtypes float64 float32]
[--pairs 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

from jaxrules.rules import (
    discrete_lyapunov,
    inv,
    linear_solve,
    logdet,
    lstsq,
    lyapunov,
    sylvester,
)


def _problems(n, dtype, rng):
    A = rng.standard_normal((n, n)) + n**0.5 * np.eye(n)
    b = rng.standard_normal(n)
    tall = rng.standard_normal((2 * n, n))
    bt = rng.standard_normal(2 * n)
    stable = rng.standard_normal((n, n)) / n**0.5 - 2.0 * np.eye(n)
    cast = lambda x: jnp.asarray(x, dtype)
    return {
        "linear_solve": (linear_solve, jnp.linalg.solve, (cast(A), cast(b))),
        "inv": (inv, jnp.linalg.inv, (cast(A),)),
        "logdet": (logdet, lambda A: jnp.linalg.slogdet(A)[1], (cast(A),)),
        "lstsq": (lstsq, lambda A, b: jnp.linalg.lstsq(A, b)[0], (cast(tall), cast(bt))),
        "sylvester": (
            sylvester,
            lambda A, B, C: jax.scipy.linalg.solve_sylvester(A, B, C),
            (cast(stable), cast(stable.T + 0.1 * np.eye(n)), cast(rng.standard_normal((n, n)))),
        ),
        "lyapunov": (lyapunov, None, (cast(stable), cast(rng.standard_normal((n, n))))),
        "discrete_lyapunov": (
            discrete_lyapunov,
            None,
            (
                cast(0.9 * stable / np.abs(np.linalg.eigvals(stable)).max()),
                cast(rng.standard_normal((n, n))),
            ),
        ),
    }


def _grad_fn(f, argnums, w):
    def loss(*args):
        out = f(*args)
        return jnp.vdot(w, out) if out.ndim else out * w

    return jax.jit(jax.grad(loss, argnums))


def _jvp_fn(f, args, tangent_args):
    return jax.jit(lambda *a: jax.jvp(f, a, tangent_args)[1])


def bench_rule(name, ours, theirs, args, pairs, dtype, rng):
    out = ours(*args)
    w = (
        jnp.asarray(rng.standard_normal(jnp.shape(out)), dtype)
        if jnp.ndim(out)
        else jnp.asarray(1.0, dtype)
    )
    argnums = tuple(range(len(args)))
    p_ours = jax.jit(ours)
    g_ours = _grad_fn(ours, argnums, w)
    row = {"rule": name}
    t_grad, t_primal, r, spread = _timing.interleaved_ratio(
        lambda: g_ours(*args), lambda: p_ours(*args), pairs=pairs
    )
    row["grad_over_primal"] = (r, spread)
    row["grad_ms"] = t_grad * 1e3
    row["primal_ms"] = t_primal * 1e3
    if theirs is not None:
        try:
            g_theirs = _grad_fn(theirs, argnums, w)
            jax.block_until_ready(g_theirs(*args))
            _, _, r, spread = _timing.interleaved_ratio(
                lambda: g_ours(*args), lambda: g_theirs(*args), pairs=pairs
            )
            row["grad_vs_jax"] = (r, spread)
            gt = g_theirs(*args)
            row["jax_grad_finite"] = bool(all(np.all(np.isfinite(np.asarray(x))) for x in gt))
        except Exception as e:  # JAX cannot differentiate it (e.g. solve_sylvester w.r.t. A, B)
            row["grad_vs_jax"] = f"JAX: {type(e).__name__}"
        p_theirs = jax.jit(theirs)
        jax.block_until_ready(p_theirs(*args))
        _, _, r, spread = _timing.interleaved_ratio(
            lambda: p_ours(*args), lambda: p_theirs(*args), pairs=pairs
        )
        row["primal_vs_jax"] = (r, spread)
    if name in ("logdet", "linear_solve", "inv"):
        tang = tuple(jnp.asarray(rng.standard_normal(jnp.shape(a)), dtype) for a in args)
        j_ours = _jvp_fn(ours, args, tang)
        j_theirs = _jvp_fn(theirs, args, tang)
        jax.block_until_ready(j_ours(*args))
        jax.block_until_ready(j_theirs(*args))
        _, _, r, spread = _timing.interleaved_ratio(
            lambda: j_ours(*args), lambda: j_theirs(*args), pairs=pairs
        )
        row["jvp_vs_jax"] = (r, spread)
    return row


def scipy_primal(name, args, pairs):
    import scipy.linalg as sl

    np_args = [np.asarray(a) for a in args]
    if name == "sylvester":
        fn = lambda: sl.solve_sylvester(np_args[0], np_args[1], np_args[2])
    elif name == "discrete_lyapunov":
        fn = lambda: sl.solve_discrete_lyapunov(np_args[0], np_args[1])
    else:
        fn = lambda: sl.solve_continuous_lyapunov(np_args[0], -np_args[1])
    fn()
    ts = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


_MATRIX_EQUATIONS = ("sylvester", "lyapunov", "discrete_lyapunov")


def run(sizes, dtypes, pairs, rules):
    rows = []
    for dtype in dtypes:
        with jax.enable_x64(dtype == "float64"):
            for n in sizes:
                rng = np.random.default_rng(n)
                probs = _problems(n, dtype, rng)
                for name in rules:
                    if name in _MATRIX_EQUATIONS and n > 200:
                        continue  # the matrix equations are benchmarked up to n = 200
                    ours, theirs, args = probs[name]
                    row = bench_rule(name, ours, theirs, args, pairs, dtype, rng)
                    row.update(n=n, dtype=dtype)
                    if name in _MATRIX_EQUATIONS:
                        t_scipy = scipy_primal(name, args, pairs)
                        row["primal_vs_scipy"] = row["primal_ms"] / 1e3 / t_scipy
                    rows.append(row)
                    print(_fmt(row), flush=True)
    return rows


def _r(x):
    if isinstance(x, str):
        return x
    if x is None:
        return "–"
    r, (lo, hi) = x
    return f"{r:.2f} ({lo:.2f}–{hi:.2f})"


def _fmt(row):
    return (
        f"| {row['rule']} | {row['dtype']} | {row['n']} | {row['primal_ms']:.2f} | "
        f"{_r(row['grad_over_primal'])} | {_r(row.get('grad_vs_jax'))} | "
        f"{_r(row.get('jvp_vs_jax'))} | {_r(row.get('primal_vs_jax'))} | "
        + (f"{row['primal_vs_scipy']:.2f} |" if "primal_vs_scipy" in row else "– |")
    )


HEADER = (
    "| rule | dtype | n | primal ms | grad / primal | grad: ours / JAX | jvp: ours / JAX | "
    "primal: ours / JAX | primal: ours / SciPy |\n|---|---|---|---|---|---|---|---|---|"
)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000])
    p.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument(
        "--rules",
        nargs="+",
        default=[
            "linear_solve",
            "inv",
            "logdet",
            "lstsq",
            "sylvester",
            "lyapunov",
            "discrete_lyapunov",
        ],
    )
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    print(f"machine: {_timing.machine()}")
    print(HEADER)
    rows = run(a.sizes, a.dtypes, a.pairs, a.rules)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": _timing.machine(), "rows": rows}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
