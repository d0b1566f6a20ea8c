"""Modified Bessel functions of real order (issue 30, item 3): `ive`, `kve`, `log_iv` against
mpmath at 40 digits — values, first and second derivatives in x, both branches of the K
computation (Temme's series below x = 2, the continued fraction above), small and large
orders — `kve`'s derivatives in the order, the edges, and the error for a derivative in the
order of `ive` and `log_iv`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrules.rules import ive, kve, log_iv

mp = pytest.importorskip("mpmath")

POINTS = [(0.0, 0.5), (0.3, 1.7), (2.5, 3.0), (0.5, 2.0), (1.0, 2.0), (7.2, 40.0),
          (49.557, 0.0136), (12.3, 25.0), (0.0, 1e-3), (3.7, 0.2)]  # fmt: skip
REFS = {
    ive: lambda v, x: mp.besseli(v, x) * mp.exp(-x),
    kve: lambda v, x: mp.besselk(v, x) * mp.exp(x),
    log_iv: lambda v, x: mp.log(mp.besseli(v, x)),
}


def _ours(fn, dtype):
    v = jnp.asarray([p[0] for p in POINTS], dtype)
    x = jnp.asarray([p[1] for p in POINTS], dtype)
    d1 = jax.grad(fn, 1)
    d2 = jax.grad(d1, 1)
    run = jax.jit(jax.vmap(lambda v, x: jnp.stack([fn(v, x), d1(v, x), d2(v, x)])))
    return np.asarray(run(v, x), float)


@pytest.mark.parametrize("fn", list(REFS), ids=lambda f: f.__name__)
def test_against_mpmath(x64, fn):
    ours64, ours32 = _ours(fn, "float64"), _ours(fn, "float32")
    for i, (v, x) in enumerate(POINTS):
        with mp.workdps(40):
            f = lambda t: REFS[fn](v, t)
            want = [float(f(x)), float(mp.diff(f, x)), float(mp.diff(f, x, 2))]
        # log I₀ near 0 is near its zero (log 1): judged in absolute terms there.
        floor = [max(abs(w), 1e-4 if fn is log_iv else 0) for w in want]
        for k in range(3):
            assert abs(ours64[i, k] - want[k]) <= 1e-11 * floor[k], (v, x, k, ours64[i, k], want)
            # float32: where the value is a normal float32 number, and not the second
            # derivatives at x ≫ v (see the module); log_iv against 1e-2 (log's absolute scale).
            tiny, big = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
            if x < 30 and tiny < abs(want[0]) < big:
                tol = 2e-5 if k < 2 else 1e-3
                f32 = max(floor[k], 1e-2) if fn is log_iv else floor[k]
                assert abs(ours32[i, k] - want[k]) <= tol * f32, (v, x, k, ours32[i, k])


def test_hankel_region_values_and_derivatives(x64):
    """x ≥ 20 with 2v² ≤ x: `ive` and `log_iv` from Hankel's expansion, to second order — also
    at x = 2e5, beyond the continued fraction's 20 000 steps (NaN there before)."""
    points = [(0.3, 50.0), (2.5, 300.0), (0.7, 2e5), (0.0, 20.0), (3.1, 19.3)]
    v = jnp.asarray([p[0] for p in points])
    x = jnp.asarray([p[1] for p in points])
    for fn in (ive, log_iv):
        d1 = jax.grad(fn, 1)
        d2 = jax.grad(d1, 1)
        got = jax.jit(jax.vmap(lambda v, x: jnp.stack([fn(v, x), d1(v, x), d2(v, x)])))(v, x)
        for i, (vi, xi) in enumerate(points):
            with mp.workdps(40):
                f = lambda t: REFS[fn](vi, t)
                want = [float(f(xi)), float(mp.diff(f, xi)), float(mp.diff(f, xi, 2))]
            for k in range(3):
                assert abs(float(got[i, k]) - want[k]) <= 1e-11 * abs(want[k]), (fn, vi, xi, k)


def test_edges_order_derivative_error_and_batching(x64):
    assert float(ive(0.0, 0.0)) == 1.0 and float(ive(1.5, 0.0)) == 0.0
    assert float(kve(1.5, 0.0)) == np.inf
    assert np.isnan(ive(-1.5, 2.0)) and np.isnan(ive(1.5, -2.0))
    np.testing.assert_allclose(kve(-2.3, 1.7), kve(2.3, 1.7), rtol=1e-15)  # K₋ᵥ = Kᵥ
    # log_iv where I_v overflows float64 (I_1.5(800) ≈ 1e345).
    with mp.workdps(30):
        np.testing.assert_allclose(
            log_iv(1.5, 800.0), float(mp.log(mp.besseli(1.5, 800))), rtol=1e-14
        )
    # Integer orders: the general algorithm (a traced v) agrees with JAX's i0e/i1e, and the
    # fast path (v a Python number: JAX's values, the same Riccati rules) with it to 2nd order.
    x = jnp.linspace(0.1, 30.0, 7)
    general = jax.jit(ive)
    for order, jax_fn in ((0, jax.scipy.special.i0e), (1, jax.scipy.special.i1e)):
        np.testing.assert_allclose(general(float(order), x), jax_fn(x), rtol=1e-13)
        for fn in (ive, log_iv):
            d2 = lambda f: jax.vmap(jax.grad(jax.grad(f)))(x)
            fast = d2(lambda t: fn(order, t))
            slow = d2(lambda t: jax.jit(fn)(jnp.float64(order), t))
            np.testing.assert_allclose(fast, slow, rtol=1e-11)
    for fn in (ive, log_iv):  # (kve has one: below)
        with pytest.raises(NotImplementedError, match=r"no derivative in the order v"):
            jax.grad(fn, 0)(1.5, 2.0)
    with pytest.raises(TypeError, match=r"ive: x is complex"):
        ive(1.0, 2.0j)
    v = jnp.array([[0.5], [3.0]])
    assert ive(v, x).shape == (2, 7)
    third = jax.grad(jax.grad(jax.grad(ive, 1), 1), 1)(2.5, 3.0)  # any order in x
    with mp.workdps(30):
        want = mp.diff(lambda t: mp.besseli(2.5, t) * mp.exp(-t), 3.0, 3)
    np.testing.assert_allclose(third, float(want), rtol=1e-9)


# (v, x): v = 0 (where ∂/∂v = 0 and ∂²/∂v² is not), negative, tiny and large orders; x from
# 1e-4 (Temme's series) through the continued fraction to 700 and 2e4.
ORDER_POINTS = [(0.0, 0.5), (0.3, 1.7), (2.5, 3.0), (0.5, 2.0), (-2.3, 1.7), (7.2, 40.0),
                (49.557, 0.0136), (12.3, 25.0), (0.0, 1e-3), (1e-3, 1e-4), (20.0, 1e-3),
                (5.0, 700.0), (100.0, 3.0), (0.7, 2e4)]  # fmt: skip


def test_kve_order_derivatives_against_mpmath(x64):
    """∂/∂v, ∂²/∂v² and both mixed orders ∂²/∂v∂x, ∂²/∂x∂v (the second through the ratio
    s = K_{v+1}/K_v's derivative in v) — before this, ∂/∂v raised."""
    v = jnp.asarray([p[0] for p in ORDER_POINTS])
    x = jnp.asarray([p[1] for p in ORDER_POINTS])
    dv = jax.grad(kve, 0)
    fns = [dv, jax.grad(dv, 0), jax.grad(dv, 1), jax.grad(jax.grad(kve, 1), 0)]
    got = np.asarray(jax.jit(jax.vmap(lambda v, x: jnp.stack([f(v, x) for f in fns])))(v, x))
    assert got[0, 0] == 0.0 and got[8, 0] == 0.0  # K_v is even in v
    for i, (vi, xi) in enumerate(ORDER_POINTS):
        with mp.workdps(40):
            f = lambda a, b: mp.besselk(a, b) * mp.exp(b)
            d_v = lambda b: mp.diff(lambda a: f(a, b), vi)
            want = [d_v(xi), mp.diff(lambda a: f(a, xi), vi, 2), mp.diff(d_v, xi)]
        want = [float(w) for w in (*want, want[2])]
        for k in range(4):
            # x = 2e4: the value's own accuracy; the last (∂/∂x, then ∂/∂v: through the ratio's
            # Riccati form, 1/x − ∂s/∂v) loses (x/v)²ε at x ≫ v, as the second derivatives
            # in x do (see the module).
            rtol = 1e-12 if xi < 1e4 else 2e-12
            if k == 3:
                rtol = max(rtol, 10 * (xi / max(abs(vi), 1.0)) ** 2 * 2.2e-16)
            atol = 1e-14 * abs(want[1])  # ∂/∂v is 0 at v = 0: judged against ∂²/∂v²'s size
            assert abs(got[i, k] - want[k]) <= rtol * abs(want[k]) + atol, (vi, xi, k, got[i, k])


def test_kve_order_derivative_float32_and_edges():
    v = jnp.asarray([0.3, 2.5, 7.4, -1.2], "float32")
    x = jnp.asarray([1.7, 3.0, 0.5, 2.0], "float32")
    got = jax.vmap(jax.grad(kve, 0))(v, x)
    assert got.dtype == jnp.float32
    for i in range(4):
        with mp.workdps(30):
            vi, xi = float(v[i]), float(x[i])
            want = float(mp.diff(lambda a: mp.besselk(a, xi) * mp.exp(xi), vi))
        assert abs(float(got[i]) - want) <= 2e-6 * abs(want), (vi, xi, float(got[i]), want)
    # Outside the domain the derivative is NaN, as the value; at x = 0 both are infinite/NaN.
    assert np.isnan(jax.grad(kve, 0)(1.5, -2.0))
    assert not np.isfinite(jax.grad(kve, 0)(1.5, 0.0))


def test_small_x_at_orders_just_below_a_half_integer(x64):
    """The Wronskian gave I_μ as 1/(x (f K_μ - K_μ')), f = I_μ'/I_μ: f - μ/x cancels, and
    for μ = v - ⌊v + ½⌋ < 0 its error ε|μ|/x met K_μ ≫ K_{μ+1} — ive(2.5, 1e-5) was 2.6e-11
    off in float64 and 1.1e-3 in float32, ive(2.5, 1e-30) 1.5e-91 for 5.3e-77 (log_iv 34 off),
    float32 ive(0.3, 1e-30) 0 for 9e-10 (K_{μ+1} overflowed). Now 1/(x K_μ (K_{μ+1}/K_μ +
    I_{μ+1}/I_μ)), every term positive. Values and slopes against mpmath."""
    points = [(2.5, 1e-5), (2.5, 1e-30), (0.7, 1e-5), (1.6, 1e-3), (4.9, 1e-20), (0.3, 1e-30)]
    for dtype, tol in (("float64", 1e-13), ("float32", 4e-6)):
        v = jnp.asarray([p[0] for p in points], dtype)
        x = jnp.asarray([p[1] for p in points], dtype)
        got = np.asarray(jax.jit(jax.vmap(jax.value_and_grad(log_iv, 1)))(v, x), float)
        value = np.asarray(jax.jit(ive)(v, x), float)
        for i, (vi, xi) in enumerate(points):
            xi = float(np.asarray(xi, dtype))
            with mp.workdps(40):
                want = mp.besseli(vi, xi) * mp.exp(-xi)
                log_want = mp.log(mp.besseli(vi, xi))
                slope = mp.besseli(vi + 1, xi) / mp.besseli(vi, xi) + vi / mp.mpf(xi)
            if float(want) > float(np.finfo(dtype).tiny):  # else it underflows: 0 is right
                assert abs(value[i] / float(want) - 1) < tol, (dtype, vi, xi, value[i])
            assert abs(got[0, i] - float(log_want)) < tol * abs(float(log_want)), (dtype, vi, xi)
            assert abs(got[1, i] / float(slope) - 1) < tol, (dtype, vi, xi, got[1, i])


def test_log_iv_slope_where_it_is_small(x64):
    """`log_iv`'s slope r + v/x was taken as 1 + (r + v/x - 1), `ive`'s plus 1: where it is
    small that rounds it away — at (0, 1e-8) 6e-9 relative off in float64 and 0 (a silent
    zero gradient) in float32, at (0, 1e-3) 4.7e-5 off in float32."""
    points = [(0.0, 1e-8), (0.0, 1e-3), (0.3, 1e-6)]
    for dtype, tol in (("float64", 1e-14), ("float32", 2e-6)):
        v = jnp.asarray([p[0] for p in points], dtype)
        x = jnp.asarray([p[1] for p in points], dtype)
        got = np.asarray(jax.jit(jax.vmap(jax.grad(log_iv, 1)))(v, x), float)
        for i, (vi, xi) in enumerate(points):
            xi = float(np.asarray(xi, dtype))
            with mp.workdps(40):  # (log I_v)' = I_{v+1}/I_v + v/x
                want = float(mp.besseli(vi + 1, xi) / mp.besseli(vi, xi) + vi / mp.mpf(xi))
            assert abs(got[i] / want - 1) < tol, (dtype, vi, xi, got[i], want)


def test_kve_derivatives_at_large_x_float32():
    """At large x kve's slope 1 + v/x - s is a difference of terms of size 1 (it lost
    2xε: 6.4e-4 relative in float32 at (2.5, 3000)); it is Hankel's -1/(2x) + S'/S there, as
    for ive. ∂/∂v's integrand took cosh t - 1 rounded at t ~ 1/√x (3.9e-5 off there): it is
    2 sinh²(t/2)."""
    points = [(2.5, 3000.0), (0.3, 300.0), (10.0, 3000.0)]
    v = jnp.asarray([p[0] for p in points], "float32")
    x = jnp.asarray([p[1] for p in points], "float32")
    got = np.asarray(jax.jit(jax.vmap(jax.grad(kve, (0, 1))))(v, x), float)
    for i, (vi, xi) in enumerate(points):
        vi = float(np.float32(vi))
        with mp.workdps(30):
            scaled = lambda s, t: mp.besselk(s, t) * mp.exp(t)
            dv = float(mp.diff(lambda s: scaled(s, xi), vi))
            dx = float(mp.diff(lambda t: scaled(vi, t), xi))
        assert abs(got[0, i] / dv - 1) < 8e-6, (vi, xi, got[0, i], dv)
        assert abs(got[1, i] / dx - 1) < 8e-6, (vi, xi, got[1, i], dx)


@pytest.mark.parametrize("order", [2, pytest.param(3, marks=pytest.mark.slow)])  # 3: 7 s
@pytest.mark.parametrize("dtype, rtol", [("float32", 2e-6), ("float64", 1e-13)])
def test_log_iv_higher_derivatives_at_large_order_and_x(dtype, rtol, order, x64):
    """Outside Hankel's region (v² > x/2; float32: 2x) the Riccati rule's second derivative of
    `log_iv` subtracts terms of size 1 to leave one of size 1/x² (x²ε, not the (x/v)²ε once
    documented): float32 2.6e-2 relative at (60, 500), 4.7e-2 at (150, 2000), the third
    derivative 5e4; float64 third derivative 9e-2 at (150, 2e4). From order 8 (float64: 25)
    the slope comes from Debye's expansion, every term computed directly."""
    points = [(60.0, 500.0), (150.0, 2000.0), (30.0, 100.0), (150.0, 2e4), (1000.0, 20.0)]
    v = jnp.asarray([p[0] for p in points], dtype)
    x = jnp.asarray([p[1] for p in points], dtype)
    ds = [jax.grad(log_iv, 1)]
    while len(ds) < order:
        ds.append(jax.grad(ds[-1], 1))
    run = jax.jit(jax.vmap(lambda v, x: jnp.stack([d(v, x) for d in ds])))
    got = np.asarray(run(v, x), float)
    for i, (vi, xi) in enumerate(points):
        with mp.workdps(40):
            f = lambda t: mp.log(mp.besseli(vi, t))
            want = [float(mp.diff(f, xi, k + 1)) for k in range(order)]
        for k in range(order):
            assert abs(got[i, k] / want[k] - 1) <= rtol * (1 + 4 * k), (vi, xi, k + 1, got[i, k])


def _debye_log(v, x, kind):
    """log I_v(x) (`kind` "i") or log K_v(x) + x ("k") by Debye's expansion, in mpmath (at the
    caller's precision; an mpf) with DLMF's η as written (no rewriting) and five terms: the first left out is below
    1e-16 relative at v = 1000, 1e-30 at 1e6."""
    from jaxrules.rules.bessel import _debye_polynomials

    U = _debye_polynomials(5)
    v, x = mp.mpf(v), mp.mpf(x)
    z = x / v
    s = mp.sqrt(1 + z * z)
    eta = s + mp.log(z / (1 + s))
    sign = 1 if kind == "i" else -1
    T = sum(sign**k * mp.polyval(U[k][::-1].tolist(), 1 / s) / v**k for k in range(5))
    if kind == "i":
        return v * eta - mp.log(2 * mp.pi * v) / 2 - mp.log(1 + z * z) / 4 + mp.log(T)
    return mp.log(mp.pi / (2 * v)) / 2 - v * eta - mp.log(1 + z * z) / 4 + mp.log(T) + x


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-14), ("float32", 1e-6)])
def test_large_orders(dtype, rtol, x64):
    """From v = 1000 the values come from Debye's expansion: the recurrences took ⌊v⌋ steps
    (0.3 s a call at v = 1e7), float32 lost about vε (log_iv(1e6, 1e3) 1.1e-3 off, 11 % at
    1.6e7), and a float32 order from 2²⁴ on, or v = inf, never returned: its step counter
    stopped counting."""
    # mpmath's own Bessel functions where they converge quickly, Debye's expansion beyond.
    with mp.workdps(40):
        points = [(1000.0, 30.0, float(mp.log(mp.besseli(1000, 30))),
                   float(mp.log(mp.besselk(1000, 30)) + 30)),
                  (1000.0, 900.0, float(mp.log(mp.besseli(1000, 900))), None)]  # fmt: skip
        for v, x in [(1e6, 1e3), (1e6, 3e6), (1.6e7, 1e5), (3e7, 2.0), (1e30, 1e25)]:
            points.append((v, x, float(_debye_log(v, x, "i")), float(_debye_log(v, x, "k"))))
    v = jnp.asarray([p[0] for p in points], dtype)
    x = jnp.asarray([p[1] for p in points], dtype)
    got_i = np.asarray(log_iv(v, x), float)
    got_k = np.asarray(jnp.log(kve(v, x)), float)  # kve itself overflows: its logarithm
    for i, (vi, xi, want_i, want_k) in enumerate(points):
        assert abs(got_i[i] - want_i) <= rtol * abs(want_i), (vi, xi, got_i[i], want_i)
        if want_k is not None and np.isfinite(got_k[i]):
            assert abs(got_k[i] - want_k) <= rtol * abs(want_k), (vi, xi, got_k[i], want_k)
    # kve's slope 1 + v/x − K_{v+1}/K_v, the ratio Debye's too (float64: kve overflows float32
    # here; the expansion's five terms are within 1e-16 at v = 1000).
    if dtype == "float64":
        vi, xi = 1000.0, 3000.0
        slope = jax.grad(lambda x: jnp.log(kve(jnp.asarray(vi), x)))(jnp.asarray(xi))
        with mp.workdps(40):
            want = float(mp.diff(lambda t: _debye_log(vi, t, "k"), xi))
        assert abs(float(slope) - want) <= 1e-12 * abs(want), (float(slope), want)
    # Infinite orders: NaN (as SciPy), at once.
    for fn in (ive, kve, log_iv):
        assert np.isnan(float(fn(jnp.asarray(np.inf, dtype), jnp.asarray(2.0, dtype))))
