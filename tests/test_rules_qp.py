"""The equality-constrained QP rule beyond ``jr.check``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr
from jaxrules.rules import eq_qp
from jaxrules.rules.quadratic_programs import _eq_qp_ref


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


# -- qp: inequality constraints ----------------------------------------------------------------
from jaxrules.rules import SolverError, qp  # noqa: E402


def _ineq(seed=0, dtype="float64", **sizes):
    """A QP with a known strictly complementary solution (see `_ineq_qp_inputs`)."""
    from jaxrules.rules.quadratic_programs import _ineq_qp_inputs

    p = _ineq_qp_inputs(jax.random.key(seed), dtype, **sizes)
    return p, sizes.get("active", 2)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 2e-3)])
@pytest.mark.parametrize(
    "sizes", [{}, pytest.param({"n": 30, "p": 3, "m": 40, "active": 12}, marks=pytest.mark.slow)]
)
def test_qp_recovers_the_constructed_solution(dtype, tol, sizes):
    with jax.enable_x64(dtype == "float64"):
        p, active = _ineq(1, dtype, **sizes)
        sol = qp(**p)
        assert bool(sol.converged) and sol.residual <= (1e-12 if dtype == "float64" else 1e-5)
        assert 1 <= int(sol.steps) <= 20
        lam = np.asarray(sol.lam)
        # strict complementarity of the construction: the first `active` constraints bind
        slack = np.asarray(p["h"] - p["G"] @ sol.x)
        assert np.all(lam[:active] > 0.4) and np.all(np.abs(slack[:active]) < tol)
        assert np.all(np.abs(lam[active:]) < tol) and np.all(slack[active:] > 0.4)
        # KKT by hand
        Qs = 0.5 * (p["Q"] + p["Q"].T)
        stat = Qs @ sol.x + p["c"] + p["G"].T @ sol.lam + p["A"].T @ sol.nu
        np.testing.assert_allclose(stat, 0.0, atol=tol * 10)
        np.testing.assert_allclose(p["A"] @ sol.x, p["b"], atol=tol * 10)


@pytest.mark.slow  # 7 s
def test_qp_float32_converges_on_benchmark_sized_problems():
    # n = 100 with 10 equalities and 50 inequalities in float32: the interior point used to stop
    # after one step (its gap test compared the *mean* complementarity with the objective),
    # with a wrong active set — converged=False, residual 0.2, on 12 of 32 such problems.
    from jaxrules.rules.quadratic_programs import _ineq_qp_inputs

    keys = jax.random.split(jax.random.key(3), 4)
    ds = [_ineq_qp_inputs(k, "float32", n=100, p=10, m=50, active=20) for k in keys]
    sol = jax.vmap(lambda d: qp(**d))({k: jnp.stack([d[k] for d in ds]) for k in ds[0]})
    assert bool(jnp.all(sol.converged)) and float(jnp.max(sol.residual)) < 1e-5
    lam = np.asarray(sol.lam)
    assert np.all(lam[:, :20] > 0.4) and np.all(np.abs(lam[:, 20:]) < 1e-4)


def test_qp_at_any_scale_of_the_objective_and_the_constraints():
    # The interior point's tests, the active-set thresholds and the inertia test compared the
    # data with 1: in float32, Q and c of scale 1e-5 ended on a wrong active set (x 70 % off,
    # not converged), of scale 1e3 the right answer was flagged as not converged, and rows of
    # A, b, G, h scaled by 1e-3 failed. x is invariant under these scalings; λ and ν scale by
    # (objective scale) / (row scale), the gradient in c by 1 / (objective scale).
    p, _ = _ineq(2, "float32")
    s_obj = jnp.asarray([1.0, 1e-7, 1e-5, 1e3, 1e6, 1.0, 1.0, 1.0])  # the first: unscaled
    s_row = jnp.asarray([1.0, 1.0, 1.0, 1.0, 1.0, 1e-5, 1e-3, 1e4])

    def scaled(s_obj, s_row):
        d = {"Q": s_obj * p["Q"], "c": s_obj * p["c"]}
        d.update({k: s_row * p[k] for k in "AbGh"})
        sol, vjp = jax.vjp(lambda c: qp(**{**d, "c": c}), d["c"])
        (grad,) = vjp(sol._replace(x=jnp.cos(sol.x), lam=0 * sol.lam, nu=0 * sol.nu))
        return sol, grad

    sols, grads = jax.jit(jax.vmap(scaled))(s_obj, s_row)
    for k in range(len(s_obj)):
        assert bool(sols.converged[k]), (float(s_obj[k]), float(s_row[k]))
        np.testing.assert_allclose(sols.x[k], sols.x[0], atol=1e-5)
        ratio = s_obj[k] / s_row[k]
        np.testing.assert_allclose(sols.lam[k] / ratio, sols.lam[0], atol=2e-5)
        np.testing.assert_allclose(sols.nu[k] / ratio, sols.nu[0], atol=2e-5)
        np.testing.assert_allclose(grads[k] * s_obj[k], grads[0], rtol=1e-4, atol=1e-5)
    assert np.all(np.asarray(sols.lam[0])[:2] > 0.4)  # (the construction's active set)


def test_qp_agrees_with_scipy_on_a_random_problem(x64):
    # Independent of the construction above: random data, feasible at x = 0 (h > 0, b = 0 +
    # A x_f with a feasible x_f), solved by SciPy's SLSQP.
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    n, p, m = 6, 2, 9
    R = rng.standard_normal((n, n))
    Q, c = R @ R.T + 0.5 * np.eye(n), 10 * rng.standard_normal(n)
    A, G = rng.standard_normal((p, n)), rng.standard_normal((m, n))
    x_f = 0.1 * rng.standard_normal(n)
    b, h = A @ x_f, G @ x_f + rng.uniform(0.01, 0.1, m)
    sol = qp(Q, c, A, b, G, h)
    ref = minimize(
        lambda x: 0.5 * x @ Q @ x + c @ x,
        x_f,
        jac=lambda x: Q @ x + c,
        constraints=[
            {"type": "eq", "fun": lambda x: A @ x - b, "jac": lambda x: A},
            {"type": "ineq", "fun": lambda x: h - G @ x, "jac": lambda x: -G},
        ],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert ref.success and bool(sol.converged)
    np.testing.assert_allclose(sol.x, ref.x, atol=1e-6)
    assert np.any(np.asarray(sol.lam) > 1e-3)  # some constraint is active: a real test


@pytest.mark.slow  # `jaxrules check` proves qp's derivatives against the dense KKT reference
def test_qp_gradient_matches_central_differences(x64):
    p, _ = _ineq(2, "float64", n=6, p=2, m=6, active=3)
    w = jnp.linspace(0.5, 1.5, 6)
    loss = lambda p: jnp.sum(jnp.sin(qp(**p).x * w)) + jnp.sum(qp(**p).lam ** 2)
    g = jax.grad(loss)(p)
    rng = np.random.default_rng(0)
    for name in p:
        d = jnp.asarray(rng.standard_normal(p[name].shape))
        e = 1e-6
        fd = (loss({**p, name: p[name] + e * d}) - loss({**p, name: p[name] - e * d})) / (2 * e)
        np.testing.assert_allclose(jnp.vdot(g[name], d), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.slow  # 6 s
def test_qp_weakly_active_constraint_is_held_active(x64):
    # min ½(x − p)² s.t. x ≤ 0: at p = 0 the bound is weakly active (x = 0, λ = 0). qp holds it
    # active: dx/dp = 0 (the one-sided derivative for p ≥ 0), dλ/dp = 1. Away from p = 0 the
    # derivative is the ordinary one on each side.
    def solve(p):
        sol = qp(jnp.eye(1), -p, G=jnp.eye(1), h=jnp.zeros(1))
        return sol.x[0], sol.lam[0]

    for p, (dx, dlam) in ((0.0, (0.0, 1.0)), (0.5, (0.0, 1.0)), (-0.5, (1.0, 0.0))):
        p = jnp.array([p])
        np.testing.assert_allclose(jax.jacobian(solve)(p), [[dx], [dlam]], atol=1e-12)
    # A weakly active constraint among others, in 3-D: x₂ ≤ 0 binds with a zero multiplier.
    Q, c = jnp.diag(jnp.array([1.0, 2.0, 3.0])), jnp.array([-1.0, 1.0, 0.0])
    G, h = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), jnp.array([0.0, 0.5])
    sol = qp(Q, c, G=G, h=h)
    np.testing.assert_allclose(sol.x, [0.5, -0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(sol.lam, [0.0, 0.5], atol=1e-12)
    J = jax.jacobian(lambda c: qp(Q, c, G=G, h=h).x)(c)
    np.testing.assert_allclose(J[2], 0.0, atol=1e-12)  # x₂ stays at its bound


@pytest.mark.parametrize(
    "problem",
    [
        # x ≤ −1 and x ≥ 1: infeasible
        dict(Q=jnp.eye(1), c=jnp.zeros(1), G=jnp.array([[1.0], [-1.0]]), h=-jnp.ones(2)),
        # min −x₀ s.t. x₀ ≥ 0 (Q = 0): unbounded
        pytest.param(
            dict(Q=jnp.zeros((1, 1)), c=-jnp.ones(1), G=-jnp.ones((1, 1)), h=jnp.zeros(1)),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["infeasible", "unbounded"],
)
def test_qp_failure_is_flagged_with_nan_derivatives_or_raised(x64, problem):
    sol = qp(**problem)
    assert not bool(sol.converged)
    g = jax.grad(lambda c: jnp.sum(qp(**{**problem, "c": c}).x))(problem["c"])
    assert np.all(np.isnan(g))
    with pytest.raises(SolverError, match="qp: no solution satisfying the KKT conditions"):
        qp(**problem, throw=True)
    with pytest.raises(Exception, match="qp: no solution satisfying the KKT conditions"):
        jax.block_until_ready(jax.jit(lambda p: qp(**p, throw=True))(problem))


def test_qp_without_inequalities_or_constraints(x64):
    p = _problem()
    sol = qp(p["Q"], p["c"], p["A"], p["b"])
    x, lam = eq_qp(**p)
    np.testing.assert_allclose(sol.x, x, atol=1e-12)
    np.testing.assert_allclose(sol.nu, lam, atol=1e-12)
    assert sol.lam.shape == (0,) and bool(sol.converged)
    Q = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(qp(Q, jnp.ones(2)).x, -jnp.linalg.solve(Q, jnp.ones(2)))


@pytest.mark.slow
def test_qp_linear_program_at_a_vertex(x64):
    # Q = 0: min cᵀx over the box 0 ≤ x ≤ u; the solution is the vertex x = u where c < 0.
    c, u = jnp.array([-1.0, 2.0, -3.0]), jnp.array([1.0, 2.0, 3.0])
    G, h = jnp.concatenate([jnp.eye(3), -jnp.eye(3)]), jnp.concatenate([u, jnp.zeros(3)])
    sol = qp(jnp.zeros((3, 3)), c, G=G, h=h)
    assert bool(sol.converged)
    np.testing.assert_allclose(sol.x, [1.0, 0.0, 3.0], atol=1e-10)
    J = jax.jacobian(lambda h: qp(jnp.zeros((3, 3)), c, G=G, h=h).x)(h)
    np.testing.assert_allclose(J[:, :3], np.diag([1.0, 0.0, 1.0]), atol=1e-10)


def test_qp_batches_broadcast_and_vmap(x64):
    ps = [_ineq(s)[0] for s in range(3)]
    stack = {k: jnp.stack([p[k] for p in ps]) for k in ps[0]}
    one = {**stack, "Q": ps[0]["Q"]}  # Q broadcast against the stacked rest
    with pytest.raises(ValueError, match=r"qp: the batch dimensions of Q \(\) and c \(3,\)"):
        qp(**one)  # rank promotion of the batches: an error under the suite's setting
    for args in (stack, one):
        with jax.numpy_rank_promotion("allow"):
            sol = qp(**args)
        assert sol.x.shape == (3, 5) and sol.lam.shape == (3, 4) and sol.converged.shape == (3,)
        for i in range(3):
            single = qp(
                **{k: (v[i] if v.ndim > (2 if k in "QAG" else 1) else v) for k, v in args.items()}
            )
            np.testing.assert_allclose(sol.x[i], single.x, atol=1e-12)
        np.testing.assert_allclose(
            jax.vmap(lambda p: qp(**p).x)(args if args is stack else stack)[0],
            qp(**ps[0]).x,
            atol=1e-12,
        )


def test_qp_input_errors_name_the_argument():
    Q, c = jnp.eye(2), jnp.ones(2)
    with pytest.raises(ValueError, match=r"qp: give both G and h, or neither"):
        qp(Q, c, G=jnp.ones((1, 2)))
    with pytest.raises(ValueError, match=r"qp: G must have shape \(\.\.\., k, 2\) and h shape"):
        qp(Q, c, G=jnp.ones((1, 3)), h=jnp.ones(1))
    with pytest.raises(ValueError, match=r"qp: Q must be a square matrix"):
        qp(jnp.ones((2, 3)), c)
    with pytest.raises(TypeError, match=r"qp: c is complex"):
        qp(Q, c * 1j)


def test_indefinite_q_is_not_converged():
    # A saddle point satisfies the KKT conditions: it used to come back converged=True with
    # finite derivatives. The second-order test (the KKT matrix's inertia) flags it.
    Q = jnp.array([[2.0, 0.0], [0.0, -1.0]])
    G, h = jnp.array([[1.0, 0.0], [-1.0, 0.0]]), jnp.array([1.0, 1.0])
    sol = qp(Q, jnp.zeros(2), G=G, h=h)
    assert not bool(sol.converged)
    g = jax.grad(lambda c: jnp.sum(qp(Q, c, G=G, h=h).x))(jnp.zeros(2))
    assert not bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(SolverError):
        qp(Q, jnp.zeros(2), G=G, h=h, throw=True)
    Q = jnp.array([[2.0, 0.5], [0.5, 1.0]])  # the convex twin: converged
    assert bool(qp(Q, jnp.array([1.0, -1.0]), G=G, h=h).converged)


def _redundant_problems():
    """A QP in R³ with two independent active inequalities (multipliers 0.7, 0.4) and an
    equality, then the same problem with a redundant constraint added: `(full, dedup, lift)`,
    `lift` mapping a perturbation of the deduplicated data to the consistent perturbation of
    the full data (the redundant row moving with the rows it repeats)."""
    Q = jnp.array([[2.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 1.0]])
    G0, A0 = jnp.array([[1.0, 1.0, 0.0], [0.0, 1.0, -1.0]]), jnp.array([[1.0, -0.5, 1.0]])
    x, lam, nu = jnp.array([0.2, 0.3, -0.1]), jnp.array([0.7, 0.4]), jnp.array([-0.6])
    c = -(Q @ x + G0.T @ lam + A0.T @ nu)
    base = dict(Q=Q, c=c, A=A0, b=A0 @ x, G=G0, h=G0 @ x)
    dup_g = lambda G, h: (jnp.concatenate([G, G[:1]]), jnp.concatenate([h, h[:1]]))
    sum_g = lambda G, h: (jnp.concatenate([G, G[:1] + G[1:]]), jnp.concatenate([h, h[:1] + h[1:]]))
    dup_a = lambda A, b: (jnp.concatenate([A, A]), jnp.concatenate([b, b]))

    def lift_g(how):
        return lambda p: {**p, **dict(zip("Gh", how(p["G"], p["h"])))}

    def lift_a(p):
        return {**p, **dict(zip("Ab", dup_a(p["A"], p["b"])))}

    return {
        "duplicated inequality": lift_g(dup_g),
        "redundant inequality (sum of two)": lift_g(sum_g),
        "duplicated equality": lift_a,
    }, base


@pytest.mark.slow  # 5-14 s each (new shapes: the interior point compiles afresh)
@pytest.mark.parametrize(
    "case", ["duplicated inequality", "redundant inequality (sum of two)", "duplicated equality"]
)
def test_redundant_constraints_keep_x_and_a_consistent_derivative(x64, case):
    # x is unique, but the active constraints are linearly dependent: the KKT matrix is
    # singular. This used to return an infeasible x (converged=False, NaN derivatives). qp
    # keeps a maximal independent subset (equalities first, then inequalities by index): x,
    # converged and the multipliers' action are those of the problem without the redundant
    # row, and so are the derivatives along any perturbation that keeps the data consistent.
    lifts, base = _redundant_problems()
    lift = lifts[case]
    full, dedup = qp(**lift(base)), qp(**base)
    assert bool(full.converged) and bool(dedup.converged)
    np.testing.assert_allclose(full.x, dedup.x, atol=1e-12)
    p = lift(base)
    action = p["G"].T @ full.lam + p["A"].T @ full.nu
    np.testing.assert_allclose(action, base["G"].T @ dedup.lam + base["A"].T @ dedup.nu, atol=1e-12)
    assert bool(jnp.all(full.lam >= 0))
    rng = np.random.default_rng(0)
    tangent = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in base.items()}
    tangent["Q"] = 0.5 * (tangent["Q"] + tangent["Q"].T)
    _, dx_full = jax.jvp(lambda d: qp(**lift(d)).x, (base,), (tangent,))
    _, dx_dedup = jax.jvp(lambda d: qp(**d).x, (base,), (tangent,))
    np.testing.assert_allclose(dx_full, dx_dedup, atol=1e-10)
    g = jax.grad(lambda d: jnp.sum(qp(**d).x ** 2))(p)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(g))


def test_inconsistent_duplicated_equality_is_not_converged(x64):
    lifts, base = _redundant_problems()
    p = lifts["duplicated equality"](base)
    p["b"] = p["b"].at[1].add(0.1)  # the same row, a different right-hand side: infeasible
    assert not bool(qp(**p).converged)
