r"""Explicit Runge–Kutta steps and the stepping loop under `odeint` (no derivative rules here).

Everything works on flat state vectors (`odeint` ravels pytrees) and on a vector field
`fun(y, t) -> dy/dt` with its parameters bound. One *iteration* proposes a step of size `h`
from `(t, y)`: it is clipped so that the next output time is hit exactly, and — for an
adaptive method — accepted when the embedded error estimate is within the tolerance
(RMS norm of `err / (atol + rtol·max(|y₀|, |y₁|))` at most 1), the next `h` scaled by
`0.9·ratio^(−1/order)` within `[0.2, 10]` (Hairer, Nørsett & Wanner, *Solving ODEs I*, II.4).
The step sizes are never differentiated: they are constants of the computed solution (the
discrete adjoint and the forward sensitivities differentiate the accepted steps with them fixed,
as diffrax does), so the error norm sits behind `stop_gradient`.

The loop is one `while_loop` over iterations with a `max_steps` bound; it can record its state
every `every` iterations (the checkpoints of the discrete adjoint) and calls `on_land` when a
step lands on an output time (the forward solve writes the output there; the backsolve adjoint
adds the output's cotangent). `carry` holds `k1 = fun(y, t)`: for the FSAL methods (Dopri5,
Tsit5) it is the previous step's last stage, so a step costs 6 evaluations, not 7.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Tableau(NamedTuple):
    """Butcher tableau: `a` the rows of the strictly lower triangle (stage i ≥ 2 uses row
    i − 2), `b` the solution weights, `e` the error weights `b − b̂` (`None`: a fixed-step
    method), `c` the nodes, `order` the controller's exponent denominator (the lower order
    of the embedded pair, plus one)."""

    a: tuple
    b: tuple
    e: tuple | None
    c: tuple
    order: int


# Dormand & Prince (1980), order 5(4). Its 7th stage is f at the new point (FSAL), b₇ = 0.
DOPRI5 = Tableau(
    a=(
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    e=(
        35 / 384 - 5179 / 57600,
        0.0,
        500 / 1113 - 7571 / 16695,
        125 / 192 - 393 / 640,
        -2187 / 6784 + 92097 / 339200,
        11 / 84 - 187 / 2100,
        -1 / 40,
    ),
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    order=5,
)

# Tsitouras (2011), order 5(4), FSAL; coefficients as in OrdinaryDiffEq.jl and diffrax.
_TSIT5_B = (
    0.09646076681806523,
    0.01,
    0.4798896504144996,
    1.379008574103742,
    -3.290069515436081,
    2.324710524099774,
    0.0,
)
_TSIT5_BHAT = (
    0.09468075576583945,
    0.009183565540343254,
    0.4877705284247616,
    1.234297566930479,
    -2.7077123499835256,
    1.866628418170587,
    1 / 66,
)
TSIT5 = Tableau(
    a=(
        (0.161,),
        (-0.008480655492356989, 0.335480655492357),
        (2.8971530571054935, -6.359448489975075, 4.3622954328695815),
        (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
        (
            5.86145544294642,
            -12.92096931784711,
            8.159367898576159,
            -0.071584973281401,
            -0.028269050394068383,
        ),
    ),
    b=_TSIT5_B,
    e=tuple(b - bh for b, bh in zip(_TSIT5_B, _TSIT5_BHAT)),
    c=(0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    order=5,
)

# The classical fourth-order method, fixed step.
RK4 = Tableau(
    a=((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    e=None,
    c=(0.0, 0.5, 0.5, 1.0),
    order=4,
)

METHODS = {"dopri5": DOPRI5, "tsit5": TSIT5, "rk4": RK4}


def _combine(y, h, coeffs, ks):
    # y + h Σ cᵢ kᵢ over the non-zero coefficients.
    acc = None
    for c, k in zip(coeffs, ks):
        if c != 0.0:
            acc = c * k if acc is None else acc + c * k
    return y if acc is None else y + h * acc


def advance(tab: Tableau, fun: Callable, t, y, h, k1):
    """`(y₁, stages)`: one step from `(t, y)` of size `h`, `k1 = fun(y, t)`. The stages that
    the solution's weights use (all but an FSAL last stage, whose weight is 0)."""
    ks = [k1]
    n = len(tab.b) - (1 if tab.b[-1] == 0.0 else 0)
    for i in range(1, n):
        ks.append(fun(_combine(y, h, tab.a[i - 1], ks), t + tab.c[i] * h))
    return _combine(y, h, tab.b, ks), ks


def step(tab: Tableau, fun: Callable, t, y, h, k1):
    """`(y₁, err, k₁')`: the step, its error estimate (zeros for a fixed-step method) and
    `fun(y₁, t + h)` (the next step's first stage; for FSAL methods the last stage)."""
    y1, ks = advance(tab, fun, t, y, h, k1)
    k_next = fun(y1, t + h)
    if tab.e is None:
        return y1, jnp.zeros_like(y1), k_next
    ks = ks + [k_next] * (len(tab.e) - len(ks))
    return y1, _combine(jnp.zeros_like(y1), h, tab.e, ks), k_next


def stepper(tab: Tableau, fun: Callable) -> Callable:
    """`(t, y, h, k1) -> (y₁, err, k₁')`: `step` with the tableau and vector field bound."""
    return lambda t, y, h, k1: step(tab, fun, t, y, h, k1)


def _identity(y):
    return y


def _rms(x):
    return jnp.sqrt(jnp.mean(jnp.square(x))) if x.size else jnp.zeros((), x.dtype)


def error_ratio(err, y0, y1, rtol, atol):
    """The RMS norm of the error estimate scaled by `atol + rtol·max(|y₀|, |y₁|)`; a step is
    accepted where it is at most 1. Never differentiated."""
    err, y0, y1 = jax.lax.stop_gradient((err, y0, y1))
    return _rms(err / (atol + rtol * jnp.maximum(jnp.abs(y0), jnp.abs(y1))))


def initial_step(tab: Tableau, fun: Callable, t0, y0, k1, rtol, atol):
    """Hairer, Nørsett & Wanner's starting step (*Solving ODEs I*, II.4): two evaluations."""
    y0, k1 = jax.lax.stop_gradient((y0, k1))
    scale = atol + rtol * jnp.abs(y0)
    d0, d1 = _rms(y0 / scale), _rms(k1 / scale)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.where(d1 > 0, d1, 1.0))
    f1 = jax.lax.stop_gradient(fun(y0 + h0 * k1, t0 + h0))
    d2 = _rms((f1 - k1) / scale) / h0
    dmax = jnp.maximum(d1, d2)
    h1 = jnp.where(
        dmax <= 1e-15,
        jnp.maximum(1e-6, h0 * 1e-3),
        (0.01 / jnp.where(dmax > 0, dmax, 1.0)) ** (1.0 / tab.order),
    )
    return jnp.minimum(100 * h0, h1).astype(y0.dtype)


class State(NamedTuple):
    """The loop's state between iterations (what a checkpoint holds): time, state vector (any
    pytree of flat vectors whose `primal` part the error control sees), `k1` alike, the
    proposed step size and the index of the next output time."""

    t: jax.Array
    y: Any
    k1: Any
    dt: jax.Array
    i: jax.Array


class Taken(NamedTuple):
    """What one iteration did: its step size, whether it was accepted, and whether it landed
    on output time `i` (the index before the iteration)."""

    h: jax.Array
    accepted: jax.Array
    landed: jax.Array


class Control(NamedTuple):
    """The error control's settings (static): tolerances and the iteration bound."""

    rtol: float
    atol: float
    max_steps: int


def iterate(
    tab: Tableau,
    stepper: Callable,
    ts,
    state: State,
    control: Control,
    primal: Callable = _identity,
) -> tuple[State, Taken]:
    """One iteration: a step towards `ts[state.i]` (clipped to land on it), accepted or not.

    `stepper(t, y, h, k1) -> (y₁, err, k₁')` (`stepper(tab, fun)`, or its JVP);
    `primal(y)` the part of the state the error control sees (all of it by default)."""
    t, y, k1, dt, i = state
    target = ts[i]
    # Land exactly on the output time when within a few ulps of reaching it.
    eps = jnp.finfo(t.dtype).eps
    clipped = t + dt >= target - 4 * eps * jnp.abs(target)
    h = jnp.where(clipped, target - t, dt)
    y1, err, k_next = stepper(t, y, h, k1)
    if tab.e is None:
        accepted = jnp.ones((), bool)
        dt_new = dt
    else:
        ratio = error_ratio(primal(err), primal(y), primal(y1), control.rtol, control.atol)
        accepted = ratio <= 1.0  # False for NaN: a blow-up shrinks the step until max_steps
        safe = jnp.where(ratio > 0, ratio, 1.0)
        factor = jnp.where(ratio > 0, 0.9 * safe ** (-1.0 / tab.order), 10.0)
        factor = jnp.where(jnp.isfinite(ratio), jnp.clip(factor, 0.2, 10.0), 0.2)
        dt_new = h * factor
        # A step shortened to land on an output time does not shrink the next proposal.
        dt_new = jnp.where(clipped & accepted, jnp.maximum(dt_new, dt), dt_new)
    keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(accepted, a, b), new, old)
    t1 = jnp.where(clipped, target, t + h)
    landed = accepted & clipped
    new = State(
        t=jnp.where(accepted, t1, t),
        y=keep(y1, y),
        k1=keep(k_next, k1),
        dt=dt_new.astype(dt.dtype),
        i=i + landed.astype(i.dtype),
    )
    return new, Taken(h=h, accepted=accepted, landed=landed)


class Loop(NamedTuple):
    state: State
    n: jax.Array  # iterations taken
    accepted: jax.Array  # of which accepted
    extra: Any  # what on_land writes (the outputs, ...)
    checkpoints: Any  # State with a leading axis, or None


def run(
    tab: Tableau,
    stepper: Callable,
    ts,
    state: State,
    extra,
    on_land: Callable,
    *,
    control: Control,
    every: int | None = None,
    primal: Callable = _identity,
) -> Loop:
    """Iterate until the last output time is reached or `max_steps` iterations were taken.

    `on_land(state, extra, i, landed) -> (state, extra)` runs after every iteration, `i` the
    output index it aimed at and `landed` whether it reached it (a traced bool). With
    `every`, the state before iterations `0, every, 2·every, ...` is recorded in
    `checkpoints` (`ceil(max_steps / every)` of them)."""
    n_out, max_steps = ts.shape[0], control.max_steps
    checkpoints = None
    if every is not None:
        slots = -(-max_steps // every)
        checkpoints = jax.tree_util.tree_map(
            lambda x: jnp.zeros((slots, *jnp.shape(x)), jnp.result_type(x)), state
        )

    def cond(loop):
        return (loop.state.i < n_out) & (loop.n < max_steps)

    def body(loop):
        ck = loop.checkpoints
        if ck is not None:
            slot = loop.n // every
            record = loop.n % every == 0
            ck = jax.tree_util.tree_map(
                lambda C, x: C.at[slot].set(jnp.where(record, x, C[slot])), ck, loop.state
            )
        i = loop.state.i
        state, taken = iterate(tab, stepper, ts, loop.state, control, primal)
        state, extra = on_land(state, loop.extra, i, taken.landed)
        return Loop(state, loop.n + 1, loop.accepted + taken.accepted, extra, ck)

    zero = jnp.zeros((), jnp.int32)
    return jax.lax.while_loop(cond, body, Loop(state, zero, zero, extra, checkpoints))
