"""Roots of elementwise scalar functions, for the rules' solves and references: bisection,
and Newton's method kept inside a bracket. Plain JAX, never differentiated (the rules
differentiate their solutions implicitly)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def bisect(increasing, lo, hi, steps: int):
    """Where the elementwise increasing `increasing(t)` crosses 0 in `[lo, hi]`: `steps`
    halvings of the bracket, its midpoint."""

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = increasing(mid) > 0
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = lax.fori_loop(0, steps, step, (lo, hi))
    return 0.5 * (lo + hi)


def bracketed_newton(residual_slope, y0, lo, hi, rising, max_steps: int = 200):
    """The root of an increasing (`rising`, elementwise; else decreasing) function of `y` in
    the bracket `[lo, hi]`, `residual_slope(y)` giving its value and derivative: Newton's
    method, each step kept inside the bracket, which every evaluation narrows; a step that
    would leave it, or is not finite (an underflowed residual, log 0 = -∞), bisects it
    instead. Stops, elementwise, when the step is below ~4 ε |y| or the bracket is that
    narrow; NaN where that has not happened after `max_steps` (bisection alone would need
    ~55 steps over `betaincinv`'s [log tiny, log ½] in float64; Newton's method takes ~5-15)."""
    eps = jnp.finfo(y0.dtype).eps
    tol = lambda y: 4 * eps * jnp.maximum(jnp.abs(y), 1)

    def cond(carry):
        n, *_, moving = carry
        return (n < max_steps) & jnp.any(moving)

    def body(carry):
        n, y, lo, hi, moving = carry
        f, slope = residual_slope(y)
        above = jnp.where(rising, f > 0, f < 0)  # the root is below y
        lo_, hi_ = jnp.where(above, lo, y), jnp.where(above, y, hi)
        newton = y - f / slope
        inside = jnp.isfinite(newton) & (newton >= lo_) & (newton <= hi_)
        new = jnp.where(inside, newton, 0.5 * (lo_ + hi_))
        # Rounding bounds it: a step back onto an end already evaluated (the residual's noise
        # over a small slope: ~1e-15 / 0.02 in y for `betaincinv` at (40, 0.01, 0.3)) is as near as it gets.
        at_end = inside & ((newton == lo_) | (newton == hi_))
        done = (f == 0) | at_end | (jnp.abs(new - y) <= tol(y)) | (hi_ - lo_ <= tol(y))
        new = jnp.where(f == 0, y, new)
        keep = lambda u, v: jnp.where(moving, u, v)
        return n + 1, keep(new, y), keep(lo_, lo), keep(hi_, hi), moving & ~done

    init = (jnp.asarray(0), y0, lo, hi, jnp.ones(y0.shape, bool))
    _, y, _, _, moving = lax.while_loop(cond, body, init)
    return jnp.where(moving, jnp.nan, y)
