"""References computed outside JAX (jaxrules.references): mpmath on the host, its derivatives by
mpmath's high-precision differences, and the checker proving a rule against it where JAX's own
derivative of the usual reference is wrong."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import wrong_rules as W

import jaxrules as jr
from jaxrules.references import mpmath_elementwise

mpmath = pytest.importorskip("mpmath")


def test_values_and_derivatives_are_mpmaths_to_every_order_it_claims():
    f = mpmath_elementwise(lambda a, x: mpmath.sin(a) * x**2, nargs=2, name="sin_a_x2")
    with jax.enable_x64(True):
        a, x = jnp.array([0.3, -1.1, 2.0]), jnp.array([1.5, 0.2, -0.7])
        np.testing.assert_allclose(f(a, x), jnp.sin(a) * x**2, rtol=1e-15)
        loss = lambda a, x: f(a, x).sum()
        ga, gx = jax.grad(loss, (0, 1))(a, x)
        np.testing.assert_allclose(ga, jnp.cos(a) * x**2, rtol=1e-13)
        np.testing.assert_allclose(gx, 2 * jnp.sin(a) * x, rtol=1e-13)
        mixed = jax.jacfwd(jax.grad(loss, 0), 1)(a, x)  # ∂²/∂a∂x, diagonal
        np.testing.assert_allclose(mixed, jnp.diag(2 * jnp.cos(a) * x), rtol=1e-12, atol=1e-30)
        saa = jax.hessian(loss, 0)(a, x)
        np.testing.assert_allclose(saa, jnp.diag(-jnp.sin(a) * x**2), rtol=1e-12, atol=1e-30)
        np.testing.assert_array_equal(jax.jit(f)(a, x), f(a, x))
        np.testing.assert_array_equal(jax.vmap(f, (0, None))(a[:, None], x), f(a[:, None], x))
        np.testing.assert_allclose(f(2.0, x), jnp.sin(2.0) * x**2, rtol=1e-15)  # broadcasts
    assert f(jnp.float32(0.3), jnp.float32(1.5)).dtype == jnp.float32


def test_a_derivative_beyond_its_order_is_an_error_naming_it():
    f = mpmath_elementwise(mpmath.exp, order=1, name="exp")
    assert abs(float(jax.grad(f)(1.0)) - np.e) < 1e-6
    with pytest.raises(NotImplementedError, match=r"exp: mpmath_elementwise\(order=1\).*order 2"):
        jax.grad(jax.grad(f))(1.0)
    with pytest.raises(TypeError, match=r"exp: takes 1 argument\(s\), got 2"):
        f(1.0, 2.0)


def test_the_checker_proves_i1_at_zero_against_mpmath_and_flags_the_wrong_twin():
    # At x = 0 JAX 0.10.2's derivatives of jax.scipy.special.i1 are wrong (I₁''(0) = 1, true 0),
    # so the registration witnesses that point by finite differences. With mpmath as the
    # reference, the witness is JAX's derivative of it — mpmath's own, at 40 digits — and the
    # library's i1 passes to second order in both dtypes; the twin whose JVP guards the 0/0
    # at x = 0 with 0 instead of ½ is flagged there.
    ref = mpmath_elementwise(lambda x: mpmath.besseli(1, x), name="I1")
    case = jr.Case("at_zero", inputs={"x": jr.inputs.fixed([0.0, 0.3, -1.2])})
    kw = dict(reference=ref, cases=[case], seeds=1, transforms=("jit",), scales=())
    right = jr.check("i1", **kw)
    assert right.passed, right.failure_text()
    assert {r.check for r in right.results} >= {"jvp", "vjp", "jvp_jvp", "hvp"}
    wrong = jr.check("i1_limit_at_zero_dropped", registry=W.WRONG, dtypes=("float64",), **kw)
    assert not wrong.passed
    assert {(f.check, f.argument) for f in wrong.failures} >= {("jvp", "x")}


@pytest.mark.slow
def test_the_checker_proves_betainc_in_its_parameters_against_mpmath_and_flags_the_twin():
    # JAX cannot differentiate betainc in a, b at all: mpmath at 30 digits is the witness (its
    # derivatives, mpmath's differences). The library's betainc passes to second order; the
    # twin that forgets to exchange a's and b's roles above x = (a+1)/(a+b+2) is flagged.
    ref = mpmath_elementwise(
        lambda a, b, x: mpmath.betainc(a, b, 0, x, regularized=True), nargs=3, dps=30
    )
    case = jr.Case("mpmath")
    kw = dict(reference=ref, cases=[case], seeds=1, transforms=("jit",), dtypes=("float64",))
    right = jr.check("betainc", **kw)
    assert right.passed, right.failure_text()
    assert {r.check for r in right.results} >= {"jvp", "vjp", "jvp_jvp", "hvp"}
    wrong = jr.check("betainc_swapped_roles_kept", registry=W.WRONG, **kw)
    assert not wrong.passed
    assert ("jvp", "a") in {(f.check, f.argument) for f in wrong.failures}
