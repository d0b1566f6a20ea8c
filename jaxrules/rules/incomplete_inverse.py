r"""The inverses of the incomplete gamma and beta functions in $x$ — the gamma and beta
distributions' quantile functions — differentiable in every argument by implicit
differentiation (JAX has neither: no `gammaincinv`, no `betaincinv`).

**Values.** $x = P^{-1}(a, p)$ solves $P(a, x) = p$; $x = I^{-1}_p(a, b)$ solves
$I_x(a, b) = p$. Newton's method on the *logarithms* — $\log P(a, e^y) = \log p$ in
$y = \log x$ for $p \le \tfrac12$, $\log Q(a, x) = \log(1 - p)$ above; for the beta function
the same on $I_x(a, b)$, and on $I_{1-x}(b, a) = 1 - p$ above — which are close to linear in
the tails ($P \sim x^a$, $Q \sim e^{-x}$), so that $p = 10^{-30}$ converges as fast as
$p = \tfrac12$, and each residual keeps its relative precision. Starting points from
Numerical Recipes (§6.2.1, §6.4.1), a fixed number of steps (24), each at most 4 in $y$.

**Derivatives.** Differentiating $F(\theta, x(\theta, p)) = p$:

$$\dot x = \frac{\dot p - \partial_\theta F \cdot \dot\theta}{\partial_x F},$$

with $\partial_x F$ the density (closed form) and $\partial_\theta F$ from `gammainc`'s and
`betainc`'s rules — which are themselves differentiable, so the tangent above is
differentiated again by JAX for second derivatives (to second order in $a$, $b$, any order
in $p$), and nothing is differentiated through the iterations.

**Domain.** $a, b > 0$, $0 \le p \le 1$; $p = 0$ gives $x = 0$ and $p = 1$ gives $x = \infty$
(gamma) or $x = 1$ (beta), where the derivative in $p$ is $1/\text{density}$ (∞ or 0 as the
density's limit says); elsewhere NaN.
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
from . import incomplete_beta as _beta
from . import incomplete_gamma as _gamma

__all__ = ["betaincinv", "gammaincinv"]

_STEPS = 24  # Newton's method on the logarithms: quadratic near the root, ~linear in the tails


def _nr_normal(p):
    """Numerical Recipes' rational approximation to minus the standard normal quantile of p
    (their sign: positive for p < ½)."""
    pp = jnp.where(p < 0.5, p, 1 - p)
    t = jnp.sqrt(-2 * jnp.log(pp))
    z = (2.30753 + t * 0.27061) / (1 + t * (0.99229 + t * 0.04481)) - t
    return jnp.where(p < 0.5, -z, z)


def _newton_log(y, phi_slope, steps=_STEPS, cap=4.0):
    """Newton's method on `phi(y) = 0`, `phi_slope(y)` giving `phi(y)` and its derivative
    (together: both need the distribution function, a loop), each step at most `cap`."""

    def step(_, y):
        f, slope = phi_slope(y)
        # An iterate where the function underflowed (log 0): the root is further up.
        d = jnp.where(jnp.isneginf(f), -cap, f / slope)
        new = y - jnp.clip(d, -cap, cap)
        return jnp.where(jnp.isfinite(new), new, y)

    return lax.fori_loop(0, steps, step, y)


# Jitted (both solves): called eagerly, a loop would be compiled again at every call.
@functools.partial(jax.jit, static_argnames="own")
def _gamma_solve(a, p, own: bool = True):
    """$P^{-1}(a, p)$ (plain JAX; not differentiated). For p ≤ ½ Newton's method on
    $\\log P(a, e^y) = \\log p$ in $y = \\log x$ (near-linear where $P \\sim x^a$); above, on
    $\\log Q(a, x) = \\log(1 - p)$ in $x$ (near-linear where $Q \\sim e^{-x}$). `own`: $P$, $Q$
    from the rule's loops (the rule), else JAX's (the reference: JAX differentiates through
    it, and it is independent of the loops)."""
    dtype = a.dtype
    inside = (a > 0) & (p > 0) & (p < 1)
    a_ = jnp.where(inside, a, 1)
    p_ = jnp.where(inside, p, 0.5)
    lgam = jss.gammaln(a_)
    # NR's starting point (Wilson–Hilferty above a = 1), never below the power law's root
    # (P ≤ xᵃ/Γ(a+1), so the root is above it).
    z = _nr_normal(p_)
    big = a_ * jnp.maximum(1 - 1 / (9 * a_) - z / (3 * jnp.sqrt(a_)), 1e-3) ** 3
    t = 1 - a_ * (0.253 + a_ * 0.12)
    small = jnp.where(p_ < t, (p_ / t) ** (1 / a_), 1 - jnp.log1p(-(p_ - t) / (1 - t)))
    power = jnp.exp((jnp.log(p_) + jss.gammaln(a_ + 1)) / a_)
    x0 = jnp.maximum(jnp.where(a_ > 1, big, small), power).astype(dtype)
    log_density = lambda x: (a_ - 1) * jnp.log(x) - x - lgam

    # The rule's P and Q: JAX's lose 1e-10–2e-9 relative at a = 1e5–1e6 (the quantile
    # inherited ~400 ulp at a = 1e6).
    if own:
        P = lambda x: _gamma._value(a_, x, False)
        Q = lambda x: _gamma._value(a_, x, True)
    else:
        P = lambda x: jss.gammainc(a_, x)
        Q = lambda x: jss.gammaincc(a_, x)

    def lower_step(y):  # log P(a, e^y) - log p and its derivative in y
        x = jnp.exp(y)
        P_ = P(x)
        return jnp.log(P_) - jnp.log(p_), jnp.exp(y + log_density(x)) / P_

    def upper_step(x):  # log Q(a, x) - log(1 - p) and its derivative in x
        Q_ = Q(x)
        return jnp.log(Q_) - jnp.log1p(-p_), -jnp.exp(log_density(x)) / Q_

    lower = _newton_log(jnp.log(x0), lower_step)
    upper = _newton_log(x0, upper_step, cap=jnp.maximum(x0, 1.0))
    x = jnp.where(p_ <= 0.5, jnp.exp(lower), jnp.maximum(upper, 0))
    edge = jnp.where(p == 0, 0.0, jnp.where(p == 1, jnp.inf, jnp.nan))
    domain = (a > 0) & (p >= 0) & (p <= 1)
    return jnp.where(inside, x, jnp.where(domain, edge, jnp.nan)).astype(dtype)


@functools.partial(jax.jit, static_argnames="own")
def _beta_solve(a, b, p, own: bool = True):
    """$I^{-1}_p(a, b)$ (plain JAX; not differentiated): Newton's method on
    $\\log I_{e^y}(a, b) = \\log p$ in $y = \\log x$ for p ≤ ½, and on
    $\\log I_{e^y}(b, a) = \\log(1 - p)$ in $y = \\log(1 - x)$ above (the same problem
    mirrored: $1 - I_x(a, b) = I_{1-x}(b, a)$). `own`: $I$ from the rule's fraction, else
    JAX's `betainc` (the reference)."""
    dtype = a.dtype
    inside = (a > 0) & (b > 0) & (p > 0) & (p < 1)
    a_, b_ = jnp.where(inside, a, 1), jnp.where(inside, b, 1)
    p_ = jnp.where(inside, p, 0.5)
    # NR's starting point.
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
    small = jnp.where(p_ < t / ws, (a_ * ws * p_) ** (1 / a_), 1 - (b_ * ws * (1 - p_)) ** (1 / b_))
    x0 = jnp.where((a_ >= 1) & (b_ >= 1), big, small)
    tiny = jnp.finfo(dtype).tiny
    x0 = jnp.clip(x0, tiny, 1 - jnp.finfo(dtype).epsneg).astype(dtype)
    lbeta = _kernels.log_beta(a_, b_)

    def solve(c, d, target, v0):
        # I_v(c, d) = target for v in (0, 1), Newton's method on log I in log v. I from the
        # rule's own fraction, given v = e^y and 1 - v = -expm1(y) both exact: JAX's betainc
        # is 1.7e-6 off at (2, 5e9, 8e-10), and the quantile inherited it (1e-8 at b = 1e8).
        log_density = lambda v: (c - 1) * jnp.log(v) + (d - 1) * jnp.log1p(-v) - lbeta

        def step(y):
            v = jnp.exp(y)
            if own:
                cdf = _beta._ab_jets(c, d, v, -jnp.expm1(y), 0).v
            else:
                cdf = jss.betainc(c, d, v)
            return jnp.log(cdf) - jnp.log(target), jnp.exp(y + log_density(v)) / cdf

        return _newton_log(jnp.log(jnp.clip(v0, tiny, 0.5)), step)

    lower = jnp.exp(solve(a_, b_, p_, x0))
    upper = 1 - jnp.exp(solve(b_, a_, 1 - p_, 1 - x0))
    x = jnp.where(p_ <= 0.5, lower, upper)
    edge = jnp.where(p == 0, 0.0, jnp.where(p == 1, 1.0, jnp.nan))
    domain = (a > 0) & (b > 0) & (p >= 0) & (p <= 1)
    return jnp.where(inside, x, jnp.where(domain, edge, jnp.nan)).astype(dtype)


def _gamma_solve_jax(a, p):
    """The same Newton iteration on JAX's `gammainc`/`gammaincc`: the registered reference."""
    return _gamma_solve(a, p, own=False)


def _beta_solve_jax(a, b, p):
    """The same Newton iteration on JAX's `betainc`: the registered reference."""
    return _beta_solve(a, b, p, own=False)


@custom_jvp
def _gammaincinv(a, p):
    return _gamma_solve(a, p)


def _gammaincinv_jvp(primals, tangents):
    (a, p), (ta, tp) = primals, tangents
    x = _gammaincinv(a, p)
    # ẋ = (ṗ − ∂P/∂a · ȧ) / ∂P/∂x at x.
    num = jnp.zeros_like(x) if tp is None else tp
    if ta is not None:
        num = num - _gamma._da(a, x) * ta
    return x, num / _gamma._dx(a, x)


_gammaincinv.defjvp(_gammaincinv_jvp, zeros_as_none=True)


@custom_jvp
def _betaincinv(a, b, p):
    return _beta_solve(a, b, p)


def _betaincinv_jvp(primals, tangents):
    (a, b, p), (ta, tb, tp) = primals, tangents
    x = _betaincinv(a, b, p)
    num = jnp.zeros_like(x) if tp is None else tp
    if ta is not None or tb is not None:
        g = _beta._grad_ab(a, b, x, 1 - x)
        for k, t in enumerate((ta, tb)):
            if t is not None:
                num = num - g[..., k] * t
    return x, num / _beta._dx(a, b, x, 1 - x)


_betaincinv.defjvp(_betaincinv_jvp, zeros_as_none=True)


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
    return _gammaincinv(*_args.real_arrays("gammaincinv", a=a, p=p))


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
    return _betaincinv(*_args.real_arrays("betaincinv", a=a, b=b, p=p))


# Registered with the plain solves as references (JAX cannot differentiate the residual in a,
# b), witnessed by finite differences of them.
_SHAPE = inputs.positive((4,), low=0.5, high=4.0)
registry.register(
    "gammaincinv",
    reference=_gamma_solve_jax,
    inputs={"a": _SHAPE, "p": inputs.probability((4,))},
    cases=[registry.Case("general", witness="differences")],
    bench_inputs=lambda n: {
        "a": inputs.positive((n,), low=0.5, high=4.0),
        "p": inputs.probability((n,)),
    },
    bench_sizes=(10_000,),
    scales=(1e-2, 10.0),  # a only (p is a probability): a from 0.005 to 40
    rtol={"float32": 2e-4},
    order=2,
    tags=("special",),
)(gammaincinv)
registry.register(
    "betaincinv",
    reference=_beta_solve_jax,
    inputs={"a": _SHAPE, "b": _SHAPE, "p": inputs.probability((4,))},
    cases=[registry.Case("general", witness="differences")],
    # No bench_inputs: the reference's residual (JAX's betainc) has no derivative in a, b.
    scales=(1e-1, 10.0),
    rtol={"float32": 2e-4},
    order=2,
    tags=("special",),
)(betaincinv)
