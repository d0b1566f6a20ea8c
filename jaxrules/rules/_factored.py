r"""The pattern behind every factored rule of the library: a solve whose *values* come from a
factorisation and whose *derivatives* come from the operator.

A rule factors a stopped copy of its matrix once (LU, Cholesky, QR, Schur) and passes the
factors to its private custom rules as nondiff arguments. Inside the rules every solve is
`solve(operator, b, ...)`: `jax.lax.custom_linear_solve` with the operator $x \mapsto Ox$
closing over the differentiable operands (so the derivative of the solve with respect to
them, at any order, is JAX's own differentiation of a matrix product) and the factored solves,
which JAX never differentiates and calls instead of transposing the operator.

The transposed solve is where complex numbers need care. JAX transposes without conjugation
(tangents and cotangents pair by $\operatorname{Re}\sum_i a_i b_i$), so the solve JAX needs is
with $O^\top$, not $O^H$. The two are related for any operator by
$(O^\top)^{-1} r = \overline{(O^H)^{-1}\bar r}$: a rule may give whichever it has —
`transpose` (Sylvester: $A^\top W + W B^\top$ is again a Sylvester operator), `adjoint` (the
Stein operator $X \mapsto AXA^H - X$, whose adjoint is again a Stein operator; a Hermitian
operator, whose adjoint is itself) — or declare the operator `symmetric` ($O^\top = O$).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def solve(
    operator: Callable,
    b,
    solve: Callable,
    *,
    transpose: Callable | None = None,
    adjoint: Callable | None = None,
    symmetric: bool = False,
):
    """`x` with `operator(x) = b`, differentiable and transposable at every order.

    **Arguments:**

    - `operator`: `x ↦ O x`, closing over the differentiable operands.
    - `solve`: `r ↦ O⁻¹ r` from the stopped factors (never differentiated).
    - `transpose`: `r ↦ (Oᵀ)⁻¹ r`; or `adjoint`: `r ↦ (Oᴴ)⁻¹ r` (for real data the two
      are the same); or `symmetric=True` when `Oᵀ = O`. Exactly one.
    """
    if sum((transpose is not None, adjoint is not None, symmetric)) != 1:
        raise ValueError("solve: give exactly one of transpose, adjoint and symmetric=True.")
    solve_ = lambda _, r: solve(r)
    if symmetric:
        return jax.lax.custom_linear_solve(operator, b, solve_, symmetric=True)
    if transpose is None:
        complex_ = jnp.iscomplexobj(b) or jnp.iscomplexobj(jax.eval_shape(operator, b))
        if adjoint is solve and not complex_:  # Hermitian and real: symmetric
            return jax.lax.custom_linear_solve(operator, b, solve_, symmetric=True)
        transpose = (lambda r: jnp.conj(adjoint(jnp.conj(r)))) if complex_ else adjoint
    return jax.lax.custom_linear_solve(operator, b, solve_, lambda _, r: transpose(r))
