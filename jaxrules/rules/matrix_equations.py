r"""Matrix equations: Sylvester $AX + XB = C$ and continuous Lyapunov
$AP + PA^\top + Q = 0$.

**Primal** (Bartels–Stewart). With complex Schur forms $A = U S U^H$,
$B = V T V^H$ ($S, T$ upper triangular), $AX + XB = C$ becomes
$S Y + Y T = F$ with $Y = U^H X V$, $F = U^H C V$, solved one column at a
time: $(S + t_{jj} I)\,y_j = f_j - \sum_{k<j} t_{kj}\,y_k$ — a triangular solve per
column. A solution exists and is unique iff the spectra of $A$ and $-B$ are
disjoint (for Lyapunov: no two eigenvalues of $A$ sum to zero, which holds when
$A$ is stable, i.e. its spectrum lies in the open left half-plane).

**Derivatives.** With $L(X) = AX + XB$, differentiating $L(X) = C$:
$A\dot X + \dot X B = \dot C - \dot A X - X\dot B$ — the same equation with a new
right-hand side. For the VJP, $\langle \bar X, L^{-1}R\rangle = \langle W, R\rangle$
with $L^*(W) = A^\top W + W B^\top = \bar X$, so $\bar C = W$,
$\bar A = -W X^\top$, $\bar B = -X^\top W$. Transposing the adjoint equation gives
$B W^\top + W^\top A = \bar X^\top$: a Sylvester equation in $(B, A)$, solved
with the *same* Schur factors, swapped. As in `jaxrules.rules.linalg`, the factors
enter as nondiff arguments, computed on stopped copies, and the rules solve through
`jax.lax.custom_linear_solve` with the operator $X \mapsto AX + XB$ and the factored
solves, so every order reuses the one factorisation and is right however JAX reaches it.

For Lyapunov, $B = A^\top = U S^H U^H$ (`A` real): one Schur decomposition serves
both sides, with $S^H$ lower triangular (columns solved last to first). The operator
$Y \mapsto SY + YS^H$ maps Hermitian matrices to Hermitian ones, so the right-hand side is
split into two Hermitian parts and only triangles are solved (`_tri_lyapunov`, about half
the work of the general sweep). Changes of basis use the real Schur vectors and the block
rotations separately (`_solve_factored`): real matrix products only.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .. import _registry as registry
from .. import inputs
from .._custom import custom_vjp
from . import _arguments as _args
from . import _linsolve, _sign

__all__ = ["discrete_lyapunov", "lyapunov", "sylvester"]


_BLOCK = 8


def _tri_sylvester(S, s_lower, T, t_lower, F):
    """Solve `S Y + Y T = F` for triangular `S` (n×n) and `T` (m×m).

    Column by column, `(S + t_jj I) y_j = f_j − Σ_{k<j} t_kj y_k` (for upper `T`), in
    blocks of `_BLOCK` columns: within a block the coupling is a small matrix-vector
    product (written as a sum so that XLA fuses it with the slicing: a `dot` there was one
    more kernel launch per column, ~7% of the sweep), and each finished block updates the
    remaining right-hand sides with one matrix product. The shifted matrix `S + t_jj I` is
    carried and only its diagonal updated.
    A lower `T` is handled by reversing the column order (then it is upper).
    """
    if t_lower:
        return _tri_sylvester(S, s_lower, T[::-1, ::-1], False, F[:, ::-1])[:, ::-1]
    n, m = F.shape
    b = min(_BLOCK, m)
    nb = -(-m // b)
    mp = nb * b
    # Pad to whole blocks: the extra columns have zero right-hand side and a shift larger than
    # any eigenvalue of S, so their (zero) solutions never divide by zero.
    pad = 1.0 + 2.0 * jnp.max(jnp.abs(jnp.diagonal(S)))
    extra = jnp.arange(m, mp)
    Tp = jnp.zeros((mp, mp), T.dtype).at[:m, :m].set(T).at[extra, extra].set(pad)
    Fp = jnp.zeros((n, mp), F.dtype).at[:, :m].set(F)
    diag = jnp.arange(n)

    def block(k, carry):
        R, Y, M, shift = carry
        j0 = k * b
        Tb = jax.lax.dynamic_slice(Tp, (j0, j0), (b, b))
        Rb = jax.lax.dynamic_slice(R, (0, j0), (n, b))

        def column(jj, c):
            Yb, M, shift = c
            t = Tb[jj, jj]
            M = M.at[diag, diag].add(t - shift)
            y = jsl.solve_triangular(
                M, Rb[:, jj] - jnp.sum(Yb * Tb[None, :, jj], axis=1), lower=s_lower
            )
            return Yb.at[:, jj].set(y), M, t

        Yb, M, shift = jax.lax.fori_loop(0, b, column, (jnp.zeros((n, b), F.dtype), M, shift))
        Y = jax.lax.dynamic_update_slice(Y, Yb, (0, j0))
        # Later columns: subtract this block's contribution (earlier columns are done).
        R = R - Yb @ jax.lax.dynamic_slice(Tp, (j0, 0), (b, mp))
        return R, Y, M, shift

    init = (Fp, jnp.zeros_like(Fp), S, jnp.zeros((), S.dtype))
    _, Y, _, _ = jax.lax.fori_loop(0, nb, block, init)
    return Y[:, :m]


_LYAP_BLOCKS = 8


def _tri_lyapunov(S, s_lower, F):
    """Solve `S Y + Y Sᴴ = F` for triangular `S` (n×n): the Lyapunov case of
    `_tri_sylvester`, in about half its work.

    The operator `𝓛(Y) = S Y + Y Sᴴ` commutes with conjugate transposition,
    `𝓛(Yᴴ) = 𝓛(Y)ᴴ`, so it maps Hermitian matrices to Hermitian ones. Split
    `F = H + iK` with `H = (F + Fᴴ)/2`, `K = (F − Fᴴ)/2i` both Hermitian; then
    `Y = Y_H + i Y_K` with `𝓛(Y_H) = H`, `𝓛(Y_K) = K`, both Hermitian, solved together
    (two right-hand sides per triangular solve, one pass over `S`). A Hermitian solution is
    known from its upper triangle: with the columns taken last to first in blocks
    `J = [c₀, c₁)` (`Sᴴ` is lower triangular), rows `≥ c₁` of block `J` are the
    conjugates of rows already solved, so block `J` only solves the leading
    `c₁ × c₁` problem
    `S₁₁ Y_J + Y_J (Sᴴ)_JJ = F[:c₁, J] − S[:c₁, c₁:] Y[c₁:, J] − Y[:c₁, c₁:] (Sᴴ)[c₁:, J]`
    (matrix products for the known parts, `_tri_sylvester` for the rest). Triangular
    solves of average size ~ n/√3 instead of n: at n = 200, 3.7 ms instead of 6.1 (float32).
    The blocks are unrolled (at most `_LYAP_BLOCKS`), each with static sizes.
    """
    if s_lower:  # J S J is upper triangular for the reversal J: solve for J Y J.
        return _tri_lyapunov(S[::-1, ::-1], False, F[::-1, ::-1])[::-1, ::-1]
    n = S.shape[0]
    T = S.conj().T
    Fh = F.conj().T
    G = jnp.stack([(F + Fh) / 2, (F - Fh) / 2j])
    Y = jnp.zeros_like(G)
    # Block widths: multiples of _BLOCK (the column loop pads to them), at most _LYAP_BLOCKS
    # blocks, the narrowest (the remainder) first in the column order, i.e. solved last.
    w = _BLOCK * -(-n // (_BLOCK * _LYAP_BLOCKS))
    cuts = [0, *range(n % w or w, n + 1, w)]
    c1_of = []  # for each column, the end of its block: rows below it are filled by symmetry
    for c0, c1 in itertools.pairwise(cuts):
        c1_of += [c1] * (c1 - c0)
    for c0, c1 in reversed(list(itertools.pairwise(cuts))):
        R = G[:, :c1, c0:c1]
        if c1 < n:
            below = jnp.conj(jnp.swapaxes(Y[:, c0:c1, c1:], 1, 2))  # Y[c₁:, J] = Y[J, c₁:]ᴴ
            R = R - S[:c1, c1:] @ below - Y[:, :c1, c1:] @ T[c1:, c0:c1]
        solve = lambda r: _tri_sylvester(S[:c1, :c1], False, T[c0:c1, c0:c1], True, r)
        Y = Y.at[:, :c1, c0:c1].set(jax.vmap(solve)(R))
    solved = jnp.arange(n)[:, None] < jnp.asarray(c1_of)[None, :]
    Y = jnp.where(solved, Y, jnp.conj(jnp.swapaxes(Y, 1, 2)))
    return Y[0] + 1j * Y[1]


def _rotate_rows(X, rot, *, adjoint):
    """`G X` (or `Gᴴ X`) for the block-diagonal rotation `G` of `_schur`: row `i`
    mixes only with its partner `p(i)`, `(G X)[i] = g[i] X[i] + h[i] X[p(i)]`."""
    g, h, part = rot
    if adjoint:  # (Gᴴ X)[i] = conj(g[i]) X[i] + conj(h[p(i)]) X[p(i)]
        g, h = jnp.conj(g), jnp.conj(h[part])
    return g[:, None] * X + h[:, None] * X[part]


def _rotate_cols(X, rot, *, adjoint):
    """`X Gᴴ` (or `X G`): `(X G)ᴴ = Gᴴ Xᴴ`, column by column as above."""
    g, h, part = rot
    if adjoint:  # (X Gᴴ)[:, j] = X[:, j] conj(g[j]) + X[:, p(j)] conj(h[j])
        g, h = jnp.conj(g), jnp.conj(h)
    else:  # (X G)[:, j] = X[:, j] g[j] + X[:, p(j)] h[p(j)]
        h = h[part]
    return X * g[None, :] + X[:, part] * h[None, :]


class Flags(NamedTuple):
    """How a Sylvester solve reads its factors, one static record: whether the triangular
    `S` (of `fa`) and `T` (of `fb`) are lower rather than upper, whether `fb` is `fa` with
    `T = Sᴴ` (a Lyapunov-type equation, then also `B = Aᴴ`), whether `B` is `A` (and `fb`
    `fa`: a square root's derivative, `XẊ + ẊX = Ȧ`; the sign iteration then inverts one
    matrix a step, not two), and the `method` (`_solve`)."""

    s_lower: bool = False
    t_lower: bool = False
    lyap: bool = False
    method: str = "schur"
    same: bool = False

    def swapped(self) -> Flags:
        """The flags of the transposed equation `B Wᵀ + Wᵀ A = X̄ᵀ` (factors swapped)."""
        return self._replace(s_lower=self.t_lower, t_lower=self.s_lower)


@functools.partial(jax.jit, static_argnames=("flags",))
def _solve_factored(C, fa, fb, flags: Flags):
    """`X` with `AX + XB = C` from the factors `fa = (Z, S, rot)` of `A` and `fb` of
    `B` (see `_schur`: `A = U S Uᴴ` with `U = Z Gᴴ`, `Z` real orthogonal).

    `F = Uᴴ C V = G (Zᵀ C Z_B) G_Bᴴ` and `X = U Y Vᴴ = Z Re(Gᴴ Y G_B) Z_Bᵀ` (`X` is
    real): four *real* matrix products and four O(n²) rotation passes, instead of complex
    products with `U` (each four times the work of a real one). Jitted so that eager calls
    compile the column loop once per shape, not once per call. `lyap`: `fb` is `fa`
    with `T = Sᴴ` (a Lyapunov-type equation, solved by `_tri_lyapunov`).
    """
    Za, S, ra = fa
    Zb, T, rb = fb
    s_lower, t_lower, lyap = flags.s_lower, flags.t_lower, flags.lyap
    F = _rotate_cols(_rotate_rows((jnp.conj(Za.T) @ C) @ Zb, ra, adjoint=False), rb, adjoint=True)
    F = F.astype(S.dtype)
    Y = _tri_lyapunov(S, s_lower, F) if lyap else _tri_sylvester(S, s_lower, T, t_lower, F)
    Y = _rotate_cols(_rotate_rows(Y, ra, adjoint=True), rb, adjoint=False)
    if not jnp.iscomplexobj(C):  # real data: the solution is real
        Y = Y.real.astype(C.dtype)
    return (Za @ Y) @ jnp.conj(Zb.T)


METHODS = ("auto", "schur", "sign")


def _check_method(name, method):
    if method not in METHODS:
        raise ValueError(
            f"{name}: method must be one of {', '.join(map(repr, METHODS))}, got {method!r}. "
            "'auto' solves with the Schur decomposition on the CPU and with the matrix sign "
            "function on GPU and TPU (decided where the program is lowered)."
        )


def _factor(A, method):
    """The Schur factors of a stopped `A` where the Schur path may run: `None` for
    `method="sign"`; for `"auto"`, the factors on the CPU and zeros of their structure on
    other platforms (`lax.platform_dependent`, resolved when the program is lowered: the
    Schur decomposition is never lowered for a GPU or TPU)."""
    if method == "sign":
        return None
    if method == "schur":
        return _schur(A)
    return jax.lax.platform_dependent(A, cpu=_schur, default=schur_zeros)


def schur_zeros(A):
    """Zeros of the structure of `_schur(A)`'s factors `(Z, T, rot)` (any upper triangular `T`
    of that dtype fits): what the factors are on platforms without a Schur decomposition."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(_schur, A))


def _solve(A, B, C, fa, fb, flags: Flags):
    """`X` with `AX + XB = C`: Bartels–Stewart with the factors `fa`, `fb` (`"schur"`), the
    sign iteration on `A`, `B` (`"sign"`, `_sign.sylvester`), or, for `"auto"`, the first on
    the CPU and the second elsewhere. Never differentiated: it is called as the solve of a
    `custom_linear_solve` (whose solve JAX does not differentiate) or inside a custom rule's
    primal, so `A` and `B` need no `stop_gradient`."""
    # (`_solve_factored` is compiled per flags: one compilation whichever method led here)
    schur = lambda C, fa, fb, A, B: _solve_factored(
        C, fa, fb, flags._replace(method="schur", same=False)
    )
    sign = lambda C, fa, fb, A, B: _sign.sylvester(A, B, C, b_is_ah=flags.lyap, b_is_a=flags.same)
    args = (C, fa, fb, A, B)
    if flags.method == "schur":
        return schur(*args)
    if flags.method == "sign":
        return sign(*args)
    return jax.lax.platform_dependent(*args, cpu=schur, default=sign)


@custom_vjp(static_argnames=("flags",), constant_argnames=("fa", "fb"), allow_complex=True)
def _sylvester(A, B, C, fa, fb, *, flags: Flags):
    # fa = (Z, S, rot) with A = U S Uᴴ (see _schur); fb likewise for B; `flags`: see Flags.
    return _syl(A, B, C, fa, fb, flags, differentiable=False)


@functools.partial(jax.jit, static_argnums=(5,), static_argnames=("differentiable",))
def _syl(A, B, C, fa, fb, flags: Flags, differentiable=True):
    """`X` with `AX + XB = C`, through `custom_linear_solve`: the operator
    `X ↦ AX + XB` is differentiated (closing over A and B), the factored solves never are,
    and the transpose solve (`AᵀW + WBᵀ = X̄  ⇔  B Wᵀ + Wᵀ A = X̄ᵀ`) reuses the factors,
    swapped. Differentiable and transposable at every order, in every backend."""
    if not differentiable:
        return _solve(A, B, C, fa, fb, flags)
    solver = _linsolve.Factored(
        lambda rhs: _solve(A, B, rhs, fa, fb, flags),
        transpose=lambda rhs: _solve(B, A, rhs.T, fb, fa, flags.swapped()).T,
    )
    return _linsolve.solve(lambda X: A @ X + X @ B, C, solver)


def _sylvester_jvp(primals, tangents, *, flags):
    A, B, C, fa, fb = primals
    dA, dB, dC, _, _ = tangents
    X = _syl(A, B, C, fa, fb, flags)
    rhs = dC
    if dA is not None:
        rhs = -(dA @ X) if rhs is None else rhs - dA @ X
    if dB is not None:
        rhs = -(X @ dB) if rhs is None else rhs - X @ dB
    return X, None if rhs is None else _syl(A, B, rhs, fa, fb, flags)


def _sylvester_fwd(A, B, C, fa, fb, *, flags):
    X = _syl(A, B, C, fa, fb, flags)
    return X, (A, B, fa, fb, X)


def _sylvester_bwd(res, X_bar, *, flags):
    A, B, fa, fb, X = res
    # Aᵀ W + W Bᵀ = X̄  ⇔  B Wᵀ + Wᵀ A = X̄ᵀ: the same factors, swapped.
    W = _syl(B, A, X_bar.T, fb, fa, flags.swapped()).T
    return -(W @ X.T), -(X.T @ W), W, None, None


_sylvester.defjvp(_sylvester_jvp, zeros_as_none=True)
_sylvester.defvjp(_sylvester_fwd, _sylvester_bwd)


@jax.jit
def _schur(A):
    """Complex Schur form `A = U T Uᴴ` of a real matrix, factoring a stopped copy, returned
    as `(Z, T, rot)` with `U = Z Gᴴ`: `Z` real orthogonal (the real Schur vectors) and
    `G` the block-diagonal rotation `rot = (g, h, p)` (see `_rotate_rows`), never
    formed, so that changes of basis are real matrix products (`_solve_factored`).

    The factors carry no derivative (`A` does, as a dynamic argument of the rule). LAPACK's
    real Schur form is about 4x cheaper than its complex one; its 2×2 blocks (complex
    conjugate eigenvalue pairs) are then split by one Givens rotation each (the rotation of
    `scipy.linalg.rsf2csf`). The blocks are disjoint, so the rotations act on disjoint pairs
    of rows and columns and commute, and no rotation changes another block's entries: all of
    them are built from the real form at once and applied in one O(n²) vectorised pass
    (SciPy's loop applies them one by one; as a loop here it cost a third of the solve).
    """
    T, Z = jsl.schur(jax.lax.stop_gradient(A))
    n = T.shape[0]
    cdt = jnp.result_type(T.dtype, jnp.complex64)
    if jnp.iscomplexobj(A):  # already the complex Schur form (Z unitary): no rotations
        return Z, jnp.triu(T), (jnp.ones(n, cdt), jnp.zeros(n, cdt), jnp.arange(n))
    if n < 2:
        return Z, T.astype(cdt), (jnp.ones(n, cdt), jnp.zeros(n, cdt), jnp.arange(n))
    eps = jnp.finfo(A.dtype).eps
    # Block (m−1, m) for m = 1..n−1 where the subdiagonal is nonzero (LAPACK leaves exact
    # zeros elsewhere; a nonzero just below another block's would be invalid, keep the lower).
    a, b = jnp.diagonal(T)[:-1], jnp.diagonal(T, 1)
    c, d = jnp.diagonal(T, -1), jnp.diagonal(T)[1:]
    nz = jnp.abs(c) > eps * (jnp.abs(a) + jnp.abs(d))
    blk = nz & ~jnp.concatenate([nz[1:], jnp.zeros(1, bool)])
    a, b, c, d = (v.astype(cdt) for v in (a, b, c, d))
    lam = (a + d) / 2 + jnp.sqrt(((a - d) / 2) ** 2 + b * c)  # an eigenvalue of the block
    mu = lam - d
    r = jnp.sqrt(jnp.abs(mu) ** 2 + jnp.abs(c) ** 2)
    r = jnp.where(blk & (r > 0), r, 1.0)
    cs = jnp.where(blk, mu / r, 1.0)
    sn = jnp.where(blk, c / r, 0.0)
    # G = I except G[m−1:m+1, m−1:m+1] = [[c̄s, sn], [−sn, cs]] on each block: as a per-row
    # pair, (G X)[i] = g[i]·X[i] + h[i]·X[p(i)] with partner p(i).
    idx = jnp.arange(n)
    top, bot = idx[:-1], idx[1:]
    part = idx.at[top].set(jnp.where(blk, bot, top))
    part = part.at[bot].set(jnp.where(blk, top, part[bot]))
    g = jnp.ones(n, cdt).at[top].set(jnp.where(blk, jnp.conj(cs), 1.0))
    g = g.at[bot].set(jnp.where(blk, cs, g[bot]))
    h = jnp.zeros(n, cdt).at[top].set(jnp.where(blk, sn, 0.0))
    h = h.at[bot].set(jnp.where(blk, -sn, h[bot]))
    rot = (g, h, part)
    T = _rotate_cols(_rotate_rows(T.astype(cdt), rot, adjoint=False), rot, adjoint=True)
    return Z, jnp.triu(T), rot


def sylvester(A, B, C, *, method="auto"):
    r"""Solve the Sylvester equation $AX + XB = C$ ($A$ n×n, $B$ m×m).

    Solvable iff the spectra of $A$ and $-B$ are disjoint; otherwise (or nearly
    so) the output is non-finite (or inaccurate, with $1/\operatorname{sep}(A, -B)$
    amplification), never silently projected. Derivatives in both modes and to any order,
    with respect to $A$, $B$ and $C$ (`jax.scipy.linalg.solve_sylvester`
    differentiates with respect to neither $A$ nor $B$). Dtypes promote as `jnp`; complex
    matrices are solved with their complex Schur forms, and the rules (holomorphic in $A$,
    $B$, $C$) are the same formulas with plain transposes, as JAX's convention has it.

    `method` (static): `"schur"` solves by Bartels–Stewart with the Schur decompositions of
    $A$ and $B$ (any solvable equation; JAX lowers the Schur decomposition on the CPU only);
    `"sign"` by the matrix sign function (`jaxrules.rules._sign`: LU and matrix products,
    every platform), which needs the spectra of $A$ and $B$ both in the open left
    half-plane (e.g. both stable) or both in the open right one, and returns NaN otherwise;
    `"auto"` (default) is `"schur"` where the program runs on a CPU and `"sign"` on GPU and
    TPU (`jax.lax.platform_dependent`: decided when the program is lowered). Both rules reuse
    the one factorisation (Schur) or run the sign iteration afresh for each solve (sign).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import sylvester
        >>> A, B = jnp.array([[-2.0, 1.0], [0.0, -3.0]]), jnp.array([[-1.0]])
        >>> X = sylvester(A, B, jnp.array([[1.0], [2.0]]))
        >>> jnp.allclose(A @ X + X @ B, jnp.array([[1.0], [2.0]])).item()
        True
    """
    A, B, C = _args.matrices("sylvester", A=A, B=B, C=C)
    _check_method("sylvester", method)
    _args.square("sylvester", "A", A, batched=False)
    _args.square("sylvester", "B", B, batched=False)
    if jnp.shape(C) != (A.shape[0], B.shape[0]):
        raise ValueError(
            f"sylvester: C must have shape {(A.shape[0], B.shape[0])} (rows of A, columns of "
            f"B), got {jnp.shape(C)}."
        )
    if C.size == 0:  # nothing to solve (an empty A or B), as jnp on empty arrays
        return jnp.zeros(C.shape, jnp.result_type(A, B, C))
    fa, fb = _factor(A, method), _factor(B, method)
    return _sylvester(A, B, C, fa, fb, flags=Flags(method=method))


def lyapunov(A, Q, *, method="auto"):
    r"""Solve the continuous Lyapunov equation $AP + PA^\top + Q = 0$ ($AP + PA^H + Q = 0$
    for complex $A$, as `scipy.linalg.solve_continuous_lyapunov`).

    A Sylvester equation with $B = A^H$ and $C = -Q$, solved with a single
    Schur decomposition of $A$ (reused for $A^H$ and by both rules). Unique
    solution when $A$ is stable; $Q$ may be non-symmetric (then so is $P$).
    When two eigenvalues of $A$ sum to zero the output is non-finite (or, where that
    holds only to rounding, amplified by $1/\operatorname{sep}$), as for
    `sylvester`.
    VJP, from the Sylvester rule: $A^\top W + W A = \bar P$; $\bar Q = -W$,
    $\bar A = -(W P^\top + W^\top P)$. For complex $A$ the map is not holomorphic ($A^H$);
    the Sylvester rule is applied to $(A, A^H)$ and JAX's chain rule through the conjugate
    transpose gives the derivative in its convention.

    `method`: as for `sylvester`; the sign path (`"sign"`, and `"auto"` on GPU and TPU)
    solves every stable $A$ (and every anti-stable one), with one inverse per step
    ($B_k = A_k^H$), and returns NaN for other $A$.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import lyapunov
        >>> A = jnp.array([[-1.0, 0.5], [0.0, -2.0]])
        >>> P = lyapunov(A, jnp.eye(2))
        >>> jnp.allclose(A @ P + P @ A.T + jnp.eye(2), 0.0, atol=1e-6).item()
        True
    """
    A, Q = _args.matrices("lyapunov", A=A, Q=Q)
    _check_method("lyapunov", method)
    _args.square("lyapunov", "A", A, batched=False)
    if jnp.shape(Q) != A.shape:
        raise ValueError(f"lyapunov: Q must have the shape of A {A.shape}, got {jnp.shape(Q)}.")
    if A.size == 0:
        return jnp.zeros(A.shape, jnp.result_type(A, Q))
    fa = _factor(A, method)
    # A = U S Uᴴ, so Aᴴ = U Sᴴ Uᴴ (= Aᵀ for real A) with Sᴴ lower triangular.
    fat = None if fa is None else (fa[0], fa[1].conj().T, fa[2])
    flags = Flags(t_lower=True, lyap=True, method=method)
    return _sylvester(A, jnp.conj(A.T), -Q, fa, fat, flags=flags)


# -- discrete Lyapunov (Stein) -------------------------------------------------------------------
# A X Aᵀ − X + Q = 0. With L(X) = A X Aᵀ − X:
#   JVP  L(Ẋ) = −(Q̇ + Ȧ X Aᵀ + A X Ȧᵀ)                       (the same equation, new RHS)
#   VJP  ⟨X̄, L⁻¹R⟩ = ⟨W, R⟩ with L*(W) = Aᵀ W A − W = X̄; R = −(Q̇ + ȦXAᵀ + AXȦᵀ) gives
#        Q̄ = −W,  Ā = −(W A Xᵀ + Wᵀ A X)       (⟨W, ȦXAᵀ⟩ = ⟨WAXᵀ, Ȧ⟩, ⟨W, AXȦᵀ⟩ = ⟨WᵀAX, Ȧ⟩).
# Solves by the bilinear (Cayley) transform, as SciPy does for n > 10: with
# M = (A + I)⁻¹(A − I) (defined when −1 is not an eigenvalue of A; stable A has |λ| < 1),
#   A X Aᵀ − X = R  ⇔  M X + X Mᵀ = 2 (A + I)⁻¹ R (A + I)⁻ᵀ
# (multiply by A + I on the left and Aᵀ + I on the right: (A−I)X(Aᵀ+I) + (A+I)X(Aᵀ−I)
# = 2(AXAᵀ − X)). The adjoint Aᵀ W A − W = R is the same with Aᵀ, whose transform is Mᵀ
# ((A−I) and (A+I)⁻¹ commute): M = U S Uᴴ serves both, Mᵀ = U Sᴴ Uᴴ. And the right-hand side
# needs no solve: A = (I + M)(I − M)⁻¹ (invert the transform), so A + I = 2 (I − M)⁻¹ and
#   2 (A + I)⁻¹ R (A + I)⁻ᵀ = ½ (I − M) R (I − M)ᵀ      — two real matrix products.
# One LU of A + I (to form M) and one Schur of M, on stopped copies, serve every solve at every
# order. Off the CPU (method "sign"/"auto"), M X + X Mᴴ = rhs is solved by the sign iteration:
# M = (A − I)(A + I)⁻¹ maps |λ| < 1 to Re μ < 0, so every discrete-stable A is in its reach.
# Complex A: the equation is A X Aᴴ − X + Q = 0 and every ᵀ above is ᴴ (the derivation holds in
# the complex inner product for gradients g = conj(cotangent); see _discrete_lyapunov_bwd).
@functools.partial(jax.jit, static_argnames=("trans", "method"))
def _stein_factored(R, P, fM, *, trans, method):
    """Solve `A X Aᴴ − X = R` (`trans=False`) or `Aᴴ X A − X = R` with `P = I − M` and the
    factors `fM` of `M` (`_factor`; `P` and `M` commute, so the adjoint equation, whose
    transform is `Mᴴ`, uses `Pᴴ`). `ᴴ` is `ᵀ` for real `A`."""
    Ph = jnp.conj(P.T)
    rhs = 0.5 * (Ph @ R @ P if trans else P @ R @ Ph)
    M = jnp.eye(P.shape[0], dtype=P.dtype) - P
    Mh = jnp.conj(M.T)
    fh = None if fM is None else (fM[0], fM[1].conj().T, fM[2])
    flags = Flags(t_lower=True, lyap=True, method=method)
    if trans:
        return _solve(Mh, M, rhs, fh, fM, flags.swapped())
    return _solve(M, Mh, rhs, fM, fh, flags)


@functools.partial(jax.jit, static_argnames=("trans", "method"))
def _stein(A, R, factors, *, trans=False, method="schur"):
    """`X` with `A X Aᴴ − X = R` (or the adjoint `Aᴴ X A − X = R`) through
    `custom_linear_solve`: differentiable in `A` (via the operator) and `R`, at every
    order, with the factored solves never differentiated. The adjoint of the operator is
    the other Stein operator, solved with the same factors."""
    At = jnp.conj(A.T) if trans else A
    solve = functools.partial(_stein_factored, method=method)
    solver = _linsolve.Factored(
        lambda rhs: solve(rhs, P=factors[0], fM=factors[1], trans=trans),
        adjoint=lambda rhs: solve(rhs, P=factors[0], fM=factors[1], trans=not trans),
    )
    return _linsolve.solve(lambda X: At @ X @ jnp.conj(At.T) - X, R, solver)


@custom_vjp(static_argnames=("method",), constant_argnames=("factors",), allow_complex=True)
def _discrete_lyapunov(A, Q, factors, *, method="schur"):
    P, fM = factors
    return _stein_factored(-Q, P, fM, trans=False, method=method)


def _discrete_lyapunov_jvp(primals, tangents, *, method="schur"):
    A, Q, factors = primals
    dA, dQ, _ = tangents
    X = _stein(A, -Q, factors, method=method)
    if dA is None and dQ is None:
        return X, None
    rhs = jnp.zeros_like(X) if dQ is None else -dQ
    if dA is not None:
        rhs = rhs - (dA @ X @ jnp.conj(A.T) + A @ X @ jnp.conj(dA.T))
    return X, _stein(A, rhs, factors, method=method)


def _discrete_lyapunov_fwd(A, Q, factors, *, method="schur"):
    X = _stein(A, -Q, factors, method=method)
    return X, (A, factors, X)


def _discrete_lyapunov_bwd(res, X_bar, *, method="schur"):
    # In gradients g = conj(cotangent) (the same for real A): Aᴴ W A − W = g_X,
    # g_Q = −W, g_A = −(W A Xᴴ + Wᴴ A X); the cotangents are their conjugates.
    A, factors, X = res
    cj = jnp.conj
    W = _stein(A, cj(X_bar), factors, trans=True, method=method)
    return cj(-(W @ A @ cj(X.T) + cj(W.T) @ A @ X)), -cj(W), None


_discrete_lyapunov.defjvp(_discrete_lyapunov_jvp, zeros_as_none=True)
_discrete_lyapunov.defvjp(_discrete_lyapunov_fwd, _discrete_lyapunov_bwd)


def discrete_lyapunov(A, Q, *, method="auto"):
    r"""Solve the discrete Lyapunov (Stein) equation $A X A^\top - X + Q = 0$ ($A X A^H - X + Q
    = 0$ for complex $A$, as `scipy.linalg.solve_discrete_lyapunov`).

    Unique solution when $A$ is stable in the discrete sense (spectral radius below 1;
    more generally when no two eigenvalues of $A$ multiply to 1; otherwise the output is
    non-finite, or amplified where that holds only to rounding); $Q$ may be
    non-symmetric. Solved by the bilinear transform to a continuous equation (as SciPy does
    for n > 10; needs $-1$ not an eigenvalue of $A$) with one LU and one Schur
    decomposition reused by both rules at every order. JVP:
    $A\dot X A^\top - \dot X = -(\dot Q + \dot A X A^\top + A X \dot A^\top)$;
    VJP: $A^\top W A - W = \bar X$, $\bar Q = -W$,
    $\bar A = -(W A X^\top + W^\top A X)$. Complex $A$: the same
    with $^\top \to {}^H$ for gradients $g = \overline{\text{cotangent}}$ (the map is not
    holomorphic in $A$): $A^H W A - W = \overline{\bar X}$, $\bar Q = -\overline W$,
    $\bar A = -\overline{W A X^H + W^H A X}$.

    `method`: as for `sylvester`. The transformed equation's matrix
    $M = (A + I)^{-1}(A - I)$ has its spectrum in the open left half-plane exactly when
    $A$ is stable in the discrete sense, so the sign path (`"sign"`, and `"auto"` on GPU and
    TPU) solves every discrete-stable $A$; for other $A$ it returns NaN.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxrules.rules import discrete_lyapunov
        >>> A = jnp.array([[0.5, 0.2], [-0.1, 0.3]])
        >>> X = discrete_lyapunov(A, jnp.eye(2))
        >>> jnp.allclose(A @ X @ A.T - X + jnp.eye(2), 0.0, atol=1e-6).item()
        True
    """
    _check_method("discrete_lyapunov", method)
    A, Q = _args.matrices("discrete_lyapunov", A=A, Q=Q)
    _args.square("discrete_lyapunov", "A", A, batched=False)
    if jnp.shape(Q) != A.shape:
        raise ValueError(
            f"discrete_lyapunov: Q must have the shape of A {A.shape}, got {jnp.shape(Q)}."
        )
    if A.size == 0:
        return jnp.zeros(A.shape, jnp.result_type(A, Q))
    As = jax.lax.stop_gradient(A)
    eye = jnp.eye(A.shape[0], dtype=A.dtype)
    M = jnp.linalg.solve(As + eye, As - eye)
    return _discrete_lyapunov(A, Q, (eye - M, _factor(M, method)), method=method)


def _kron_stein(A, Q, method=None):
    del method  # one reference for every path
    # Row-major vec: vec(A X Aᴴ) = (A ⊗ conj(A)) vec(X).
    n = A.shape[0]
    K = jnp.kron(A, jnp.conj(A)) - jnp.eye(n * n, dtype=A.dtype)
    return jnp.linalg.solve(K, -Q.reshape(-1)).reshape(n, n)


def _kron_sylvester(A, B, C, method=None):
    del method  # one reference for every path
    # Row-major vec: vec(AX) = (A ⊗ I) vec(X), vec(XB) = (I ⊗ Bᵀ) vec(X).
    n, m = C.shape
    K = jnp.kron(A, jnp.eye(m, dtype=A.dtype)) + jnp.kron(jnp.eye(n, dtype=A.dtype), B.T)
    return jnp.linalg.solve(K, C.reshape(-1)).reshape(n, m)


#: Both paths are checked on the CPU: "auto" (here the Schur path) and the sign path that "auto"
#: takes on GPU and TPU.
_PATHS = [registry.Case(m, {"method": m}) for m in ("auto", "sign")]

registry.register(
    "sylvester",
    reference=_kron_sylvester,
    inputs={"A": inputs.stable(4), "B": inputs.stable(3), "C": inputs.general((4, 3))},
    # Against the Kronecker-product solve (an n²×n² system: small n only).
    bench_inputs=lambda n: {
        "A": inputs.stable(n),
        "B": inputs.stable(n),
        "C": inputs.general((n, n)),
    },
    bench_sizes=(8, 16, 32),
    dtypes=_args.WITH_COMPLEX,
    cases=_PATHS,
    order=2,
    tags=("matrix_equations",),
)(sylvester)
registry.register(
    "lyapunov",
    reference=lambda A, Q, method=None: _kron_sylvester(A, jnp.conj(A.T), -Q),
    inputs={"A": inputs.stable(4), "Q": inputs.general((4, 4))},
    bench_inputs=lambda n: {"A": inputs.stable(n), "Q": inputs.general((n, n))},
    bench_sizes=(8, 16, 32),
    dtypes=_args.WITH_COMPLEX,
    cases=_PATHS,
    order=2,
    tags=("matrix_equations",),
)(lyapunov)
registry.register(
    "discrete_lyapunov",
    reference=_kron_stein,
    # ‖A‖₂ = 0.8: spectral radius below 1, non-normal, non-symmetric.
    inputs={"A": inputs.general((4, 4), scale=0.8 / 2), "Q": inputs.general((4, 4))},
    bench_inputs=lambda n: {
        "A": inputs.general((n, n), scale=0.8 / n**0.5),
        "Q": inputs.general((n, n)),
    },
    bench_sizes=(8, 16, 32),
    dtypes=_args.WITH_COMPLEX,
    cases=_PATHS,
    order=2,
    tags=("matrix_equations",),
)(discrete_lyapunov)
