r"""Sylvester solves without the Schur decomposition: the matrix sign function, for GPU and TPU.

JAX lowers its Schur decomposition on the CPU only; LU, matrix products and `while_loop`
lower everywhere. The sign function gives the Sylvester equation $AX + XB = C$ from those
alone (Roberts 1971; Higham, *Functions of Matrices*, §2.4 and §5.3). With
$T = \begin{pmatrix} I & X \\ 0 & I \end{pmatrix}$,

$$M = \begin{pmatrix} A & -C \\ 0 & -B \end{pmatrix}
    = T \begin{pmatrix} A & 0 \\ 0 & -B \end{pmatrix} T^{-1},$$

so when the spectra of $A$ and $B$ lie in the open right half-plane,
$\operatorname{sign}(M) = T\,\mathrm{diag}(I, -I)\,T^{-1}
= \begin{pmatrix} I & -2X \\ 0 & -I \end{pmatrix}$. Newton's iteration for the sign,
$M_{k+1} = \tfrac12(\mu_k M_k + (\mu_k M_k)^{-1})$, keeps the block triangular form, and
$M^{-1} = \begin{pmatrix} A^{-1} & -A^{-1} C B^{-1} \\ 0 & -B^{-1} \end{pmatrix}$
gives it blockwise, with no $2n \times 2n$ inverse:

$$A_{k+1} = \tfrac12(\mu_k A_k + A_k^{-1}/\mu_k), \quad
  B_{k+1} = \tfrac12(\mu_k B_k + B_k^{-1}/\mu_k), \quad
  C_{k+1} = \tfrac12(\mu_k C_k + A_k^{-1} C_k B_k^{-1}/\mu_k),$$

$A_k, B_k \to I$ and $C_k \to 2X$ quadratically. When both spectra lie in the open *left*
half-plane, the same iteration applied to $(-A, -B, -C)$ negates every iterate: $A_k, B_k
\to -I$ and $X = -C_\infty/2$. The limit's sign $s = \operatorname{tr}(A_\infty)/n$ tells the
two cases apart; any other limit (a spectrum on both sides of the imaginary axis, where
$\operatorname{sign}(A)$ is not $\pm I$) means the spectra are not separated by the imaginary
axis, which this method cannot solve: the result is NaN (documented on every rule using it).

The scaling $\mu_k = (\lVert \mathrm{diag}(A_k, B_k)^{-1}\rVert_F /
\lVert \mathrm{diag}(A_k, B_k)\rVert_F)^{1/2}$ (Higham's Frobenius-norm scaling of the block
diagonal, the part that decides convergence) brings eigenvalues of any magnitude to the unit
circle in a few steps; it is switched off once the relative change falls below $10^{-2}$, where
unscaled Newton converges quadratically. The loop stops when that change is below
$\sqrt{\varepsilon}$ (the next iterate is then accurate to about $\varepsilon$ times the
condition), or after `MAX_STEPS`.

Each step costs two inverses and two products (one inverse where $B$ is $A$ or $A^H$): dense
kernels, which accelerators run at full speed; on this project's 2-core CPU the whole solve
also measured faster than the Schur path (`benchmarks/matrix_equation_paths.py`,
docs/library/matrix-equations.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _linsolve

#: Newton steps at most. Scaled Newton needs about 10 in float64 for condition numbers up to
#: 1e12; a loop that reaches this bound has not converged and returns NaN.
MAX_STEPS = 40


def _fro2(M):
    return jnp.sum(jnp.abs(M) ** 2)


def sylvester(A, B, C, *, b_is_ah: bool = False, b_is_a: bool = False):
    """`X` with `AX + XB = C` by the sign iteration; NaN where the spectra of `A` and `B` are
    not both in the open right or both in the open left half-plane (or the iteration did not
    converge in `MAX_STEPS`). `b_is_ah`: `B` is `Aᴴ` (Lyapunov); `b_is_a`: `B` is `A` (the
    equation of a square root's derivative, `XẊ + ẊX = Ȧ`): either way one inverse per step,
    not two (`B`'s iterates are then `A`'s, or their adjoints). Not differentiated (the rules
    differentiate the operator around it)."""
    n, m = C.shape
    eps = jnp.finfo(C.dtype).eps
    tol = jnp.sqrt(eps).astype(jnp.finfo(C.dtype).dtype)

    def step(state):
        Ak, Bk, Ck, k, change = state
        Ai = jnp.linalg.inv(Ak)
        Bi = jnp.conj(Ai.T) if b_is_ah else Ai if b_is_a else jnp.linalg.inv(Bk)
        mu = jnp.sqrt(jnp.sqrt((_fro2(Ai) + _fro2(Bi)) / (_fro2(Ak) + _fro2(Bk))))
        mu = jnp.where(change < 1e-2, 1.0, mu).astype(Ak.dtype)
        A1 = (mu * Ak + Ai / mu) / 2
        B1 = jnp.conj(A1.T) if b_is_ah else A1 if b_is_a else (mu * Bk + Bi / mu) / 2
        C1 = (mu * Ck + (Ai @ Ck) @ Bi / mu) / 2
        rel = lambda new, old: jnp.sqrt(_fro2(new - old) / _fro2(new))
        return A1, B1, C1, k + 1, jnp.maximum(rel(A1, Ak), rel(B1, Bk))

    def going(state):
        _, _, _, k, change = state
        return (k < MAX_STEPS) & ~(change <= tol)  # NaN change: stop (the result is NaN)

    eye = lambda k: jnp.eye(k, dtype=A.dtype)
    # A = B = I: X = C/2 and no step (the state is already the limit). `logm`'s derivative
    # solves with I for the roots it did not take, and discards those solves.
    identity = jnp.all(A == eye(n)) & jnp.all(B == eye(m))
    # (A/c) X + X (B/c) = C/c has the same X: with c a power of two near the entries of A and
    # B (exact), μ's Frobenius norms, which square the entries, neither over- nor underflow
    # (a stable A of scale 1e-150 gave ‖A⁻¹‖²/‖A‖² = inf and NaN; 1e-15 in float32).
    c = jnp.where(identity, 1, _linsolve.power_of_two(jnp.concatenate([A.ravel(), B.ravel()])))
    A, B, C = A / c, B / c, C / c
    change = jnp.where(identity, 0, jnp.inf).astype(tol.dtype)
    init = (A, B, C, jnp.zeros((), jnp.int32), change)
    A_, B_, C_, _, change = jax.lax.while_loop(going, step, init)
    s = jnp.round(jnp.real(jnp.trace(A_)) / n)
    separated = (
        (jnp.abs(s) == 1)
        & (_fro2(A_ - s * eye(n)) < 0.25)
        & (_fro2(B_ - s * eye(m)) < 0.25)
        & (change <= tol)
    )
    return jnp.where(separated, (s / 2).astype(C_.dtype) * C_, jnp.nan)
