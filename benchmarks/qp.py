"""Inequality-constrained QP layers: ``qp`` against jaxopt's OSQP / BoxOSQP and a dense KKT
reference (issue 18).

Problems: a batch of 64 convex QPs, n = 100 unknowns, 50 inequalities, 10 equalities, float64,
each built with a known strictly complementary solution (20 active inequalities; the library's
registered input generator, so non-degenerate). Differentiated: ``Σ sin(w ⊙ x)`` over the
batch, with respect to all six inputs ``(Q, c, A, b, G, h)``.

Methods (all ``jit(vmap(...))``, interleaved against ``jaxrules`` in one run):

- ``jaxrules``: ``qp`` (interior point, then the KKT solve of its active set; derivatives from
  that factorisation);
- ``jaxopt OSQP`` / ``jaxopt BoxOSQP`` (equalities as ``l = u`` rows): ADMM with implicit
  differentiation, with jaxopt's defaults (tolerance 1e-3) and tightened (tolerance 1e-6 and
  the implicit linear system solved by GMRES to 1e-10); ADMM's iteration cap 4000 either way;
- ``dense KKT``: the dense KKT matrix of ``qp``'s active set solved by ``jnp.linalg.solve`` and
  differentiated by JAX (the active set found by ``qp``'s interior point; what a hand-written
  OptNet layer does without a custom rule).

Columns: forward and gradient time (ms; ratio jaxrules / method, < 1 is faster, median and
range over the pairs), KKT residual of the solution (the largest relative violation, over the
batch), and the gradient's relative error against central finite differences in float64
along a random direction of all inputs (differences of the exact solution map).

Run: ``python benchmarks/qp.py [--pairs 5] [--batch 64] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

from jaxrules.rules import qp
from jaxrules.rules.quadratic_programs import _ineq_qp_inputs, _qp_ref, _violation

N, M_INEQ, P_EQ, ACTIVE = 100, 50, 10, 20
KEYS = ("Q", "c", "A", "b", "G", "h")


def problems(batch, n=N, m=M_INEQ, p=P_EQ, active=ACTIVE):
    keys = jax.random.split(jax.random.key(0), batch)
    draws = [_ineq_qp_inputs(k, "float64", n=n, p=p, m=m, active=active) for k in keys]
    return {k: jnp.stack([d[k] for d in draws]) for k in KEYS}


def methods():
    """Each: one problem's (Q, c, A, b, G, h) -> x."""
    out = {"jaxrules": lambda *a: qp(*a).x, "dense KKT": lambda *a: _qp_ref(*a)[0]}
    try:
        import jaxopt
    except ImportError:
        return out

    # Two settings each: jaxopt's defaults (tol 1e-3, its default implicit linear solve), and
    # a tight one (tol 1e-6, the implicit system solved by GMRES to 1e-10, restart 50, at most
    # 100 restarts: without it the gradient is off by ~1% even without equality constraints;
    # with 20 × 20 iterations, by 40–90% on these problems).
    tight = dict(
        tol=1e-6,
        implicit_diff_solve=functools.partial(
            jaxopt.linear_solve.solve_gmres, tol=1e-10, maxiter=100, restart=50
        ),
    )

    def osqp(**options):
        def solve(Q, c, A, b, G, h):
            s = jaxopt.OSQP(**options)
            return s.run(params_obj=(Q, c), params_eq=(A, b), params_ineq=(G, h)).params.primal

        return solve

    def box_osqp(**options):
        def solve(Q, c, A, b, G, h):
            C = jnp.concatenate([A, G])
            lo = jnp.concatenate([b, jnp.full(h.shape, -jnp.inf, h.dtype)])
            hi = jnp.concatenate([b, h])
            s = jaxopt.BoxOSQP(**options)
            return s.run(params_obj=(Q, c), params_eq=C, params_ineq=(lo, hi)).params.primal[0]

        return solve

    for label, options in (("defaults", {}), ("tol 1e-6, GMRES 1e-10", tight)):
        out[f"jaxopt OSQP ({label})"] = osqp(**options)
        out[f"jaxopt BoxOSQP ({label})"] = box_osqp(**options)
    return out


def kkt_residual(prob, x):
    """The largest relative KKT violation over the batch, with the multipliers that make
    the point stationary in the least-squares sense (the methods return x only)."""

    def one(Q, c, A, b, G, h, x):
        # Multipliers of x: those of `qp` at the same data (exact), so the residual measures x.
        sol = qp(Q, c, A, b, G, h)
        return _violation(0.5 * (Q + Q.T), c, A, b, G, h, x, sol.lam, sol.nu)

    return float(jnp.max(jax.vmap(one)(*(prob[k] for k in KEYS), x)))


def run(pairs: int, batch: int, n=N, m=M_INEQ, p=P_EQ, active=ACTIVE):
    with jax.enable_x64():
        prob = problems(batch, n, m, p, active)
        args = tuple(prob[k] for k in KEYS)
        w = jnp.linspace(0.5, 1.5, n)
        rng = np.random.default_rng(1)
        direction = [jnp.asarray(rng.standard_normal(a.shape)) for a in args]
        # Q is symmetric by declaration (the methods see only its symmetric part, or assume it)
        direction[0] = 0.5 * (direction[0] + jnp.swapaxes(direction[0], -1, -2))

        def loss_of(solve):
            return lambda *a: jnp.sum(jnp.sin(jax.vmap(solve)(*a) * w))

        exact = jax.jit(loss_of(methods()["jaxrules"]))
        eps = 1e-6
        plus = exact(*(a + eps * d for a, d in zip(args, direction)))
        minus = exact(*(a - eps * d for a, d in zip(args, direction)))
        fd = float((plus - minus) / (2 * eps))
        rows, progs = [], {}
        for name, solve in methods().items():
            f = jax.jit(jax.vmap(solve))
            g = jax.jit(jax.grad(loss_of(solve), argnums=tuple(range(6))))
            try:
                x = f(*args)
                grads = g(*args)
            except Exception as e:  # a peer that cannot run this problem: say so
                rows.append(dict(method=name, failed=f"{type(e).__name__}: {str(e)[:120]}"))
                continue
            progs[name] = (f, g)
            dd = float(sum(jnp.vdot(gi, di) for gi, di in zip(grads, direction)))
            if name == "jaxrules":
                x_exact = x
            x_err = float(jnp.linalg.norm(x - x_exact) / jnp.linalg.norm(x_exact))
            row = dict(
                method=name, kkt=kkt_residual(prob, x), x_err=x_err, grad_err=abs(dd - fd) / abs(fd)
            )
            if name != "jaxrules":
                ours_f, ours_g = progs["jaxrules"]
                for key, ours, theirs in (("fwd", ours_f, f), ("grad", ours_g, g)):
                    t_o, t_t, ratio, spread = _timing.interleaved_ratio(
                        lambda o=ours: o(*args), lambda t=theirs: t(*args), pairs=pairs
                    )
                    row.update(
                        {f"{key}_ms": 1e3 * t_t, f"{key}_ratio": ratio, f"{key}_spread": spread}
                    )
                    rows[0].setdefault(f"{key}_all", []).append(1e3 * t_o)
            rows.append(row)
            print(
                f"  {name}: forward {row.get('fwd_ms', 0):.1f} ms, gradient "
                f"{row.get('grad_ms', 0):.1f} ms, KKT {row['kkt']:.1e}, x error {x_err:.1e}, "
                f"gradient error {row['grad_err']:.1e}",
                file=sys.stderr,
                flush=True,
            )
        # jaxrules' own times: the median of its side of every interleaved run
        for key in ("fwd", "grad"):
            rows[0][f"{key}_ms"] = float(np.median(rows[0].pop(f"{key}_all")))
        sol = jax.vmap(qp)(*args)
        own_kkt = float(jnp.max(sol.residual))
        steps = sol.steps
    return {
        "machine": _timing.machine(),
        "pairs": pairs,
        "problem": dict(
            batch=batch,
            n=n,
            inequalities=m,
            equalities=p,
            active=active,
            ipm_steps_max=int(jnp.max(steps)),
            own_kkt=own_kkt,
        ),
        "rows": rows,
    }


def markdown(res) -> str:
    p = res["problem"]
    lines = [
        f"A batch of {p['batch']} QPs, n = {p['n']}, {p['inequalities']} inequalities "
        f"({p['active']} active), {p['equalities']} equalities, float64; gradient of "
        "Σ sin(w ⊙ x) w.r.t. (Q, c, A, b, G, h). "
        f"{res['pairs']} interleaved pairs against jaxrules (ratio = jaxrules / method, < 1 is "
        f"faster); jaxrules' interior point took at most {p['ipm_steps_max']} iterations, and "
        f"its KKT residual (with its own multipliers) is at most {p['own_kkt']:.1e}. KKT "
        "residual of x: the largest relative KKT violation of each method's x with the exact "
        "multipliers; x error: relative to jaxrules' x. "
        f"Machine: {res['machine']}.",
        "",
        "| method | forward ms | jaxrules / method | gradient ms | jaxrules / method "
        "| KKT residual of x | x rel. error | gradient rel. error (vs FD) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    ratio = _timing.ratio_cell

    for r in res["rows"]:
        if "failed" in r:
            lines.append(f"| {r['method']} | failed: {r['failed']} | – | – | – | – | – | – |")
            continue
        lines.append(
            f"| {r['method']} | {r['fwd_ms']:.1f} | {ratio(r, 'fwd')} | {r['grad_ms']:.1f} | "
            f"{ratio(r, 'grad')} | {r['kkt']:.1e} | {r['x_err']:.1e} | {r['grad_err']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    res = run(a.pairs, a.batch)
    print(markdown(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
