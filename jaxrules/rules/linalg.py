r"""Linear-algebra rules: matvec, quadratic form, linear solve, inverse, log-determinant,
least squares.

Notation: primal $x$, tangent $\dot x$, cotangent $\bar x$,
$\langle A, B\rangle = \operatorname{tr}(A^\top B)$.

**Reusing factorisations at every order.** The solves factor $A$ once, on a stopped copy,
and both rules reuse the factors. Inside the rules, every solve with $A$ is a
`jax.lax.custom_linear_solve` (`_solve_with`): a differentiable matvec
($x \mapsto Ax$, closing over $A$) and factored `solve`/`transpose_solve`
functions that are never differentiated. So a rule's derivative is expressed through
$A$ and through solves that JAX knows how to differentiate *and transpose* at every
order. That matters: if a rule called itself instead, then wherever JAX transposes a rule
rather than calling its VJP (a function staged by `jit` before differentiation reached it, or
a JAX without hijax), it would transpose the factor-based primal, and the second derivative
would miss the factors' dependence on $A$ — a silent error the checker catches in that
configuration.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp, custom_vjp
from . import _arguments as _args
from . import _linsolve
from . import krylov as _krylov

__all__ = [
    "inv",
    "linear_solve",
    "logdet",
    "lstsq",
    "matvec",
    "matvec_fixed",
    "quadratic_form",
    "slogdet",
]

_ASSUME = ("gen", "pos", "lower", "upper")


#: Registration options shared by the rules of one square matrix `A` (inv, logdet, slogdet;
#: the example is a stack of two, so the batched path is what the checker checks) and by the
#: two matrix-vector products.
_ONE_SQUARE = dict(
    inputs={"A": inputs.general((2, 5, 5))},
    dtypes=_args.WITH_COMPLEX,
    bench_inputs=lambda n: {"A": inputs.general((n, n))},
    bench_sizes=(100, 500, 1000),
    order=2,
    tags=("linalg",),
)
_MATVEC = dict(
    reference=lambda A, x: A @ x,
    inputs={"A": inputs.general((4, 5)), "x": inputs.general((5,))},
    bench_inputs=lambda n: {"A": inputs.general((n, n)), "x": inputs.general((n,))},
    bench_sizes=(100, 1000, 4000),
    order=2,
    tags=("linalg",),
)


def _tdot(A, v):
    """`Aᵀ v` as one contraction over A's first axis: `A.T @ v` makes XLA on CPU copy a
    transposed A before a matrix-vector product (2.5× slower at n = 4000, measured)."""
    return jnp.tensordot(A, v, axes=([0], [0]))


# -- matvec --------------------------------------------------------------------------------------
@custom_vjp
def matvec(A, x):
    r"""Matrix-vector product $y = A x$, differentiable in both $A$ and $x$.

    JVP: $\dot y = \dot A x + A \dot x$. VJP: from
    $\langle \bar y, \dot A x + A\dot x\rangle = \langle \bar y x^\top, \dot A\rangle
    + \langle A^\top \bar y, \dot x\rangle$: $\bar A = \bar y x^\top$,
    $\bar x = A^\top \bar y$.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import matvec
        >>> A, x = jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([1.0, -1.0])
        >>> jax.grad(lambda x: matvec(A, x).sum())(x).tolist()
        [4.0, 6.0]
    """
    return A @ x


def _matvec_jvp(primals, tangents):
    A, x = primals
    dA, dx = tangents
    y = A @ x
    dy = None
    if dA is not None:
        dy = dA @ x
    if dx is not None:
        dy = A @ dx if dy is None else dy + A @ dx
    return y, dy


matvec.defjvp(_matvec_jvp, zeros_as_none=True)
matvec.defvjp(
    lambda A, x: (A @ x, (A, x)),
    lambda res, g: (jnp.outer(g, res[1]), _tdot(res[0], g)),
)


@custom_jvp(constant_argnames=("A",))
def matvec_fixed(A, x):
    r"""$y = A x$ where $A$ is data, not a variable (the seed tutorial's example).

    `A` is declared constant: it is traced like any array (no recompilation for a new
    `A`), and differentiating with respect to it is an error. JVP: $\dot y = A\dot x$;
    reverse mode by transposition: $\bar x = A^\top\bar y$.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import matvec_fixed
        >>> A = jnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> jax.grad(lambda x: matvec_fixed(A, x).sum())(jnp.ones(2)).tolist()
        [4.0, 6.0]
    """
    return A @ x


@matvec_fixed.defjvp
def _matvec_fixed_jvp(primals, tangents):
    A, x = primals
    _, dx = tangents  # the tangent of A is always None: A is nondiff
    return A @ x, A @ dx


# -- quadratic form ------------------------------------------------------------------------------
@custom_vjp
def quadratic_form(x, Q):
    r"""$y = \tfrac12 x^\top Q x$ for a general (non-symmetric) $Q$.

    JVP: $\dot y = \tfrac12 x^\top (Q + Q^\top)\dot x + \tfrac12 x^\top \dot Q x$.
    VJP: $\bar x = \tfrac12 (Q + Q^\top) x\,\bar y$,
    $\bar Q = \tfrac12 \bar y\, x x^\top$. (Writing $\bar x = Q x \bar y$ is
    right only for symmetric $Q$: the classic mistake the checker's general inputs catch.)

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import quadratic_form
        >>> Q = jnp.array([[2.0, 1.0], [0.0, 2.0]])
        >>> jax.grad(quadratic_form)(jnp.array([1.0, 0.0]), Q).tolist()
        [2.0, 0.5]
    """
    return 0.5 * x @ (Q @ x)


def _qf_jvp(primals, tangents):
    x, Q = primals
    dx, dQ = tangents
    y = 0.5 * x @ (Q @ x)
    dy = None
    if dx is not None:
        dy = 0.5 * (x @ (Q @ dx) + dx @ (Q @ x))
    if dQ is not None:
        t = 0.5 * x @ (dQ @ x)
        dy = t if dy is None else dy + t
    return y, dy


quadratic_form.defjvp(_qf_jvp, zeros_as_none=True)
quadratic_form.defvjp(
    lambda x, Q: (0.5 * x @ (Q @ x), (x, Q)),
    lambda res, g: (
        0.5 * (res[1] @ res[0] + _tdot(res[1], res[0])) * g,
        0.5 * g * jnp.outer(res[0], res[0]),
    ),
)


# -- linear solve ----------------------------------------------------------------------------------
def _lu_factor(A):
    # P A = L U; lax.linalg.lu also returns the permutation (jax.scipy's lu_factor rebuilds it
    # from the pivots with a sequential loop, which costs more than the solve at n ~ 100).
    lu, piv, perm = jax.lax.linalg.lu(A)
    return lu, piv, perm


def _lu_solve(factors, b, trans):
    lu, _, perm = factors
    tri = jax.lax.linalg.triangular_solve
    B = b[:, None] if b.ndim == 1 else b
    if trans == 0:  # A x = b  ⇔  L U x = P b
        y = tri(lu, B[perm], left_side=True, lower=True, unit_diagonal=True)
        x = tri(lu, y, left_side=True, lower=False)
    else:  # Aᵀ x = b  ⇔  Uᵀ Lᵀ (P x) = b
        y = tri(lu, B, left_side=True, lower=False, transpose_a=True)
        z = tri(lu, y, left_side=True, lower=True, transpose_a=True, unit_diagonal=True)
        x = jnp.zeros_like(z).at[perm].set(z)
    return x[:, 0] if b.ndim == 1 else x


def _factor(A, assume):
    if assume == "gen":
        return _lu_factor(A)
    if assume == "pos":
        return (jsl.cholesky(A, lower=True),)
    return (A,)  # triangular: the matrix is its own factor


def _apply(factors, b, assume, trans):
    if assume == "gen":
        return _lu_solve(factors, b, trans)
    if assume == "pos":
        if trans and jnp.iscomplexobj(factors[0]):  # Aᵀ = conj(A) for Hermitian A
            return jnp.conj(jsl.cho_solve((factors[0], True), jnp.conj(b)))
        return jsl.cho_solve((factors[0], True), b)
    return jsl.solve_triangular(factors[0], b, lower=assume == "lower", trans=trans)


def _structure(M, assume):
    """Project a tangent/cotangent of A onto the matrices the primal depends on."""
    if assume == "lower":
        return jnp.tril(M)
    if assume == "upper":
        return jnp.triu(M)
    if assume == "pos":  # the Hermitian part (self-adjoint under Re Σ aᵢbᵢ: both rules)
        return 0.5 * (M + jnp.conj(M.T))
    return M


def _outer(u, v):
    return jnp.outer(u, v) if u.ndim == 1 else u @ v.T


@functools.partial(jax.jit, static_argnums=(3, 4))
def _solve_with(A, b, factors, assume, trans):
    """`op(A)⁻¹ b` with the factors of A, differentiable and transposable at every order."""
    A = _structure(A, assume) if assume in ("lower", "upper") else A
    matvec = (lambda x: _tdot(A, x)) if trans else (lambda x: A @ x)
    solver = _linsolve.Factored(
        lambda rhs: _apply(factors, rhs, assume, trans),
        transpose=lambda rhs: _apply(factors, rhs, assume, 1 - trans),
    )
    return _linsolve.solve(matvec, b, solver)


@custom_vjp(static_argnames=("assume", "trans"), constant_argnames=("factors",), allow_complex=True)
def _solve(A, b, factors, *, assume, trans):
    # x = op(A)⁻¹ b, op(A) = A (trans=0) or Aᵀ (trans=1), using factors of A.
    return _apply(factors, b, assume, trans)


def _solve_jvp(primals, tangents, *, assume, trans):
    # op(A) x = b  ⇒  op(A) ẋ = ḃ − op(Ȧ) x.
    A, b, factors = primals
    dA, db, _ = tangents
    x = _solve_with(A, b, factors, assume, trans)
    rhs = None if db is None else db
    if dA is not None:
        dA = _structure(dA, assume)
        t = -((dA.T if trans else dA) @ x)
        rhs = t if rhs is None else rhs + t
    if rhs is None:
        return x, None
    return x, _solve_with(A, rhs, factors, assume, trans)


def _solve_fwd(A, b, factors, *, assume, trans):
    x = _solve_with(A, b, factors, assume, trans)  # differentiable: a residual of the VJP
    return x, (A, factors, x)


def _solve_bwd(res, x_bar, *, assume, trans):
    # ⟨x̄, ẋ⟩ = ⟨x̄, op(A)⁻¹(ḃ − op(Ȧ)x)⟩ = ⟨w, ḃ⟩ − ⟨w, op(Ȧ) x⟩ with op(A)ᵀ w = x̄:
    # b̄ = w, and Ā = −w xᵀ (trans=0) or −x wᵀ (trans=1).
    A, factors, x = res
    w = _solve_with(A, x_bar, factors, assume, 1 - trans)
    A_bar = -(_outer(x, w) if trans else _outer(w, x))
    return _structure(A_bar, assume), w, None


_solve.defjvp(_solve_jvp, zeros_as_none=True)
_solve.defvjp(_solve_fwd, _solve_bwd)


def linear_solve(A, b, *, assume: str = "gen", **krylov):
    r"""Solve $A x = b$ (`b` a vector or a matrix of right-hand sides), as `jnp.linalg.solve`.

    `A` may also be a linear *function* `v ↦ A v` (matrix-free): then the solve is
    `krylov_solve(A, b, **krylov).value` (`solver="cg"`, `"gmres"` or `"bicgstab"`,
    `M`, `tol`, `atol`, `maxiter`, `restart`, `throw`; see `jaxrules.rules.krylov`), NaN
    where it did not converge.

    `A` may carry leading batch dimensions, `(..., n, n)`; `b` is `(n,)` (one right-hand side
    for every matrix) or `(..., n, k)` with batch dimensions that broadcast against `A`'s.
    Dtypes promote as `jnp` (integers to the default float). A batch runs one batched
    factorisation.

    The factorisation of the forward pass (LU; Cholesky with `assume="pos"`; none for
    `assume="lower"`/`"upper"` triangular `A`) is reused by both rules and every order.

    JVP: $A\dot x = \dot b - \dot A x$. VJP: $A^\top w = \bar x$;
    $\bar b = w$, $\bar A = -w x^\top$.

    Complex `A`, `b` (complex64/complex128): the same formulas with plain transposes — the
    solve is holomorphic, and JAX's convention pairs tangents and cotangents by
    $\operatorname{Re}\sum_i a_i b_i$ without conjugation.

    Structured `A`: with `assume="pos"` the primal reads only the lower triangle, and the
    cotangent of `A` follows the **symmetrised** convention
    $\bar A = -\tfrac12(w x^\top + x w^\top)$ (tangents are taken symmetric; Hermitian, with
    $\bar A$ the Hermitian part of $-w x^\top$, for complex `A`); with
    `"lower"`/`"upper"` the cotangent is the lower/upper part of $-w x^\top$ and
    the other triangle of `A` is ignored.

    Singular `A`: as with `jnp.linalg.solve`, an exactly singular `A` gives non-finite
    values (a zero pivot), never a silent finite number; an ill-conditioned one loses
    $\log_{10}\kappa(A)$ digits in the solution and its derivatives alike.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import linear_solve
        >>> A, b = jnp.array([[3.0, 1.0], [1.0, 2.0]]), jnp.array([9.0, 8.0])
        >>> linear_solve(A, b).tolist()
        [2.0, 3.0]
    """
    if callable(A) and not hasattr(A, "shape"):
        if assume != "gen":
            raise ValueError(
                "linear_solve: assume= describes a matrix; for an operator (a function) pick "
                "the Krylov method instead: solver='cg' for a symmetric positive definite one."
            )
        return _krylov.krylov_solve(A, b, **krylov).value
    if krylov:
        raise TypeError(
            f"linear_solve: {', '.join(sorted(krylov))} apply to a matrix-free operator (A a "
            f"function), but A is an array of shape {jnp.shape(A)}."
        )
    if assume not in _ASSUME:
        raise ValueError(f"linear_solve: assume must be one of {_ASSUME}, got {assume!r}.")
    A, b = _args.matrices("linear_solve", A=A, b=b)
    _args.square("linear_solve", "A", A)
    n = A.shape[-1]
    # As jnp.linalg.solve: a 1-D b is one right-hand side for every matrix of the batch;
    # otherwise b is (..., n, k), its batch broadcast against A's.
    vector = b.ndim == 1
    if (b.shape[0] if vector else b.shape[-2] if b.ndim >= 2 else None) != n:
        raise ValueError(
            f"linear_solve: b must have shape ({n},) or (..., {n}, k) to match A {A.shape}, got "
            f"{b.shape}."
        )
    return _args.over_batch(
        "linear_solve",
        functools.partial(_linear_solve, assume=assume),
        {"A": A, "b": b},
        (2, 1 if vector else 2),
    )


def _linear_solve(A, b, *, assume):
    factors = _factor(jax.lax.stop_gradient(A), assume)
    return _solve(A, b, factors, assume=assume, trans=0)


def _solve_ref(A, b, assume="gen"):
    if assume == "lower":
        A = jnp.tril(A)
    elif assume == "upper":
        A = jnp.triu(A)
    return jnp.linalg.solve(A, b)


def _triangular_ref(lower):
    return lambda A, b, assume: jsl.solve_triangular(A, b, lower=lower)


registry.register(
    "linear_solve",
    reference=_solve_ref,
    # One case per structure, each with its own example point. "gen": a stack of two matrices
    # and one right-hand side broadcast against it (jnp.linalg.solve's semantics; its batch
    # axis of 1 given, so no rank promotion: checked with jax_numpy_rank_promotion="raise").
    inputs={"A": inputs.general((2, 5, 5)), "b": inputs.general((1, 5, 1))},
    cases=[
        registry.Case("gen", {"assume": "gen"}),
        registry.Case(
            "pos",
            {"assume": "pos"},
            inputs={"A": inputs.spd(5), "b": inputs.general((5, 2))},
            bench_inputs=lambda n: {"A": inputs.spd(n), "b": inputs.general((n,))},
            bench_reference=lambda A, b, assume: jsl.cho_solve(jsl.cho_factor(A), b),
        ),
        registry.Case(
            "lower",
            {"assume": "lower"},
            inputs={"A": inputs.lower(5), "b": inputs.general((5,))},
            bench_inputs=lambda n: {"A": inputs.lower(n), "b": inputs.general((n,))},
            bench_reference=_triangular_ref(True),
        ),
        registry.Case(
            "upper",
            {"assume": "upper"},
            inputs={"A": inputs.upper(5), "b": inputs.general((5, 3))},
            bench_inputs=lambda n: {"A": inputs.upper(n), "b": inputs.general((n,))},
            bench_reference=_triangular_ref(False),
        ),
    ],
    dtypes=_args.WITH_COMPLEX,
    bench_inputs=lambda n: {"A": inputs.general((n, n)), "b": inputs.general((n,))},
    bench_sizes=(100, 500, 1000),
    order=2,
    tags=("linalg",),
)(linear_solve)


# -- inverse ---------------------------------------------------------------------------------------
def _inv_with(A, factors):
    return _solve_with(A, jnp.eye(A.shape[0], dtype=A.dtype), factors, "gen", 0)


@custom_vjp(constant_argnames=("factors",), static_argnames=("batched",), allow_complex=True)
def _inv(A, factors, *, batched=False):
    return _lu_solve(factors, jnp.eye(A.shape[0], dtype=A.dtype), 0)


_SOLVES_ON = ("cpu",)  # platforms where _sandwich solves rather than multiplies


def _sandwich(A, factors, Y, M, trans, batched=False):
    """`−op(A)⁻¹ M op(A)⁻¹` with `op(A) = A` (`trans=0`) or `Aᵀ`, given `Y = A⁻¹`;
    differentiable in `A`, `Y` and `M` (second order goes through it).

    Two ways, the same 4n³ flops: two matrix products with `Y`, or four triangular solves with
    the LU factors (`M op(A)⁻¹ = (op(A)⁻ᵀ Mᵀ)ᵀ`, then `op(A)⁻¹` of that). On GPU products are
    the fast path (the VJP is 0.82× JAX's on an H200). On CPU JAX runs the solves in LAPACK and
    the products in XLA, and measured on a 2-core x86 the four solves beat the two products by
    25–35% at n ≥ 500 (XLA's products run right after the factorisation's LAPACK calls, whose
    worker threads still hold the cores); `lax.platform_dependent` picks per platform when
    the computation is lowered. A stack of matrices (`batched`) always multiplies: XLA runs
    batched triangular solves on the CPU one matrix at a time (1.4× JAX's gradient on a
    `(64, 64, 64)` stack), batched products in one call.
    """

    def solves(A, Y, M):
        Z = _solve_with(A, M.T, factors, "gen", 1 - trans).T
        return -_solve_with(A, Z, factors, "gen", trans)

    def products(A, Y, M):
        Y = Y.T if trans else Y
        return -(Y @ M @ Y)

    if batched:
        return products(A, Y, M)
    return jax.lax.platform_dependent(
        A, Y, M, default=products, **{platform: solves for platform in _SOLVES_ON}
    )


def _inv_jvp(primals, tangents, *, batched):
    # A Y = I  ⇒  Ȧ Y + A Ẏ = 0  ⇒  Ẏ = −A⁻¹ Ȧ A⁻¹ = −Y Ȧ Y (no new factorisation).
    A, factors = primals
    dA, _ = tangents
    Y = _inv_with(A, factors)
    return Y, _sandwich(A, factors, Y, dA, 0, batched)


def _inv_bwd(res, Y_bar, *, batched):
    # ⟨Ȳ, −A⁻¹ Ȧ A⁻¹⟩ = ⟨−A⁻ᵀ Ȳ A⁻ᵀ, Ȧ⟩.
    A, Y, factors = res
    return _sandwich(A, factors, Y, Y_bar, 1, batched), None


def _inv_fwd(A, factors, *, batched):
    # Y is differentiable in A (through the solve's operator), and so is the residual, for
    # second order.
    Y = _inv_with(A, factors)
    return Y, (A, Y, factors)


_inv.defjvp(_inv_jvp)
_inv.defvjp(_inv_fwd, _inv_bwd)


def inv(A):
    r"""Matrix inverse $Y = A^{-1}$ (LU), with rules that need no new factorisation.

    JVP: $\dot Y = -Y\dot A Y$. VJP: $\bar A = -Y^\top \bar Y Y^\top$. Each is
    4n³ flops on top of the primal: two matrix products with $Y$ on GPU/TPU, four
    triangular solves with the primal's LU factors on CPU, whichever was measured faster there
    (`jnp.linalg.inv`'s gradient does two solves and a product).

    Singular `A`: non-finite output, as `jnp.linalg.inv`. `A` may be a stack `(..., n, n)`
    (one batched factorisation); integer input becomes the default float dtype; complex `A`
    uses the same formulas (the inverse is holomorphic: plain transposes).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import inv
        >>> inv(jnp.array([[2.0, 0.0], [0.0, 4.0]])).tolist()
        [[0.5, 0.0], [0.0, 0.25]]
    """
    A = _one_square("inv", A)
    batched = A.ndim > 2
    return _args.over_batch(
        "inv",
        lambda A: _inv(A, _lu_factor(jax.lax.stop_gradient(A)), batched=batched),
        {"A": A},
        (2,),
    )


def _one_square(name, A):
    """The argument of `inv`/`logdet`/`slogdet`: promoted, `(..., n, n)`."""
    (A,) = _args.matrices(name, A=A)
    _args.square(name, "A", A)
    return A


registry.register("inv", reference=jnp.linalg.inv, **_ONE_SQUARE)(inv)


# -- log-determinant -------------------------------------------------------------------------------
def _parity(piv):
    """The parity (0 or 1) of the permutation of LU's row swaps `piv`."""
    return jnp.sum(piv != jnp.arange(piv.shape[0], dtype=piv.dtype)) % 2


def _lu_logdet(factors):
    """`log|det A|`; for complex `A` a complex logarithm of `det A`,
    `Σ log uᵢᵢ + iπ·(parity of P)` (its imaginary part is a branch of `arg det A`)."""
    lu, piv, _ = factors
    d = jnp.diagonal(lu)
    if not jnp.iscomplexobj(lu):
        return jnp.sum(jnp.log(jnp.abs(d)))
    phase = _parity(piv).astype(lu.real.dtype) * jnp.pi
    return jnp.sum(jnp.log(d)) + jax.lax.complex(jnp.zeros_like(phase), phase)


def _lu_sign(factors):
    lu, piv, _ = factors
    d = jnp.diagonal(lu)
    flip = jnp.where(_parity(piv) == 1, -1, 1).astype(lu.dtype)
    return jnp.prod(jnp.sign(d)) * flip


@custom_vjp(constant_argnames=("factors",), allow_complex=True)
def _logdet(A, factors):
    # Real A: log|det A|. Complex A: a complex log det A (holomorphic; the same rules).
    return _lu_logdet(factors)


def _logdet_jvp(primals, tangents):
    # d log|det A| = tr(A⁻¹ Ȧ), with A⁻¹ Ȧ from the same factors.
    A, factors = primals
    dA, _ = tangents
    return _logdet(A, factors), jnp.trace(_solve_with(A, dA, factors, "gen", 0))


def _logdet_bwd(res, g):
    # ⟨ȳ, tr(A⁻¹Ȧ)⟩ = ⟨ȳ A⁻ᵀ, Ȧ⟩; A⁻ᵀ through the inverse rule (differentiable again).
    A, factors = res
    return g * _inv_with(A, factors).T, None


_logdet.defjvp(_logdet_jvp)
_logdet.defvjp(lambda A, factors: (_logdet(A, factors), (A, factors)), _logdet_bwd)


def logdet(A):
    r"""$\log|\det A|$ via LU; the factors are reused by both rules.

    JVP: $\operatorname{tr}(A^{-1}\dot A)$. VJP: $\bar A = \bar y A^{-\top}$.
    Singular `A`: `-inf` (and non-finite derivatives), as `jnp.linalg.slogdet`. `A` may be a
    stack `(..., n, n)`.

    Complex `A`: the output is real, $\log|\det A| = \operatorname{Re}\log\det A$ (as
    `jnp.linalg.slogdet(A)[1]`). The rule is that of the holomorphic $\log\det A$ (the same
    formulas); JAX's `real` then gives $\operatorname{Re}\operatorname{tr}(A^{-1}\dot A)$ and,
    for a real cotangent $\bar y$, $\bar A = \bar y A^{-\top}$.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import logdet
        >>> round(float(logdet(jnp.array([[2.0, 1.0], [1.0, 3.0]]))), 6)  # log 5
        1.609438
    """
    A = _one_square("logdet", A)
    return _args.over_batch(
        "logdet",
        lambda A: jnp.real(_logdet(A, _lu_factor(jax.lax.stop_gradient(A)))),
        {"A": A},
        (2,),
    )


def slogdet(A):
    r"""`(sign, log|det A|)` like `jnp.linalg.slogdet`. `A` may be a stack `(..., n, n)`.

    Real `A`: the sign (±1) has zero derivative. Complex `A`: the sign is
    $e^{i\theta}$, $\theta = \arg\det A = \operatorname{Im}\log\det A$, and both outputs come
    from the one holomorphic rule for $\log\det A$: $\dot\theta = \operatorname{Im}
    \operatorname{tr}(A^{-1}\dot A)$, so $\dot s = i s\,\dot\theta$ (JAX's `slogdet` has the same).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import slogdet
        >>> s, l = slogdet(jnp.array([[0.0, 1.0], [1.0, 0.0]]))
        >>> float(s), float(l)
        (-1.0, 0.0)
    """
    A = _one_square("slogdet", A)
    return _args.over_batch("slogdet", _slogdet, {"A": A}, (2,))


def _slogdet(A):
    factors = _lu_factor(jax.lax.stop_gradient(A))
    L = _logdet(A, factors)
    if not jnp.iscomplexobj(A):
        return _lu_sign(factors), L
    # sign = s·e^{i(θ − sg(θ))}: the value of the factors' sign, the derivative i·s·θ̇.
    theta = jnp.imag(L)
    phase = theta - jax.lax.stop_gradient(theta)
    sign = _lu_sign(factors) * jnp.exp(jax.lax.complex(jnp.zeros_like(phase), phase))
    return sign, jnp.real(L)


registry.register("logdet", reference=lambda A: jnp.linalg.slogdet(A)[1], **_ONE_SQUARE)(logdet)
registry.register("slogdet", reference=lambda A: tuple(jnp.linalg.slogdet(A)), **_ONE_SQUARE)(
    slogdet
)


registry.register("matvec", **_MATVEC)(matvec)
registry.register("matvec_fixed", **_MATVEC)(matvec_fixed)
registry.register(
    "quadratic_form",
    reference=lambda x, Q: 0.5 * x @ Q @ x,
    inputs={"x": inputs.general((5,)), "Q": inputs.general((5, 5))},
    bench_inputs=lambda n: {"x": inputs.general((n,)), "Q": inputs.general((n, n))},
    bench_sizes=(100, 1000, 4000),
    order=2,
    tags=("linalg",),
)(quadratic_form)


# -- least squares -----------------------------------------------------------------------------------
def _hdot(A, v):
    """`Aᴴ v` (`Aᵀ v` for real `A`) as one contraction over A's first axis (see `_tdot`)."""
    return jnp.tensordot(jnp.conj(A), v, axes=([0], [0]))


@jax.jit
def _gram_with(A, v, R):
    """`(AᴴA)⁻¹ v` through `custom_linear_solve`: the operator `z ↦ Aᴴ(A z)`
    (differentiable in `A`, Hermitian: its own adjoint) and the factor `R` (`AᴴA = RᴴR`)."""

    def solve(rhs):
        return jsl.solve_triangular(R, jsl.solve_triangular(R, rhs, trans="C"), lower=False)

    return _linsolve.solve(lambda z: _hdot(A, A @ z), v, _linsolve.Factored(solve, adjoint=solve))


@jax.jit
def _ls_with(A, b, Q, R):
    """The least-squares solution: the QR value, with the derivatives of `G Aᴴ b`.

    `G Aᴴ b` (`G = (AᴴA)⁻¹` through `_gram_with`) is the same map in exact arithmetic
    and is differentiable and transposable at every order; its value would square the
    condition number, so the value is the QR solution's: `sg(x_qr) + g − sg(g)`.
    """
    sg = jax.lax.stop_gradient
    x_qr = jsl.solve_triangular(R, _hdot(Q, sg(b)), lower=False)
    g = _gram_with(A, _hdot(A, b), R)
    return sg(x_qr) + (g - sg(g))


@custom_vjp(constant_argnames=("Q", "R"), allow_complex=True)
def _ls(A, b, Q, R):
    return jsl.solve_triangular(R, _hdot(Q, b), lower=False)


def _ls_jvp(primals, tangents):
    # AᴴA ẋ = Ȧᴴ r + Aᴴ(ḃ − Ȧ x), r = b − A x:  ẋ = G Ȧᴴ r + lstsq(A, ḃ − Ȧ x).
    A, b, Q, R = primals
    dA, db, _, _ = tangents
    x = _ls_with(A, b, Q, R)
    if dA is None and db is None:
        return x, None
    c = jnp.zeros_like(b) if db is None else db
    dx = None
    if dA is not None:
        r = b - A @ x
        c = c - dA @ x
        dx = _gram_with(A, _hdot(dA, r), R)
    t = _gram_with(A, _hdot(A, c), R)
    return x, t if dx is None else dx + t


def _ls_fwd(A, b, Q, R):
    x = _ls_with(A, b, Q, R)
    return x, (A, b, R, x)


def _ls_bwd(res, x_bar):
    # With gradients g = conj(cotangent) (for real A they coincide), the real derivation with
    # ᵀ → ᴴ: w = G g_x; g_b = A w, g_A = r wᴴ − (A w) xᴴ.
    A, b, R, x = res
    w = _gram_with(A, jnp.conj(x_bar), R)
    Aw = A @ w
    g_A = _outer(b - A @ x, jnp.conj(w)) - _outer(Aw, jnp.conj(x))
    return jnp.conj(g_A), jnp.conj(Aw), None, None


_ls.defjvp(_ls_jvp, zeros_as_none=True)
_ls.defvjp(_ls_fwd, _ls_bwd)


def lstsq(A, b):
    r"""Least squares $x = \arg\min_x \|Ax - b\|$ for $A$ of full column rank.

    Primal by QR ($x = R^{-1}Q^\top b$: the normal equations would square the condition
    number, which float32 cannot afford). With $r = b - Ax$ and
    $G = (A^\top A)^{-1} = R^{-1}R^{-\top}$:

    JVP: $A^\top A\dot x = \dot A^\top r + A^\top(\dot b - \dot A x)$, i.e.
    $\dot x = G\dot A^\top r + \operatorname{lstsq}(A, \dot b - \dot A x)$.
    VJP: $w = G\bar x$; $\bar b = A w$, $\bar A = r w^\top - A w x^\top$.

    Complex `A`, `b`: $x = (A^H A)^{-1}A^H b$ is not holomorphic in $A$. The JVP is the
    above with $^\top \to {}^H$; the VJP, in JAX's convention (cotangent = conjugate of the
    gradient $\partial_{\operatorname{Re}} + i\partial_{\operatorname{Im}}$), is
    $w = G\,\overline{\bar x}$, $\bar b = \overline{A w}$,
    $\bar A = \overline{r w^H - A w x^H}$ — the real formulas for gradients, conjugated.

    Both need only the QR factors, and are finite wherever $A$ has full column rank —
    also where singular values repeat (orthonormal columns, the identity), where the
    gradient of `jnp.linalg.lstsq` (through its SVD) is NaN. Rank-deficient $A$ (a
    diagonal entry of $R$ below $\varepsilon\max(m, n)\max_i|r_{ii}|$): the
    solution and all derivatives are NaN, a visible failure rather than the huge numbers a
    near-singular triangular solve returns. `b`: a vector or a matrix.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import lstsq
        >>> A = jnp.eye(3)[:, :2]  # orthonormal columns
        >>> jax.grad(lambda A: lstsq(A, jnp.array([1.0, 2.0, 3.0])).sum())(A).tolist()[2]
        [3.0, 3.0]
    """
    A, b = _args.matrices("lstsq", A=A, b=b)
    if jnp.ndim(A) != 2 or A.shape[0] < A.shape[1]:
        raise ValueError(
            f"lstsq: A must be a tall or square matrix (m >= n, full column rank), got shape "
            f"{jnp.shape(A)}."
        )
    if jnp.shape(b)[0] != A.shape[0] or jnp.ndim(b) not in (1, 2):
        raise ValueError(
            f"lstsq: b must have shape ({A.shape[0]},) or ({A.shape[0]}, k) to match A "
            f"{A.shape}, got {jnp.shape(b)}."
        )
    if A.shape[1] == 0:  # no unknowns: an empty solution, as jnp.linalg.lstsq
        return jnp.zeros((0, *jnp.shape(b)[1:]), jnp.result_type(A, b))
    Q, R = jnp.linalg.qr(jax.lax.stop_gradient(A), mode="reduced")
    # Rank deficiency to working precision would give huge finite numbers from the triangular
    # solves; make it visible instead: NaN in the solution and every derivative.
    d = jnp.abs(jnp.diagonal(R))
    tol = jnp.finfo(R.dtype).eps * max(A.shape) * jnp.max(d)
    R = jnp.where(jnp.all(d > tol), R, jnp.nan)
    return _ls(A, b, Q, R)


def _lstsq_ref(A, b):
    # The normal equations, differentiated by JAX: exact in float64 for these well-conditioned
    # inputs, and finite where jnp.linalg.lstsq's SVD-based gradient is not.
    Ah = jnp.conj(A.T)
    return jnp.linalg.solve(Ah @ A, Ah @ b)


def _orthonormal_columns(key, dtype):
    q = inputs.orthogonal(6)(key, dtype)[:, :4]
    b = inputs.general((6,))(jax.random.fold_in(key, 1), dtype)
    return {"A": q, "b": b}


registry.register(
    "lstsq",
    reference=_lstsq_ref,
    inputs={"A": inputs.general((7, 4)), "b": inputs.general((7,))},
    # Orthonormal columns: every singular value 1, where jnp.linalg.lstsq's gradient is NaN.
    cases=[registry.Case("general"), registry.Case("orthonormal", inputs=_orthonormal_columns)],
    dtypes=_args.WITH_COMPLEX,
    bench_inputs=lambda n: {"A": inputs.general((2 * n, n)), "b": inputs.general((2 * n,))},
    bench_sizes=(100, 500, 1000),
    bench_reference=lambda A, b: jnp.linalg.lstsq(A, b)[0],
    order=2,
    tags=("linalg",),
)(lstsq)
