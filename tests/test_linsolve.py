"""The library's one differentiable linear solve (jaxrules/rules/_linsolve.py)."""

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest

from jaxrules.rules import _linsolve


def _problem(dtype=jnp.float64):
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    A = jax.random.normal(k1, (4, 4), dtype) + 3 * jnp.eye(4, dtype=dtype)
    b = jax.random.normal(k2, (4,), dtype)
    return A, b


def _solvers(A):
    factors = jsl.lu_factor(jax.lax.stop_gradient(A))
    lu = _linsolve.lu(factors)
    adjoint = _linsolve.Factored(
        lu.solve, adjoint=lambda r: jnp.conj(jsl.lu_solve(factors, jnp.conj(r), trans=1))
    )
    gmres = lambda mv, r, M: jax.scipy.sparse.linalg.gmres(mv, r, tol=1e-13, atol=0.0, M=M)[0]
    return {"lu": lu, "adjoint": adjoint, "iterative": _linsolve.Iterative(gmres)}


@pytest.mark.parametrize("which", ["lu", "adjoint", "iterative"])
@pytest.mark.parametrize("transpose", [False, True])
def test_solve_and_its_derivatives_match_jax(which, transpose):
    with jax.enable_x64(True):
        A, b = _problem()

        def ours(A, b):
            return _linsolve.solve(lambda x: A @ x, b, _solvers(A)[which], transpose=transpose)

        def jaxs(A, b):
            return jnp.linalg.solve(A.T if transpose else A, b)

        np.testing.assert_allclose(ours(A, b), jaxs(A, b), rtol=1e-10)
        for argnums in (0, 1):
            g = jax.jacrev(ours, argnums)(A, b)
            np.testing.assert_allclose(g, jax.jacrev(jaxs, argnums)(A, b), rtol=1e-9, atol=1e-12)
            f = jax.jacfwd(ours, argnums)(A, b)
            np.testing.assert_allclose(f, jax.jacfwd(jaxs, argnums)(A, b), rtol=1e-9, atol=1e-12)


def test_complex_adjoint_is_conjugated_once():
    # JAX transposes without conjugation: a solver given (Oᴴ)⁻¹ must be turned into (Oᵀ)⁻¹.
    with jax.enable_x64(True):
        A, b = _problem()
        A = A + 1j * jnp.roll(A, 1, axis=0)
        b = b.astype(A.dtype)
        ours = lambda A: _linsolve.solve(lambda x: A @ x, b, _solvers(A)["adjoint"]).real.sum()
        jaxs = lambda A: jnp.linalg.solve(A, b).real.sum()
        np.testing.assert_allclose(jax.grad(ours)(A), jax.grad(jaxs)(A), rtol=1e-10)


def test_factored_wants_exactly_one_transposed_form():
    with pytest.raises(ValueError, match="exactly one of transpose, adjoint and symmetric"):
        _linsolve.Factored(lambda r: r)
    with pytest.raises(ValueError, match="exactly one"):
        _linsolve.Factored(lambda r: r, transpose=lambda r: r, symmetric=True)
