r"""Functions of general (non-symmetric) matrices, with derivatives JAX does not have, on every
platform: `sqrtm` (below; `jax.scipy.linalg.sqrtm` raises `NotImplementedError: schur` when
differentiated, jax-ml/jax#2478), `logm` and `fractional_matrix_power` (JAX has neither; see
their sections), and `polar` (finite at repeated singular values; see its section).

**`sqrtm`, primal.** Two paths, as for the matrix equations (`method`):

- `"schur"` (CPU): the complex Schur form $A = U T U^H$ (the real Schur form and its 2×2 blocks
  split by rotations, `matrix_equations._schur`), the upper triangular root $R = T^{1/2}$ by the
  Björck–Hammarling recurrence — $r_{ii} = t_{ii}^{1/2}$ and, column by column,
  $(R_{<j,<j} + r_{jj} I)\,r_{<j,j} = t_{<j,j}$ (from $(R^2)_{ij} = t_{ij}$), a triangular
  solve per column — and $X = U R U^H$ (Higham, *Functions of Matrices*, §6.2). Backward stable.
- `"newton"` (every platform): the scaled product form of the Denman–Beavers iteration
  (Higham, eq. 6.29): $Y_0 = M_0 = A$,
  $Y_{k+1} = \tfrac12 \mu_k Y_k (I + \mu_k^{-2} M_k^{-1})$,
  $M_{k+1} = \tfrac12\bigl(I + \tfrac12(\mu_k^2 M_k + \mu_k^{-2} M_k^{-1})\bigr)$, with
  $\mu_k = |\det M_k|^{-1/(2n)}$ while $\lVert M_k - I\rVert_F > 10^{-2}$, else 1;
  $Y_k \to A^{1/2}$, $M_k \to I$ quadratically. It is Newton's iteration for the sign of
  $\begin{pmatrix} 0 & A \\ I & 0 \end{pmatrix}$, whose sign is
  $\begin{pmatrix} 0 & A^{1/2} \\ A^{-1/2} & 0\end{pmatrix}$: one LU and one product a step.
  Stops once $\lVert M_k - I\rVert_F/\sqrt n \le \sqrt\varepsilon$ (the next $Y$ is then
  accurate to about $\varepsilon$), NaN after `_MAX_STEPS` (no convergence: an eigenvalue on
  the closed negative real axis).

`"auto"` (default) is `"schur"` on the CPU and `"newton"` elsewhere (`lax.platform_dependent`).

**`sqrtm`, derivative.** Differentiating $X X = A$: $X \dot X + \dot X X = \dot A$, a Sylvester equation
in $(X, X)$. Its operator $\dot X \mapsto X\dot X + \dot X X$ is invertible because the
principal root's eigenvalues $\sqrt{\lambda_i}$ lie in the open right half-plane (no two sum to
zero), and it is solved by `matrix_equations`' machinery: on the Schur path with the *primal's*
factors — $X = U R U^H$ shares $A$'s Schur vectors, so $(U, R)$ is a Schur form of $X$ and no
second decomposition is made — on the other platforms by the sign iteration (whose reach, two
spectra in the right half-plane, always holds here). The tangent map is linear in $\dot A$
through `custom_linear_solve`, so reverse mode is JAX's transpose of it (the adjoint equation
$X^\top W + W X^\top = \bar X$, solved with the same factors), and the rule is differentiable
again (it calls itself for $X$): second order is exact.

**`sqrtm`, domain.** The principal square root of a nonsingular $A$ with no eigenvalue on the closed
negative real axis $\mathbb R^-$; there the function is analytic. For a real $A$ with an eigenvalue
on $\mathbb R^-$ the principal root is not real: the output is NaN (pass a complex $A$ for a
complex root, as `scipy.linalg.sqrtm` returns). A singular $A$ is outside the domain too: the
Denman–Beavers loop inverts $A$ and the Schur recurrence divides by $r_{ii} + r_{jj}$, so the
output is NaN (SciPy returns a root where one exists, e.g. $\operatorname{diag}(1, 0)$), and no
derivative exists there (the Sylvester operator is singular). For a singular positive
semi-definite $A$ use `sqrtm_psd`: its value is exact there (its derivative, like $\sqrt{\cdot}$'s
at 0, is not finite along a zero eigenvalue).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args
from . import _linsolve
from . import matrix_equations as _me
from . import matrix_exponential as _mexp

__all__ = ["fractional_matrix_power", "logm", "polar", "sqrtm"]

#: Denman–Beavers steps at most; scaled, it needs about 8 in float64 for condition numbers up to
#: 1e12. A loop that reaches this bound has not converged: NaN.
_MAX_STEPS = 40
METHODS = ("auto", "schur", "newton")


def _sqrt_triu(T):
    """The principal root `R` of an upper triangular `T` (complex), `R @ R = T`: column `j`
    solves `(R[:j, :j] + r_jj I) r = T[:j, j]` (masked to a fixed shape: one triangular solve
    of size n per column, O(n³) in all)."""
    n = T.shape[0]
    d = jnp.sqrt(jnp.diagonal(T))
    idx = jnp.arange(n)

    def column(j, R):
        inside = idx < j
        M = jnp.where(inside[:, None] & inside[None, :], R, 0) + jnp.diag(
            jnp.where(inside, d[j], 1)
        )
        r = jsl.solve_triangular(M, jnp.where(inside, T[:, j], 0), lower=False)
        return R.at[:, j].set(jnp.where(inside, r, R[:, j]))

    return jax.lax.fori_loop(1, n, column, jnp.diag(d))


def _from_schur(R, Z, rot, real):
    """`U R Uᴴ` for `U = Z Gᴴ` (`matrix_equations._schur`'s factors): real products only."""
    Y = _me._rotate_cols(_me._rotate_rows(R, rot, adjoint=True), rot, adjoint=False)
    if real:
        Y = Y.real
    return (Z @ Y.astype(Z.dtype)) @ jnp.conj(Z.T)


@jax.jit
def _sqrtm_schur(A):
    """`(X, factors)`: the root by the Schur method and `(Z, R, rot)`, a Schur form of `X`."""
    Z, T, rot = _me._schur(A)
    R = _sqrt_triu(T)
    real = not jnp.iscomplexobj(A)
    X = _from_schur(R, Z, rot, real)
    if real:  # a real A with an eigenvalue on ℝ⁻ (a 1×1 block of the real Schur form): no real root
        d = jnp.diagonal(T)
        on_cut = jnp.any((d.imag == 0) & (d.real <= 0))
        X = jnp.where(on_cut, jnp.nan, X)
        R = jnp.where(on_cut, jnp.nan, R)  # and its derivatives, solved with R: never silent
    return X, (Z, R, rot)


@jax.jit
def _sqrtm_newton(A):
    """The root by the scaled product-form Denman–Beavers iteration (see the module)."""
    n = A.shape[0]
    eye = jnp.eye(n, dtype=A.dtype)
    eps = jnp.finfo(A.dtype).eps
    tol = jnp.sqrt(eps).astype(jnp.finfo(A.dtype).dtype)

    def step(state):
        Y, M, k, _ = state
        lu, piv = jsl.lu_factor(M)
        Mi = jsl.lu_solve((lu, piv), eye)
        off = jnp.sqrt(jnp.sum(jnp.abs(M - eye) ** 2) / n)
        logdet = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(lu))))
        mu = jnp.where(off > 1e-2, jnp.exp(-logdet / (2 * n)), 1.0).astype(A.dtype)
        Y = 0.5 * mu * (Y + (Y @ Mi) / mu**2)
        M = 0.5 * (eye + 0.5 * (mu**2 * M + Mi / mu**2))
        return Y, M, k + 1, off

    def going(state):
        _, _, k, off = state
        return (k < _MAX_STEPS) & ~(off <= tol)  # NaN: stop (the result is NaN)

    Y, _, _, off = jax.lax.while_loop(
        going, step, (A, A, jnp.zeros((), jnp.int32), jnp.asarray(jnp.inf, tol.dtype))
    )
    return jnp.where(off <= tol, Y, jnp.nan)


def _primal(A, method):
    """`(X, factors)` for the rule: factors of `X`'s Schur form where the Schur path runs,
    zeros of their structure elsewhere (`"auto"`), `None` for `"newton"`."""
    A = jax.lax.stop_gradient(A)
    if method == "newton":
        return _sqrtm_newton(A), None
    if method == "schur":
        return _sqrtm_schur(A)
    return jax.lax.platform_dependent(
        A, cpu=_sqrtm_schur, default=lambda A: (_sqrtm_newton(A), _me.schur_zeros(A))
    )


def _sylvester_method(method):
    return "sign" if method == "newton" else method


@custom_jvp(static_argnames=("method",), constant_argnames=("X0", "factors"), allow_complex=True)
def _sqrtm(A, X0, factors, *, method):
    # X0: the root of (a stopped copy of) A; factors: a Schur form of X0 (see _primal).
    return X0


@_sqrtm.defjvp
def _sqrtm_jvp(primals, tangents, *, method):
    A, X0, factors = primals
    dA = tangents[0]
    X = _sqrtm(A, X0, factors, method=method)  # X0, differentiable in A at the next order
    flags = _me.Flags(method=_sylvester_method(method), same=True)
    return X, _me._syl(X, X, dA, factors, factors, flags)


def _check_method(method):
    if method not in METHODS:
        raise ValueError(
            f"sqrtm: method must be one of {', '.join(map(repr, METHODS))}, got {method!r}. "
            "'auto' uses the Schur method on the CPU and the Denman–Beavers iteration on GPU "
            "and TPU (decided where the program is lowered)."
        )


def _sqrtm_one(A, method):
    if A.shape[-1] == 0:
        return A
    return _sqrtm(A, *_primal(A, method), method=method)


def sqrtm(A, *, method="auto"):
    r"""The principal square root $X = A^{1/2}$ ($X^2 = A$, eigenvalues in the open right
    half-plane) of `A` `(..., n, n)`, real or complex, with derivatives of every order in both
    modes (see the module for the derivation and the domain).

    `method` (static): `"schur"` (CPU only: JAX lowers its Schur decomposition on the CPU),
    `"newton"` (the Denman–Beavers iteration: every platform), `"auto"` (default: `"schur"`
    on the CPU, `"newton"` elsewhere). A real `A` with an eigenvalue on the closed negative
    real axis has no real principal root: NaN (pass a complex `A`); so is a singular `A`
    (for a singular positive semi-definite one, `sqrtm_psd`).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import sqrtm
        >>> A = jnp.array([[4.0, 1.0], [0.0, 9.0]])
        >>> X = sqrtm(A)
        >>> jnp.allclose(X @ X, A).item(), [round(float(v), 4) for v in X.ravel()]
        (True, [2.0, 0.2, 0.0, 3.0])
        >>> g = jax.grad(lambda A: jnp.trace(sqrtm(A)))(A)   # tr(A^(1/2))' = ½ A^(-1/2)ᵀ
        >>> jnp.allclose(g, 0.5 * jnp.linalg.inv(X).T).item()
        True
    """
    _check_method(method)
    (A,) = _args.matrices("sqrtm", A=A)
    _args.square("sqrtm", "A", A)
    return _args.over_batch("sqrtm", functools.partial(_sqrtm_one, method=method), {"A": A}, (2,))


def fractional_matrix_power(A, p):
    r"""$A^p = e^{p \log A}$ for `A` `(..., n, n)` (the principal power: `logm`'s domain) and a
    scalar `p` (real or complex; a Python number or a traced value), with derivatives in `A`
    and `p` of every order, on every platform. JAX has no `fractional_matrix_power`.

    The composition `expm(p * logm(A))`: its derivative in `A` is `logm`'s rule followed by
    `expm`'s (its Fréchet derivative, from the Padé pieces), and in `p` it is
    $\log A \, A^p$. Values agree with
    `scipy.linalg.fractional_matrix_power` (a Schur–Padé method) to about $10^{-13}$ relative
    for moderate $|p|\,\lVert\log A\rVert$; for an integer power, repeated products are cheaper.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import fractional_matrix_power, sqrtm
        >>> A = jnp.array([[4.0, 1.0], [0.0, 9.0]])
        >>> jnp.allclose(fractional_matrix_power(A, 0.5), sqrtm(A), atol=1e-5).item()
        True
        >>> dp = jax.grad(lambda p: jnp.trace(fractional_matrix_power(A, p)))(0.5)
        >>> round(float(dp), 3)   # d/dp (4^p + 9^p) at ½: 2 log 4 + 3 log 9
        9.364
    """
    (A,) = _args.matrices("fractional_matrix_power", A=A)
    _args.square("fractional_matrix_power", "A", A)
    if jnp.ndim(p) != 0:
        raise ValueError(
            f"fractional_matrix_power: p must be a scalar, got shape {jnp.shape(p)}. For "
            "several powers, jax.vmap over p."
        )
    L = logm(A)
    p = jnp.asarray(p)
    # p takes A's precision (a float64 p must not widen a float32 A); a complex p makes the
    # result complex (the power is holomorphic in p as in A).
    dtype = jnp.result_type(L.dtype, jnp.complex64) if jnp.iscomplexobj(p) else L.dtype
    return _mexp.expm(p.astype(dtype) * L.astype(dtype))


# -- the polar decomposition ---------------------------------------------------------------------
# A = U P (m×n, m ≥ n, full column rank): U with orthonormal columns, P = (AᵀA)^(1/2) symmetric
# positive definite. From the thin SVD A = W Σ Vᵀ: U = W Vᵀ, P = V Σ Vᵀ.
# Derivative (no SVD derivative: finite at repeated singular values, where JAX's through `svd`
# has 1/(σᵢ² − σⱼ²)):
#   P² = AᵀA  ⇒  P Ṗ + Ṗ P = ȦᵀA + AᵀȦ — in the basis V, (σᵢ + σⱼ) Ṗ'ᵢⱼ = S'ᵢⱼ with
#     S' = Vᵀ(ȦᵀA + AᵀȦ)V: a sum of singular values, never a difference;
#   U = A P⁻¹  ⇒  U̇ = (Ȧ − U Ṗ) P⁻¹.
# Both solves go through `custom_linear_solve` with the operators Y ↦ PY + YP and Y ↦ YP (P
# differentiable, both self-adjoint for symmetric P) and the stopped factors (V, σ): the map is
# linear in Ȧ (reverse mode is its transpose) and, with (U, P) from the rule itself, exact at
# every order.
def _polar_svd(A):
    A = jax.lax.stop_gradient(A)
    # LAPACK's SVD of a matrix with an infinite entry never returns (JAX 0.10.2 and 0.12 on the
    # CPU, float32 and float64; NaN entries return NaN): such an A is decomposed as zeros, and
    # its value and derivatives are NaN.
    finite = jnp.all(jnp.isfinite(A))
    W, s, Vt = jnp.linalg.svd(jnp.where(finite, A, 0), full_matrices=False)
    W, s, Vt = (jnp.where(finite, M, jnp.nan) for M in (W, s, Vt))
    V = Vt.T
    # Rank deficiency to working precision (as `lstsq`): U is not unique and P = |A| has a
    # kink, so no derivative exists; the rule's 1/σ would give huge finite numbers from a σ of
    # rounding size. NaN instead, in every derivative (the value, one valid U, is kept).
    tol = jnp.finfo(s.dtype).eps * max(A.shape) * s[0]
    return W @ Vt, (V * s[None, :]) @ Vt, V, jnp.where(jnp.all(s > tol), s, jnp.nan)


@custom_jvp(constant_argnames=("U0", "P0", "V", "s"))
def _polar(A, U0, P0, V, s):
    return U0, P0


@_polar.defjvp
def _polar_jvp(primals, tangents):
    A, U0, P0, V, s = primals
    dA = tangents[0]
    U, P = _polar(A, U0, P0, V, s)  # (U0, P0), differentiable in A at the next order
    in_basis = lambda f: lambda R: V @ f(V.T @ R @ V) @ V.T
    sylvester = _linsolve.Factored(
        in_basis(lambda R: R / (s[:, None] + s[None, :])), symmetric=True
    )
    dP = _linsolve.solve(lambda Y: P @ Y + Y @ P, dA.T @ A + A.T @ dA, sylvester)
    times_P = _linsolve.Factored(lambda R: R @ V @ (V.T / s[:, None]), symmetric=True)
    dU = _linsolve.solve(lambda Y: Y @ P, dA - U @ dP, times_P)
    return (U, P), (dU, dP)


def _polar_one(A):
    return _polar(A, *_polar_svd(A))


def polar(A):
    r"""The polar decomposition $A = UP$ of a real `A` `(..., m, n)`, $m \ge n$, of full column
    rank: `(U, P)` with $U^\top U = I$ and $P = (A^\top A)^{1/2}$ symmetric positive definite
    (`jax.scipy.linalg.polar(A, side="right")`), from one SVD, with derivatives of every order
    in both modes — finite and exact at repeated singular values (e.g. $A$ a multiple of an
    orthogonal matrix), where JAX's derivative through its SVD is not, and where its default
    QDWH method has no reverse mode at all (a `while_loop`). Derivation: see the module.
    Rank-deficient `A` (a singular value below $\varepsilon\max(m, n)\sigma_1$): one valid
    `(U, P)`, and every derivative NaN — none exists there (`U` is not unique, and
    $P = (A^\top A)^{1/2}$ has a kink, as $|x|$ at 0). An `A` with an infinite entry: NaN
    (LAPACK's SVD does not return for some).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import polar
        >>> A = 2.0 * jnp.array([[0.6, -0.8], [0.8, 0.6]])   # singular values 2, 2
        >>> U, P = polar(A)
        >>> P.round(6).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
        >>> g = jax.grad(lambda A: jnp.trace(polar(A)[0]))(A)
        >>> bool(jnp.all(jnp.isfinite(g)))
        True
    """
    _args.real("polar", A=A)
    (A,) = _args.matrices("polar", A=A)
    shape = jnp.shape(A)
    if len(shape) < 2 or shape[-2] < shape[-1]:
        raise ValueError(
            f"polar: A must be a matrix of shape (..., m, n) with m >= n (as many rows as "
            f"columns, or more), got shape {shape}. For a wide matrix, take polar(A.T) and "
            "transpose."
        )
    return _args.over_batch("polar", _polar_one, {"A": A}, (2,))


# -- the matrix logarithm ------------------------------------------------------------------------
# Inverse scaling and squaring (Kenney & Laub; Higham, *Functions of Matrices*, §11.5):
#   log A = 2^s log(A^(1/2^s)),
# with s square roots (Denman–Beavers, `_sqrtm_newton`) until ‖A^(1/2^s) − I‖₁ ≤ θ, and
#   log(I + Y) = ∫₀¹ Y (I + tY)⁻¹ dt ≈ r(Y) = Σⱼ wⱼ Y (I + xⱼY)⁻¹,
# the 8-point Gauss–Legendre rule on [0, 1] — the [8/8] Padé approximant of log(1 + y) in partial
# fractions. θ is the largest ‖Y‖₁ at which r's backward error is at most the unit roundoff u:
# with h(y) = (e^{r(y)} − 1 − y)/y = Σₖ cₖ yᵏ, e^{r(Y)} = I + Y + ΔY with ‖ΔY‖ ≤ Σₖ |cₖ| ‖Y‖ᵏ ‖Y‖,
# and Σₖ |cₖ| θᵏ = u gives θ = 0.3287 for u = 2⁻⁵³ (float64) and 0.7832 for u = 2⁻²⁴ (float32;
# the backward-error bound of Al-Mohy & Higham 2012, §2, taken with the 1-norm;
# `tests/test_rules_matrix_functions.py` recomputes Σₖ |cₖ| θᵏ with mpmath). Each root the bound
# does not need costs a Denman–Beavers loop and a Sylvester solve in the derivative: θ = 1/4
# took one root more than needed for the benchmark's n = 200 input in float64, two in float32.
# Derivative: the same composition, differentiated (`_logm_tangent`). Each root step is `sqrtm`'s
# rule (its Sylvester equation R_k Ė_k + Ė_k R_k = Ė_{k−1}), and the quadrature's derivative is
#   Σⱼ wⱼ (I + xⱼY)⁻¹ Ẏ (I + xⱼY)⁻¹
# (from Y (I + xY)⁻¹ = (I − (I + xY)⁻¹)/x): exactly the Fréchet derivative of the approximant, and
# the quadrature of L_log(I + Y, Ẏ) = ∫₀¹ (I + tY)⁻¹ Ẏ (I + tY)⁻¹ dt. The roots are computed once,
# on a stopped copy, and enter the differentiated composition as constants of `sqrtm`'s rule
# (which returns them as its value and differentiates them by its Sylvester equation), so the
# derivative costs s Sylvester solves (one inverse per sign step: both coefficients are R_k; the
# `_LOG_ROOTS − s` others have I for R_k, are discarded, and take no step: a `cond` would skip
# them but cannot be transposed when batched) and products with the quadrature's inverses, which
# the primal has for free: it computes Tⱼ = (I + xⱼY)⁻¹ Y, and (I + xⱼY)⁻¹ = I − xⱼTⱼ — never a
# second root nor a factorisation (products, not the triangular solves of LU factors: 2–3×
# faster for the same flops on this CPU). The composition (a `scan` over `_LOG_ROOTS` steps) is
# exact at every order and transposable (reverse mode), also batched: the inverses only solve,
# the operators `I + xⱼY` stay differentiable. This is the algorithm of
# Al-Mohy, Higham & Relton (2013, "Computing the Fréchet derivative of the matrix logarithm")
# with Denman–Beavers roots, on every platform: LU and matrix products only.
# At most 24 roots: ‖log A‖₁ up to θ 2²⁴ ≈ 5.5e6 (float32: 1.3e7), which only very non-normal
# matrices need (a 6 × 6 triangular one with eigenvalues in 0.5–2 and off-diagonal entries of
# ~30 takes 18: ‖log A‖₁ = 7e4; with 12, as before, it was NaN). The unused steps cost next
# to nothing (n = 200: JVP 79 → 80 ms); the roots' buffer is 24 n² numbers.
_LOG_ROOTS = 24
#: θ by precision (see above): float64 and complex128, else float32's (also safe for float16).
_LOG_THETA = {"double": 0.3287, "single": 0.7832}


def _log_theta(dtype):
    return _LOG_THETA["double" if jnp.finfo(dtype).bits == 64 else "single"]


_GL_T, _GL_V = np.polynomial.legendre.leggauss(8)
# Nodes and weights on [0, 1], as Python floats (weakly typed: they keep float32 float32).
_GL_X, _GL_W = tuple(map(float, (_GL_T + 1) / 2)), tuple(map(float, _GL_V / 2))


def _log_quadrature(Y):
    """`(Σⱼ wⱼ Tⱼ ≈ log(I + Y), inverses)` with `Tⱼ = (I + xⱼY)⁻¹ Y`: `inverses[j]`
    `= (I + xⱼY)⁻¹ = I − xⱼTⱼ`, kept for the derivative (`_logm_tangent`)."""
    eye = jnp.eye(Y.shape[-1], dtype=Y.dtype)
    T = [jnp.linalg.solve(eye + x * Y, Y) for x in _GL_X]
    X = functools.reduce(jnp.add, [w * t for t, w in zip(T, _GL_W)])
    return X, jnp.stack([eye - x * t for t, x in zip(T, _GL_X)])


@jax.jit
def _logm_primal(A):
    """`(X, roots, s, inverses)` on a stopped `A`: `roots[k]` = A^(1/2^(k+1)) for `k < s`;
    `inverses`: the quadrature's `(I + xⱼY)⁻¹` (`_log_quadrature`)."""
    n = A.shape[0]
    eye = jnp.eye(n, dtype=A.dtype)
    theta = _log_theta(A.dtype)

    def going(state):
        R, k, _ = state
        return (k < _LOG_ROOTS) & ~(_mexp._norm1(R - eye) <= theta)  # NaN: go on, to NaN

    def root(state):
        R, k, roots = state
        R = _sqrtm_newton(R)
        return R, k + 1, roots.at[k].set(R)

    roots = jnp.zeros((_LOG_ROOTS, n, n), A.dtype)
    R, s, roots = jax.lax.while_loop(going, root, (A, jnp.zeros((), jnp.int32), roots))
    X, inverses = _log_quadrature(R - eye)
    X = (2.0**s).astype(A.dtype) * X
    return jnp.where(_mexp._norm1(R - eye) <= theta, X, jnp.nan), roots, s, inverses


@jax.jit  # eager calls would trace and lower the scan's fresh closures again at every call
def _logm_tangent(A, dA, roots, s, inverses):
    """`L_log(A, Ȧ)` through the composition `2^s q(A^(1/2^s) − I)` (`q` the quadrature):
    each root `R_k = sqrtm(R_{k−1})` is `sqrtm`'s rule at its precomputed value (differentiable
    in `A` at the next order), its tangent `R_k Ė_k + Ė_k R_k = Ė_{k−1}`; then
    `Σⱼ wⱼ Qⱼ⁻¹ Ė_s Qⱼ⁻¹` with `Qⱼ = I + xⱼ(R_s − I)`, each solve a product with the
    primal's `Qⱼ⁻¹` (the operator `Qⱼ` itself stays differentiable in `A`). Linear in `Ȧ`,
    transposable."""
    eye = jnp.eye(A.shape[-1], dtype=A.dtype)
    flags = _me.Flags(method="sign", same=True)

    def step(RE, k):
        R, E = RE
        take = k < s
        root = lambda R: _sqrtm(R, roots[k], None, method="newton")
        R = jax.lax.cond(take, root, lambda R: R, R)
        # The tangent by a select, not a `cond`: JAX cannot transpose a `cond` whose predicate
        # is batched (its batching rule puts a `stop_gradient` on the operands), and reverse
        # mode of a batched `logm` needs exactly that. Past `s`, R is the last root and this
        # step's solve, with I for R (one sign step), is discarded. (The root itself stays a
        # `cond`: it is not linear, and with a select its derivative at the next order was
        # lost — measured, not understood.)
        Rs = jnp.where(take, R, eye)
        E = jnp.where(take, _me._syl(Rs, Rs, E, None, None, flags), E)
        return (R, E), None

    (R, E), _ = jax.lax.scan(step, (A, dA), jnp.arange(_LOG_ROOTS))
    Y = R - eye
    terms = []
    for j, (x, w) in enumerate(zip(_GL_X, _GL_W)):
        Q = lambda M, x=x: (eye + x * Y) @ M
        solver = _linsolve.inverse(inverses[j])
        Z = _linsolve.solve(Q, E, solver)  # Q⁻¹ Ė
        terms.append(w * _linsolve.solve(Q, Z.T, solver, transpose=True).T)  # Q⁻¹ Ė Q⁻¹
    return (2.0**s).astype(A.dtype) * functools.reduce(jnp.add, terms)


@custom_jvp(constant_argnames=("X0", "roots", "s", "inverses"), allow_complex=True)
def _logm(A, X0, roots, s, inverses):
    return X0


@_logm.defjvp
def _logm_jvp(primals, tangents):
    A, X0, roots, s, inverses = primals
    X = _logm(A, X0, roots, s, inverses)  # X0, differentiable in A at the next order
    return X, _logm_tangent(A, tangents[0], roots, s, inverses)


def _logm_one(A):
    if A.shape[-1] == 0:
        return A
    return _logm(A, *_logm_primal(jax.lax.stop_gradient(A)))


def logm(A):
    r"""The principal matrix logarithm $X = \log A$ ($e^X = A$, eigenvalues with imaginary parts
    in $(-\pi, \pi)$) of `A` `(..., n, n)`, real or complex, with derivatives of every order in
    both modes, on every platform. JAX has no `logm`.

    Inverse scaling and squaring: square roots (Denman–Beavers) until $A^{1/2^s}$ is within
    θ of $I$ (θ where the quadrature's backward error reaches the unit roundoff: 0.33 in
    float64, 0.78 in float32), then the 8-point Gauss–Legendre (Padé [8/8]) quadrature of
    $\log(I + Y) = \int_0^1 Y(I + tY)^{-1}dt$. The derivative differentiates that composition
    with `sqrtm`'s rule at each root (one Sylvester solve per root, the roots computed once) —
    see the module. **Domain**: no eigenvalue on the closed negative real axis, where the
    principal logarithm is not defined (or, for a real `A`, not real): there the output is NaN,
    value and derivatives. NaN too where more than 24 roots would be needed,
    $\|\log A\|_1 \gtrsim 5\cdot10^6$, which only extremely non-normal matrices reach.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import logm
        >>> A = jnp.array([[1.0, 2.0], [0.0, 3.0]])
        >>> X = logm(A)
        >>> jnp.allclose(jax.scipy.linalg.expm(X), A, atol=1e-5).item()
        True
        >>> g = jax.grad(lambda A: jnp.trace(logm(A)))(A)   # tr log A = log det A: A⁻ᵀ
        >>> jnp.allclose(g, jnp.linalg.inv(A).T, atol=1e-5).item()
        True
    """
    (A,) = _args.matrices("logm", A=A)
    _args.square("logm", "A", A)
    return _args.over_batch("logm", _logm_one, {"A": A}, (2,))


# -- registration ----------------------------------------------------------------------------


def _sqrtm_ref(A, method=None):
    """Plain JAX, differentiable by JAX: the unscaled Denman–Beavers iteration, 30 fixed steps
    on `A / c` (`c` = its Frobenius norm / √n, so that the spectrum is of order one), times
    `√c`. The registered points are positive stable with condition ~10: converged well before
    30 steps, in value and derivatives."""
    del method  # one reference for every path
    n = A.shape[-1]
    c = jnp.sqrt(jnp.sum(jnp.abs(A) ** 2) / n)
    Y, Z = A / c, jnp.eye(n, dtype=A.dtype)

    def step(_, YZ):
        Y, Z = YZ
        return 0.5 * (Y + jnp.linalg.inv(Z)), 0.5 * (Z + jnp.linalg.inv(Y))

    Y, _ = jax.lax.fori_loop(0, 30, step, (Y, Z))
    return jnp.sqrt(c) * Y


registry.register(
    "sqrtm",
    reference=_sqrtm_ref,
    inputs={"A": inputs.positive_stable(5)},
    cases=[registry.Case(m, {"method": m}) for m in ("auto", "newton")],
    bench_inputs=lambda n: {"A": inputs.positive_stable(n)},
    bench_sizes=(50, 200),
    dtypes=_args.WITH_COMPLEX,
    order=2,
    tags=("linalg", "matrix_functions"),
)(sqrtm)


def _polar_ref(A):
    # Plain JAX: through `jnp.linalg.svd`, differentiated by JAX (right at distinct singular
    # values, where the registered points are).
    W, s, Vt = jnp.linalg.svd(A, full_matrices=False)
    return W @ Vt, (Vt.T * s[None, :]) @ Vt


registry.register(
    "polar",
    reference=_polar_ref,
    inputs={"A": inputs.general((4, 4))},
    cases=[
        registry.Case("square"),
        registry.Case("tall", inputs={"A": inputs.general((5, 3))}),
        # A double singular value: JAX's derivative of the reference (through svd) is not
        # finite there; the polar factors are smooth (σᵢ + σⱼ > 0), witnessed by differences.
        registry.Case(
            "repeated",
            inputs={"A": inputs.with_singular_values((4, 4), [2.0, 2.0, 1.0, 0.5])},
            witness="differences",
        ),
    ],
    bench_inputs=lambda n: {"A": inputs.general((n, n))},
    bench_sizes=(50, 200),
    order=2,
    tags=("linalg", "matrix_functions"),
)(polar)


def _logm_ref(A):
    """Plain JAX, differentiable by JAX: 8 square roots by `_sqrtm_ref`, then the quadrature."""
    R = A
    for _ in range(8):
        R = _sqrtm_ref(R)
    eye = jnp.eye(A.shape[-1], dtype=A.dtype)
    Y = R - eye
    return 2.0**8 * sum(w * jnp.linalg.solve(eye + x * Y, Y) for x, w in zip(_GL_X, _GL_W))


registry.register(
    "logm",
    reference=_logm_ref,
    inputs={"A": inputs.positive_stable(5)},
    bench_inputs=lambda n: {"A": inputs.positive_stable(n)},
    bench_sizes=(50, 200),
    dtypes=_args.WITH_COMPLEX,
    order=2,
    tags=("linalg", "matrix_functions"),
)(logm)


registry.register(
    "fractional_matrix_power",
    reference=lambda A, p: jsl.expm(p * _logm_ref(A)),
    inputs={"A": inputs.positive_stable(4), "p": inputs.general(())},
    # Scaling p by 100 makes A^p overflow: the magnitudes are A's (through its generator) and
    # p's × 0.1 and × 2 only.
    scales=(0.1, 2.0),
    bench_inputs=lambda n: {"A": inputs.positive_stable(n), "p": inputs.general(())},
    bench_sizes=(50, 200),
    dtypes=_args.WITH_COMPLEX,
    order=2,
    tags=("linalg", "matrix_functions"),
)(fractional_matrix_power)
