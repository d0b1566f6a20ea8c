r"""The logarithms of the incomplete gamma and beta functions' prefactors,

$$\log\frac{x^a e^{-x}}{\Gamma(a+1)} \quad\text{and}\quad \log\frac{x^a(1-x)^b}{B(a, b)},$$

without the cancellation of their plain forms. Written plainly, $a\log x - x - \log\Gamma(a+1)$
is a difference of terms of size $a\log a$ (≈ 460 at $a = 100$) whose result is often small,
so its float32 rounding alone costs ~1e-5 relative in the prefactor. As Temme and DiDonato &
Morris (1992, `brcomp`), take Stirling's series out analytically. With
$\log\Gamma(z) = (z - \tfrac12)\log z - z + \tfrac12\log 2\pi + c(z)$ ($c$: Stirling's
correction, $\approx 1/(12z)$) and $\varphi(\mu) = \mu - \log(1 + \mu) \ge 0$:

$$\log\frac{x^a e^{-x}}{\Gamma(a+1)} = -a\,\varphi\Bigl(\frac{x - a}{a}\Bigr)
  - \tfrac12\log(2\pi a) - c(a),$$

$$\log\frac{x^a (1-x)^b}{B(a, b)} = -a\,\varphi\Bigl(\frac{\lambda}{a}\Bigr)
  - b\,\varphi\Bigl(-\frac{\lambda}{b}\Bigr) + \tfrac12\log\frac{ab}{2\pi(a+b)}
  - c(a) - c(b) + c(a+b), \qquad \lambda = (a+b)x - a$$

(expand $\log\Gamma$ on the right of the plain forms; the $a\log a$ terms cancel exactly, and
$a\mu_a + b\mu_b = 0$ for $\mu_a = \lambda/a$, $\mu_b = -\lambda/b$). Every term is now of the
size of the result. $\varphi$ itself cancels near 0 ($\varphi(\mu) \approx \mu^2/2$); there,
with $r = \mu/(2 + \mu)$, $\mu - 2r = r\mu$ and $\log(1+\mu) = 2\operatorname{artanh} r$ give

$$\varphi(\mu) = r\mu - 2\Bigl(\frac{r^3}{3} + \frac{r^5}{5} + \cdots\Bigr),
  \qquad |r| \le \tfrac13 \text{ for } -\tfrac12 \le \mu \le 1,$$

a series of positive terms that falls by 9 per term (17 terms: float64). Elsewhere
$\varphi(\mu) = \mu - \log(1+\mu)$ directly, with $\log(1 + \mu)$ from the logarithms of $x$
and $1 - x$ (`log1p(-x)`, not a rounded $1 - x$). $c(z)$ is Stirling's asymptotic series
for $z \ge 10$ (8 terms: below float64's ε), and below 10 that series at $z + n \ge 10$ plus
the $n$ steps $c(w) - c(w+1) = (w + \tfrac12)\log(1 + 1/w) - 1$.

The rules' jets in $a$, $b$ (`_jets.of`) differentiate these twice, nested; $\varphi$ and $c$
carry their derivatives as rules ($\varphi'(\mu) = \mu/(1+\mu)$; $c'(z) = \psi(z) - \log z +
\tfrac{1}{2z}$ below 10, the series' derivative above), so that the nested JVPs do not trace
their series (compiling them cost 5–50× the plain form's time), and $\log(x/a)$ carries the
derivatives of $\log x - \log a$ (JAX's, through $1/(x/a)$, would square a tiny quotient and
overflow float32). The float32 error that remains is the rounding of terms of the result's own
size: about $|\log P|\cdot\varepsilon$ relative in the deep tails (`docs/library/special.md`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
from jax import lax

from .._custom import custom_jvp
from . import _arguments as _args

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# Stirling's series c(z) = Σ B_{2k} / (2k (2k-1) z^{2k-1}), k = 1..8.
_STIRLING = (
    1 / 12,
    -1 / 360,
    1 / 1260,
    -1 / 1680,
    1 / 1188,
    -691 / 360360,
    1 / 156,
    -3617 / 122400,
)
_SERIES_FROM = 10.0
_STABLE_FROM = 10.0  # shapes from which the plain forms lose digits (≳ 2e-6 in float32)


def _stirling_series(z):
    """Stirling's series for $c(z)$, $z \\ge 10$ (plain JAX: its derivatives are JAX's)."""
    w = 1 / (z * z)
    series = jnp.zeros_like(z)
    for c in reversed(_STIRLING):
        series = c + w * series
    return series / z


@custom_jvp
def stirling_correction(z):
    """$c(z) = \\log\\Gamma(z) - (z - \\tfrac12)\\log z + z - \\tfrac12\\log 2\\pi$ ($z > 0$):
    Stirling's series from 10 on; below, $c(z) = c(z + n) + \\sum_{k<n} [c(z+k) - c(z+k+1)]$,
    $c(w) - c(w+1) = (w + \\tfrac12)\\log(1 + 1/w) - 1$: each step's rounding is ~ε, against
    $|\\log\\Gamma(z)|\\,\\varepsilon$ for $\\log\\Gamma$ minus the rest. Its derivative is a rule,
    $c'(z) = \\psi(z) - \\log z + \\tfrac{1}{2z}$ below 10 (absolute error ~ε, what the kernels
    need), so that the jets' nested JVPs do not trace the steps."""
    shift = jnp.where(z >= _SERIES_FROM, 0, jnp.ceil(_SERIES_FROM - z))
    total = _stirling_series(z + shift)
    for k in range(int(_SERIES_FROM)):
        step = (z + k + 0.5) * jnp.log1p(1 / (z + k)) - 1
        total = total + jnp.where(k < shift, step, 0)
    return total


def _stirling_derivative(z):
    big = z >= _SERIES_FROM
    zb, zs = jnp.where(big, z, _SERIES_FROM), jnp.where(big, 1, z)
    series = jax.jvp(_stirling_series, (zb,), (jnp.ones_like(zb),))[1]
    return jnp.where(big, series, jss.digamma(zs) - jnp.log(zs) + 0.5 / zs)


def _stirling_correction_jvp(primals, tangents):
    ((z,), (t,)) = primals, tangents
    return stirling_correction(z), _stirling_derivative(z) * t


stirling_correction.defjvp(_stirling_correction_jvp)


@custom_jvp
def log1pmx(mu, log1p_mu):
    """$\\varphi(\\mu) = \\mu - \\log(1 + \\mu)$ without cancellation near 0; `log1p_mu` is
    $\\log(1 + \\mu)$, used only away from 0 (pass it accurately). Its derivative is a rule
    ($\\varphi' = \\mu/(1+\\mu)$ near 0; $d\\mu - d\\log(1+\\mu)$ from the arguments elsewhere), so
    that nested JVPs do not trace the series."""
    near = (mu >= -0.5) & (mu <= 1)
    m = jnp.where(near, mu, 0.5)
    r = m / (2 + m)
    r2 = r * r
    tail = jnp.zeros_like(r)
    for k in range(17, 0, -1):  # 1/3 + r²/5 + r⁴/7 + … (r² ≤ 1/9)
        tail = 1 / (2 * k + 1) + r2 * tail
    return jnp.where(near, r * m - 2 * r * r2 * tail, mu - log1p_mu)


def _log1pmx_jvp(primals, tangents):
    (mu, log1p_mu), (t_mu, t_log) = primals, tangents
    near = (mu >= -0.5) & (mu <= 1)
    m = jnp.where(near, mu, 0.5)
    return log1pmx(mu, log1p_mu), jnp.where(near, m / (1 + m) * t_mu, t_mu - t_log)


log1pmx.defjvp(_log1pmx_jvp)


@custom_jvp
def log_ratio(x, a):
    """$\\log(x/a)$, one rounding of the quotient (not two logarithms' of their own size), with
    the derivatives of $\\log x - \\log a$: JAX's own, through $1/(x/a)$, would square the
    quotient in the second derivative and overflow float32 at $x/a \\sim 10^{-20}$ (tiny
    quantiles). Where the quotient itself would leave the dtype's normal range (float32's
    $x = 10^{-30}$, $a = 10^{12}$) it is $\\log x - \\log a$ (no cancellation there: the result
    is of the size of the larger logarithm); `log(x / a)` was $-\\infty$ there, and the density
    $\\infty - \\infty$ = NaN."""
    q = x / a
    tiny = jnp.finfo(q.dtype).tiny
    normal = (jnp.abs(q) >= tiny) & (jnp.abs(q) <= 1 / tiny)
    return jnp.where(normal, jnp.log(jnp.where(normal, q, 1)), jnp.log(x) - jnp.log(a))


def _log_ratio_jvp(primals, tangents):
    (x, a), (tx, ta) = primals, tangents
    return log_ratio(x, a), _args.linear_tangent((tx, lambda: 1 / x), (ta, lambda: -1 / a))


log_ratio.defjvp(_log_ratio_jvp, zeros_as_none=True)


# The four kernels below are jitted: called eagerly (the rules' closed forms in x are), a
# `lax.cond` over fresh closures would be traced and lowered again at every call (40× the
# plain form's eager time); jitted, once per shape and dtype.
def _where_stable(needed, plain, stable):
    """`stable()` where `needed`, `plain()` elsewhere (both thunks). The stable forms cost about
    twice the plain ones, so they are evaluated only when some element needs them (under
    `vmap` the condition is batched and both are)."""
    return lax.cond(jnp.any(needed), lambda: jnp.where(needed, stable(), plain()), plain)


def _gamma_stable(needed, a, x):
    a_, x_ = (jnp.where(needed, u, _STABLE_FROM) for u in (a, x))
    phi = log1pmx((x_ - a_) / a_, log_ratio(x_, a_))
    return -0.5 * jnp.log(a_) - _HALF_LOG_2PI - stirling_correction(a_) - a_ * phi, a_, x_


@jax.jit
def log_gamma_kernel(a, x):
    """$\\log(x^a e^{-x}/\\Gamma(a+1))$ for $a, x > 0$: the form above from $a = 10$, the plain
    $a\\log x - x - \\log\\Gamma(a+1)$ below (there its terms are small, and its cost half)."""
    needed = a >= _STABLE_FROM
    return _where_stable(
        needed,
        lambda: a * jnp.log(x) - x - jss.gammaln(a + 1),
        lambda: _gamma_stable(needed, a, x)[0],
    )


@jax.jit
def log_gamma_density(a, x):
    """$\\log(x^{a-1} e^{-x}/\\Gamma(a)) = $ `log_gamma_kernel` $- \\log(x/a)$, plain below
    $a = 10$ (JAX's own form of the density there)."""
    needed = a >= _STABLE_FROM

    def stable():
        kernel, a_, x_ = _gamma_stable(needed, a, x)
        return kernel - log_ratio(x_, a_)

    return _where_stable(needed, lambda: (a - 1) * jnp.log(x) - x - jss.gammaln(a), stable)


def _beta_stable(needed, a, b, log_x, log_1mx, x, xc):
    a_, b_ = (jnp.where(needed, u, _STABLE_FROM) for u in (a, b))
    s = a_ + b_
    lam = b_ * x - a_ * xc  # (a + b) x - a, with whichever of x, 1 - x is exact
    phi_a = log1pmx(lam / a_, log_x + jnp.log1p(b_ / a_))
    phi_b = log1pmx(-lam / b_, log_1mx + jnp.log1p(a_ / b_))
    c = stirling_correction(a_) + stirling_correction(b_) - stirling_correction(s)
    half_log = 0.5 * (jnp.log(a_) + jnp.log(b_) - jnp.log(s))
    return -(a_ * phi_a + b_ * phi_b) + half_log - _HALF_LOG_2PI - c


def log_minus_digamma(z):
    """$\\log z - \\psi(z) = \\frac{1}{2z} - c'(z)$ for $z > 0$, $c'$ from Stirling's series
    from $z = 10$ (`_stirling_derivative`), where the two logarithms of size ~$\\log z$ would
    cancel to ~$1/(2z)$."""
    return 0.5 / z - _stirling_derivative(z)


def log_beta(a, b):
    """$\\log B(a, b)$ as `gammaln(a) + gammaln(b) - gammaln(a + b)`: JAX's `betaln` is off by
    5e-9 at (30, 40) and its Hessian is wrong at (1, 1) on JAX 0.10.2 (the audit in
    `docs/library/special.md`)."""
    return jss.gammaln(a) + jss.gammaln(b) - jss.gammaln(a + b)


@jax.jit
def log_beta_kernel(a, b, log_x, log_1mx, x, xc):
    """$\\log(x^a (1-x)^b / B(a, b))$ for $a, b > 0$, $0 < x < 1$; `xc` is $1 - x$, and
    `log_x`, `log_1mx` are $\\log x$ and $\\log(1 - x)$, each as exact as the caller has them.
    The form above where $a$ or $b \\ge 10$, the plain
    $a\\log x + b\\log(1-x) - \\log B(a, b)$ elsewhere."""
    needed = (a >= _STABLE_FROM) | (b >= _STABLE_FROM)
    return _where_stable(
        needed,
        lambda: a * log_x + b * log_1mx - log_beta(a, b),
        lambda: _beta_stable(needed, a, b, log_x, log_1mx, x, xc),
    )


@jax.jit
def log_beta_density(a, b, log_x, log_1mx, x, xc):
    """$\\log(x^{a-1}(1-x)^{b-1}/B(a, b))$ = `log_beta_kernel` $- \\log x - \\log(1-x)$, plain
    where both shapes are below 10."""
    needed = (a >= _STABLE_FROM) | (b >= _STABLE_FROM)
    return _where_stable(
        needed,
        lambda: (a - 1) * log_x + (b - 1) * log_1mx - log_beta(a, b),
        lambda: _beta_stable(needed, a, b, log_x, log_1mx, x, xc) - log_x - log_1mx,
    )
