"""Matrix-free Krylov solves: ``krylov_solve`` against lineax and ``jax.scipy.sparse.linalg``.

Problems (issue 18), on an m × m grid (n = m² unknowns, matrix-free, float32):

- ``poisson``: ``u ↦ −∇·(κ∇u) + u`` with a coefficient field κ (symmetric positive definite;
  CG);
- ``convection``: the same plus a convection term ``c ∂ₓu`` (non-symmetric; GMRES and
  BiCGSTAB).

Measured for each (problem, solver, library), interleaved against ``jaxrules``:
the solve (time to the same relative tolerance), the gradient of ``⟨w, x⟩`` with respect to κ
(the operator's parameters, through its closure) and to b, and the gradient's XLA temporary
memory. ``gradient / solve`` is how many solves the gradient costs (ideal: about 2, the forward
solve and one adjoint solve); for jaxrules, ``(gradient − solve) / adjoint solve`` is what the
gradient adds to the forward solve in units of one solve with the transposed operator, timed
alone (the adjoint of a non-symmetric operator converges at its own rate). Peers: lineax's ``CG``/``GMRES``/``BiCGStab`` with
``FunctionLinearOperator`` (implicit adjoint), and ``jax.scipy.sparse.linalg``'s ``cg``/
``gmres``/``bicgstab`` (whose derivative is also implicit, through ``custom_linear_solve``).

Run: ``python benchmarks/krylov.py [--m 100] [--pairs 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import jax.scipy.sparse.linalg as jssl
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

from jaxrules.rules import krylov_solve
from jaxrules.rules.krylov import _operator

TOL = 1e-5


def _libraries(solver):
    libs = {
        "jaxrules": lambda A, b: krylov_solve(A, b, solver=solver, tol=TOL).value,
        "jax.scipy": lambda A, b: getattr(jssl, solver)(A, b, tol=TOL)[0],
    }
    try:
        import lineax as lx

        cls = {"cg": lx.CG, "gmres": lx.GMRES, "bicgstab": lx.BiCGStab}[solver]
        tags = (lx.positive_semidefinite_tag, lx.symmetric_tag) if solver == "cg" else ()

        def lineax_solve(A, b):
            op = lx.FunctionLinearOperator(A, jax.ShapeDtypeStruct(b.shape, b.dtype), tags=tags)
            # lineax's own stopping test (max norm; with atol = 0 it failed to stop on these
            # float32 problems): its residual column shows where it stops.
            sol = lx.linear_solve(op, b, solver=cls(rtol=TOL, atol=TOL), throw=False)
            return sol.value

        libs["lineax"] = lineax_solve
    except ImportError:
        print("  krylov: lineax not installed, skipped", file=sys.stderr)
    return libs


def _transposed(kappa, c, like):
    At = jax.linear_transpose(_operator(kappa, c), like)
    return lambda v: At(v)[0]


def run(m=100, pairs=5, problems=(("poisson", "cg"), ("convection", "gmres"),
                                  ("convection", "bicgstab"))):  # fmt: skip
    rng = np.random.default_rng(0)
    kappa = jnp.asarray(rng.uniform(0.5, 2.0, (m, m)), jnp.float32)
    b = jnp.asarray(rng.standard_normal((m, m)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((m, m)), jnp.float32)
    rows = []
    for problem, solver in problems:
        c = 0.0 if problem == "poisson" else 0.5
        libs = _libraries(solver)
        progs = {}
        for name, solve in libs.items():
            f = lambda kappa, b, solve=solve: solve(_operator(kappa, c), b)
            loss = lambda kappa, b, f=f: jnp.vdot(w, f(kappa, b))
            progs[name] = (jax.jit(f), jax.jit(jax.grad(loss, (0, 1))))
        ref_x = progs["jaxrules"][0](kappa, b)
        ref_g = progs["jaxrules"][1](kappa, b)
        A = _operator(kappa, c)
        for name, (f, g) in list(progs.items()):
            try:
                jax.block_until_ready((f(kappa, b), g(kappa, b)))
            except Exception as e:  # a peer that raises (lineax on a Krylov breakdown)
                msg = str(e).split("\n")
                why = next((m for m in msg if "breakdown" in m or "non-finite" in m), msg[0])
                rows.append(dict(problem=problem, solver=solver, library=name, m=m, n=m * m,
                                 failed=why.strip()[:120]))  # fmt: skip
                print(f"  {problem}/{solver} {name}: failed: {why.strip()[:120]}", file=sys.stderr)
                del progs[name]
                continue
            x = f(kappa, b)
            res = float(jnp.linalg.norm(b - A(x)) / jnp.linalg.norm(b))
            gk = g(kappa, b)[0]
            gdiff = float(jnp.linalg.norm(gk - ref_g[0]) / jnp.linalg.norm(ref_g[0]))
            row = dict(
                problem=problem, solver=solver, library=name, m=m, n=m * m,
                residual=res, grad_rel_diff=gdiff,
                grad_bytes=_timing.temp_bytes(g.lower(kappa, b).compile()),
            )  # fmt: skip
            if name == "jaxrules":
                row["solve_ms"] = 1e3 * _timing.best_of(lambda: f(kappa, b), 5)
                row["grad_ms"] = 1e3 * _timing.best_of(lambda: g(kappa, b), 5)
                # What the gradient adds to the forward solve, in units of one adjoint solve
                # (the transposed operator, solved alone): the "one extra solve".
                adj = jax.jit(lambda kappa, w, c=c: libs["jaxrules"](_transposed(kappa, c, w), w))
                t_g, t_f, _, _ = _timing.interleaved_ratio(
                    lambda: g(kappa, b), lambda: f(kappa, b), pairs=pairs
                )
                jax.block_until_ready(adj(kappa, w))  # compile first
                t_a = _timing.best_of(lambda: adj(kappa, w), 5)
                row["extra_over_adjoint"] = (t_g - t_f) / t_a
            else:
                ours_f, ours_g = progs["jaxrules"]
                _, t_t, ratio, spread = _timing.interleaved_ratio(
                    lambda: ours_f(kappa, b), lambda: f(kappa, b), pairs=pairs
                )
                row.update(solve_ms=1e3 * t_t, solve_ratio=ratio, solve_spread=spread)
                _, t_t, ratio, spread = _timing.interleaved_ratio(
                    lambda: ours_g(kappa, b), lambda: g(kappa, b), pairs=pairs
                )
                row.update(grad_ms=1e3 * t_t, grad_ratio=ratio, grad_spread=spread)
            row["grad_over_solve"] = row["grad_ms"] / row["solve_ms"]
            rows.append(row)
            print(
                f"  {problem}/{solver} {name}: solve {row['solve_ms']:.1f} ms, "
                f"grad {row['grad_ms']:.1f} ms, residual {res:.1e}",
                file=sys.stderr,
                flush=True,
            )
        del ref_x
    return {"machine": _timing.machine(), "pairs": pairs, "rows": rows}


def markdown(res) -> str:
    rows = res["rows"]
    m = rows[0]["m"] if rows else 0
    lines = [
        f"Matrix-free solves on an {m}×{m} grid (n = {m * m} unknowns, float32, relative "
        f"tolerance {TOL:g}; {res['pairs']} interleaved pairs against jaxrules; ratio = "
        "jaxrules / peer, < 1 is faster). Gradient of ⟨w, x⟩ w.r.t. the coefficient field κ "
        f"(through the operator's closure) and b. Machine: {res['machine']}.",
        "",
        "| problem | solver | library | solve ms | jaxrules / peer | gradient ms | jaxrules / peer "
        "| gradient / solve | (gradient − solve) / adjoint solve | gradient temp memory "
        "| residual | gradient rel. diff. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    ratio = _timing.ratio_cell

    for r in rows:
        if "failed" in r:
            lines.append(
                f"| {r['problem']} | {r['solver']} | {r['library']} | failed: {r['failed']} "
                "| – | – | – | – | – | – | – | – |"
            )
            continue
        mem = "–" if r["grad_bytes"] is None else f"{r['grad_bytes'] / 2**20:.2f} MiB"
        extra = f"{r['extra_over_adjoint']:.2f}" if "extra_over_adjoint" in r else "–"
        lines.append(
            f"| {r['problem']} | {r['solver']} | {r['library']} | {r['solve_ms']:.1f} | "
            f"{ratio(r, 'solve')} | {r['grad_ms']:.1f} | {ratio(r, 'grad')} | "
            f"{r['grad_over_solve']:.2f} | {extra} | {mem} | {r['residual']:.1e} | "
            f"{r['grad_rel_diff']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    res = run(a.m, a.pairs)
    print(markdown(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
