"""Special functions (issue 30, first part): `i0`, `i1` against mpmath at 30 digits, value and
first and second derivatives, at 0 (where JAX's derivative of `i0` is wrong) and across the
range, in float64 and float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrules.rules import i0, i1

mp = pytest.importorskip("mpmath")
POINTS = [0.0, 1e-8, 1e-3, 0.5, -1.9999, 2.0, 3.0, -5.5, 20.0]


def _mp_derivatives(order, x):
    with mp.workdps(30):
        f = lambda t: mp.besseli(order, t)
        return [float(f(x)), float(mp.diff(f, x)), float(mp.diff(f, x, 2))]


def _ours(fn, x, dtype):
    x = jnp.asarray(x, dtype)
    d1 = jax.grad(fn)
    return [float(fn(x)), float(d1(x)), float(jax.grad(d1)(x))]


@pytest.mark.parametrize("fn,order", [(i0, 0), (i1, 1)], ids=["i0", "i1"])
def test_value_and_two_derivatives_against_mpmath(x64, fn, order):
    for dtype, rtol in (("float64", 4e-15), ("float32", 3e-6)):
        for x in POINTS:
            want = _mp_derivatives(order, x)
            got = _ours(fn, x, dtype)
            for k, (g, w) in enumerate(zip(got, want)):
                scale = max(abs(w), 1e-300 if w else 1.0)
                assert abs(g - w) <= rtol * scale + (1e-300 if w else 0), (dtype, x, k, g, w)


def test_at_zero_where_jax_0_10_is_wrong(x64):
    # jax-ml/jax#40628: I₀ is even, I₀'(0) = 0; JAX 0.10.2 gives 1.0 (and I₀''(0) = 1.5, not
    # 0.5); JAX 0.12 is right. Ours is right on both.
    # Also I₁''(0) = 0, where 0.10.2 gives 1.
    d = lambda f: float(jax.grad(f)(0.0))
    d2 = lambda f: float(jax.grad(jax.grad(f))(0.0))
    special = jax.scipy.special
    jax_d = (d(special.i0), d2(special.i0), d2(special.i1))
    version = tuple(int(p) for p in jax.__version__.split(".")[:2])
    if version <= (0, 10):
        assert jax_d == (1.0, 1.5, 1.0), jax_d  # the defect (measured on 0.10.2)
    elif version >= (0, 12):
        assert jax_d == (0.0, 0.5, 0.0), jax_d  # fixed (measured on 0.12.0.1)
    assert (float(jax.grad(i0)(0.0)), float(jax.grad(jax.grad(i0))(0.0))) == (0.0, 0.5)
    assert (float(jax.grad(i1)(0.0)), float(jax.grad(jax.grad(i1))(0.0))) == (0.5, 0.0)


def test_elementwise_batched_and_errors(x64):
    x = jnp.linspace(-3.0, 3.0, 12).reshape(3, 4)
    np.testing.assert_allclose(i0(x), jax.scipy.special.i0(x), rtol=1e-15)
    g = jax.vmap(jax.grad(lambda t: i1(t) ** 2))(x.ravel())
    np.testing.assert_allclose(g, 2 * i1(x.ravel()) * (i0(x.ravel()) - i1(x.ravel()) / x.ravel()))
    assert i0(jnp.arange(3)).dtype == jnp.result_type(float)
    with pytest.raises(TypeError, match=r"i1: x is complex"):
        i1(jnp.ones(2) * 1j)
