r"""A primal-dual interior-point method for convex quadratic programs (Mehrotra's
predictor–corrector), the forward solver of `jaxrules.rules.qp`. No derivatives here: the rule
differentiates the KKT conditions at the solution, never these iterations.

The problem, its slack $s$ and multipliers $\lambda \ge 0$ (inequalities) and $\nu$
(equalities):

$$
\min_x \tfrac12 x^\top Q x + c^\top x \quad\text{s.t.}\quad Ax = b,\; Gx + s = h,\; s \ge 0,
$$

with residuals $r_d = Qx + c + G^\top\lambda + A^\top\nu$, $r_e = Ax - b$,
$r_i = Gx + s - h$ and the complementarity $s \circ \lambda$ driven to $\sigma\mu$,
$\mu = s^\top\lambda / m$. Newton's step on these equations, after eliminating
$\Delta s = -r_i - G\Delta x$ and $\Delta\lambda = D(G\Delta x + r_i) - r_c / s$ with
$D = \operatorname{diag}(\lambda / s)$, is the reduced system

$$
\begin{bmatrix} Q + G^\top D G & A^\top \\ A & 0 \end{bmatrix}
\begin{bmatrix} \Delta x \\ \Delta\nu \end{bmatrix}
= \begin{bmatrix} -r_d - G^\top (D r_i - r_c / s) \\ -r_e \end{bmatrix},
$$

LU-factored once per iteration and solved twice: the affine (predictor) step with
$r_c = s\circ\lambda$, then the corrector with
$r_c = s\circ\lambda + \Delta s^{\rm aff}\circ\Delta\lambda^{\rm aff} - \sigma\mu$,
$\sigma = (\mu^{\rm aff}/\mu)^3$ (Mehrotra 1992; Nocedal & Wright, *Numerical Optimization*,
§16.6). The step keeps $s, \lambda > 0$ (fraction 0.99 to the boundary). The starting point
is CVXOPT's: the least-squares point of the constraints, shifted into the positive orthant.

The equality rows must be linearly independent (`jaxrules.rules.qp` passes a redundant one
as a zero row, which the reduced system then ignores). Everything is fixed-shape and runs under `jit` and `vmap` (a `while_loop` with an iteration
cap; batched, each problem stops updating when it converges).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl


class Iterate(NamedTuple):
    x: jax.Array
    s: jax.Array
    lam: jax.Array
    nu: jax.Array
    steps: jax.Array


def _inf(v):
    return jnp.max(jnp.abs(v), initial=0.0)


def _max_step(v, dv):
    """The largest α > 0 with v + α·dv ≥ 0 (∞ where no component decreases)."""
    neg = dv < 0
    ratio = jnp.where(neg, -v / jnp.where(neg, dv, -1.0), jnp.inf)
    return jnp.min(ratio, initial=jnp.inf)


def _reduced(Q, A, G, D):
    # A zero row of A (a dropped, redundant equality) reads −Δνᵢ = −(r_e)ᵢ instead of
    # 0 = −(r_e)ᵢ, which would make the matrix singular.
    H = Q + (G.T * D[None, :]) @ G
    top = jnp.concatenate([H, A.T], axis=1)
    bottom = jnp.concatenate([A, -jnp.diag(jnp.all(A == 0, axis=1).astype(Q.dtype))], axis=1)
    return jsl.lu_factor(jnp.concatenate([top, bottom], axis=0))


def residuals(Q, c, A, b, G, h, it: Iterate):
    """`(r_d, r_e, r_i, μ)` at an iterate."""
    rd = Q @ it.x + c + G.T @ it.lam + A.T @ it.nu
    return rd, A @ it.x - b, G @ it.x + it.s - h, jnp.vdot(it.s, it.lam) / it.s.shape[0]


def converged(Q, c, A, b, G, h, it: Iterate, tol) -> jax.Array:
    """Primal and dual residuals below `tol` relative to the data's scale, and the duality
    gap `sᵀλ` (the sum, not the mean `μ`) below `tol` relative to the objective; and
    everything finite."""
    rd, re, ri, mu = residuals(Q, c, A, b, G, h, it)
    primal = jnp.maximum(_inf(re), _inf(ri)) <= tol * (1 + jnp.maximum(_inf(b), _inf(h)))
    dual = _inf(rd) <= tol * (1 + _inf(c))
    objective = 0.5 * jnp.vdot(it.x, Q @ it.x) + jnp.vdot(c, it.x)
    gap = mu * it.s.shape[0] <= tol * (1 + jnp.abs(objective))
    finite = jnp.all(jnp.isfinite(jnp.concatenate([it.x, it.s, it.lam, it.nu])))
    return primal & dual & gap & finite


def solve(Q, c, A, b, G, h, *, tol: float, max_steps: int) -> Iterate:
    """Run the method from CVXOPT's starting point; `G` must have at least one row."""
    n, m = Q.shape[0], G.shape[0]

    def newton(factors, D, s, rd, re, ri, rc):
        rhs = jnp.concatenate([-rd - G.T @ (D * ri - rc / s), -re])
        z = jsl.lu_solve(factors, rhs)
        dx, dnu = z[:n], z[n:]
        Gdx = G @ dx
        return dx, -ri - Gdx, D * (Gdx + ri) - rc / s, dnu

    # Start: min ½xᵀQx + cᵀx + ½‖Gx − h‖² s.t. Ax = b (the reduced system with D = I), then
    # s = h − Gx and λ = −s, each shifted to be positive where it is not.
    z = jsl.lu_solve(_reduced(Q, A, G, jnp.ones(m, Q.dtype)), jnp.concatenate([-c + G.T @ h, b]))
    x, nu = z[:n], z[n:]
    s = h - G @ x

    def shift(v):
        low = -jnp.min(v)
        return jnp.where(low < 0, v, v + 1 + low)

    start = Iterate(x, shift(s), shift(-s), nu, jnp.zeros((), jnp.int32))

    def cond(it):
        return (it.steps < max_steps) & ~converged(Q, c, A, b, G, h, it, tol)

    def body(it):
        x, s, lam, nu, k = it
        rd, re, ri, mu = residuals(Q, c, A, b, G, h, it)
        D = lam / s
        factors = _reduced(Q, A, G, D)
        dx, ds, dlam, dnu = newton(factors, D, s, rd, re, ri, s * lam)
        alpha = jnp.minimum(1.0, jnp.minimum(_max_step(s, ds), _max_step(lam, dlam)))
        mu_aff = jnp.vdot(s + alpha * ds, lam + alpha * dlam) / m
        sigma = (mu_aff / mu) ** 3
        rc = s * lam + ds * dlam - sigma * mu
        dx, ds, dlam, dnu = newton(factors, D, s, rd, re, ri, rc)
        alpha = jnp.minimum(1.0, 0.99 * jnp.minimum(_max_step(s, ds), _max_step(lam, dlam)))
        return Iterate(x + alpha * dx, s + alpha * ds, lam + alpha * dlam, nu + alpha * dnu, k + 1)

    return jax.lax.while_loop(cond, body, start)
