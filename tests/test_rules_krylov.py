"""Matrix-free Krylov solves (`krylov_solve`, `linear_solve` on a function): values, implicit
derivatives through the operator's captured arrays, failure semantics, memory.

Their derivatives are checked against the dense solve by `jaxrules check` (the registered
`krylov_example`, three solvers, float64/float32, jit/vmap, order 2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr
from jaxrules._bench import temp_bytes
from jaxrules.rules import SolverError, krylov_solve, linear_solve
from jaxrules.rules import krylov as K


def _problem(seed=0, m=5):
    rng = np.random.default_rng(seed)
    kappa = jnp.asarray(rng.uniform(0.5, 2.0, (m, m)))
    b = jnp.asarray(rng.standard_normal((m, m)))
    return kappa, b


@pytest.mark.parametrize(
    "solver",
    # One in the fast tier; `jaxrules check` covers all three against the dense solve.
    [
        "cg",
        pytest.param("gmres", marks=pytest.mark.slow),
        pytest.param("bicgstab", marks=pytest.mark.slow),
    ],
)
def test_value_and_gradient_match_the_dense_solve(solver):
    with jax.enable_x64():
        kappa, b = _problem()
        x = K.krylov_example(kappa, b, solver=solver)
        np.testing.assert_allclose(x, K._dense_reference(kappa, b, solver), atol=1e-9)
        w = jnp.asarray(np.random.default_rng(1).standard_normal(b.shape))

        def loss(f):
            return lambda kappa, b: jnp.vdot(w, f(kappa, b, solver=solver))

        g = jax.jit(jax.grad(loss(K.krylov_example), (0, 1)))(kappa, b)
        want = jax.grad(loss(K._dense_reference), (0, 1))(kappa, b)
        for got, ref in zip(g, want):
            np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-9)


@pytest.mark.slow  # 9 s
def test_linear_solve_on_an_operator_with_a_preconditioner():
    with jax.enable_x64():
        kappa, b = _problem(2)
        A = K._operator(kappa, 0.5)
        diag = jax.vmap(lambda e: jnp.vdot(e, A(e.reshape(b.shape)).ravel()))(jnp.eye(b.size))
        jacobi = lambda v: v / diag.reshape(b.shape)
        x = linear_solve(A, b, solver="bicgstab", M=jacobi)
        np.testing.assert_allclose(x, K._dense_reference(kappa, b, "bicgstab"), atol=1e-9)
        # The preconditioner gets no derivative; the operator's arrays do.
        solve = lambda k: linear_solve(K._operator(k, 0.5), b, solver="bicgstab", M=jacobi)
        g = jax.grad(lambda k: solve(k).sum())(kappa)
        ref = jax.grad(lambda k: K._dense_reference(k, b, "bicgstab").sum())(kappa)
        np.testing.assert_allclose(g, ref, rtol=1e-7)


@pytest.mark.slow  # 8 s
def test_gmres_stops_where_it_converges_not_at_the_end_of_a_cycle():
    # With a restart long enough to converge inside the first cycle, GMRES must stop at the
    # tolerance (jax.scipy's default finishes the cycle: 6e-16 here for tol 1e-4) — and still
    # be right, with or without restarts.
    with jax.enable_x64():
        rng = np.random.default_rng(0)
        kappa = jnp.asarray(rng.uniform(0.5, 2.0, (12, 12)))
        b = jnp.asarray(rng.standard_normal((12, 12)))
        A = K._operator(kappa, 0.5)
        rel = lambda x: float(jnp.linalg.norm(A(x) - b) / jnp.linalg.norm(b))
        for tol in (1e-4, 1e-8):
            for restart in (5, 100):
                sol = krylov_solve(A, b, solver="gmres", tol=tol, restart=restart)
                assert bool(sol.converged)
                assert tol / 100 < rel(sol.value) <= tol, (tol, restart, rel(sol.value))


def test_failure_is_visible():
    kappa, b = _problem(3)
    A = K._operator(kappa, 0.0)
    solve = lambda k, **kw: krylov_solve(K._operator(k, 0.0), b, solver="cg", maxiter=1, **kw)
    sol = solve(kappa)
    assert not bool(sol.converged) and bool(jnp.all(jnp.isnan(sol.value)))
    assert float(sol.residual) > 0
    g = jax.grad(lambda k: solve(k).value.sum())
    assert bool(jnp.all(jnp.isnan(g(kappa))))  # never a silently wrong number
    with pytest.raises(SolverError, match="cg did not converge"):
        solve(kappa, throw=True).value.block_until_ready()
    ok = krylov_solve(A, b, solver="cg")
    assert bool(ok.converged) and float(ok.residual) < 1e-4 * float(jnp.linalg.norm(b))


def test_memory_does_not_grow_with_the_iterations():
    kappa, b = _problem(4, m=8)

    def grad_bytes(maxiter):
        f = lambda k: jnp.sum(
            krylov_solve(K._operator(k, 0.0), b, solver="cg", maxiter=maxiter).value
        )
        return temp_bytes(jax.jit(jax.grad(f)).lower(kappa).compile())

    small, large = grad_bytes(10), grad_bytes(1000)
    assert small is not None and small == large


def test_bad_arguments_name_the_problem():
    kappa, b = _problem()
    A = K._operator(kappa, 0.0)
    with pytest.raises(TypeError, match="krylov_solve: A must be a linear function"):
        krylov_solve(jnp.eye(3), jnp.ones(3))
    with pytest.raises(ValueError, match="solver must be one of"):
        krylov_solve(A, b, solver="minres")
    with pytest.raises(ValueError, match=r"A\(v\) must return an array of b's shape"):
        krylov_solve(lambda v: v[:2], b)
    with pytest.raises(TypeError, match="b is complex"):
        krylov_solve(lambda v: v, jnp.ones(3, jnp.complex64))
    with pytest.raises(TypeError, match="M .*must be a function"):
        krylov_solve(A, b, M=jnp.eye(3))
    with pytest.raises(TypeError, match=r"linear_solve: solver apply to a matrix-free operator"):
        linear_solve(jnp.eye(3), jnp.ones(3), solver="cg")
    with pytest.raises(ValueError, match="assume= describes a matrix"):
        linear_solve(A, b, assume="pos")


@pytest.mark.slow
def test_checker_flags_an_untransposed_adjoint(monkeypatch):
    # The classic Krylov-adjoint mistake: solving with A instead of Aᵀ in the VJP. Invisible
    # for CG (symmetric), caught for GMRES's non-symmetric operator.
    from jaxrules.rules import _linsolve

    monkeypatch.setattr(_linsolve, "_transpose", lambda f, like: f)
    report = jr.check(
        "krylov_example", case="gmres", seeds=1, dtypes=("float64",), transforms=("jit",)
    )
    assert not report.passed
    assert {f.check for f in report.failures} >= {"vjp"}


def test_cg_probes_its_symmetry_assumption():
    # A slightly nonsymmetric operator: CG used to converge to the right value, say
    # converged=True, and give a gradient off by 1.2% (its adjoint solve uses A itself).
    n = 30
    rng = np.random.default_rng(0)
    S = rng.standard_normal((n, n))
    S = S @ S.T / n + np.eye(n)
    E = 1e-3 * rng.standard_normal((n, n))
    b = jnp.asarray(rng.standard_normal(n))
    for skew, want in ((0.0, True), (1.0, False)):
        K = jnp.asarray(S + skew * (E - E.T))
        sol = krylov_solve(lambda v, K=K: K @ v, b, solver="cg", maxiter=400)
        assert bool(sol.converged) == want, skew
        assert bool(jnp.all(jnp.isfinite(sol.value))) == want
    with pytest.raises(Exception, match=r"cg needs A symmetric"):
        krylov_solve(lambda v: K @ v, b, solver="cg", maxiter=400, throw=True)


def test_a_nonlinear_operator_is_a_clear_error_or_not_converged():
    b = jnp.ones(3)
    for A in (lambda v: v**2 + v, lambda v: jnp.sin(v)):
        with pytest.raises(TypeError, match=r"krylov_solve: A must be a linear function"):
            krylov_solve(A, b)
    # affine: transposable, but not linear (A(0) != 0): never converged
    sol = krylov_solve(lambda v: 2.0 * v + 1.0, b)
    assert not bool(sol.converged)
    assert bool(krylov_solve(lambda v: 2.0 * v, b).converged)


def test_pytree_right_hand_side_as_jax_scipy():
    k = {"a": jnp.array([2.0, 3.0]), "b": jnp.array([4.0, 5.0, 6.0])}
    A = lambda v, k=k: {"a": k["a"] * v["a"], "b": k["b"] * v["b"]}
    b = {"a": jnp.ones(2), "b": jnp.ones(3)}
    sol = krylov_solve(A, b, solver="cg")
    assert bool(sol.converged)
    np.testing.assert_allclose(sol.value["a"], 1 / k["a"], rtol=1e-5)
    np.testing.assert_allclose(sol.value["b"], 1 / k["b"], rtol=1e-5)
    g = jax.grad(
        lambda k: sum(
            jnp.sum(x)
            for x in jax.tree.leaves(
                krylov_solve(lambda v: {"a": k["a"] * v["a"], "b": k["b"] * v["b"]}, b).value
            )
        )
    )(k)
    np.testing.assert_allclose(g["b"], -1 / k["b"] ** 2, rtol=1e-4)


def _spd_problem(seed, n=12):
    """A well-conditioned symmetric positive definite `A` (float64, NumPy) and a `b`."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, n))
    return Q @ Q.T + n * np.eye(n), rng.standard_normal(n)


@pytest.mark.parametrize(
    "dtype, scales", [("float32", (1e-20, 1e19)), ("float64", (1e-170, 1e160))]
)
def test_a_right_hand_side_of_any_scale(dtype, scales):
    # The iterations square the entries (norms, inner products): b of scale 1e-170 in float64
    # (1e-20 in float32) gave ‖r‖² = 0, `converged` at x = 0 — 100 % wrong, residual 0 — and
    # 1e160 (1e19) overflowed to a NaN solution. A linear solve is scale-invariant: x(c b) =
    # c x(b), and the derivatives (solves with the tangent or cotangent) likewise.
    A, b = _spd_problem(3)
    rtol = 1e-8 if dtype == "float64" else 1e-3
    with jax.enable_x64(dtype == "float64"):
        A, b = jnp.asarray(A, dtype), jnp.asarray(b, dtype)
        x = np.linalg.solve(np.asarray(A, np.float64), np.asarray(b, np.float64))
        tol = rtol * np.abs(x).max()
        for solver in ("cg", "gmres", "bicgstab"):
            f = lambda b: krylov_solve(lambda v: A @ v, b, solver=solver)
            # the reverse mode solves Aᵀ w = x̄ with a cotangent of that scale
            both = lambda b: (f(b), jax.vjp(lambda b: f(b).value, b)[1](b)[0])
            sols, ws = jax.jit(jax.vmap(both))(jnp.stack([c * b for c in scales]))
            for c, value, converged, residual, w in zip(scales, *sols, ws):
                assert bool(converged), (solver, c)
                np.testing.assert_allclose(np.asarray(value, np.float64) / c, x, atol=tol)
                assert 0 < float(residual) / c < 1e-3 * np.linalg.norm(x)
                np.testing.assert_allclose(np.asarray(w, np.float64) / c, x, atol=tol)


@pytest.mark.parametrize(
    "dtype, scales", [("float32", (1e-20, 1e20)), ("float64", (1e-200, 1e200))]
)
def test_an_operator_of_any_scale(dtype, scales):
    # An operator of scale 1e-20 or 1e20 in float32 (1e-200 in float64): NaN, converged=False —
    # the Krylov vectors' products under- or overflowed. The iterations run on A / d (a power of
    # two, the preconditioner on d M): x(A / k) = k x(A), with or without a preconditioner.
    A, b = _spd_problem(4)
    rtol = 1e-8 if dtype == "float64" else 1e-3
    with jax.enable_x64(dtype == "float64"):
        b = jnp.asarray(b, dtype)
        x = np.linalg.solve(A, np.asarray(b, np.float64))
        for solver in ("cg", "gmres", "bicgstab"):
            for k in scales:
                Ak = jnp.asarray(k * A, dtype)
                Mk = jnp.asarray(np.diag(1 / np.diag(k * A)), dtype)  # Jacobi
                for M in (None, lambda v: Mk @ v):
                    sol = krylov_solve(lambda v: Ak @ v, b, solver=solver, M=M)
                    assert bool(sol.converged), (solver, k, M)
                    np.testing.assert_allclose(
                        np.asarray(sol.value, np.float64) * k, x, atol=rtol * np.abs(x).max()
                    )
