"""Implicit vs unrolled differentiation of an optimiser, and jaxrules vs jaxopt vs optimistix.

Problem (issue 5): ridge-regularised logistic regression, m = 2000 samples, d = 200 features,
λ = 1e-2, solved by 500 gradient-descent steps with step 1/L (L = ‖X‖₂²/(4m) + λ). We
differentiate a validation loss with respect to (λ, X_train):

- ``unrolled``: ``jax.grad`` through the 500 steps (a ``fori_loop``, i.e. a scan);
- ``jaxrules``: :func:`jaxrules.rules.argmin` with the same gradient-descent solver; the
  Hessian system dense (LU, the default at d = 200) or by CG (``jaxrules-cg``);
- ``jaxopt``: ``jaxopt.GradientDescent(implicit_diff=True)`` with its defaults (CG on the
  normal equations);
- ``optimistix``: ``optx.minimise`` with ``optx.GradientDescent`` and ``ImplicitAdjoint``
  (lineax ``AutoLinearSolver``).

All four run exactly 500 steps from zero, so they differentiate at the same point; the
gradient norm at the end is reported. Time: ``jit(grad)``, warmed up, interleaved with the
unrolled baseline (ratio = unrolled / method, so > 1 is faster), median and range over the
pairs. Memory: XLA temporary bytes of the compiled gradient. Error: relative error of each
gradient (computed in float32, and in float64) against a float64 reference that converges
``w`` by Newton and applies the implicit function theorem with dense solves.

Run: ``python benchmarks/implicit.py [--pairs 7] [--json FILE] [--markdown FILE]
[--plot FILE.png]``.
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

from jaxrules.rules import argmin

M, D, LAM, STEPS = 2000, 200, 1e-2, 500


def data(dtype, m=M, d=D):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, d))
    w_true = rng.standard_normal(d) / np.sqrt(d)
    y = (X @ w_true + 0.3 * rng.standard_normal(m) > 0).astype(float)
    Xv = rng.standard_normal((m // 4, d))
    yv = (Xv @ w_true > 0).astype(float)
    L = np.linalg.norm(X, 2) ** 2 / (4 * m) + LAM
    cast = lambda a: jnp.asarray(a, dtype)
    return cast(X), cast(y), cast(Xv), cast(yv), float(1.0 / L)


def train_loss(w, X, y, lam):
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * lam * jnp.vdot(w, w)


def val_loss(w, Xv, yv):
    z = Xv @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - yv * z)


def gd(steps, lr):
    def solver(f, w0):
        return jax.lax.fori_loop(0, steps, lambda _, w: w - lr * jax.grad(f)(w), w0)

    return solver


def methods(y, Xv, yv, lr, steps=STEPS):
    """Each method: (lam, X) -> validation loss at the (approximate) minimiser."""
    out = {}

    def unrolled(lam, X):
        w = gd(steps, lr)(lambda w: train_loss(w, X, y, lam), jnp.zeros(X.shape[1], X.dtype))
        return val_loss(w, Xv, yv)

    out["unrolled"] = unrolled

    def ours(linear_solver):
        def loss(lam, X):
            sol = argmin(
                train_loss,
                jnp.zeros(X.shape[1], X.dtype),
                X,
                y,
                lam,
                solver=gd(steps, lr),
                linear_solver=linear_solver,
                tol=1.0,  # converged or not, differentiate
            )
            return val_loss(sol.value, Xv, yv)

        return loss

    out["jaxrules"] = ours("lu")
    out["jaxrules-cg"] = ours("cg")
    try:
        import jaxopt

        def jaxopt_loss(lam, X):
            solver = jaxopt.GradientDescent(
                fun=train_loss,
                stepsize=lr,
                maxiter=steps,
                tol=0.0,
                acceleration=False,
                implicit_diff=True,
            )
            w = solver.run(jnp.zeros(X.shape[1], X.dtype), X, y, lam).params
            return val_loss(w, Xv, yv)

        out["jaxopt"] = jaxopt_loss
    except ImportError:
        pass
    try:
        import optimistix as optx

        def optx_loss(lam, X):
            sol = optx.minimise(
                lambda w, args: train_loss(w, *args),
                optx.GradientDescent(learning_rate=lr, rtol=0.0, atol=0.0),
                jnp.zeros(X.shape[1], X.dtype),
                (X, y, lam),
                max_steps=steps,
                throw=False,
                adjoint=optx.ImplicitAdjoint(),
            )
            return val_loss(sol.value, Xv, yv)

        out["optimistix"] = optx_loss
    except ImportError:
        pass
    return out


def reference_grad(X, y, Xv, yv):
    """float64: Newton-converged w, then the implicit function theorem with dense solves."""
    with jax.enable_x64():
        X, y, Xv, yv = (jnp.asarray(np.asarray(a), jnp.float64) for a in (X, y, Xv, yv))
        lam = jnp.asarray(LAM, jnp.float64)
        f = lambda w, X, lam: train_loss(w, X, y, lam)
        w = jnp.zeros(X.shape[1], jnp.float64)
        for _ in range(30):
            w = w - jnp.linalg.solve(jax.hessian(f)(w, X, lam), jax.grad(f)(w, X, lam))
        u = jnp.linalg.solve(jax.hessian(f)(w, X, lam), jax.grad(val_loss)(w, Xv, yv))
        _, vjp = jax.vjp(lambda lam, X: jax.grad(f)(w, X, lam), lam, X)
        return tuple(np.asarray(g) for g in vjp(-u))


def rel_err(got, want):
    num = sum(np.linalg.norm(np.asarray(g, np.float64) - w) ** 2 for g, w in zip(got, want))
    return float(np.sqrt(num) / np.sqrt(sum(np.linalg.norm(w) ** 2 for w in want)))


def temp_bytes(fn, *args):
    return _timing.temp_bytes(jax.jit(fn).lower(*args).compile())


def run(pairs: int, curve_steps=(100, 200, 500, 1000), m=M, d=D, steps=STEPS):
    X, y, Xv, yv, lr = data(jnp.float32, m, d)
    lam = jnp.asarray(LAM, jnp.float32)
    ref = reference_grad(X, y, Xv, yv)
    fns = methods(y, Xv, yv, lr, steps)
    grads = {k: jax.jit(jax.grad(f, (0, 1))) for k, f in fns.items()}
    w_end = gd(steps, lr)(lambda w: train_loss(w, X, y, lam), jnp.zeros(d))
    gnorm = float(jnp.linalg.norm(jax.grad(train_loss)(w_end, X, y, lam)))
    rows = []
    base = grads["unrolled"]
    for name, g in grads.items():
        row = {"method": name, "temp_bytes": temp_bytes(jax.grad(fns[name], (0, 1)), lam, X)}
        row["err_f32"] = rel_err(g(lam, X), ref)
        if name != "unrolled":
            _, t_m, ratio, spread = _timing.interleaved_ratio(
                lambda: base(lam, X), lambda: g(lam, X), pairs=pairs
            )
            row.update(ms=1e3 * t_m, speedup=ratio, speedup_range=spread)
        # The cost of the derivative on top of the method's own forward solve: its gradient
        # against its primal (the same solve, no gradient), interleaved.
        own = jax.jit(fns[name])
        t_g, t_p, _, (lo, hi) = _timing.interleaved_ratio(
            lambda g=g: g(lam, X), lambda own=own: own(lam, X), pairs=pairs
        )
        row.update(grad_over_primal=t_g / t_p, grad_over_primal_range=(lo, hi))
        rows.append(row)
    by = {r["method"]: r for r in rows}
    by["unrolled"]["ms"] = 1e3 * _timing.best_of(lambda: base(lam, X), 5)
    by["unrolled"]["speedup"] = 1.0
    # The floor: the forward solve alone (500 GD steps), interleaved with the unrolled gradient.
    primal = jax.jit(fns["unrolled"])
    _, t_p, ratio, spread = _timing.interleaved_ratio(
        lambda: base(lam, X), lambda: primal(lam, X), pairs=pairs
    )
    rows.append(
        {
            "method": "primal only (no gradient)",
            "ms": 1e3 * t_p,
            "speedup": ratio,
            "speedup_range": spread,
            "temp_bytes": temp_bytes(fns["unrolled"], lam, X),
            "err_f32": float("nan"),
            "err_f64": float("nan"),
        }
    )
    with jax.enable_x64():
        X64, y64, Xv64, yv64 = (jnp.asarray(np.asarray(a), jnp.float64) for a in (X, y, Xv, yv))
        fns64 = methods(y64, Xv64, yv64, lr, steps)
        for name, f in fns64.items():
            by[name]["err_f64"] = rel_err(jax.jit(jax.grad(f, (0, 1)))(jnp.asarray(LAM), X64), ref)
    curve = {}
    for n_steps in curve_steps:
        fs = methods(y, Xv, yv, lr, steps=n_steps)
        curve[n_steps] = {k: temp_bytes(jax.grad(f, (0, 1)), lam, X) for k, f in fs.items()}
    return {
        "machine": _timing.machine(),
        "problem": {"m": m, "d": d, "lam": LAM, "steps": steps, "grad_norm_at_end": gnorm},
        "rows": rows,
        "memory_curve": curve,
    }


def markdown(res) -> str:
    p = res["problem"]
    lines = [
        f"Logistic regression m={p['m']}, d={p['d']}, λ={p['lam']}, {p['steps']} GD steps "
        f"(‖∇f‖ at the end {p['grad_norm_at_end']:.1e}); gradient of a validation loss "
        f"w.r.t. (λ, X_train). Machine: {res['machine']}.",
        "",
        "| method | time (ms) | speed-up vs unrolled (range) | gradient / own primal (range) | "
        "XLA temp memory | rel. error f32 | rel. error f64 |",
        "|---|---|---|---|---|---|---|",
    ]
    base_mem = next(r for r in res["rows"] if r["method"] == "unrolled")["temp_bytes"]
    for r in res["rows"]:
        rng = r.get("speedup_range")
        sp = f"{r['speedup']:.2f}×" + (f" ({rng[0]:.2f}–{rng[1]:.2f})" if rng else "")
        mem = r["temp_bytes"]
        memtxt = f"{mem / 2**20:.2f} MiB" + (
            f" ({base_mem / mem:.0f}× less)" if r["method"] != "unrolled" and mem else ""
        )
        gp = "–"
        if "grad_over_primal" in r:
            glo, ghi = r["grad_over_primal_range"]
            gp = f"{r['grad_over_primal']:.2f}× ({glo:.2f}–{ghi:.2f})"
        lines.append(
            f"| {r['method']} | {r['ms']:.1f} | {sp} | {gp} | {memtxt} | {r['err_f32']:.1e} | "
            f"{r.get('err_f64', float('nan')):.1e} |"
        )
    lines += ["", "XLA temporary memory of the gradient against the number of GD steps:", ""]
    steps = list(res["memory_curve"])
    names = list(res["memory_curve"][steps[0]])
    lines.append("| method | " + " | ".join(f"{s} steps" for s in steps) + " |")
    lines.append("|---|" + "---|" * len(steps))
    for n in names:
        cells = " | ".join(f"{res['memory_curve'][s][n] / 2**20:.2f} MiB" for s in steps)
        lines.append(f"| {n} | {cells} |")
    return "\n".join(lines) + "\n"


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(s) for s in res["memory_curve"]]
    names = list(res["memory_curve"][next(iter(res["memory_curve"]))])
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for n in names:
        ax.plot(
            steps, [res["memory_curve"][s][n] / 2**20 for s in res["memory_curve"]], "o-", label=n
        )
    ax.set_xlabel("gradient-descent steps")
    ax.set_ylabel("XLA temporary memory (MiB)")
    ax.set_yscale("log")
    ax.set_title("Memory of the gradient: unrolled vs implicit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--plot")
    args = ap.parse_args(argv)
    res = run(args.pairs)
    text = markdown(res)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.plot:
        plot(res, args.plot)


if __name__ == "__main__":
    main()
