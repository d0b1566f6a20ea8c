r"""The regularised incomplete beta function $I_x(a, b)$, differentiable to second order in
all three arguments.

**The defect.** `jax.scipy.special.betainc(a, b, x)` has a derivative in $x$ only: in $a$ or
$b$ it raises `ValueError: Betainc gradient with respect to a and b not supported`
(jax-ml/jax#38610), so no beta, Student-t or binomial model can learn its shape parameters.

**The rules.** In $x$, closed forms (plain JAX, so JAX differentiates them further):

$$\partial_x I = \frac{x^{a-1}(1-x)^{b-1}}{B(a, b)}, \qquad
\partial_a \partial_x I = \partial_x I\,\bigl(\log x - \psi(a) + \psi(a+b)\bigr), \qquad
\partial_b \partial_x I = \partial_x I\,\bigl(\log(1-x) - \psi(b) + \psi(a+b)\bigr).$$

In $a$ and $b$, as Boik & Robison-Cox (1998) and DESIGN §5c, a continued fraction
differentiated term by term — DiDonato & Morris's (1992, BFRAC; Boost's `ibeta_fraction2`),
the even contraction of the classical one (Numerical Recipes' `betacf`):

$$I_x(a, b) = \frac{x^a (1-x)^b}{B(a, b)}\;
\cfrac{1}{\beta_0 + \cfrac{\alpha_1}{\beta_1 + \cfrac{\alpha_2}{\beta_2 + \cdots}}}, \qquad
\alpha_m = \frac{(a+m-1)(a+b+m-1)\,m\,(b-m)\,x^2}{(a+2m-1)^2},$$

$$\beta_m = m + \frac{m(b-m)\,x}{a+2m-1} + \frac{(a+m)\,\bigl(a\bar x - bx + 1 + m(1+\bar x)\bigr)}{a+2m+1},
\qquad \bar x = 1 - x.$$

The recurrence of its convergents carries the value, gradient and Hessian in $(a, b)$ as jets
(`_jets`), and stops when all of them have converged. It converges fast for
$x < (a+1)/(a+b+2)$; above, $I_x(a, b) = 1 - I_{1-x}(b, a)$ (the derivatives' roles of $a$ and
$b$ swapped; no cancellation where $I \approx 1$). There the fraction's argument is $1 - x$,
rounded, and its complement $\bar x$ is $x$ itself — which is why this fraction and not the
classical $1/(1 + d_1/(1 + \cdots))$ with $d_{2m+1} = -(a+m)(a+b+m)x/((a+2m)(a+2m+1))$: that
one forms $x$ again inside its cancellations as $1 - (1 - x)$, and lost $\sim\varepsilon\,b/a$
relative where $b \gg a$ (the value 0.7 % off at $(2, 5\cdot10^{13}, 8\cdot10^{-14})$, the
derivative in $a$ 45 % at $b = 5\cdot10^{16}$; JAX's `betainc`, the same fraction, is 1.8 %
off at the first point). $\beta_m$'s $a\bar x - bx$ takes each of $x$, $\bar x$ where it is
exact. The fraction also needs about half the terms of the classical one. The *values* are
the same fraction at order 0 (the value alone), with the prefactor $x^a(1-x)^b/B(a, b)$ in the
form without cancellation of `_log_kernels` (JAX's plain form costs 7e-5 in float32 at
$a, b \sim 100$; this one 8e-6). Third derivatives in $a$ or $b$ raise `NotImplementedError`;
in $x$ any order works.

**Domain.** $a, b > 0$, $0 \le x \le 1$ (elsewhere NaN, as JAX's value). At $x \in \{0, 1\}$
the derivatives in $a$, $b$ are 0; $\partial_x I$ there is the density's limit (0, $1/B$, or
$+\infty$). The fraction takes the most terms just around the mean (~120 at $a = b = 10^4$,
~2600 at $10^8$, growing as $(a+b)^{1/3}$; a few where $b \gg a$); an element not converged after $2^{17}$
terms is NaN, value and derivatives (it was 4096 with the classical fraction: NaN derivatives
from $a = b \approx 10^{10}$). A batch runs as many terms as its slowest element. At shapes of
$10^{10}$–$10^{12}$ the values and derivatives keep 1e-12–3e-11 relative, what the rounding of
$x$ itself costs there. Accuracy against mpmath: `docs/library/special.md`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args
from . import _jets
from . import _log_kernels as _kernels

__all__ = ["betainc"]

_MAX_TERMS = 1 << 17


# Jitted: called eagerly, a loop would be compiled again at every call (its body is a new
# jaxpr each time it is traced).
def _inside(x, xc):
    """`x`, `xc` where $0 < x < 1$ (0.5 elsewhere), and $\\log x$, $\\log(1 - x)$, each taken
    from whichever of $x$, $1 - x$ is at most ½ (`log1p` of it for the other's log): exact
    when the small one is. The branch not taken sees ½ (its `log1p(-1)` = -∞ where $1 - x$
    rounds to 1 made reverse mode's zero cotangent times ∞ = NaN: `grad(grad(betainc, 2))`
    was NaN at every $x < \varepsilon/2$)."""
    inside = (x > 0) & (xc > 0)
    xs, xcs = jnp.where(inside, x, 0.5), jnp.where(inside, xc, 0.5)
    low = xs <= 0.5
    log_x = jnp.where(low, jnp.log(jnp.where(low, xs, 0.5)), jnp.log1p(-jnp.where(low, 0.5, xcs)))
    log_1mx = jnp.where(low, jnp.log1p(-jnp.where(low, xs, 0.5)), jnp.log(jnp.where(low, 0.5, xcs)))
    return inside, xs, xcs, log_x, log_1mx


@functools.partial(jax.jit, static_argnums=4)
def _ab_jets(a, b, x, xc, order: int) -> _jets.Jet:
    """The jet of $I_x(a, b)$ in $(a, b)$ (order 0: the value alone, 1 or 2), elementwise;
    `xc` is $1 - x$ (see `_betainc`)."""
    dtype = a.dtype
    inside, xs, xcs, log_x, log_1mx = _inside(x, xc)
    valid = (a > 0) & (b > 0) & inside
    swap = x > (a + 1) / (a + b + 2)
    # The fraction's arguments: (p, q, y) = (a, b, x), or (b, a, 1 - x) where swapped, and
    # ȳ = 1 - y; a point outside the domain becomes one where the loop converges at once.
    p = jnp.where(valid, jnp.where(swap, b, a), 1)
    q = jnp.where(valid, jnp.where(swap, a, b), 1)
    y = jnp.where(valid, jnp.where(swap, xcs, xs), 0.25).astype(dtype)
    ybar = jnp.where(valid, jnp.where(swap, xs, xcs), 0.75).astype(dtype)

    def log_prefactor(th):
        # y^p (1-y)^q / B(p, q), the kernel being symmetric under (a, b, x) ↔ (b, a, 1-x):
        # taken in the unswapped arguments.
        p_, q_ = th[..., 0], th[..., 1]
        a_, b_ = jnp.where(swap, q_, p_), jnp.where(swap, p_, q_)
        return _kernels.log_beta_kernel(a_, b_, log_x, log_1mx, xs, xcs)

    theta = jnp.stack([p, q], axis=-1)
    prefactor = _jets.exp(_jets.of(log_prefactor, theta, order))

    # DiDonato & Morris's BFRAC: 1/(β_0 + α_1/(β_1 + …)), indexed here from n = 1 (m = n - 1,
    # a_1 = 1, b_1 = β_0). β_m takes both y and its complement ȳ, each exact where it is small
    # (ȳ = x where swapped): the classical fraction needs 1 - y, rounded, inside its
    # cancellations, which cost ~ε max(a, b)/min(a, b) relative (1e-2 at b = 5e13).

    def alpha(n, th):
        p_, q_ = th[..., 0], th[..., 1]
        m = n - 1
        den = jnp.where(n == 1, 1, p_ + 2 * m - 1)
        # Each factor O(1) near the root's scale: the plain product of the shapes overflowed
        # float32 from p ~ 1e19 (NaN values).
        an = ((p_ + m - 1) * (y / den)) * ((p_ + q_ + m - 1) * (y / den)) * (m * (q_ - m))
        return jnp.where(n == 1, 1.0, an).astype(dtype)

    def beta(n, th):
        p_, q_ = th[..., 0], th[..., 1]
        m = n - 1
        first = m * (q_ - m) * y / jnp.where(n == 1, 1, p_ + 2 * m - 1)
        second = (p_ + m) / (p_ + 2 * m + 1) * (p_ * ybar - q_ * y + 1 + m * (1 + ybar))
        return (m + first + second).astype(dtype)

    fraction = _jets.continued_fraction((alpha, beta), theta, order, max_terms=_MAX_TERMS)
    j = _jets.mul(prefactor, fraction)

    def pick(swapped, direct, k, at_one=0):
        s = swap.reshape(swap.shape + (1,) * k)
        out = jnp.where(s, swapped, direct)
        domain = (a > 0) & (b > 0) & (x >= 0) & (xc >= 0)
        edge = jnp.where(xc == 0, at_one, 0).reshape(s.shape)
        out = jnp.where(valid.reshape(s.shape), out, edge)
        return jnp.where(domain.reshape(s.shape), out, jnp.nan)

    g = pick(-j.g[..., ::-1], j.g, 1)
    h = None if order < 2 else pick(-j.h[..., ::-1, ::-1], j.h, 2)
    return _jets.Jet(pick(1 - j.v, j.v, 0, at_one=1), g, h)


def _dx(a, b, x, xc):
    """$\\partial_x I_x(a, b)$ (plain JAX, the prefactor without cancellation:
    `_log_kernels`), with its limits at $x \\in \\{0, 1\\}$; `xc` is $1 - x$."""
    inside, xs, xcs, log_x, log_1mx = _inside(x, xc)
    d = jnp.exp(_kernels.log_beta_density(a, b, log_x, log_1mx, xs, xcs))

    def limit(c, other):  # the density at an end where its exponent is c - 1
        at_one = other  # 1/B(1, c) = c
        return jnp.where(c == 1, at_one, jnp.where(c < 1, jnp.inf, 0.0)).astype(d.dtype)

    edge = jnp.where(x == 0, limit(a, b), jnp.where(xc == 0, limit(b, a), jnp.nan))
    return jnp.where(inside, d, edge)


def _dab_dx(a, b, x, xc):
    """$(\\partial_a \\partial_x I, \\partial_b \\partial_x I)$, stacked on the last axis (0 at
    the ends)."""
    inside, xs, xcs, log_x, log_1mx = _inside(x, xc)
    dx, common = _dx(a, b, xs, xcs), jss.digamma(a + b)
    da = dx * (log_x - jss.digamma(a) + common)
    db = dx * (log_1mx - jss.digamma(b) + common)
    return jnp.where(inside[..., None], jnp.stack([da, db], axis=-1), 0)


@custom_jvp
def _hess_ab(a, b, x, xc):
    return _ab_jets(a, b, x, xc, 2).h


def _hess_ab_jvp(primals, tangents):
    raise NotImplementedError(
        "betainc: derivatives of order 3 in a or b are not implemented (the rules are exact to "
        "order 2 in a and b; any order in x). Differentiate at most twice in a and b."
    )


_hess_ab.defjvp(_hess_ab_jvp)


@custom_jvp
def _grad_ab(a, b, x, xc):
    return _ab_jets(a, b, x, xc, 1).g


def _grad_ab_jvp(primals, tangents):
    (a, b, x, xc), (ta, tb, tx, _) = primals, tangents  # xc's tangent is -tx: see _betainc
    out = _grad_ab(a, b, x, xc)
    dout = None
    if ta is not None or tb is not None:
        t = jnp.stack([jnp.zeros_like(a) if u is None else u for u in (ta, tb)], axis=-1)
        dout = jnp.einsum("...ij,...j->...i", _hess_ab(a, b, x, xc), t)
    if tx is not None:
        d = _dab_dx(a, b, x, xc) * tx[..., None]
        dout = d if dout is None else dout + d
    return out, dout


_grad_ab.defjvp(_grad_ab_jvp, zeros_as_none=True)


@custom_jvp
def _betainc(a, b, x, xc):
    """$I_x(a, b)$ given both $x$ and `xc` $= 1 - x$, each as exact as the caller has it: the
    fraction and the prefactors take each where it is the small one. A caller that knows
    $1 - x$ better than by subtracting (`binomial_cdf`'s $p$, the Student-t's
    $t^2/(\\nu + t^2)$) passes it; rounded, it moved $I$ by its error times the density (4e-10
    relative in `binomial_cdf` at $n = 10^8$, $p = 3\\cdot10^{-8}$; 1.4e-6 at $n = 10^{12}$).

    In the rules `xc` is read as a function of `x` ($1 - x$): its tangent, $-\\dot x$, is not
    used, so a caller must pass a consistent pair. The derivatives in $x$ are JAX's of the
    closed forms, which see both."""
    return _ab_jets(a, b, x, xc, 0).v


def _betainc_jvp(primals, tangents):
    (a, b, x, xc), (ta, tb, tx, _) = primals, tangents
    g = _grad_ab(a, b, x, xc) if ta is not None or tb is not None else None  # one loop: both
    dout = _args.linear_tangent(
        (ta, lambda: g[..., 0]), (tb, lambda: g[..., 1]), (tx, lambda: _dx(a, b, x, xc))
    )
    return _betainc(a, b, x, xc), dout


_betainc.defjvp(_betainc_jvp, zeros_as_none=True)


def betainc_with_complement(name: str, a, b, x, xc):
    """$I_x(a, b)$ given `x` and `xc` $= 1 - x$ both (see `_betainc`), for the rule `name`'s
    arguments; not exported: for the distribution functions."""
    return _args.in_single(_betainc, *_args.real_arrays(name, a=a, b=b, x=x, xc=xc))


def betainc(a, b, x):
    r"""The regularised incomplete beta function
    $I_x(a, b) = \frac{1}{B(a, b)}\int_0^x t^{a-1}(1-t)^{b-1}\,dt$, elementwise with
    broadcasting, differentiable to second order in $a$ and $b$ (JAX: not at all) and to any
    order in $x$, and more accurate than JAX's in float32 at large shapes; see the module.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import betainc
        >>> da, db = jax.grad(betainc, argnums=(0, 1))(2.0, 3.0, 0.4)
        >>> round(float(da), 4), round(float(db), 4)
        (-0.2409, 0.1563)
    """
    a, b, x = _args.real_arrays("betainc", a=a, b=b, x=x)
    return _args.in_single(lambda a, b, x: _betainc(a, b, x, 1 - x), a, b, x)


# JAX's values as the reference, witnessed by finite differences (JAX has no derivative in a,
# b); a and b also × 0.01 and × 10 (x is not scaled: it stays in (0, 1)). Not at × 100 (a, b
# up to 400): there the reference, JAX's float32 betainc, is off by more than the checker's
# float32 tolerance (its prefactor is exp of a difference of terms of size ~a log a; ours is
# not: see the module).
registry.register(
    "betainc",
    reference=jss.betainc,
    inputs={
        "a": inputs.positive((4,), low=0.3, high=4.0),
        "b": inputs.positive((4,), low=0.3, high=4.0),
        "x": inputs.probability((4,)),
    },
    cases=[registry.Case("general", witness="differences")],
    # No bench_inputs: JAX has no derivative in a, b to time against (the derivative in x:
    # benchmarks/special.py).
    scales=(1e-2, 10.0),
    # float32 second derivatives at a, b ~ 0.01 (the × 0.01 point) lose ~1e3 ε: ψ'(a) ~ 1/a²
    # terms cancel in the Hessian of the prefactor. float64 keeps the default.
    rtol={"float32": 2e-4},
    order=2,
    tags=("special",),
)(betainc)
