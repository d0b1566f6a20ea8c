r"""Modified Bessel functions of real order: `ive(v, x)` $= I_v(x)e^{-x}$, `kve(v, x)`
$= K_v(x)e^{x}$ and `log_iv(v, x)` $= \log I_v(x)$ — JAX has none of them (only integer
orders 0 and 1; jax-ml/jax#11002, #12402: von Mises–Fisher normalisers, Matérn kernels).

**Values** (Temme's method, as Numerical Recipes' `bessik`, in scaled form so that nothing
overflows for large $x$). With $\mu = v - \lfloor v + \tfrac12 \rfloor \in [-\tfrac12, \tfrac12)$:

1. the ratio $r = I_{v+1}/I_v$ from its continued fraction
   $r = \cfrac{x}{2(v+1) + \cfrac{x^2}{2(v+2) + \cdots}}$ (Steed's algorithm), so
   $I_v'/I_v = r + v/x$;
2. downward recurrence $I_{l-1} = (2l/x) I_l + I_{l+1}$ (positive terms) from $v$ to $\mu$
   (renormalised every step, its logarithm kept), giving $I_v/I_\mu$ and
   $g = I_{\mu+1}/I_\mu$;
3. $K_\mu$ and $s_\mu = K_{\mu+1}/K_\mu$ by Temme's series for $x < 2$ (with $1/\Gamma(1 \pm \mu)$
   from its Taylor series) and Steed's continued fraction CF2 for $x \ge 2$, $K_\mu$ times $e^x$;
4. the Wronskian $I_\mu K_{\mu+1} + I_{\mu+1} K_\mu = 1/x$ gives
   $I_\mu = 1/(x K_\mu (s_\mu + g))$, every term positive, hence $I_v$; the upward recurrence
   $s_{l+1} = 2(l+1)/x + 1/s_l$, $\log K_{l+1} = \log K_l + \log s_l$ gives $K_v$ and
   $K_{v+1}/K_v$ (ratios: $K_{v+1}$ may overflow where $K_v$ does not). (Numerical Recipes
   writes the Wronskian with $I_\mu'/I_\mu - \mu/x$, which cancels: for $\mu < 0$ and small
   $x$ its error $\varepsilon|\mu|/x$ meets $K_\mu \gg K_{\mu+1}$, and `ive(2.5, 1e-30)` came
   out as 1.5e-91 for 5.3e-77.)
5. for $x \ge 20$ with $2v^2 \le x$, `ive` and `log_iv` come instead from
   Hankel's expansion $I_v(x)e^{-x}\sqrt{2\pi x} = \sum_k (-1)^k a_k(v)/x^k$ (40 terms; 20 in
   float32: there its terms fall to below ε before they grow), no loop: no $O(x)$ continued
   fraction, and a slope $-1/(2x) + S'/S$ that does not cancel (below); float32 takes it
   from $x \ge 10$ wherever $v^2 \le 2x$, which covers `ive`'s maximum ($x \approx v^2$);
6. for $x \le 2$, $v \ge 5$ (values down to 1e-38), `ive` and `log_iv` come from the power
   series $\frac{(x/2)^v}{\Gamma(v+1)}\sum_k \frac{(x^2/4)^k}{k!(v+1)_k}$, its prefactor from
   `_log_kernels`;
7. from $v = 1000$ (`_DEBYE_ORDER`) the values and $K_{v+1}/K_v$ come from Debye's uniform
   expansions instead (`_debye_values`): the recurrences take $\lfloor v \rfloor$ steps, and
   lost $v\varepsilon$ in float32.

**Derivatives in $x$**, to any order, through the ratios, each a rule of its own with the
Riccati equation that the recurrences give:

$$\frac{d}{dx}\,\mathrm{ive} = \mathrm{ive}\,\Bigl(r + \frac vx - 1\Bigr), \quad
\frac{d}{dx}\,\mathrm{kve} = \mathrm{kve}\,\Bigl(1 + \frac vx - s\Bigr), \quad
\frac{d}{dx}\log I_v = r + \frac vx,$$
$$r' = 1 - r^2 - \frac{2v+1}{x}\,r, \qquad s' = s^2 - \frac{2v+1}{x}\,s - 1, \qquad
s = K_{v+1}/K_v.$$

Where Hankel's expansion gives the value, `ive`'s slope $r + v/x - 1 \approx -1/(2x)$ (a
difference of terms of size 1, which would lose $2x\varepsilon$: 9e-5 in float32 at
$x = 45$) is its logarithmic derivative $-1/(2x) + S'/S$ instead, plain JAX (any order).

(From $I_v' = I_{v+1} + (v/x) I_v$, $K_v' = -K_{v+1} + (v/x) K_v$ and the same at $v+1$.)

**In the order $v$, `kve`** is differentiated through its integral
$K_v(x)e^x = \int_0^\infty e^{-x(\cosh t - 1)} \cosh(vt)\,dt$:

$$\frac{\partial}{\partial v}\,\mathrm{kve}(v, x) = D(v, x)
  = \int_0^\infty t \sinh(vt)\, e^{-x(\cosh t - 1)}\,dt,$$

a positive integrand for $v > 0$ (no cancellation), analytic and even in $t$, decaying
double-exponentially: the trapezoidal rule converges geometrically in $1/h$ (the integrand is
analytic in the strip $|\operatorname{Im} t| < \pi/2$, where $\operatorname{Re}\cosh t > 0$).
`_kve_order_slope` takes 256 points (float32: 96) over the window where the integrand is
within $e^{-45}$ ($e^{-20}$) of its peak — the peak of $\log t + \log\sinh(|v|t) -
x(\cosh t - 1)$ and the two ends found by bisection, on stopped values — and writes the
integrand as $t\tanh(vt)\cdot e^{|v|t - x(\cosh t - 1)}(1 + e^{-2|v|t})/2$, $\cosh t - 1$ as
$2\sinh^2(t/2)$ (odd in $v$ and smooth at $v = 0$, overflowing only where $D$ itself does;
no cancellation at the small $t \sim 1/\sqrt x$ of large $x$). The nodes being constants, JAX
differentiates the sum: $\partial^2/\partial v^2$ and $\partial^2/\partial v\,\partial x$ are
the same quadrature of the differentiated integrand; the ratio $s$ gets
$\partial s/\partial v = \operatorname{sign}(v)(D(|v|+1, x) - s\,D(|v|, x))/\mathrm{kve}$.
Within 1e-13 of mpmath (40 digits) for $|v| \le 100$, $x$ from 1e-4 to 700 (6e-13 at
$x = 2\cdot 10^4$). For $I_v$ no such formula is stable — its integral representation
leaves $I_v$ (tiny for $v \gg x$) as a difference of terms of size 1, and the series in
$\psi(k + v + 1)$ needs as many terms as $x$ — so differentiating `ive` or `log_iv` in `v`
raises `NotImplementedError` saying so.

**Integer orders 0 and 1**, given as Python numbers, take JAX's `i0e`/`i1e` (Chebyshev
expansions) for the values and the ratio, with the same Riccati rules: no loops.

**Domain.** $v \ge 0$ for `ive` and `log_iv` ($K_{-v} = K_v$: `kve` takes any real `v`),
$x > 0$; at $x = 0$ the values' limits ($I_0 = 1$, $I_{v>0} = 0$, $K = \infty$); elsewhere NaN.
The continued fraction for $r$ takes $O(x)$ steps for $x \gg v$; `ive` and `log_iv` skip it
where Hankel's expansion applies ($2v^2 \le x$); elsewhere (and in `kve`'s derivative) an
element not converged after 20 000 steps (beyond $x \approx 10^4$) is NaN. Accuracy against
mpmath (float64): values and first derivatives within 1e-12; second derivatives through the
Riccati rules at $x \gg v$ lose about $x^2\varepsilon$ (they subtract terms of size 1 to
leave one of size $1/x^2$): 7e-10 at $x = 250$, $v = 12$. So from order 25 (float32: 8) and
$x \ge 20$ (10), outside Hankel's region, the slope is Debye's uniform expansion instead
(`_debye_slope`), whose terms JAX differentiates without cancellation: float32's second
derivative at $(60, 500)$ went from 2.6e-2 to 1.4e-7 relative. In float32 the registered check
allows 1e-3 for the Riccati region. float32 accuracy: `docs/library/special.md`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
from jax import lax

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args
from . import _log_kernels as _kernels
from . import _roots
from ._shapes import along_last

__all__ = ["ive", "kve", "log_iv"]

_MAX = 20_000
# 1/Γ(z) = Σ_k c_k z^k (c_0 = 0): mpmath.taylor(mpmath.rgamma, 0, 30) at 50 digits.
_RGAMMA = (0.0, 1.0, 0.5772156649015329, -0.6558780715202539, -0.04200263503409524,
           0.16653861138229148, -0.04219773455554433, -0.009621971527876973,
           0.0072189432466631, -0.0011651675918590652, -0.00021524167411495098,
           0.0001280502823881162, -2.013485478078824e-05, -1.2504934821426706e-06,
           1.133027231981696e-06, -2.056338416977607e-07, 6.116095104481416e-09,
           5.002007644469223e-09, -1.18127457048702e-09, 1.0434267116911005e-10,
           7.782263439905071e-12, -3.696805618642206e-12, 5.100370287454476e-13,
           -2.0583260535665066e-14, -5.348122539423018e-15, 1.2267786282382608e-15,
           -1.1812593016974588e-16, 1.1866922547516004e-18, 1.4123806553180319e-18,
           -2.29874568443537e-19, 1.7144063219273374e-20)  # fmt: skip


def _poly(coefs, z):
    out = jnp.zeros_like(z)
    for c in reversed(coefs):
        out = out * z + c
    return out


def _gammas(mu):
    """$\\gamma_1 = (1/\\Gamma(1-\\mu) - 1/\\Gamma(1+\\mu))/(2\\mu)$, $\\gamma_2$ = their mean,
    and the two reciprocals, from the Taylor series (no cancellation at μ → 0)."""
    m2 = mu * mu
    gam1 = -_poly(_RGAMMA[2::2], m2)
    gam2 = _poly(_RGAMMA[1::2], m2)
    return gam1, gam2, gam2 - mu * gam1, gam2 + mu * gam1


def _loop(body, init):
    """`while_loop` until no element is still moving (the last carry entry), or `_MAX`."""

    def c(carry):
        return (carry[0] < _MAX) & jnp.any(carry[-1])

    return lax.while_loop(c, body, init)


def _i_ratio_cf(v, x):
    """$I_{v+1}/I_v = x/(2(v+1) + x^2/(2(v+2) + \\cdots))$ by Steed's algorithm."""
    eps = jnp.finfo(x.dtype).eps
    D = 1 / (2 * (v + 1))
    f = x * D
    step = f

    def body(carry):
        n, D, step, f, moving = carry
        b = 2 * (v + n)
        Dn = 1 / (b + x * x * D)
        step = (b * Dn - 1) * step
        new = f + step
        done = jnp.abs(step) <= eps * jnp.abs(new)
        return n + 1, Dn, step, jnp.where(moving, new, f), moving & ~done

    *_, f, moving = _loop(body, (jnp.asarray(2), D, step, f, jnp.ones_like(x, bool)))
    return jnp.where(moving, jnp.nan, f)


def _temme(mu, x):
    """$K_\\mu e^x$ and $K_{\\mu+1}/K_\\mu$ by Temme's series, for $x < 2$ (the ratio, not
    $K_{\\mu+1}$: that is ~$x^{-3/2}$, and overflowed float32 below $x \\approx 10^{-26}$)."""
    eps = jnp.finfo(x.dtype).eps
    x2 = x / 2
    pimu = jnp.pi * mu
    fact = jnp.where(jnp.abs(pimu) < eps, 1.0, pimu / jnp.sin(jnp.where(pimu == 0, 1, pimu)))
    d = -jnp.log(x2)
    e = mu * d
    fact2 = jnp.where(jnp.abs(e) < eps, 1.0, jnp.sinh(e) / jnp.where(e == 0, 1, e))
    gam1, gam2, gampl, gammi = _gammas(mu)
    ff = fact * (gam1 * jnp.cosh(e) + gam2 * fact2 * d)
    ee = jnp.exp(e)
    p = 0.5 * ee / gampl
    q = 0.5 / (ee * gammi)

    def body(carry):
        i, ff, total, total1, p, q, c, moving = carry
        i_ = i.astype(x.dtype)
        ff = (i_ * ff + p + q) / (i_ * i_ - mu * mu)
        c = c * (x2 * x2) / i_
        p = p / (i_ - mu)
        q = q / (i_ + mu)
        step = c * ff
        new, new1 = total + step, total1 + c * (p - i_ * ff)
        done = jnp.abs(step) <= eps * jnp.abs(new)
        keep = lambda a, b: jnp.where(moving, a, b)
        return i + 1, ff, keep(new, total), keep(new1, total1), p, q, c, moving & ~done

    # carry order: i, ff, sum, sum1, p, q, c, moving
    init = (jnp.asarray(1), ff, ff, p, p, q, jnp.ones_like(x), jnp.ones_like(x, bool))
    _, _, total, total1, _, _, _, moving = _loop(body, init)
    k_mu, ratio = total * jnp.exp(x), (total1 / total) * (2 / x)
    return jnp.where(moving, jnp.nan, k_mu), jnp.where(moving, jnp.nan, ratio)


def _steed_k(mu, x):
    """$K_\\mu e^x$ and $K_{\\mu+1}/K_\\mu$ by Steed's continued fraction CF2, for $x \\ge 2$."""
    eps = jnp.finfo(x.dtype).eps
    b = 2 * (1 + x)
    d = 1 / b
    a1 = 0.25 - mu * mu
    one = jnp.ones_like(x)
    init = (jnp.asarray(2), b, d, d, d, 0 * one, one, a1 * one, a1 * one, -a1 * one,
            1 + a1 * d, jnp.ones_like(x, bool))  # fmt: skip

    def body(carry):
        i, b, d, h, delh, q1, q2, q, c, a, s, moving = carry
        i_ = i.astype(x.dtype)
        a = a - 2 * (i_ - 1)
        c = -a * c / i_
        qnew = (q1 - b * q2) / a
        q1, q2 = q2, qnew
        q = q + c * qnew
        b = b + 2
        d = 1 / (b + a * d)
        delh = (b * d - 1) * delh
        h_new = h + delh
        dels = q * delh
        s_new = s + dels
        done = jnp.abs(dels) <= eps * jnp.abs(s_new)
        keep = lambda u, w: jnp.where(moving, u, w)
        return (i + 1, b, d, keep(h_new, h), delh, q1, q2, q, c, a, keep(s_new, s),
                moving & ~done)  # fmt: skip

    out = _loop(body, init)
    h, s, moving = out[3], out[10], out[11]
    h = a1 * h
    k_mu = jnp.sqrt(jnp.pi / (2 * x)) / s
    ratio = (mu + x + 0.5 - h) / x
    return jnp.where(moving, jnp.nan, k_mu), jnp.where(moving, jnp.nan, ratio)


#: From this order on, `_core`'s values come from Debye's expansion (`_debye_values`), not the
#: recurrences, which take ⌊v⌋ steps: v = 1e7 took 0.3 s a call, float32 lost about vε
#: (log_iv(1e6, 1e3) 1.1e-3 relative off, at 1.6e7 11 %), and from 2²⁴ (float32) the step
#: counter stopped counting: the loop never ended (nor at v = inf).
_DEBYE_ORDER = 1000.0


def _debye_values(v, x):
    r"""`(log(I_v e^{-x}), log(K_v e^x), K_{v+1}/K_v)` from Debye's uniform expansions (DLMF
    10.41.3–4), for the orders of `_DEBYE_ORDER` on (its terms below ε from `_DEBYE`'s bound):
    with $h = \sqrt{x^2 + v^2}$, $p = v/h$, $T_\pm(p) = \sum_k (\pm1)^k U_k(p)\,v^{-k}$,
    $$\log I_v e^{-x} = v(\eta - z) - \tfrac12\log(2\pi v) - \tfrac12\log\tfrac hv + \log T_+,
    \quad \log K_v e^{x} = \tfrac12\log\tfrac{\pi}{2v} - v(\eta - z) - \tfrac12\log\tfrac hv
    + \log T_-,$$
    $\eta - z = v/(h + x) + \log\frac{x}{v + h}$ ($z = x/v$; DLMF's $\eta$), the logarithm
    written $\log(1 - \frac{v(h + x + v)}{(h + x)(v + h)})$ by `log1p` for $x > v$, where its
    argument nears 1 and $\eta - z \approx -v/(2x)$ would cancel. The ratio
    $K_{v+1}/K_v = v/x - \frac{d}{dx}\log K_v = \frac{v + h}{x} + \frac{x}{2h^2}
    + \frac{T_-'}{T_-}\frac{p\,x}{h^2}$ (as `_debye_slope`; positive terms). Nothing
    overflows that is finite: no $x^2$ or $v^2$ is formed."""
    table = _DEBYE[jnp.finfo(x.dtype).bits][1]
    h = jnp.hypot(x, v)
    p = v / h
    w = jnp.where(x <= v, jnp.log(x / (v + h)), jnp.log1p(-v * (h + x + v) / ((h + x) * (v + h))))
    exponent = v * (v / (h + x) + w)
    t_plus, _ = _debye_series(v, p, table)
    t_minus, dt_minus = _debye_series(v, p, table * (-1.0) ** np.arange(len(table))[:, None])
    log_h_v = jnp.log(h / v)
    log_ive = exponent - 0.5 * jnp.log(2 * jnp.pi * v) - 0.5 * log_h_v + jnp.log(t_plus)
    log_kve = 0.5 * jnp.log(jnp.pi / (2 * v)) - exponent - 0.5 * log_h_v + jnp.log(t_minus)
    damp = (x / h) / h
    ratio = (v + h) / x + 0.5 * damp + dt_minus / t_minus * p * damp
    return log_ive, log_kve, ratio


@jax.jit
def _core(v, x):
    """`(log(I_v(x) e^{-x}), I_{v+1}/I_v, K_v e^x, K_{v+1}/K_v)` for finite v ≥ 0, x > 0
    (elementwise); from `_DEBYE_ORDER` on the values and K's ratio by Debye's expansion."""
    dtype = x.dtype
    valid = (v >= 0) & jnp.isfinite(v) & (x > 0) & jnp.isfinite(x)
    v_ = jnp.where(valid, v, 0.5).astype(dtype)
    x_ = jnp.where(valid, x, 1.0).astype(dtype)
    debye = v_ >= _DEBYE_ORDER
    log_ive_d, log_kve_d, s_d = _debye_values(jnp.where(debye, v_, _DEBYE_ORDER), x_)
    vr = jnp.where(debye, 0.25, v_)  # for those, the recurrences take no step (nl = 0)
    nl = jnp.floor(vr + 0.5)
    mu = vr - nl
    r = _i_ratio_cf(v_, x_)

    # Downward: g_l = I_{l+1}/I_l from l = v (g_v = r) to μ by I_{l-1} = (2l/x) I_l + I_{l+1}
    # (positive terms): g_{l-1} = 1/(2l/x + g_l), and log(I_{l-1}/I_l) = log(2l/x + g_l) summed.
    def down(carry):
        k, g, log_scale, moving = carry
        step = 2 * (v_ - k) / x_ + g
        keep = lambda u, w: jnp.where(moving, u, w)
        return (k + 1, keep(1 / step, g), keep(log_scale + jnp.log(step), log_scale),
                moving & (k + 1 < nl))  # fmt: skip

    init = (jnp.asarray(0.0, dtype), r, jnp.zeros_like(x_), nl > 0)
    _, g, log_scale, _ = lax.while_loop(lambda c: jnp.any(c[-1]), down, init)

    small = x_ < 2
    kt, st = _temme(mu, jnp.where(small, x_, 1.0))
    ks, ss = _steed_k(mu, jnp.where(small, 3.0, x_))
    k_mu, s_mu = jnp.where(small, kt, ks), jnp.where(small, st, ss)
    # The Wronskian I_μ K_{μ+1} + I_{μ+1} K_μ = 1/x: I_μ e^{-x} = 1/(x K_μ e^x (s + g)), all
    # terms positive. (It was 1/(x (f K_μ - K_μ')) with f = I_μ'/I_μ: f - μ/x cancels, and for
    # μ < 0 the error ε|μ|/x of f met K_μ ≫ K_{μ+1}: ive(2.5, 1e-5) was 2.6e-11 off in
    # float64, 1e-3 in float32, ive(2.5, 1e-30) 1e-91 for 5e-77.)
    # One logarithm of the product (a sum of logarithms of ~7 each cost log_iv its absolute
    # accuracy near its zero: 3e-7 in float32 at (0, 1e-3)); no factor over- or underflows
    # (|μ| ≤ ½: I_μ e^{-x} within x^{±1/2}).
    i_mu = 1 / ((x_ * k_mu) * (s_mu + g))
    log_ive = jnp.log(i_mu) - log_scale

    # Upward: s_{l+1} = K_{l+2}/K_{l+1} = 2(l+1)/x + 1/s_l and log K_{l+1} = log K_l + log s_l,
    # from μ to v (ratios: K_{v+1} may overflow where K_v does not).
    def up(carry):
        i, log_k, s, moving = carry
        keep = lambda u, w: jnp.where(moving, u, w)
        new = (2 * (mu + i) / x_) + 1 / s
        return i + 1, keep(log_k + jnp.log(s), log_k), keep(new, s), moving & (i + 1 <= nl)

    init = (jnp.asarray(1.0, dtype), jnp.log(k_mu), s_mu, nl >= 1)
    _, log_k_v, s_v, _ = lax.while_loop(lambda c: jnp.any(c[-1]), up, init)
    log_ive = jnp.where(debye, log_ive_d, log_ive)
    k_v = jnp.exp(jnp.where(debye, log_kve_d, log_k_v))
    s_v = jnp.where(debye, s_d, s_v)
    return tuple(jnp.where(valid, u, jnp.nan) for u in (log_ive, r, k_v, s_v))


# Hankel's expansion is used from x = 20 where 2v² ≤ x (float64; float32: from x = 10 where
# v² ≤ 2x), with 2·x_min terms: there its terms fall like 1/k! before k ≈ v and by 2x/k after,
# and the last is below ε (k!/(2x)^k at k = 2x), as is the exponentially small e^{-2x} of the
# other saddle.
def _hankel_region(dtype) -> tuple[float, float]:
    """`(x_min, c)`: Hankel's expansion where $x \\ge x_{min}$ and $v^2 \\le c\\,x$."""
    return (20.0, 0.5) if jnp.finfo(dtype).eps < 1e-10 else (10.0, 2.0)


@functools.partial(jax.jit, static_argnames="alternating")  # unrolled: one dispatch per call
def _hankel(v, x, alternating: bool = True):
    r"""$\log S$ and $S'/S$ for $I_v(x)\,e^{-x}\sqrt{2\pi x} = S(x)
    = \sum_k (-1)^k a_k(v) x^{-k}$, $a_k = \prod_{j \le k} (4v^2 - (2j-1)^2)/(k!\,8^k)$
    (not `alternating`: $K_v(x)\,e^{x}\sqrt{2x/\pi} = \sum_k a_k(v) x^{-k}$, DLMF 10.40.2;
    plain JAX, a fixed number of terms: JAX differentiates it to any order)."""
    terms = int(2 * _hankel_region(x.dtype)[0])
    mu4 = 4 * v * v
    t, total, slope = jnp.ones_like(x), jnp.ones_like(x), jnp.zeros_like(x)
    for k in range(1, terms + 1):
        t = (-t if alternating else t) * (mu4 - (2 * k - 1) ** 2) / (8 * k * x)
        total = total + t
        slope = slope - k * t / x
    return jnp.log(total), slope / total


def _debye_polynomials(count: int) -> np.ndarray:
    r"""Debye's $U_0 … U_{count-1}$, row k the coefficients of $p^0, p^1, …$ in $U_k$, exact (rationals) from
    DLMF 10.41.10: $U_{k+1}(p) = \tfrac12 p^2(1 - p^2)U_k'(p) + \tfrac18\int_0^p (1 - 5t^2)U_k(t)
    \,dt$, $U_0 = 1$ ($U_1 = (3p - 5p^3)/24$, ...)."""
    from fractions import Fraction

    def times(a, b):
        out = [Fraction(0)] * (len(a) + len(b) - 1)
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                out[i + j] += x * y
        return out

    polys = [[Fraction(1)]]
    for _ in range(count - 1):
        u = polys[-1]
        du = [i * u[i] for i in range(1, len(u))] or [Fraction(0)]
        first = times([Fraction(0), 0, Fraction(1, 2), 0, Fraction(-1, 2)], du)
        second = [Fraction(0)] + [c / (8 * (i + 1)) for i, c in enumerate(times([1, 0, -5], u))]
        n = max(len(first), len(second))
        first, second = first + [0] * (n - len(first)), second + [0] * (n - len(second))
        polys.append([a + b for a, b in zip(first, second)])
    table = np.zeros((count, max(len(u) for u in polys)))
    for k, u in enumerate(polys):
        table[k, : len(u)] = [float(c) for c in u]
    return table


#: (smallest order, Debye's terms) per precision: the first term left out, |U_k(p)| ≤ 0.38 for
#: k = 9 and 48 for k = 13 on [0, 1], is below ε there (8⁻⁹·0.38, 25⁻¹³·48).
_DEBYE = {32: (8.0, _debye_polynomials(9)), 64: (25.0, _debye_polynomials(13))}


def _debye_series(v, p, table):
    """`(T(p), T'(p))` for `T(p) = Σ_k U_k(p) v^(-k)`, `table` the `U_k`'s coefficients (rows:
    k; signs included). `T = Σ_j c_j p^j` with `c_j = Σ_k U_k[j] v^(-k)`: the coefficients depend
    on v alone, so derivatives in x pass through one Horner loop in p (not one per term k)."""
    k = along_last(jnp.arange(table.shape[0], dtype=p.dtype), v)
    powers = (1 / v)[..., None] ** k
    c = powers @ jnp.asarray(table, p.dtype)
    total, slope = jnp.zeros_like(p), jnp.zeros_like(p)
    for j in reversed(range(table.shape[1])):
        total = total * p + c[..., j]
        if j:
            slope = slope * p + j * c[..., j]
    return total, slope


def _debye_region(v, x):
    """Where `_debye_slope` gives `_slope` instead of the Riccati rule: orders from
    `_DEBYE`'s bound, x from Hankel's start (below it the Riccati rule loses only x²ε)."""
    start, _ = _hankel_region(x.dtype)
    return (x >= start) & (v >= _DEBYE[jnp.finfo(x.dtype).bits][0])


@functools.partial(jax.jit, static_argnames="log")  # unrolled: one dispatch per eager call
def _debye_slope(v, x, log: bool):
    r"""$\frac{d}{dx}\log I_v(x)$ (`log`; else that minus 1, `ive`'s) from Debye's uniform
    expansion (DLMF 10.41.3), $I_v(x) \sim \frac{e^{v\eta}}{\sqrt{2\pi v}\,(1 + z^2)^{1/4}}
    \sum_k \frac{U_k(p)}{v^k}$, $z = x/v$, $p = (1 + z^2)^{-1/2}$, $\frac{d}{dx} v\eta
    = \sqrt{1 + u^2}$ with $u = v/x$:
    $$\frac{d}{dx}\log I_v = \sqrt{1 + u^2} - \frac{1}{2x(1 + u^2)}
      - \frac{T'(p)}{T(p)}\,\frac{p}{x(1 + u^2)}, \qquad T(p) = \sum_k U_k(p)\,v^{-k}$$
    ($p' = -p/(x(1 + u^2))$), and $\sqrt{1 + u^2} - 1 = u^2/(\sqrt{1 + u^2} + 1)$ for `ive`.
    Every term is computed directly, so JAX's derivative of it (the second derivative of
    `log_iv`, $-v^2/(x^2 w) + \dots$, $w = \sqrt{x^2 + v^2}$) does not cancel, where the
    Riccati rule subtracts terms of size 1 to leave one of size $1/x^2$ (float32: 2.6e-2
    relative at $v = 60$, $x = 500$; 4.7e-2 at $v = 150$, $x = 2000$)."""
    table = _DEBYE[jnp.finfo(x.dtype).bits][1]
    u = v / x
    root = jnp.hypot(1.0, u)
    p = u / root
    total, slope = _debye_series(v, p, table)
    lead = root if log else u * u / (root + 1)
    damp = 1 / (x * (1 + u * u))
    return lead - 0.5 * damp - slope / total * p * damp


def _i_parts(v, x):
    """`(asymptotic, x for Hankel, x for Temme)`: where Hankel's expansion is used, and the
    points each path sees (the other path's elements get one where it converges at once)."""
    start, c = _hankel_region(x.dtype)
    asymptotic = (x >= start) & (v * v <= c * x) & (v >= 0)
    return asymptotic, jnp.where(asymptotic, x, start), jnp.where(asymptotic, 1, x)


@jax.jit  # unrolled sums: one dispatch per eager call, not one per term
def _log_ive_series(v, x):
    """$\\log(I_v(x) e^{-x})$ by the power series $I_v(x) = \\frac{(x/2)^v}{\\Gamma(v+1)}
    \\sum_k \\frac{(x^2/4)^k}{k!\\,(v+1)_k}$ for $0 < x \\le 2$ (12 terms: below float64's ε), its
    prefactor from `_log_kernels` (no cancellation of terms of size $v\\log v$)."""
    z = x * x / 4
    t, total = jnp.ones_like(x), jnp.ones_like(x)
    for k in range(1, 13):
        t = t * z / (k * (v + k))
        total = total + t
    return _kernels.log_gamma_kernel(v, x / 2) - x / 2 + jnp.log(total)


def _log_ive_value(v, x):
    """$\\log(I_v(x) e^{-x})$: Hankel's expansion for $x \\ge 20$ (float32: 10) and $v$ not
    large against $\\sqrt x$ (no loop, and none of the continued fraction's $O(x)$ steps), the
    power series for $x \\le 2$, $v \\ge 5$ (values down to ~1e-30 there: Temme's recurrences
    would carry the rounding of a logarithm of ~70 through tens of steps; below 5 the series'
    $\\log\\Gamma(v+1)$ would cost `log_iv` its absolute accuracy near its zero at small $x$),
    Temme's method elsewhere."""
    asymptotic, xa, xt = _i_parts(v, x)
    small = (x > 0) & (x <= 2) & (v >= 5)
    xs, vs = jnp.where(small, x, 1), jnp.where(small, v, 1)
    xt = jnp.where(small, 1, xt)
    log_s, _ = _hankel(v, xa)
    return jnp.where(
        asymptotic,
        log_s - 0.5 * jnp.log(2 * jnp.pi * xa),
        jnp.where(small, _log_ive_series(vs, xs), _core(v, xt)[0]),
    )


def _slope(v, x, log: bool = False):
    r"""$\frac{d}{dx}\log(I_v e^{-x}) = r + v/x - 1$ (`log`: $\frac{d}{dx}\log I_v = r + v/x$)
    — plain JAX over two rules, so that JAX differentiates it to any order: Hankel's
    $-1/(2x) + S'/S$ (plus 1) where it is used (the difference $r + v/x - 1 \approx -1/(2x)$
    of terms of size 1 would lose $2x\varepsilon$ there: 9e-5 in float32 at $x = 45$), the
    ratio's Riccati rule elsewhere. `log_iv`'s is not 1 plus `ive`'s: where $r + v/x$ is
    small that rounds it away ($v = 0$, $x = 10^{-8}$: $r = 5\cdot10^{-9}$ came out 6e-9
    relative off in float64, and 0 in float32)."""
    asymptotic, xa, xt = _i_parts(v, x)
    debye = _debye_region(v, x) & ~asymptotic
    vd = jnp.where(debye, v, _DEBYE[jnp.finfo(x.dtype).bits][0])
    xd = jnp.where(debye, x, 1.0)
    xt = jnp.where(debye, 1.0, xt)
    shift = 1.0 if log else 0.0
    return jnp.where(
        asymptotic,
        shift - 0.5 / xa + _hankel(v, xa)[1],
        jnp.where(debye, _debye_slope(vd, xd, log), _i_ratio(v, xt) + v / xt - (1.0 - shift)),
    )


def _order_tangent(name, tv):
    if tv is not None:
        raise NotImplementedError(
            f"{name}: no derivative in the order v (no stable formula: I_v's integral "
            "representation cancels for v ≫ x and its series in ψ(k + v + 1) needs O(x) terms; "
            "kve has one, through K_v's integral). Differentiate in x only; pass v as a "
            "constant or through jax.lax.stop_gradient."
        )


@custom_jvp
def _i_ratio(v, x):
    return _core(v, x)[1]


def _i_ratio_jvp(primals, tangents):
    (v, x), (tv, tx) = primals, tangents
    _order_tangent("ive/log_iv", tv)
    r = _i_ratio(v, x)
    return r, None if tx is None else (1 - r * r - (2 * v + 1) / x * r) * tx


_i_ratio.defjvp(_i_ratio_jvp, zeros_as_none=True)


def _log_sinh(z):
    return z + jnp.log(-jnp.expm1(-2 * z)) - math.log(2.0)  # a Python float: weakly typed


def _cosh_m1(t):
    """cosh t - 1 as 2 sinh²(t/2): no cancellation for small t (the window is t ~ 1/√x at large
    x, where cosh t - 1 rounded cost float32's ∂kve/∂v 3.9e-5 relative at x = 3000)."""
    return 2 * jnp.sinh(t / 2) ** 2


def _order_window(v, x):
    """`[lo, hi]` where `t sinh(|v|t) e^{-x(cosh t - 1)}` is within `e^{-45}` (float32:
    `e^{-20}`) of its peak: the peak of its logarithm `ψ` (concave) by bisection on `ψ′`,
    then each end by bisection on `ψ`. `|v|` is floored at 1e-6 (the window of `t² e^{…}`,
    which the integrand's shape tends to)."""
    f64 = jnp.finfo(x.dtype).eps < 1e-10
    drop, steps = (45.0, 60) if f64 else (20.0, 30)
    av = jnp.maximum(jnp.abs(v), 1e-6).astype(x.dtype)
    psi = lambda t: jnp.log(t) + _log_sinh(av * t) - x * _cosh_m1(t)
    slope = lambda t: 1 / t + av / jnp.tanh(av * t) - x * jnp.sinh(t)  # ψ′, decreasing
    # ψ′ < 0 beyond max(1, asinh((2 + |v|)/x)): there 1/t + |v| coth(|v|t) ≤ 2 + |v|.
    top = jnp.maximum(1.0, jnp.arcsinh((2 + av) / x)) + 1
    tiny = jnp.full_like(x, float(jnp.finfo(x.dtype).tiny) ** 0.5)
    peak = _roots.bisect(lambda t: -slope(t), tiny, top, steps)
    level = psi(peak) - drop
    lo = _roots.bisect(lambda t: psi(t) - level, tiny, peak, steps)
    hi = _roots.bisect(lambda t: level - psi(t), peak, peak + 20, steps)
    return lo, hi


@jax.jit  # the bisections' loops: one dispatch per eager call
def _kve_order_slope(v, x):
    r"""$\partial\,\mathrm{kve}/\partial v = \int_0^\infty t\sinh(vt)e^{-x(\cosh t-1)}dt$ by
    the trapezoidal rule on the integrand's window (see the module): plain JAX in `v`, `x`
    (the window stopped), so JAX differentiates it to any order. `x > 0`."""
    n = 256 if jnp.finfo(x.dtype).eps < 1e-10 else 96
    lo, hi = _order_window(lax.stop_gradient(v), lax.stop_gradient(x))
    h = (hi - lo) / n
    k = along_last(jnp.arange(n + 1, dtype=x.dtype), lo)
    t = lo[..., None] + h[..., None] * k
    weight = jnp.where((k == 0) | (k == n), 0.5, 1.0).astype(x.dtype)
    av, v_, x_ = jnp.abs(v)[..., None], v[..., None], x[..., None]
    cosh_scaled = jnp.exp(av * t - x_ * _cosh_m1(t)) * (1 + jnp.exp(-2 * av * t)) / 2
    return h * jnp.sum(weight * t * jnp.tanh(v_ * t) * cosh_scaled, axis=-1)


def _abs_even(v):
    """`|v|` for the tangents of functions even in `v` (`kve`, `s`'s Riccati coefficient): its
    JAX derivative at 0 is `sign(0) = 0`, where `jnp.abs`'s is 1 — which made `∂²kve/∂x∂v`
    at `v = 0` come out as `2 kve/x` instead of 0."""
    return v * jnp.sign(v)


def _kve_dv(v, x):
    """`∂kve/∂v`: the quadrature where `x > 0` (NaN elsewhere, as the value's domain)."""
    ok = (x > 0) & jnp.isfinite(x) & jnp.isfinite(v)
    return jnp.where(ok, _kve_order_slope(jnp.where(ok, v, 1.0), jnp.where(ok, x, 1.0)), jnp.nan)


@custom_jvp
def _k_ratio(v, x):
    return _core(jnp.abs(v), x)[3]


def _k_ratio_jvp(primals, tangents):
    (v, x), (tv, tx) = primals, tangents
    s = _k_ratio(v, x)
    av = _abs_even(v)
    ds = None if tx is None else (s * s - (2 * av + 1) / x * s - 1) * tx
    if tv is not None:  # s = K_{|v|+1}/K_{|v|}: through ∂kve/∂v at |v| and |v| + 1
        dv = jnp.sign(v) * (_kve_dv(av + 1, x) - s * _kve_dv(av, x)) / _kve(v, x) * tv
        ds = dv if ds is None else ds + dv
    return s, ds


_k_ratio.defjvp(_k_ratio_jvp, zeros_as_none=True)


@custom_jvp
def _log_iv(v, x):
    at0 = jnp.where(v == 0, 0.0, -jnp.inf)
    return jnp.where((x == 0) & (v >= 0), at0, _log_ive_value(v, x) + x)


def _log_iv_jvp(primals, tangents):
    (v, x), (tv, tx) = primals, tangents
    _order_tangent("log_iv", tv)
    return _log_iv(v, x), None if tx is None else _slope(v, x, log=True) * tx


_log_iv.defjvp(_log_iv_jvp, zeros_as_none=True)


@custom_jvp
def _ive(v, x):
    at0 = jnp.where(v == 0, 1.0, 0.0)
    return jnp.where((x == 0) & (v >= 0), at0, jnp.exp(_log_ive_value(v, x)))


def _ive_jvp(primals, tangents):
    (v, x), (tv, tx) = primals, tangents
    _order_tangent("ive", tv)
    y = _ive(v, x)
    return y, None if tx is None else y * _slope(v, x) * tx


_ive.defjvp(_ive_jvp, zeros_as_none=True)


def _kve_slope(v, x):
    r"""$\frac{d}{dx}\log(K_v e^x) = 1 + |v|/x - s$, plain JAX over `_k_ratio` (any order):
    Hankel's $-1/(2x) + S'/S$ where `ive` takes it (the difference of terms of size 1 lost
    $2x\varepsilon$: 6.4e-4 relative in float32 at $x = 3000$)."""
    asymptotic, xa, xt = _i_parts(jnp.abs(v), x)
    hankel = -0.5 / xa + _hankel(v, xa, alternating=False)[1]
    return jnp.where(asymptotic, hankel, 1 + _abs_even(v) / xt - _k_ratio(v, xt))


@custom_jvp
def _kve(v, x):
    return jnp.where(x == 0, jnp.inf, _core(jnp.abs(v), x)[2])


def _kve_jvp(primals, tangents):
    (v, x), (tv, tx) = primals, tangents
    y = _kve(v, x)
    dy = None if tx is None else y * _kve_slope(v, x) * tx
    if tv is not None:
        dv = _kve_dv(v, x) * tv
        dy = dv if dy is None else dy + dv
    return y, dy


_kve.defjvp(_kve_jvp, zeros_as_none=True)


# -- integer orders 0 and 1 given as Python numbers: JAX's i0e/i1e (Chebyshev expansions) for
# the values and the ratio, the same Riccati rules for the derivatives: the loops are skipped.
def _integer_order(order: int):
    @custom_jvp
    def ratio(x):  # I_{v+1}/I_v
        i0e, i1e = jss.i0e(x), jss.i1e(x)
        return i1e / i0e if order == 0 else i0e / i1e - 2 / x

    def ratio_jvp(primals, tangents):
        (x,), (tx,) = primals, tangents
        r = ratio(x)
        return r, (1 - r * r - (2 * order + 1) / x * r) * tx

    ratio.defjvp(ratio_jvp)

    @custom_jvp
    def scaled(x):  # ive
        return jss.i0e(x) if order == 0 else jss.i1e(x)

    def scaled_jvp(primals, tangents):
        (x,), (tx,) = primals, tangents
        y = scaled(x)
        return y, y * (ratio(x) + order / x - 1) * tx

    scaled.defjvp(scaled_jvp)

    @custom_jvp
    def log(x):  # log_iv
        return jnp.log(scaled(x)) + x

    def log_jvp(primals, tangents):
        (x,), (tx,) = primals, tangents
        return log(x), (ratio(x) + order / x) * tx

    log.defjvp(log_jvp)
    return scaled, log


_INTEGER = {0: _integer_order(0), 1: _integer_order(1)}


def _fast_order(v):
    """0 or 1 when `v` is that Python or NumPy number (not traced); else None."""
    if isinstance(v, (int, float, np.integer, np.floating)) and float(v) in (0.0, 1.0):
        return int(v)
    return None


def ive(v, x):
    r"""$I_v(x)\,e^{-x}$, the exponentially scaled modified Bessel function of the first kind of
    real order $v \ge 0$ (SciPy's `ive` for $x \ge 0$), elementwise, differentiable in `x` to
    any order; in `v` it raises (see the module).

    Examples:
        >>> import jax
        >>> from jaxrules.rules import ive
        >>> round(float(ive(2.5, 3.0)), 5), round(float(jax.grad(ive, 1)(2.5, 3.0)), 5)
        (0.07544, 0.016)
    """
    order = _fast_order(v)
    if order is not None:  # JAX's i0e/i1e: no loops
        v, x = _args.real_arrays("ive", v=v, x=x)
        return _args.in_single(_INTEGER[order][0], x)
    return _args.in_single(_ive, *_args.real_arrays("ive", v=v, x=x))


def kve(v, x):
    r"""$K_v(x)\,e^{x}$, the exponentially scaled modified Bessel function of the second kind of
    real order $v$ ($K_{-v} = K_v$), elementwise, differentiable in `x` to any order and in
    `v` (through $K_v$'s integral, see the module) to second order and beyond.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import kve
        >>> round(float(kve(0.5, 2.0)), 6)  # √(π/(2x)) for v = ½
        0.886227
        >>> round(float(jax.grad(kve)(0.5, 2.0)), 6)  # ∂/∂v: √(π/(2x)) E₁(2x) e^{2x} for v = ½
        0.182869
    """
    return _args.in_single(_kve, *_args.real_arrays("kve", v=v, x=x))


def log_iv(v, x):
    r"""$\log I_v(x)$ for real order $v \ge 0$, $x > 0$, without overflow (e.g. the von
    Mises–Fisher normaliser $\log C_p(\kappa)$ needs $\log I_{p/2-1}(\kappa)$), differentiable
    in `x` to any order: $\frac{d}{dx}\log I_v = I_{v+1}/I_v + v/x$.

    Examples:
        >>> from jaxrules.rules import log_iv
        >>> round(float(log_iv(1.5, 800.0)), 2)  # I_1.5(800) ≈ 1e345 overflows float64
        795.74
    """
    order = _fast_order(v)
    if order is not None:
        v, x = _args.real_arrays("log_iv", v=v, x=x)
        return _args.in_single(_INTEGER[order][1], x)
    return _args.in_single(_log_iv, *_args.real_arrays("log_iv", v=v, x=x))


# Registered with the values computed without the rules as references (plain JAX: JAX has no
# Bessel function of real order to differentiate), witnessed by finite differences; the order
# is a static value per case (no derivative in it), at small, half-integer and large orders.
def _reference(fn):
    def reference(v, x):
        v, x = _args.real_arrays(fn.__name__, v=v, x=x)
        log_ive, _, k_v, _ = _core(jnp.abs(v) if fn is kve else v, x)
        return {"ive": jnp.exp(log_ive), "kve": k_v, "log_iv": log_ive + x}[fn.__name__]

    return reference


_X = inputs.positive((4,), low=0.3, high=6.0)
# The orders 0.3, 2.5, 7.4 take the general algorithm, 1 the integer fast path; kve is
# differentiable in v too: one more case with the order among the inputs (0.2 to 8, and
# × 0.01, × 4 below), checked in both arguments to second order.
_ORDERS = [registry.Case(f"v={v}", {"v": v}, witness="differences") for v in (0.3, 2.5, 7.4, 1)]
_V = inputs.positive((4,), low=0.2, high=8.0)
_DYNAMIC = registry.Case("v dynamic", inputs={"v": _V, "x": _X}, witness="differences")
for _fn in (ive, kve, log_iv):
    registry.register(
        _fn.__name__,
        reference=_reference(_fn),
        inputs={"x": _X},
        cases=[*_ORDERS, _DYNAMIC] if _fn is kve else _ORDERS,
        # No bench_inputs: the reference's loops have no reverse mode, and JAX has no real-order
        # Bessel function to time against (orders 0 and 1 against i0e/i1e:
        # benchmarks/special.py).
        # x from 0.003 (Temme's series) to 24 (the continued fractions); see the module for
        # float32's second derivatives at x ≫ v, hence its rtol.
        scales=(1e-2, 4.0),
        rtol={"float32": 1e-3},
        order=2,
        tags=("special",),
    )(_fn)
