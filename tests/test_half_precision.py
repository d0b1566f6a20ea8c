"""Half precision (`float16`, `bfloat16`) across the library's registry: every rule either
computes in float32 and rounds back — the elementwise special functions and distributions:
values and derivatives within an ulp of float32's at the same inputs — or refuses with a
`TypeError` naming the rule, the argument and the cure — the matrix rules (LAPACK has no
half-precision kernels) and the solvers (3 digits cannot meet a convergence test).

Before: `gammainc` and `poisson_cdf` several ulps off in float16 (their series ran in it),
`odeint` and `krylov_solve` NaN, the matrix rules JAX's `NotImplementedError: Unsupported dtype
float16` from inside the LU, `student_t_cdf` a `TypeError` from inside JAX."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import LIBRARY_CASES

import jaxrules as jr
from jaxrules._check._layout import argspec, make_layout

REFUSAL = re.compile(
    r"^(\w+): (\w+) is (\w+); \1 works in float32 or float64 \(.+\)\. Cast it, e\.g\. "
    r"jnp\.asarray\(\2, jnp\.float32\)"
)
# The fast tier checks float16 values and refusals; the slow tier derivatives and bfloat16.
MODES = [
    pytest.param("float16", False, id="float16"),
    pytest.param("float16", True, id="float16-grad", marks=pytest.mark.slow),
    pytest.param("bfloat16", True, id="bfloat16-grad", marks=pytest.mark.slow),
]


def _floating(leaves):
    return [o for o in leaves if jnp.issubdtype(jnp.result_type(o), jnp.floating)]


def _close(got, want, dtype, what):
    """`got` (half) within 1.5 ulps of float32's `want`, relative to `want`'s largest entry,
    and finite exactly where `want` rounded to `dtype` is (a derivative of 1e5 is `inf` in
    float16)."""
    eps = float(jnp.finfo(dtype).eps)
    for g, w in zip(got, want):
        assert g.dtype == dtype, (what, g.dtype)
        g, w = np.asarray(g, np.float64), np.asarray(w.astype(dtype), np.float64)
        np.testing.assert_array_equal(np.isfinite(g), np.isfinite(w), err_msg=what)
        ok = np.isfinite(w)
        if ok.any():
            err = np.abs(g[ok] - w[ok]).max() / max(np.abs(w[ok]).max(), 1e-30)
            assert err <= 1.5 * eps, f"{what}: {err / eps:.2f} ulps from float32"


@pytest.mark.parametrize("dtype, grad", MODES)
@pytest.mark.parametrize("name, case", LIBRARY_CASES)
def test_half_precision_is_computed_in_float32_or_refused_by_name(name, case, dtype, grad):
    rec = jr.get(name)
    args = rec.draw(jax.random.key(0), "float32", rec.cases[case])
    layout, xs, fixed = make_layout(
        rec.for_case(rec.cases[case]), args, argspec(rec, rec.cases[case])
    )
    half = lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v
    xs, fixed = (
        [half(x) for x in xs],
        [half(jnp.asarray(f)) if hasattr(f, "dtype") else f for f in fixed],
    )
    F = layout.function(rec.fn)
    try:
        out = _floating(F(xs, fixed))
    except TypeError as e:
        m = REFUSAL.match(str(e))
        assert m and m.group(3) == dtype, str(e)
        return
    # Float32 at the same (rounded) inputs, static numbers included (a static order v = 7.4
    # becomes a float16 7.398 in the rule, as jnp promotes a Python float).
    single = lambda v: v.astype(jnp.float32) if jnp.issubdtype(v.dtype, jnp.floating) else v
    rounded = {
        k: float(np.asarray(v, dtype)) if isinstance(v, float) else v
        for k, v in layout.static.items()
    }
    F32 = dataclasses.replace(layout, static=rounded).function(rec.fn)
    xs32 = [single(x) for x in xs]
    fixed32 = [single(f) if hasattr(f, "dtype") else f for f in fixed]
    _close(out, _floating(F32(xs32, fixed32)), dtype, f"{name} value")
    if not grad:
        return
    loss = lambda F, fixed: (
        lambda xs: sum(jnp.sum(o.astype(jnp.float32)) for o in _floating(F(xs, fixed)))
    )
    try:
        want = jax.grad(loss(F32, fixed32))(xs32)
    except ValueError as e:  # an argument declared constant (matvec_fixed's A)
        assert "declared constant" in str(e)
        return
    _close(jax.grad(loss(F, fixed))(xs), want, dtype, f"{name} gradient")
