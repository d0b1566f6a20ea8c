r"""Equality-constrained quadratic programs, differentiated through their KKT system.

$$
x^\star = \arg\min_x \tfrac12 x^\top Q x + c^\top x \quad\text{s.t.}\quad A x = b,
$$

with $Q$ (n×n) symmetric, $A$ (m×n) of full row rank and $Q$ positive
definite on the null space of $A$. Stationarity of the Lagrangian
$\tfrac12 x^\top Q x + c^\top x + \lambda^\top (Ax - b)$ and feasibility give the KKT
system

$$
K \begin{bmatrix} x \\ \lambda \end{bmatrix} = \begin{bmatrix} -c \\ b \end{bmatrix},
\qquad K = \begin{bmatrix} Q & A^\top \\ A & 0 \end{bmatrix},
$$

which is nonsingular under those conditions (symmetric, indefinite).

**JVP.** Differentiating $K z = r$: $K \dot z = \dot r - \dot K z$, i.e.

$$
K \begin{bmatrix} \dot x \\ \dot\lambda \end{bmatrix}
= -\begin{bmatrix} \dot Q x + \dot c + \dot A^\top \lambda \\ \dot A x - \dot b \end{bmatrix}.
$$

**VJP.** With $K$ symmetric, solve $K [u; v] = [\bar x; \bar\lambda]$ (the same
factors); then $\langle [\bar x;\bar\lambda], \dot z\rangle = \langle [u; v], \dot r -
\dot K z\rangle$ gives $\bar c = -u$, $\bar b = v$,
$\bar A = -(v x^\top + \lambda u^\top)$ and $\bar Q = -u x^\top$, reported
**symmetrised**, $-\tfrac12(u x^\top + x u^\top)$: $Q$ is declared symmetric, its
tangents live in the symmetric matrices, and there the two agree.

The factorisation (LU of $K$, on a stopped copy) is computed once; inside the rules the
solves go through `jax.lax.custom_linear_solve` with the operator
$z \mapsto K(Q, A) z$, so every order reuses it (see `jaxrules.rules.linalg`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

import jaxrules as jr
from jaxrules import inputs

from . import _arguments as _args
from . import _factored

__all__ = ["eq_qp"]


def _kkt(Q, A):
    m = A.shape[0]
    top = jnp.concatenate([Q, A.T], axis=1)
    bottom = jnp.concatenate([A, jnp.zeros((m, m), A.dtype)], axis=1)
    return jnp.concatenate([top, bottom], axis=0)


@jax.jit
def _kkt_solve(Q, A, r, factors):
    """`K(Q, A)⁻¹ r` with the LU factors of K: differentiable and transposable at every
    order (the operator is differentiated, the factored solve never is)."""
    n = Q.shape[0]

    def matvec(z):
        x, lam = z[:n], z[n:]
        return jnp.concatenate([Q @ x + lam @ A, A @ x])

    return _factored.solve(matvec, r, lambda rhs: jsl.lu_solve(factors, rhs), symmetric=True)


def _split(z, n):
    return z[:n], z[n:]


@jr.custom_vjp(nondiff_argnames=("factors",))
def _eq_qp(Q, c, A, b, factors):
    z = jsl.lu_solve(factors, jnp.concatenate([-c, b]))
    return _split(z, Q.shape[0])


def _eq_qp_jvp(primals, tangents):
    Q, c, A, b, factors = primals
    dQ, dc, dA, db, _ = tangents
    n = Q.shape[0]
    x, lam = _split(_kkt_solve(Q, A, jnp.concatenate([-c, b]), factors), n)
    # K [ẋ; λ̇] = −[Q̇x + ċ + Ȧᵀλ ; Ȧx − ḃ]
    top = jnp.zeros_like(x)
    bottom = jnp.zeros_like(lam)
    if dQ is not None:
        top = top - 0.5 * (dQ + dQ.T) @ x
    if dc is not None:
        top = top - dc
    if dA is not None:
        top = top - lam @ dA
        bottom = bottom - dA @ x
    if db is not None:
        bottom = bottom + db
    if dQ is None and dc is None and dA is None and db is None:
        return (x, lam), None
    dz = _kkt_solve(Q, A, jnp.concatenate([top, bottom]), factors)
    return (x, lam), _split(dz, n)


def _eq_qp_fwd(Q, c, A, b, factors):
    z = _kkt_solve(Q, A, jnp.concatenate([-c, b]), factors)  # differentiable residual
    return _split(z, Q.shape[0]), (Q, A, factors, z)


def _eq_qp_bwd(res, cts):
    Q, A, factors, z = res
    n = Q.shape[0]
    x, lam = _split(z, n)
    x_bar, lam_bar = cts
    u, v = _split(_kkt_solve(Q, A, jnp.concatenate([x_bar, lam_bar]), factors), n)
    Q_bar = -0.5 * (jnp.outer(u, x) + jnp.outer(x, u))
    A_bar = -(jnp.outer(v, x) + jnp.outer(lam, u))
    return Q_bar, -u, A_bar, v, None


_eq_qp.defjvp(_eq_qp_jvp)
_eq_qp.defvjp(_eq_qp_fwd, _eq_qp_bwd)


def eq_qp(Q, c, A, b):
    r"""Solve $\min_x \tfrac12 x^\top Q x + c^\top x$ s.t. $Ax = b$; return
    `(x, lam)`, the solution and the multipliers of the constraints.

    **Arguments:** `Q` (n×n, symmetric; only its symmetric part is used), `c` (n,),
    `A` (m×n, full row rank, m ≤ n), `b` (m,). $Q$ must be positive definite on the
    null space of $A$ (it need not be positive definite everywhere).

    **Returns:** `(x, lam)`. The cotangent of `Q` is symmetrised (see the module).
    A singular KKT matrix (rank-deficient $A$, or $Q$ singular on the null space of
    $A$) gives non-finite values, as the LU solve does.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import eq_qp
        >>> x, lam = eq_qp(jnp.eye(2), jnp.zeros(2), jnp.array([[1.0, 1.0]]), jnp.array([1.0]))
        >>> x.tolist(), lam.tolist()
        ([0.5, 0.5], [-0.5])
    """
    _args.real("eq_qp", Q=Q, c=c, A=A, b=b)
    _args.square("eq_qp", "Q", Q, batched=False)
    n = Q.shape[0]
    if jnp.ndim(A) != 2 or A.shape[1] != n or A.shape[0] > n:
        raise ValueError(
            f"eq_qp: A must have shape (m, {n}) with m <= {n} to match Q {Q.shape}, got "
            f"{jnp.shape(A)}."
        )
    if jnp.shape(c) != (n,) or jnp.shape(b) != (A.shape[0],):
        raise ValueError(
            f"eq_qp: c must have shape ({n},) and b shape ({A.shape[0]},), got "
            f"{jnp.shape(c)} and {jnp.shape(b)}."
        )
    Qs = 0.5 * (Q + Q.T)
    factors = jsl.lu_factor(jax.lax.stop_gradient(_kkt(Qs, A)))
    return _eq_qp(Qs, c, A, b, factors)


def _eq_qp_ref(Q, c, A, b):
    n = Q.shape[0]
    Qs = 0.5 * (Q + Q.T)
    z = jnp.linalg.solve(_kkt(Qs, A), jnp.concatenate([-c, b]))
    return z[:n], z[n:]


def _qp_inputs(key, dtype, n=5, m=2):
    # Q symmetric and indefinite, but positive definite on the null space of A:
    # Q = S − AᵀA with S positive definite (on null(A), xᵀQx = xᵀSx > 0).
    kq, ka, kc, kb = jax.random.split(key, 4)
    A = inputs.general((m, n))(ka, dtype)
    S = inputs.spd(n, cond=4.0)(kq, dtype)
    Q = S - A.T @ A
    return {
        "Q": Q,
        "c": inputs.general((n,))(kc, dtype),
        "A": A,
        "b": inputs.general((m,))(kb, dtype),
    }


jr.register(
    "eq_qp",
    reference=_eq_qp_ref,
    inputs=_qp_inputs,
    bench_inputs=lambda n: functools.partial(_qp_inputs, n=n, m=n // 4),
    bench_sizes=(40, 200, 800),
    projectors={"Q": lambda M: 0.5 * (M + M.T)},
    order=2,
    tags=("qp", "implicit"),
)(eq_qp)
