"""`sqrtm`, `logm`, `polar` and `expm`: what their derivatives cost against their values, and
against JAX's own functions (issue 29).

`sqrtm`, on both paths: the value against `jax.scipy.linalg.sqrtm` (which has no derivative).
`logm`: JAX has none; the value against SciPy's (`scipy.linalg.logm`, NumPy on the same CPU,
timed the same way, for scale). `polar`: the gradient against JAX's gradient of `jax.scipy.linalg.polar(A, method="svd")`
(through its SVD: right at the general points timed here, not at repeated singular values) and
the value against JAX's value. `expm`: its JVP and gradient against JAX's own derivatives of
`jax.scipy.linalg.expm` (general inputs), the target being at most 1. `funm_symmetric`: JVP and
gradient against its value, the gradient against JAX's through `eigh` (target ≤ 1.1).

For n in the sizes, float64, positive stable inputs (the registered generator): the value, the
JVP (value and tangent along a random direction) and the gradient of `sum(sin(sqrtm(A)))`, each
compiled, warmed up and timed interleaved against the value; ratios are median (range) over the
pairs. The target: derivative / value ≤ 1.5 (one reused factorisation).

Run: `python benchmarks/matrix_functions.py [--pairs 5] [--sizes 50 200 500] [--only logm ...]
[--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

import jaxrules as jr
from jaxrules.rules import expm, funm_symmetric, logm, polar, sqrtm


def _report(row: dict, label: str, *cells: tuple[str, str]) -> None:
    """One line: the size, the label, the value's time and each `(title, key)` ratio cell."""
    text = "   ".join(f"{title} {_timing.ratio_cell(row, key):18s}" for title, key in cells)
    print(
        f"n={row['n']:4d} {label:7s} value {row['value_ms']:8.2f} ms   {text.rstrip()}", flush=True
    )


def _sqrtm_rows(n: int, pairs: int) -> list[dict]:
    """`sqrtm` on both paths: JVP and gradient against the value, the value against JAX's."""
    A = jr.inputs.positive_stable(n)(jax.random.key(n), "float64")
    E = jr.inputs.general((n, n))(jax.random.key(n + 1), "float64")
    jax_value = jax.jit(jax.scipy.linalg.sqrtm)
    rows = []
    for method in ("schur", "newton"):
        f = lambda A, m=method: sqrtm(A, method=m)
        value = jax.jit(f)
        jvp = jax.jit(lambda A, E, f=f: jax.jvp(f, (A,), (E,)))
        grad = jax.jit(jax.grad(lambda A, f=f: jnp.sum(jnp.sin(f(A)))))
        row = dict(n=n, method=method)
        for name, g in (("jvp", lambda: jvp(A, E)), ("grad", lambda: grad(A))):
            t_d, t_v = _timing.record_ratio(row, name, g, lambda: value(A), pairs=pairs)
            row.update({f"{name}_ms": 1e3 * t_d, "value_ms": 1e3 * t_v})
        _, t_j = _timing.record_ratio(
            row, "vs_jax", lambda: value(A), lambda: jax_value(A), pairs=pairs
        )
        row.update(jax_ms=1e3 * t_j)
        rows.append(row)
        _report(
            row, method, ("JVP/value", "jvp"), ("grad/value", "grad"), ("value/JAX's", "vs_jax")
        )
    return rows


def _logm_row(n: int, pairs: int) -> dict:
    """`logm`: JVP and gradient against the value, the value against SciPy's."""
    A = jr.inputs.positive_stable(n)(jax.random.key(n), "float64")
    E = jr.inputs.general((n, n))(jax.random.key(n + 1), "float64")
    value = jax.jit(logm)
    jvp = jax.jit(lambda A, E: jax.jvp(logm, (A,), (E,)))
    grad = jax.jit(jax.grad(lambda A: jnp.sum(jnp.sin(logm(A)))))
    A_np = np.asarray(A)
    row = dict(n=n, method="logm")
    _, t_v = _timing.record_ratio(row, "jvp", lambda: jvp(A, E), lambda: value(A), pairs=pairs)
    _timing.record_ratio(row, "grad", lambda: grad(A), lambda: value(A), pairs=pairs)
    _timing.record_ratio(
        row, "vs_scipy", lambda: value(A), lambda: scipy.linalg.logm(A_np), pairs=pairs
    )
    row.update(value_ms=1e3 * t_v)
    _report(
        row, "logm", ("JVP/value", "jvp"), ("grad/value", "grad"), ("value/SciPy's", "vs_scipy")
    )
    return row


def _polar_row(n: int, pairs: int) -> dict:
    """`polar`: the gradient against the value and against JAX's (through the SVD)."""
    A = jr.inputs.general((n, n))(jax.random.key(n), "float64")
    loss = lambda f: lambda A: jnp.sum(jnp.sin(f(A)[0])) + jnp.sum(jnp.cos(f(A)[1]))
    jax_polar = lambda A: jax.scipy.linalg.polar(A, method="svd")
    value, jax_value = jax.jit(polar), jax.jit(jax_polar)
    grad, jax_grad = jax.jit(jax.grad(loss(polar))), jax.jit(jax.grad(loss(jax_polar)))
    row = dict(n=n, method="polar")
    t_g, t_v = _timing.record_ratio(row, "grad", lambda: grad(A), lambda: value(A), pairs=pairs)
    _timing.record_ratio(row, "vs_jax", lambda: value(A), lambda: jax_value(A), pairs=pairs)
    _timing.record_ratio(row, "grad_vs_jax", lambda: grad(A), lambda: jax_grad(A), pairs=pairs)
    row.update(grad_ms=1e3 * t_g, value_ms=1e3 * t_v)
    _report(row, "polar", ("grad/value", "grad"), ("value/JAX's", "vs_jax"),
            ("grad/JAX's grad", "grad_vs_jax"))  # fmt: skip
    return row


def run(pairs: int, sizes, only=None) -> list[dict]:
    """The rows of the families in `only` (default all), each at every size."""
    rows = []
    for family, row in FAMILIES.items():
        if only and family not in only:
            continue
        for n in sizes:
            got = row(n, pairs)
            rows.extend(got if isinstance(got, list) else [got])
    return rows


def _funm_row(n: int, pairs: int) -> dict:
    """`funm_symmetric(jnp.exp, ·)` at a general symmetric point: JVP and VJP (forward pass and
    backward, for a fixed direction / cotangent) against the value; the gradient of a loss
    `Σ sin(f(A))` against the value and against JAX's own gradient through `eigh` (finite at
    distinct eigenvalues). The loss's `sin` and `cos` of `exp` of the eigenvalues (up to e^n)
    take the slow argument reduction: at n = 50 its `cos` costs more than the
    rule's whole backward pass, hence the VJP column."""
    A = jr.inputs.symmetric(n)(jax.random.key(n), "float64")
    E = jr.inputs.symmetric(n)(jax.random.key(n + 1), "float64")
    G = jr.inputs.general((n, n))(jax.random.key(n + 2), "float64")
    f = lambda A: funm_symmetric(jnp.exp, A)
    plain = lambda A: (lambda w, V: (V * jnp.exp(w)) @ V.T)(*jnp.linalg.eigh(A))
    loss = lambda f: lambda A: jnp.sum(jnp.sin(f(A)))
    value = jax.jit(f)
    jvp = jax.jit(lambda A, E: jax.jvp(f, (A,), (E,)))
    vjp = jax.jit(lambda A, G: jax.vjp(f, A)[1](G))
    grad, jax_grad = jax.jit(jax.grad(loss(f))), jax.jit(jax.grad(loss(plain)))
    row = dict(n=n, method="funm_symmetric")
    _, t_v = _timing.record_ratio(row, "jvp", lambda: jvp(A, E), lambda: value(A), pairs=pairs)
    _timing.record_ratio(row, "vjp", lambda: vjp(A, G), lambda: value(A), pairs=pairs)
    _timing.record_ratio(row, "grad", lambda: grad(A), lambda: value(A), pairs=pairs)
    _timing.record_ratio(row, "grad_vs_jax", lambda: grad(A), lambda: jax_grad(A), pairs=pairs)
    row.update(value_ms=1e3 * t_v)
    _report(row, "funm", ("JVP/value", "jvp"), ("VJP/value", "vjp"), ("grad/value", "grad"),
            ("grad/JAX's grad (eigh)", "grad_vs_jax"))  # fmt: skip
    return row


def _expm_row(n: int, pairs: int) -> dict:
    """`expm`'s JVP and gradient against JAX's own derivatives of `jax.scipy.linalg.expm`
    (JAX differentiates its Padé approximant and squarings), and the values."""
    A = jr.inputs.general((n, n))(jax.random.key(n), "float64")
    E = jr.inputs.general((n, n))(jax.random.key(n + 1), "float64")
    loss = lambda f: lambda A: jnp.sum(jnp.sin(f(A)))
    ours = dict(
        value=jax.jit(expm),
        jvp=jax.jit(lambda A, E: jax.jvp(expm, (A,), (E,))),
        grad=jax.jit(jax.grad(loss(expm))),
    )
    jaxs = dict(
        value=jax.jit(jax.scipy.linalg.expm),
        jvp=jax.jit(lambda A, E: jax.jvp(jax.scipy.linalg.expm, (A,), (E,))),
        grad=jax.jit(jax.grad(loss(jax.scipy.linalg.expm))),
    )
    args = dict(value=(A,), jvp=(A, E), grad=(A,))
    row = dict(n=n, method="expm")
    for k in ("value", "jvp", "grad"):
        t, t_j = _timing.record_ratio(
            row, f"{k}_vs_jax", lambda k=k: ours[k](*args[k]), lambda k=k: jaxs[k](*args[k]),
            pairs=pairs,
        )  # fmt: skip
        row.update({f"{k}_ms": 1e3 * t, f"jax_{k}_ms": 1e3 * t_j})
    _report(row, "expm", ("value/JAX's", "value_vs_jax"), ("JVP/JAX's JVP", "jvp_vs_jax"),
            ("grad/JAX's grad", "grad_vs_jax"))  # fmt: skip
    return row


FAMILIES = {
    "sqrtm": _sqrtm_rows,
    "logm": _logm_row,
    "polar": _polar_row,
    "expm": _expm_row,
    "funm_symmetric": _funm_row,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--only", nargs="+", choices=list(FAMILIES), help="these families only")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    print(
        f"sqrtm, logm, polar, expm, funm_symmetric, float64, {a.pairs} pairs; {_timing.machine()}"
    )
    rows = run(a.pairs, a.sizes, a.only)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": _timing.machine(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
