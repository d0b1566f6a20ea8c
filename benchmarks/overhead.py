"""Decorator overhead: jaxrules' decorators against the same rule on raw jax.custom_jvp/vjp.

Measures, interleaved (jaxrules, raw, jaxrules, raw, ...), median ratio and spread:
- jitted run time of the gradient (must be equal within noise), plus whether the optimised
  HLO of the two is identical;
- trace + compile time of ``jit(grad(f))`` from scratch (target <= 1.10x);
- dispatch of a jitted call of a small function that uses the rule (target <= 1.2x: on JAX
  >= 0.12 the hijax primitive is staged on every call, docs/compatibility.md);
- eager call time of the function (target <= 1.2x).

Run: ``python benchmarks/overhead.py [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import _timing

import jaxrules as jr
from jaxrules import _backend as jr_backend


def _rules():
    def jvp(primals, tangents):
        x, y = primals
        dx, dy = tangents
        return jnp.sin(x) * y, jnp.cos(x) * y * dx + jnp.sin(x) * dy

    def fwd(x, y):
        return jnp.sin(x) * y, (x, y)

    def bwd(res, g):
        x, y = res
        return jnp.cos(x) * y * g, jnp.sin(x) * g

    return jvp, fwd, bwd


def make(kind: str):
    jvp, fwd, bwd = _rules()
    prim = lambda x, y: jnp.sin(x) * y
    if kind == "raw_jvp":
        f = jax.custom_jvp(prim)
        f.defjvp(jvp)
    elif kind == "raw_vjp":
        f = jax.custom_vjp(prim)
        f.defvjp(fwd, bwd)
    elif kind == "jr_jvp":
        f = jr.custom_jvp(prim)
        f.defjvp(jvp)
    elif kind == "jr_vjp":
        f = jr.custom_vjp(prim)
        f.defvjp(fwd, bwd)
    elif kind == "jr_both":
        f = jr.custom_vjp(prim)
        f.defjvp(jvp)
        f.defvjp(fwd, bwd)
    else:
        raise ValueError(kind)
    return f


def _hlo(f, x, y):
    txt = jax.jit(jax.grad(lambda x, y: f(x, y).sum())).lower(x, y).compile().as_text()
    # Names and metadata differ between the two; compare the instructions.
    txt = re.sub(r"metadata=\{[^}]*\}", "", txt)
    txt = re.sub(r"%[\w.\-]+", "%v", txt)
    return sorted(
        line.split("=", 1)[1].strip()
        for line in txt.splitlines()
        if line.strip().startswith(("%", "ROOT")) and "=" in line
    )


def compile_time(f, x, y):
    # A fresh function object each time, so that nothing is cached.
    g = jax.jit(jax.grad(lambda x, y: f(x, y).sum()))
    return lambda: g.lower(x, y).compile()


def run(n: int = 1000, pairs: int = 7):
    x = jnp.linspace(0.1, 1.0, n)
    y = jnp.linspace(-1.0, 2.0, n)
    rows = []
    for ours, raw in [("jr_jvp", "raw_jvp"), ("jr_vjp", "raw_vjp"), ("jr_both", "raw_vjp")]:
        f, g = make(ours), make(raw)
        gf = jax.jit(jax.grad(lambda x, y: f(x, y).sum()))
        gg = jax.jit(jax.grad(lambda x, y: g(x, y).sum()))
        run_ = _timing.interleaved_ratio(lambda: gf(x, y), lambda: gg(x, y), pairs=pairs, inner=200)

        def fresh(h):
            def go():
                k = jax.jit(jax.grad(lambda x, y: h(x, y).sum()))
                return k.lower(x, y).compile()

            return go

        comp = _timing.interleaved_ratio(fresh(make(ours)), fresh(make(raw)), pairs=pairs)
        eager = _timing.interleaved_ratio(lambda: f(x, y), lambda: g(x, y), pairs=pairs, inner=200)
        # Dispatch: a jitted call of a small function (8 elements) that uses the rule.
        xs, ys = x[:8], y[:8]
        jf = jax.jit(lambda x, y: jnp.tanh(f(x, y)))
        jg = jax.jit(lambda x, y: jnp.tanh(g(x, y)))
        disp = _timing.interleaved_ratio(
            lambda: jf(xs, ys), lambda: jg(xs, ys), pairs=pairs, inner=500
        )
        same_hlo = _hlo(f, x, y) == _hlo(g, x, y)
        rows.append(
            dict(
                ours=ours,
                raw=raw,
                jit_grad_ratio=run_[2],
                jit_grad_spread=run_[3],
                compile_ratio=comp[2],
                compile_spread=comp[3],
                compile_ms=(comp[0] * 1e3, comp[1] * 1e3),
                eager_ratio=eager[2],
                eager_spread=eager[3],
                eager_us=(eager[0] * 1e6, eager[1] * 1e6),
                jit_call_ratio=disp[2],
                jit_call_spread=disp[3],
                jit_call_us=(disp[0] * 1e6, disp[1] * 1e6),
                same_optimised_hlo=same_hlo,
            )
        )
    return rows


def table(rows) -> str:
    out = [
        "| jaxrules vs raw JAX | jit(grad) run time | trace+compile | jitted call (dispatch) "
        "| eager call | same optimised HLO |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['ours']} vs {r['raw']} | {r['jit_grad_ratio']:.2f}× "
            f"({r['jit_grad_spread'][0]:.2f}–{r['jit_grad_spread'][1]:.2f}) | "
            f"{r['compile_ratio']:.2f}× ({r['compile_ms'][0]:.0f} vs {r['compile_ms'][1]:.0f} ms) | "
            f"{r['jit_call_ratio']:.2f}× ({r['jit_call_us'][0]:.1f} vs {r['jit_call_us'][1]:.1f} µs) | "
            f"{r['eager_ratio']:.2f}× ({r['eager_us'][0]:.0f} vs {r['eager_us'][1]:.0f} µs) | "
            f"{'yes' if r['same_optimised_hlo'] else 'no'} |"
        )
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None)
    p.add_argument("--pairs", type=int, default=7)
    a = p.parse_args(argv)
    rows = run(pairs=a.pairs)
    print(f"machine: {_timing.machine()}, bind: {jr_backend.describe()['bind']}")
    print(table(rows))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": _timing.machine(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
