"""Distribution functions (issue 30, items 1–2): values and derivatives in the shape
parameters against mpmath computed *independently of the incomplete beta and gamma functions*
(sums of probabilities, quadrature of densities), and the Student-t CDF at t = 0, where the
composition of betainc's rules would be NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrules.rules import (
    beta_cdf,
    binomial_cdf,
    gamma_cdf,
    negative_binomial_cdf,
    poisson_cdf,
    student_t_cdf,
)

mp = pytest.importorskip("mpmath")


def _t_cdf_mp(t, nu):
    c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
    return mp.mpf(1) / 2 + mp.quad(lambda s: c * (1 + s**2 / nu) ** (-(nu + 1) / 2), [0, t])


def _binomial_mp(k, n, p):  # Σ_{j ≤ k} C(n, j) p^j (1 − p)^{n−j}, real n
    return mp.fsum(mp.binomial(n, j) * p**j * (1 - p) ** (n - j) for j in range(int(k) + 1))


def _nbinom_mp(k, n, p):  # Σ_{j ≤ k} Γ(j + n)/(j! Γ(n)) p^n (1 − p)^j
    return mp.fsum(
        mp.gamma(j + n) / (mp.factorial(j) * mp.gamma(n)) * p**n * (1 - p) ** j
        for j in range(int(k) + 1)
    )


def _poisson_mp(k, mu):
    return mp.fsum(mp.exp(-mu) * mu**j / mp.factorial(j) for j in range(int(k) + 1))


def _derivs(f, point, argnums):
    """mpmath: the value, the first partials in `argnums`, the second in the first of them."""
    with mp.workdps(30):
        out = [float(f(*point))]
        for i in argnums:
            out.append(float(mp.diff(lambda v: f(*point[:i], v, *point[i + 1 :]), point[i])))
        i = argnums[0]
        out.append(float(mp.diff(lambda v: f(*point[:i], v, *point[i + 1 :]), point[i], 2)))
    return out


def _ours(fn, point, argnums):
    point = [jnp.asarray(p, jnp.float64) for p in point]
    g = jax.grad(fn, argnums)(*point)
    i = argnums[0]
    return [float(fn(*point)), *map(float, g), float(jax.grad(jax.grad(fn, i), i)(*point))]


CASES = [
    # fn, mpmath version, point, differentiable arguments (the second derivative: the first)
    (student_t_cdf, _t_cdf_mp, (0.7, 3.5), (1, 0)),
    (student_t_cdf, _t_cdf_mp, (-4.0, 1.3), (1, 0)),
    (student_t_cdf, _t_cdf_mp, (0.0, 2.5), (1, 0)),
    (binomial_cdf, _binomial_mp, (3, 10.5, 0.37), (1, 2)),
    (negative_binomial_cdf, _nbinom_mp, (4, 2.5, 0.3), (1, 2)),
    (poisson_cdf, _poisson_mp, (3, 2.2), (1,)),
    (gamma_cdf, lambda x, a: mp.gammainc(a, 0, x, regularized=True), (1.3, 2.7), (1, 0)),
    (beta_cdf, lambda x, a, b: mp.betainc(a, b, 0, x, regularized=True), (0.3, 2.0, 5.0), (1, 2)),
]


@pytest.mark.parametrize(
    "fn, ref, point, argnums", CASES, ids=[f"{c[0].__name__}{c[2]}" for c in CASES]
)
def test_against_mpmath(x64, fn, ref, point, argnums):
    want = _derivs(ref, point, argnums)
    got = _ours(fn, point, argnums)
    scale = max(abs(w) for w in want[1:-1])
    for k, (g, w) in enumerate(zip(got, want)):
        assert abs(g - w) <= 5e-12 * max(abs(w), 1e-3 * scale), (k, g, w)


def test_student_t_at_zero_is_exact_to_second_order(x64):
    # At t = 0: ∂F/∂t is the density there, ∂F/∂ν = 0 (F(0) = ½ for every ν), and the mixed
    # second derivative is ∂(density)/∂ν — the composition of betainc's rules gives NaN here.
    nu = 2.5
    with mp.workdps(30):
        pdf0 = lambda n: mp.gamma((n + 1) / 2) / (mp.sqrt(n * mp.pi) * mp.gamma(n / 2))
        want = [float(pdf0(nu)), 0.0, float(mp.diff(pdf0, nu))]
    H = jax.hessian(student_t_cdf, (0, 1))(0.0, nu)
    g = jax.grad(student_t_cdf, (0, 1))(0.0, nu)
    np.testing.assert_allclose([g[0], g[1], H[0][1]], want, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(H[1][0], H[0][1], rtol=1e-13)
    assert float(H[0][0]) == 0.0 and float(H[1][1]) == 0.0  # F(t) − ½ is odd in t
    # The composition without the rule: NaN at t = 0 (what the rule exists for).
    from jaxrules.rules.distributions import _t_cdf_value

    assert np.isnan(jax.grad(_t_cdf_value)(0.0, nu))


def test_counts_loc_scale_and_batching(x64):
    # Counts are floored and carry no derivative; outside the support the CDF is 0 or 1 with
    # zero (not NaN) derivatives; loc/scale as jax.scipy.stats.
    assert float(binomial_cdf(3.7, 10.0, 0.4)) == float(binomial_cdf(3, 10.0, 0.4))
    for k, want in ((-1, 0.0), (12, 1.0)):
        assert float(binomial_cdf(k, 10.0, 0.4)) == want
        assert [float(v) for v in jax.grad(binomial_cdf, (1, 2))(k, 10.0, 0.4)] == [0.0, 0.0]
    assert float(jax.grad(poisson_cdf, 1)(-1, 1.5)) == 0.0
    np.testing.assert_allclose(
        gamma_cdf(3.0, 2.0, loc=1.0, scale=2.0), jax.scipy.stats.gamma.cdf(3.0, 2.0, 1.0, 2.0)
    )
    np.testing.assert_allclose(
        beta_cdf(0.6, 2.0, 3.0, loc=0.1, scale=2.0),
        jax.scipy.stats.beta.cdf(0.6, 2.0, 3.0, 0.1, 2.0),
    )
    x = jnp.linspace(-5.0, 5.0, 7)
    df = jnp.array([0.7, 1.0, 3.0, 30.0])[:, None]
    F = student_t_cdf(x, df)
    assert F.shape == (4, 7) and bool((jnp.diff(F, axis=1) > 0).all())
    g = jax.jit(jax.vmap(jax.grad(student_t_cdf, 1), (None, 0)))(1.5, df[:, 0])
    assert np.isfinite(g).all()
    with pytest.raises(TypeError, match=r"student_t_cdf: df is complex"):
        student_t_cdf(1.0, 2.0 + 1j)
