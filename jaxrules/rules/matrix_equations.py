r"""Matrix equations: Sylvester :math:`AX + XB = C` and continuous Lyapunov
:math:`AP + PA^\top + Q = 0`.

**Primal** (Bartels–Stewart). With complex Schur forms :math:`A = U S U^H`,
:math:`B = V T V^H` (:math:`S, T` upper triangular), :math:`AX + XB = C` becomes
:math:`S Y + Y T = F` with :math:`Y = U^H X V`, :math:`F = U^H C V`, solved one column at a
time: :math:`(S + t_{jj} I)\,y_j = f_j - \sum_{k<j} t_{kj}\,y_k` — a triangular solve per
column. A solution exists and is unique iff the spectra of :math:`A` and :math:`-B` are
disjoint (for Lyapunov: no two eigenvalues of :math:`A` sum to zero, which holds when
:math:`A` is stable, i.e. its spectrum lies in the open left half-plane).

**Derivatives.** With :math:`L(X) = AX + XB`, differentiating :math:`L(X) = C`:
:math:`A\dot X + \dot X B = \dot C - \dot A X - X\dot B` — the same equation with a new
right-hand side. For the VJP, :math:`\langle \bar X, L^{-1}R\rangle = \langle W, R\rangle`
with :math:`L^*(W) = A^\top W + W B^\top = \bar X`, so :math:`\bar C = W`,
:math:`\bar A = -W X^\top`, :math:`\bar B = -X^\top W`. Transposing the adjoint equation gives
:math:`B W^\top + W^\top A = \bar X^\top`: a Sylvester equation in :math:`(B, A)`, solved
with the *same* Schur factors, swapped. As in :mod:`jaxrules.rules.linalg`, the factors
enter as nondiff arguments, computed on stopped copies, and the rules solve through
``jax.lax.custom_linear_solve`` with the operator :math:`X \mapsto AX + XB` and the factored
solves, so every order reuses the one factorisation and is right however JAX reaches it.

For Lyapunov, :math:`B = A^\top = U S^H U^H` (``A`` real): one Schur decomposition serves
both sides, with :math:`S^H` lower triangular (columns solved last to first).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

import jaxrules as jr
from jaxrules import inputs

__all__ = ["lyapunov", "sylvester"]


_BLOCK = 8


def _tri_sylvester(S, s_lower, T, t_lower, F):
    """Solve ``S Y + Y T = F`` for triangular ``S`` (n×n) and ``T`` (m×m).

    Column by column, ``(S + t_jj I) y_j = f_j − Σ_{k<j} t_kj y_k`` (for upper ``T``), in
    blocks of ``_BLOCK`` columns: within a block the coupling is a small matrix-vector
    product, and each finished block updates the remaining right-hand sides with one matrix
    product. The shifted matrix ``S + t_jj I`` is carried and only its diagonal updated.
    A lower ``T`` is handled by reversing the column order (then it is upper).
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
            y = jsl.solve_triangular(M, Rb[:, jj] - Yb @ Tb[:, jj], lower=s_lower)
            return Yb.at[:, jj].set(y), M, t

        Yb, M, shift = jax.lax.fori_loop(0, b, column, (jnp.zeros((n, b), F.dtype), M, shift))
        Y = jax.lax.dynamic_update_slice(Y, Yb, (0, j0))
        # Later columns: subtract this block's contribution (earlier columns are done).
        R = R - Yb @ jax.lax.dynamic_slice(Tp, (j0, 0), (b, mp))
        return R, Y, M, shift

    init = (Fp, jnp.zeros_like(Fp), S, jnp.zeros((), S.dtype))
    _, Y, _, _ = jax.lax.fori_loop(0, nb, block, init)
    return Y[:, :m]


@functools.partial(jax.jit, static_argnames=("s_lower", "t_lower"))
def _solve_factored(C, U, S, V, T, *, s_lower, t_lower):
    # Jitted so that eager calls compile the column loop once per shape, not once per call.
    # C and X are real: F = Uᴴ C V starts with two real products (Uᴴ C = UᵣᵀC − i UᵢᵀC), and
    # X = Re(U Y Vᴴ) = Re(Z)Vᵣᵀ + Im(Z)Vᵢᵀ with Z = U Y ends with two.
    F = (U.real.T @ C - 1j * (U.imag.T @ C)).astype(S.dtype) @ V
    Y = _tri_sylvester(S, s_lower, T, t_lower, F)
    Z = U @ Y
    return (Z.real @ V.real.T + Z.imag @ V.imag.T).astype(C.dtype)


@jr.custom_vjp(
    static_argnames=("s_lower", "t_lower"), nondiff_argnames=("fa", "fb"), allow_complex=True
)
def _sylvester(A, B, C, fa, fb, *, s_lower, t_lower):
    # fa = (U, S) with A = U S Uᴴ; fb = (V, T) with B = V T Vᴴ; the flags say which of S, T
    # are lower (rather than upper) triangular.
    return _solve_factored(C, *fa, *fb, s_lower=s_lower, t_lower=t_lower)


@functools.partial(jax.jit, static_argnums=(5,))
def _syl(A, B, C, fa, fb, flags):
    """``X`` with ``AX + XB = C``, through ``custom_linear_solve``: the operator
    ``X ↦ AX + XB`` is differentiated (closing over A and B), the factored solves never are,
    and the transpose solve (``AᵀW + WBᵀ = X̄  ⇔  B Wᵀ + Wᵀ A = X̄ᵀ``) reuses the factors,
    swapped. Differentiable and transposable at every order, in every backend."""
    s_lower, t_lower = flags
    return jax.lax.custom_linear_solve(
        lambda X: A @ X + X @ B,
        C,
        lambda _, rhs: _solve_factored(rhs, *fa, *fb, s_lower=s_lower, t_lower=t_lower),
        lambda _, rhs: _solve_factored(rhs.T, *fb, *fa, s_lower=t_lower, t_lower=s_lower).T,
    )


def _sylvester_jvp(primals, tangents, *, s_lower, t_lower):
    A, B, C, fa, fb = primals
    dA, dB, dC, _, _ = tangents
    flags = (s_lower, t_lower)
    X = _syl(A, B, C, fa, fb, flags)
    rhs = dC
    if dA is not None:
        rhs = -(dA @ X) if rhs is None else rhs - dA @ X
    if dB is not None:
        rhs = -(X @ dB) if rhs is None else rhs - X @ dB
    return X, None if rhs is None else _syl(A, B, rhs, fa, fb, flags)


def _sylvester_fwd(A, B, C, fa, fb, *, s_lower, t_lower):
    X = _syl(A, B, C, fa, fb, (s_lower, t_lower))
    return X, (A, B, fa, fb, X)


def _sylvester_bwd(res, X_bar, *, s_lower, t_lower):
    A, B, fa, fb, X = res
    # Aᵀ W + W Bᵀ = X̄  ⇔  B Wᵀ + Wᵀ A = X̄ᵀ: the same factors, swapped.
    W = _syl(B, A, X_bar.T, fb, fa, (t_lower, s_lower)).T
    return -(W @ X.T), -(X.T @ W), W, None, None


_sylvester.defjvp(_sylvester_jvp, symbolic_zeros=True)
_sylvester.defvjp(_sylvester_fwd, _sylvester_bwd)


@jax.jit
def _schur(A):
    """Complex Schur form ``A = U T Uᴴ`` of a real matrix, factoring a stopped copy.

    The factors carry no derivative (``A`` does, as a dynamic argument of the rule). LAPACK's
    real Schur form is about 4x cheaper than its complex one; its 2×2 blocks (complex
    conjugate eigenvalue pairs) are then split by one Givens rotation each (the algorithm of
    ``scipy.linalg.rsf2csf``), an O(n²) pass.
    """
    T, Z = jsl.schur(jax.lax.stop_gradient(A))
    n = T.shape[0]
    cdt = jnp.result_type(T.dtype, jnp.complex64)
    T, Z = T.astype(cdt), Z.astype(cdt)
    if n < 2:
        return Z, T
    eps = jnp.finfo(A.dtype).eps
    eye2 = jnp.eye(2, dtype=cdt)

    def body(i, carry):
        T, Z = carry
        m = n - 1 - i
        a, b = T[m - 1, m - 1], T[m - 1, m]
        c, d = T[m, m - 1], T[m, m]
        block = jnp.abs(c) > eps * (jnp.abs(a) + jnp.abs(d))
        # An eigenvalue of the 2×2 block, minus d; the rotation that zeroes c.
        lam = (a + d) / 2 + jnp.sqrt(((a - d) / 2) ** 2 + b * c)
        mu = lam - d
        r = jnp.sqrt(jnp.abs(mu) ** 2 + jnp.abs(c) ** 2)
        r = jnp.where(r == 0, 1.0, r)
        cs, sn = mu / r, c / r
        G = jnp.where(block, jnp.array([[jnp.conj(cs), sn], [-sn, cs]]), eye2)
        rows = jax.lax.dynamic_slice(T, (m - 1, 0), (2, n))
        T = jax.lax.dynamic_update_slice(T, G @ rows, (m - 1, 0))
        cols = jax.lax.dynamic_slice(T, (0, m - 1), (n, 2))
        T = jax.lax.dynamic_update_slice(T, cols @ G.conj().T, (0, m - 1))
        zc = jax.lax.dynamic_slice(Z, (0, m - 1), (n, 2))
        Z = jax.lax.dynamic_update_slice(Z, zc @ G.conj().T, (0, m - 1))
        T = T.at[m, m - 1].set(0)
        return T, Z

    T, Z = jax.lax.fori_loop(0, n - 1, body, (T, Z))
    return Z, T


def _square(name, what, M):
    if jnp.ndim(M) != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name}: {what} must be a square matrix, got shape {jnp.shape(M)}.")


def sylvester(A, B, C):
    r"""Solve the Sylvester equation :math:`AX + XB = C` (:math:`A` n×n, :math:`B` m×m).

    Solvable iff the spectra of :math:`A` and :math:`-B` are disjoint; otherwise (or nearly
    so) the output is non-finite (or inaccurate, with :math:`1/\operatorname{sep}(A, -B)`
    amplification), never silently projected. Derivatives in both modes and to any order,
    with respect to :math:`A`, :math:`B` and :math:`C` (``jax.scipy.linalg.solve_sylvester``
    differentiates with respect to neither :math:`A` nor :math:`B`). Uses the Schur
    decomposition, which JAX lowers on CPU only.

    >>> import jax.numpy as jnp
    >>> from jaxrules.rules import sylvester
    >>> A, B = jnp.array([[-2.0, 1.0], [0.0, -3.0]]), jnp.array([[-1.0]])
    >>> X = sylvester(A, B, jnp.array([[1.0], [2.0]]))
    >>> jnp.allclose(A @ X + X @ B, jnp.array([[1.0], [2.0]])).item()
    True
    """
    _square("sylvester", "A", A)
    _square("sylvester", "B", B)
    if jnp.shape(C) != (A.shape[0], B.shape[0]):
        raise ValueError(
            f"sylvester: C must have shape {(A.shape[0], B.shape[0])} (rows of A, columns of "
            f"B), got {jnp.shape(C)}."
        )
    return _sylvester(A, B, C, _schur(A), _schur(B), s_lower=False, t_lower=False)


def lyapunov(A, Q):
    r"""Solve the continuous Lyapunov equation :math:`AP + PA^\top + Q = 0`.

    A Sylvester equation with :math:`B = A^\top` and :math:`C = -Q`, solved with a single
    Schur decomposition of :math:`A` (reused for :math:`A^\top` and by both rules). Unique
    solution when :math:`A` is stable; :math:`Q` may be non-symmetric (then so is :math:`P`).
    VJP, from the Sylvester rule: :math:`A^\top W + W A = \bar P`; :math:`\bar Q = -W`,
    :math:`\bar A = -(W P^\top + W^\top P)`.

    >>> import jax.numpy as jnp
    >>> from jaxrules.rules import lyapunov
    >>> A = jnp.array([[-1.0, 0.5], [0.0, -2.0]])
    >>> P = lyapunov(A, jnp.eye(2))
    >>> jnp.allclose(A @ P + P @ A.T + jnp.eye(2), 0.0, atol=1e-6).item()
    True
    """
    _square("lyapunov", "A", A)
    if jnp.shape(Q) != A.shape:
        raise ValueError(f"lyapunov: Q must have the shape of A {A.shape}, got {jnp.shape(Q)}.")
    U, S = _schur(A)
    # A = U S Uᴴ and, A being real, Aᵀ = Aᴴ = U Sᴴ Uᴴ with Sᴴ lower triangular.
    return _sylvester(A, A.T, -Q, (U, S), (U, S.conj().T), s_lower=False, t_lower=True)


def _kron_sylvester(A, B, C):
    # Row-major vec: vec(AX) = (A ⊗ I) vec(X), vec(XB) = (I ⊗ Bᵀ) vec(X).
    n, m = C.shape
    K = jnp.kron(A, jnp.eye(m, dtype=A.dtype)) + jnp.kron(jnp.eye(n, dtype=A.dtype), B.T)
    return jnp.linalg.solve(K, C.reshape(-1)).reshape(n, m)


jr.register(
    "sylvester",
    reference=_kron_sylvester,
    inputs={"A": inputs.stable(4), "B": inputs.stable(3), "C": inputs.general((4, 3))},
    order=2,
    tags=("matrix_equations",),
)(sylvester)
jr.register(
    "lyapunov",
    reference=lambda A, Q: _kron_sylvester(A, A.T, -Q),
    inputs={"A": inputs.stable(4), "Q": inputs.general((4, 4))},
    order=2,
    tags=("matrix_equations",),
)(lyapunov)
