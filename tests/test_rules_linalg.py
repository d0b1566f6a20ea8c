"""Behaviour of the linear-algebra and matrix-equation rules beyond ``jr.check``: factor reuse,
singular inputs, agreement with SciPy, input validation."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl

import jaxrules as jr
from jaxrules.rules import (
    discrete_lyapunov,
    inv,
    linear_solve,
    logdet,
    lstsq,
    lyapunov,
    matvec_fixed,
    slogdet,
    sylvester,
)


def _count(fn, *args, names):
    """How many equations of the given primitives a traced function contains (recursively)."""
    jaxpr = jax.make_jaxpr(fn)(*args)
    counts = dict.fromkeys(names, 0)

    def walk(j):
        for eqn in j.eqns:
            if eqn.primitive.name in counts:
                counts[eqn.primitive.name] += 1
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jaxpr.jaxpr)
    return counts


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_every_registered_rule_is_in_the_library_checks():
    names = {r.name for r in jr.list_rules(module="jaxrules.rules")}
    assert {
        "linear_solve",
        "inv",
        "logdet",
        "slogdet",
        "lstsq",
        "sylvester",
        "lyapunov",
        "discrete_lyapunov",
        "matvec",
        "matvec_fixed",
        "quadratic_form",
    } <= names
    assert all(r.check.order == 2 for r in jr.list_rules(tag="linalg"))


@pytest.mark.parametrize("assume, factor", [("gen", "lu"), ("pos", "cholesky")])
def test_one_factorisation_for_value_gradient_and_hessian(assume, factor):
    A = jnp.asarray(_rng().standard_normal((4, 4)), jnp.float32)
    A = A @ A.T + 4 * jnp.eye(4) if assume == "pos" else A
    b = jnp.arange(4.0)
    loss = lambda A, b: jnp.sum(jnp.sin(linear_solve(A, b, assume=assume)))
    assert _count(loss, A, b, names=[factor])[factor] == 1
    assert _count(jax.grad(loss, (0, 1)), A, b, names=[factor])[factor] == 1
    assert _count(jax.hessian(loss, 1), A, b, names=[factor])[factor] == 1
    assert _count(jax.jacfwd(jax.grad(loss)), A, b, names=[factor])[factor] == 1


@pytest.mark.parametrize("method", ["schur", "auto"])
def test_matrix_equations_reuse_their_schur_factors(method):
    # "auto" holds the sign path too (for other platforms), but one Schur factorisation still.
    A = jnp.asarray(np.diag([-1.0, -2.0, -3.0]) + np.triu(np.ones((3, 3)), 1), jnp.float32)
    B = -jnp.eye(2) + jnp.array([[0.0, 0.3], [0.0, 0.0]])
    C = jnp.ones((3, 2))
    f = lambda A, B, C: jnp.sum(sylvester(A, B, C, method=method) ** 2)
    assert _count(jax.grad(f, (0, 1, 2)), A, B, C, names=["schur"])["schur"] == 2
    assert _count(jax.hessian(f, 0), A, B, C, names=["schur"])["schur"] == 2
    g = lambda A, Q: jnp.sum(lyapunov(A, Q, method=method) ** 2)
    assert _count(jax.grad(g, (0, 1)), A, C @ C.T, names=["schur"])["schur"] == 1
    d = lambda A, Q: jnp.sum(discrete_lyapunov(A, Q, method=method) ** 2)
    Ad = 0.3 * A
    for fn in (d, jax.grad(d, (0, 1)), jax.hessian(d, 0)):
        counts = _count(fn, Ad, C @ C.T, names=["schur", "lu"])
        assert counts["schur"] == 1, counts
        if method == "schur":  # (the sign branch inverts in every solve)
            assert counts["lu"] == 1, counts


def test_batched_right_hand_sides_and_vmap(x64):
    rng = _rng(1)
    A = jnp.asarray(rng.standard_normal((5, 5)))
    B = jnp.asarray(rng.standard_normal((5, 3)))
    np.testing.assert_allclose(linear_solve(A, B), np.linalg.solve(A, B), rtol=1e-10)
    As = jnp.asarray(rng.standard_normal((4, 5, 5)))
    bs = jnp.asarray(rng.standard_normal((4, 5)))
    np.testing.assert_allclose(
        jax.vmap(linear_solve)(As, bs), np.linalg.solve(As, bs[..., None])[..., 0], rtol=1e-10
    )
    g = jax.vmap(jax.grad(lambda A, b: linear_solve(A, b).sum()))(As, bs)
    g_ref = jax.vmap(jax.grad(lambda A, b: jnp.linalg.solve(A, b).sum()))(As, bs)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9)


@pytest.mark.parametrize("solves_on", [("cpu",), ()], ids=["solves", "products"])
def test_inverse_rules_both_implementations(solves_on, monkeypatch, x64):
    # inv's rules solve with the LU factors on CPU and multiply by the inverse elsewhere
    # (lax.platform_dependent). CI has only a CPU: switching the CPU to the products path
    # runs the GPU path here. Both must agree with JAX at first and second order, and the
    # compiled gradient must show which path ran (LAPACK triangular solves: 2 primal + 4).
    from jaxrules.rules import linalg

    monkeypatch.setattr(linalg, "_SOLVES_ON", solves_on)
    rng = _rng(7)
    A = jnp.asarray(rng.standard_normal((6, 6)) + 3 * np.eye(6))
    W = jnp.asarray(rng.standard_normal((6, 6)))
    loss = lambda f: lambda A: jnp.sum(W * jnp.sin(f(A)))
    g, g_ref = jax.grad(loss(inv))(A), jax.grad(loss(jnp.linalg.inv))(A)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
    T = jnp.asarray(rng.standard_normal((6, 6)))
    d, d_ref = jax.jvp(inv, (A,), (T,))[1], jax.jvp(jnp.linalg.inv, (A,), (T,))[1]
    np.testing.assert_allclose(d, d_ref, rtol=1e-10)
    H = jax.jvp(jax.grad(loss(inv)), (A,), (T,))[1]
    H_ref = jax.jvp(jax.grad(loss(jnp.linalg.inv)), (A,), (T,))[1]
    np.testing.assert_allclose(H, H_ref, rtol=1e-9, atol=1e-11)
    hlo = jax.jit(jax.grad(loss(inv))).lower(A).compile().as_text()
    assert hlo.count('custom_call_target="lapack_dtrsm_ffi"') == (6 if solves_on else 2)


def test_singular_inputs_are_non_finite_never_silently_finite(x64):
    S = jnp.array([[1.0, 2.0], [2.0, 4.0]])  # exactly singular
    b = jnp.array([1.0, 1.0])
    assert not np.all(np.isfinite(linear_solve(S, b)))
    assert not np.all(np.isfinite(inv(S)))
    assert float(logdet(S)) == -np.inf
    assert float(slogdet(S)[1]) == -np.inf
    assert not np.all(np.isfinite(jax.grad(lambda A: linear_solve(A, b).sum())(S)))
    rank_deficient = jnp.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    assert np.all(np.isnan(lstsq(rank_deficient, jnp.ones(3))))
    assert np.all(np.isnan(jax.grad(lambda A: lstsq(A, jnp.ones(3)).sum())(rank_deficient)))
    # Sylvester without a unique solution: A and -B share the eigenvalue 1.
    X = sylvester(jnp.array([[1.0, 0.0], [0.0, 2.0]]), jnp.array([[-1.0]]), jnp.ones((2, 1)))
    assert not np.all(np.isfinite(X))
    # Lyapunov: eigenvalues 1 and -1 sum to zero (the Hermitian-split solver too); discrete:
    # eigenvalues 2 and 1/2 multiply to one. Triangular, non-diagonal A, so that the Schur form
    # holds the exact eigenvalues (a similar dense A rounds them: then the output is finite but
    # amplified by 1/sep, ~1e14 here, as documented).
    U = jnp.array([[0.0, 0.5, 0.2], [0.0, 0.0, 0.3], [0.0, 0.0, 0.0]])
    for fn, eigs in ((lyapunov, [1.0, -1.0, -3.0]), (discrete_lyapunov, [2.0, 0.5, 0.1])):
        A = U + jnp.diag(jnp.array(eigs))
        assert not np.all(np.isfinite(fn(A, jnp.eye(3) + jnp.ones((3, 3))))), fn.__name__


def test_ill_conditioned_solve_loses_digits_like_jax(x64):
    # cond ~ 1e10: both our solve and JAX's lose ~10 digits; neither is silently exact.
    U, _ = np.linalg.qr(_rng(2).standard_normal((6, 6)))
    A = jnp.asarray(U @ np.diag(np.geomspace(1, 1e-10, 6)) @ U.T)
    b = jnp.asarray(_rng(3).standard_normal(6))
    ours, jaxs = linear_solve(A, b), jnp.linalg.solve(A, b)
    assert np.linalg.norm(ours - jaxs) / np.linalg.norm(jaxs) < 1e-4


def test_lstsq_finite_where_jax_gradient_is_nan(x64):
    b = jnp.array([1.0, -2.0, 0.5, 3.0])
    for A in (
        jnp.eye(4),
        jnp.eye(4)[:, :3],
        jnp.asarray(np.linalg.qr(_rng(4).standard_normal((4, 3)))[0]),
    ):
        loss = lambda A: jnp.sum(jnp.sin(lstsq(A, b)))
        ref = lambda A: jnp.sum(jnp.sin(jnp.linalg.solve(A.T @ A, A.T @ b)))
        jax_loss = lambda A: jnp.sum(jnp.sin(jnp.linalg.lstsq(A, b)[0]))
        # Compiled (eagerly, each op of the Hessians would compile on its own: 20 s).
        g = jax.jit(jax.grad(loss))(A)
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, jax.jit(jax.grad(ref))(A), rtol=1e-10, atol=1e-12)
        if jax.__version__ == "0.10.2":  # measured there; newer JAX may change
            assert not np.all(np.isfinite(jax.jit(jax.grad(jax_loss))(A)))  # JAX's own: NaN
        np.testing.assert_allclose(
            jax.jit(jax.hessian(loss))(A), jax.jit(jax.hessian(ref))(A), rtol=1e-8, atol=1e-10
        )


def test_lstsq_agrees_with_numpy_and_jax_at_general_points(x64):
    rng = _rng(5)
    A, b = jnp.asarray(rng.standard_normal((8, 3))), jnp.asarray(rng.standard_normal(8))
    np.testing.assert_allclose(lstsq(A, b), np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-12)
    g = jax.grad(lambda A, b: lstsq(A, b) @ jnp.arange(3.0), (0, 1))(A, b)
    g_jax = jax.grad(lambda A, b: jnp.linalg.lstsq(A, b)[0] @ jnp.arange(3.0), (0, 1))(A, b)
    for u, v in zip(g, g_jax):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [5, *(pytest.param(n, marks=pytest.mark.slow) for n in (20, 200))])
def test_sylvester_and_lyapunov_match_scipy(n, x64):
    rng = _rng(n)
    A = jr.inputs.stable(n)(jax.random.key(n), "float64")
    B = jr.inputs.stable(n // 2 + 1)(jax.random.key(n + 1), "float64")
    C = jnp.asarray(rng.standard_normal((n, n // 2 + 1)))
    X = jax.jit(sylvester)(A, B, C)  # compiled: eagerly each op compiles alone
    np.testing.assert_allclose(
        X, sl.solve_sylvester(np.asarray(A), np.asarray(B), np.asarray(C)), rtol=1e-8, atol=1e-10
    )
    Q = jnp.asarray(rng.standard_normal((n, n)))
    P = jax.jit(lyapunov)(A, Q)
    np.testing.assert_allclose(
        P, sl.solve_continuous_lyapunov(np.asarray(A), -np.asarray(Q)), rtol=1e-8, atol=1e-10
    )
    # discrete: a non-normal A with spectral radius 0.9
    Ad = jr.inputs.general((n, n), scale=0.9 / np.sqrt(n))(jax.random.key(n + 2), "float64")
    Xd = jax.jit(discrete_lyapunov)(Ad, Q)
    np.testing.assert_allclose(
        Xd, sl.solve_discrete_lyapunov(np.asarray(Ad), np.asarray(Q)), rtol=1e-8, atol=1e-10
    )


@pytest.mark.parametrize("n", [1, 7, 9, 17, pytest.param(40, marks=pytest.mark.slow)])
@pytest.mark.parametrize("lower", [False, True])
def test_triangular_lyapunov_solver_matches_the_general_one(n, lower, x64):
    # The Lyapunov solver splits F into Hermitian parts and solves only triangles, in blocks:
    # sizes below, at and across block widths (n = 40: five blocks); either triangle; a
    # non-Hermitian F.
    from jaxrules.rules import matrix_equations as me

    rng = _rng(n)
    # Off-diagonal scaled by 1/√n: random triangular matrices are otherwise exponentially
    # ill-conditioned in n, and the comparison would measure that, not the solver.
    S = np.triu(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(n)
    S[np.diag_indices(n)] = -1.0 - rng.random(n) + 1j * rng.standard_normal(n)  # stable
    S = jnp.asarray(S.T if lower else S)
    F = jnp.asarray(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    Y = jax.jit(me._tri_lyapunov, static_argnums=1)(S, lower, F)
    np.testing.assert_allclose(S @ Y + Y @ S.conj().T, F, atol=1e-11)
    Y_ref = jax.jit(me._tri_sylvester, static_argnums=(1, 3))(S, lower, S.conj().T, not lower, F)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-11, atol=1e-12)


@pytest.mark.slow
def test_lyapunov_of_symmetric_q_is_symmetric(x64):
    A = jr.inputs.stable(60)(jax.random.key(3), "float64")
    Q = jr.inputs.spd(60)(jax.random.key(4), "float64")
    P = lyapunov(A, Q)
    np.testing.assert_allclose(P, P.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A @ P + P @ A.T, -Q, atol=1e-10)


def test_sylvester_derivatives_wrt_A_and_B_where_jax_has_none(x64):
    A = jr.inputs.stable(4)(jax.random.key(0), "float64")
    B = jr.inputs.stable(3)(jax.random.key(1), "float64")
    C = jr.inputs.general((4, 3))(jax.random.key(2), "float64")
    loss = lambda A, B: jnp.sum(jnp.tanh(sylvester(A, B, C)))
    with pytest.raises(NotImplementedError):
        jax.grad(lambda A: jnp.sum(jax.scipy.linalg.solve_sylvester(A, B, C)))(A)
    gA, gB = jax.grad(loss, (0, 1))(A, B)
    # Central differences on one entry each.
    eps = 1e-6
    E = jnp.zeros((4, 4)).at[1, 2].set(1.0)
    fd = (loss(A + eps * E, B) - loss(A - eps * E, B)) / (2 * eps)
    assert float(gA[1, 2]) == pytest.approx(float(fd), rel=1e-6)
    F = jnp.zeros((3, 3)).at[2, 0].set(1.0)
    fd = (loss(A, B + eps * F) - loss(A, B - eps * F)) / (2 * eps)
    assert float(gB[2, 0]) == pytest.approx(float(fd), rel=1e-6)


def test_matvec_fixed_refuses_derivative_wrt_data():
    A, x = jnp.ones((2, 3)), jnp.ones(3)
    with pytest.raises(ValueError, match="matvec_fixed: argument 'A' is declared constant"):
        jax.grad(lambda A: matvec_fixed(A, x).sum())(A)


def test_input_validation_messages():
    with pytest.raises(ValueError, match=r"linear_solve: assume must be one of .* got 'sym'"):
        linear_solve(jnp.eye(2), jnp.ones(2), assume="sym")
    with pytest.raises(
        ValueError,
        match=r"linear_solve: A must be a square matrix of shape \(\.\.\., n, n\), got shape \(2, 3\)",
    ):
        linear_solve(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(
        ValueError, match=r"linear_solve: b must have shape \(2,\) or \(\.\.\., 2, k\)"
    ):
        linear_solve(jnp.eye(2), jnp.ones(3))
    with pytest.raises(ValueError, match=r"linear_solve: the batch dimensions of A \(4,\)"):
        linear_solve(jnp.ones((4, 2, 2)), jnp.ones((3, 2, 1)))
    with pytest.raises(ValueError, match=r"inv: A must be a square matrix"):
        inv(jnp.ones(3))
    with pytest.raises(ValueError, match=r"lstsq: A must be a tall or square matrix"):
        lstsq(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match=r"sylvester: C must have shape \(2, 3\)"):
        sylvester(jnp.eye(2), jnp.eye(3), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match=r"lyapunov: Q must have the shape of A"):
        lyapunov(jnp.eye(2), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match=r"discrete_lyapunov: Q must have the shape of A"):
        discrete_lyapunov(jnp.eye(2), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match=r"discrete_lyapunov: A must be a square matrix"):
        discrete_lyapunov(jnp.ones((2, 3)), jnp.ones((2, 3)))


def _staged_cases():
    from jaxrules.rules.matrix_equations import _kron_stein, _kron_sylvester

    rng = _rng(7)
    A = jnp.asarray(rng.standard_normal((4, 4)) + 3 * np.eye(4))
    b = jnp.asarray(rng.standard_normal(4))
    T = jnp.asarray(rng.standard_normal((6, 4)))
    bt = jnp.asarray(rng.standard_normal(6))
    St = jr.inputs.stable(4)(jax.random.key(0), "float64")
    B = jr.inputs.stable(3)(jax.random.key(1), "float64")
    C = jr.inputs.general((4, 3))(jax.random.key(2), "float64")
    s = lambda y: jnp.sum(jnp.sin(y))
    return [
        ("linear_solve", lambda A: s(linear_solve(A, b)), lambda A: s(jnp.linalg.solve(A, b)), A),
        ("inv", lambda A: s(inv(A)), lambda A: s(jnp.linalg.inv(A)), A),
        ("logdet", lambda A: jnp.sin(logdet(A)), lambda A: jnp.sin(jnp.linalg.slogdet(A)[1]), A),
        ("lstsq", lambda A: s(lstsq(A, bt)), lambda A: s(jnp.linalg.solve(A.T @ A, A.T @ bt)), T),
        ("sylvester", lambda A: s(sylvester(A, B, C)), lambda A: s(_kron_sylvester(A, B, C)), St),
        (
            "lyapunov",
            lambda A: s(lyapunov(A, C @ C.T)),
            lambda A: s(_kron_sylvester(A, A.T, -C @ C.T)),
            St,
        ),
        (
            "discrete_lyapunov",
            lambda A: s(discrete_lyapunov(A, C @ C.T)),
            lambda A: s(_kron_stein(A, C @ C.T)),
            0.2 * St,
        ),
    ]


# The slow tier (5-17 s each).
@pytest.mark.slow
@pytest.mark.parametrize("case", range(7))
def test_second_order_right_however_jax_reaches_the_rule(case, x64):
    # Staged by jit before differentiation (the low backend: JAX transposes the JVP rule), or
    # differentiated directly (the VJP rule): the Hessian is the reference's either way.
    name, f, ref, arg = _staged_cases()[case]
    H = jax.hessian(ref)(arg)
    for how in (
        jax.hessian(f),
        jax.hessian(jax.jit(f)),
        jax.jacrev(jax.grad(jax.jit(f))),
        jax.jacfwd(jax.jacfwd(jax.jit(f))),
    ):
        np.testing.assert_allclose(how(arg), H, rtol=1e-8, atol=1e-10, err_msg=name)


# -- complex and empty inputs (issue 15) -----------------------------------------------------
@pytest.mark.parametrize(
    "name, call, residual",
    [
        ("sylvester", lambda A, C: sylvester(A, A.T, C), lambda A, C, X: A @ X + X @ A.T - C),
        ("lyapunov", lyapunov, lambda A, C, X: A @ X + X @ A.conj().T + C),
        (
            "discrete_lyapunov",
            lambda A, C: discrete_lyapunov(0.3 * A, C),
            lambda A, C, X: 0.09 * A @ X @ A.conj().T - X + C,
        ),
    ],
)
def test_matrix_equations_solve_complex_input(name, call, residual):
    # They used to drop imaginary parts silently (residual 2.0 where SciPy's is 1e-16).
    A = jnp.array([[-2.0, 1.0], [0.5, -3.0]]) * (1 + 0.5j)
    C = jnp.array([[1.0, 2j], [0.5 - 1j, 3.0]], dtype=jnp.complex64)
    X = call(A, C)
    assert X.dtype == jnp.complex64
    assert float(jnp.max(jnp.abs(residual(A, C, X)))) < 1e-5, name


@pytest.mark.parametrize(
    "call, shape",
    [
        (lambda: sylvester(jnp.zeros((0, 0)), jnp.zeros((0, 0)), jnp.zeros((0, 0))), (0, 0)),
        (lambda: sylvester(jnp.zeros((0, 0)), -jnp.eye(2), jnp.zeros((0, 2))), (0, 2)),
        (lambda: lyapunov(jnp.zeros((0, 0)), jnp.zeros((0, 0))), (0, 0)),
        (lambda: discrete_lyapunov(jnp.zeros((0, 0)), jnp.zeros((0, 0))), (0, 0)),
    ],
)
def test_matrix_equations_on_empty_inputs(call, shape):
    # They used to raise ZeroDivisionError; empty in, empty out, as jnp.
    assert call().shape == shape


def test_lstsq_with_no_unknowns_is_empty_as_jnp():
    # A (3, 0) matrix: jnp.linalg.lstsq returns an empty solution (this failed in a reduction).
    A, b = jnp.zeros((3, 0)), jnp.ones(3)
    assert lstsq(A, b).shape == jnp.linalg.lstsq(A, b)[0].shape == (0,)
    assert lstsq(A, jnp.ones((3, 2))).shape == (0, 2)


# -- jnp.linalg semantics: batches, broadcasting, promotion, empty inputs (issue 15) -------------
def _stack(shape, seed=0, dtype="float64"):
    return jr.inputs.general(shape)(jax.random.key(seed), dtype)


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((4, 3, 3), (3,)), ((4, 3, 3), (4, 3, 2)), ((4, 3, 3), (1, 3, 5)), ((2, 1, 3, 3), (4, 3, 1))],
)
def test_linear_solve_batches_and_broadcasts_like_jnp(a_shape, b_shape, x64):
    A, b = _stack(a_shape), _stack(b_shape, 1)
    # Batches of different ranks: rank promotion, which the suite's setting (conftest) makes an
    # error — for both, with the rule and the arguments named in linear_solve's.
    promotes = len(a_shape) - 2 != len(b_shape) - (1 if len(b_shape) == 1 else 2)
    if promotes:
        with pytest.raises(ValueError, match="rank promotion"):
            jnp.linalg.solve(A, b)
        with pytest.raises(ValueError, match=r"linear_solve: the batch dimensions of A .* rank"):
            linear_solve(A, b)
        with jax.numpy_rank_promotion("warn"), pytest.warns(UserWarning, match="linear_solve: "):
            linear_solve(A, b)
    with jax.numpy_rank_promotion("allow" if promotes else "raise"):
        want = jnp.linalg.solve(A, b)
        got = linear_solve(A, b)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        loss = lambda f: lambda A, b: jnp.sum(jnp.sin(f(A, b)))
        for g, w in zip(
            jax.grad(loss(linear_solve), (0, 1))(A, b),
            jax.grad(loss(jnp.linalg.solve), (0, 1))(A, b),
        ):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (inv, jnp.linalg.inv),
        (logdet, lambda A: jnp.linalg.slogdet(A)[1]),
        (lambda A: jnp.stack(slogdet(A)), lambda A: jnp.stack(jnp.linalg.slogdet(A))),
    ],
)
def test_square_rules_take_stacks(ours, theirs, x64):
    A = _stack((2, 3, 4, 4))
    np.testing.assert_allclose(ours(A), theirs(A), rtol=1e-10, atol=1e-12)
    g = jax.grad(lambda A: jnp.sum(jnp.sin(ours(A))))(A)
    np.testing.assert_allclose(
        g, jax.grad(lambda A: jnp.sum(jnp.sin(theirs(A))))(A), rtol=1e-9, atol=1e-12
    )


def test_a_stack_is_one_batched_factorisation():
    # vmap of the one-matrix rule: a single batched LU in the compiled gradient, not a loop.
    A = _stack((8, 5, 5), dtype="float32")
    hlo = jax.jit(jax.grad(lambda A: jnp.sum(inv(A)))).lower(A).compile().as_text()
    getrf = [line for line in hlo.splitlines() if "getrf" in line and "custom-call(" in line]
    assert len(getrf) == 1 and "f32[8,5,5]" in getrf[0], getrf  # one LU of all 8 matrices


def test_dtypes_promote_like_jnp():
    A32 = jnp.array([[3.0, 1.0], [1.0, 2.0]], jnp.float32)
    assert linear_solve(A32, jnp.array([9, 8])).dtype == jnp.float32  # int b
    assert linear_solve(A32, jnp.array([9.0, 8.0], jnp.float16)).dtype == jnp.float32
    assert inv(jnp.array([[2, 0], [0, 4]])).dtype == jnp.linalg.inv(jnp.eye(2, dtype=int)).dtype
    assert logdet(jnp.array([[2, 1], [1, 3]])).dtype == jnp.float32
    np.testing.assert_allclose(linear_solve(jnp.array([[3, 1], [1, 2]]), jnp.array([9, 8])), [2, 3])


def test_empty_inputs_like_jnp():
    assert linear_solve(jnp.zeros((0, 0)), jnp.zeros(0)).shape == (0,)
    assert inv(jnp.zeros((0, 0))).shape == (0, 0)
    assert inv(jnp.zeros((0, 3, 3))).shape == (0, 3, 3)
    assert [float(v) for v in slogdet(jnp.zeros((0, 0)))] == [1.0, 0.0]
    assert logdet(jnp.zeros((0, 3, 3))).shape == (0,)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_jax_test_settings_strict_promotion(dtype):
    # JAX's own tests run with x64, strict dtype promotion, rank promotion "raise" and checks;
    # slogdet/logdet used to mix int32 pivots with an int64 index and Python complex scalars.
    settings = {
        "jax_enable_x64": True,
        "jax_numpy_dtype_promotion": "strict",
        "jax_numpy_rank_promotion": "raise",
        "jax_enable_checks": True,
    }
    old = {k: getattr(jax.config, k) for k in settings}
    try:
        for k, v in settings.items():
            jax.config.update(k, v)
        rng = np.random.default_rng(3)
        A = rng.standard_normal((2, 4, 4)) + (
            1j if "complex" in dtype else 0
        ) * rng.standard_normal((2, 4, 4))
        A = jnp.asarray(A, dtype)
        sign, logabs = slogdet(A)
        want_sign, want_logabs = np.linalg.slogdet(np.asarray(A))
        np.testing.assert_allclose(sign, want_sign, rtol=1e-4)
        np.testing.assert_allclose(logabs, want_logabs, rtol=1e-4)
        g = jax.grad(lambda A: jnp.sum(logdet(A)))(A)
        assert g.shape == A.shape and bool(jnp.all(jnp.isfinite(g)))
        np.testing.assert_allclose(inv(A) @ A, np.broadcast_to(np.eye(4), A.shape), atol=1e-4)
    finally:
        for k, v in old.items():
            jax.config.update(k, v)


@pytest.mark.parametrize("int_dtype", ["int32", "int64", "bool"])
def test_integer_inputs_keep_jnp_linalg_dtypes_under_x64(int_dtype):
    # JAX maps integers of up to 32 bits to float32 and 64-bit ones to float64, also under x64;
    # jaxrules gave float64 for int32 under x64.
    with jax.enable_x64(True):
        A = (
            np.array([[3, 1], [1, 2]]).astype(int_dtype)
            if int_dtype != "bool"
            else np.eye(2, dtype=bool)
        )
        b = np.array([1, 2]).astype(int_dtype) if int_dtype != "bool" else np.array([True, False])
        for ours, theirs in (
            (linear_solve(A, b), jnp.linalg.solve(A, b)),
            (inv(A), jnp.linalg.inv(A)),
            (slogdet(A)[1], jnp.linalg.slogdet(A)[1]),
            (logdet(A), jnp.linalg.slogdet(A)[1]),
        ):
            assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
