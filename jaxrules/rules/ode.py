r"""ODE solves with adjoint rules: $y' = f(y, t, \theta)$, $y(t_0) = y_0$, solved at output
times $t_0 < t_1 < \dots < t_N$ by an explicit Runge–Kutta method, differentiated in
$y_0$ and $\theta$ (the `params` and every array `f` captures) in both modes.

**The computed solution.** An adaptive method (Dopri5, Tsit5) takes steps $h_k$ chosen by its
error controller; the output $y_i$ is the state after the step that lands on $t_i$. The step
sizes are treated as constants (they depend on $\theta$ only through the controller, whose
derivative is neither useful nor defined where a step is accepted or rejected; diffrax makes
the same choice): the derivative of odeint is the derivative of the composition of the
accepted steps $y_{k+1} = \Phi_{h_k}(y_k, t_k, \theta)$.

**Forward mode — forward sensitivities.** Differentiating $y' = f$:
$\dot y' = \partial_y f\,\dot y + \partial_\theta f\,\dot\theta$, $\dot y(t_0) = \dot y_0$.
jaxrules integrates it alongside the state *with the same steps*: each step maps
$(y_k, \dot y_k) \mapsto (\Phi(y_k), \partial\Phi\,[\dot y_k, \dot\theta])$ (one JVP of the
step; a Runge–Kutta step of the variational equation is the JVP of the step, so this is the
exact tangent of the computed solution), and the error control sees $y$ only. `jax.jacfwd`
over a few parameters costs a few solves; nothing is stored.

**Reverse mode, `adjoint="checkpoint"` (default) — the discrete adjoint.** For a loss
$L(y_1, \dots, y_N)$ write $a_k = \partial L/\partial y_k$ for the state after step $k$. Going
backwards over the accepted steps,
$a_k = (\partial_y\Phi_{h_k})^\top a_{k+1} + [\text{step } k \text{ lands on } t_i]\,\bar y_i$,
$\bar\theta \mathrel{+}= (\partial_\theta\Phi_{h_k})^\top a_{k+1}$, and $\bar y_0 = a_0$: one
VJP of each step. It is the exact gradient of the computed solution (to rounding). The steps'
states are not stored: the forward solve records its loop state every
$K = \lceil\sqrt{\text{max\_steps}}\rceil$ iterations, and the backward pass recomputes one
segment of $K$ iterations at a time from its checkpoint (memory $O(\sqrt{\text{max\_steps}})$
states, one extra forward solve of work).

**Reverse mode, `adjoint="backsolve"` — the continuous adjoint.** With $a(t) =
\partial L/\partial y(t)$: $\dot a = -(\partial_y f)^\top a$,
$\bar\theta = \int_{t_0}^{t_N} (\partial_\theta f)^\top a\,dt$, jumps
$a(t_i) \mathrel{+}= \bar y_i$ at the output times, $\bar y_0 = a(t_0)$. Writing
$g(t) = \int_t^{t_N}(\partial_\theta f)^\top a$, the augmented state $[y, a, g]$ solves
$\tfrac{d}{dt}[y, a, g] = [f, -(\partial_y f)^\top a, -(\partial_\theta f)^\top a]$
backwards from $t_N$ (with $y(t_N) = y_N$, $a = \bar y_N$, $g = 0$) — one VJP of $f$ per
stage — with the same method and tolerances; $y$ is reset to the stored output at each output
time. Memory is independent of the number of steps. The gradient is that of the exact
solution, computed to the tolerances: it differs from the gradient of the computed solution
by about `rtol`, and re-integrating $y$ backwards is unstable for stiff or strongly
dissipative $f$ (errors grow like $e^{\int \|\partial_y f\|}$); use the checkpoint adjoint
there. (The tutorial series this project grew from integrates $-a$ for the parameters' term
and gets $\bar\theta$'s sign wrong wherever $\partial_\theta f \ne 0$ along the way: notebook 07
shows `jr.check` catching it.)

**Failure is visible.** At most `max_steps` iterations (accepted or rejected steps): where
the last output time is not reached, or a value is not finite, `converged` is false, the
outputs not reached are NaN and so are the derivatives (also where the backsolve adjoint fails
to reach $t_0$); `throw=True` raises `SolverError` at run time instead.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _registry as registry
from .. import inputs
from .._custom import custom_vjp
from . import _arguments as _args
from . import _rk
from ._failure import error_if, nan_unless

__all__ = ["Adjoint", "BacksolveAdjoint", "CheckpointAdjoint", "ODESolution", "odeint"]


class ODESolution(NamedTuple):
    """The result of `odeint` (a pytree).

    **Fields:** `ys` (the solution at each output time: `y0`'s pytree with a leading axis of
    `len(ts)`; differentiable; NaN where not reached), `converged` (bool: the last output
    time was reached within `max_steps` and every value is finite), `steps` (iterations taken,
    accepted or rejected) and `accepted` (accepted steps).
    """

    ys: Any
    converged: jax.Array
    steps: jax.Array
    accepted: jax.Array


def _default_tol(dtype) -> float:
    return 1e-8 if jnp.finfo(dtype).bits == 64 else 1e-5


# -- the adjoints: how reverse mode gets the gradient ---------------------------------------------
class Adjoint:
    """How `odeint`'s reverse mode computes the gradient (as diffrax's adjoints): what the
    forward solve keeps (`checkpoint_every`, `saved`) and the backward pass (`backward`).
    Instances are static options (hashable, compared by value)."""

    def checkpoint_every(self, max_steps: int) -> int | None:
        """Iterations between the forward solve's recorded loop states (`None`: none)."""
        return None

    def saved(self, ys, loop) -> tuple:
        """What the backward pass starts from, given the outputs and the forward loop."""
        raise NotImplementedError

    def backward(self, diff, y0, ts, saved, ybar, options: _Options):
        """`(ȳ₀ flat, θ̄ list, ok)`: the cotangents of the initial state and of the
        differentiable leaves of `(f, params)`, and whether the backward pass succeeded
        (`None`: it cannot fail where the forward solve did not)."""
        raise NotImplementedError

    def failure(self, options: _Options) -> str:
        """The `SolverError` message where `backward` reports a failure (`throw=True`)."""
        return "odeint: the adjoint's backward pass failed."


@dataclasses.dataclass(frozen=True)
class CheckpointAdjoint(Adjoint):
    r"""The discrete adjoint (`adjoint="checkpoint"`, the default): the exact gradient of
    the computed solution, one VJP of each accepted step, recomputed segment by segment from
    loop states recorded every `every` iterations (default $\lceil\sqrt{\text{max\_steps}}
    \rceil$: memory $O(\sqrt{\text{max\_steps}})$ states, one extra forward solve).
    A smaller `every` keeps more states and recomputes less."""

    every: int | None = None

    def __post_init__(self):
        if self.every is not None and not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(
                f"CheckpointAdjoint: every must be a positive int or None, got {self.every!r}."
            )

    def checkpoint_every(self, max_steps: int) -> int:
        if self.every is not None:
            return min(self.every, max_steps)
        return max(1, math.isqrt(max_steps - 1) + 1) if max_steps > 1 else 1

    def saved(self, ys, loop) -> tuple:
        return loop.checkpoints, loop.n

    def backward(self, diff, y0, ts, saved, ybar, options):
        every = self.checkpoint_every(options.max_steps)
        a, g = _checkpoint_adjoint(diff, y0, ts, *saved, ybar, options, every)
        return a, g, None


@dataclasses.dataclass(frozen=True)
class BacksolveAdjoint(Adjoint):
    """The continuous adjoint (`adjoint="backsolve"`): `[y, a, g]` integrated backwards
    with the same method and tolerances, memory independent of the number of steps; the
    gradient of the exact solution to the tolerances. Where it does not reach `t₀` the
    derivatives are NaN (`throw=True`: a `SolverError`)."""

    def saved(self, ys, loop) -> tuple:
        return (ys,)

    def backward(self, diff, y0, ts, saved, ybar, options):
        return _backsolve_adjoint(diff, y0, ts, *saved, ybar, options)

    def failure(self, options) -> str:
        return (
            "odeint: the backsolve adjoint did not reach t0 within max_steps = "
            f"{options.max_steps} (or a value is not finite). Raise max_steps, loosen "
            "rtol/atol, or use adjoint='checkpoint' (the augmented backward system can be "
            "stiff or unstable where the forward one is not)."
        )


_ADJOINTS = {"checkpoint": CheckpointAdjoint(), "backsolve": BacksolveAdjoint()}


def _adjoint(adjoint) -> Adjoint:
    if isinstance(adjoint, Adjoint):
        return adjoint
    if isinstance(adjoint, str) and adjoint in _ADJOINTS:
        return _ADJOINTS[adjoint]
    raise ValueError(
        f"odeint: adjoint must be one of {tuple(_ADJOINTS)} or an Adjoint "
        f"(CheckpointAdjoint(), BacksolveAdjoint()), got {adjoint!r}."
    )


@dataclasses.dataclass(frozen=True)
class _Options:
    """odeint's static options, one hashable record (one compilation per distinct record)."""

    method: str
    rtol: float
    atol: float
    dt0: float | None
    max_steps: int
    adjoint: Adjoint
    throw: bool

    @staticmethod
    def of(dtype, *, method, rtol, atol, dt0, max_steps, adjoint, throw) -> _Options:
        """The record for `odeint`'s arguments, the dtype's tolerances where none are given."""
        default = _default_tol(dtype)
        return _Options(
            method=method,
            rtol=default if rtol is None else float(rtol),
            atol=default if atol is None else float(atol),
            dt0=None if dt0 is None else float(dt0),
            max_steps=max_steps,
            adjoint=adjoint,
            throw=bool(throw),
        )

    @property
    def tab(self) -> _rk.Tableau:
        return _rk.METHODS[self.method]

    @property
    def control(self) -> _rk.Control:
        return _rk.Control(self.rtol, self.atol, self.max_steps)


# -- the vector field on flat vectors -----------------------------------------------------------
def _field(fn, params, unravel) -> Callable:
    """`fun(y, t)`: `fn` on flat state vectors, parameters bound."""

    def fun(y, t):
        return ravel_pytree(fn(unravel(y), t, *params))[0]

    return fun


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


class _Diff(NamedTuple):
    """The differentiable leaves of `(fn, params)` (what `f` captures and the parameters),
    split from the rest, so that loops carry only what has a cotangent."""

    leaves: list
    treedef: Any
    where: list

    @staticmethod
    def of(fn, params) -> _Diff:
        leaves, treedef = jax.tree_util.tree_flatten((fn, params))
        return _Diff(leaves, treedef, [i for i, x in enumerate(leaves) if _inexact(x)])

    def values(self) -> list:
        return [self.leaves[i] for i in self.where]

    def _place(self, leaves, values) -> tuple:
        leaves = list(leaves)
        for i, v in zip(self.where, values):
            leaves[i] = v
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def rebuild(self, values) -> tuple:
        """`(fn, params)` with `values` at the differentiable leaves."""
        return self._place(self.leaves, values)

    def cotangent(self, values) -> tuple:
        """`(fn̄, params̄)`: `values` at the differentiable leaves, float0 zeros elsewhere."""
        return self._place([np.zeros(np.shape(x), jax.dtypes.float0) for x in self.leaves], values)


# -- the solve ----------------------------------------------------------------------------------
_jit = functools.partial(jax.jit, static_argnames=("options",))


def _first_dt(fun, t0, y, k1, options: _Options):
    """The first proposed step: `dt0`, else Hairer's rule (two evaluations of `fun`)."""
    if options.dt0 is not None:
        return jnp.asarray(options.dt0, y.dtype)
    dt = _rk.initial_step(options.tab, fun, t0, y, k1, options.rtol, options.atol)
    return jnp.asarray(dt, y.dtype)


def _start(fun, ts, y, options: _Options):
    k1 = fun(y, ts[0])
    return k1, _first_dt(fun, ts[0], y, k1, options)


def _forward(fn, y0, ts, params, options: _Options, every=None):
    """The forward solve on flat vectors: `(ys (N, d), loop)`."""
    tab = options.tab
    yf, unravel = ravel_pytree(y0)
    ts = ts.astype(yf.dtype)
    fun = _field(fn, params, unravel)
    k1, dt = _start(fun, ts, yf, options)
    state = _rk.State(ts[0], yf, k1, dt, jnp.asarray(1, jnp.int32))
    ys = jnp.full((ts.shape[0], yf.size), jnp.nan, yf.dtype).at[0].set(yf)

    def on_land(state, ys, i, landed):
        return state, ys.at[i].set(jnp.where(landed, state.y, ys[i]))

    loop = _rk.run(
        tab, _rk.stepper(tab, fun), ts, state, ys, on_land, control=options.control, every=every
    )
    # Times that stop increasing (traced `ts` under jit; concrete ones raise before): NaN from
    # the first one on, whatever the loop did there (float32 integrated backwards, float64 ran
    # out of steps), so that `converged` is false in every dtype.
    going = jnp.concatenate([jnp.ones((1,), bool), jnp.cumprod(jnp.diff(ts) > 0).astype(bool)])
    return jnp.where(going[:, None], loop.extra, jnp.nan), loop


def _unflat(ys_flat, y0):
    unravel = ravel_pytree(y0)[1]
    return jax.vmap(unravel)(ys_flat)


def _outputs(ys_flat, y0, loop):
    n_out = ys_flat.shape[0]
    converged = (loop.state.i == n_out) & jnp.all(jnp.isfinite(ys_flat))
    return _unflat(ys_flat, y0), converged, loop.n, loop.accepted


@custom_vjp(static_argnames=("options",), constant_argnames=("ts",))
def _odeint(fn, y0, ts, params, *, options: _Options):
    """`(ys, converged, steps, accepted)`."""
    return _primal(fn, y0, ts, params, options=options)


@_jit
def _primal(fn, y0, ts, params, *, options):
    ys, loop = _forward(fn, y0, ts, params, options)
    return _outputs(ys, y0, loop)


# -- forward mode: sensitivities integrated with the state ------------------------------------
@_jit
def _odeint_jvp(primals, tangents, *, options):
    (fn, y0, ts, params), (dfn, dy0, _, dparams) = primals, tangents
    tab = options.tab
    yf, unravel = ravel_pytree(y0)
    dyf = ravel_pytree(dy0)[0].astype(yf.dtype)
    ts = ts.astype(yf.dtype)

    def field_jvp(y, dy, t):
        return jax.jvp(
            lambda y, fn, params: _field(fn, params, unravel)(y, t),
            (y, fn, params),
            (dy, dfn, dparams),
        )

    def stepper(t, Y, h, K):
        (y, dy), (k, dk) = Y, K
        out, dout = jax.jvp(
            lambda y, k, fn, params: _rk.step(tab, _field(fn, params, unravel), t, y, h, k),
            (y, k, fn, params),
            (dy, dk, dfn, dparams),
        )
        return (out[0], dout[0]), (out[1], dout[1]), (out[2], dout[2])

    k1, dk1 = field_jvp(yf, dyf, ts[0])
    dt = _first_dt(_field(fn, params, unravel), ts[0], yf, k1, options)
    state = _rk.State(ts[0], (yf, dyf), (k1, dk1), dt, jnp.asarray(1, jnp.int32))
    n_out = ts.shape[0]
    blank = jnp.full((n_out, yf.size), jnp.nan, yf.dtype)
    out0 = (blank.at[0].set(yf), blank.at[0].set(dyf))

    def on_land(state, out, i, landed):
        y, dy = state.y
        ys, dys = out
        return state, (
            ys.at[i].set(jnp.where(landed, y, ys[i])),
            dys.at[i].set(jnp.where(landed, dy, dys[i])),
        )

    primal = lambda Y: Y[0]  # the error control sees the state only
    loop = _rk.run(tab, stepper, ts, state, out0, on_land, control=options.control, primal=primal)
    ys, dys = loop.extra
    out = _outputs(ys, y0, loop)
    dys = nan_unless(out[1], _unflat(dys, y0))
    return out, (dys, None, None, None)


# -- reverse mode ---------------------------------------------------------------------------------
@_jit
def _odeint_fwd(fn, y0, ts, params, *, options):
    adjoint = options.adjoint
    ys, loop = _forward(fn, y0, ts, params, options, adjoint.checkpoint_every(options.max_steps))
    out = _outputs(ys, y0, loop)
    return out, (fn, params, ts, y0, out[1], adjoint.saved(ys, loop))


@_jit
def _odeint_bwd(res, cts, *, options):
    fn, params, ts, y0, converged, saved = res
    ybar = jax.vmap(lambda v: ravel_pytree(v)[0])(cts[0])
    diff = _Diff.of(fn, params)
    a, g, ok = options.adjoint.backward(diff, y0, ts, saved, ybar, options)
    if ok is not None:
        if options.throw:
            error_if(converged & ~ok, options.adjoint.failure(options))
        converged = converged & ok
    a, g = nan_unless(converged, (a, g))
    fn_bar, params_bar = diff.cotangent(g)
    return fn_bar, ravel_pytree(y0)[1](a), None, params_bar


def _checkpoint_adjoint(diff, y0, ts, checkpoints, n, ybar, options: _Options, every: int):
    """The discrete adjoint: segments of `every` iterations recomputed from their
    checkpoints, last first; in each, the accepted steps' VJPs in reverse order."""
    tab = options.tab
    yf, unravel = ravel_pytree(y0)
    ts = ts.astype(yf.dtype)
    theta = diff.values()

    def fun_of(theta):
        fn, params = diff.rebuild(theta)
        return _field(fn, params, unravel)

    stepper = _rk.stepper(tab, fun_of(theta))

    def segment(carry):
        s, a, g = carry
        start = jax.tree_util.tree_map(lambda C: C[s], checkpoints)

        def recompute(state, j):
            active = s * every + j < n
            new, taken = _rk.iterate(tab, stepper, ts, state, options.control)
            new = jax.tree_util.tree_map(lambda x, y: jnp.where(active, x, y), new, state)
            record = (state.t, state.y, taken.h, taken.accepted & active, taken.landed & active)
            return new, (record, state.i)

        _, (records, idx) = jax.lax.scan(recompute, start, jnp.arange(every))

        def reverse(carry, rec):
            a, g = carry
            (t, y, h, accepted, landed), i = rec
            a = a + jnp.where(landed, ybar[i], 0)

            def pull(a, g):
                # y₁ = Φ_h(y, θ), with k₁ = f(y, t) recomputed so that it depends on y.
                def phi(y, theta):
                    f = fun_of(theta)
                    return _rk.advance(tab, f, t, y, h, f(y, t))[0]

                _, vjp = jax.vjp(phi, y, theta)
                a_new, g_inc = vjp(a)
                return a_new, [gi + di for gi, di in zip(g, g_inc)]

            a, g = jax.lax.cond(accepted, pull, lambda a, g: (a, g), a, g)
            return (a, g), None

        (a, g), _ = jax.lax.scan(reverse, (a, g), (records, idx), reverse=True)
        return s - 1, a, g

    segments = (n + every - 1) // every
    a = jnp.zeros_like(yf)
    g = [jnp.zeros_like(x) for x in theta]
    _, a, g = jax.lax.while_loop(lambda c: c[0] >= 0, segment, (segments - 1, a, g))
    return a + ybar[0], g


def _backsolve_adjoint(diff, y0, ts, ys, ybar, options: _Options):
    """The continuous adjoint: `[y, a, g]` integrated from `t_N` back to `t₀` in reversed time
    `s = −t`, resetting `y` to the stored output and adding the output's cotangent to `a` at
    each output time."""
    tab = options.tab
    yf, unravel = ravel_pytree(y0)
    d = yf.size
    ts = ts.astype(yf.dtype)
    theta = diff.values()
    gflat, unravel_g = ravel_pytree(theta)
    gflat = gflat.astype(yf.dtype)

    def fun_of(theta):
        fn, params = diff.rebuild(theta)
        return _field(fn, params, unravel)

    def aug(z, s):
        # d/ds [y, a, g] = −d/dt [y, a, g] = [−f, (∂_y f)ᵀa, (∂_θ f)ᵀa] at t = −s.
        y, a = z[:d], z[d : 2 * d]
        fval, vjp = jax.vjp(lambda y, theta: fun_of(theta)(y, -s), y, theta)
        ya, ga = vjp(a)
        return jnp.concatenate([-fval, ya, ravel_pytree(ga)[0].astype(z.dtype)])

    n_out = ts.shape[0]
    rts = -ts[::-1]
    rys, rybar = ys[::-1], ybar[::-1]
    z0 = jnp.concatenate([rys[0], rybar[0], jnp.zeros_like(gflat)])
    k1, dt = _start(aug, rts, z0, options)
    state = _rk.State(rts[0], z0, k1, dt, jnp.asarray(1, jnp.int32))

    def on_land(state, extra, i, landed):
        def jump(z, k1):
            # The state jumps: its derivative (the FSAL stage) is evaluated again.
            z = jnp.concatenate([rys[i], z[d : 2 * d] + rybar[i], z[2 * d :]])
            return z, aug(z, state.t)

        z, k1 = jax.lax.cond(landed, jump, lambda z, k1: (z, k1), state.y, state.k1)
        return state._replace(y=z, k1=k1), extra

    loop = _rk.run(tab, _rk.stepper(tab, aug), rts, state, None, on_land, control=options.control)
    z = loop.state.y
    ok = (loop.state.i == n_out) & jnp.all(jnp.isfinite(z))
    g = unravel_g(z[2 * d :])
    return z[d : 2 * d], [x.astype(t.dtype) for x, t in zip(g, theta)], ok


_odeint.defjvp(_odeint_jvp)
_odeint.defvjp(_odeint_fwd, _odeint_bwd)


# -- the public function --------------------------------------------------------------------------
def _check_args(f, y0, ts, method, rtol, atol, dt0, max_steps):
    if not callable(f):
        raise TypeError(f"odeint: f must be a function f(y, t, *params), got {type(f).__name__}.")
    if method not in _rk.METHODS:
        raise ValueError(f"odeint: method must be one of {tuple(_rk.METHODS)}, got {method!r}.")
    if _rk.METHODS[method].e is None and dt0 is None:
        raise ValueError(
            f"odeint: method={method!r} takes fixed steps: pass the step size, dt0=0.01 say."
        )
    for name, v in (("rtol", rtol), ("atol", atol), ("dt0", dt0)):
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"odeint: {name} must be a positive Python number, got {v!r}.")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"odeint: max_steps must be a positive int, got {max_steps!r}.")
    leaves = jax.tree_util.tree_leaves(y0)
    dtypes = {jnp.result_type(leaf) for leaf in leaves}
    if not leaves or len(dtypes) != 1 or not jnp.issubdtype(next(iter(dtypes)), jnp.floating):
        raise TypeError(
            "odeint: y0 must be a pytree of real floating-point arrays of one dtype, got "
            f"{jax.tree_util.tree_map(lambda v: jax.typeof(v).str_short(), y0)}. Cast it, e.g. "
            "jnp.asarray(y0, jnp.float32)."
        )
    _args.full_precision(
        "odeint",
        "3 digits are too few for its step-size control and adjoint solves; cast f's "
        "parameters too",
        y0=y0,
    )
    if jnp.ndim(ts) != 1 or jnp.shape(ts)[0] < 1:
        raise ValueError(
            f"odeint: ts must be a 1-D array of output times (t0 first), got shape {jnp.shape(ts)}."
        )
    if not jnp.issubdtype(jnp.result_type(ts), jnp.floating) and not jnp.issubdtype(
        jnp.result_type(ts), jnp.integer
    ):
        raise TypeError(f"odeint: ts must be real, got {jnp.result_type(ts)}.")
    try:
        concrete = np.asarray(ts)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None
    if concrete is not None and concrete.size > 1 and not np.all(np.diff(concrete) > 0):
        raise ValueError(
            f"odeint: ts must be strictly increasing, got {concrete}. To integrate backwards "
            "in time, substitute s = −t: solve y' = −f(y, −s) at −ts."
        )


def odeint(
    f: Callable,
    y0: Any,
    ts: Any,
    *params: Any,
    method: str = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    dt0: float | None = None,
    max_steps: int = 4096,
    adjoint: str | Adjoint = "checkpoint",
    throw: bool = False,
) -> ODESolution:
    r"""Solve $y' = f(y, t, \theta)$ from $y(t_0) = y_0$ and return $y$ at the times `ts`.

    Differentiable in `y0`, `params` and the arrays `f` captures, in both modes: forward mode
    by forward sensitivities, reverse mode by the discrete adjoint with checkpoints
    (`adjoint="checkpoint"`, the exact gradient of the computed solution) or the continuous
    adjoint (`adjoint="backsolve"`, memory independent of the number of steps). The
    derivation is in the module's documentation (`jaxrules.rules.ode`).

    **Arguments:** `f(y, t, *params)` returns a pytree like `y` (it may close over arrays,
    traced ones included: they are differentiated like `params`); `y0` a pytree of real
    floating arrays of one dtype; `ts` the output times, strictly increasing, `ts[0] = t₀`
    (no derivative: differentiating with respect to them raises; concrete `ts` that do not
    increase are a `ValueError`, and traced ones under `jit`, where no error can be raised,
    give NaN outputs from the first time that goes backwards and `converged=False`, or a
    `SolverError` with `throw=True`); `params` any pytrees.

    **Keyword arguments:** `method` — `"dopri5"` (default) or `"tsit5"` (adaptive, order 5)
    or `"rk4"` (fixed step `dt0`); `rtol`, `atol` — the error control's tolerances (default
    1e-8 in float64, 1e-5 in float32); `dt0` — the first step (adaptive; default by Hairer's
    rule) or the step (`"rk4"`); `max_steps` — at most this many iterations (accepted or
    rejected steps), which also sizes the checkpoints (`⌈√max_steps⌉` loop states); `adjoint`
    — `CheckpointAdjoint()` (or `"checkpoint"`) or `BacksolveAdjoint()` (`"backsolve"`);
    `throw` — raise `SolverError` at run time where the
    solve did not converge, instead of only flagging it.

    **Returns:** an `ODESolution` `(ys, converged, steps, accepted)`; `ys` and its
    derivatives are NaN where not converged.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import odeint
        >>> decay = lambda y, t, k: -k * y
        >>> ts = jnp.array([0.0, 1.0])
        >>> sol = odeint(decay, jnp.array(2.0), ts, 0.5)
        >>> round(float(sol.ys[1]), 4), bool(sol.converged)  # 2·exp(−0.5), float32
        (1.2131, True)
        >>> dk = jax.grad(lambda k: odeint(decay, jnp.array(2.0), ts, k).ys[1])(0.5)
        >>> round(float(dk), 4)  # −2·exp(−0.5)
        -1.2131
    """
    _check_args(f, y0, ts, method, rtol, atol, dt0, max_steps)
    adjoint = _adjoint(adjoint)
    y0 = jax.tree_util.tree_map(jnp.asarray, y0)
    dtype = jnp.result_type(jax.tree_util.tree_leaves(y0)[0])
    ts = jnp.asarray(ts).astype(dtype)
    params = tuple(params)
    want = jax.eval_shape(lambda y: y, y0)
    try:
        got = jax.eval_shape(lambda y: f(y, ts[0], *params), y0)
    except jax.errors.UnexpectedTracerError:
        got = None
    if got is not None and (
        jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(want)
        or [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(got)]
        != [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(want)]
    ):
        raise ValueError(
            "odeint: f(y0, t0, *params) must return the same structure, shapes and dtypes as "
            f"y0 ({jax.tree_util.tree_map(lambda a: f'{a.dtype}{list(a.shape)}', want)}), got "
            f"{jax.tree_util.tree_map(lambda a: f'{a.dtype}{list(a.shape)}', got)}."
        )
    options = _Options.of(
        dtype, method=method, rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps,
        adjoint=adjoint, throw=throw,
    )  # fmt: skip
    try:
        ys, converged, steps, accepted = _odeint(f, y0, ts, params, options=options)
    except jax.errors.UnexpectedTracerError as e:
        raise jax.errors.UnexpectedTracerError(
            "odeint: f uses a traced array that jaxrules cannot see, so it cannot be "
            "differentiated: it is hidden inside a jax.jit-compiled function or an object that "
            "is not a pytree. Pass that array explicitly, as one of odeint(..., *params), or "
            "capture it in a plain Python function or functools.partial."
        ) from e
    if throw:
        error_if(
            ~converged,
            f"odeint: the solve did not reach ts[-1] within max_steps = {max_steps} iterations, "
            "or a value is not finite (steps and accepted steps are in the ODESolution returned "
            "with throw=False). Raise max_steps, loosen rtol/atol, or check that the solution "
            "does not blow up.",
        )
    return ODESolution(ys, converged, steps, accepted)


# -- the plain-JAX reference ----------------------------------------------------------------------
def unrolled(f, y0, ts, *params, method="dopri5", rtol=None, atol=None, dt0=None, max_steps=256):
    """`ys`: the same iterations as `odeint`, as a `lax.scan` of `max_steps` masked
    iterations that JAX differentiates itself (reverse mode stores every step). The step
    sizes are behind `stop_gradient` (`_rk.error_ratio`), so its derivative is the derivative
    of the computed solution that `odeint`'s rules claim. The checker's reference."""
    yf, unravel = ravel_pytree(y0)
    ts = jnp.asarray(ts).astype(yf.dtype)
    options = _Options.of(
        yf.dtype, method=method, rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps,
        adjoint=_ADJOINTS["checkpoint"], throw=False,  # (the adjoint: unused, JAX differentiates)
    )  # fmt: skip
    tab = options.tab
    fun = _field(f, params, unravel)
    k1, dt = _start(fun, ts, yf, options)
    dt = jax.lax.stop_gradient(dt)
    state = _rk.State(ts[0], yf, k1, dt, jnp.asarray(1, jnp.int32))
    n_out = ts.shape[0]

    def body(carry, _):
        state, ys = carry
        done = state.i >= n_out
        new, taken = _rk.iterate(tab, _rk.stepper(tab, fun), ts, state, options.control)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(done, b, a), new, state)
        landed = taken.landed & ~done
        i = jnp.minimum(state.i, n_out - 1)
        ys = ys.at[i].set(jnp.where(landed, new.y, ys[i]))
        return (new, ys), None

    ys = jnp.zeros((n_out, yf.size), yf.dtype).at[0].set(yf)
    (_, ys), _ = jax.lax.scan(body, (state, ys), None, length=max_steps)
    return jax.vmap(unravel)(ys)


# -- registered examples ------------------------------------------------------------------------
# A general nonlinear vector field with time-dependent forcing: non-symmetric W (captured by the
# function, so closure conversion is checked too), forcing b, state of 3. The reference is the
# unrolled solver: same iterations, differentiated by JAX.
_EXAMPLE_TS = (0.0, 0.4, 1.1, 2.0)
_EXAMPLE_STEPS = 64  # the unrolled reference's length (Dopri5 needs 16 steps in float64)


def _vector_field(y, t, W, b):
    return jnp.tanh(W @ y + b * jnp.cos(t)) - 0.5 * y


def _example_options(method, adjoint):
    opts = {"dt0": 0.1 if method == "rk4" else None, "method": method}
    if adjoint == "checkpoint":
        # The same tolerance in both dtypes: float32 and its float64 witness take the same
        # steps, so they differ by rounding, not by the tolerance (the discrete adjoint is exact
        # at any tolerance). The backsolve example keeps the defaults (its error is the
        # tolerance's).
        opts.update(rtol=1e-5, atol=1e-5)
    return opts


def odeint_example(y0, W, b, *, method="dopri5", adjoint="checkpoint"):
    """`ys` of $y' = \\tanh(Wy + b\\cos t) - y/2$ at four times, by `odeint` (`W` captured)."""
    ts = jnp.asarray(_EXAMPLE_TS, y0.dtype)
    field = lambda y, t, b: _vector_field(y, t, W, b)
    opts = _example_options(method, adjoint)
    return odeint(field, y0, ts, b, adjoint=adjoint, max_steps=_EXAMPLE_STEPS, **opts).ys


def _example_reference(y0, W, b, *, method="dopri5", adjoint="checkpoint"):
    ts = jnp.asarray(_EXAMPLE_TS, y0.dtype)
    opts = _example_options(method, adjoint)
    return unrolled(_vector_field, y0, ts, W, b, max_steps=_EXAMPLE_STEPS, **opts)


_EXAMPLE_INPUTS = {
    "y0": inputs.general((3,)),
    "W": inputs.general((3, 3)),
    "b": inputs.general((3,)),
}

registry.register(
    "odeint_example",
    reference=_example_reference,
    inputs=_EXAMPLE_INPUTS,
    cases=[registry.Case(m, {"method": m}) for m in _rk.METHODS],
    tags=("ode",),
)(odeint_example)

# The continuous adjoint is the gradient of the exact solution, the reference's that of the
# computed one: they agree to about the solver's tolerance (1e-8 in float64, 1e-5 in float32),
# amplified by the problem (measured over 20 seeds: at most 1.2e-7 relative in float64). With
# a fixed step the difference is the method's error instead (RK4 at dt = 0.1: 1.4e-5), so the
# adaptive method is the one registered; the adjoint's code is the same for every method.
registry.register(
    "odeint_backsolve_example",
    reference=_example_reference,
    inputs=_EXAMPLE_INPUTS,
    cases=[registry.Case("dopri5", {"method": "dopri5", "adjoint": "backsolve"})],
    rtol={"float64": 1e-5, "float32": 5e-3},
    tags=("ode",),
)(odeint_example)
