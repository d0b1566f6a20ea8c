r"""Quadratic programs, differentiated through their KKT systems: `qp` (equality and
inequality constraints; its method, derivatives and degenerate cases are in its docstring) and
`eq_qp` (equality constraints only), derived here.

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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp, custom_vjp
from . import _arguments as _args
from . import _ipm, _linsolve
from ._failure import SolverError, error_if, nan_unless

__all__ = ["QPSolution", "SolverError", "eq_qp", "qp"]


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

    return _linsolve.solve(matvec, r, _linsolve.lu(factors, symmetric=True))


def _split(z, n):
    return z[:n], z[n:]


@custom_vjp(constant_argnames=("factors",))
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
    Q, c, A, b = _args.matrices("eq_qp", Q=Q, c=c, A=A, b=b)
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


registry.register(
    "eq_qp",
    reference=_eq_qp_ref,
    inputs=_qp_inputs,
    bench_inputs=lambda n: functools.partial(_qp_inputs, n=n, m=n // 4),
    bench_sizes=(40, 200, 800),
    projectors={"Q": lambda M: 0.5 * (M + M.T)},
    order=2,
    tags=("qp", "implicit"),
)(eq_qp)


# -- inequality-constrained QPs ---------------------------------------------------------------
class QPSolution(NamedTuple):
    """The result of `qp` (a pytree).

    **Fields:** `x` (the solution), `lam` (multipliers of `Gx ≤ h`, ≥ 0), `nu` (multipliers
    of `Ax = b`) — all three differentiable; `converged` (bool: the returned point satisfies
    the KKT conditions to `tol`, see `qp`), `steps` (int32: interior-point iterations) and
    `residual` (the largest relative KKT violation of the returned point; no derivative).
    """

    x: jax.Array
    lam: jax.Array
    nu: jax.Array
    converged: jax.Array
    steps: jax.Array
    residual: jax.Array


def _ineq_kkt(Q, A, G, M, E):
    """The KKT matrix of the QP with the inequalities `M` (bool) held active and the others
    dropped, and the equalities `E` (bool) kept and the others dropped, for
    `z = [x; λ; ν]`: `[[Q, GᵀM, AᵀE], [MG, −(I − M), 0], [EA, 0, −(I − E)]]` (symmetric; a
    dropped row reads `λᵢ = 0` or `νᵢ = 0`)."""
    m, p = G.shape[0], A.shape[0]
    Mf, Ef = M.astype(Q.dtype), E.astype(Q.dtype)
    GM, AE = G * Mf[:, None], A * Ef[:, None]
    rows = [
        jnp.concatenate([Q, GM.T, AE.T], axis=1),
        jnp.concatenate([GM, -jnp.diag(1 - Mf), jnp.zeros((m, p), Q.dtype)], axis=1),
        jnp.concatenate([AE, jnp.zeros((p, m), Q.dtype), -jnp.diag(1 - Ef)], axis=1),
    ]
    return jnp.concatenate(rows, axis=0)


def _ineq_operator(Q, A, G, M, E):
    """`z ↦ K z` for the matrix of `_ineq_kkt`, differentiable in `Q`, `A`, `G`."""
    n, m = Q.shape[0], G.shape[0]
    Mf, Ef = M.astype(Q.dtype), E.astype(Q.dtype)

    def matvec(z):
        x, lam, nu = z[:n], z[n : n + m], z[n + m :]
        return jnp.concatenate(
            [
                Q @ x + G.T @ (Mf * lam) + A.T @ (Ef * nu),
                Mf * (G @ x) - (1 - Mf) * lam,
                Ef * (A @ x) - (1 - Ef) * nu,
            ]
        )

    return matvec


def _ineq_rhs(c, b, h, M, E):
    return jnp.concatenate([-c, M.astype(h.dtype) * h, E.astype(b.dtype) * b])


def _independent(A, G, M):
    """The constraints to keep, `(E, M)`: a maximal linearly independent subset of the rows
    of `[A; G_M]` (the equalities and the active inequalities), chosen greedily in that
    order (equalities first, then inequalities by index) by Gram–Schmidt (orthogonalised
    twice). A row is dependent when what it adds to the span of the kept rows is below
    `√ε` of its norm: a duplicated or redundant constraint, which would make the KKT
    matrix singular. On an independent set this returns `(True…, M)` unchanged."""
    rows = jnp.concatenate([A, G], axis=0)
    candidate = jnp.concatenate([jnp.ones(A.shape[0], bool), M])
    if not rows.shape[0]:
        return candidate[: A.shape[0]], M
    n = rows.shape[1]
    eps = jnp.finfo(rows.dtype).eps

    def step(i, state):
        basis, count, keep = state
        row = rows[i]
        r = row - basis.T @ (basis @ row)
        r = r - basis.T @ (basis @ r)
        norm, size = jnp.linalg.norm(r), jnp.linalg.norm(row)
        new = candidate[i] & (size > 0) & (norm > jnp.sqrt(eps) * size) & (count < n)
        unit = r / jnp.where(new, norm, 1.0)
        basis = jnp.where(new, basis.at[jnp.minimum(count, n - 1)].set(unit), basis)
        return basis, count + new, keep.at[i].set(new)

    start = (jnp.zeros((n, n), rows.dtype), jnp.zeros((), jnp.int32), jnp.zeros_like(candidate))
    keep = jax.lax.fori_loop(0, rows.shape[0], step, start)[2]
    return keep[: A.shape[0]], keep[A.shape[0] :]


def _violation(Q, c, A, b, G, h, x, lam, nu):
    """The largest KKT violation, each relative to the size of the terms it compares:
    stationarity, equality and inequality feasibility, the sign of λ, complementarity."""
    inf = lambda v: jnp.max(jnp.abs(v), initial=0.0)
    Qx, Gx, Ax, Gl, An = Q @ x, G @ x, A @ x, G.T @ lam, A.T @ nu
    slack = h - Gx
    terms = [
        inf(Qx + c + Gl + An) / (1 + inf(Qx) + inf(c) + inf(Gl) + inf(An)),
        inf(Ax - b) / (1 + inf(Ax) + inf(b)),
        inf(jnp.minimum(slack, 0)) / (1 + inf(Gx) + inf(h)),
        inf(jnp.minimum(lam, 0)) / (1 + inf(lam)),
        inf(lam * slack) / ((1 + inf(lam)) * (1 + inf(Gx) + inf(h))),
    ]
    return jnp.max(jnp.stack(terms))


def _factor(Q, c, A, b, G, h, M, E):
    factors = jsl.lu_factor(_ineq_kkt(Q, A, G, M, E))
    return factors, jsl.lu_solve(factors, _ineq_rhs(c, b, h, M, E))


@functools.partial(jax.jit, static_argnames=("tol", "max_steps"))
def _active_set(Q, c, A, b, G, h, *, tol, max_steps):
    """The interior-point solve (on stopped data) and its outcome: the constraints held
    active, `M` (inequalities) and `E` (equalities), the LU factors of the KKT matrix for
    them, and the step count.

    `M` starts as `λᵢ ≥ sᵢ` at the last iterate (unambiguous where complementarity is strict:
    one of the two is O(1), the other O(μ)). The point of that active set — the solution of
    the KKT equations with it, exact to rounding — is then corrected, up to `_ROUNDS` times
    while it changes (a primal-dual active-set step): a constraint taken as inactive whose
    slack there is ≤ tol (violated, or *weakly active*: at its bound with a zero multiplier)
    is held active; one taken as active whose multiplier is < −tol is dropped. Every set is
    reduced to linearly independent constraints (`_independent`): a duplicated or redundant
    one is dropped (its multiplier 0). The factors are those of the final set (factored
    again only where it changed)."""
    n, m = Q.shape[0], G.shape[0]
    if m:
        # Redundant equalities (dependent rows of A) would make the interior point's Newton
        # systems singular: it sees them as zero rows.
        E = _independent(A, G, jnp.zeros(m, bool))[0]
        Ef = E.astype(A.dtype)
        it = _ipm.solve(Q, c, A * Ef[:, None], b * Ef, G, h, tol=tol, max_steps=max_steps)
        M, steps = it.lam >= it.s, it.steps
    else:
        M, steps = jnp.zeros((0,), bool), jnp.zeros((), jnp.int32)

    def corrected(M, z):
        x, lam = z[:n], z[n : n + m]
        Gx = G @ x
        scale = 1 + jnp.max(jnp.abs(Gx), initial=0.0) + jnp.max(jnp.abs(h), initial=0.0)
        lam_scale = 1 + jnp.max(jnp.abs(lam), initial=0.0)
        return _independent(A, G, jnp.where(M, lam >= -tol * lam_scale, h - Gx <= tol * scale))

    def changing(state):
        i, (_, M), _, z = state
        return (i < _ROUNDS) & jnp.any(corrected(M, z)[1] != M)

    def correct(state):
        i, (_, M), _, z = state
        E, M = corrected(M, z)
        return (i + 1, (E, M), *_factor(Q, c, A, b, G, h, M, E))

    E, M = _independent(A, G, M)
    start = (0, (E, M), *_factor(Q, c, A, b, G, h, M, E))
    _, (E, M), factors, _ = jax.lax.while_loop(changing, correct, start)
    return M, E, factors, steps


#: Active-set corrections after the interior point (each one LU factorisation, run only where
#: the set changes; none on a well-separated problem).
_ROUNDS = 3


@custom_jvp(constant_argnames=("ok",))
def _unless(ok, z):
    """`z`, with non-finite (NaN) derivatives where `ok` is false."""
    return z


@_unless.defjvp
def _unless_jvp(primals, tangents):
    ok, z = primals
    _, dz = tangents
    return z, nan_unless(ok, dz)


def _row_scales(M):
    """A power of two within a factor 2 of each row's largest `|Mᵢⱼ|` (1 for a zero row)."""
    return jax.vmap(_linsolve.power_of_two)(M) if M.shape[0] else jnp.ones((0,), M.dtype)


@functools.partial(jax.jit, static_argnames=("tol", "max_steps"))
def _qp(Q, c, A, b, G, h, *, tol, max_steps):
    """Equilibrate, solve, scale back. The interior point's tests (`tol·(1 + ‖b‖∞)`, ...), the
    active-set thresholds and the inertia test (whose `−1`s of inactive rows meet `Q`) all
    compare the data with 1: for Q, c of scale 1e-5 in float32 the solve stopped early on a
    wrong active set, for 1e3 it flagged the right answer as not converged, and so for rows
    of A, b or G, h scaled by 1e-3. The scaled problem — Q, c by σ, each constraint row by
    its own ρᵢ (powers of two, from stopped data: constants, so derivatives pass through the
    scalings exactly) — has the same x; its multipliers are λᵢ ρᵢ / σ (stationarity
    multiplied by σ), ν likewise. `residual` is the scaled problem's."""
    Q0, c0, A0, G0 = jax.lax.stop_gradient((Q, c, A, G))
    sigma = _linsolve.power_of_two(jnp.concatenate([jnp.ravel(Q0), c0]))
    rho_a, rho_g = _row_scales(A0), _row_scales(G0)
    sol = _qp_scaled(
        Q / sigma, c / sigma, A / rho_a[:, None], b / rho_a, G / rho_g[:, None], h / rho_g,
        tol=tol, max_steps=max_steps,
    )  # fmt: skip
    return sol._replace(lam=sol.lam * sigma / rho_g, nu=sol.nu * sigma / rho_a)


def _qp_scaled(Q, c, A, b, G, h, *, tol, max_steps):
    n, m = Q.shape[0], G.shape[0]
    Qs = 0.5 * (Q + Q.T)
    stopped = jax.lax.stop_gradient((Qs, c, A, b, G, h))
    M, E, factors, steps = _active_set(*stopped, tol=tol, max_steps=max_steps)
    # The KKT equations with the active set M are linear in z = [x; λ; ν]: K(Q, A, G) z =
    # [−c; M h; b]. Their solve is the value, and its derivative the implicit one — with the
    # factors above, at every order (custom_linear_solve differentiates the operator).
    z = _linsolve.solve(
        _ineq_operator(Qs, A, G, M, E),
        _ineq_rhs(c, b, h, M, E),
        _linsolve.lu(factors, symmetric=True),
    )
    x, lam, nu = z[:n], z[n : n + m], z[n + m :]
    residual = _violation(*stopped, *jax.lax.stop_gradient((x, lam, nu)))
    converged = jnp.isfinite(residual) & (residual <= tol) & _second_order(*stopped, M, E)
    z = _unless(converged, z)
    return QPSolution(z[:n], z[n : n + m], z[n + m :], converged, steps, residual)


def _second_order(Q, c, A, b, G, h, M, E):
    """Whether `x` is a strict minimiser with unique multipliers: `Q` positive definite on the
    null space of the active constraints' Jacobian `[A; G_M]`, which has full row rank. By
    Sylvester's law of inertia these hold iff the KKT matrix `K` of `_ineq_kkt` has exactly
    `n` positive and `p + m` negative eigenvalues (an inactive row contributes its −1), none
    zero to rounding (`N·ε` of the largest). An indefinite `Q` (a saddle point that
    satisfies the KKT conditions) fails, and so do a flat direction (non-unique `x`) and
    dependent active constraints (non-unique multipliers, where the derivative of `λ` does
    not exist). One symmetric eigendecomposition of `K`, on stopped data."""
    n = Q.shape[0]
    ev = jnp.linalg.eigvalsh(_ineq_kkt(Q, A, G, M, E))
    # Zero to rounding: N·ε of the largest (√ε flagged well-posed float32 problems whose
    # smallest eigenvalue is 2.4e-4 of the largest, n = 100, 60 constraints).
    small = ev.shape[0] * jnp.finfo(ev.dtype).eps * jnp.max(jnp.abs(ev), initial=1.0)
    return (jnp.sum(ev > small) == n) & (jnp.sum(ev < -small) == ev.shape[0] - n)


def _default_tol(dtype) -> float:
    return 1e-8 if jnp.finfo(dtype).bits == 64 else 1e-4


def qp(Q, c, A=None, b=None, G=None, h=None, *, tol=None, max_steps=50, throw=False):
    r"""Solve the convex quadratic program

    $$
    \min_x \tfrac12 x^\top Q x + c^\top x \quad\text{s.t.}\quad Ax = b,\; Gx \le h
    $$

    and return a `QPSolution` `(x, lam, nu, converged, steps, residual)`, differentiable in
    every argument through `x`, `lam` (the multipliers of $Gx \le h$) and `nu` (of
    $Ax = b$). Leading batch dimensions broadcast (`Q` `(..., n, n)`, `c` `(..., n)`,
    `A` `(..., p, n)`, ...), and the function runs under `jit` and `vmap`.

    **Arguments:** `Q` (n×n, positive semidefinite; only its symmetric part is used), `c`;
    `A`, `b` and `G`, `h` may be `None` (no equalities; no inequalities). `tol` (default
    `1e-8` in float64, `1e-4` in float32): the interior point's stopping tolerance and the
    test of the returned point; `max_steps`: the interior point's iteration cap; `throw`:
    raise `SolverError` at run time where the solve failed, instead of only flagging it.

    **Method.** A primal-dual interior point (Mehrotra's predictor–corrector,
    `jaxrules.rules._ipm`) finds the active set; the returned point is the solution of the KKT
    equations for that set, $K z = r$ with $z = [x; \lambda; \nu]$,

    $$
    K = \begin{bmatrix} Q & G^\top M & A^\top \\ M G & -(I - M) & 0 \\ A & 0 & 0 \end{bmatrix},
    \qquad r = \begin{bmatrix} -c \\ M h \\ b \end{bmatrix},
    $$

    $M$ the 0/1 diagonal of active constraints (active rows: $G_i x = h_i$; inactive rows:
    $\lambda_i = 0$). It is exact to rounding (a "polished" interior point), and `converged`
    certifies it: the KKT conditions — stationarity, $Ax = b$, $Gx \le h$, $\lambda \ge 0$,
    $\lambda \circ (h - Gx) = 0$ — hold to `tol`, each relative to the size of its terms
    (`residual`) — and so does the second-order condition: `Q` positive definite on the null
    space of the active constraints, which are linearly independent (the inertia of $K$; a
    saddle point of an indefinite `Q` satisfies the KKT conditions and is *not* converged).
    Then the solution is a strict minimiser with unique multipliers, and differentiable.

    **Derivatives** (OptNet's, Amos & Kolter 2017, in its exact form): differentiating the
    KKT conditions at the solution, with the active set locally constant,
    $K \dot z = \dot r - \dot K z$, i.e.
    $K[\dot x; \dot\lambda; \dot\nu] = -[\dot Q x + \dot c + \dot G^\top \lambda +
    \dot A^\top \nu;\; M(\dot G x - \dot h);\; \dot A x - \dot b]$, and for the VJP the same
    $K$ (symmetric) applied to the cotangents. Both go through `custom_linear_solve` with
    the LU factors of $K$ from the forward solve: the factorisation is reused by the JVP,
    the VJP and every higher order, and the interior-point iterations are never
    differentiated.

    **Degenerate points.** Where a constraint is *weakly active* ($G_i x = h_i$ with
    $\lambda_i = 0$) the solution is not differentiable; `qp` holds such a constraint
    **active**: its derivative is that of the QP with $G_i x = h_i$ as an equality — the
    one-sided derivative for perturbations that push against the constraint ($\dot x$
    keeps it satisfied to first order; $\dot\lambda_i$ may be negative). Constraints count
    as weakly active when their slack at the polished point is below `tol` (relative).
    **Redundant constraints.** Where the active constraints are linearly dependent (a
    duplicated row, one the sum of others, more than `n` of them) `x` may still be unique,
    but the multipliers are not and $K$ would be singular. `qp` keeps a maximal linearly
    independent subset — the equalities first, then the active inequalities by index, a row
    counting as dependent when it adds less than $\sqrt\varepsilon$ of its norm to the span
    of those kept — and treats the rest as inactive (multiplier 0; a dropped equality is
    still checked to hold). `x` is the solution; the multipliers are one valid choice; the
    derivative is that of the QP with the kept constraints, which is exact along every
    perturbation that keeps the data consistent (a duplicated row moving with its twin) and,
    across the kink a lone perturbation of one twin creates, one of the one-sided
    derivatives. `Q` singular on the kept constraints' null space (`x` not unique)
    remains a failure: `converged=False`.

    **Failure.** An infeasible or unbounded problem (or one not solved in `max_steps`)
    gives `converged=False`, NaN derivatives, and with `throw=True` a `SolverError`; the
    values are then the last attempt's, not a solution.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import qp
        >>> # min ½‖x‖² − x₀ − x₁  s.t.  x₀ + x₁ ≤ 1: the bound is active, x = (½, ½), λ = ½
        >>> sol = qp(jnp.eye(2), -jnp.ones(2), G=jnp.ones((1, 2)), h=jnp.ones(1))
        >>> [round(float(v), 6) for v in (*sol.x, *sol.lam)], bool(sol.converged)
        ([0.5, 0.5, 0.5], True)
        >>> # How x moves with h: dx/dh = (½, ½)
        >>> jax.jacobian(lambda h: qp(jnp.eye(2), -jnp.ones(2), G=jnp.ones((1, 2)), h=h).x)(
        ...     jnp.ones(1)).ravel().tolist()
        [0.5, 0.5]
    """
    given = {k: v for k, v in dict(Q=Q, c=c, A=A, b=b, G=G, h=h).items() if v is not None}
    _args.real("qp", **given)
    given = dict(zip(given, _args.matrices("qp", **given)))
    Q, c = given["Q"], given["c"]
    _args.square("qp", "Q", Q)
    n = Q.shape[-1]
    A, b = _constraint_pair("A", "b", given.get("A"), given.get("b"), n, Q.dtype)
    G, h = _constraint_pair("G", "h", given.get("G"), given.get("h"), n, Q.dtype)
    if jnp.shape(c)[-1:] != (n,):
        raise ValueError(f"qp: c must have shape (..., {n}) to match Q {Q.shape}, got {c.shape}.")
    tol = _default_tol(Q.dtype) if tol is None else float(tol)
    fn = functools.partial(_qp, tol=tol, max_steps=int(max_steps))
    args = {"Q": Q, "c": c, "A": A, "b": b, "G": G, "h": h}
    sol = _args.over_batch("qp", fn, args, (2, 1, 2, 1, 2, 1))
    if throw:
        error_if(
            ~sol.converged,
            f"qp: no solution satisfying the KKT conditions to tol = {tol:g} was found "
            f"(max_steps = {max_steps}): the problem is infeasible or unbounded (Q not "
            "positive definite on a direction the constraints leave free), Q is indefinite "
            "there (a saddle point), or the interior point needs more steps. "
            "The residual and step count are in the QPSolution returned with throw=False.",
        )
    return sol


def _constraint_pair(mat, vec, M, v, n, dtype):
    """`(M, v)` as arrays of `dtype`; `None` for both means no constraints (zero rows)."""
    if (M is None) != (v is None):
        raise ValueError(f"qp: give both {mat} and {vec}, or neither (got only one).")
    if M is None:
        return jnp.zeros((0, n), dtype), jnp.zeros((0,), dtype)
    if M.ndim < 2 or M.shape[-1] != n or v.ndim < 1 or v.shape[-1] != M.shape[-2]:
        raise ValueError(
            f"qp: {mat} must have shape (..., k, {n}) and {vec} shape (..., k) to match Q "
            f"(n = {n}), got {mat} {M.shape} and {vec} {v.shape}."
        )
    return M, v


def qp_layer(Q, c, A, b, G, h):
    """`qp`'s differentiable outputs `(x, lam, nu)`: the function registered as `"qp"`."""
    sol = qp(Q, c, A, b, G, h)
    return sol.x, sol.lam, sol.nu


def _qp_ref(Q, c, A, b, G, h):
    # The dense KKT solve on the active set, differentiated by JAX (the active set is a
    # discrete outcome of the solve, locally constant at the registered inputs).
    Qs = 0.5 * (Q + Q.T)
    tol = _default_tol(Q.dtype)
    M, E = _active_set(*jax.lax.stop_gradient((Qs, c, A, b, G, h)), tol=tol, max_steps=50)[:2]
    n, m = Q.shape[0], G.shape[0]
    z = jnp.linalg.solve(_ineq_kkt(Qs, A, G, M, E), _ineq_rhs(c, b, h, M, E))
    return z[:n], z[n : n + m], z[n + m :]


def _ineq_qp_inputs(key, dtype, n=5, p=1, m=4, active=2):
    """A QP with a known, strictly complementary solution: `x*`, `ν*` general, the first
    `active` inequalities active with `λ*ᵢ ∈ [0.5, 2]`, the others inactive with slack in
    [0.5, 2]; `c`, `b`, `h` are built to make `(x*, λ*, ν*)` satisfy the KKT conditions."""
    kq, ka, kg, kx, kn, kl, ks = jax.random.split(key, 7)
    Q = inputs.spd(n, cond=10.0)(kq, dtype)
    A = inputs.general((p, n))(ka, dtype)
    G = inputs.general((m, n))(kg, dtype)
    x = inputs.general((n,))(kx, dtype)
    nu = inputs.general((p,))(kn, dtype)
    lam = jnp.concatenate([inputs.positive((active,))(kl, dtype), jnp.zeros(m - active, dtype)])
    s = jnp.concatenate([jnp.zeros(active, dtype), inputs.positive((m - active,))(ks, dtype)])
    c = -(Q @ x + G.T @ lam + A.T @ nu)
    return {"Q": Q, "c": c, "A": A, "b": A @ x, "G": G, "h": G @ x + s}


registry.register(
    "qp",
    reference=_qp_ref,
    inputs=_ineq_qp_inputs,
    bench_inputs=lambda n: functools.partial(
        _ineq_qp_inputs, n=n, p=n // 10, m=n // 2, active=n // 5
    ),
    bench_sizes=(20, 100),
    order=2,
    tags=("qp", "implicit"),
)(qp_layer)
