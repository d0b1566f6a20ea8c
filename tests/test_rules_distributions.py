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
    H, g = jax.jit(
        lambda t, n: (
            jax.hessian(student_t_cdf, (0, 1))(t, n),
            jax.grad(student_t_cdf, (0, 1))(t, n),
        )
    )(0.0, nu)
    np.testing.assert_allclose([g[0], g[1], H[0][1]], want, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(H[1][0], H[0][1], rtol=1e-13)
    assert float(H[0][0]) == 0.0 and float(H[1][1]) == 0.0  # F(t) − ½ is odd in t
    # The composition without the rule: NaN at t = 0 (what the rule exists for).
    from jaxrules.rules.distributions import _t_cdf_composed

    assert np.isnan(jax.grad(_t_cdf_composed)(0.0, nu))


def _t_lower_mp(t, nu):  # F through the incomplete beta of the tail (no cancellation)
    half = mp.mpf(1) / 2
    lower = mp.betainc(nu / 2, half, 0, nu / (nu + t * t), regularized=True) / 2
    return lower if t < 0 else 1 - lower


def _t_pdf_mp(t, nu):
    log_c = mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
    return mp.exp(log_c - (nu + 1) / 2 * mp.log1p(t * t / nu))


# (t, ν, digits mpmath needs: ∂ν F is ~1e-27 of F at ν = 1e12). F down to 5e-198; ν = ∞ is
# the normal distribution (as scipy.stats.t's): F = Φ, ∂t F = φ, no dependence on ν.
TAILS = [
    (-6.0, 80.0, 40),
    (-10.0, 1e3, 40),
    (-3.0, 1e6, 40),
    (-30.0, 3e8, 40),
    (2.0, 1e12, 90),
    (-8.0, 1e15, 90),
    (-9.0, np.inf, 30),
    (1.3, np.inf, 30),
]


def _t_all(t, nu):
    g = jax.grad(student_t_cdf, (0, 1))(t, nu)
    H = jax.hessian(student_t_cdf, (0, 1))(t, nu)
    return jnp.stack([student_t_cdf(t, nu), g[0], g[1], H[1][1], H[0][1], H[0][0]])


def test_student_t_far_tails_and_large_df(x64):
    # F, ∂t F, ∂ν F, ∂ν² F, ∂t∂ν F (and ∂t² F at ν = ∞) against mpmath. Before: the central
    # form ½ + ½ sign(t) I_z was used wherever t² < ν and cancelled in the lower tail (ν = 80,
    # t = −6: 1e-9 relative; ν = 1000, t = −10: F = 0), the density's difference of gammalns
    # cancelled (∂t F 2 % wrong at ν = 1e14), F was NaN at ν ≥ 1e17 for t = −2, and ν = ∞
    # gave F = ½ and NaN derivatives.
    want = []
    for t, nu, dps in TAILS:
        with mp.workdps(dps):
            T, N = mp.mpf(t), mp.mpf(nu)
            if nu == np.inf:
                want.append([mp.ncdf(T), mp.npdf(T), 0, 0, 0])
                continue
            want.append(
                [
                    _t_lower_mp(T, N),
                    _t_pdf_mp(T, N),
                    mp.diff(lambda n: _t_lower_mp(T, n), N),
                    mp.diff(lambda n: _t_lower_mp(T, n), N, 2),
                    mp.diff(lambda n: _t_pdf_mp(T, n), N),
                ]
            )
    want = np.array(want, dtype=float)
    t, nu = (jnp.array([p[i] for p in TAILS]) for i in (0, 1))
    got = np.asarray(jax.jit(jax.vmap(_t_all))(t, nu))
    np.testing.assert_allclose(got[:, :2], want[:, :2], rtol=2e-13, atol=0)
    np.testing.assert_allclose(got[:, 2:5], want[:, 2:], rtol=2e-12, atol=0)
    normal = nu == np.inf  # ∂t² F = φ'(t) = −t φ(t)
    np.testing.assert_allclose(got[normal, 5], -t[normal] * want[normal, 1], rtol=2e-13)


def test_compositions_given_the_exact_complement(x64):
    # binomial_cdf is I_{1-p}(n - k, k + 1) and the Student-t's tail ½ I_w(ν/2, ½): given only
    # the rounded 1 - p (w = ν/(ν + t²) without z = t²/(ν + t²)), betainc lost the small one's
    # digits — binomial 4e-10 off at n = 1e8, 1.4e-6 (∂p 4e-5) at n = 1e12; the Student-t's
    # value 2.8e-11 at ν = 1e6, t = −30. They now pass both.
    from jaxrules.rules import binomial_cdf

    for k, n, p in [(5.0, 1e8, 3e-8), (3.0, 1e12, 1e-12)]:
        with mp.workdps(40):
            F = lambda q: mp.betainc(n - k, k + 1, 0, 1 - q, regularized=True)
            want = [float(F(mp.mpf(p))), float(mp.diff(F, mp.mpf(p)))]
        got = jax.value_and_grad(binomial_cdf, 2)(k, n, p)
        np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=str((k, n, p)))
    for t, nu in [(-30.0, 1e6), (-35.0, 1e5)]:
        with mp.workdps(50):
            want = float(_t_lower_mp(mp.mpf(t), mp.mpf(nu)))
        np.testing.assert_allclose(student_t_cdf(t, nu), want, rtol=1e-12)


def test_student_t_at_infinite_df_float32():
    t = jnp.array([-9.0, -2.0, 0.0, 1.3, 6.0], jnp.float32)
    F, (dt, dnu) = jax.jit(jax.vmap(jax.value_and_grad(student_t_cdf, (0, 1))))(
        t, jnp.full_like(t, jnp.inf)
    )
    np.testing.assert_allclose(F, jax.scipy.special.ndtr(t), rtol=1e-6)
    np.testing.assert_allclose(dt, jax.scipy.stats.norm.pdf(t), rtol=1e-5)
    assert (dnu == 0).all()


def test_student_t_heavy_tails_in_float32(x64):
    # For small ν the tail decays like |t|^{-ν}: F(-1e19, 0.001) = 0.477. In float32
    # w = ν/(ν + t²) underflowed (t² overflowed past 1.8e19) and F was 0 — silently — and its
    # second derivatives NaN at t = -1e30 (u² = t²/ν overflowed in the density).
    t = jnp.array([-1e30, -1e19, 1e19, -1e19, -1e4], jnp.float32)
    nu = jnp.array([0.001, 0.001, 0.001, 0.5, 3.0], jnp.float32)
    F = jax.jit(student_t_cdf)(t, nu)
    dnu = jax.jit(jax.vmap(jax.grad(student_t_cdf, 1)))(t, nu)
    with mp.workdps(30):

        def F_mp(t, nu):
            w = nu / (nu + t * t)
            tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, w, regularized=True) / 2
            return tail if t < 0 else 1 - tail

        pts = [(mp.mpf(float(a)), mp.mpf(float(b))) for a, b in zip(t, nu)]
        want = [float(F_mp(a, b)) for a, b in pts]
        want_dnu = [float(mp.diff(lambda n: F_mp(a, n), b)) for a, b in pts]
    np.testing.assert_allclose(F, want, rtol=2e-5)
    np.testing.assert_allclose(dnu, want_dnu, rtol=2e-4)
    hessian = jax.jit(jax.vmap(jax.hessian(student_t_cdf, (0, 1))))(t, nu)
    assert np.all(np.isfinite(np.asarray(jax.tree.leaves(hessian)))), hessian


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


def test_student_t_expansion_coefficients():
    # Q_1..Q_6 (the library's exact rationals) against S = (Φ(t) − F)/φ(t) from mpmath's
    # incomplete beta, in 80 digits, at ν where the first omitted term is < 1e-4 of the last
    # kept one: the six terms' sum must match S to 1e-4 of the sixth term. A 1 % change of
    # any coefficient but one (Q₆'s of t⁵, 137/196608) fails at one of the points at least.
    from jaxrules.rules.distributions import _T_SERIES_EXACT

    with mp.workdps(80):
        for t, nu in (("0.5", 1e6), ("1.5", 1e6), ("3.0", 1e8)):
            t, nu = mp.mpf(t), mp.mpf(nu)
            exact = (mp.ncdf(t) - _t_lower_mp(t, nu)) / mp.npdf(t)
            terms = [
                mp.fsum(
                    mp.mpf(c.numerator) / c.denominator * t ** (2 * j + 1) for j, c in enumerate(q)
                )
                / nu ** (k + 1)
                for k, q in enumerate(_T_SERIES_EXACT)
            ]
            assert abs(mp.fsum(terms) - exact) <= 1e-4 * abs(terms[-1]), (t, nu, terms, exact)


NAN_CASES = {
    "beta_cdf": (0.3, 2.0, 5.0, 0.0, 1.0),
    "student_t_cdf": (0.7, 3.0, 0.0, 1.0),
    "binomial_cdf": (3.0, 10.0, 0.4),
    "negative_binomial_cdf": (4.0, 2.5, 0.3),
    "gamma_cdf": (1.5, 2.0, 0.0, 1.0),
    "poisson_cdf": (2.0, 1.5),
}


@pytest.mark.parametrize("name", list(NAN_CASES))
def test_a_nan_argument_is_a_nan_value_and_derivative(name, x64):
    """Before: `student_t_cdf(nan, 3)` was 1 (its composition read a NaN t as |t| = inf),
    `binomial_cdf(3, nan, 0.4)` 1 with a zero derivative (`k < n` is False for a NaN n), and a
    NaN count gave 1 or 0 in the three discrete CDFs; under `jit`, `gamma_cdf(nan, 2)` was 1
    (XLA folds comparisons of `maximum(z, 0)` as if z were never NaN)."""
    import jaxrules.rules as rules

    fn, args = getattr(rules, name), NAN_CASES[name]
    for i in range(len(args)):
        bad = [jnp.asarray(a) for a in args]
        bad[i] = jnp.asarray(np.nan)
        assert np.isnan(float(fn(*bad))), (name, i)
        assert np.isnan(float(jax.jit(fn)(*bad))), (name, i, "jit")
    # The derivatives where the value was wrong (the others' rules see the NaN themselves).
    for i in {"student_t_cdf": [0], "binomial_cdf": [1]}.get(name, []):
        bad = [jnp.asarray(a) for a in args]
        bad[i] = jnp.asarray(np.nan)
        assert np.isnan(float(jax.grad(fn, i)(*bad))), (name, i)
