r"""Second-order jets for series and continued fractions whose derivatives in their parameters
must converge, not only their values (the incomplete gamma and beta functions).

A `Jet` holds an elementwise quantity $u(\theta)$ with its gradient and Hessian in $p$
parameters $\theta$: `v` (shape `S`), `g` (`S + (p,)`), `h` (`S + (p, p)`, or `None` for a
first-order jet). A jet of order 0 is a value alone (`g` has no columns, `h` is `None`): the
same loops then compute only the value, at the cost of the value. Sums, products, quotients
and `exp` follow the product and quotient rules:

$$(uw)' = u'w + uw', \quad (uw)'' = u''w + u'w'^\top + w'u'^\top + uw'',$$
$$f = u/w: \quad f' = (u' - f w')/w, \quad f'' = (u'' - f'w'^\top - w'f'^\top - f w'')/w.$$

This is forward-mode differentiation by hand, for one reason: a loop that sums a series or
evaluates a continued fraction must stop when the *derivatives* have converged, and JAX's
forward mode through a `while_loop` lets the loop's condition see only the values (the
derivatives of a series converge more slowly than the series). Here the loop carries the jets
and tests all of their components (Boik & Robison-Cox 1998 differentiate the incomplete beta
function's continued fraction the same way, by hand). The coefficients' own jets come from
JAX (`of`: `jax.jvp`, nested), so a series or fraction is written once, as plain JAX.

`continued_fraction` evaluates $a_1/(b_1 + a_2/(b_2 + \dots))$ by Steed's algorithm:
$D_1 = 1/b_1$, $f_1 = \Delta_1 = a_1 D_1$, then $D_n = 1/(b_n + a_n D_{n-1})$,
$\Delta_n = (b_n D_n - 1)\Delta_{n-1} = -a_n D_{n-1} D_n \Delta_{n-1}$ (the second form has no
cancellation), $f_n = f_{n-1} + \Delta_n$. `series` sums $\sum_k t_k$ with
$t_k = t_{k-1} r_k$. Both stop, elementwise, when every component of the last step ($\Delta_n$
or $t_k$) is below `tol` = 32 ε relative to the same component of the result: steps that tend
to 0, unlike the difference of two successive convergents, which stalls at rounding noise
(a component that is 0 in exact arithmetic would never pass a relative test on it). A floor of
`tol`·ε times the largest component of the same order lets a derivative at its own zero stop.
An element not converged after `max_terms` terms is NaN (the callers document their domains).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class Jet(NamedTuple):
    v: jax.Array
    g: jax.Array
    h: jax.Array | None

    @property
    def order(self) -> int:
        if self.g.shape[-1] == 0:
            return 0
        return 1 if self.h is None else 2


def _outer(u, w):
    return u[..., :, None] * w[..., None, :]


def _h(j: Jet, fn):
    return None if j.h is None else fn(j.h)


def const(v, like: Jet) -> Jet:
    """A constant (no dependence on θ) as a jet of `like`'s order and parameter count."""
    v = jnp.broadcast_to(v, like.v.shape).astype(like.v.dtype)
    return Jet(v, jnp.zeros_like(like.g), _h(like, jnp.zeros_like))


def add(u: Jet, w: Jet) -> Jet:
    return Jet(u.v + w.v, u.g + w.g, None if u.h is None else u.h + w.h)


def neg(u: Jet) -> Jet:
    return Jet(-u.v, -u.g, _h(u, lambda h: -h))


def mul(u: Jet, w: Jet) -> Jet:
    v = u.v * w.v
    g = u.g * w.v[..., None] + u.v[..., None] * w.g
    if u.h is None:
        return Jet(v, g, None)
    h = (
        u.h * w.v[..., None, None]
        + _outer(u.g, w.g)
        + _outer(w.g, u.g)
        + u.v[..., None, None] * w.h
    )
    return Jet(v, g, h)


def div(u: Jet, w: Jet) -> Jet:
    f = u.v / w.v
    g = (u.g - f[..., None] * w.g) / w.v[..., None]
    if u.h is None:
        return Jet(f, g, None)
    h = (u.h - _outer(g, w.g) - _outer(w.g, g) - f[..., None, None] * w.h) / w.v[..., None, None]
    return Jet(f, g, h)


def exp(u: Jet) -> Jet:
    """$e^u$, $(e^u)' = e^u u'$, $(e^u)'' = e^u(u'' + u'u'^\\top)$. Where $e^u$ underflows to 0
    its derivatives are 0 too (they are $e^u$ times a polynomial in $u$'s derivatives, which
    may overflow there: $u' \\sim 10^{22}$ in float32 at $x = 10^{30}$ made the Hessian
    $0\\cdot\\infty$ = NaN)."""
    e = jnp.exp(u.v)
    under = e == 0
    g = jnp.where(under[..., None], 0, e[..., None] * u.g)
    h = lambda h: jnp.where(under[..., None, None], 0, e[..., None, None] * (h + _outer(u.g, u.g)))
    return Jet(e, g, _h(u, h))


def of(fn: Callable, theta: jax.Array, order: int) -> Jet:
    """The jet of the elementwise `fn(theta)` (`theta`: shape `S + (p,)`) by JAX's forward
    mode: `p` JVPs for the gradient, `p²` nested ones for the Hessian; at order 0 the value
    alone (no JVP)."""
    if order == 0:
        v = fn(theta)
        return Jet(v, jnp.zeros((*v.shape, 0), v.dtype), None)
    p = theta.shape[-1]
    basis = [jnp.zeros_like(theta).at[..., i].set(1) for i in range(p)]

    def d(f, e):
        return lambda th: jax.jvp(f, (th,), (e,))[1]

    v = fn(theta)
    g = jnp.stack([d(fn, e)(theta) for e in basis], axis=-1)
    if order == 1:
        return Jet(v, g, None)
    h = jnp.stack(
        [jnp.stack([d(d(fn, ei), ej)(theta) for ej in basis], axis=-1) for ei in basis], axis=-2
    )
    return Jet(v, g, h)


def _negligible(step: Jet, total: Jet, tol) -> jax.Array:
    """Elementwise: whether every component of `step` is below `tol` relative to the same
    component of `total` (with a floor of `tol`·ε times the largest component of that order,
    so that a component at a zero of its derivative still converges)."""
    eps = jnp.finfo(total.v.dtype).eps

    def small(s, t, axes):
        floor = eps * jnp.max(jnp.abs(t), axis=axes, keepdims=True, initial=0) if axes else 0
        ok = jnp.abs(s) <= tol * (jnp.abs(t) + floor)
        return jnp.all(ok, axis=axes) if axes else ok

    ok = small(step.v, total.v, ()) & small(step.g, total.g, (-1,))
    if total.h is not None:
        ok &= small(step.h, total.h, (-2, -1))
    return ok


def _tol(dtype) -> float:
    return 32 * float(jnp.finfo(dtype).eps)


def _finish(result: Jet, moving, n, max_terms) -> Jet:
    failed = moving & (n >= max_terms)
    nan = lambda x, k: jnp.where(failed.reshape(failed.shape + (1,) * k), jnp.nan, x)
    return Jet(nan(result.v, 0), nan(result.g, 1), _h(result, lambda h: nan(h, 2)))


def _freeze(moving, new, old):
    """`new` where the element is still moving, `old` (its converged value) elsewhere."""

    def pick(x, y):
        return jnp.where(moving.reshape(moving.shape + (1,) * (x.ndim - moving.ndim)), x, y)

    return jax.tree.map(pick, new, old)


def continued_fraction(
    coefficients: tuple[Callable, Callable],
    theta: jax.Array,
    order: int,
    *,
    max_terms: int,
    min_terms: int = 3,
) -> Jet:
    r"""The jet in θ of $a_1/(b_1 + a_2/(b_2 + \dots))$, where `coefficients` is the pair of
    elementwise functions `(a, b)`, `a(n, theta)` → $a_n$ (`n` ≥ 1 a traced integer). See the
    module."""
    shape, dtype = theta.shape[:-1], theta.dtype
    a_of, b_of = coefficients
    tol = _tol(dtype)
    coef = lambda n: (
        of(lambda th: a_of(n, th), theta, order),
        of(lambda th: b_of(n, th), theta, order),
    )
    a1, b1 = coef(jnp.asarray(1))
    D = div(const(1, b1), b1)
    f = mul(a1, D)

    def cond(carry):
        n, *_, moving = carry
        return (n <= max_terms) & jnp.any(moving)

    def body(carry):
        n, D, step, f, moving = carry
        an, bn = coef(n)
        Dn = div(const(1, bn), add(bn, mul(an, D)))
        step = neg(mul(mul(an, mul(D, Dn)), step))
        new = add(f, step)
        done = _negligible(step, new, tol) & (n >= min_terms)
        return n + 1, Dn, step, _freeze(moving, new, f), moving & ~done

    init = (jnp.asarray(2), D, f, f, jnp.ones(shape, bool))
    n, *_, f, moving = lax.while_loop(cond, body, init)
    return _finish(f, moving, n, max_terms)


def series(
    first: Jet, ratio: Callable, theta: jax.Array, *, max_terms: int, min_terms: int = 3
) -> Jet:
    r"""The jet in θ of $\sum_{k \ge 0} t_k$, $t_0$ = `first`, $t_k = t_{k-1}$ ·
    `ratio(k, theta)` (elementwise, `k` ≥ 1 a traced integer). See the module."""
    tol = _tol(theta.dtype)

    def cond(carry):
        k, _, _, moving = carry
        return (k <= max_terms) & jnp.any(moving)

    def body(carry):
        k, t, total, moving = carry
        t = mul(t, of(lambda th: ratio(k, th), theta, first.order))
        new = add(total, t)
        done = _negligible(t, new, tol) & (k >= min_terms)
        return k + 1, t, _freeze(moving, new, total), moving & ~done

    init = (jnp.asarray(1), first, first, jnp.ones(first.v.shape, bool))
    k, _, total, moving = lax.while_loop(cond, body, init)
    return _finish(total, moving, k, max_terms)
