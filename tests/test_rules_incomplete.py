"""The incomplete gamma and beta functions (issue 30, items 1–2): values and first and second
derivatives in every argument against mpmath at 30 digits, in both regions of each expansion
(series / continued fraction, direct / swapped), where JAX raises; the domain's edges; third
order's error; elementwise batching under jit and vmap."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrules.rules import betainc, gammainc, gammaincc

mp = pytest.importorskip("mpmath")

# (a, x): series (x <= 1 or x <= a) and continued-fraction (x > max(1, a)) regions, small and
# large a, near the switch.
GAMMA_POINTS = [(0.1, 0.05), (0.5, 2.0), (2.0, 1.5), (3.3, 0.7), (3.3, 12.0), (10.0, 11.0),
                (50.0, 40.0), (150.0, 160.0), (0.01, 3.0), (0.3, 30.0)]  # fmt: skip
# (a, b, x): direct (x < (a+1)/(a+b+2)) and swapped regions, small and large shapes.
BETA_POINTS = [(2.0, 3.0, 0.4), (0.5, 0.7, 0.2), (0.5, 0.7, 0.9), (5.0, 1.5, 0.8),
               (30.0, 40.0, 0.45), (0.1, 10.0, 0.01), (1.0, 1.0, 0.3), (3.3, 0.4, 0.999)]  # fmt: skip


def _mp_partials(f, point, orders):
    with mp.workdps(30):
        return [float(mp.diff(f, point, o)) for o in orders]


def _close(got, want, rtol, scale):
    # Relative to the value, or to the largest partial of the same order (a derivative near
    # one of its zeros is judged against its siblings' size, as a gradient is).
    return abs(got - want) <= rtol * max(abs(want), 1e-3 * scale)


def _check_partials(name, got, want, rtol):
    firsts = [w for w, o in want if sum(o) == 1]
    seconds = [w for w, o in want if sum(o) == 2]
    for g, (w, o) in zip(got, want):
        scale = {0: abs(w), 1: max(map(abs, firsts)), 2: max(map(abs, seconds))}[sum(o)]
        assert _close(float(g), w, rtol, scale), (name, o, float(g), w)


# The order of `_partials`' outputs: value, gradient, Hessian's upper triangle by rows.
GAMMA_ORDERS = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]


def _partials(fn, nargs):
    """`fn`'s value, gradient and Hessian's upper triangle at many points: one compiled,
    vmapped program (eager calls would compile the loops once per point)."""
    argnums = tuple(range(nargs))

    def one(*args):
        g = jax.grad(fn, argnums)(*args)
        H = jax.hessian(fn, argnums)(*args)
        firsts = [g[i] for i in argnums]
        seconds = [H[i][j] for i in argnums for j in argnums if i <= j]
        return jnp.stack([fn(*args), *firsts, *seconds])

    return jax.jit(jax.vmap(one))


def _ours(fn, points, dtype):
    cols = [jnp.asarray(c, dtype) for c in zip(*points)]
    return np.asarray(_partials(fn, len(cols))(*cols), float)


@pytest.mark.parametrize("fn,lower", [(gammainc, True), (gammaincc, False)], ids=["P", "Q"])
def test_gammainc_against_mpmath(x64, fn, lower):
    ours64, ours32 = (_ours(fn, GAMMA_POINTS, d) for d in ("float64", "float32"))
    for i, (a, x) in enumerate(GAMMA_POINTS):
        f = lambda s, t: (
            mp.gammainc(s, 0, t, regularized=True)
            if lower
            else mp.gammainc(s, t, mp.inf, regularized=True)
        )
        want = list(zip(_mp_partials(f, (a, x), GAMMA_ORDERS), GAMMA_ORDERS))
        _check_partials(("float64", a, x), ours64[i], want, 5e-12)
        if a <= 10:  # float32: see docs/library/special.md for larger shapes
            _check_partials(("float32", a, x), ours32[i], want, 2e-4)


def _gamma_quadrature(a, x):
    """Q(a, x), ∂a Q, ∂a² Q by mpmath's quadrature of the density (its hypergeometric series
    give up at these shapes): ∫_x^∞ f (1, log t − ψ(a), (log t − ψ(a))² − ψ'(a)) dt."""
    A, X = mp.mpf(a), mp.mpf(x)
    sd, lg, psi, psi1 = mp.sqrt(A), mp.loggamma(A), mp.digamma(A), mp.psi(1, A)
    density = lambda t: mp.exp((A - 1) * mp.log(t) - t - lg)
    grid = [X] + [A + j * sd / 2 for j in range(-80, 81) if A + j * sd / 2 > X] + [A + 41 * sd]
    weights = (lambda t: 1, lambda t: mp.log(t) - psi, lambda t: (mp.log(t) - psi) ** 2 - psi1)
    return [float(mp.quad(lambda t: density(t) * w(t), grid)) for w in weights]


def test_gammainc_at_large_shapes(x64):
    # From a = 1e5 Temme's expansion. Before it the loops: just below x = a the series needs
    # ~8.6 √a terms — with a cap of 4096 every value and derivative was NaN from a ≈ 2e5 on
    # (poisson_cdf at a mean of 1e6), with 2^17 from a ≈ 2e8 (at 1e12 here, and poisson_cdf at
    # 1e9) — and they kept ~3e-13 at 1e5–1e6, the expansion ~1e-14. References: mpmath's
    # 1 − Q in 40 digits (P ~ 1e-9 keeps 30) where its series converge, and beyond, the
    # density's quadrature (`_gamma_quadrature`).
    from jaxrules.rules import poisson_cdf

    near = [(4e5, 4e5 - 500.0), (1e6, 1e6 - 6000.0), (1e6, 1e6 - 1000.0)]
    far = [(3e5, 3e5 - 900.0), (4e8, 4e8 + 1.0), (1e10, 1e10 + 2e5), (1e12, 1e12 - 3e6)]
    ours = _ours(gammainc, near + far, "float64")
    lower = lambda s, t: 1 - mp.gammainc(s, t, mp.inf, regularized=True)
    for i, (a, x) in enumerate(near):
        with mp.workdps(40):
            want = [float(mp.diff(lower, (a, x), o)) for o in GAMMA_ORDERS]
        _check_partials(("float64", a, x), ours[i], list(zip(want, GAMMA_ORDERS)), 5e-12)
    with mp.workdps(30):
        upper = np.array([_gamma_quadrature(*p) for p in far])  # Q, ∂a Q, ∂a² Q
    # P, ∂a P, ∂a² P (GAMMA_ORDERS' 0, 1, 3) and Q.
    np.testing.assert_allclose(ours[len(near) :, [0, 1, 3]], [1, 0, 0] - upper, rtol=5e-14)
    a, x = (jnp.array(c) for c in zip(*far))
    np.testing.assert_allclose(gammaincc(a, x), upper[:, 0], rtol=5e-14)
    k, mu = 1e6 + 500.0, 1e6
    with mp.workdps(40):
        want = mp.gammainc(k + 1, mu, mp.inf, regularized=True)
        dmu = mp.diff(lambda m: mp.gammainc(k + 1, m, mp.inf, regularized=True), mu)
    F, g = jax.value_and_grad(poisson_cdf, 1)(k, mu)
    np.testing.assert_allclose([F, g], [float(want), float(dmu)], rtol=5e-12)
    k, mu = 1e9 + 3e4, 1e9  # P(X ≤ k) = Q(k + 1, μ)
    with mp.workdps(30):
        want = _gamma_quadrature(k + 1, mu)[0]
    np.testing.assert_allclose(poisson_cdf(k, mu), want, rtol=5e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gammainc_large_shape_far_from_the_mean(x64, dtype):
    # Saturated values with finite derivatives far from x = a: in float32 u = (x − a)/a rounds
    # to −1 at x = 1e-3 (log 0 in the expansion), and at x = 1e35 the second derivative in a
    # overflowed to NaN (before the expansion too).
    a = jnp.full(4, 2e5, dtype)
    x = jnp.array([1e-3, 1.0, 3e5, 1e35], dtype)
    d2 = jax.jit(jax.vmap(jax.grad(jax.grad(gammainc))))(a, x)
    np.testing.assert_array_equal(gammainc(a, x), [0, 0, 1, 1])
    np.testing.assert_array_equal(gammaincc(a, x), [1, 1, 0, 0])
    np.testing.assert_array_equal(d2, 0)


def test_derivatives_where_the_density_underflows_or_overflows(x64):
    # float32: log(x/a) at x = 1e-30, a = 1e12 underflowed to log 0 and the density's log was
    # ∞ - ∞ (∂x NaN); at (10, 1e30) the prefactor's jet was 0 · ∞ in ∂²a (its first derivative
    # in a, ~1e22 there, squared). Both are 0 (the density and P's curvature underflow).
    a = jnp.array([1e12, 10.0, 10.0], jnp.float32)
    x = jnp.array([1e-30, 1e30, 1e-37], jnp.float32)
    for fn in (gammainc, gammaincc):
        d = lambda i, j: jax.grad(jax.grad(fn, i), j)
        partials = lambda a, x: jnp.stack(
            [jax.grad(fn, 1)(a, x), d(1, 1)(a, x), d(0, 1)(a, x), d(0, 0)(a, x)]
        )
        np.testing.assert_array_equal(jax.jit(jax.vmap(partials))(a, x), 0, err_msg=fn.__name__)


def test_betainc_at_shapes_that_overflow_float32_squared():
    # The fraction's coefficients multiplied the shapes before the powers of y: p² overflowed
    # float32 from p ~ 1e19, and I far from its mean was NaN (value and derivatives), not 0.
    a = jnp.array([5e19, 1e30, 0.5], jnp.float32)
    b = jnp.array([0.5, 2.0, 5e19], jnp.float32)
    x = jnp.array([0.5, 0.5, 0.5], jnp.float32)
    np.testing.assert_array_equal(betainc(a, b, x), [0, 0, 1])
    g = jax.jit(jax.vmap(jax.grad(betainc, (0, 1, 2))))(a, b, x)
    np.testing.assert_array_equal(np.stack(g), 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_betainc_second_derivative_in_x_where_one_minus_x_rounds_to_one(x64, dtype):
    # The branch not taken, log1p(-(1 - x)) = log1p(-1) = -∞, met reverse mode's zero
    # cotangent: ∂²I/∂x² was NaN for every x < ε/2, whatever the shapes.
    a, b = jnp.array([0.5, 2.0, 1.5], dtype), jnp.array([3.0, 0.7, 40.0], dtype)
    x = jnp.full(3, 1e-10 if dtype == "float32" else 1e-20, dtype)
    got = jax.vmap(jax.grad(jax.grad(betainc, 2), 2))(a, b, x)
    a, b, x = (np.asarray(u, np.float64) for u in (a, b, x))
    with mp.workdps(30):
        want = [float(mp.diff(lambda t: mp.betainc(*ab, 0, t, regularized=True), xi, 2))
                for *ab, xi in zip(a, b, x)]  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12)


BETA_ORDERS = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (2, 0, 0), (1, 1, 0), (1, 0, 1),
               (0, 2, 0), (0, 1, 1), (0, 0, 2)]  # fmt: skip


def test_betainc_against_mpmath(x64):
    ours64, ours32 = (_ours(betainc, BETA_POINTS, d) for d in ("float64", "float32"))
    for i, (a, b, x) in enumerate(BETA_POINTS):
        f = lambda *t: mp.betainc(t[0], t[1], 0, t[2], regularized=True)
        want = list(zip(_mp_partials(f, (a, b, x), BETA_ORDERS), BETA_ORDERS))
        _check_partials(("float64", a, b, x), ours64[i], want, 5e-12)
        if max(a, b) <= 10:
            _check_partials(("float32", a, b, x), ours32[i], want, 2e-4)


def test_betainc_at_far_apart_and_at_large_shapes(x64):
    # Above the mean with b >> a the fraction runs on (b, a, 1 - x): the plain fraction's
    # cancellations needed 1 - x exactly and cost ~ε b/a (value 6.6e-3 off at (2, 5e13), the
    # derivative in a 45 % at (2, 5e16)); DiDonato-Morris's, given x itself, is exact.
    points = [(2.0, 5e13, 8e-14), (0.5, 1e8, 2.5e-8), (30.0, 5e9, 1.2e-8), (2.0, 5e16, 8e-17)]
    ours = _ours(betainc, points, "float64")
    f = lambda *t: mp.betainc(t[0], t[1], 0, t[2], regularized=True)
    for i, (a, b, x) in enumerate(points):
        want = list(zip(_mp_partials(f, (a, b, x), BETA_ORDERS), BETA_ORDERS))
        _check_partials(("float64", a, b, x), ours[i], want, 5e-12)
    # Shapes of 1e10: the plain fraction's derivatives needed more than its cap of 4096 terms
    # near the mean (NaN); this one's fewer (~1e4, cap now 2^17). Reference: the density's
    # integral (mpmath's hypergeometric series gives up), ∂a that of the density times ∂a log.
    a = b = 1e10
    sd = (a * b / ((a + b) ** 2 * (a + b + 1))) ** 0.5
    x = 0.5 + 0.3 * sd
    v, g = jax.value_and_grad(betainc)(a, b, x)
    with mp.workdps(30):
        dens = lambda t: mp.exp(
            (a - 1) * mp.log(t) + (b - 1) * mp.log1p(-t) - mp.log(mp.beta(a, b))
        )
        grid = [0.5 + k * sd for k in range(-40, 1)] + [x]
        want_v = mp.quad(dens, grid)
        shift = mp.digamma(a + b) - mp.digamma(a)
        want_g = mp.quad(lambda t: dens(t) * (mp.log(t) + shift), grid)
    # x's own rounding (ε/2 relative) moves I by ~ε x density(x) ~ 1e-11 here.
    np.testing.assert_allclose([v, g], [float(want_v), float(want_g)], rtol=1e-11)


def test_where_jax_raises(x64):
    # jax-ml/jax#38610: no derivative of betainc in a, b; #7922: no second derivative of
    # gammainc in a. Ours: both, and they agree with JAX where JAX has one.
    with pytest.raises(ValueError, match="Betainc gradient with respect to a and b"):
        jax.grad(jax.scipy.special.betainc)(2.0, 3.0, 0.4)
    with pytest.raises(Exception, match="igamma_grad_a"):
        jax.grad(jax.grad(jax.scipy.special.gammainc))(2.0, 1.5)
    assert np.isfinite(jax.grad(betainc)(2.0, 3.0, 0.4))
    assert np.isfinite(jax.grad(jax.grad(gammainc))(2.0, 1.5))
    np.testing.assert_allclose(
        jax.grad(gammainc)(2.0, 1.5), jax.grad(jax.scipy.special.gammainc)(2.0, 1.5), rtol=1e-12
    )
    np.testing.assert_allclose(
        jax.grad(betainc, 2)(2.0, 3.0, 0.4),
        jax.grad(jax.scipy.special.betainc, 2)(2.0, 3.0, 0.4),
        rtol=1e-12,
    )


def test_third_order_in_the_parameters_raises_naming_why(x64):
    d3 = jax.grad(jax.grad(jax.grad(gammainc)))
    with pytest.raises(NotImplementedError, match=r"gammainc/gammaincc: derivatives of order 3"):
        d3(2.0, 1.5)
    with pytest.raises(NotImplementedError, match=r"betainc: derivatives of order 3 in a or b"):
        jax.grad(jax.grad(jax.grad(betainc, 1), 1), 1)(2.0, 3.0, 0.4)
    # In x alone any order works (closed forms): P(2, x) = 1 − (1 + x)e^{−x}, P‴ = (x − 2)e^{−x}.
    d3x = jax.grad(jax.grad(jax.grad(gammainc, 1), 1), 1)(2.0, 1.5)
    np.testing.assert_allclose(d3x, -0.5 * np.exp(-1.5), rtol=1e-14)


def test_edges_and_domain(x64):
    # x = 0: P = 0, no derivative in a; ∂P/∂x is the density's limit (0, 1, ∞ for a >, =, < 1).
    da, dx = jax.grad(gammainc, (0, 1))(2.0, 0.0)
    assert (float(da), float(dx)) == (0.0, 0.0)
    assert float(jax.grad(gammainc, 1)(1.0, 0.0)) == 1.0
    assert float(jax.grad(gammainc, 1)(0.5, 0.0)) == np.inf
    # betainc at both ends: derivatives in a, b are 0, ∂x the density's limit (1/B(1, b) = b).
    for x in (0.0, 1.0):
        g = jax.grad(betainc, (0, 1))(2.0, 3.0, x)
        assert [float(v) for v in g] == [0.0, 0.0]
    assert float(jax.grad(betainc, 2)(1.0, 3.0, 0.0)) == pytest.approx(3.0)
    # Outside the domain: NaN values and derivatives, as JAX's value.
    assert np.isnan(jax.grad(gammainc)(-1.0, 1.0))
    assert np.isnan(jax.grad(betainc)(2.0, 3.0, 1.5))


def test_batched_jit_vmap_and_errors(x64):
    a = jnp.array([[0.5, 2.0, 7.0], [30.0, 1.0, 3.0]])
    x = jnp.array([0.3, 2.5, 9.0])
    # Broadcasting (the user's (2, 3) against (3,): rank promotion, allowed here, as for
    # jax.scipy's); vmap and jit agree with the elementwise gradients.
    with jax.numpy_rank_promotion("allow"):
        P = gammainc(a, x)
        assert P.shape == (2, 3)
        np.testing.assert_allclose(P, jax.scipy.special.gammainc(a, x), rtol=1e-12)
        g2 = jax.jit(jax.grad(lambda s: gammainc(s, x).sum()))(a)
    g = jax.vmap(jax.grad(gammainc))(a.ravel(), jnp.tile(x, 2))
    np.testing.assert_allclose(g2.ravel(), g, rtol=1e-13)
    b = jnp.array([1.5, 0.4, 9.0])
    H = jax.vmap(jax.hessian(betainc, (0, 1)))(a[0], b, jnp.array([0.2, 0.7, 0.5]))
    assert all(np.isfinite(np.asarray(h)).all() for row in H for h in row)
    assert gammainc(jnp.arange(1, 3), 1).dtype == jnp.result_type(float)
    with pytest.raises(TypeError, match=r"gammainc: x is complex"):
        gammainc(1.0, jnp.ones(2) * 1j)
    with pytest.raises(TypeError, match=r"betainc: a is complex"):
        betainc(1j, 1.0, 0.5)


# -- the inverses (quantile functions) ------------------------------------------------------
def _inverse_mp(F, theta, p, x0):
    """x with F(*theta, x) = p, its derivatives in p (first, second) and in θ₀ (first,
    second), by mpmath at 30 digits: findroot from our value, differences of that root."""
    with mp.workdps(30):
        # A bracket around our value, in 1 − x above ½ (so that no iterate leaves (0, 1)).
        up = x0 > 0.5
        v0 = mp.mpf(1 - x0 if up else x0)
        G = lambda v, q, t0: mp.re(F(t0, *theta[1:], 1 - v if up else v)) - q
        bracket = (v0 * (1 - mp.mpf(1e-6)), v0 * (1 + mp.mpf(1e-6)))
        solve = lambda q, t0: mp.findroot(lambda v: G(v, q, t0), bracket, solver="anderson")
        root = lambda q, t0: 1 - solve(q, t0) if up else solve(q, t0)
        r = lambda q: root(q, theta[0])
        s = lambda t0: root(p, t0)
        return [float(r(p)), float(mp.diff(r, p)), float(mp.diff(r, p, 2)),
                float(mp.diff(s, theta[0])), float(mp.diff(s, theta[0], 2))]  # fmt: skip


def _inverse_ours(fn, points):
    """Our value, ∂/∂p, ∂²/∂p², ∂/∂θ₀, ∂²/∂θ₀² at all points: one compiled vmapped program."""

    def one(*args):
        k = len(args) - 1
        d1 = lambda i: jax.grad(fn, i)
        d2 = lambda i: jax.grad(jax.grad(fn, i), i)
        return jnp.stack([fn(*args), d1(k)(*args), d2(k)(*args), d1(0)(*args), d2(0)(*args)])

    cols = [jnp.asarray(c, jnp.float64) for c in zip(*[(*t, p) for t, p in points])]
    return np.asarray(jax.jit(jax.vmap(one))(*cols))


GAMMA_INVERSE_POINTS = [((2.5,), 0.3), ((0.3,), 0.8), ((7.0,), 1e-20), ((40.0,), 0.999)]
BETA_INVERSE_POINTS = [((2.0, 3.0), 0.7), ((0.4, 1.7), 0.05), ((5.0, 0.6), 0.95),
                       ((3.0, 30.0), 1e-12)]  # fmt: skip


def test_gammaincinv_against_mpmath(x64):
    from jaxrules.rules import gammaincinv

    ours = _inverse_ours(gammaincinv, GAMMA_INVERSE_POINTS)
    F = lambda a, x: mp.gammainc(a, 0, x, regularized=True)
    for (theta, p), row in zip(GAMMA_INVERSE_POINTS, ours):
        want = _inverse_mp(F, theta, p, row[0])
        # A derivative near its zero (x'' at the mode) against the row's scale.
        atol = 1e-13 * np.max(np.abs(want))
        np.testing.assert_allclose(row, want, rtol=1e-11, atol=atol, err_msg=str((theta, p)))


def test_betaincinv_against_mpmath(x64):
    from jaxrules.rules import betaincinv

    ours = _inverse_ours(betaincinv, BETA_INVERSE_POINTS)
    F = lambda a, b, x: mp.betainc(a, b, 0, x, regularized=True)
    cols = [jnp.asarray(c, jnp.float64) for c in zip(*[(*t, p) for t, p in BETA_INVERSE_POINTS])]
    db = jax.jit(jax.vmap(jax.grad(betaincinv, 1)))(*cols)
    for i, ((theta, p), row) in enumerate(zip(BETA_INVERSE_POINTS, ours)):
        want = _inverse_mp(F, theta, p, row[0])
        # A derivative near its zero (x'' at the mode) against the row's scale.
        atol = 1e-13 * np.max(np.abs(want))
        np.testing.assert_allclose(row, want, rtol=1e-11, atol=atol, err_msg=str((theta, p)))
        # The b-derivative too (the θ₀ columns above are a's).
        with mp.workdps(30):
            bracket = (mp.mpf(row[0]) * (1 - mp.mpf(1e-6)), mp.mpf(row[0]) * (1 + mp.mpf(1e-6)))
            root = lambda b: mp.findroot(
                lambda x: F(theta[0], b, x) - p, bracket, solver="anderson"
            )
            np.testing.assert_allclose(db[i], float(mp.diff(root, theta[1])), rtol=1e-11)


def test_betaincinv_at_far_apart_shapes(x64):
    # The solve evaluated JAX's betainc, 1.7e-6 off at (2, 5e9, 8e-10): the quantile was 3.9 %
    # off at (3, 1e13, ½) and 1.8e-8 at (2, 1e8, 0.3). Forward error in x from the residual:
    # (F(x) − p) / (x F'(x)), both by mpmath's hypergeometric series at 40 digits.
    from jaxrules.rules import betaincinv

    for a, b, p in [(2.0, 1e8, 0.3), (3.0, 1e13, 0.5), (5.0, 1e9, 0.01)]:
        x = float(betaincinv(a, b, p))
        with mp.workdps(40):
            X = mp.mpf(x)
            F = X**a * mp.hyp2f1(a, 1 - b, a + 1, X, maxterms=10**6) / (a * mp.beta(a, b))
            density = X ** (a - 1) * (1 - X) ** (b - 1) / mp.beta(a, b)
            assert abs(float((F - p) / (density * X))) < 1e-14, (a, b, p, x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_betaincinv_over_a_grid_of_shapes_and_tails(x64, dtype):
    # The solve this replaced was Newton's method in log x or log(1 - x) by p's tail alone,
    # unbracketed, from a start clipped to ½: 34 (float32) and 26 (float64) of these 100 came
    # back outside [0, 1] (-26.3 at (3, 1e3, 0.7), 1.01 at (3, 0.3, 0.3)), and the checker
    # passed it (its reference was the same solve on JAX's betainc). Backward error: |I(x) - p|
    # against the rounding of p and of x itself (float64, the rule's own betainc with the
    # exact pair x, 1 - x).
    from jaxrules.rules import betaincinv
    from jaxrules.rules._log_kernels import log_beta
    from jaxrules.rules.incomplete_beta import _betainc

    shapes, ps = [0.01, 0.3, 3.0, 1e3, 1e5], [1e-7, 0.3, 0.7, 1 - 1e-7]
    a, b, p = (np.array(c, dtype) for c in zip(*itertools.product(shapes, shapes, ps)))
    x = np.asarray(jax.jit(betaincinv)(a, b, p), np.float64)
    assert np.all((x >= 0) & (x <= 1)), [(u, v, q, w) for u, v, q, w in zip(a, b, p, x)
                                         if not 0 <= w <= 1]  # fmt: skip
    a, b, p = (np.asarray(u, np.float64) for u in (a, b, p))
    inside = (x > 0) & (x < 1)  # 0 and 1: roots below the smallest normal number (a = 0.01)
    a, b, p, x = a[inside], b[inside], p[inside], x[inside]
    lower = p <= 0.5
    residual = np.where(lower, _betainc(a, b, x, 1 - x) - p, _betainc(b, a, 1 - x, x) - (1 - p))
    density = np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - log_beta(a, b))
    attainable = np.finfo(dtype).eps * (np.minimum(p, 1 - p) + density * x)
    worst = np.max(np.abs(residual) / attainable)
    assert worst < 64, worst


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gammaincinv_over_a_grid_of_shapes_and_tails(x64, dtype):
    # The solve this replaced took 24 unbracketed Newton steps with a slope from
    # (a - 1) log x - x - log Γ(a), whose terms (~1e8 at a = 1e7) cancel: in float32 it returned
    # 750071488 for P⁻¹(3e7, 0.7) = 30002872, 553741 for P⁻¹(3e7, 1e-7), and was 874 ε (of
    # the backward error below) off at (1e7, 1e-3). Backward error: |F(x) - p| for p's tail F
    # against the rounding of p and of x itself (float64, the rule's own P and Q).
    from jaxrules.rules import gammaincinv
    from jaxrules.rules._log_kernels import log_gamma_density
    from jaxrules.rules.incomplete_gamma import _value

    shapes, ps = [0.01, 0.3, 3.0, 1e3, 1e5, 1e7, 3e7, 1e8], [1e-30, 1e-7, 1e-3, 0.3, 0.7, 0.999]
    a, p = (np.array(c, dtype) for c in zip(*itertools.product(shapes, ps)))
    x = np.asarray(jax.jit(gammaincinv)(a, p), np.float64)
    a, p = (np.asarray(u, np.float64) for u in (a, p))
    # 0: a root below the smallest normal number (a = 0.01, 0.3), P at it already above p.
    under = (x == 0) & (_value(a, np.full_like(a, np.finfo(dtype).tiny), False) >= p)
    assert np.all(np.isfinite(x) & ((x > 0) | under)), list(zip(a, p, x))
    a, p, x = a[~under], p[~under], x[~under]
    lower = p <= 0.5
    residual = np.where(lower, _value(a, x, False) - p, _value(a, x, True) - (1 - p))
    density = np.exp(log_gamma_density(a, x))
    attainable = np.finfo(dtype).eps * (np.minimum(p, 1 - p) + density * x)
    worst = np.max(np.abs(residual) / attainable)
    assert worst < 32, worst


def test_betaincinv_derivative_at_a_root_near_one(x64):
    # The derivatives took 1 - x rounded, not the solve's exact complement: at
    # x = 1 - 2.6e-11 the density's (b - 1) log(1 - x) was 1.2e-6 relative off, and ∂x/∂p.
    from jaxrules.rules import betaincinv

    a, b, p = 3.0, 0.3, 0.999
    x, dp = float(betaincinv(a, b, p)), float(jax.grad(betaincinv, 2)(a, b, p))
    with mp.workdps(40):
        m0 = 1 - mp.mpf(x)
        tail = lambda m: mp.betainc(b, a, 0, m, regularized=True) - (1 - mp.mpf(p))
        m = mp.findroot(tail, (m0 * mp.mpf("0.999"), m0 * mp.mpf("1.001")), solver="anderson")
        density = (1 - m) ** (a - 1) * m ** (b - 1) / mp.beta(a, b)
        assert abs(dp * density - 1) < 1e-13, (dp, float(1 / density))


def test_gammaincinv_at_large_shapes(x64):
    # The solve evaluated JAX's gammainc/gammaincc, 1e-10–2e-9 off at a = 1e5–1e6: forward
    # errors 4e-14 at (1e6, 0.3) and 1.2e-13 at (1e5, 1 − 1e-9); ~1e-15 from the rule's loops.
    from jaxrules.rules import gammaincinv

    for a, p in [(1e6, 0.3), (1e5, 1 - 1e-9)]:
        x = float(gammaincinv(a, p))
        with mp.workdps(40):
            X = mp.mpf(x)
            F = mp.gammainc(a, 0, X, regularized=True)
            density = mp.exp((a - 1) * mp.log(X) - X - mp.loggamma(a))
            assert abs(float((F - p) / (density * X))) < 1e-14, (a, p, x)


def test_inverses_edges(x64):
    from jaxrules.rules import betaincinv, gammaincinv

    assert float(gammaincinv(2.0, 0.0)) == 0.0 and float(gammaincinv(2.0, 1.0)) == np.inf
    assert float(betaincinv(2.0, 3.0, 0.0)) == 0.0 and float(betaincinv(2.0, 3.0, 1.0)) == 1.0
    assert np.isnan(gammaincinv(-1.0, 0.5)) and np.isnan(betaincinv(2.0, 3.0, 1.5))
    # At p = 0 and 1 the quantile is its range's end for every shape: no shape derivative
    # (it was 0/0 = NaN where the density vanishes there); in p the density's limit, ∞ here.
    ends = jnp.array([0.0, 1.0])
    g = jax.jit(jax.vmap(jax.grad(gammaincinv, (0, 1)), (None, 0)))(3.0, ends)
    np.testing.assert_array_equal(np.stack(g), [[0, 0], [np.inf, np.inf]])
    g = jax.jit(jax.vmap(jax.grad(betaincinv, (0, 1, 2)), (None, None, 0)))(3.0, 2.0, ends)
    np.testing.assert_array_equal(np.stack(g), [[0, 0], [0, 0], [np.inf, np.inf]])
    # Round trip over a batch, both tails.
    a = jnp.array([0.5, 0.05, 3.0, 60.0])
    p = jnp.array([1e-30, 0.2, 0.6, 1 - 1e-12])
    np.testing.assert_allclose(jax.scipy.special.gammainc(a, gammaincinv(a, p)), p, rtol=1e-12)
