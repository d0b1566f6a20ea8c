r"""Special functions whose JAX derivatives are wrong or missing (issue 30, first part): the
modified Bessel functions $I_0$, $I_1$ of the first kind, right at $x = 0$.

**The defect.** On JAX 0.10.2 (the newest for Python 3.11)
`jax.grad(jax.scipy.special.i0)(0.0)` is `1.0` (jax-ml/jax#40628); $I_0$ is even,
$I_0'(0) = I_1(0) = 0$. Its second derivative at 0 is `1.5` where $I_0''(0) = 1/2$, and
$I_1''(0)$ is `1` where it is 0 ($I_1$ is odd). (Nearby,
at $x = 10^{-3}$, both are right.) JAX 0.12.0.1 is right; these rules are right on both.

**The rules.** From the series $I_\nu(x) = \sum_k (x/2)^{2k+\nu}/(k!\,\Gamma(k+\nu+1))$:

$$I_0' = I_1, \qquad I_1' = I_0 - \frac{I_1(x)}{x}, \qquad
\Bigl(\frac{I_1(x)}{x}\Bigr)' = \frac{I_2(x)}{x} = \frac{I_0(x) - 2 I_1(x)/x}{x}$$

(the last two from the recurrences $I_{\nu-1} - I_{\nu+1} = 2\nu I_\nu/x$ and
$I_\nu' = I_{\nu-1} - \nu I_\nu/x$). $I_1(x)/x$ is even and smooth, $1/2$ at 0, and computed as
the quotient without cancellation (the relative error of $I_1$); it is a rule of its own
(`_i1_over_x`), so second derivatives are exact too: $I_0'' = I_0 - I_1/x$,
$I_1'' = I_1 - I_2/x$. $I_2(x)/x$ cancels for small $x$ in the recurrence form, so below
$|x| = 2$ it is its series $\frac x4 \sum_{k \ge 0} (x^2/4)^k/(k!(k+2)!)$ (14 terms: below
$10^{-17}$ relative), above it the recurrence (losing at most a factor 3 of ε at $x = 2$).
Values are JAX's (`jax.scipy.special.i0`, `i1`: Cephes' Chebyshev expansions).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import jax.scipy.special as jss

from .. import _registry as registry
from .. import inputs
from .._custom import custom_jvp
from . import _arguments as _args

__all__ = ["i0", "i1"]

_SERIES_BELOW = 2.0
_TERMS = 14
_COEF = tuple(1.0 / (math.factorial(k) * math.factorial(k + 2)) for k in range(_TERMS))


def _i2_over_x(x):
    """`I₂(x)/x` (odd, `x/8` near 0): the series below |x| = 2, the recurrence above."""
    small = jnp.abs(x) < _SERIES_BELOW
    q = (x * x) / 4
    series = sum(c * q**k for k, c in reversed(list(enumerate(_COEF))))
    series = x / 4 * series
    xs = jnp.where(small, _SERIES_BELOW, x)  # the unused branch never sees 0 (no NaN)
    direct = (jss.i0(xs) - 2 * jss.i1(xs) / xs) / xs
    return jnp.where(small, series, direct)


@custom_jvp
def _i1_over_x(x):
    # I₁(x)/x: 1/2 at 0, the quotient elsewhere (no cancellation).
    zero = x == 0
    return jnp.where(zero, 0.5, jss.i1(x) / jnp.where(zero, 1.0, x)).astype(x.dtype)


@_i1_over_x.defjvp
def _i1_over_x_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _i1_over_x(x), _i2_over_x(x) * dx


@custom_jvp
def _i0(x):
    return jss.i0(x)


@_i0.defjvp
def _i0_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _i0(x), _i1(x) * dx


@custom_jvp
def _i1(x):
    return jss.i1(x)


@_i1.defjvp
def _i1_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _i1(x), (_i0(x) - _i1_over_x(x)) * dx


def _real(name, x):
    (x,) = _args.real_arrays(name, x=x)
    return x


def i0(x):
    r"""The modified Bessel function $I_0(x)$ (elementwise, real `x`, any shape), with
    derivatives right at every `x` to second order: $I_0' = I_1$ — `0` at `x = 0`, where JAX's
    `jax.scipy.special.i0` gives `1.0` (see the module).

    Examples:
        >>> import jax
        >>> from jaxrules.rules import i0
        >>> round(float(jax.grad(i0)(0.0)), 6), round(float(jax.grad(jax.grad(i0))(0.0)), 6)
        (0.0, 0.5)
    """
    return _args.in_single(_i0, _real("i0", x))


def i1(x):
    r"""The modified Bessel function $I_1(x)$ (elementwise, real `x`), with derivatives right
    to second order: $I_1' = I_0 - I_1/x$, `1/2` at `x = 0`; $I_1''(0) = 0$ (JAX's second
    derivative there is wrong too: see the module).

    Examples:
        >>> import jax
        >>> from jaxrules.rules import i1
        >>> round(float(jax.grad(i1)(0.0)), 6), round(float(jax.grad(jax.grad(i1))(0.0)), 6)
        (0.5, 0.0)
    """
    return _args.in_single(_i1, _real("i1", x))


# Registered: general points (JAX's derivative of the reference is right there) and a point
# holding x = 0, witnessed by finite differences of the reference's value.
_AT_ZERO = inputs.fixed([0.0, 1e-3, -0.7, 2.0, -5.5])
for _fn, _ref in ((i0, jss.i0), (i1, jss.i1)):
    registry.register(
        _fn.__name__,
        reference=_ref,
        inputs={"x": inputs.general((6,))},
        cases=[
            registry.Case("general"),
            registry.Case("at_zero", inputs={"x": _AT_ZERO}, witness="differences"),
        ],
        bench_inputs=lambda n: {"x": inputs.general((n,))},
        bench_sizes=(10_000,),
        # × 100 overflows (I₀(x) ~ eˣ): the magnitudes beyond the registered ones, × 0.01, × 10.
        scales=(1e-2, 10.0),
        order=2,
        tags=("special",),
    )(_fn)
