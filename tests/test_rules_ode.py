"""ODE solves (`odeint`): values against exact solutions, both adjoints and forward
sensitivities against the unrolled solver and the exact derivative, failure semantics,
argument errors, pytrees, closures, batching.

The registered `odeint_example` (three methods, checkpoint adjoint) and
`odeint_backsolve_example` are checked against the unrolled solver by `jaxrules check`
(float64/float32, jit/vmap)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrules._bench import temp_bytes
from jaxrules.rules import SolverError, odeint
from jaxrules.rules import ode as O


def _linear(seed=0, n=3):
    # y' = A y with a general (non-symmetric, non-normal) stable A: y(t) = expm(tA) y0.
    rng = np.random.default_rng(seed)
    A = jnp.asarray(rng.standard_normal((n, n)) / np.sqrt(n) - 0.5 * np.eye(n))
    y0 = jnp.asarray(rng.standard_normal(n))
    return A, y0


_TS = (0.0, 0.3, 1.0, 2.5)
_field = lambda y, t, A: A @ y


def _exact(A, y0):
    ts = jnp.asarray(_TS)
    return jax.vmap(lambda t: jax.scipy.linalg.expm(t * A) @ y0)(ts)


# Both adjoints in the slow tier (9 s each); the fast tier checks the checkpoint gradient
# against the unrolled solver's to 1e-10 below.
@pytest.mark.slow
@pytest.mark.parametrize("adjoint", ["checkpoint", "backsolve"])
def test_values_and_gradients_match_the_exact_solution(adjoint):
    with jax.enable_x64():
        A, y0 = _linear()
        ts = jnp.asarray(_TS)
        sol = odeint(_field, y0, ts, A, rtol=1e-10, atol=1e-10, adjoint=adjoint)
        assert bool(sol.converged) and int(sol.accepted) <= int(sol.steps) < 200
        np.testing.assert_allclose(sol.ys, _exact(A, y0), rtol=1e-8, atol=1e-9)
        w = jnp.asarray(np.random.default_rng(1).standard_normal(sol.ys.shape))
        loss = lambda A, y0: jnp.vdot(
            w, odeint(_field, y0, ts, A, rtol=1e-10, atol=1e-10, adjoint=adjoint).ys
        )
        got = jax.jit(jax.grad(loss, (0, 1)))(A, y0)
        want = jax.grad(lambda A, y0: jnp.vdot(w, _exact(A, y0)), (0, 1))(A, y0)
        for g, r in zip(got, want):
            np.testing.assert_allclose(g, r, rtol=1e-7, atol=1e-8)
        # Forward mode: sensitivities solved with the state.
        J = jax.jacfwd(lambda A: odeint(_field, y0, ts, A, rtol=1e-10, atol=1e-10).ys)(A)
        np.testing.assert_allclose(J, jax.jacfwd(lambda A: _exact(A, y0))(A), rtol=1e-7, atol=1e-8)


def _lotka_volterra(y, t, theta):
    a, b, c, d = theta
    x, z = y
    return jnp.stack([a * x - b * x * z, -c * z + d * x * z])


@pytest.mark.parametrize(
    # One in the fast tier; `jaxrules check` covers all three against the unrolled solver.
    "method",
    [
        "dopri5",
        pytest.param("tsit5", marks=pytest.mark.slow),
        pytest.param("rk4", marks=pytest.mark.slow),
    ],
)
def test_checkpoint_gradient_is_the_unrolled_discrete_gradient(method):
    # The target: the exact gradient of the computed solution, to 1e-10 (float64), over
    # many checkpoint segments (max_steps 120: segments of 11 iterations) with rejected steps.
    with jax.enable_x64():
        theta = jnp.array([1.1, 0.4, 0.9, 0.3])
        y0 = jnp.array([2.0, 1.2])
        ts = jnp.linspace(0.0, 8.0, 6)
        kw = dict(method=method, rtol=1e-7, atol=1e-7, max_steps=120)
        kw["dt0"] = 0.1 if method == "rk4" else None
        sol = odeint(_lotka_volterra, y0, ts, theta, **kw)
        assert bool(sol.converged) and int(sol.steps) > 3 * O.CheckpointAdjoint().checkpoint_every(
            120
        )
        ref = O.unrolled(_lotka_volterra, y0, ts, theta, **kw)
        np.testing.assert_allclose(sol.ys, ref, rtol=1e-13, atol=1e-13)
        loss = lambda f: lambda y0, th: jnp.sum(jnp.log(f(_lotka_volterra, y0, ts, th, **kw)))
        got = jax.grad(loss(lambda *a, **k: odeint(*a, **k).ys), (0, 1))(y0, theta)
        want = jax.grad(loss(O.unrolled), (0, 1))(y0, theta)
        for g, r in zip(got, want):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=0)
        tangent = jax.jvp(
            lambda th: odeint(_lotka_volterra, y0, ts, th, **kw).ys,
            (theta,),
            (y0 @ jnp.ones((2, 4)),),
        )[1]
        want_t = jax.jvp(
            lambda th: O.unrolled(_lotka_volterra, y0, ts, th, **kw),
            (theta,),
            (y0 @ jnp.ones((2, 4)),),
        )[1]
        np.testing.assert_allclose(tangent, want_t, rtol=1e-11, atol=1e-12)
        if method != "rk4":  # the adaptive solver rejected some steps on the way
            assert int(sol.steps) > int(sol.accepted)


@pytest.mark.slow
def test_backsolve_gradient_is_accurate_to_the_tolerance():
    with jax.enable_x64():
        theta = jnp.array([1.1, 0.4, 0.9, 0.3])
        y0 = jnp.array([2.0, 1.2])
        ts = jnp.linspace(0.0, 8.0, 6)
        loss = lambda adjoint, rtol: (
            lambda th: jnp.sum(
                odeint(_lotka_volterra, y0, ts, th, rtol=rtol, atol=rtol, adjoint=adjoint).ys ** 2
            )
        )
        exact = jax.grad(loss("checkpoint", 1e-12))(theta)
        errs = [
            float(jnp.max(jnp.abs(jax.grad(loss("backsolve", tol))(theta) - exact)))
            for tol in (1e-5, 1e-9)
        ]
        scale = float(jnp.max(jnp.abs(exact)))
        assert errs[1] < 1e-6 * scale, errs
        assert errs[1] < 1e-2 * errs[0], errs  # the error is set by the tolerance


@pytest.mark.slow
def test_pytree_state_closure_over_a_traced_array_jit_and_vmap():
    with jax.enable_x64():
        A, y0 = _linear(3)
        ts = jnp.asarray(_TS)

        def solve(A, y0, scale):
            # The field closes over A (traced under grad) and takes scale as a parameter.
            f = lambda y, t, s: {"u": A @ y["u"], "v": s * y["v"] * y["u"][0]}
            return odeint(f, {"u": y0, "v": jnp.ones(2)}, ts, scale).ys

        ys = solve(A, y0, 0.5)
        assert ys["u"].shape == (4, 3) and ys["v"].shape == (4, 2)
        np.testing.assert_allclose(ys["u"], _exact(A, y0), rtol=1e-7, atol=1e-8)
        loss = lambda A, y0, s: jnp.sum(solve(A, y0, s)["v"])
        g = jax.grad(loss, (0, 1, 2))(A, y0, 0.5)
        eps = 1e-6
        dA = jnp.asarray(np.random.default_rng(5).standard_normal(A.shape))
        fd = (loss(A + eps * dA, y0, 0.5) - loss(A - eps * dA, y0, 0.5)) / (2 * eps)
        np.testing.assert_allclose(jnp.vdot(g[0], dA), fd, rtol=1e-5)
        # vmap over initial states under jit = the loop of single solves.
        Y0 = jnp.stack([y0, 2 * y0, -y0])
        batched = jax.jit(jax.vmap(jax.grad(lambda y0: loss(A, y0, 0.5))))(Y0)
        for k in range(3):
            np.testing.assert_allclose(
                batched[k], jax.grad(lambda y0: loss(A, y0, 0.5))(Y0[k]), rtol=1e-10
            )


def test_failure_is_visible():
    with jax.enable_x64():
        A, y0 = _linear()
        ts = jnp.asarray(_TS)
        # Too few steps: not converged, the outputs not reached are NaN, and so are derivatives.
        sol = odeint(_field, y0, ts, A, max_steps=3)
        assert not bool(sol.converged) and int(sol.steps) == 3
        assert np.isnan(np.asarray(sol.ys[-1])).all() and np.isfinite(np.asarray(sol.ys[0])).all()
        g = jax.grad(lambda A: jnp.sum(odeint(_field, y0, ts, A, max_steps=3).ys[:2]))(A)
        assert np.isnan(np.asarray(g)).all()
        with pytest.raises(SolverError, match="max_steps = 3"):
            jax.block_until_ready(odeint(_field, y0, ts, A, max_steps=3, throw=True))
        with pytest.raises(Exception, match="did not reach"):  # JAX wraps it under jit
            jax.block_until_ready(
                jax.jit(lambda A: odeint(_field, y0, ts, A, max_steps=3, throw=True).ys)(A)
            )
        # A blow-up (y' = y², y(0) = 1 explodes at t = 1): flagged, not a finite wrong value.
        sol = odeint(lambda y, t: y**2, jnp.array(1.0), jnp.array([0.0, 2.0]), max_steps=500)
        assert not bool(sol.converged)


def test_argument_errors_name_the_argument():
    A, y0 = _linear()
    ts = jnp.asarray(_TS, jnp.float32)
    y0 = y0.astype(jnp.float32)
    A = A.astype(jnp.float32)
    with pytest.raises(ValueError, match="method='rk4' takes fixed steps: pass the step size"):
        odeint(_field, y0, ts, A, method="rk4")
    with pytest.raises(ValueError, match="method must be one of"):
        odeint(_field, y0, ts, A, method="euler")
    with pytest.raises(ValueError, match="adjoint must be one of"):
        odeint(_field, y0, ts, A, adjoint="direct")
    with pytest.raises(ValueError, match="ts must be strictly increasing"):
        odeint(_field, y0, ts[::-1], A)
    with pytest.raises(ValueError, match="ts must be a 1-D array"):
        odeint(_field, y0, 1.0, A)
    with pytest.raises(TypeError, match="y0 must be a pytree of real floating-point"):
        odeint(_field, y0.astype(jnp.complex64), ts, A)
    with pytest.raises(ValueError, match="must return the same structure"):
        odeint(lambda y, t, A: (A @ y)[:2], y0, ts, A)
    with pytest.raises(ValueError, match="rtol must be a positive"):
        odeint(_field, y0, ts, A, rtol=-1.0)
    # The output times have no derivative: differentiating them raises, naming `ts`.
    with pytest.raises(ValueError, match="ts"):
        jax.grad(lambda t1: odeint(_field, y0, jnp.stack([0.0, t1]), A).ys[-1, 0])(1.0)


@pytest.mark.slow
def test_fixed_step_rk4_has_order_four():
    with jax.enable_x64():
        A, y0 = _linear()
        ts = jnp.asarray([0.0, 2.0])
        errs = []
        for dt in (0.1, 0.05):
            ys = odeint(_field, y0, ts, A, method="rk4", dt0=dt).ys
            errs.append(float(jnp.max(jnp.abs(ys[-1] - jax.scipy.linalg.expm(2.0 * A) @ y0))))
        assert 14 < errs[0] / errs[1] < 18, errs  # 2⁴ = 16


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dopri5", "tsit5"])
def test_adaptive_methods_converge_at_fifth_order(method):
    # A wrong coefficient in the solution's weights makes the method low order (inaccurate at a
    # tight tolerance); one in the error weights makes the estimate low order (far too many
    # steps). Both are measured here.
    with jax.enable_x64():
        A, y0 = _linear(2)
        ts = jnp.asarray(_TS)
        for tol, bound, most in ((1e-6, 1e-4, 60), (1e-11, 1e-9, 400)):
            sol = odeint(_field, y0, ts, A, method=method, rtol=tol, atol=tol)
            assert int(sol.accepted) < most
            np.testing.assert_allclose(sol.ys, _exact(A, y0), atol=bound)


@pytest.mark.slow
@pytest.mark.parametrize("adjoint", ["checkpoint", "backsolve"])
def test_memory_does_not_grow_with_the_steps_as_the_unrolled_solver_does(adjoint):
    # XLA's temporary memory of the gradient (deterministic, not a timing): the unrolled
    # solver stores every step; the checkpoint adjoint √max_steps states; backsolve none.
    with jax.enable_x64():
        A, y0 = _linear(n=32)
        ts = jnp.asarray([0.0, 1.0])

        def grad_bytes(f, max_steps):
            loss = lambda A: jnp.sum(f(A, max_steps))
            return temp_bytes(jax.jit(jax.grad(loss)).lower(A).compile())

        rule = lambda A, m: odeint(_field, y0, ts, A, max_steps=m, adjoint=adjoint).ys
        unrolled = lambda A, m: O.unrolled(_field, y0, ts, A, max_steps=m)
        small, big = grad_bytes(rule, 256), grad_bytes(rule, 4096)
        u_small, u_big = grad_bytes(unrolled, 256), grad_bytes(unrolled, 4096)
        assert u_big > 10 * u_small
        if adjoint == "backsolve":
            assert big <= 1.1 * small, (small, big)
        else:
            assert big < 5 * small, (small, big)  # √16 = 4
        assert big < u_big / 10


def test_adjoint_objects_are_the_strings_and_checkpoint_spacing_leaves_the_gradient():
    # The adjoints are objects (the strings name the default instances); the discrete adjoint
    # is exact whatever the spacing of its checkpoints (every 1, 7 or ⌈√max_steps⌉ iterations).
    with jax.enable_x64():
        A, y0 = _linear()
        ts = jnp.asarray(_TS)
        loss = lambda A, adjoint: jnp.sum(odeint(_field, y0, ts, A, adjoint=adjoint).ys ** 2)
        grad = jax.grad(loss)
        want = grad(A, "checkpoint")
        for adjoint in (
            O.CheckpointAdjoint(),
            O.CheckpointAdjoint(every=1),
            O.CheckpointAdjoint(7),
        ):
            np.testing.assert_allclose(grad(A, adjoint), want, rtol=1e-12, atol=1e-14)
        back = grad(A, O.BacksolveAdjoint())
        np.testing.assert_allclose(back, grad(A, "backsolve"), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(back, want, rtol=1e-5)  # the exact solution's, to rtol
    assert O.CheckpointAdjoint(every=7) == O.CheckpointAdjoint(7)  # static: compared by value
    with pytest.raises(ValueError, match="CheckpointAdjoint: every must be a positive int"):
        O.CheckpointAdjoint(every=0)


def test_python_scalar_parameter_under_jvp_of_jit():
    # A Python float parameter reached the rules as JAX's typed literal (it used to crash with
    # "'TypedFloat' object has no attribute 'shape'" on JAX 0.12).
    ts = jnp.array([0.0, 1.0])
    y1 = lambda k: odeint(lambda y, t, k: -k * y, jnp.array(1.0), ts, k).ys[1]
    _, t = jax.jvp(jax.jit(y1), (1.0,), (1.0,))
    np.testing.assert_allclose(t, -np.exp(-1.0), rtol=1e-4)
    np.testing.assert_allclose(jax.jit(jax.jacfwd(y1))(1.0), -np.exp(-1.0), rtol=1e-4)


def test_non_increasing_times_under_jit_are_nan_and_not_converged():
    run = jax.jit(lambda ts: odeint(lambda y, t: -y, jnp.array(1.0), ts))
    sol = run(jnp.array([0.0, 1.0, 0.5]))
    assert not bool(sol.converged)
    assert bool(jnp.isfinite(sol.ys[1])) and bool(jnp.isnan(sol.ys[2]))
    with pytest.raises(ValueError, match=r"odeint: ts must be strictly increasing"):
        odeint(lambda y, t: -y, jnp.array(1.0), jnp.array([0.0, 1.0, 0.5]))
