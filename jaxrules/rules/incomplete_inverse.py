r"""The inverses of the incomplete gamma and beta functions in $x$ — the gamma and beta
distributions' quantile functions — differentiable in every argument by implicit
differentiation (JAX has neither: no `gammaincinv`, no `betaincinv`).

**Values.** $x = P^{-1}(a, p)$ solves $P(a, x) = p$; $x = I^{-1}_p(a, b)$ solves
$I_x(a, b) = p$. Newton's method on the *logarithm of $p$'s tail* — $\log P(a, x) = \log p$
for $p \le \tfrac12$, $\log Q(a, x) = \log(1 - p)$ above — in a logarithmic unknown, where
the tails are close to linear ($P \sim x^a$), so that $p = 10^{-30}$ converges as fast as
$p = \tfrac12$, and each residual keeps its relative precision. Every solve is bracketed
(`_roots.bracketed_newton`: each evaluation narrows the bracket, and a step that would leave
it bisects it). For the gamma function the unknown is $y = \log x \in
[\log\text{tiny}, \log\text{max}]$, followed by two Newton steps in $x$ itself (which $e^y$
would leave $\varepsilon|y|$ relative off). For the beta function the root's side of ½ is
found first ($I_{1/2}(a, b)$ against $p$), and the unknown is $y = \log m$,
$m = \min(x, 1 - x)$, in $[\log \text{tiny}, \log \tfrac12]$, on the log of whichever of
$I_x(a, b)$ and $I_{1-x}(b, a) = 1 - I_x(a, b)$ is $p$'s tail: $x$ and $1 - x$ are both
exact from $m$, and no step can leave $[0, 1]$. Roots below the smallest normal number are
0 (or 1). Starting points from Numerical Recipes (§6.2.1, §6.4.1). The registered references
are bisections on JAX's functions, which share nothing with these solves but the function
inverted.

**Derivatives.** Differentiating $F(\theta, x(\theta, p)) = p$:

$$\dot x = \frac{\dot p - \partial_\theta F \cdot \dot\theta}{\partial_x F},$$

with $\partial_x F$ the density (closed form) and $\partial_\theta F$ from `gammainc`'s and
`betainc`'s rules — which are themselves differentiable, so the tangent above is
differentiated again by JAX for second derivatives (to second order in $a$, $b$, any order
in $p$), and nothing is differentiated through the iterations.

**Domain.** $a, b > 0$, $0 \le p \le 1$; $p = 0$ gives $x = 0$ and $p = 1$ gives $x = \infty$
(gamma) or $x = 1$ (beta), where the derivative in $p$ is $1/\text{density}$ (∞ or 0 as the
density's limit says) and those in the shapes are 0 (the end is the same for every shape);
elsewhere NaN.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
from jax import lax

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args
from . import _log_kernels as _kernels
from . import _roots
from . import incomplete_beta as _beta
from . import incomplete_gamma as _gamma

__all__ = ["betaincinv", "gammaincinv"]

_STEPS = 24  # the benchmark baseline's Newton steps


def _nr_normal(p):
    """Numerical Recipes' rational approximation to minus the standard normal quantile of p
    (their sign: positive for p < ½)."""
    pp = jnp.where(p < 0.5, p, 1 - p)
    t = jnp.sqrt(-2 * jnp.log(pp))
    z = (2.30753 + t * 0.27061) / (1 + t * (0.99229 + t * 0.04481)) - t
    return jnp.where(p < 0.5, -z, z)


def _gamma_start(a, p):
    r"""Numerical Recipes' starting point for $P^{-1}(a, p)$ (Wilson–Hilferty above $a = 1$),
    never below the power law's root ($P \le x^a/\Gamma(a+1)$, so the root is above it)."""
    z = _nr_normal(p)
    big = a * jnp.maximum(1 - 1 / (9 * a) - z / (3 * jnp.sqrt(a)), 1e-3) ** 3
    t = 1 - a * (0.253 + a * 0.12)
    small = jnp.where(p < t, (p / t) ** (1 / a), 1 - jnp.log1p(-(p - t) / (1 - t)))
    power = jnp.exp((jnp.log(p) + jss.gammaln(a + 1)) / a)
    return jnp.maximum(jnp.where(a > 1, big, small), power).astype(a.dtype)


# Jitted (both solves): called eagerly, a loop would be compiled again at every call.
@functools.partial(jax.jit, static_argnames="own")
def _gamma_solve(a, p, own: bool = True):
    r"""$P^{-1}(a, p)$ (plain JAX; not differentiated). Newton's method in $y = \log x$ on the
    logarithm of whichever of $P(a, x)$ and $Q(a, x) = 1 - P$ is $p$'s tail — near-linear
    where $P \sim x^a$, and each keeps its relative precision — bracketed in
    $[\log \text{tiny}, \log \text{max}]$ (`_roots.bracketed_newton`), then two Newton steps in
    $x$ itself, each within the rounding of $y$ ($8 \varepsilon |y|$ relative): $x = e^y$
    carries $y$'s rounding, $\varepsilon |y|$ relative (float32: 16 ulps of $x$ at
    $a = 10^7$). A root below the smallest normal number (at $a = 0.01$, $p = 0.3$ it is
    $\sim 10^{-53}$) is 0. `own`: $P$, $Q$ from the rule's loops (the rule), else JAX's.

    (The solve this replaced took 24 unbracketed steps, in $\log x$ below the median and in
    $x$ above, with a slope from $(a - 1)\log x - x - \log\Gamma(a)$, whose terms cancel
    ($\sim 10^8$ each at $a = 10^7$, so float32 kept none of it), and a residual that had
    underflowed stepped $x$ up: in float32 from $a = 10^7$ it returned 750071488 for
    $P^{-1}(3\cdot10^7, 0.7) = 30002872$, 553741 for $P^{-1}(3\cdot10^7, 10^{-7})$.)"""
    dtype = a.dtype
    info = jnp.finfo(dtype)
    inside = (a > 0) & (p > 0) & (p < 1)
    a_ = jnp.where(inside, a, 1)
    p_ = jnp.where(inside, p, 0.5)
    lower_tail = p_ <= 0.5  # the residual on log P, else on log Q
    target = jnp.where(lower_tail, jnp.log(p_), jnp.log1p(-p_))
    tiny = jnp.asarray(info.tiny, dtype)

    # The rule's P and Q: JAX's lose 1e-10–2e-9 relative at a = 1e5–1e6 (the quantile
    # inherited ~400 ulp at a = 1e6).
    def tail(x):
        if own:
            P, Q = _gamma._value(a_, x, False), _gamma._value(a_, x, True)
        else:
            P, Q = jss.gammainc(a_, x), jss.gammaincc(a_, x)
        return jnp.where(lower_tail, P, Q)

    def residual_slope(x):  # log F(x) - target and its derivative in x (F: p's tail)
        F = tail(x)
        slope = _gamma._dx(a_, x) / F  # the density without cancellation (`_log_kernels`)
        return jnp.log(F) - target, jnp.where(lower_tail, slope, -slope)

    def in_log(y):  # the same in y = log x (dx/dy = x)
        x = jnp.maximum(jnp.exp(y), tiny)  # exp(log tiny) may round below
        f, slope = residual_slope(x)
        return f, slope * x

    lo = jnp.full_like(p_, jnp.log(info.tiny))
    hi = jnp.full_like(p_, jnp.log(info.max) - 1)  # exp(log max) may round to ∞
    y0 = jnp.clip(jnp.nan_to_num(jnp.log(_gamma_start(a_, p_)), nan=0.0), lo, hi)
    y = _roots.bracketed_newton(in_log, y0, lo, hi, lower_tail)
    x = jnp.exp(y)
    width = 8 * info.eps * jnp.maximum(jnp.abs(y), 1) * x
    for _ in range(2):
        f, slope = residual_slope(x)
        new = x - jnp.clip(f / slope, -width, width)
        x = jnp.where(jnp.isfinite(new) & (new > 0), new, x)
    # A root below the smallest normal number: 0 (the residual at `lo` already past it).
    under = lower_tail & (in_log(lo)[0] >= 0)
    edge = jnp.where(p == 0, 0.0, jnp.where(p == 1, jnp.inf, jnp.nan))
    domain = (a > 0) & (p >= 0) & (p <= 1)
    x = jnp.where(under, 0.0, x)
    return jnp.where(inside, x, jnp.where(domain, edge, jnp.nan)).astype(dtype)


def _beta_solve(a, b, p, own: bool = True):
    """$I^{-1}_p(a, b)$: `_beta_solve_pair`'s $x$."""
    return _beta_solve_pair(a, b, p, own=own)[0]


@functools.partial(jax.jit, static_argnames="own")
def _beta_solve_pair(a, b, p, own: bool = True):
    """$I^{-1}_p(a, b)$ and its complement $1 - x$, each exact (plain JAX; not
    differentiated: the rule's derivatives take both, as `betainc`'s do). With $m$ the smaller of $x$ and
    $1 - x$ at the root — which one, $I_{1/2}(a, b)$ against $p$ tells — Newton's method
    in $y = \\log m \\in [\\log \\text{tiny}, \\log \\tfrac12]$ on the logarithm of whichever of
    $I_x(a, b)$ and $1 - I_x(a, b) = I_{1-x}(b, a)$ is the tail ($p \\le \\tfrac12$: $I$),
    bracketed (`_roots.bracketed_newton`). Both $x$ and $1 - x$ are exact from $m$ ($m = e^y$, the
    other $-\\mathrm{expm1}(y)$), so each root keeps its relative precision at either end.
    A root below the dtype's smallest normal number (at $a = 0.01$, $p = 10^{-7}$ it is
    $\\sim 10^{-700}$) is 0 (or 1). `own`: $I$ from the rule's fraction, else JAX's `betainc`.

    (The solve this replaced was Newton's method in $\\log x$ or $\\log(1 - x)$ by $p$'s
    tail alone, 24 steps unbracketed, from Numerical Recipes' start clipped to ½: for 20-30 %
    of a plain grid of shapes in [0.01, 1e5] it returned values outside [0, 1], e.g. -26.3 at
    (3, 1e4, 1 - 1e-7).)"""
    dtype = a.dtype
    inside = (a > 0) & (b > 0) & (p > 0) & (p < 1)
    a_, b_ = jnp.where(inside, a, 1), jnp.where(inside, b, 1)
    p_ = jnp.where(inside, p, 0.5)
    tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype)
    lower_tail = p_ <= 0.5  # the residual on log I, else on log(1 - I) = log I_{1-x}(b, a)
    target = jnp.where(lower_tail, jnp.log(p_), jnp.log1p(-p_))

    def tail(x, xc):  # I_x(a, b) or I_{1-x}(b, a), the one that is near p's tail
        c, d = jnp.where(lower_tail, a_, b_), jnp.where(lower_tail, b_, a_)
        v, vc = jnp.where(lower_tail, x, xc), jnp.where(lower_tail, xc, x)
        return _beta._ab_jets(c, d, v, vc, 0).v if own else jss.betainc(c, d, v)

    half = jnp.full_like(p_, 0.5)
    small = (jnp.log(tail(half, half)) >= target) == lower_tail  # the root is at most ½
    rising = small == lower_tail  # the residual increases with m
    lbeta = _kernels.log_beta(a_, b_)

    def residual_slope(y):
        m, mc = jnp.maximum(jnp.exp(y), tiny), -jnp.expm1(y)  # exp(log tiny) may round below
        x, xc = jnp.where(small, m, mc), jnp.where(small, mc, m)
        log_m, log_mc = y, jnp.log1p(-m)
        log_x, log_xc = jnp.where(small, log_m, log_mc), jnp.where(small, log_mc, log_m)
        F = tail(x, xc)
        log_density = (a_ - 1) * log_x + (b_ - 1) * log_xc - lbeta
        slope = jnp.exp(y + log_density) / F  # |d log F / d y| (dm/dy = m)
        return jnp.log(F) - target, jnp.where(rising, slope, -slope)

    # Numerical Recipes' starting point (§6.4.1), as m.
    z = _nr_normal(p_)
    al = (z * z - 3) / 6
    h = 2 / (1 / (2 * a_ - 1) + 1 / (2 * b_ - 1))
    w = z * jnp.sqrt(jnp.maximum(al + h, 0)) / h - (1 / (2 * b_ - 1) - 1 / (2 * a_ - 1)) * (
        al + 5 / 6 - 2 / (3 * h)
    )
    big = a_ / (a_ + b_ * jnp.exp(2 * w))
    t = jnp.exp(a_ * jnp.log(a_ / (a_ + b_))) / a_
    u = jnp.exp(b_ * jnp.log(b_ / (a_ + b_))) / b_
    ws = t + u
    low = jnp.where(p_ < t / ws, (a_ * ws * p_) ** (1 / a_), 1 - (b_ * ws * (1 - p_)) ** (1 / b_))
    x0 = jnp.where((a_ >= 1) & (b_ >= 1), big, low)
    m0 = jnp.where(small, x0, 1 - x0)
    lo, hi = jnp.log(tiny) * jnp.ones_like(p_), jnp.full_like(p_, jnp.log(0.5))
    y0 = jnp.clip(jnp.nan_to_num(jnp.log(m0), nan=-1.0), lo, hi).astype(dtype)

    # A root below the smallest normal number: m = 0 (the residual at `lo` already past it).
    f_lo = residual_slope(lo)[0]
    under = jnp.where(rising, f_lo >= 0, f_lo <= 0)
    m = jnp.where(under, 0, jnp.exp(_roots.bracketed_newton(residual_slope, y0, lo, hi, rising)))
    x, xc = jnp.where(small, m, 1 - m), jnp.where(small, 1 - m, m)
    domain = (a > 0) & (b > 0) & (p >= 0) & (p <= 1)

    def ends(at_zero, at_one):
        edge = jnp.where(p == 0, at_zero, jnp.where(p == 1, at_one, jnp.nan))
        return jnp.where(domain, edge, jnp.nan)

    return (
        jnp.where(inside, x, ends(0.0, 1.0)).astype(dtype),
        jnp.where(inside, xc, ends(1.0, 0.0)).astype(dtype),
    )


@jax.jit
def _gamma_newton_jax(a, p):
    r"""The benchmark's baseline, what one writes without this library: 24 Newton steps in
    $\log x$ on JAX's `gammainc` from the same start, differentiated by JAX through the steps
    (a `fori_loop`: reverse mode works). Fine for the benchmark's shapes (0.5–4), not robust
    (no bracket, no tails): not a reference. The start is held constant (its branches'
    derivatives are NaN where unselected, and the converged steps forget it)."""
    x0 = lax.stop_gradient(_gamma_start(a, p))

    def step(_, y):
        x = jnp.exp(y)
        return y - (jss.gammainc(a, x) - p) / (x * jnp.exp(_kernels.log_gamma_density(a, x)))

    return jnp.exp(lax.fori_loop(0, _STEPS, step, jnp.log(x0)))


# The registered references: bisection on JAX's functions, sharing nothing with the rules'
# solves but the function they invert (the references were those solves on JAX's functions,
# and a defect of the solve was in both: betaincinv's values outside [0, 1] passed the
# checker). Not differentiated: the cases are witnessed by finite differences. nmant + 16
# halvings of a bracket ~1400 wide in log x (logit x) leave below ε/40 of x (float64: 68).
@jax.jit
def _gamma_bisect_jax(a, p):
    """$P^{-1}(a, p)$ by bisection in $\\log x$ on JAX's `gammainc`/`gammaincc` (the tail
    that $p$ is in), over the dtype's whole range."""
    info = jnp.finfo(a.dtype)
    lower = p <= 0.5

    def increasing(t):
        x = jnp.exp(t)
        return jnp.where(lower, jss.gammainc(a, x) - p, (1 - p) - jss.gammaincc(a, x))

    lo, hi = jnp.full_like(p, jnp.log(info.tiny)), jnp.full_like(p, jnp.log(info.max))
    x = jnp.exp(_roots.bisect(increasing, lo, hi, info.nmant + 16))
    edge = jnp.where(p == 0, 0.0, jnp.where(p == 1, jnp.inf, jnp.nan))
    return jnp.where((a > 0) & (p > 0) & (p < 1), x, jnp.where(a > 0, edge, jnp.nan))


@jax.jit
def _beta_bisect_jax(a, b, p):
    """$I^{-1}_p(a, b)$ by bisection in $t = \\operatorname{logit} x$ on JAX's `betainc`,
    $x$ and $1 - x$ both exact from $t$ (sigmoids of $\\pm t$): $I_x(a, b) - p$ where
    $x < \\tfrac12$, $(1 - p) - I_{1-x}(b, a)$ above (the same sign, each from the end
    where its argument is exact)."""
    info = jnp.finfo(a.dtype)

    def increasing(t):
        x, xc = jax.nn.sigmoid(t), jax.nn.sigmoid(-t)
        return jnp.where(t < 0, jss.betainc(a, b, x) - p, (1 - p) - jss.betainc(b, a, xc))

    bound = jnp.full_like(p, -jnp.log(info.tiny))
    x = jax.nn.sigmoid(_roots.bisect(increasing, -bound, bound, info.nmant + 16))
    edge = jnp.where(p == 0, 0.0, jnp.where(p == 1, 1.0, jnp.nan))
    return jnp.where(
        (a > 0) & (b > 0) & (p > 0) & (p < 1), x, jnp.where((a > 0) & (b > 0), edge, jnp.nan)
    )


@custom_jvp
def _gammaincinv(a, p):
    return _gamma_solve(a, p)


def _implicit_tangent(p, tp, shape_term, density):
    """$\\dot x = (\\dot p - \\partial_\\theta F\\,\\dot\\theta)/\\partial_x F$ at the root, with
    `shape_term` a thunk for $\\partial_\\theta F\\,\\dot\\theta$ (None: no shape tangent). At
    $p \\in \\{0, 1\\}$ the quantile is its range's end whatever the shapes: their term is 0
    there (it was $0/0$ = NaN where the density vanishes), and $\\dot p$'s is the density's
    limit (∞ or 0, the module's domain)."""
    out = None if tp is None else tp / density
    if shape_term is not None:
        edge = (p == 0) | (p == 1)
        shape = jnp.where(edge, 0, -shape_term() / jnp.where(edge, 1, density))
        out = shape if out is None else out + shape
    return jnp.zeros_like(density) if out is None else out


def _gammaincinv_jvp(primals, tangents):
    (a, p), (ta, tp) = primals, tangents
    x = _gammaincinv(a, p)
    shape = None if ta is None else (lambda: _gamma._da(a, x) * ta)
    return x, _implicit_tangent(p, tp, shape, _gamma._dx(a, x))


_gammaincinv.defjvp(_gammaincinv_jvp, zeros_as_none=True)


@custom_jvp
def _betaincinv_pair(a, b, p):
    r"""The root $x$ and its complement $1 - x$, each exact from one solve, with tangents
    $(\dot x, -\dot x)$."""
    return _beta_solve_pair(a, b, p)


def _betaincinv_pair_jvp(primals, tangents):
    (a, b, p), (ta, tb, tp) = primals, tangents
    # The derivatives take the solve's complement, not 1 - x rounded: at x = 1 - 2.6e-11 that
    # cost 1.2e-6 relative of the density, and of the derivatives (their (b - 1) log(1 - x)).
    x, xc = _betaincinv_pair(a, b, p)

    def shape_term():
        g = _beta._grad_ab(a, b, x, xc)
        return sum(g[..., k] * t for k, t in enumerate((ta, tb)) if t is not None)

    shape = None if ta is None and tb is None else shape_term
    tx = _implicit_tangent(p, tp, shape, _beta._dx(a, b, x, xc))
    return (x, xc), (tx, -tx)


_betaincinv_pair.defjvp(_betaincinv_pair_jvp, zeros_as_none=True)


def gammaincinv(a, p):
    r"""The inverse of `gammainc` in $x$: $x$ with $P(a, x) = p$ (the gamma distribution's
    quantile function), elementwise, differentiable by implicit differentiation: to second
    order in `a`, any order in `p`. See the module.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import gammainc, gammaincinv
        >>> x = gammaincinv(2.5, 0.3)
        >>> round(float(gammainc(2.5, x)), 5), round(float(jax.grad(gammaincinv)(2.5, 0.3)), 4)
        (0.3, 0.8178)
    """
    return _args.in_single(_gammaincinv, *_args.real_arrays("gammaincinv", a=a, p=p))


def betaincinv(a, b, p):
    r"""The inverse of `betainc` in $x$: $x$ with $I_x(a, b) = p$ (the beta distribution's
    quantile function), elementwise, differentiable by implicit differentiation: to second
    order in `a`, `b`, any order in `p`. See the module.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import betainc, betaincinv
        >>> x = betaincinv(2.0, 3.0, 0.7)
        >>> round(float(betainc(2.0, 3.0, x)), 5), round(float(jax.grad(betaincinv, 1)(2.0, 3.0, 0.7)), 4)
        (0.7, -0.1035)
    """
    return _args.in_single(_betaincinv_pair, *_args.real_arrays("betaincinv", a=a, b=b, p=p))[0]


# Registered with the plain solves as references (JAX cannot differentiate the residual in a,
# b), witnessed by finite differences of them.
_SHAPE = inputs.positive((4,), low=0.5, high=4.0)
_SKEWED = {
    "a": inputs.Generator("uniform(4, 2, 4)", lambda r: r.uniform(2.0, 4.0, 4)),
    "b": inputs.Generator("uniform(4, 0.2, 0.5)", lambda r: r.uniform(0.2, 0.5, 4)),
    "p": inputs.Generator("uniform(4, 0.3, 0.7)", lambda r: r.uniform(0.3, 0.7, 4)),
}
registry.register(
    "gammaincinv",
    reference=_gamma_bisect_jax,
    inputs={"a": _SHAPE, "p": inputs.probability((4,))},
    cases=[registry.Case("general", witness="differences")],
    bench_inputs=lambda n: {
        "a": inputs.positive((n,), low=0.5, high=4.0),
        "p": inputs.probability((n,)),
    },
    bench_sizes=(10_000,),
    bench_reference=_gamma_newton_jax,  # JAX differentiates through Newton's steps
    scales=(1e-2, 10.0),  # a only (p is a probability): a from 0.005 to 40
    rtol={"float32": 2e-4},
    order=2,
    tags=("special",),
)(gammaincinv)
registry.register(
    "betaincinv",
    reference=_beta_bisect_jax,
    inputs={"a": _SHAPE, "b": _SHAPE, "p": inputs.probability((4,))},
    cases=[
        registry.Case("general", witness="differences"),
        # Far-apart shapes, the root near 1 (the solve returned values outside [0, 1] here).
        registry.Case("skewed", inputs=_SKEWED, witness="differences"),
    ],
    # No bench_inputs: the reference's residual (JAX's betainc) has no derivative in a, b.
    scales=(1e-1, 10.0),
    rtol={"float32": 2e-4},
    order=2,
    tags=("special",),
)(betaincinv)
