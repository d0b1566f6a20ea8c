"""root / fixed_point / argmin: accuracy, closures, pytrees, solvers, failure reporting."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr
from jaxrules.rules import Solution, SolverError, argmin, fixed_point, iterate, root
from jaxrules.rules import examples as ex
from jaxrules.rules import implicit as im


def _logistic_data(key, m=40, d=5, dtype=jnp.float64):
    kx, ky, kv = jax.random.split(key, 3)
    X = jax.random.normal(kx, (m, d), dtype)
    w_true = jax.random.normal(kv, (d,), dtype)
    y = (X @ w_true + 0.5 * jax.random.normal(ky, (m,), dtype) > 0).astype(dtype)
    return X, y


def _val_loss(w, X, y):
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def _converged_reference_grad(X, y, lam, Xv, yv):
    """d val_loss(w*(lam, X)) / d(lam, X) by the implicit function theorem, written out in
    plain JAX with dense matrices (Newton-converged w*)."""
    f = lambda w, X, lam: ex._logistic(w, X, y, lam)
    w = jnp.zeros(X.shape[1], X.dtype)
    for _ in range(30):
        w = w - jnp.linalg.solve(jax.hessian(f)(w, X, lam), jax.grad(f)(w, X, lam))
    H = jax.hessian(f)(w, X, lam)
    g = jax.grad(_val_loss)(w, Xv, yv)
    u = jnp.linalg.solve(H, g)
    _, vjp = jax.vjp(lambda X, lam: jax.grad(f)(w, X, lam), X, lam)
    dX, dlam = vjp(-u)
    return dlam, dX


# Slow tier (11-13 s each); the fast tier's argmin gradient check is
# test_every_route_to_the_derivative (LU, against unrolled Newton to 1e-9).
@pytest.mark.slow
@pytest.mark.parametrize("linear_solver", ["lu", "cg"])
def test_argmin_gradient_matches_converged_reference_to_1e10(linear_solver):
    with jax.enable_x64():
        X, y = _logistic_data(jax.random.key(0))
        Xv, yv = _logistic_data(jax.random.key(1))
        lam = jnp.asarray(1e-2)

        def loss(lam, X):
            w = argmin(ex._logistic, jnp.zeros(5), X, y, lam, linear_solver=linear_solver)
            return _val_loss(w.value, Xv, yv)

        got = jax.grad(loss, (0, 1))(lam, X)
        want = _converged_reference_grad(X, y, lam, Xv, yv)
        for g, w in zip(got, want):
            rel = float(jnp.linalg.norm(g - w) / jnp.linalg.norm(w))
            assert rel <= 1e-10, rel
        # forward mode agrees with reverse mode
        _, t = jax.jvp(loss, (lam, X), (jnp.ones(()), jnp.zeros_like(X)))
        np.testing.assert_allclose(t, got[0], rtol=1e-10)


@pytest.mark.parametrize("linear_solver", ["lu", pytest.param("gmres", marks=pytest.mark.slow)])
def test_root_gradient_matches_unrolled_newton_to_1e10(linear_solver):
    with jax.enable_x64():
        kw = ex._root_system_inputs(jax.random.key(3), "float64")
        W, b, c = kw["W"], kw["b"], kw["c"]

        def solve(W, b, c):
            x0 = (jnp.zeros(3), jnp.zeros(2))
            F = lambda x, W, b: ex._system(x, W, b, c)
            return root(F, x0, W, b, linear_solver=linear_solver).value

        loss = lambda f: lambda W, b, c: sum(jnp.sum(jnp.sin(t)) for t in f(W, b, c))
        got = jax.grad(loss(solve), (0, 1, 2))(W, b, c)
        want = jax.grad(loss(ex._root_system_ref), (0, 1, 2))(W, b, c)
        for g, w in zip(got, want):
            assert float(jnp.linalg.norm(g - w) / jnp.linalg.norm(w)) <= 1e-10


def test_fixed_point_with_iteration_solver_and_pytree_params():
    with jax.enable_x64():
        kw = {"W": jr.inputs.general((4, 4), scale=0.4), "b": jr.inputs.general((4,))}
        W, b = (kw[k](jax.random.key(i), "float64") for i, k in enumerate(kw))
        T = lambda x, p: jnp.tanh(p["W"] @ x + p["b"])
        solver = functools.partial(iterate, steps=300)

        def loss(p, solver):
            sol = fixed_point(T, jnp.zeros(4), p, solver=solver)
            return jnp.sum(sol.value**2), sol

        p = {"W": W, "b": b}
        (g_newton, sol_n) = jax.grad(loss, has_aux=True)(p, None)
        (g_iter, sol_i) = jax.grad(loss, has_aux=True)(p, solver)
        g_ref = jax.grad(lambda p: jnp.sum(ex._fixed_point_ref(p["W"], p["b"]) ** 2))(p)
        assert int(sol_i.steps) == -1 and int(sol_n.steps) > 0
        assert bool(sol_i.converged) and bool(sol_n.converged)
        for g in (g_newton, g_iter):
            for k in p:
                np.testing.assert_allclose(g[k], g_ref[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("capture", ["lambda", "nested", "partial", "inside_jit"])
def test_closed_over_arrays_get_derivatives(capture):
    """F closing over traced arrays: the same derivatives as passing them explicitly."""
    a0, b0 = jnp.array([1.5, 2.0, 3.0]), jnp.array(0.7)

    def explicit(a, b):
        return root(lambda x, a, b: x**3 + b * x - a, jnp.ones(3), a, b).value

    def captured(a, b):
        if capture == "lambda":
            F = lambda x: x**3 + b * x - a
        elif capture == "nested":
            shift = lambda x: b * x - a
            F = lambda x: x**3 + shift(x)
        elif capture == "partial":
            F = functools.partial(lambda x, a, b: x**3 + b * x - a, a=a, b=b)
        else:
            F = jax.jit(lambda x: x**3 + b * x - a)  # a jitted closure is not convertible
            F = lambda x, F=F: F(x)
        return root(F, jnp.ones(3)).value

    want = jax.jacrev(explicit, (0, 1))(a0, b0)
    if capture == "inside_jit":
        with pytest.raises(
            Exception,
            match=r"root: F uses a traced array that jaxrules cannot see.*Pass that array explicitly",
        ):
            jax.jacrev(captured, (0, 1))(a0, b0)
        return
    for transform in (jax.jacrev, jax.jacfwd):
        got = transform(captured, (0, 1))(a0, b0)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5)
    got = jax.jit(jax.jacrev(captured, (0, 1)))(a0, b0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5)


def test_vmap_and_hessian():
    cube_root = lambda a: root(lambda x, a: x**3 - a, jnp.ones(()), a).value
    a = jnp.array([8.0, 27.0, 2.0])
    np.testing.assert_allclose(jax.vmap(cube_root)(a), a ** (1 / 3), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(cube_root))(a), a ** (-2 / 3) / 3, rtol=1e-5)
    np.testing.assert_allclose(
        jax.vmap(jax.hessian(cube_root))(a), -2 / 9 * a ** (-5 / 3), rtol=1e-4
    )


@pytest.mark.slow  # the fast tier keeps the other argmin tests; `jaxrules check` its example
def test_argmin_with_user_gradient_descent_solver():
    X, y = _logistic_data(jax.random.key(0), dtype=jnp.float32)

    def gd(f, w0, steps=2000, lr=1.0):
        return jax.lax.fori_loop(0, steps, lambda _, w: w - lr * jax.grad(f)(w), w0)

    sol_gd = argmin(ex._logistic, jnp.zeros(5), X, y, 0.1, solver=gd)
    sol_nt = argmin(ex._logistic, jnp.zeros(5), X, y, 0.1)
    assert bool(sol_gd.converged) and bool(sol_nt.converged)
    np.testing.assert_allclose(sol_gd.value, sol_nt.value, rtol=1e-4, atol=1e-5)
    g = jax.grad(lambda lam: argmin(ex._logistic, jnp.zeros(5), X, y, lam, solver=gd).value.sum())
    h = jax.grad(lambda lam: argmin(ex._logistic, jnp.zeros(5), X, y, lam).value.sum())
    np.testing.assert_allclose(g(0.1), h(0.1), rtol=1e-3)


# -- failure is visible ---------------------------------------------------------------------------
def _cube_root(a, **kw):
    return root(lambda x, a: x**3 - a, jnp.ones(()), a, **kw)


def test_non_convergence_is_flagged_and_derivatives_are_nan():
    sol = _cube_root(1000.0, max_steps=2)
    assert isinstance(sol, Solution)
    assert not bool(sol.converged) and int(sol.steps) == 2 and float(sol.residual) > 1.0
    g = jax.grad(lambda a: _cube_root(a, max_steps=2).value)(1000.0)
    assert np.isnan(g)
    _, t = jax.jvp(lambda a: _cube_root(a, max_steps=2).value, (1000.0,), (1.0,))
    assert np.isnan(t)
    # and converged: finite
    assert np.isfinite(jax.grad(lambda a: _cube_root(a).value)(1000.0))


def test_throw_raises_eagerly_and_under_jit():
    with pytest.raises(SolverError, match=r"root: the solver did not converge.*max_steps = 2"):
        _cube_root(1000.0, max_steps=2, throw=True)
    f = jax.jit(lambda a: _cube_root(a, max_steps=2, throw=True).value)
    with pytest.raises(RuntimeError, match=r"root: the solver did not converge"):
        jax.block_until_ready(f(1000.0))
    with pytest.raises(RuntimeError, match=r"root: the solver did not converge"):
        jax.block_until_ready(jax.jit(jax.grad(lambda a: f(a)))(1000.0))
    # no error where it converges, under vmap too
    ok = jax.jit(jax.vmap(lambda a: _cube_root(a, throw=True).value))(jnp.array([8.0, 27.0]))
    np.testing.assert_allclose(ok, [2.0, 3.0], rtol=1e-6)


def _exact_solver(fn, x0):
    del fn
    return jnp.full_like(x0, 0.5)  # the root of the singular system below at a = 1


def _singular(a, throw=False):
    # F(x) = (x₀ + x₁ − a, 2x₀ + 2x₁ − 2a): every point of x₀ + x₁ = a is a root, ∂ₓF singular.
    F = lambda x, a: jnp.stack([x[0] + x[1] - a, 2 * x[0] + 2 * x[1] - 2 * a])
    return root(F, jnp.zeros(2), a, solver=_exact_solver, throw=throw)


def test_singular_jacobian_gives_nan_derivatives_or_an_error():
    sol = _singular(1.0)
    assert bool(sol.converged)  # the primal is a root...
    g = jax.grad(lambda a: _singular(a).value.sum())(1.0)
    assert np.isnan(g)  # ...but not a differentiable function of a
    _, t = jax.jvp(lambda a: _singular(a).value, (1.0,), (1.0,))
    assert np.all(np.isnan(t))
    with pytest.raises(RuntimeError, match=r"root: the derivative's linear system is singular"):
        jax.block_until_ready(jax.grad(lambda a: _singular(a, throw=True).value.sum())(1.0))


@pytest.mark.slow  # 5 s
def test_memory_does_not_grow_with_solver_steps():
    X, y = _logistic_data(jax.random.key(0), m=200, d=20, dtype=jnp.float32)

    def gd(steps):
        return lambda f, w0: jax.lax.fori_loop(0, steps, lambda _, w: w - 0.5 * jax.grad(f)(w), w0)

    def temp_bytes(loss):
        c = jax.jit(jax.grad(loss)).lower(jnp.asarray(0.1)).compile()
        return c.memory_analysis().temp_size_in_bytes

    def implicit(steps):
        return lambda lam: argmin(
            ex._logistic, jnp.zeros(20), X, y, lam, solver=gd(steps), tol=1.0
        ).value.sum()

    def unrolled(steps):
        f = lambda w, lam: ex._logistic(w, X, y, lam)
        return lambda lam: gd(steps)(lambda w: f(w, lam), jnp.zeros(20)).sum()

    mem = [temp_bytes(implicit(s)) for s in (10, 100, 1000)]
    assert mem[0] == mem[1] == mem[2], mem
    unr = [temp_bytes(unrolled(s)) for s in (10, 100)]
    assert unr[1] > 5 * unr[0] and unr[1] > 5 * mem[1], (unr, mem)


# -- bad input ----------------------------------------------------------------------------------
def test_bad_inputs_have_clear_errors():
    with pytest.raises(ValueError, match=r"root: F\(x0, \*params\) must return the same structure"):
        root(lambda x: x[:2], jnp.ones(3))
    with pytest.raises(TypeError, match=r"root: x0 must be a pytree of floating-point arrays"):
        root(lambda x: x, jnp.ones(3, jnp.int32))
    with pytest.raises(TypeError, match=r"fixed_point: the first argument must be a function"):
        fixed_point(3.0, jnp.ones(3))
    with pytest.raises(ValueError, match=r"argmin: linear_solver must be one of"):
        argmin(lambda x: jnp.sum(x**2), jnp.ones(3), linear_solver="qr")
    with pytest.raises(ValueError, match=r"argmin: f\(x0, \*params\) must return a scalar"):
        argmin(lambda x: x**2, jnp.ones(3))
    with pytest.raises(TypeError, match=r"root: solver must be None \(Newton\) or a function"):
        root(lambda x: x, jnp.ones(3), solver="newton")


def test_solver_may_close_over_traced_arrays():
    # A step size computed from the data inside the differentiated function: the solver is a
    # zero argument (the solution does not depend on it), so this neither leaks nor errors.
    X, y = _logistic_data(jax.random.key(2), dtype=jnp.float32)

    def loss(X, lam):
        lr = 1.0 / (jnp.linalg.norm(X, 2) ** 2 / (4 * X.shape[0]) + lam)
        gd = lambda f, w0: jax.lax.fori_loop(0, 3000, lambda _, w: w - lr * jax.grad(f)(w), w0)
        return argmin(ex._logistic, jnp.zeros(5), X, y, lam, solver=gd).value.sum()

    want = jax.grad(
        lambda X, lam: argmin(ex._logistic, jnp.zeros(5), X, y, lam).value.sum(), (0, 1)
    )(X, 0.1)
    got = jax.jit(jax.grad(loss, (0, 1)))(X, 0.1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-3, atol=1e-5)


# The matrix-free solvers' routes (10-18 s each) run in the slow tier; LU's in both tiers.
@pytest.mark.parametrize(
    "linear_solver", ["lu", *(pytest.param(s, marks=pytest.mark.slow) for s in ("cg", "gmres"))]
)
@pytest.mark.parametrize("backend", ["default", pytest.param("no_hijax", marks=pytest.mark.slow)])
def test_every_route_to_the_derivative(linear_solver, backend, request):
    """grad, grad of a jitted function (JAX transposes the JVP rule there), jacfwd and
    jit(grad): the same derivative with each linear solver, with and without hijax."""
    if backend == "no_hijax":
        request.getfixturevalue("no_hijax")
    with jax.enable_x64():
        X, y = _logistic_data(jax.random.key(4), m=30, d=4)
        f = lambda w, X, lam: ex._logistic(w, X, y, lam)
        loss = lambda lam, X: jnp.sum(
            jnp.sin(argmin(f, jnp.zeros(4), X, lam, linear_solver=linear_solver).value)
        )
        ref = lambda lam, X: jnp.sum(
            jnp.sin(ex._unrolled_newton(jax.grad(lambda w: f(w, X, lam)), jnp.zeros(4)))
        )
        lam = jnp.asarray(0.3)
        want = jax.grad(ref, (0, 1))(lam, X)
        routes = {
            "grad": jax.grad(loss, (0, 1)),
            "grad_of_jit": jax.grad(jax.jit(loss), (0, 1)),
            "jit_of_grad": jax.jit(jax.grad(loss, (0, 1))),
            "jacfwd": jax.jacfwd(loss, (0, 1)),
        }
        for name, fn in routes.items():
            got = fn(lam, X)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=name)


def test_iterative_solve_failure_is_nan_or_an_error():
    # ∂ₓF singular and x₀ alone not determined by a (only x₀ + x₁ is): the adjoint system
    # ∂ₓFᵀu = e₀ is inconsistent, GMRES cannot solve it; NaN, or the run-time error. (For
    # x₀ + x₁ it is consistent and GMRES rightly returns d/da = 1; LU refuses both.)
    sol = lambda a, throw=False: root(
        lambda x, a: jnp.stack([x[0] + x[1] - a, 2 * x[0] + 2 * x[1] - 2 * a]),
        jnp.zeros(2),
        a,
        solver=_exact_solver,
        linear_solver="gmres",
        throw=throw,
    ).value[0]
    assert np.isnan(jax.grad(sol)(1.0))
    with pytest.raises(RuntimeError, match=r"root: the derivative's linear system is singular"):
        jax.block_until_ready(jax.grad(lambda a: sol(a, True))(1.0))


def test_newton_reaches_float32_precision_where_armijo_cannot_see_progress():
    # At this point f changes by less than its float32 rounding near the minimum; a line search
    # on f alone stopped ~2e-4 short (found by the 20-seed sweep). Now: float32 rounding level.
    rule = jr.get("argmin_example")
    args32 = rule.draw(jax.random.split(jax.random.key(14), 3)[0], "float32")  # the checker's
    with jax.enable_x64():
        args64 = {k: jnp.asarray(v, jnp.float64) for k, v in args32.items()}
        want = np.asarray(ex._logistic_ridge_ref(**args64))
    got = np.asarray(ex.logistic_ridge(**args32))
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 2e-6


# -- argmin: a minimiser, not any stationary point (issue 15) -------------------------------------
@pytest.mark.parametrize(
    "f, x0, what",
    [
        (lambda x, a: x**4 - a * x**2, jnp.zeros(()), "a maximum"),
        (lambda x, a: x[0] ** 2 - a * x[1] ** 2, jnp.array([1.0, 0.0]), "a saddle"),
    ],
)
def test_argmin_flags_maxima_and_saddles(f, x0, what):
    # Newton stops on a stationary point with a zero gradient; it used to say converged=True.
    sol = argmin(f, x0, 1.0)
    assert float(sol.residual) == 0.0, what  # stationary...
    assert not bool(sol.minimum) and not bool(sol.converged), what  # ...but not a minimiser
    assert np.all(np.isnan(jax.grad(lambda a: jnp.sum(argmin(f, x0, a).value))(1.0)))
    with pytest.raises(SolverError, match="not a minimiser"):
        argmin(f, x0, 1.0, throw=True).value.block_until_ready()
    # The same function from a point that descends reaches a minimiser: flagged as one.
    good = argmin(lambda x, a: jnp.sum(x**4 - a * x**2), x0 + 0.8, 1.0)
    assert bool(good.minimum) and bool(good.converged)


@pytest.mark.parametrize("dtype, scales", [("float32", (1e-12, 1e6, 1e12)), ("float64", (1e100,))])
def test_argmin_of_a_loss_of_any_scale(dtype, scales):
    # The minimiser test compared the Hessian's smallest Cholesky pivot, capped at 1 by
    # `min(..., initial=1.0)`, with nε times the largest: every Hessian above 1/(nε) — 2e6 in
    # float32, a sum of squares over a few thousand points — was "not a minimiser": converged
    # False and NaN derivatives, at the right answer.
    f0 = lambda x, b: 10 * jnp.sum((x[1:] - x[:-1] ** 2) ** 2) + jnp.sum((x - b) ** 2)
    f = lambda x, b, s: s * f0(x, b)
    with jax.enable_x64(dtype == "float64"):
        b = jnp.asarray([0.3, -0.2, 0.5, 0.1], dtype)
        x0 = jnp.full(4, 3.0, dtype)
        solve = lambda b, s: argmin(f, x0, b, s)
        grad = jax.grad(lambda b, s: jnp.sum(jnp.sin(solve(b, s).value)))
        ref, g_ref = solve(b, 1.0).value, grad(b, 1.0)
        s = jnp.asarray(scales, dtype)
        sols, gs = jax.jit(jax.vmap(lambda s: (solve(b, s), grad(b, s))))(s)
        tol = 1e-6 if dtype == "float32" else 1e-14
        for k in range(len(scales)):
            assert bool(sols.minimum[k]) and bool(sols.converged[k]), scales[k]
            np.testing.assert_allclose(sols.value[k], ref, atol=tol)
            np.testing.assert_allclose(gs[k], g_ref, atol=20 * tol)


@pytest.mark.parametrize("linear_solver", ["gmres", "cg"])
def test_matrix_free_derivative_of_a_tiny_cotangent(linear_solver):
    # The matrix-free solve of ∂ₓRᵀ w = x̄ squared x̄'s entries: a cotangent of 1e-20 in
    # float32 gave ‖x̄‖² = 0, w = 0 and a silently zero gradient (its residual test 0 ≤ 0).
    kind = "argmin" if linear_solver == "cg" else "root"
    W = jnp.asarray([[2.0, 0.3, -0.2], [0.1, 1.8, 0.4], [-0.3, 0.2, 2.2]])
    W = W @ W.T if kind == "argmin" else W
    b = jnp.asarray([0.5, -1.0, 0.3])
    if kind == "root":
        fn = lambda x, b: W @ x + jnp.tanh(x) - b
        solve = lambda b: root(fn, jnp.zeros(3), b, linear_solver=linear_solver).value
    else:
        fn = lambda x, b: 0.5 * x @ W @ x + jnp.sum(jnp.cosh(x)) - b @ x
        solve = lambda b: argmin(fn, jnp.zeros(3), b, linear_solver=linear_solver).value
    _, vjp = jax.vjp(solve, b)
    ct = jnp.asarray([1.0, -2.0, 0.5])
    (g,) = vjp(ct)
    for c in (1e-20, 1e-30, 1e19):
        (gc,) = vjp(c * ct)
        np.testing.assert_allclose(gc / c, g, rtol=1e-5, atol=1e-6 * float(jnp.abs(g).max()))


@pytest.mark.parametrize("linear_solver", ["gmres", "cg"])
def test_matrix_free_solves_at_any_scale_of_the_problem(linear_solver):
    # jax.scipy's gmres returns 0 for a right-hand side of norm below about ε: Newton stopped
    # as soon as ‖F‖ fell below it, `converged` (the residual test is absolute) — F of scale
    # 1e-6 in float32 (1e-15 in float64) came out 1.3 % off, of scale 1e-8 (1e-17) x0 itself;
    # at 1e-20 the derivative was NaN. Every matrix-free solve now runs on b / c and the operator / d
    # (powers of two), and a zero direction for a nonzero residual is a failed solve.
    kind = "argmin" if linear_solver == "cg" else "root"
    W = jnp.asarray([[2.0, 0.3, -0.2], [0.1, 1.8, 0.4], [-0.3, 0.2, 2.2]], "float32")
    W = W @ W.T if kind == "argmin" else W
    b = jnp.asarray([0.5, -1.0, 0.3], "float32")
    if kind == "root":
        fn = lambda x, b, k: k * (W @ x + jnp.tanh(x) - b)
        run = lambda b, k: root(fn, jnp.zeros(3), b, k, linear_solver=linear_solver)
    else:
        fn = lambda x, b, k: k * (0.5 * x @ W @ x + jnp.sum(jnp.cosh(x)) - b @ x)
        run = lambda b, k: argmin(fn, jnp.zeros(3), b, k, linear_solver=linear_solver)
    grad = jax.grad(lambda b, k: jnp.sum(run(b, k).value * jnp.arange(1.0, 4.0)))
    x1, g1 = run(b, 1.0).value, grad(b, 1.0)
    for k in (1e-6, 1e-10, 1e-20, 1e15):
        sol = run(b, jnp.float32(k))
        assert bool(sol.converged), k
        np.testing.assert_allclose(sol.value, x1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad(b, jnp.float32(k)), g1, rtol=1e-4, atol=1e-5)


def test_small_solutions_are_solved_to_relative_precision():
    # The solvers judged steps against 1 + ‖x‖∞: absolutely, for small solutions. Newton stopped
    # on a step of tol at the root √a of x² − a — float32: a = 1e-10 16 % off, 1e-14 37× off —
    # and plain iteration one step after x0 = 0 at a fixed point of scale 1e-8: 35 % off; all
    # `converged`. Steps are now judged against ‖x‖∞ (floored at ε‖x0‖∞).
    a = jnp.asarray([1e-10, 1e-14, 1.0], "float32")
    sq = jax.jit(jax.vmap(lambda a: root(lambda x, a: x**2 - a, jnp.ones(1), a)))(a)
    assert bool(jnp.all(sq.converged))
    np.testing.assert_allclose(sq.value[:, 0], jnp.sqrt(a), rtol=1e-6)
    W = jnp.asarray([[0.3, -0.2, 0.1], [0.2, 0.4, -0.3], [-0.1, 0.2, 0.3]])
    b = jnp.asarray([0.5, -1.0, 0.7])
    T = lambda x, b: 0.5 * jnp.tanh(W @ x) + b
    s = jnp.asarray([1e-8, 1e-20, 1.0], "float32")
    fp = jax.jit(jax.vmap(lambda s: fixed_point(T, jnp.zeros(3), s * b)))(s)
    assert bool(jnp.all(fp.converged))
    np.testing.assert_allclose(
        fp.value, jax.vmap(T, (0, 0))(fp.value, s[:, None] * b[None, :]), rtol=1e-6
    )
    small = np.linalg.solve(np.eye(3) - 0.5 * np.asarray(W, float), np.asarray(b, float))
    np.testing.assert_allclose(fp.value[0] / 1e-8, small, rtol=1e-5)


def test_minimum_is_tested_on_the_dense_path_only():
    f = lambda x: jnp.sum((x - 1.0) ** 2)
    assert argmin(f, jnp.zeros(3)).minimum.dtype == jnp.bool_
    assert argmin(f, jnp.zeros(3), linear_solver="cg").minimum is None  # not tested: None
    assert root(lambda x: x - 1.0, jnp.zeros(3)).minimum is None
    # Under jit and vmap the flag is an array like the others.
    sols = jax.vmap(lambda c: argmin(lambda x, c: jnp.sum((x - c) ** 2), jnp.zeros(2), c))(
        jnp.ones((4, 2))
    )
    assert sols.minimum.shape == (4,) and bool(jnp.all(sols.minimum))


# -- fixed_point's default: iterate while it contracts, else Newton (issue 15) --------------------
def test_fixed_point_default_iterates_a_contraction_and_falls_back_to_newton():
    with jax.enable_x64():
        W = jr.inputs.general((6, 6), scale=0.8 / 6**0.5)(jax.random.key(0), "float64")
        b = jr.inputs.general((6,))(jax.random.key(1), "float64")
        T = lambda x, W, b: jnp.tanh(W @ x + b)
        sol = fixed_point(T, jnp.zeros(6), W, b)
        newton_only = fixed_point(
            T,
            jnp.zeros(6),
            W,
            b,
            solver=lambda f, x0: im.newton(lambda x: f(x) - x, x0, kind="root")[0],
        )
        assert bool(sol.converged)
        # Converged by iteration (Newton needs < 10 steps; a contraction by <= 0.8 to 1e-12
        # takes more): the step count is the iteration's.
        assert 20 <= int(sol.steps) <= 500
        np.testing.assert_allclose(sol.value, newton_only.value, rtol=1e-10, atol=1e-12)
        # An expanding map (rate 1.5 around its fixed point 1): iteration diverges, Newton
        # finds the fixed point.
        grow = fixed_point(lambda x, a: 1.5 * x - 0.5 * a, jnp.zeros(3), 1.0)
        assert bool(grow.converged)
        np.testing.assert_allclose(grow.value, np.ones(3), rtol=1e-12)
        # Derivatives are the implicit ones either way.
        g = jax.grad(lambda a: fixed_point(lambda x, a: 1.5 * x - 0.5 * a, 0.0, a).value)(1.0)
        np.testing.assert_allclose(g, 1.0, rtol=1e-10)  # x* = a


def test_converged_means_converged_far_from_the_start():
    # From x0 = 1e6 (residual 1e18), 30 Newton steps reach x = 5.22 with residual 141: a
    # residual test relative to the start alone said converged=True.
    F = lambda x, p: x**3 - p
    sol = root(F, 1e6, 1.0, max_steps=30)
    assert float(sol.value) == pytest.approx(5.2228, rel=1e-3)
    assert not bool(sol.converged)
    assert not bool(jnp.isfinite(jax.grad(lambda p: root(F, 1e6, p, max_steps=30).value)(1.0)))
    with pytest.raises(SolverError):
        root(F, 1e6, 1.0, max_steps=30, throw=True)
    sol = root(F, 1e6, 1.0)  # enough steps: converged, and right
    assert bool(sol.converged) and float(sol.value) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_x0_is_a_clear_error(dtype):
    # It used to fail deep inside the LU kernel ("Unsupported dtype float16").
    with pytest.raises(TypeError, match=rf"root: x0 is {dtype}; root works in float32"):
        root(lambda x: x**3 - 8, jnp.array(1.0, dtype))
