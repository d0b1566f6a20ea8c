"""Complex numbers: the input generators, the rules' values against JAX / SciPy, and the
rules that reject complex input. (The derivatives of the complex rules are checked by
`jaxrules check`, which runs each rule in its registered dtypes, complex ones included; the
checker's complex mistakes are in `wrong_rules.py`.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl

import jaxrules as jr
from jaxrules import rules as R
from jaxrules.inputs import general, lower, orthogonal, positive, spd, stable

COMPLEX_RULES = {
    "linear_solve",
    "inv",
    "logdet",
    "slogdet",
    "lstsq",
    "sylvester",
    "lyapunov",
    "discrete_lyapunov",
    "sqrtm",
    "logm",
    "fractional_matrix_power",
    "expm",
}


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def test_generators_draw_complex_points_of_their_kind():
    key = jax.random.key(3)
    with jax.enable_x64():
        A = np.asarray(general((4, 4), cond=7.0)(key, "complex128"))
        assert A.dtype == np.complex128 and np.abs(A.imag).min() > 0
        assert np.isclose(np.linalg.cond(A), 7.0)
        assert not np.allclose(A, A.T) and not np.allclose(A, A.conj().T)
        H = np.asarray(spd(4)(key, "complex128"))
        assert np.allclose(H, H.conj().T) and np.linalg.eigvalsh(H).min() > 0
        assert np.abs(H.imag).max() > 0.1
        U = np.asarray(orthogonal(4)(key, "complex128"))
        assert np.allclose(U.conj().T @ U, np.eye(4))
        L = np.asarray(lower(4)(key, "complex128"))
        assert np.allclose(L, np.tril(L)) and np.abs(np.diag(L).imag).max() > 0
        S = np.asarray(stable(4)(key, "complex128"))
        assert np.linalg.eigvals(S).real.max() < 0
    assert general((3,))(key, "complex64").dtype == jnp.complex64
    # The real draws are unchanged by the complex ones (same seeds, same points as before).
    with jax.enable_x64():
        a = np.asarray(general((3, 3))(key, "float64"))
    assert a.dtype == np.float64
    # A generator with no complex meaning refuses, rather than a real point in a complex dtype.
    with pytest.raises(TypeError, match=r"positive.*complex64.*real values"):
        positive((3,))(key, "complex64")
    # complex128 is 64-bit precision: outside enable_x64 it would silently be complex64.
    with pytest.raises(ValueError, match="complex128.*64-bit mode is off"):
        general((3,))(key, "complex128")


def test_complex_values_agree_with_jax_and_scipy():
    rng = np.random.default_rng(0)
    with jax.enable_x64():
        A, b = _c(rng, 2, 4, 4), _c(rng, 4)
        assert np.allclose(
            R.linear_solve(A, b[None, :, None])[..., 0],
            np.linalg.solve(A, b[None, :, None])[..., 0],
        )
        assert np.allclose(R.inv(A), np.linalg.inv(A))
        s, logabs = R.slogdet(A)
        s_np, l_np = np.linalg.slogdet(A)
        assert np.allclose(s, s_np) and np.allclose(logabs, l_np) and logabs.dtype == np.float64
        assert np.allclose(R.logdet(A), l_np)
        H = A[0] @ A[0].conj().T + 4 * np.eye(4)
        assert np.allclose(R.linear_solve(H, b, assume="pos"), np.linalg.solve(H, b))
        assert np.allclose(
            R.linear_solve(A[0], b, assume="upper"), sl.solve_triangular(A[0], b, lower=False)
        )
        M, y = _c(rng, 7, 4), _c(rng, 7)
        assert np.allclose(R.lstsq(M, y), np.linalg.lstsq(M, y, rcond=None)[0])
        As, Bs, C = _c(rng, 4, 4) - 4 * np.eye(4), _c(rng, 3, 3) - 4 * np.eye(3), _c(rng, 4, 3)
        X = np.asarray(R.sylvester(As, Bs, C))
        assert np.abs(As @ X + X @ Bs - C).max() < 1e-12  # was 2.0: imaginary parts dropped
        Q = _c(rng, 4, 4)
        # Complex Lyapunov equations use Aᴴ, as SciPy's.
        assert np.allclose(R.lyapunov(As, Q), sl.solve_continuous_lyapunov(As, -Q))
        Ad = As / 10 + 0.4 * np.eye(4)
        assert np.allclose(R.discrete_lyapunov(Ad, Q), sl.solve_discrete_lyapunov(Ad, Q))


def test_complex_gradient_follows_jax_convention():
    # ∂/∂A of a real loss: JAX's cotangent is the conjugate of ∂_Re + i ∂_Im; the rules' VJPs
    # must agree with jnp.linalg's (the checker compares every rule; this is one plain test).
    rng = np.random.default_rng(1)
    with jax.enable_x64():
        A, b = jnp.asarray(_c(rng, 5, 3)), jnp.asarray(_c(rng, 5))

        def loss(f):
            return lambda A: jnp.sum(jnp.abs(f(A, b)) ** 2)

        ours = jax.grad(loss(R.lstsq))(A)
        jax_ = jax.grad(loss(lambda A, b: jnp.linalg.solve(A.conj().T @ A, A.conj().T @ b)))(A)
        assert np.allclose(ours, jax_, atol=1e-10)


def test_registered_dtypes_say_which_rules_support_complex():
    lib = jr.list_rules(module="jaxrules.rules")
    cplx = {r.name for r in lib if "complex64" in r.check.dtypes}
    assert cplx == COMPLEX_RULES
    assert all(r.check.dtypes[:2] == ("float64", "float32") for r in lib)


@pytest.mark.parametrize(
    "name", sorted({r.name for r in jr.list_rules(module="jaxrules.rules")} - COMPLEX_RULES)
)
def test_rules_without_complex_support_reject_it(name):
    rec = jr.get(name)
    with jax.enable_x64():
        args = rec.draw(jax.random.key(0), "float64", rec.cases[0])
        floats = [k for k, v in args.items() if hasattr(v, "dtype") and v.dtype == jnp.float64]
        args = {k: (v * (1 + 0.5j) if k in floats else v) for k, v in args.items()}
        with pytest.raises(TypeError, match="complex"):
            rec.fn(**args)


def test_checker_refuses_what_is_not_inexact():
    with pytest.raises(ValueError, match="floating or complex dtypes"):
        jr.check("inv", dtypes=("int32",))
    with pytest.raises(ValueError, match="dtypes must name some of"):
        jr.Registry().register(
            "x", reference=jnp.sin, inputs={"x": general((3,))}, dtypes=("complex",)
        )(lambda x: x)
