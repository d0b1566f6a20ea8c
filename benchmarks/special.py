"""Special functions against mpmath: the audit of JAX's own, jaxrules' accuracy, and timings.

Three parts, each writing `benchmarks/results/special_<part>.{json,md}`:

- `audit`: JAX's `jax.scipy.special`, `jax.scipy.stats` and `jax.nn` functions against mpmath
  at 30 digits — value, first and second derivative in one argument, float64 and float32, at
  points across each function's domain (interior, near 0, tails, large and small parameters).
  A *finding* is a derivative that raises, is NaN/inf where the true one is finite, or is off
  by more than 1e-8 relative in float64 (1e-3 in float32): a defect, not rounding. Each row is
  reproduced by `python benchmarks/special.py audit --only NAME`.
- `accuracy`: jaxrules' special functions over grids per region: the worst relative error of
  the value and each first derivative, float64 and float32 (a derivative near one of its zeros
  is judged against the largest first derivative at that point, 1e-3 of it as the floor;
  values a dtype cannot hold — below its smallest normal number — are skipped). The mpmath
  reference of a CDF is taken from its smaller tail (the complement of the other loses its
  digits).
- `timing`: interleaved time ratios, jaxrules / JAX, where JAX has the derivative (and the values).

Run: `python benchmarks/special.py {audit,accuracy,timing} [--only NAME]` (needs mpmath).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np

jax.config.update("jax_enable_x64", True)

import jaxrules.rules as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _timing import interleaved_ratio, machine  # noqa: E402

jsp, jst = jax.scipy.special, jax.scipy.stats
DPS = 30
ACCURACY_DPS = 60  # deep tails (values ~1e-38 at shapes ~100): mpmath's betainc needs more


# -- mpmath helpers ------------------------------------------------------------------------------
def _mp_derivs(f, args, argnum, order=2):
    """mpmath's value and derivatives 1..order of `f` in argument `argnum` at `args`."""
    with mp.workdps(DPS):
        args = [mp.mpf(a) for a in args]

        def g(v):
            return f(*args[:argnum], v, *args[argnum + 1 :])

        out = [g(args[argnum])]
        out += [mp.diff(g, args[argnum], k) for k in range(1, order + 1)]
    return [float(mp.re(v)) for v in out]


def _jax_derivs(fn, args, argnum, dtype, order=2):
    """JAX's value and derivatives, each as a float or the exception's one-line message."""
    xs = [jnp.asarray(a, dtype) for a in args]
    out, f = [], fn
    for _k in range(order + 1):
        try:
            out.append(float(jax.jit(f)(*xs)))
        except Exception as e:  # the finding: JAX raises
            out.append(f"{type(e).__name__}: {str(e).splitlines()[0][:90]}")
        f = jax.grad(f, argnum)
    return out


def _rel(got, want):
    if isinstance(got, str):
        return np.inf
    if not np.isfinite(got):
        return 0.0 if got == want else np.inf
    return abs(got - want) / max(abs(want), 1e-300)


# -- the audit -----------------------------------------------------------------------------------
def _inc_gamma_upper(a, x):
    return mp.gammainc(a, x, mp.inf, regularized=True)


AUDIT = {
    # name: (jax function, mpmath function, argument differentiated, {region: [points]})
    "special.gammaln": (jsp.gammaln, mp.loggamma, 0,
                        {"interior": [(2.5,), (0.3,)], "near 0": [(1e-8,)], "large": [(1e6,)]}),
    "special.digamma": (jsp.digamma, mp.digamma, 0,
                        {"interior": [(2.5,)], "near 0": [(1e-6,)], "negative": [(-1.5,)]}),
    "special.betaln a": (jsp.betaln, lambda a, b: mp.log(mp.beta(a, b)), 0,
                         {"interior": [(2.0, 3.0)], "a = b = 1": [(1.0, 1.0)],
                          "small": [(0.05, 0.05)], "large": [(30.0, 40.0)]}),
    "special.i0": (jsp.i0, lambda x: mp.besseli(0, x), 0,
                   {"interior": [(1.3,)], "at 0": [(0.0,)], "large": [(50.0,)]}),
    "special.i1": (jsp.i1, lambda x: mp.besseli(1, x), 0,
                   {"interior": [(1.3,)], "at 0": [(0.0,)]}),
    # i0e = I₀(x)e^{−|x|} has a kink at 0 (no derivative there): near 0 instead.
    "special.i0e": (jsp.i0e, lambda x: mp.besseli(0, x) * mp.exp(-abs(x)), 0,
                    {"interior": [(1.3,)], "near 0": [(1e-3,)], "large": [(500.0,)]}),
    "special.gammainc a": (jsp.gammainc, lambda a, x: mp.gammainc(a, 0, x, regularized=True), 0,
                           {"interior": [(2.0, 1.5)], "tail": [(3.0, 30.0)]}),
    "special.gammainc x": (jsp.gammainc, lambda a, x: mp.gammainc(a, 0, x, regularized=True), 1,
                           {"interior": [(2.0, 1.5)], "near 0": [(0.5, 1e-10)]}),
    "special.gammaincc a": (jsp.gammaincc, _inc_gamma_upper, 0,
                            {"interior": [(2.0, 1.5)], "tail": [(3.0, 30.0)]}),
    "special.betainc a": (jsp.betainc, lambda a, b, x: mp.betainc(a, b, 0, x, regularized=True),
                          0, {"interior": [(2.0, 3.0, 0.4)]}),
    "special.betainc x": (jsp.betainc, lambda a, b, x: mp.betainc(a, b, 0, x, regularized=True),
                          2, {"interior": [(2.0, 3.0, 0.4)], "near 1": [(2.0, 3.0, 0.999)]}),
    "special.erf": (jsp.erf, mp.erf, 0, {"interior": [(0.7,)], "tail": [(5.0,)]}),
    "special.erfc": (jsp.erfc, mp.erfc, 0, {"interior": [(0.7,)], "tail": [(20.0,)]}),
    "special.ndtri": (jsp.ndtri, lambda p: mp.sqrt(2) * mp.erfinv(2 * p - 1), 0,
                      {"interior": [(0.3,)], "tail": [(1e-20,)]}),
    "special.log_ndtr": (jsp.log_ndtr, lambda x: mp.log(mp.ncdf(x)), 0,
                         {"interior": [(0.5,)], "tail": [(-30.0,)]}),
    "special.zeta": (jsp.zeta, mp.zeta, 0, {"interior": [(2.5, 1.0)]}),
    "special.xlogy y": (jsp.xlogy, lambda x, y: x * mp.log(y), 1, {"interior": [(2.0, 0.3)]}),
    "special.xlog1py x": (jsp.xlog1py, lambda x, y: x * mp.log1p(y), 0,
                          {"interior": [(2.0, 0.3)], "at 0": [(0.0, 0.3)]}),
    "special.entr": (jsp.entr, lambda x: -x * mp.log(x), 0, {"interior": [(0.3,)]}),
    "stats.norm.logcdf": (jst.norm.logcdf, lambda x: mp.log(mp.ncdf(x)), 0,
                          {"tail": [(-40.0,)]}),
    "stats.t.logpdf df": (lambda x, df: jst.t.logpdf(x, df),
                          lambda x, n: mp.log(mp.gamma((n + 1) / 2) / (mp.sqrt(n * mp.pi)
                                              * mp.gamma(n / 2)) * (1 + x**2 / n) ** (-(n + 1) / 2)),
                          1, {"interior": [(0.7, 3.5)]}),
    "stats.gamma.logpdf a": (lambda x, a: jst.gamma.logpdf(x, a),
                             lambda x, a: (a - 1) * mp.log(x) - x - mp.loggamma(a), 1,
                             {"interior": [(1.3, 2.7)]}),
    "stats.beta.cdf a": (lambda x, a: jst.beta.cdf(x, a, 3.0),
                         lambda x, a: mp.betainc(a, 3, 0, x, regularized=True), 1,
                         {"interior": [(0.3, 2.0)]}),
    "stats.gamma.cdf a": (lambda x, a: jst.gamma.cdf(x, a),
                          lambda x, a: mp.gammainc(a, 0, x, regularized=True), 1,
                          {"interior": [(1.3, 2.7)]}),
    "stats.poisson.cdf mu": (lambda k, mu: jst.poisson.cdf(k, mu),
                             lambda k, mu: mp.gammainc(k + 1, mu, mp.inf, regularized=True), 1,
                             {"interior": [(3.0, 2.2)]}),
    "nn.softplus": (jax.nn.softplus, lambda x: mp.log1p(mp.exp(x)), 0,
                    {"interior": [(0.3,)], "tail": [(-50.0,)], "large": [(50.0,)]}),
    "nn.log_sigmoid": (jax.nn.log_sigmoid, lambda x: -mp.log1p(mp.exp(-x)), 0,
                       {"interior": [(0.3,)], "tail": [(-800.0,)]}),
    "nn.gelu": (lambda x: jax.nn.gelu(x, approximate=False),
                lambda x: x * mp.ncdf(x), 0, {"interior": [(0.3,)], "tail": [(-10.0,)]}),
    "nn.logsumexp": (lambda x: jax.nn.logsumexp(jnp.stack([x, 2 * x])),
                     lambda x: mp.log(mp.exp(x) + mp.exp(2 * x)), 0, {"interior": [(0.3,)]}),
}  # fmt: skip

# The jaxrules rule for the functions a finding is in.
FIXES = {
    "special.betaln a": "`betainc`'s internal `log B` (gammaln sum)",
    "special.i0": "[`i0`](../library/special.md)",
    "special.i1": "[`i1`](../library/special.md)",
    "special.gammainc a": "[`gammainc`](../library/special.md) (second order in a)",
    "special.gammaincc a": "[`gammaincc`](../library/special.md)",
    "special.betainc a": "[`betainc`](../library/special.md)",
    "stats.beta.cdf a": "[`beta_cdf`](../library/special.md)",
    "stats.gamma.cdf a": "[`gamma_cdf`](../library/special.md)",
}
F64_TOL, F32_TOL = 1e-8, 1e-3


def audit(only=None):
    rows = []
    for name, (fn, ref, argnum, regions) in AUDIT.items():
        if only and name != only:
            continue
        for region, points in regions.items():
            for point in points:
                want = _mp_derivs(ref, point, argnum)
                for dtype, tol in (("float64", F64_TOL), ("float32", F32_TOL)):
                    got = _jax_derivs(fn, point, argnum, dtype)
                    errs = [_rel(g, w) for g, w in zip(got, want)]
                    bad = [
                        (k, got[k]) for k, e in enumerate(errs)
                        if e > tol and _representable(want[k], dtype)
                    ]  # fmt: skip
                    rows.append(
                        dict(name=name, region=region, point=point, dtype=dtype,
                             errors=errs, finding=bool(bad),
                             detail="; ".join(_describe(k, g, want[k]) for k, g in bad))
                    )  # fmt: skip
        print(name, "done", flush=True)
    return rows


def _representable(v, dtype):
    """Whether the true value is a normal number of `dtype` (an underflow to 0 or overflow to
    inf of a value the dtype cannot hold is not a finding)."""
    info = jnp.finfo(dtype)
    return bool(np.isfinite(v)) and (v == 0 or float(info.tiny) <= abs(v) <= float(info.max))


def _describe(k, got, want):
    what = ["value", "1st derivative", "2nd derivative"][k]
    if isinstance(got, str):
        return f"{what} raises {got}"
    return f"{what} {got:.9g} (true {want:.9g})"


def audit_markdown(rows):
    lines = [
        "| function (argument) | point | dtype | finding | jaxrules |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["finding"]:
            fix = FIXES.get(r["name"], "—")
            lines.append(
                f"| `{r['name']}` | {r['region']} {tuple(r['point'])} | {r['dtype']} | "
                f"{r['detail']} | {fix} |"
            )
    clean = sorted({r["name"] for r in rows} - {r["name"] for r in rows if r["finding"]})
    lines += ["", f"No finding ({len(clean)}): " + ", ".join(f"`{n}`" for n in clean) + "."]
    return "\n".join(lines)


# -- accuracy of jaxrules' functions -------------------------------------------------------------
def _grid(rng, n, ranges):
    return [tuple(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) for lo, hi in ranges)
            for _ in range(n)]  # fmt: skip


def _tails(lower, upper, split):
    """The value and first partials of `lower` (a CDF) from whichever tail is the smaller: the
    other's complement would lose its digits (and its derivatives all of them)."""

    def values(*p):
        nargs = len(p)
        unit = lambda k: tuple(int(j == k) for j in range(nargs))
        if split(*p):  # the upper tail is the small one: F = 1 − U, ∂F = −∂U
            return [1 - upper(*p)] + [-mp.diff(upper, p, unit(k)) for k in range(nargs)]
        return [lower(*p)] + [mp.diff(lower, p, unit(k)) for k in range(nargs)]

    return values


_gamma_mp = _tails(
    lambda a, x: mp.gammainc(a, 0, x, regularized=True),
    lambda a, x: mp.gammainc(a, x, mp.inf, regularized=True),
    lambda a, x: x > a,
)
_beta_mp = _tails(
    lambda a, b, x: mp.betainc(a, b, 0, x, regularized=True),
    lambda a, b, x: mp.betainc(a, b, x, 1, regularized=True),
    lambda a, b, x: x > a / (a + b),
)


def _plain(f):
    def values(*p):
        nargs = len(p)
        return [f(*p)] + [
            mp.diff(f, p, tuple(int(j == k) for j in range(nargs))) for k in range(nargs)
        ]

    return values


def _accuracy_cases(rng, n):
    shapes = {
        "shapes 0.5–5": (0.5, 5.0),
        "shapes 0.1–10": (0.1, 10.0),
        "shapes 10–100": (10.0, 100.0),
    }
    out = []
    for label, (lo, hi) in shapes.items():
        pts = _grid(rng, n, [(lo, hi), (0.05, 2 * hi)])
        out.append(("gammainc", label, R.gammainc, _gamma_mp, pts))
        pts = [(a, b, float(rng.uniform(0.02, 0.98))) for a, b in _grid(rng, n, [(lo, hi)] * 2)]
        out.append(("betainc", label, R.betainc, _beta_mp, pts))
    t_pts = [(float(rng.normal() * 3), d) for (d,) in _grid(rng, n, [(0.3, 30.0)])]

    def t_mp(t, nu):
        c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
        return mp.mpf(1) / 2 + mp.quad(lambda s: c * (1 + s**2 / nu) ** (-(nu + 1) / 2), [0, t])

    out.append(("student_t_cdf", "df 0.3–30", R.student_t_cdf, _plain(t_mp), t_pts))
    x_pts = [(float(v),) for v in rng.uniform(-20, 20, n)] + [(0.0,)]
    out.append(("i0", "x in [-20, 20]", R.i0, _plain(lambda x: mp.besseli(0, x)), x_pts))
    out.append(("i1", "x in [-20, 20]", R.i1, _plain(lambda x: mp.besseli(1, x)), x_pts))
    # Real orders: x differentiated, and the order too for kve (ive, log_iv: no derivative in it).
    vx = [(float(rng.uniform(0, 20)), float(np.exp(rng.uniform(np.log(1e-2), np.log(50)))))
          for _ in range(n)]  # fmt: skip
    for name, fn, ref in (
        ("ive", R.ive, lambda v, x: mp.besseli(v, x) * mp.exp(-x)),
        ("kve", R.kve, lambda v, x: mp.besselk(v, x) * mp.exp(x)),
        ("log_iv", R.log_iv, lambda v, x: mp.log(mp.besseli(v, x))),
    ):
        values = _plain(ref) if fn is R.kve else _in_x(ref)
        out.append((name, "v in [0, 20], x in [0.01, 50]", fn, values, vx))
    return out


def _in_x(f):
    """Value and the derivative in x only (the last argument); none in v (None: not measured)."""

    def values(v, x):
        return [f(v, x), None, mp.diff(lambda t: f(v, t), x)]

    return values


def _accuracy_grads(fn, nargs):
    if fn in (R.ive, R.log_iv):  # no derivative in the order
        return jax.vmap(lambda v, x: (jnp.zeros_like(v), jax.grad(fn, 1)(v, x)))
    return jax.vmap(jax.grad(fn, tuple(range(nargs))))


def accuracy(n=40, only=None):
    rng = np.random.default_rng(0)
    rows = []
    for name, label, fn, ref, pts in _accuracy_cases(rng, n):
        if only and name != only:
            continue
        nargs = len(pts[0])
        for dtype in ("float64", "float32"):
            cols = [jnp.asarray(c, dtype) for c in zip(*pts)]
            grads = jax.jit(_accuracy_grads(fn, nargs))(*cols)
            vals = jax.jit(jax.vmap(fn))(*cols)
            worst = [0.0] * (nargs + 1)
            for i, p in enumerate(pts):
                p = tuple(float(np.asarray(c[i])) for c in cols)  # the rounded point
                with mp.workdps(ACCURACY_DPS):
                    want = [None if v is None else float(mp.re(v)) for v in ref(*p)]
                got = [float(vals[i])] + [float(g[i]) for g in grads]
                scale = max(abs(w) for w in want[1:] if w is not None)
                for k, (g, w) in enumerate(zip(got, want)):
                    if w is None:  # a derivative the function does not have (the order)
                        worst[k] = None
                        continue
                    floor = abs(w) if k == 0 else max(abs(w), 1e-3 * scale)
                    if floor == 0 or not _representable(floor, dtype):
                        continue  # a value the dtype cannot hold (underflow): not an error
                    worst[k] = max(worst[k], abs(g - w) / floor)
            rows.append(dict(name=name, region=label, dtype=dtype, points=len(pts), worst=worst))
        print(name, label, "done", flush=True)
    return rows


def accuracy_markdown(rows):
    lines = [
        "| function | region | dtype | value | ∂ (each argument, in order) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        w = r["worst"]
        lines.append(
            f"| `{r['name']}` | {r['region']} ({r['points']} points) | {r['dtype']} | "
            f"{w[0]:.1e} | {', '.join('–' if v is None else f'{v:.1e}' for v in w[1:])} |"
        )
    return "\n".join(lines)


# -- timing ------------------------------------------------------------------------------------
def timing(n=10_000, pairs=15, only=None):
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.uniform(0.5, 4.0, n))
    b = jnp.asarray(rng.uniform(0.5, 4.0, n))
    x = jnp.asarray(rng.uniform(0.1, 3.0, n))
    u = jnp.asarray(rng.uniform(0.05, 0.95, n))

    def grad_sum(f, argnum):
        return jax.jit(jax.grad(lambda *args: f(*args).sum(), argnum))

    cases = {
        "gammainc value": (jax.jit(R.gammainc), jax.jit(jsp.gammainc), (a, x)),
        "gammainc ∂x": (grad_sum(R.gammainc, 1), grad_sum(jsp.gammainc, 1), (a, x)),
        "gammainc ∂a": (grad_sum(R.gammainc, 0), grad_sum(jsp.gammainc, 0), (a, x)),
        "betainc value": (jax.jit(R.betainc), jax.jit(jsp.betainc), (a, b, u)),
        "betainc ∂x": (grad_sum(R.betainc, 2), grad_sum(jsp.betainc, 2), (a, b, u)),
        "i0 ∂x": (grad_sum(R.i0, 0), grad_sum(jsp.i0, 0), (x,)),
        "i1 ∂x": (grad_sum(R.i1, 0), grad_sum(jsp.i1, 0), (x,)),
        "ive(0, x) ∂x vs i0e": (grad_sum(lambda x: R.ive(0.0, x), 0), grad_sum(jsp.i0e, 0), (x,)),
        "ive(1, x) ∂x vs i1e": (grad_sum(lambda x: R.ive(1.0, x), 0), grad_sum(jsp.i1e, 0), (x,)),
    }
    rows = []
    for name, (ours, theirs, args) in cases.items():
        if only and name != only:
            continue
        ours(*args).block_until_ready(), theirs(*args).block_until_ready()
        t_ours, t_jax, ratio, spread = interleaved_ratio(
            lambda: ours(*args), lambda: theirs(*args), pairs=pairs
        )
        rows.append(dict(name=name, n=n, ours_s=t_ours, jax_s=t_jax, ratio=ratio, spread=spread))
        print(name, f"{ratio:.2f}", flush=True)
    return rows


def timing_markdown(rows):
    lines = ["| what | n | jaxrules / JAX time (median, range) |", "|---|---|---|"]
    for r in rows:
        lo, hi = r["spread"]
        lines.append(f"| `{r['name']}` | {r['n']} | {r['ratio']:.2f} ({lo:.2f}–{hi:.2f}) |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=("audit", "accuracy", "timing"))
    p.add_argument("--only", help="one function (audit: its name as in the table)")
    p.add_argument("--points", type=int, default=40, help="accuracy: points per region")
    args = p.parse_args(argv)
    run = {"audit": (audit, audit_markdown), "accuracy": (accuracy, accuracy_markdown),
           "timing": (timing, timing_markdown)}[args.part]  # fmt: skip
    kwargs = {"points": args.points} if args.part == "accuracy" else {}
    try:
        rows = run[0](only=args.only, **({"n": kwargs["points"]} if kwargs else {}))
    except Exception:
        traceback.print_exc()
        return 1
    md = run[1](rows)
    print(md)
    if not args.only:
        base = os.path.join(HERE, "results", f"special_{args.part}")
        meta = dict(machine=machine(), jax=jax.__version__)
        with open(base + ".json", "w") as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1, default=str)
        with open(base + ".md", "w") as f:
            f.write(f"<!-- {meta} -->\n" + md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
