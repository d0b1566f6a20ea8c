"""Second-order jets (jaxrules/rules/_jets.py): the arithmetic against JAX's own Hessians, and
a continued fraction and a series with known closed forms, whose derivatives — not only
values — must have converged when the loops stop."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrules.rules import _jets as J


def _jax_jet(fn, theta):
    g = jax.vmap(jax.grad(fn))(theta)
    h = jax.vmap(jax.hessian(fn))(theta)
    return jax.vmap(fn)(theta), g, h


def test_arithmetic_matches_jax_to_second_order(x64):
    theta = jnp.array([[0.3, 1.7], [-0.8, 0.4], [1.1, -2.0]])
    u = J.of(lambda t: jnp.sin(t[..., 0]) * t[..., 1], theta, 2)
    w = J.of(lambda t: 2.0 + t[..., 0] ** 2 + jnp.cos(t[..., 1]), theta, 2)
    got = J.exp(J.div(J.add(J.mul(u, w), J.neg(u)), w))

    def f(t):
        u, w = jnp.sin(t[0]) * t[1], 2.0 + t[0] ** 2 + jnp.cos(t[1])
        return jnp.exp((u * w - u) / w)

    for a, b in zip(got, _jax_jet(f, theta)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    first = J.mul(J.of(lambda t: t[..., 0], theta, 1), J.of(lambda t: t[..., 1], theta, 1))
    assert first.h is None and first.order == 1


def test_continued_fraction_and_series_converge_in_their_derivatives(x64):
    # θ/(1 + θ/(1 + ...)) = (√(1 + 4θ) − 1)/2, and Σ θᵏ/k! = e^θ, with p = 1.
    theta = jnp.array([[0.05], [0.7], [3.0], [40.0]])
    cf = J.continued_fraction(
        (lambda n, t: t[..., 0], lambda n, t: jnp.ones_like(t[..., 0])), theta, 2, max_terms=4096
    )
    want = _jax_jet(lambda t: (jnp.sqrt(1 + 4 * t[0]) - 1) / 2, theta)
    for a, b in zip(cf, want):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    first = J.of(lambda t: jnp.ones_like(t[..., 0]), theta, 2)
    s = J.series(first, lambda k, t: t[..., 0] / k, theta, max_terms=4096)
    for a, b in zip(s, _jax_jet(lambda t: jnp.exp(t[0]), theta)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_not_converged_within_max_terms_is_nan(x64):
    theta = jnp.array([[0.5], [30.0]])
    first = J.of(lambda t: jnp.ones_like(t[..., 0]), theta, 1)
    s = J.series(first, lambda k, t: t[..., 0] / k, theta, max_terms=20)
    assert np.isfinite(s.v[0]) and np.isnan(s.v[1]) and np.isnan(s.g[1]).all()
