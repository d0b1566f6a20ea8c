r"""The regularised incomplete gamma functions $P(a, x)$, $Q(a, x) = 1 - P(a, x)$,
differentiable to second order in both arguments.

**The defect.** JAX differentiates `jax.scipy.special.gammainc` once in $a$; the second
derivative raises (`Differentiation rule for 'igamma_grad_a' not implemented`,
jax-ml/jax#7922), so a Hessian, HMC/NUTS in a gamma model's shape, or Newton's method on it
cannot run.

**The rules.** In $x$ everything is closed form:

$$\partial_x P = \frac{x^{a-1} e^{-x}}{\Gamma(a)}, \qquad
\partial_x^2 P = \partial_x P \Bigl(\frac{a-1}{x} - 1\Bigr), \qquad
\partial_a \partial_x P = \partial_x P\,\bigl(\log x - \psi(a)\bigr)$$

(written as plain JAX: JAX differentiates them). In $a$ there is no closed form; as Moore
(1982) and DESIGN §5c, differentiate the expansions termwise:

- for $x \le 1$ or $x \le a$, the series
  $P = \sum_{k \ge 0} t_k$, $t_0 = x^a e^{-x}/\Gamma(a+1)$, $t_k = t_{k-1}\,x/(a+k)$: positive
  terms, so $\partial_a t_k = t_k(\log x - \psi(a+k+1))$ and
  $\partial_a^2 t_k = t_k[(\log x - \psi(a+k+1))^2 - \psi'(a+k+1)]$ converge with it;
- elsewhere Legendre's continued fraction for $Q$:
  $Q = \frac{x^a e^{-x}}{\Gamma(a)}\cfrac{1}{x+1-a-\cfrac{1\cdot(1-a)}{x+3-a-\cfrac{2(2-a)}{x+5-a-\cdots}}}$,
  differentiated through the recurrence of its convergents; $\partial_a P = -\partial_a Q$ (no
  cancellation where $P \approx 1$);
- from $a = 10^5$, Temme's uniform asymptotic expansion (DLMF 8.12): with $\lambda = x/a$,
  $\eta = \operatorname{sign}(\lambda - 1)\sqrt{2(\lambda - 1 - \log\lambda)}$,
  $Q = \tfrac12\operatorname{erfc}(\eta\sqrt{a/2}) + R$, $P = \tfrac12\operatorname{erfc}(-\eta\sqrt{a/2}) - R$,
  $R = \frac{e^{-a\eta^2/2}}{\sqrt{2\pi a}}\sum_{k=0}^{2} c_k(\eta)\,a^{-k}$,
  $c_0 = \frac{1}{\lambda - 1} - \frac1\eta$, $c_k = \frac1\eta c_{k-1}' + \frac{(-1)^k g_k}{\lambda - 1}$
  ($g_k$ Stirling's: $\tfrac1{12}$, $\tfrac1{288}$), their Taylor series in $\eta$ for
  $|\eta| < 0.15$ (derived with sympy, exact rationals): plain JAX, which JAX
  differentiates in $a$ (the neglected $c_3 a^{-3}$ is below 1e-18). It is O(1) work where the
  loops need ~$8.6\sqrt a$ terms, and exact to ~1e-14 where they keep ~3e-13.

Both carry the value, first and second derivative in $a$ as jets (`_jets`) and stop when all
three have converged (to 32 ε). The *values* are the same loops at order 0 (the value alone),
and every prefactor $x^a e^{-x}/\Gamma(a+1)$ is taken in the form without cancellation of
`_log_kernels` (Stirling's series out analytically): its plain form, JAX's, costs ~6e-5 in
float32 at $a \sim 100$; this form ~6e-6 (the accuracy table). The series is summed relative
to its first term, so that no term is flushed as a subnormal. Third derivatives in $a$ raise
`NotImplementedError`; in $x$ any order works (the closed forms are plain JAX).

**Domain.** $a > 0$, $x \ge 0$ (elsewhere the value and derivatives are NaN, as JAX's value).
At $x = 0$: $P = 0$ and its derivatives in $a$ are 0; $\partial_x P(a, 0)$ is 0 for $a > 1$,
1 for $a = 1$, $+\infty$ for $a < 1$ (the density's limit). Below $a = 10^5$ the loops take
$O(\sqrt{a})$ terms where $x \approx a$ (the series below $a$ about $8.6\sqrt a$ to reach ε,
the fraction far fewer; an element not converged after $2^{17}$ terms would be NaN, value and
derivatives); a batch runs as many terms as its slowest element. From $a = 10^5$ the expansion
keeps ~1e-14 relative, value and first and second derivatives, to $a = 10^{12}$ and beyond
(before it, the loops were NaN from $a \approx 2\cdot10^8$, and kept ~1e-12 at
$10^6$–$10^7$; SciPy's value is 2 % off at $a = 10^7$, $x = a - 6\sqrt a$). Accuracy against
mpmath: `docs/library/special.md`.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args
from . import _jets
from . import _log_kernels as _kernels

__all__ = ["gammainc", "gammaincc"]

# 2^17: the series needs ~8.6 √a terms just below x = a, so a up to ~2e8 (it was 4096: a up to
# ~2e5, and poisson_cdf was NaN at a mean of 1e6). Only the elements that need it pay.
_MAX_TERMS = 1 << 17


# Temme's uniform expansion (DLMF 8.12) from a = 1e5, where the loops need ~8.6 √a ≥ 2700 terms
# near x = a, keep only ~3e-13 (the prefactor's rounding), and past a ≈ 2e8 cannot converge in
# 2^17: with λ = x/a, η = sign(λ - 1) √(2(λ - 1 - log λ)),
#   Q = ½ erfc(η √(a/2)) + R,  P = ½ erfc(-η √(a/2)) - R,
#   R = e^{-aη²/2} / √(2πa) · (c₀(η) + c₁(η)/a + c₂(η)/a²)  (the next, c₃/a³, ≤ 1e-18),
# c₀ = 1/(λ-1) - 1/η, c_k = c'_{k-1}/η + (-1)^k g_k/(λ-1) (g₁ = 1/12, g₂ = 1/288: Stirling's).
# The c_k cancel as η → 0 (removable singularities): for |η| < 0.15 their Taylor series, derived
# here with sympy by reverting η²/2 = μ - log(1 + μ), μ = λ - 1, and kept as exact rationals
# (c₀ = -1/3 + η/12 - 2η²/135 + …: DiDonato & Morris's d₀ₖ); radius 2√π, so 13, 9 and 6 terms
# leave ≤ 1e-17, 1e-12, 1e-7 of c₀, c₁, c₂, whose weights are 1, ≤ 1e-5, ≤ 1e-10 (the fewer
# the terms, the less there is to trace and differentiate twice). Past 0.15 the closed forms
# lose ≤ 20, 1.5e5, 1e7 ε of them to cancellation: as little, once weighted.
_TEMME_FROM = 1e5
_TEMME_SERIES_EXACT = tuple(
    tuple(Fraction(c) for c in row.split())
    for row in (
        "-1/3 1/12 -2/135 1/864 1/2835 -139/777600 1/25515 -571/261273600 "
        "-281/151559100 163879/197522841600 -5221/29554024500 5246819/782190452736000 "
        "5459/531972441000",
        "-1/540 -1/288 1/378 -77/77760 1/4860 -1/2488320 -2743/151559100 "
        "41969/5486745600 -11/6823440",
        "25/6048 -139/51840 1/1296 1/497664 -6199/57736800 5531/104509440",
    )
)
_TEMME_SERIES = tuple(tuple(float(c) for c in cs) for cs in _TEMME_SERIES_EXACT)


def _temme(a, x, upper: bool):
    """$P(a, x)$ (`upper`: $Q$) by Temme's expansion above, plain JAX (JAX differentiates it
    in $a$ for the jets), for $a \\ge 10^5$, $x > 0$."""
    # λ - 1, exact near x = a; past 30 (or below -1, by rounding) P and Q are 0 or 1 for a ≥ 1e5,
    # and clipped, no intermediate of the derivatives in a overflows (float32, x = 1e35).
    u = jnp.clip((x - a) / a, -1, 30)
    # φ = λ - 1 - log λ = η²/2: near u = 0, η = u √r with r = 2φ/u² = 1 - 2u/3 + … (smooth
    # through 0, so JAX's derivatives are finite at x = a); elsewhere sign(u) √(2φ), φ by
    # log1pmx, or for λ < ½ from log x - log a (u may round to -1 there).
    small = jnp.abs(u) < 0.01
    us = jnp.where(small, 0.5, u)
    low = us < -0.5
    um = jnp.where(low, 0.5, us)
    phi_far = jnp.where(low, us - (jnp.log(x) - jnp.log(a)), _kernels.log1pmx(um, jnp.log1p(um)))
    r_near = jnp.zeros_like(u)
    for k in range(13, 1, -1):  # 2 Σ_{k≥2} (-u)^{k-2}/k
        r_near = 2 / k - u * r_near
    eta = jnp.where(small, u * jnp.sqrt(r_near), jnp.sign(us) * jnp.sqrt(2 * phi_far))
    near = jnp.abs(eta) < 0.15
    en = jnp.where(near, eta, 0.1)
    # Past |η|, u = 30 the factor e^{-aη²/2} below is 0 (a ≥ 1e5): there the c_k are taken at
    # 30, so that no power of η or u overflows (in float32) into a NaN derivative.
    ef = jnp.where(near, 1.0, jnp.clip(eta, -30, 30))
    mf = jnp.where(near, 1.0, u)
    series = []
    for cs in _TEMME_SERIES:
        c = jnp.zeros_like(en)
        for coefficient in reversed(cs):
            c = c * en + coefficient
        series.append(c)
    closed = (
        1 / mf - 1 / ef,
        1 / ef**3 - 1 / mf**3 - 1 / mf**2 - 1 / (12 * mf),
        3 / mf**5 + 5 / mf**4 + 25 / (12 * mf**3) + 1 / (12 * mf**2) + 1 / (288 * mf) - 3 / ef**5,
    )
    c0, c1, c2 = (jnp.where(near, s, c) for s, c in zip(series, closed))
    R = jnp.exp(-a * eta * eta / 2) / jnp.sqrt(2 * math.pi * a) * (c0 + (c1 + c2 / a) / a)
    s = eta * jnp.sqrt(a / 2)
    return jss.erfc(s) / 2 + R if upper else jss.erfc(-s) / 2 - R


# Jitted: called eagerly, a loop would be compiled again at every call (its body is a new
# jaxpr each time it is traced).
@functools.partial(jax.jit, static_argnums=(2, 3))
def _a_jets(a, x, order: int, upper: bool = False) -> _jets.Jet:
    """The jet of $P(a, x)$ (`upper`: of $Q$) in $a$ (order 0: the value alone, 1 or 2),
    elementwise."""
    dtype = a.dtype
    valid = (a > 0) & (x > 0) & (x < jnp.inf)
    use_temme = valid & (a >= _TEMME_FROM)
    use_cf = valid & ~use_temme & (x > 1) & (x > a)
    use_series = valid & ~use_temme & ~use_cf
    # The other branch's loop sees a point where it converges at once (and never log 0).
    sa, sx = jnp.where(use_series, a, 1), jnp.where(use_series, x, 1e-3).astype(dtype)
    ca, cx = jnp.where(use_cf, a, 1), jnp.where(use_cf, x, 50).astype(dtype)

    # The series is summed relative to its first term (t_k / t_0, from 1) and scaled after:
    # summed as is, terms below the dtype's smallest normal number (P ~ 1e-34 in float32)
    # would be flushed to 0 and the sum lose its tail.
    theta = sa[..., None]
    first = _jets.exp(_jets.of(lambda th: _kernels.log_gamma_kernel(th[..., 0], sx), theta, order))
    ratio = lambda k, th: sx / (th[..., 0] + k)
    p = _jets.mul(first, _jets.series(_jets.const(1, first), ratio, theta, max_terms=_MAX_TERMS))

    theta = ca[..., None]
    prefactor = _jets.exp(
        _jets.of(
            lambda th: _kernels.log_gamma_kernel(th[..., 0], cx) + jnp.log(th[..., 0]),
            theta,
            order,
        )
    )
    fraction = _jets.continued_fraction(
        (
            lambda n, th: jnp.where(n == 1, 1.0, -(n - 1) * (n - 1 - th[..., 0])).astype(dtype),
            lambda n, th: (cx + 2 * n - 1 - th[..., 0]).astype(dtype),
        ),
        theta,
        order,
        max_terms=_MAX_TERMS,
    )
    q = _jets.mul(prefactor, fraction)

    def pick(series, fraction, k, at_zero=0, at_inf=0):
        def shaped(m):
            return m.reshape(m.shape + (1,) * k)

        out = jnp.where(shaped(use_cf), fraction, series)
        out = jnp.where(shaped(valid), out, jnp.where(shaped(x == 0), at_zero, at_inf))
        return jnp.where(shaped((a > 0) & (x >= 0)), out, jnp.nan)

    # Each function from the branch that gives it directly where it is small, P from the series
    # (x ≤ a) and Q from the fraction (x > a), the other as 1 minus it (≥ ½ there: no
    # cancellation). P(a, 0) = 0, P(a, ∞) = 1; Q's derivatives are P's negated.
    if upper:
        value, sign = pick(1 - p.v, q.v, 0, at_zero=1), -1
    else:
        value, sign = pick(p.v, 1 - q.v, 0, at_inf=1), 1
    h = None if order < 2 else sign * pick(p.h, -q.h, 2)
    jet = _jets.Jet(value, sign * pick(p.g, -q.g, 1), h)

    # From a = 1e5 the expansion gives P or Q directly (each without cancellation), and JAX
    # its derivatives in a; elsewhere it sees a = x = 1e5 (η = 0).
    ta = jnp.where(use_temme, a, _TEMME_FROM).astype(dtype)
    tx = jnp.where(use_temme, x, _TEMME_FROM).astype(dtype)
    temme = _jets.of(lambda th: _temme(th[..., 0], tx, upper), ta[..., None], order)
    return jax.tree.map(
        lambda t, j: jnp.where(use_temme.reshape(use_temme.shape + (1,) * (t.ndim - a.ndim)), t, j),
        temme,
        jet,
    )


def _value(a, x, upper: bool):
    """$P(a, x)$ (`upper`: $Q$): the loops above at order 0 (the value alone)."""
    return _a_jets(a, x, 0, upper).v


def _dx(a, x):
    """$\\partial_x P(a, x) = \\frac{x^{a-1}e^{-x}}{\\Gamma(a)}$ (plain JAX, the prefactor
    without cancellation: `_log_kernels`), with its limits at $x = 0$."""
    positive = (x > 0) & (x < jnp.inf)
    xs = jnp.where(positive, x, 1)
    d = jnp.exp(_kernels.log_gamma_density(a, xs))
    at_zero = jnp.where(a == 1, 1.0, jnp.where(a < 1, jnp.inf, 0.0)).astype(d.dtype)
    edge = jnp.where(x == 0, at_zero, jnp.where(x == jnp.inf, 0.0, jnp.nan)).astype(d.dtype)
    return jnp.where(positive, d, edge)


def _da_dx(a, x):
    """$\\partial_a \\partial_x P = \\partial_x P\\,(\\log x - \\psi(a))$ (0 at $x = 0$), the
    factor as $\\log(x/a) + (\\log a - \\psi(a))$ with $\\log(x/a)$ = `log1p((x - a)/a)` near
    $x = a$: the plain difference of two logarithms of size $\\log a$ that cancel to
    ~$(x - a)/a$ cost 8e-4 of it in float32 at $a = 2\\cdot10^5$."""
    positive = x > 0
    xs = jnp.where(positive, x, 1)
    u = (xs - a) / a
    close = jnp.abs(u) < 0.5
    log_ratio = jnp.where(close, jnp.log1p(jnp.where(close, u, 0)), jnp.log(xs) - jnp.log(a))
    factor = log_ratio + _kernels.log_minus_digamma(a)
    return jnp.where(positive, _dx(a, xs) * factor, 0)


@custom_jvp
def _da2(a, x):
    return _a_jets(a, x, 2).h[..., 0, 0]


def _da2_jvp(primals, tangents):
    raise NotImplementedError(
        "gammainc/gammaincc: derivatives of order 3 in a are not implemented (the rules are "
        "exact to order 2 in a; any order in x). Differentiate at most twice in a."
    )


_da2.defjvp(_da2_jvp)


@custom_jvp
def _da(a, x):
    return _a_jets(a, x, 1).g[..., 0]


def _da_jvp(primals, tangents):
    (a, x), (ta, tx) = primals, tangents
    dout = _args.linear_tangent((ta, lambda: _da2(a, x)), (tx, lambda: _da_dx(a, x)))
    return _da(a, x), dout


_da.defjvp(_da_jvp, zeros_as_none=True)


def _tangent(a, x, ta, tx, sign):
    return _args.linear_tangent((ta, lambda: sign * _da(a, x)), (tx, lambda: sign * _dx(a, x)))


@custom_jvp
def _gammainc(a, x):
    return _value(a, x, upper=False)


def _gammainc_jvp(primals, tangents):
    (a, x), (ta, tx) = primals, tangents
    return _gammainc(a, x), _tangent(a, x, ta, tx, 1)


_gammainc.defjvp(_gammainc_jvp, zeros_as_none=True)


@custom_jvp
def _gammaincc(a, x):
    return _value(a, x, upper=True)


def _gammaincc_jvp(primals, tangents):
    (a, x), (ta, tx) = primals, tangents
    return _gammaincc(a, x), _tangent(a, x, ta, tx, -1)


_gammaincc.defjvp(_gammaincc_jvp, zeros_as_none=True)


def gammainc(a, x):
    r"""The regularised lower incomplete gamma function
    $P(a, x) = \\frac{1}{\\Gamma(a)}\int_0^x t^{a-1}e^{-t}\,dt$, elementwise with broadcasting,
    differentiable to second order in $a$ and to any order in $x$ (JAX's second derivative in
    $a$ raises), and more accurate than JAX's in float32 at large $a$; see the module.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import gammainc
        >>> d2 = jax.grad(jax.grad(gammainc))(2.0, 1.5)  # ∂²P/∂a²
        >>> round(float(d2), 5)
        0.10059
    """
    return _args.in_single(_gammainc, *_args.real_arrays("gammainc", a=a, x=x))


def gammaincc(a, x):
    r"""The regularised upper incomplete gamma function $Q(a, x) = 1 - P(a, x)$, with
    `gammainc`'s derivatives (negated): second order in $a$, any order in $x$.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import gammaincc
        >>> round(float(jax.grad(gammaincc, argnums=1)(2.0, 1.5)), 5)  # -x e^{-x}/Γ(2)
        -0.3347
    """
    return _args.in_single(_gammaincc, *_args.real_arrays("gammaincc", a=a, x=x))


# Registered with JAX's values as the reference, witnessed by finite differences of them (JAX's
# second derivative in a raises). General points, and × 0.01 / × 100 (a, x up to 200).
for _fn, _ref in ((gammainc, jss.gammainc), (gammaincc, jss.gammaincc)):
    registry.register(
        _fn.__name__,
        reference=_ref,
        inputs={"a": inputs.positive((4,), low=0.3, high=4.0), "x": inputs.positive((4,))},
        cases=[
            registry.Case("general", witness="differences"),
            # Temme's expansion (a ≥ 1e5), x within ~±3.5 √a of a; not rescaled.
            registry.Case(
                "large_shape",
                inputs={
                    "a": inputs.Generator(
                        "uniform(4, 2e5, 2.005e5)", lambda r: r.uniform(2e5, 2.005e5, 4)
                    ),
                    "x": inputs.Generator(
                        "uniform(4, 1.998e5, 2.007e5)", lambda r: r.uniform(1.998e5, 2.007e5, 4)
                    ),
                },
                witness="differences",
            ),
        ],
        bench_inputs=lambda n: {
            "a": inputs.positive((n,), low=0.3, high=4.0),
            "x": inputs.positive((n,)),
        },
        bench_sizes=(10_000,),
        order=2,
        tags=("special",),
    )(_fn)
