"""Witnesses for the checker: what a derivative should be, computed independently of the rule.

1. JAX's own differentiation of the registered *reference* (in float64 at the same point).
2. Central finite differences of a function in float64, with a per-argument step and one
   Richardson extrapolation step — for rules without a reference (differences of the rule),
   and for registered cases at points where JAX's own derivative of the reference fails
   (`Case(..., witness="differences")`: differences of the reference, first and second
   order).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._dtypes import wide

STEPS = 12  # adaptive search: the largest step, then ten times smaller each time
RESOLVED = 1e-8  # a step must move the outputs by this much relative to them (not rounding)
# Second differences move the outputs by h²·F'' only: a direction along which F'' is small
# next to F (measured: 3e-3 of it, for I₁ along a direction mostly on x = 0, where I₁'' = 0)
# would leave no step resolved at 1e-8, so they need only be 1e-11 of F: still three orders
# above the rounding of F(x + hv) − 2F(x) + F(x − hv), and the step search (the estimate that
# changes least) and its error estimate in the tolerance do the rest.
RESOLVED_SECOND = 1e-11


def fd_step(x: np.ndarray, v: np.ndarray) -> float:
    """The largest central-difference step tried for `x` along `v`: 1e-2 of their scale
    ratio, at least 1e-2/‖v‖ (float64)."""
    sx = float(np.sqrt(np.mean(np.abs(x) ** 2))) if x.size else 1.0
    sv = float(np.sqrt(np.mean(np.abs(v) ** 2))) if v.size else 1.0
    return 1e-2 * max(sx, 1.0) / max(sv, 1e-300)


def fd_jvp(
    fn: Callable[[Sequence[jax.Array]], Sequence[jax.Array]],
    xs: Sequence[np.ndarray],
    i: int | None,
    v,
    order: int = 1,
) -> tuple[list[np.ndarray], float]:
    """Finite-difference JVP of `fn` (leaves in, leaves out) w.r.t. leaf `i` along `v`
    (`i=None`: every leaf at once, `v` a list with one direction per leaf).

    `D(h) = (f(x + h v) − f(x − h v)) / 2h` has error `O(h²)`; the Richardson combination
    `(4 D(h/2) − D(h)) / 3` cancels the `h²` term, leaving `O(h⁴)`. The step is
    adaptive: estimates at `STEPS` steps ten times apart, and, among the steps that move
    the outputs by more than `RESOLVED` of their size (smaller ones only see rounding),
    the one that changes least to the next smaller step is kept (truncation error shrinks
    with `h`, rounding error grows); so an ill-conditioned point (a nearly singular matrix,
    whose derivative varies on a scale far below the entries') gets a step small enough, and
    a function of a tiny input near a large value (`expm` near zero) one large enough.
    Runs in float64. `order=2`: the second directional derivative `d²/dt² f(x + t v)` by
    `(f(x + h v) − 2 f(x) + f(x − h v)) / h²`, whose error is also `O(h²)` (even in `h`), so
    the same Richardson step and step search apply.

    Returns the estimate and its error estimate (that least change, norm over the outputs):
    where the estimates never settle, there is no derivative to estimate.
    """
    idx = range(len(xs)) if i is None else [i]
    vs = {j: np.asarray(v[j] if i is None else v) for j in idx}
    h = min(fd_step(np.asarray(xs[j]), vs[j]) for j in idx)

    def at(t):
        ys = list(xs)
        for j in idx:
            ys[j] = jnp.asarray(xs[j]) + t * jnp.asarray(vs[j])
        return [wide(o) for o in fn(ys)]

    mid = at(0.0)
    size = sum(float(np.linalg.norm(np.ravel(o))) for o in mid)
    norm = lambda t: sum(float(np.linalg.norm(np.ravel(a))) for a in t)

    def central(step):
        plus, minus = at(step), at(-step)
        if order == 2:
            diff = [p - 2 * c + m for p, c, m in zip(plus, mid, minus)]
            return [d / step**2 for d in diff], norm(diff) > RESOLVED_SECOND * size
        diff = [p - m for p, m in zip(plus, minus)]
        return [d / (2 * step) for d in diff], norm(diff) > RESOLVED * size

    def richardson(step):
        (d1, ok1), (d2, ok2) = central(step), central(step / 2)
        return [(4 * b - a) / 3 for a, b in zip(d1, d2)], ok1 and ok2

    ests = [richardson(h * 10.0**-k) for k in range(STEPS)]
    change = [
        norm([a - b for a, b in zip(e1, e2)]) if ok1 and ok2 else float("inf")
        for (e1, ok1), (e2, ok2) in itertools.pairwise(ests)
    ]
    best = int(np.argmin(change))
    return ests[best][0], change[best]
