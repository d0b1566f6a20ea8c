r"""The library's one differentiable linear solve: `solve(operator, b, solver)`.

Every rule that solves a linear system inside a derivative — a factored solve (linear
solves, inverses, Sylvester / Stein equations, the KKT systems of the QP layers, the polar
decomposition's Sylvester equation) or a matrix-free iteration (Krylov solves, the implicit
function theorem's $\partial_x R$) — goes through `solve`. It is
`jax.lax.custom_linear_solve` with

- the **operator** $x \mapsto Ox$, a function closing over the differentiable operands: the
  derivative of the solve in them, at any order, is JAX's differentiation of that function
  (one product), never of the solver;
- a **solver**: how to apply $O^{-1}$ (from stopped factors, or an iteration that uses the
  operator it is given) and how to apply $O^{-\top}$. JAX never differentiates a solver; it
  calls the transposed solver when it transposes the solve (reverse mode).

The transpose has one path (`solve(..., transpose=True)` and JAX's own transposition both
use `Solver.transposed`). Complex numbers need care there: JAX transposes without
conjugation (tangents and cotangents pair by $\operatorname{Re}\sum_i a_i b_i$), so the solve
it needs is with $O^\top$, not $O^H$. The two are related for any operator by
$(O^\top)^{-1} r = \overline{(O^H)^{-1}\bar r}$: a factored solver may give whichever it has
— `transpose` (Sylvester: $A^\top W + W B^\top$ is again a Sylvester operator), `adjoint`
(the Stein operator $X \mapsto AXA^H - X$, whose adjoint is again a Stein operator; a
Hermitian operator, whose adjoint is itself) — or declare the operator `symmetric`
($O^\top = O$). An iterative solver transposes its preconditioner; the operator's transpose
is `jax.linear_transpose` of the operator, taken here.

A solver is a callable `solver(matvec, r)` (the signature `custom_linear_solve` calls) with a
method `transposed(operator, like) -> Solver | None`, `None` meaning $O^\top = O$.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

__all__ = ["Factored", "Iterative", "cholesky", "inverse", "lu", "norm", "power_of_two", "solve"]


def _transpose(f: Callable, like) -> Callable:
    ft = jax.linear_transpose(f, like)
    return lambda v: ft(v)[0]


def _conjugated(f: Callable) -> Callable:
    return lambda r: jnp.conj(f(jnp.conj(r)))


@dataclasses.dataclass(frozen=True)
class Factored:
    r"""$O^{-1}$ from factors of a stopped copy of the operator (never differentiated).

    **Arguments:** `solve`: `r ↦ O⁻¹ r`; and exactly one of `transpose`: `r ↦ (Oᵀ)⁻¹ r`,
    `adjoint`: `r ↦ (Oᴴ)⁻¹ r` (for real data the two are the same), `symmetric=True`
    (`Oᵀ = O`).
    """

    solve: Callable
    transpose: Callable | None = None
    adjoint: Callable | None = None
    symmetric: bool = False

    def __post_init__(self):
        given = (self.transpose is not None, self.adjoint is not None, self.symmetric)
        if sum(given) != 1:
            raise ValueError("Factored: give exactly one of transpose, adjoint and symmetric=True.")

    def __call__(self, matvec, r):
        return self.solve(r)

    def transposed(self, operator, like) -> Factored | None:
        if self.symmetric:
            return None
        if self.transpose is not None:
            return Factored(self.transpose, transpose=self.solve)
        # Complex data (the right-hand side, or the operator's output: a complex operand):
        complex_ = jnp.iscomplexobj(like) or jnp.iscomplexobj(jax.eval_shape(operator, like))
        if not complex_:  # real: the adjoint is the transpose
            return (
                None if self.adjoint is self.solve else Factored(self.adjoint, transpose=self.solve)
            )
        return Factored(_conjugated(self.adjoint), transpose=self.solve)


@dataclasses.dataclass(frozen=True)
class Iterative:
    """A matrix-free iteration `iterate(matvec, r, M) -> z` with the preconditioner `M`
    (`None` for none); `symmetric=True` when the operator is (CG). Its transpose is the same
    iteration with the transposed operator and the transposed preconditioner."""

    iterate: Callable
    M: Callable | None = None
    symmetric: bool = False

    def __call__(self, matvec, r):
        return self.iterate(matvec, r, self.M)

    def transposed(self, operator, like) -> Iterative | None:
        if self.symmetric:
            return None
        return Iterative(self.iterate, None if self.M is None else _transpose(self.M, like))


def lu(factors, *, symmetric: bool = False) -> Factored:
    """The solver of `jax.scipy.linalg.lu_factor`'s `factors`."""
    apply = lambda trans: lambda r: jsl.lu_solve(factors, r, trans=trans)
    if symmetric:
        return Factored(apply(0), symmetric=True)
    return Factored(apply(0), transpose=apply(1))


def inverse(M) -> Factored:
    """The solver of an explicit inverse `M = O⁻¹` (products, no factors)."""
    return Factored(lambda r: M @ r, transpose=lambda r: M.T @ r)


def cholesky(lower) -> Factored:
    """The solver of a lower Cholesky factor (a symmetric operator)."""
    return Factored(lambda r: jsl.cho_solve((lower, True), r), symmetric=True)


def solve(operator: Callable, b, solver, *, transpose: bool = False):
    """`x` with `operator(x) = b` (`transpose=True`: `operatorᵀ(x) = b`), differentiable in
    what `operator` closes over and transposable, at every order.

    **Arguments:**

    - `operator`: `x ↦ O x`, a linear function closing over the differentiable operands.
    - `b`: the right-hand side, an array.
    - `solver`: a `Factored` or `Iterative` solver (or any callable `(matvec, r) -> z` with
      a `transposed(operator, like)` method).
    """
    solver_t = solver.transposed(operator, b)
    if transpose and solver_t is not None:
        operator, solver, solver_t = _transpose(operator, b), solver_t, solver
    if solver_t is None:
        return jax.lax.custom_linear_solve(operator, b, solver, symmetric=True)
    return jax.lax.custom_linear_solve(operator, b, solver, solver_t)


# -- scale-free iterations ------------------------------------------------------------------------
# Krylov iterations square their vectors' entries (norms, inner products): a right-hand side of
# scale 1e-170 in float64 (1e-20 in float32) has ‖r‖² = 0 and "converges" at z = 0; one of
# 1e160 (1e19) overflows. The iterations run on r / c, c = `power_of_two(r)` (exact), and scale
# the solution back; their tests use `norm`.
def norm(v):
    """`‖v‖₂` without over- or underflow (`jnp.linalg.norm` squares the entries)."""
    m = _max_abs(v)
    return m * jnp.linalg.norm(v / m)


def _max_abs(v):
    """The largest `|vᵢ|`, or 1 where it is 0 or not finite (a safe divisor)."""
    m = jnp.max(jnp.abs(v))
    return jnp.where((m > 0) & jnp.isfinite(m), m, jnp.ones_like(m))


def power_of_two(v):
    """A power of two in `(m, 2m]`, `m = max|vᵢ|` (1 for a zero or non-finite `v`): dividing
    by it is exact."""
    _, e = jnp.frexp(_max_abs(v))
    return jnp.ldexp(jnp.ones((), jnp.abs(v).dtype), e)


def scales(A: Callable, b):
    """`(c, d)`: powers of two near `max|bᵢ|` and `max|(A(b/c))ᵢ|` (one product), to run a
    Krylov iteration on `b / c` and the operator `A / d` (exact) and scale its solution back
    by `c / d`. `jax.scipy.sparse.linalg.gmres` returns 0 for a right-hand side of norm below
    about ε (1e-8 in float32, 1e-17 in float64); an operator of scale 1e-20 in float32 (1e-200
    in float64) under- or overflowed in every Krylov method."""
    c = power_of_two(b)
    return c, power_of_two(A(b / c))


def scaled(solve: Callable, A: Callable, b):
    """`solve(A, b)` run on `b / c` and `A / d` (see `scales`), its solution scaled back."""
    c, d = scales(A, b)
    return solve(lambda v: A(v) / d, b / c) * (c / d)
