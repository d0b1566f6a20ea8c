"""Witnesses for the checker: what a derivative should be, computed independently of the rule.

1. JAX's own differentiation of the registered *reference* (in float64 at the same point).
2. Central finite differences of a function in float64, with a per-argument step and one
   Richardson extrapolation step — for rules without a reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def fd_step(x: np.ndarray, v: np.ndarray) -> float:
    """A central-difference step for ``x`` along ``v``, from their scales (float64)."""
    sx = float(np.sqrt(np.mean(np.square(x)))) if x.size else 1.0
    sv = float(np.sqrt(np.mean(np.square(v)))) if v.size else 1.0
    return 1e-3 * max(sx, 1.0) / max(sv, 1e-300)


def fd_jvp(
    fn: Callable[[Sequence[jax.Array]], Sequence[jax.Array]],
    xs: Sequence[np.ndarray],
    i: int | None,
    v,
) -> list[np.ndarray]:
    """Finite-difference JVP of ``fn`` (leaves in, leaves out) w.r.t. leaf ``i`` along ``v``
    (``i=None``: every leaf at once, ``v`` a list with one direction per leaf).

    ``D(h) = (f(x + h v) − f(x − h v)) / 2h`` has error ``O(h²)``; the Richardson combination
    ``(4 D(h/2) − D(h)) / 3`` cancels the ``h²`` term, leaving ``O(h⁴)``. Runs in float64.
    """
    idx = range(len(xs)) if i is None else [i]
    vs = {j: np.asarray(v[j] if i is None else v) for j in idx}
    h = min(fd_step(np.asarray(xs[j]), vs[j]) for j in idx)

    def at(t):
        ys = list(xs)
        for j in idx:
            ys[j] = jnp.asarray(xs[j]) + t * jnp.asarray(vs[j])
        return [np.asarray(o, np.float64) for o in fn(ys)]

    def central(step):
        plus, minus = at(step), at(-step)
        return [(p - m) / (2 * step) for p, m in zip(plus, minus)]

    d1, d2 = central(h), central(h / 2)
    return [(4 * b - a) / 3 for a, b in zip(d1, d2)]
