r"""Distribution functions whose shape parameters JAX cannot learn: the beta, Student-t,
binomial, negative-binomial, gamma and Poisson CDFs, differentiable to second order in their
real parameters.

They are compositions of `betainc` and `gammainc`/`gammaincc` (whose rules give the
derivatives in the parameters; `jax.scipy.special.betainc` has none in $a$, $b$, and
`jax.scipy.stats.t` has no `cdf`):

- beta: $F(x; a, b) = I_x(a, b)$;
- Student-t ($\nu$ degrees of freedom): for $t^2 < \min(\nu, 4)$,
  $F = \tfrac12 + \tfrac12\operatorname{sign}(t)\, I_{t^2/(\nu+t^2)}(\tfrac12, \tfrac\nu2)$, else
  $F = \tfrac12 I_{\nu/(\nu+t^2)}(\tfrac\nu2, \tfrac12)$ for $t < 0$ and one minus it for $t > 0$
  (the first form cancels where $F$ is small, so it is kept to $|t| < 2$, where $F > 0.02$;
  the second is a tail probability, accurate relative to itself); at large $\nu$ an
  expansion in $1/\nu$ (below);
- binomial ($n$ trials, success probability $p$, real $n$): $P(X \le k) = I_{1-p}(n-k, k+1)$
  for $0 \le k < n$;
- negative binomial (failures before the $n$-th success, SciPy's `nbinom`):
  $P(X \le k) = I_p(n, k+1)$;
- gamma (shape $a$): $P(a, x)$; Poisson (rate $\mu$): $P(X \le k) = Q(k+1, \mu)$.

Counts `k` are floored, as SciPy's, and carry no derivative (the CDF is a step function of them).

**The Student-t CDF at $t = 0$.** Its expansion near 0 goes through $I_z(\tfrac12, \cdot)$ at
$z = t^2/(\nu+t^2)$, whose $z$-derivative is infinite at $z = 0$ while $dz/dt = 0$: autodiff
would give $\infty \cdot 0 = $ NaN exactly where data often sit. So `student_t_cdf` is a rule:
$\partial_t F$ is the density
$f(t) = \frac{\Gamma(\frac{\nu+1}{2})}{\sqrt{\nu\pi}\,\Gamma(\frac\nu2)}(1 + t^2/\nu)^{-(\nu+1)/2}$
(closed form), $\partial_\nu F$ the composition's derivative in $\nu$ (0 at $t = 0$, where
$F = \tfrac12$ for every $\nu$), and the derivative of $\partial_\nu F$ in $t$ is $\partial_\nu f$
(the mixed partials agree), so the Hessian is exact at $t = 0$ too.

**The Student-t CDF at large $\nu$, and $\nu = \infty$.** The compositions lose digits as
$\nu$ grows: $\nu/(\nu + t^2)$ is rounded, and the exponent $\nu/2$ amplifies the rounding to a
relative error ~$\nu\varepsilon$ (and JAX's `gammaln((ν+1)/2) - gammaln(ν/2)` in the density
cancels alike: at $\nu = 10^{14}$ it moved $\partial_t F$ by 2 %). From $\nu = 1000$ (30 in
float32) and $t^4 \le 0.1\,\nu$ ($t^4 \le \nu$ in float32) `student_t_cdf` uses instead
$F = \Phi(t) - \varphi(t) \sum_{k=1}^{6} Q_k(t)\,\nu^{-k}$, $Q_1 = (t^3 + t)/4$: expanding
$\log f$ in $1/\nu$ gives $f = \varphi(t)(1 + \sum_k P_k(t)\nu^{-k})$, each $P_k$ has mean 0
under $\varphi$ ($f$ integrates to 1 for every $\nu$), so $\int_{-\infty}^t \varphi P_k =
-\varphi(t) Q_k(t)$ with $Q_k' - t Q_k = -P_k$, a polynomial (coefficients in `_T_SERIES`). The
rule's first derivatives are the expansion's in closed form — the density
$\varphi(t)(1 + \sum_k P_k(t)\nu^{-k})$ and $\partial_\nu F = \varphi(t)\sum_k k\,Q_k(t)\,\nu^{-k-1}$
— plain JAX that JAX differentiates further; at $\nu = \infty$ it is the normal CDF with zero
derivatives in $\nu$ (as `scipy.stats.t`).
Against mpmath (`tests/test_rules_distributions.py`): value, $\partial_t$, $\partial_\nu$,
$\partial_\nu^2$ and $\partial_t\partial_\nu$ to ≤ 2e-12 relative from $\nu = 80$ to $10^{15}$
and $F$ down to $10^{-198}$. The density's constant is $G(\nu/2) - \tfrac12\log 2\pi$ with
$G(z) = \log\Gamma(z + \tfrac12) - \log\Gamma(z) - \tfrac12\log z$ from its asymptotic series
(`_log_gamma_half_ratio`), exact at every $\nu$. The composition is given both
$z = t^2/(\nu + t^2)$ and $w = 1 - z = \nu/(\nu + t^2)$, each to ε relative (`betainc` takes the
pair: from $w$ alone, $z$ would be rounded where it is small): its values keep ≲ 1e-13. Its
derivatives in $\nu$ keep a relative ~$\nu\varepsilon$ (their two terms, through the shape
$\nu/2$ and through $w$, cancel): ≲ 1e-12 below $\nu = 1000$; above, only past
$|t| = (0.1\,\nu)^{1/4}$ (3.2 at $\nu = 1000$, 56 at $10^8$, where $F$ underflows), e.g.
3e-12 for $\partial_\nu F$, 5e-10 for $\partial_\nu^2 F$ at $\nu = 3\cdot10^4$, $t = -25$
($F \approx 8\cdot10^{-137}$), 1.5e-10 and 3e-7 at $\nu = 10^6$, $t = -30$ ($F \sim 10^{-196}$).
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import jax.scipy.stats as jst
import numpy as np

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args
from . import _log_kernels as _kernels
from ._shapes import along_last
from .incomplete_beta import betainc, betainc_with_complement
from .incomplete_gamma import gammainc, gammaincc

__all__ = [
    "beta_cdf",
    "binomial_cdf",
    "gamma_cdf",
    "negative_binomial_cdf",
    "poisson_cdf",
    "student_t_cdf",
]


def _count(name, k, like):
    k = jnp.asarray(k)
    _args.real_elementwise(name, "k", k)
    return jnp.floor(k).astype(like.dtype)


def beta_cdf(x, a, b, loc=0.0, scale=1.0):
    r"""The beta distribution's CDF $I_z(a, b)$, $z = (x - \mathrm{loc})/\mathrm{scale}$ clipped
    to $[0, 1]$ (`jax.scipy.stats.beta.cdf`'s signature), differentiable to second order in
    `a` and `b` as well as `x`.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import beta_cdf
        >>> round(float(jax.grad(beta_cdf, argnums=1)(0.3, 2.0, 5.0)), 4)  # ∂F/∂a
        -0.2524
    """
    x, a, b, loc, scale = _args.real_arrays("beta_cdf", x=x, a=a, b=b, loc=loc, scale=scale)
    cdf = lambda x, a, b, loc, scale: betainc(a, b, jnp.clip((x - loc) / scale, 0, 1))
    return _args.in_single(cdf, x, a, b, loc, scale)


# D(z) = ψ(z + ½) - ψ(z) - 1/(2z) ~ Σ_k (2 - 2^{1-2k}) B_{2k} / (2k z^{2k}) (from
# ψ(z + h) ~ log z - Σ_k (-1)^k B_k(h) / (k z^k) and B_k(½) = (2^{1-k} - 1) B_k), for z ≥ 10.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)
_D_SERIES = tuple((2 - 2.0 ** (1 - 2 * k)) * b / (2 * k) for k, b in enumerate(_BERNOULLI, 1))


def _digamma_half_gap(z):
    """$D(z) = \\psi(z + \\tfrac12) - \\psi(z) - \\tfrac{1}{2z} \\approx 1/(8z^2)$ with its
    relative accuracy (the plain difference of digammas cancels to a factor ~$z$): the series
    above from 10 on, below it $D(w) = D(w+1) + 1/(4w(w+1)(w+\\tfrac12))$ (from
    $\\psi(w+1) = \\psi(w) + 1/w$; the step in closed form, no cancellation)."""
    shift = jnp.where(z >= 10, 0, jnp.ceil(10 - z))
    zb = z + shift
    w = 1 / (zb * zb)
    total = jnp.zeros_like(zb)
    for c in reversed(_D_SERIES):
        total = c + w * total
    total = total * w
    for k in range(10):
        u = z + k
        total = total + jnp.where(k < shift, 1 / (4 * u * (u + 1) * (u + 0.5)), 0)
    return total


def _log_gamma_half_ratio(z):
    """$G(z) = \\log\\Gamma(z + \\tfrac12) - \\log\\Gamma(z) - \\tfrac12\\log z \\approx -1/(8z)$
    with its relative accuracy at every $z$, $+\\infty$ included (the plain difference of
    `gammaln`s cancels to a factor ~$z$: at ν = 1e14 it moved the density by 2 %): $G' = D$, so
    $G(z) = -\\sum_k c_k z^{1-2k}/(2k-1)$ from D's series from 10 on, below it
    $G(w) = G(w+1) - \\tfrac12\\log\\bigl(1 + 1/(4w(w+1))\\bigr)$ (the step in closed form)."""
    shift = jnp.where(z >= 10, 0, jnp.ceil(10 - z))
    zb = z + shift
    w = 1 / (zb * zb)
    total = jnp.zeros_like(zb)
    for k, c in reversed(list(enumerate(_D_SERIES, 1))):
        total = -c / (2 * k - 1) + w * total
    total = total / zb
    for k in range(10):
        u = z + k
        total = total - jnp.where(k < shift, 0.5 * jnp.log1p(1 / (4 * u * (u + 1))), 0)
    return total


@custom_jvp
def _t_log_pdf_at_zero(nu):
    """$\\log f(0) = \\log\\Gamma(\\frac{\\nu+1}{2}) - \\log\\Gamma(\\frac\\nu2)
    - \\tfrac12\\log(\\nu\\pi) = G(\\nu/2) - \\tfrac12\\log 2\\pi$ (`_log_gamma_half_ratio`:
    exact to $\\nu = \\infty$, where it is the normal density's), whose derivative in ν,
    $\\tfrac12 D(\\nu/2) \\approx 1/(4\\nu^2)$, is taken from `_digamma_half_gap` (JAX's, a
    difference of digammas of size $1/\\nu$, loses a factor ~ν: 1e-4 in float32 at ν ≈ 10)."""
    return _log_gamma_half_ratio(nu / 2) - 0.5 * math.log(2 * math.pi)


def _t_log_pdf_at_zero_jvp(primals, tangents):
    ((nu,), (t,)) = primals, tangents
    return _t_log_pdf_at_zero(nu), 0.5 * _digamma_half_gap(nu / 2) * t


_t_log_pdf_at_zero.defjvp(_t_log_pdf_at_zero_jvp)


# Large ν: F = Φ(t) − φ(t) Σ_k Q_k(t) ν^{-k}, Q_k odd polynomials (the coefficients of t, t³,
# t⁵, ... below). Derived from the density: log f = G(ν/2) − ½ log 2π − (ν+1)/2 log(1 + t²/ν)
# expanded in ε = 1/ν gives f = φ(t)(1 + Σ_k P_k(t) εᵏ); each P_k has zero mean under φ (f
# integrates to 1 for every ν), so ∫_{-∞}^t φ P_k = −φ(t) Q_k(t) with Q_k' − t Q_k = −P_k, a
# polynomial. (Q_1 = (t³ + t)/4: Abramowitz & Stegun 26.7.5's first term; the others from the
# same computation in exact rational arithmetic, checked against mpmath in the tests.) The
# error after K = 6 terms grows like u⁷ with u = t⁴/ν, and like ν⁻⁷ at fixed t.
_T_SERIES_EXACT = tuple(
    tuple(Fraction(c) for c in row.split())
    for row in (
        "1/4 1/4",
        "-1/32 -5/96 -7/96 1/32",
        "-5/128 -1/128 1/64 7/192 -11/384 1/384",
        "21/2048 61/6144 -71/30720 -313/30720 -2141/92160 445/18432 -25/6144 1/6144",
        "399/8192 119/8192 1/2048 19/6144 83/12288 333/20480 -1879/92160 49/10240"
        " -133/368640 1/122880",
        "-869/65536 -2465/196608 137/196608 1949/1376256 -12805/6193152 -146047/30965760"
        " -75113/6193152 231253/13271040 -135149/26542080 107/196608 -23/983040 1/2949120",
    )
)
_T_SERIES = tuple(tuple(float(c) for c in q) for q in _T_SERIES_EXACT)
# Where the expansion is used: ν ≥ ν₀ and t⁴ ≤ c ν (relative error, against mpmath: ≤ 1e-16
# in float64 from ν = 1000 at u ≤ 0.1; ≤ 3e-8 in float32 from ν = 30 at u ≤ 1). Elsewhere the
# composition, whose relative error grows like ν ε (the rounding of ν/(ν + t²), amplified by
# the exponent ν/2): ~1e-13 at ν = 1000, ~1e-6 in float32 at ν = 30.
_T_LARGE_NU = {"double": (1000.0, 0.1), "single": (30.0, 1.0)}


def _t_large_nu(t, nu):
    dtype = jnp.result_type(t, nu)
    nu0, c = _T_LARGE_NU["double" if jnp.finfo(dtype).bits == 64 else "single"]
    t2 = t * t
    return (nu >= nu0) & (t2 * t2 <= c * nu)


# The coefficients as tables, zero-padded, so the K polynomials are evaluated at once (a
# handful of operations to trace and differentiate instead of one per coefficient): Q_k / t
# (the CDF) in powers of t², and the density's P_k = t Q_k − Q_k' (f = φ (1 + Σ_k P_k ν^{-k})),
# whose coefficient of t^{2m} is q_{k,m−1} − (2m + 1) q_{k,m}.
_T_TABLE = np.array([list(q) + [0.0] * (2 * len(_T_SERIES) - len(q)) for q in _T_SERIES])
_T_DENSITY = np.concatenate([np.zeros((len(_T_TABLE), 1)), _T_TABLE], axis=1) - np.concatenate(
    [_T_TABLE * (2 * np.arange(_T_TABLE.shape[1]) + 1), np.zeros((len(_T_TABLE), 1))], axis=1
)


def _t_sum(t, nu, table, weights):
    """Σ_k weights[k] · poly_k(t²) · ν^{-(k+1)} for the rows poly_k of `table` (Horner in t²
    for all rows together, then in 1/ν); |t| is capped at 40, past which Φ(t) is 0 or 1 in
    every float dtype."""
    x, e = t * t, 1 / nu
    rows = jnp.asarray(table, t.dtype)
    polys = jnp.broadcast_to(rows[:, -1], (*t.shape, len(rows)))
    for j in range(rows.shape[1] - 2, -1, -1):
        polys = along_last(rows[:, j], x) + x[..., None] * polys
    s = jnp.zeros_like(t)
    for k in range(len(rows) - 1, -1, -1):
        s = (s + weights[k] * polys[..., k]) * e
    return s


def _normal_pdf(t):
    # Not `jax.scipy.stats.norm.pdf`: it takes exp(-(log 2π + t²)/2), whose argument rounds at
    # |t| ~ 10 (8e-7 relative in float32 at t = 10, against 6e-8 for this form).
    return jnp.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def _t_cdf_expansion(t, nu):
    """F from the expansion in 1/ν, Φ(t) − φ(t) Σ_k Q_k(t) ν^{-k} (plain JAX: JAX
    differentiates it; exactly Φ at ν = ∞)."""
    t = jnp.clip(t, -40, 40)
    return jss.ndtr(t) - _normal_pdf(t) * t * _t_sum(t, nu, _T_TABLE, [1] * len(_T_TABLE))


def _t_pdf_expansion(t, nu):
    """Its derivative in t, φ(t)(1 + Σ_k P_k(t) ν^{-k}), in closed form."""
    t = jnp.clip(t, -40, 40)
    return _normal_pdf(t) * (1 + _t_sum(t, nu, _T_DENSITY, [1] * len(_T_DENSITY)))


def _t_dnu_expansion(t, nu):
    """Its derivative in ν, φ(t) Σ_k k Q_k(t) ν^{-k-1}, in closed form."""
    t = jnp.clip(t, -40, 40)
    weights = list(range(1, len(_T_TABLE) + 1))
    return _normal_pdf(t) * t * _t_sum(t, nu, _T_TABLE, weights) / nu


def _split(t, nu):
    """(large-ν mask, the expansion's (t, ν), the composition's (t, ν)): each branch sees only
    points it is used at (the other's become harmless ones, so no NaN reaches a `where`)."""
    big = _t_large_nu(t, nu)
    return (
        big,
        (jnp.where(big, t, 0), jnp.where(big, nu, jnp.inf)),
        (jnp.where(big, 0.5, t), jnp.where(big, 2.0, nu)),
    )


def _t_pdf(t, nu):
    big, (tb, nb), (tc, nc) = _split(t, nu)
    expansion = _t_pdf_expansion(tb, nb)
    closed = jnp.exp(_t_log_pdf_at_zero(nc) - (nc + 1) / 2 * _log1p_square(tc / jnp.sqrt(nc)))
    return jnp.where(big, expansion, closed)


def _log1p_square(u):
    """$\\log(1 + u^2)$, as $2\\log|u| + \\log(1 + 1/u^2)$ for $|u| > 1$: $u^2$ overflows
    float32 from $|u| \\approx 2\\cdot10^{19}$, and its derivative was then ∞/∞ = NaN (the
    density's in $t$ at $t = -10^{30}$)."""
    large = jnp.abs(u) > 1
    ul, us = jnp.where(large, u, 2.0), jnp.where(large, 0.5, u)
    inv = 1 / ul  # not 1 / u²: its tangent would be ∞/∞ where u² overflows
    return jnp.where(large, 2 * jnp.log(jnp.abs(ul)) + jnp.log1p(inv * inv), jnp.log1p(us * us))


# The composition's central branch, $\tfrac12 + \tfrac12\operatorname{sign}(t) I_z$, cancels
# where F is small; it is used for |t| < 2 only (F > 0.02 there: ≤ 25 ε lost).
_T_NEAR = 4.0


def _t_cdf_composed(t, nu):
    """The composition (see the module)."""
    t2 = t * t
    near = t2 < jnp.minimum(nu, _T_NEAR)
    # z = t²/(ν + t²) and w = ν/(ν + t²) = 1 - z, each to ε relative: betainc is given both
    # (from one, the other would be rounded where it is small).
    finite = jnp.isfinite(t2)
    t2f = jnp.where(finite, t2, 1.0)
    z = jnp.where(finite, t2f / (nu + t2f), 1.0)
    w = jnp.where(finite, nu / (nu + t2f), 0.0)
    zn, wn = jnp.where(near, z, 0.25), jnp.where(near, w, 0.75)
    zt, wt = jnp.where(near, 0.75, z), jnp.where(near, 0.25, w)
    inner = 0.5 + 0.5 * jnp.sign(t) * betainc_with_complement("student_t_cdf", 0.5, nu / 2, zn, wn)
    tail = 0.5 * betainc_with_complement("student_t_cdf", nu / 2, 0.5, wt, zt)
    # Where w < ε, I_w(ν/2, ½) = w^{ν/2} / ((ν/2) B(ν/2, ½)) (1 + O(w)), in logarithms with
    # log w = log ν - 2 log|t| - log1p(ν/t²): w itself underflows (float32's 1e-38 at
    # t² = 1e38 ν) and t² overflows, and the tail was 0 where it is not (0.48 at t = -1e19,
    # ν = 0.001, whose tail decays like |t|^{-ν}).
    far = t2 * jnp.finfo(t.dtype).eps > nu
    tf = jnp.abs(jnp.where(far, t, 2.0))
    log_w = jnp.log(nu) - 2 * jnp.log(tf) - jnp.log1p(nu / tf / tf)
    half_nu = nu / 2
    far_tail = 0.5 * jnp.exp(half_nu * log_w - jnp.log(half_nu) - _kernels.log_beta(half_nu, 0.5))
    tail = jnp.where(far, far_tail, tail)
    return jnp.where(near, inner, jnp.where(t < 0, tail, 1 - tail))


def _t_cdf_value(t, nu):
    """F: the expansion at large ν, else the composition; used for values and for the
    derivatives in ν."""
    big, (tb, nb), (tc, nc) = _split(t, nu)
    return jnp.where(big, _t_cdf_expansion(tb, nb), _t_cdf_composed(tc, nc))


# Gauss–Legendre on [0, 1]: for t² < ν the integrand below is analytic in a Bernstein ellipse
# of parameter ≥ 4.6 (its poles are at s = ±i√ν), so 20 nodes are exact to ~4.6⁻⁴⁰.
_X, _W = np.polynomial.legendre.leggauss(20)
_NODES, _WEIGHTS = (_X + 1) / 2, _W / 2


def _t_dnu_near(t, nu):
    r"""$\partial_\nu F = \int_0^t \partial_\nu f(s)\,ds$ for $t^2 < \nu$, with
    $\partial_\nu \log f(s) = \partial_\nu \log f(0) - \tfrac12\varphi(-v) + v/(2\nu)$,
    $v = s^2/(\nu + s^2)$: no term cancels (the composition's two terms, through $a$ and
    through $z$, cancel to a factor ν — 5e-5 in float32 at ν ≈ 10). Plain JAX: JAX
    differentiates it again."""
    nodes = along_last(jnp.asarray(_NODES, t.dtype), t)
    s = t[..., None] * nodes
    n = nu[..., None]
    v = s * s / (n + s * s)
    g0 = _in_nu_derivative(_t_log_pdf_at_zero, nu)[..., None]
    g = g0 - 0.5 * _kernels.log1pmx(-v, jnp.log1p(-v)) + v / (2 * n)
    return t * jnp.sum(along_last(jnp.asarray(_WEIGHTS, t.dtype), t) * _t_pdf(s, n) * g, axis=-1)


def _t_dnu_value(t, nu):
    """$\\partial_\\nu F$: the expansion's at large ν; else the quadrature for
    $t^2 < \\min(\\nu, 4)$ and the composition's derivative in the tails."""
    big, (tb, nb), (tc, nc) = _split(t, nu)
    expansion = _t_dnu_expansion(tb, nb)
    near = tc * tc < jnp.minimum(nc, _T_NEAR)
    tn = jnp.where(near, tc, 0)
    tt = jnp.where(near, jnp.sqrt(nc) + 2, tc)  # the tail's points; a tail point elsewhere
    composed = jnp.where(
        near,
        _t_dnu_near(tn, nc),
        _in_nu_derivative(lambda n: _t_cdf_composed(tt, n), nc),
    )
    return jnp.where(big, expansion, composed)


@custom_jvp
def _t_dnu(t, nu):
    return _t_dnu_value(t, nu)


def _in_nu_derivative(fn, nu):
    """`fn`'s derivative at `nu` (elementwise, by JAX's forward mode)."""
    return jax.jvp(fn, (nu,), (jnp.ones_like(nu),))[1]


def _t_dnu_jvp(primals, tangents):
    (t, nu), (tt, tnu) = primals, tangents
    dout = _args.linear_tangent(
        # ∂t ∂ν F = ∂ν f (the density's derivative in ν)
        (tt, lambda: _in_nu_derivative(lambda n: _t_pdf(t, n), nu)),
        (tnu, lambda: _in_nu_derivative(lambda n: _t_dnu_value(t, n), nu)),
    )
    return _t_dnu(t, nu), dout


_t_dnu.defjvp(_t_dnu_jvp, zeros_as_none=True)


@custom_jvp
def _t_cdf(t, nu):
    # NaN for a NaN t: the composition reads it as |t| = inf (not finite) and returned 1.
    return jnp.where(jnp.isnan(t), jnp.nan, _t_cdf_value(t, nu))


def _t_cdf_jvp(primals, tangents):
    (t, nu), (tt, tnu) = primals, tangents
    dout = _args.linear_tangent((tt, lambda: _t_pdf(t, nu)), (tnu, lambda: _t_dnu(t, nu)))
    return _t_cdf(t, nu), dout


_t_cdf.defjvp(_t_cdf_jvp, zeros_as_none=True)


def student_t_cdf(x, df, loc=0.0, scale=1.0):
    r"""The Student-t distribution's CDF at $t = (x - \mathrm{loc})/\mathrm{scale}$ with `df`
    degrees of freedom (real, > 0, learnable; `inf` is the normal distribution),
    differentiable to second order in every argument — including at $t = 0$ and at large
    `df`, where it learns its way towards the normal (see the module). JAX has no Student-t
    CDF.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import student_t_cdf
        >>> F, dF_ddf = jax.value_and_grad(student_t_cdf, 1)(1.0, 3.0)
        >>> round(float(F), 5), round(float(dF_ddf), 5)
        (0.8045, 0.01111)
    """
    x, df, loc, scale = _args.real_arrays("student_t_cdf", x=x, df=df, loc=loc, scale=scale)
    cdf = lambda x, df, loc, scale: _t_cdf((x - loc) / scale, df)
    return _args.in_single(cdf, x, df, loc, scale)


def binomial_cdf(k, n, p):
    r"""$P(X \le k)$ for $X \sim \mathrm{Binomial}(n, p)$, real $n \ge 0$:
    $I_{1-p}(n - k, k + 1)$ for $0 \le k < n$ (0 below, 1 from $n$ on); `k` floored.
    Differentiable to second order in `n` and `p`.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import binomial_cdf
        >>> F, dF_dp = jax.value_and_grad(binomial_cdf, 2)(3, 10.0, 0.4)
        >>> round(float(F), 5), round(float(dF_dp), 4)
        (0.38228, -2.5082)
    """
    n, p = _args.real_arrays("binomial_cdf", n=n, p=p)
    k = _count("binomial_cdf", k, n)
    return _args.in_single(_binomial_cdf, *jnp.broadcast_arrays(k, n, p))


def _binomial_cdf(k, n, p):
    # Written so that a NaN k or n is inside (and NaN through betainc): `k < n` was False
    # there, and the CDF came out 1 with a zero derivative.
    inside = ~(k < 0) & ~(k >= n)
    a = jnp.where(inside, n - k, 1)
    b = jnp.where(inside, k + 1, 1)
    # p, not the rounded 1 - p, is the exact one: given only 1 - p, the value was 4e-10 off at
    # n = 1e8, p = 3e-8, and 1.4e-6 (4e-5 in ∂p) at n = 1e12, p = 1e-12.
    value = betainc_with_complement("binomial_cdf", a, b, 1 - p, p)
    return jnp.where(inside, value, jnp.where(k < 0, 0.0, 1.0).astype(value.dtype))


def negative_binomial_cdf(k, n, p):
    r"""$P(X \le k)$ for $X$ the number of failures before the $n$-th success (success
    probability $p$; SciPy's `nbinom`), real $n > 0$: $I_p(n, k + 1)$ for $k \ge 0$, `k`
    floored. Differentiable to second order in `n` and `p`.

    Examples:
        >>> from jaxrules.rules import negative_binomial_cdf
        >>> round(float(negative_binomial_cdf(4, 2.5, 0.3)), 5)
        0.459
    """
    n, p = _args.real_arrays("negative_binomial_cdf", n=n, p=p)
    k = _count("negative_binomial_cdf", k, n)
    return _args.in_single(_negative_binomial_cdf, *jnp.broadcast_arrays(k, n, p))


def _negative_binomial_cdf(k, n, p):
    inside = ~(k < 0)  # a NaN k inside: NaN through betainc, not 0
    value = betainc(n, jnp.where(inside, k + 1, 1), p)
    return jnp.where(inside, value, 0.0)


def gamma_cdf(x, a, loc=0.0, scale=1.0):
    r"""The gamma distribution's CDF $P(a, z)$, $z = \max((x - \mathrm{loc})/\mathrm{scale}, 0)$
    (`jax.scipy.stats.gamma.cdf`'s signature), differentiable to second order in the shape `a`
    (JAX: once) and in `x`, `loc`, `scale`.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import gamma_cdf
        >>> round(float(jax.grad(jax.grad(gamma_cdf, 1), 1)(1.5, 2.0)), 5)  # ∂²F/∂a²
        0.10059
    """
    x, a, loc, scale = _args.real_arrays("gamma_cdf", x=x, a=a, loc=loc, scale=scale)

    # z < 0 → 0 by a select, not `maximum(z, 0)`: under `jit` XLA folds comparisons of a
    # maximum with 0 as if it were never NaN, and a NaN x gave 1.
    def cdf(x, a, loc, scale):
        z = (x - loc) / scale
        return gammainc(a, jnp.where(z < 0, 0.0, z))

    return _args.in_single(cdf, x, a, loc, scale)


def poisson_cdf(k, mu):
    r"""$P(X \le k)$ for $X \sim \mathrm{Poisson}(\mu)$: $Q(k + 1, \mu)$ for $k \ge 0$ (`k`
    floored), differentiable in the rate $\mu$ to any order
    ($\partial_\mu = -\mu^k e^{-\mu}/k!$).

    Examples:
        >>> import jax
        >>> from jaxrules.rules import poisson_cdf
        >>> F, dF_dmu = jax.value_and_grad(poisson_cdf, 1)(2, 1.5)
        >>> round(float(F), 5), round(float(dF_dmu), 5)
        (0.80885, -0.25102)
    """
    (mu,) = _args.real_arrays("poisson_cdf", mu=mu)
    k = _count("poisson_cdf", k, mu)
    return _args.in_single(_poisson_cdf, *jnp.broadcast_arrays(k, mu))


def _poisson_cdf(k, mu):
    inside = ~(k < 0)  # a NaN k inside: NaN through gammaincc, not 0
    value = gammaincc(jnp.where(inside, k + 1, 1), mu)
    return jnp.where(inside, value, 0.0)


# -- registration ----------------------------------------------------------------------------
# References: JAX's values (its distributions, or the same compositions of
# `jax.scipy.special`), witnessed by finite differences where JAX cannot differentiate them.
def _t_reference(x, df, loc=0.0, scale=1.0):
    x = (x - loc) / scale
    t2 = x * x
    near = t2 < jnp.minimum(df, 4.0)  # as the library's: the central form cancels in the tails
    inner = 0.5 + 0.5 * jnp.sign(x) * jss.betainc(
        0.5, df / 2, jnp.where(near, t2 / (df + t2), 0.25)
    )
    tail = 0.5 * jss.betainc(df / 2, 0.5, jnp.where(near, 0.25, df / (df + t2)))
    return jnp.where(near, inner, jnp.where(x < 0, tail, 1 - tail))


_SHAPE = inputs.positive((4,), low=0.5, high=4.0)
_P = inputs.probability((4,))
_K = inputs.integer((4,), low=0, high=5)
_COMMON = dict(order=2, tags=("special", "distributions"))


def _bench(**gens):
    return lambda n: {k: g(n) for k, g in gens.items()}


def _register(fn, reference, inputs_, bench, witness="differences", **options):
    # `bench` None: registered for the checker only (JAX has no derivative in the shapes to
    # time against; benchmarks/special.py times what it has).
    cases = options.pop("cases", [registry.Case("general", witness=witness)])
    if bench is not None:
        options.update(bench_inputs=bench, bench_sizes=(10_000,))
    registry.register(
        fn.__name__,
        reference=reference,
        inputs=inputs_,
        cases=cases,
        **_COMMON,
        **options,
    )(fn)


_register(
    beta_cdf,
    jst.beta.cdf,
    {"x": _P, "a": _SHAPE, "b": _SHAPE},
    None,
    scales=(1e-2, 10.0),  # as betainc's
    rtol={"float32": 2e-4},
)
_register(
    student_t_cdf,
    _t_reference,
    {"x": inputs.general((4,), scale=2.0), "df": _SHAPE},
    None,
    scales=(0.1, 10.0),  # × 100 puts x at ±400: values below 1e-160, differences unsettled
    rtol={"float32": 2e-4},  # betainc's float32 second derivatives (see its registration)
    cases=[
        registry.Case("general", witness="differences"),
        # t = 0, where composing betainc's rules would give ∞·0 = NaN (see the module).
        registry.Case(
            "at_zero",
            inputs={"x": inputs.fixed([0.0, 0.3, -1.7, 4.0]), "df": _SHAPE},
            witness="differences",
        ),
        # ν ≥ 1000, where the expansion in 1/ν gives F at |t| ≤ 3.2 (and the composition
        # past it). Not rescaled: at ν × 10 the reference (JAX's betainc) is only ~1e-11
        # accurate, too coarse for finite differences of ∂ν F ~ 1e-9 F.
        registry.Case(
            "large_df",
            inputs={
                "x": inputs.Generator("normal(4, scale=2)", lambda r: 2 * r.standard_normal(4)),
                "df": inputs.Generator(
                    "uniform(4, 1000, 1500)", lambda r: r.uniform(1e3, 1.5e3, 4)
                ),
            },
            witness="differences",
        ),
    ],
)
_register(
    binomial_cdf,
    lambda k, n, p: jss.betainc(n - k, k + 1.0, 1 - p),
    {"k": _K, "n": inputs.positive((4,), low=6.0, high=12.0), "p": _P},
    None,
    scales=(),  # × 0.01 makes n < k (the CDF is 1), × 100 makes it ~1e-200
)
_register(
    negative_binomial_cdf,
    lambda k, n, p: jss.betainc(n, k + 1.0, p),
    {"k": _K, "n": _SHAPE, "p": _P},
    None,
    scales=(),
)
_register(
    gamma_cdf,
    jst.gamma.cdf,
    {"x": inputs.positive((4,)), "a": _SHAPE},
    _bench(x=lambda n: inputs.positive((n,)), a=lambda n: inputs.positive((n,), low=0.5, high=4.0)),
)
_register(
    poisson_cdf,
    lambda k, mu: jss.gammaincc(k + 1.0, mu),
    {"k": _K, "mu": inputs.positive((4,), low=0.5, high=6.0)},
    _bench(
        k=lambda n: inputs.integer((n,), low=0, high=5),
        mu=lambda n: inputs.positive((n,), low=0.5, high=6.0),
    ),
    witness="jax",  # JAX differentiates gammaincc in x
)
