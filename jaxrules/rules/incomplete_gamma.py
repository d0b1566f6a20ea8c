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
  cancellation where $P \approx 1$).

Both carry the value, first and second derivative in $a$ as jets (`_jets`) and stop when all
three have converged (to 32 ε). The *values* are the same loops at order 0 (the value alone),
and every prefactor $x^a e^{-x}/\Gamma(a+1)$ is taken in the form without cancellation of
`_log_kernels` (Stirling's series out analytically): its plain form, JAX's, costs ~6e-5 in
float32 at $a \sim 100$; this form ~6e-6 (the accuracy table). The series is summed relative
to its first term, so that no term is flushed as a subnormal. Third derivatives in $a$ raise
`NotImplementedError`; in $x$ any order works (the closed forms are plain JAX).

**Domain.** $a > 0$, $x \ge 0$ (elsewhere the value and derivatives are NaN, as JAX's value).
At $x = 0$: $P = 0$ and its derivatives in $a$ are 0; $\partial_x P(a, 0)$ is 0 for $a > 1$,
1 for $a = 1$, $+\infty$ for $a < 1$ (the density's limit). The loops take
$O(\sqrt{a})$ terms where $x \approx a$ (the series below $a$ about $8.6\sqrt a$ to reach ε,
the fraction far fewer); an element that has not converged after $2^{17}$ terms (beyond
$a \approx 2 \cdot 10^8$) is NaN, value and derivatives. A batch runs as many terms as its
slowest element. At large $a$ the prefactor's rounding leaves ~1e-12 relative (value and
derivatives, $a = 10^6$–$10^7$; SciPy's is 2 % off at $a = 10^7$, $x = a - 6\sqrt a$).
Accuracy against mpmath: `docs/library/special.md`.
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

__all__ = ["gammainc", "gammaincc"]

# 2^17: the series needs ~8.6 √a terms just below x = a, so a up to ~2e8 (it was 4096: a up to
# ~2e5, and poisson_cdf was NaN at a mean of 1e6). Only the elements that need it pay.
_MAX_TERMS = 1 << 17


# Jitted: called eagerly, a loop would be compiled again at every call (its body is a new
# jaxpr each time it is traced).
@functools.partial(jax.jit, static_argnums=(2, 3))
def _a_jets(a, x, order: int, upper: bool = False) -> _jets.Jet:
    """The jet of $P(a, x)$ (`upper`: of $Q$) in $a$ (order 0: the value alone, 1 or 2),
    elementwise."""
    dtype = a.dtype
    valid = (a > 0) & (x > 0) & (x < jnp.inf)
    use_cf = valid & (x > 1) & (x > a)
    use_series = valid & ~use_cf
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
    return _jets.Jet(value, sign * pick(p.g, -q.g, 1), h)


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
    """$\\partial_a \\partial_x P = \\partial_x P\\,(\\log x - \\psi(a))$ (0 at $x = 0$)."""
    positive = x > 0
    xs = jnp.where(positive, x, 1)
    return jnp.where(positive, _dx(a, xs) * (jnp.log(xs) - jss.digamma(a)), 0)


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
    return _gammainc(*_args.real_arrays("gammainc", a=a, x=x))


def gammaincc(a, x):
    r"""The regularised upper incomplete gamma function $Q(a, x) = 1 - P(a, x)$, with
    `gammainc`'s derivatives (negated): second order in $a$, any order in $x$.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import gammaincc
        >>> round(float(jax.grad(gammaincc, argnums=1)(2.0, 1.5)), 5)  # -x e^{-x}/Γ(2)
        -0.3347
    """
    return _gammaincc(*_args.real_arrays("gammaincc", a=a, x=x))


# Registered with JAX's values as the reference, witnessed by finite differences of them (JAX's
# second derivative in a raises). General points, and × 0.01 / × 100 (a, x up to 200).
for _fn, _ref in ((gammainc, jss.gammainc), (gammaincc, jss.gammaincc)):
    registry.register(
        _fn.__name__,
        reference=_ref,
        inputs={"a": inputs.positive((4,), low=0.3, high=4.0), "x": inputs.positive((4,))},
        cases=[registry.Case("general", witness="differences")],
        bench_inputs=lambda n: {
            "a": inputs.positive((n,), low=0.3, high=4.0),
            "x": inputs.positive((n,)),
        },
        bench_sizes=(10_000,),
        order=2,
        tags=("special",),
    )(_fn)
