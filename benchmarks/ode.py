"""ODE solves: ``odeint``'s two adjoints against diffrax's and ``jax.experimental.ode.odeint``
(issue 17).

Problems (float64, Dopri5, the same ``rtol = atol`` for every method, outputs at ``ts``):

- ``lotka_volterra``: the predator–prey system, 4 parameters, 20 output times on [0, 15];
- ``neural_ode``: ``y' = S y + W₂ tanh(W₁ y + b₁) + b₂`` with a state of 64, a hidden layer of
  64 and a skew-symmetric ``S`` (oscillations: ~1000 steps over the interval), 5 output times.

Loss: ``Σ ys²`` over the outputs; the gradient is taken with respect to all parameters and
``y0``.

Methods: ``jaxrules checkpoint`` (the discrete adjoint, √max_steps checkpoints),
``jaxrules backsolve`` (the continuous adjoint), ``diffrax RecursiveCheckpointAdjoint``,
``diffrax BacksolveAdjoint``, ``jax.experimental.ode.odeint`` (continuous adjoint). Each peer is
timed interleaved with jaxrules' method of the same kind (the discrete adjoint against
diffrax's; the continuous adjoints against each other), ratio = jaxrules / peer (< 1 is
faster), median and range over the pairs.

Columns: forward and gradient time; XLA's temporary memory of the compiled gradient at
``max_steps`` = 1024, 4096 and 16384 (what the buffers are sized by: the number of steps a
solve may take; jax.experimental.ode.odeint has no cap); the gradient's relative error against
a float64 reference (diffrax's discrete adjoint at ``rtol = atol = 1e-12``); the number of
steps taken.

Run: ``python benchmarks/ode.py [--pairs 5] [--json FILE] [--smoke]``.
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

from jaxrules.rules import odeint

MAX_STEPS = (1024, 4096, 16384)


def lotka_volterra(smoke=False):
    def f(y, t, theta):
        a, b, c, d = theta
        x, z = y
        return jnp.stack([a * x - b * x * z, -c * z + d * x * z])

    theta = jnp.array([1.1, 0.4, 0.9, 0.3])
    y0 = jnp.array([2.0, 1.2])
    ts = jnp.linspace(0.0, 3.0 if smoke else 15.0, 20)
    return dict(name="lotka_volterra", f=f, params=(theta,), y0=y0, ts=ts, tol=1e-8)


def neural_ode(smoke=False):
    n = 8 if smoke else 64
    rng = np.random.default_rng(0)
    K = rng.standard_normal((n, n))
    S = jnp.asarray(6.0 * (K - K.T) / np.sqrt(2 * n))  # skew: oscillations, no growth
    W1 = jnp.asarray(rng.standard_normal((n, n)) / np.sqrt(n))
    W2 = jnp.asarray(rng.standard_normal((n, n)) / np.sqrt(n))
    b1 = jnp.asarray(0.1 * rng.standard_normal(n))
    b2 = jnp.asarray(0.1 * rng.standard_normal(n))

    def f(y, t, S, W1, b1, W2, b2):
        return S @ y + W2 @ jnp.tanh(W1 @ y + b1) + b2 - 0.1 * y

    y0 = jnp.asarray(rng.standard_normal(n))
    ts = jnp.linspace(0.0, 1.0 if smoke else 30.0, 5)
    return dict(name="neural_ode", f=f, params=(S, W1, b1, W2, b2), y0=y0, ts=ts, tol=1e-6)


def methods(prob, max_steps=4096, tol=None):
    """Each: (kind, solve(y0, params) -> ys)."""
    f, ts = prob["f"], prob["ts"]
    tol = prob["tol"] if tol is None else tol
    out = {}
    for adjoint in ("checkpoint", "backsolve"):
        out[f"jaxrules {adjoint}"] = (
            adjoint,
            lambda y0, p, a=adjoint: (
                odeint(f, y0, ts, *p, rtol=tol, atol=tol, max_steps=max_steps, adjoint=a).ys
            ),
        )
    try:
        import diffrax
    except ImportError:
        diffrax = None
    if diffrax is not None:
        term = diffrax.ODETerm(lambda t, y, args: f(y, t, *args))

        def diffrax_solve(adjoint):
            def solve(y0, p):
                return diffrax.diffeqsolve(
                    term,
                    diffrax.Dopri5(),
                    t0=ts[0],
                    t1=ts[-1],
                    dt0=None,
                    y0=y0,
                    args=p,
                    saveat=diffrax.SaveAt(ts=ts),
                    stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
                    adjoint=adjoint,
                    max_steps=max_steps,
                ).ys

            return solve

        out["diffrax RecursiveCheckpointAdjoint"] = (
            "checkpoint",
            diffrax_solve(diffrax.RecursiveCheckpointAdjoint()),
        )
        out["diffrax BacksolveAdjoint"] = (
            "backsolve",
            diffrax_solve(diffrax.BacksolveAdjoint(solver=diffrax.Dopri5())),
        )
    from jax.experimental.ode import odeint as jax_odeint

    out["jax.experimental.ode.odeint"] = (
        "backsolve",
        lambda y0, p: jax_odeint(f, y0, ts, *p, rtol=tol, atol=tol, mxstep=max_steps),
    )
    return out


def _loss(solve):
    return lambda y0, p: jnp.sum(solve(y0, p) ** 2)


def _rel(a, b):
    fa = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(a)])
    fb = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(b)])
    return float(jnp.linalg.norm(fa - fb) / jnp.linalg.norm(fb))


def run_problem(prob, pairs, smoke=False):
    y0, params = prob["y0"], prob["params"]
    # The float64 reference gradient: diffrax's discrete adjoint at a tight tolerance (else
    # jaxrules' own).
    ref_methods = methods(prob, max_steps=100_000, tol=1e-12)
    ref_name = (
        "diffrax RecursiveCheckpointAdjoint"
        if "diffrax RecursiveCheckpointAdjoint" in ref_methods
        else "jaxrules checkpoint"
    )
    ref_grad = jax.jit(jax.grad(_loss(ref_methods[ref_name][1]), argnums=(0, 1)))(y0, params)
    sol = odeint(
        prob["f"], y0, prob["ts"], *params, rtol=prob["tol"], atol=prob["tol"], max_steps=16384
    )
    rows = []
    ours = {}
    for name, (kind, solve) in methods(prob).items():
        fwd = jax.jit(solve)
        grad = jax.jit(jax.grad(_loss(solve), argnums=(0, 1)))
        jax.block_until_ready(fwd(y0, params))
        g = jax.block_until_ready(grad(y0, params))
        row = dict(method=name, kind=kind, grad_err=_rel(g, ref_grad))
        mem = {}
        for m in () if smoke else MAX_STEPS:
            s = methods(prob, max_steps=m)[name][1]
            mem[m] = _timing.temp_bytes(
                jax.jit(jax.grad(_loss(s), argnums=(0, 1))).lower(y0, params).compile()
            )
        row["temp_bytes"] = {str(k): v for k, v in mem.items()}
        if name.startswith("jaxrules"):
            ours[kind] = (fwd, grad)
        else:
            o_fwd, o_grad = ours[kind]
            for key, mine, theirs in (("fwd", o_fwd, fwd), ("grad", o_grad, grad)):
                t_o, t_t, ratio, spread = _timing.interleaved_ratio(
                    lambda o=mine: o(y0, params), lambda t=theirs: t(y0, params), pairs=pairs
                )
                row.update({f"{key}_ms": 1e3 * t_t, f"{key}_ratio": ratio, f"{key}_spread": spread})
                rows[[r["method"] for r in rows].index(f"jaxrules {kind}")].setdefault(
                    f"{key}_all", []
                ).append(1e3 * t_o)
        rows.append(row)
        print(f"  {prob['name']} {name}: {row}", file=sys.stderr, flush=True)
    for row in rows:
        for key in ("fwd", "grad"):
            if f"{key}_all" in row:
                row[f"{key}_ms"] = float(np.median(row.pop(f"{key}_all")))
    return dict(
        problem=prob["name"],
        state=int(y0.size),
        tol=prob["tol"],
        steps=int(sol.steps),
        accepted=int(sol.accepted),
        reference=ref_name,
        rows=rows,
    )


def run(pairs: int, smoke: bool = False):
    with jax.enable_x64():
        # The smoke run (tests: code paths only) takes the small problem and one memory size.
        which = (lotka_volterra,) if smoke else (lotka_volterra, neural_ode)
        problems = [run_problem(p(smoke), pairs, smoke) for p in which]
    return {"machine": _timing.machine(), "pairs": pairs, "problems": problems}


def _kib(b):
    return "–" if b is None else f"{b / 2**10:.0f}"


def markdown(res) -> str:
    lines = [
        f"Dopri5 in float64, gradient of Σ ys² w.r.t. y0 and all parameters; {res['pairs']} "
        "interleaved pairs of each peer against jaxrules' method of the same kind (ratio = "
        "jaxrules / peer, < 1 is faster); temporary memory (KiB) of the compiled gradient at "
        "max_steps = 1024 / 4096 / 16384; gradient error relative to a float64 reference "
        f"(discrete adjoint at rtol = atol = 1e-12). Machine: {res['machine']}.",
        "",
    ]
    ratio = _timing.ratio_cell
    for p in res["problems"]:
        lines += [
            f"**{p['problem']}** (state {p['state']}, rtol = atol = {p['tol']:g}, "
            f"{p['accepted']} accepted of {p['steps']} steps; reference: {p['reference']})",
            "",
            "| method | forward ms | jaxrules / method | gradient ms | jaxrules / method "
            "| gradient memory (KiB) by max_steps | gradient rel. error |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in p["rows"]:
            mem = " / ".join(_kib(v) for v in r["temp_bytes"].values())
            lines.append(
                f"| {r['method']} | {r.get('fwd_ms', float('nan')):.2f} | {ratio(r, 'fwd')} | "
                f"{r.get('grad_ms', float('nan')):.2f} | {ratio(r, 'grad')} | {mem} | "
                f"{r['grad_err']:.1e} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.pairs, a.smoke)
    print(markdown(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
