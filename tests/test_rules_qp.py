"""The equality-constrained QP rule beyond ``jr.check``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr
from jaxrules.rules import eq_qp
from jaxrules.rules.qp import _eq_qp_ref


@pytest.fixture
def x64():
    with jax.enable_x64():
        yield


def _problem():
    return jr.get("eq_qp").draw(jax.random.key(3), "float64")


def test_solution_is_optimal_and_feasible(x64):
    p = _problem()
    x, lam = eq_qp(**p)
    Qs = 0.5 * (p["Q"] + p["Q"].T)
    np.testing.assert_allclose(p["A"] @ x, p["b"], atol=1e-12)
    np.testing.assert_allclose(Qs @ x + p["c"] + p["A"].T @ lam, 0.0, atol=1e-12)
    # Optimal among feasible points: moving along the null space of A does not decrease it.
    N = np.linalg.svd(np.asarray(p["A"]))[2][2:].T
    f = lambda y: 0.5 * y @ Qs @ y + p["c"] @ y
    for d in N.T:
        assert f(x + 1e-3 * d) > f(x) and f(x - 1e-3 * d) > f(x)


@pytest.mark.slow  # eq_qp's derivatives are also proved by `jaxrules check` (the main job)
def test_gradients_and_hessian_match_the_dense_kkt_reference(x64):
    p = _problem()
    w = jnp.arange(1.0, 6.0)
    loss = lambda fn: (
        lambda Q, c, A, b: jnp.sum(jnp.sin(fn(Q, c, A, b)[0] * w)) + fn(Q, c, A, b)[1].sum() ** 2
    )
    args = (p["Q"], p["c"], p["A"], p["b"])
    g = jax.grad(loss(eq_qp), (0, 1, 2, 3))(*args)
    g_ref = jax.grad(loss(_eq_qp_ref), (0, 1, 2, 3))(*args)
    for a, r in zip(g, g_ref):
        np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g[0], g[0].T, atol=1e-14)  # symmetrised cotangent of Q
    for how in (jax.hessian, lambda f, argnums: jax.hessian(jax.jit(f), argnums)):
        H = how(loss(eq_qp), 1)(*args)
        np.testing.assert_allclose(
            H, jax.hessian(loss(_eq_qp_ref), 1)(*args), rtol=1e-8, atol=1e-10
        )


def test_learning_a_qp_parameter_by_gradient_descent(x64):
    # Fit c so that the QP's solution hits a target: the loss decreases to ~0.
    p = _problem()
    target = eq_qp(p["Q"], p["c"] + 1.0, p["A"], p["b"])[0]
    loss = lambda c: jnp.sum((eq_qp(p["Q"], c, p["A"], p["b"])[0] - target) ** 2)
    step = jax.jit(lambda c: c - 0.5 * jax.grad(loss)(c))
    c = p["c"]
    first = float(loss(c))
    for _ in range(200):
        c = step(c)
    assert float(loss(c)) < 1e-6 * first


def test_singular_kkt_is_non_finite(x64):
    Q = jnp.eye(3)
    A = jnp.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])  # rank 1
    x, lam = eq_qp(Q, jnp.ones(3), A, jnp.ones(2))
    assert not np.all(np.isfinite(np.concatenate([x, lam])))


def test_input_validation():
    with pytest.raises(ValueError, match=r"eq_qp: Q must be a square matrix"):
        eq_qp(jnp.ones((2, 3)), jnp.ones(2), jnp.ones((1, 2)), jnp.ones(1))
    with pytest.raises(ValueError, match=r"eq_qp: A must have shape \(m, 2\) with m <= 2"):
        eq_qp(jnp.eye(2), jnp.ones(2), jnp.ones((3, 2)), jnp.ones(3))
    with pytest.raises(ValueError, match=r"eq_qp: c must have shape \(2,\) and b shape \(1,\)"):
        eq_qp(jnp.eye(2), jnp.ones(3), jnp.ones((1, 2)), jnp.ones(1))
