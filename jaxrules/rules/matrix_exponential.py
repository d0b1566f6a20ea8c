r"""The matrix exponential $X = e^A$ with its Fréchet derivative as the rule: both modes from
one set of the primal's pieces, the reverse mode with no tape.

**Primal** (Higham 2005, "The scaling and squaring method for the matrix exponential
revisited"): $B = 2^{-s} A$ with $s$ chosen below, the diagonal Padé approximant
$r_m(B) = Q^{-1}P$, $P = V + U$, $Q = V - U$ with $U$ the odd and $V$ the even part of the
numerator, and $X = r_m(B)^{2^s}$ by $s$ squarings. The degree is fixed
by the dtype — $m = 13$, $\theta_{13} = 5.37$ in 64-bit, $m = 7$, $\theta_7 = 3.93$ in 32-bit
(JAX's constants) — not chosen by the norm: one program under `vmap` (where a `switch` over
degrees runs every branch), at most 6 products more than necessary for a matrix of tiny norm.
For $m = 13$ (with $B_{2k} = B^{2k}$, $b_j$ the Padé coefficients):

$$W = B_6(b_{13}B_6 + b_{11}B_4 + b_9B_2) + b_7B_6 + b_5B_4 + b_3B_2 + b_1I,\quad U = BW,$$
$$V = B_6(b_{12}B_6 + b_{10}B_4 + b_8B_2) + b_6B_6 + b_4B_4 + b_2B_2 + b_0I$$

(6 products), one LU (of $Q^\top$: see `_solve_q`).

**The number of squarings.** The approximant's backward error is $\Delta B = h(B)$ with
$h(x) = \log(e^{-x}r_m(x)) = \sum_{k \ge 2m+1} c_k x^k$, odd (as $r_m(-x) = 1/r_m(x)$), so
$\lVert\Delta B\rVert/\lVert B\rVert \le \sum |c_k|\,\alpha^{k-1}$ for any $\alpha$ with
$\lVert B^{2j}\rVert^{1/2j} \le \alpha$ for all $2j \ge 2m$; $\theta_m$ is where that sum
is the unit roundoff. Higham 2005 takes $\alpha = \lVert B\rVert_1$, i.e.
$s = \lceil\log_2(\lVert A\rVert_1/\theta_m)\rceil$; Al-Mohy & Higham 2009 ("A new scaling and
squaring algorithm for the matrix exponential", Thm. 4.2) show
$\alpha = \max(\lVert B^4\rVert_1^{1/4}, \lVert B^6\rVert_1^{1/6})$ will do (every even
power from 4 on is a product of $B^4$s and $B^6$s), which is far smaller for non-normal
matrices. The rule takes $s = \lfloor\log_2(\lVert A\rVert_1/\theta_m)\rfloor$ (JAX's count:
$\lVert B\rVert_1 \le 2\theta_m$) and one more where that $\alpha$, from the $B_4$, $B_6$ it
computes anyway, exceeds $\theta_m$ (exact rescaling of the powers by $2^{-k}$). So
$\alpha \le \theta_m$ always — JAX's $\lfloor\cdot\rfloor$ alone leaves normal matrices,
whose $\alpha$ is their 2-norm, up to $2\theta_m$: 1e-8 off in float64 — and $\lVert B\rVert_1$
stays within $2\theta_m$, JAX's own regime for the approximant's rounding (their algorithm's
rounding guard, which also lets $\lVert B\rVert_1 \gg \theta_m$, is not needed; without it,
choosing $s$ from $\alpha$ alone lost accuracy for triangular matrices — measured, not used).

More than 64 squarings ($\lVert A\rVert_1 > 2^{64}\theta \approx 10^{20}$): NaN, value and
derivatives (`jax.scipy.linalg.expm` stops at 16, $\lVert A\rVert_1 \approx 3.5 \cdot 10^5$,
where $e^A$ may be finite and well-conditioned: $e^{tQ}$ of a rate matrix at long times).

**JVP: the Fréchet derivative** $L(A, E)$ of the computed approximant, by differentiating the
three stages (Al-Mohy & Higham 2009, "Computing the Fréchet derivative of the matrix
exponential", Alg. 6.4): $\dot B = 2^{-s}E$; $\dot B_2 = B\dot B + \dot B B$,
$\dot B_4 = B_2\dot B_2 + \dot B_2 B_2$, $\dot B_6 = B_4\dot B_2 + \dot B_4 B_2$; $\dot U$,
$\dot V$ by the product rule with the primal's inner sums (6 more pairs of products);
$Q\dot R = \dot P - \dot Q R$ with the primal's LU; then $s$ times
$\dot R \leftarrow R\dot R + \dot R R$, $R \leftarrow R^2$. No second factorisation, no
second Padé evaluation.

**VJP: the Fréchet derivative at $A^\top$.** The exponential's power series has real
coefficients, so $\langle G, L(A, E)\rangle = \langle L(A^\top, G), E\rangle$ in the pairing
$\langle G, E\rangle = \sum_{ij} G_{ij}E_{ij}$ (each term $A^j E A^k$ of the series has adjoint
$(A^\top)^j G (A^\top)^k$) — JAX's convention for a holomorphic function, so also for complex
$A$ (no conjugation): the cotangent is $\bar A = L(A^\top, \bar X)$. And every piece of the
computation at $A^\top$ is the transpose of the piece at $A$ ($B_{2k}^\top$, $W^\top$, $R^\top$;
the primal factors $Q^\top$, the $Q$ at $A^\top$: see `_solve_q`), so the VJP is the JVP's
code on the primal's pieces transposed: no tape of the squarings (JAX's own reverse mode
through `expm` stores 16 of them), the same cost as the JVP.

**Orders.** Both rules compute the pieces from $A$ with JAX operations (the squarings nested
`scan`s with `cond`s, as JAX's `expm` one `scan`), so JAX differentiates the rules themselves:
second order in every mode combination (Hessians, forward over reverse, reverse over
reverse).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .. import _registry as registry
from .. import inputs
from .._custom import custom_vjp
from . import _arguments as _args

__all__ = ["expm"]

# Padé coefficients b_0 … b_m of the diagonal approximant to e^x (Higham 2005, Table 2.3).
_B13 = (
    64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
    129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
    40840800.0, 960960.0, 16380.0, 182.0, 1.0,
)  # fmt: skip
_B7 = (17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0)
# θ_m: the largest α (‖B‖₁ or the module's α) for which r_m(B) is exact to unit roundoff
# (JAX's constants).
_THETA = {13: 5.371920351148152, 7: 3.925724783138660}
#: More squarings than this (‖A‖₁ > 2⁶⁴θ, about 1e20): NaN, value and derivatives. (JAX's
#: `expm` stops at 16, ‖A‖₁ ≈ 3.5e5, where e^A can be finite: e^(tQ) of a rate matrix Q at
#: long times t, whose rows are the stationary distribution.)
MAX_SQUARINGS = 64
_CHUNK = 16


def _degree(dtype) -> int:
    return 13 if jnp.finfo(dtype).bits == 64 else 7


class _Pade(NamedTuple):
    """The Padé stage at `A`: what the squarings and the Fréchet derivative reuse.
    `R = r_m(B)`, `B = 2^-s A`, to be squared `s` times; `W1`, `Z1` are `None` for m = 7."""

    B: jax.Array
    B2: jax.Array
    B4: jax.Array
    B6: jax.Array
    W1: jax.Array | None
    Z1: jax.Array | None
    W: jax.Array
    lu: tuple  # `lax.linalg.lu` of Qᵀ: (lu, pivots, permutation); see `_solve_q`
    R: jax.Array
    s: jax.Array

    def transposed(self) -> _Pade:
        """The pieces at `Aᵀ` (the LU of `Qᵀ` is the LU of the `Q` at `Aᵀ`)."""
        t = lambda M: None if M is None else M.T
        return self._replace(
            **{k: t(getattr(self, k)) for k in ("B", "B2", "B4", "B6", "W1", "Z1", "W", "R")}
        )


def _scaled(M, s):
    return M * (0.5 ** s.astype(jnp.finfo(M.dtype).dtype)).astype(M.dtype)


def _sums(b, X2, X4, X6, eye=None):
    """The Padé numerator's sums over the even powers (linear in them: with `eye=None`, the
    same combination of their tangents). Returns `(W1, Z1, W0, V0)` with
    `W = X6 W1 + W0`, `V = X6 Z1 + V0` for m = 13 (`W1 = Z1 = None` and `W = W0`, `V = V0`
    for m = 7)."""
    one = (lambda c: c * eye) if eye is not None else (lambda c: 0.0)
    odd = b[-1::-2]  # W's coefficients from the highest: b_13, b_11, … (m = 13) or b_7, … (m = 7)
    even = b[-2::-2]
    W1 = Z1 = None
    if len(b) == 14:
        W1 = odd[0] * X6 + odd[1] * X4 + odd[2] * X2
        Z1 = even[0] * X6 + even[1] * X4 + even[2] * X2
        odd, even = odd[3:], even[3:]
    W0 = odd[0] * X6 + odd[1] * X4 + odd[2] * X2 + one(odd[3])
    V0 = even[0] * X6 + even[1] * X4 + even[2] * X2 + one(even[3])
    return W1, Z1, W0, V0


def _norm1(M):
    """`‖M‖₁`, the largest column sum (also `logm`'s root test)."""
    return jnp.max(jnp.sum(jnp.abs(M), axis=0))


def _pieces(A) -> _Pade:
    """The Padé stage (plain JAX: differentiable)."""
    m = _degree(A.dtype)
    b = _B13 if m == 13 else _B7
    sg = jax.lax.stop_gradient
    # JAX's count first, s = ⌊log₂(‖A‖₁/θ_m)⌋, which leaves ‖B‖₁ ≤ 2θ_m ...
    s = sg(jnp.maximum(0.0, jnp.floor(jnp.log2(_norm1(A) / _THETA[m]))))
    s = jnp.where(jnp.isfinite(s), s, MAX_SQUARINGS + 1).astype(jnp.int32)
    B = _scaled(A, s)
    B2 = B @ B
    B4 = B2 @ B2
    B6 = B4 @ B2
    # ... and one squaring more where α = max(‖B⁴‖₁^(1/4), ‖B⁶‖₁^(1/6)) > θ_m (see the module).
    more = jnp.maximum(_norm1(sg(B4)) ** (1 / 4), _norm1(sg(B6)) ** (1 / 6)) > _THETA[m]
    s = s + more.astype(jnp.int32)
    h = jnp.where(more, 0.5, 1.0).astype(A.dtype)  # exact: B and its powers by 2^-k
    B, B2, B4, B6 = B * h, B2 * (h * h), B4 * (h * h) ** 2, B6 * (h * h) ** 3
    W1, Z1, W, V = _sums(b, B2, B4, B6, jnp.eye(A.shape[-1], dtype=A.dtype))
    if W1 is not None:
        W, V = B6 @ W1 + W, B6 @ Z1 + V
    U = B @ W
    lu = jax.lax.linalg.lu((V - U).T)
    return _Pade(B, B2, B4, B6, W1, Z1, W, lu, _triangular_like(A, _solve_q(lu, V + U)), s)


def _triangular_like(A, R):
    """`R = r_m(2^-s A)` with the triangle that is zero in `A` set to zero. For a triangular
    `A`, `R` is exactly triangular, but a pivoted LU of `Q` (or `Qᵀ`) leaves rounding of size
    u‖R‖ in the other triangle, and for a non-normal `A` the squarings amplify it: an upper
    triangular 4 × 4 with off-diagonal entries of 1e3 came out 1.8e-9 off in float64 and 240 %
    in float32 (a lower triangular one, with JAX's `expm`, which factors `Q`, as much)."""
    if R.shape[-1] < 2:
        return R
    A = jax.lax.stop_gradient(A)
    upper = jnp.all(jnp.tril(A, -1) == 0)
    lower = jnp.all(jnp.triu(A, 1) == 0)
    clean = jnp.where(upper, jnp.triu(R), jnp.where(lower, jnp.tril(R), R))
    # The value only: R's derivative (at the next order) in a direction that is not
    # triangular is not triangular.
    return R + jax.lax.stop_gradient(clean - R)


def _solve_q(lu, rhs):
    """`Q⁻¹ rhs` from the LU of `Qᵀ`, `Qᵀ[perm] = LU`: `Q = Uᵀ Lᵀ Π`, so `Xᵀ = rhsᵀ U⁻¹ L⁻¹`
    (right-side triangular solves) with `X[perm] = ` its transpose.

    Why `Qᵀ` and right-side solves, when `lu_factor(Q)` and `lu_solve` would do: LAPACK works
    on column-major matrices and XLA keeps arrays row-major, and a row-major `M` *is* the
    column-major `Mᵀ`. Factoring `Q` made XLA relayout it, fused with the Padé sums that
    produce it (five strided reads); here `Qᵀ` and `rhsᵀ` go to LAPACK as they are, and the
    permutation is a gather of contiguous rows. And `Qᵀ` is the `Q` at `Aᵀ` — what the VJP
    solves with, by a plain `lu_solve`. At n = 500 (float64, one OpenBLAS thread) value, JVP
    and gradient went from 0.96–1.06× JAX's `expm` to 0.92–0.96×."""
    lu, _, perm = lu
    Y = jax.lax.linalg.triangular_solve(lu, jnp.swapaxes(rhs, -1, -2), left_side=False)
    Y = jax.lax.linalg.triangular_solve(lu, Y, left_side=False, lower=True, unit_diagonal=True)
    return jnp.swapaxes(Y, -1, -2)[jnp.argsort(perm)]


@jax.jit
def _squarings(R, s, L=None):
    """`R^(2^s)` and, given `L`, the derivative of the squarings along it, `L ← R L + L R`, in
    the same loop; both NaN beyond `MAX_SQUARINGS`. Jitted: an eager call would trace and
    lower the loop's fresh closures again at every call.

    The loop is a `scan` (reverse-differentiable, unlike a `while_loop`) of `_CHUNK` steps
    nested in a `scan` over chunks, each step and chunk a `cond` on `s`: the common s ≤ 16 costs
    `_CHUNK` steps and three skipped chunks, not 64 steps."""

    def square(RL):
        R, L = RL
        return R @ R, None if L is None else R @ L + L @ R

    def step(RL, k):
        return jax.lax.cond(k < s, square, lambda RL: RL, RL), None

    def chunk(RL, first):
        squares = lambda RL: jax.lax.scan(step, RL, first + jnp.arange(_CHUNK))[0]
        return jax.lax.cond(first < s, squares, lambda RL: RL, RL), None

    firsts = jnp.arange(0, MAX_SQUARINGS, _CHUNK)
    X, L = jax.lax.scan(chunk, (R, L), firsts)[0]
    within = s <= MAX_SQUARINGS
    return jnp.where(within, X, jnp.nan), None if L is None else jnp.where(within, L, jnp.nan)


def _frechet(p: _Pade, E, adjoint: bool):
    """`(e^A, L(A, E))`, or with `adjoint` `(e^(Aᵀ), L(Aᵀ, E))`: the pieces at `A`, used as
    they are or transposed (see the module)."""
    if adjoint:
        p = p.transposed()
    b = _B13 if p.W1 is not None else _B7
    dB = _scaled(E, p.s)
    dB2 = p.B @ dB + dB @ p.B
    dB4 = p.B2 @ dB2 + dB2 @ p.B2
    dB6 = p.B4 @ dB2 + dB4 @ p.B2
    dW1, dZ1, dW, dV = _sums(b, dB2, dB4, dB6)
    if dW1 is not None:
        dW = dW + p.B6 @ dW1 + dB6 @ p.W1
        dV = dV + p.B6 @ dZ1 + dB6 @ p.Z1
    dU = p.B @ dW + dB @ p.W
    # Q R = P  ⇒  Q Ṙ = Ṗ − Q̇ R, with Ṗ = V̇ + U̇, Q̇ = V̇ − U̇.
    rhs = (dV + dU) - (dV - dU) @ p.R
    dR = jsl.lu_solve(p.lu[:2], rhs) if adjoint else _solve_q(p.lu, rhs)  # Qᵀ or Q
    return _squarings(p.R, p.s, dR)


@custom_vjp(allow_complex=True)
def _expm(A):
    p = _pieces(A)
    return _squarings(p.R, p.s)[0]


def _expm_jvp(primals, tangents):
    # Value and tangent squared in one loop: R², R L̇ + L̇ R share R.
    (A,), (dA,) = primals, tangents
    return _frechet(_pieces(A), dA, adjoint=False)


def _expm_fwd(A):
    p = _pieces(A)
    return _squarings(p.R, p.s)[0], p


def _expm_bwd(pieces, X_bar):
    # The squares of Rᵀ are recomputed (one product a squaring) rather than stored.
    return (_frechet(pieces, X_bar, adjoint=True)[1],)


_expm.defjvp(_expm_jvp)
_expm.defvjp(_expm_fwd, _expm_bwd)


def _expm_one(A):
    if A.shape[-1] == 0:
        return A
    return _expm(A)


def expm(A):
    r"""The matrix exponential $e^A$ of `A` `(..., n, n)`, real or complex, by scaling and
    squaring with a Padé approximant; its JVP is the Fréchet derivative $L(A, \dot A)$ and its
    VJP the Fréchet derivative at $A^\top$, $L(A^\top, \bar X)$, both from the primal's pieces (one LU,
    no tape of the squarings; see the module). Second order in every mode.

    As `jax.scipy.linalg.expm` (same Padé constants), with the Padé degree fixed by the dtype
    (13 in 64-bit, 7 in 32-bit), one squaring more than JAX's where the Padé approximant's
    error bound needs it (normal matrices; see the module), and up to 64 squarings
    where JAX's stops at 16 (NaN beyond, value and derivatives: ‖A‖₁ above about 1e20).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import expm
        >>> A = jnp.array([[0.0, 1.0], [-1.0, 0.0]])   # a rotation generator
        >>> [round(float(v), 4) for v in expm(A).ravel()]   # [[cos 1, sin 1], [−sin 1, cos 1]]
        [0.5403, 0.8415, -0.8415, 0.5403]
        >>> g = jax.grad(lambda A: jnp.trace(expm(A)))(A)   # d tr e^A = tr(e^A dA): e^(Aᵀ)
        >>> jnp.allclose(g, expm(A.T), atol=1e-6).item()
        True
    """
    (A,) = _args.matrices("expm", A=A)
    _args.square("expm", "A", A)
    return _args.over_batch("expm", _expm_one, {"A": A}, (2,))


registry.register(
    "expm",
    reference=jsl.expm,
    inputs={"A": inputs.general((5, 5))},
    # × 100 would overflow: exp of a norm of several hundred. The magnitudes checked beyond the
    # registered ones: × 0.01 (one Padé step, no squaring) and × 4 (several squarings).
    scales=(1e-2, 4.0),
    bench_inputs=lambda n: {"A": inputs.general((n, n))},
    bench_sizes=(50, 200),
    dtypes=_args.WITH_COMPLEX,
    order=2,
    tags=("linalg", "matrix_functions"),
)(expm)
