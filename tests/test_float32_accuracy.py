"""float32 accuracy of the special functions where their plain forms lose digits (issue 30's
float32 target, 1e-5 relative against mpmath), at the worst points of the accuracy benchmark
(`benchmarks/special.py accuracy`), each judged at the float32-rounded point:

- the prefactors x^a e^{-x}/Γ(a+1) and x^a (1-x)^b/B(a, b) at shapes ~100, whose plain forms
  (JAX's) are differences of terms of size a log a: 5.8e-5 (gammainc) and 7.3e-5 (betainc);
- a series summed as is, whose terms fall below float32's smallest normal number and are
  flushed to 0 (gammainc at P ~ 1e-34);
- the Student-t CDF's derivative in ν near t = 0, whose two terms (through a and through x of
  the incomplete beta function) cancel to a factor ~ν: 2.1e-4;
- ive's derivative at x ≫ v, r + v/x − 1 ≈ −1/(2x) of terms of size 1: 9.4e-5; near ive's
  maximum (x ≈ v²), 0.0065 of terms of size 1: 2.3e-5;
- ive's values at small x and large v (~1e-33), through Temme's recurrences: 2.4e-5.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrules.rules import betainc, gammainc, gammaincinv, ive, student_t_cdf

mp = pytest.importorskip("mpmath")

RTOL = 1e-5


def _gamma(a, x):
    return mp.gammainc(a, 0, x, regularized=True)


def _beta(a, b, x):
    return mp.betainc(a, b, 0, x, regularized=True)


def _t(t, nu):
    c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
    return mp.mpf(1) / 2 + mp.quad(lambda s: c * (1 + s**2 / nu) ** (-(nu + 1) / 2), [0, t])


def _ive(v, x):
    return mp.besseli(v, x) * mp.exp(-x)


# (name, function, mpmath reference, points, argnums whose derivatives are judged, value judged)
CASES = [
    ("gammainc: prefactor at a ~ 90", gammainc, _gamma,
     [(90.8677, 19.0499), (96.2354, 51.7683), (12.4387, 0.0521)], (0, 1), True),
    ("gammainc: a series below float32's normal range", gammainc, _gamma,
     [(61.4958, 7.6615)], (0, 1), True),
    ("betainc: prefactor at a, b ~ 80", betainc, _beta,
     [(79.013, 91.3408, 0.2339), (12.0593, 75.0288, 0.3796), (44.7472, 18.3944, 0.3245)],
     (0, 1, 2), True),
    ("student_t_cdf: ∂ν near t = 0", student_t_cdf, _t,
     [(0.3165, 9.4849), (0.9445, 9.4389), (-1.626, 9.5543), (0.0927, 7.1113)], (1,), False),
    ("ive: ∂x at x ≫ v", ive, _ive, [(0.6881, 44.772), (0.2, 30.0), (1.3, 200.0)], (1,), False),
    ("ive: ∂x near its maximum", ive, _ive,
     [(8.7814, 48.0379), (6.0, 30.0), (10.0, 70.0), (5.0, 20.0), (7.3, 40.0)], (1,), False),
    ("ive: values ~1e-33 at small x, large v", ive, _ive,
     [(19.7534, 0.3441), (19.565, 0.3566), (16.9594, 0.0901)], (1,), True),
]  # fmt: skip


@pytest.mark.parametrize("name, fn, ref, points, argnums, value", CASES, ids=[c[0] for c in CASES])
def test_float32_within_1e_5_of_mpmath(name, fn, ref, points, argnums, value):
    cols = [jnp.asarray(c, jnp.float32) for c in zip(*points)]
    vals = jax.jit(jax.vmap(fn))(*cols)
    grads = jax.jit(jax.vmap(jax.grad(fn, argnums)))(*cols)
    for i in range(len(points)):
        p = [float(np.asarray(c[i])) for c in cols]  # the float32-rounded point
        with mp.workdps(40):
            want = [float(ref(*p))] + [
                float(mp.diff(lambda *q: ref(*q), p, tuple(int(j == k) for j in range(len(p)))))
                for k in argnums
            ]
        got = [float(vals[i])] + [float(g[i]) for g in grads]
        for k, (g, w) in enumerate(zip(got, want)):
            if k == 0 and not value:
                continue
            what = "value" if k == 0 else f"∂{argnums[k - 1]}"
            assert abs(g - w) <= RTOL * abs(w), (name, p, what, g, w, abs(g - w) / abs(w))


def test_gammaincinv_hessian_at_tiny_quantiles_float32():
    """x = P⁻¹(a, p) ~ 1e-23 at a = 0.01: the Hessian is finite (a log(x/a) differentiated by
    JAX squares the quotient in its second derivative and overflows float32 there: NaN; the
    kernel's log-ratio rule does not), and matches float64's where float32 can (at a = 0.01
    the curvature in a, ~1e-15 beside entries of 100, is below float32's resolution)."""
    a = np.array([0.01, 0.02, 0.04], np.float32)
    p = np.array([0.6, 0.9, 0.5], np.float32)
    hess = jax.jit(jax.vmap(jax.hessian(gammaincinv, (0, 1))))
    h32 = np.asarray(hess(jnp.asarray(a), jnp.asarray(p)), np.float64)
    with jax.enable_x64():
        h64 = np.asarray(hess(jnp.asarray(a, jnp.float64), jnp.asarray(p, jnp.float64)))
    assert np.all(np.isfinite(h32)), h32
    np.testing.assert_allclose(h32[..., 1:], h64[..., 1:], rtol=2e-3)
