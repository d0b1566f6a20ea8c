r"""Distribution functions whose shape parameters JAX cannot learn: the beta, Student-t,
binomial, negative-binomial, gamma and Poisson CDFs, differentiable to second order in their
real parameters.

They are compositions of `betainc` and `gammainc`/`gammaincc` (whose rules give the
derivatives in the parameters; `jax.scipy.special.betainc` has none in $a$, $b$, and
`jax.scipy.stats.t` has no `cdf`):

- beta: $F(x; a, b) = I_x(a, b)$;
- Student-t ($\nu$ degrees of freedom): for $t^2 < \nu$,
  $F = \tfrac12 + \tfrac12\operatorname{sign}(t)\, I_{t^2/(\nu+t^2)}(\tfrac12, \tfrac\nu2)$, else
  $F = \tfrac12 I_{\nu/(\nu+t^2)}(\tfrac\nu2, \tfrac12)$ for $t < 0$ and one minus it for $t > 0$
  (each argument below ½ where it is used, so neither $1 - x$ loses digits);
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
"""

from __future__ import annotations

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
from .incomplete_beta import betainc
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
    return betainc(a, b, jnp.clip((x - loc) / scale, 0, 1))


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


@custom_jvp
def _t_log_pdf_at_zero(nu):
    """$\\log f(0) = \\log\\Gamma(\\frac{\\nu+1}{2}) - \\log\\Gamma(\\frac\\nu2)
    - \\tfrac12\\log(\\nu\\pi)$, whose derivative in ν, $\\tfrac12 D(\\nu/2) \\approx 1/(4\\nu^2)$,
    is taken from `_digamma_half_gap` (JAX's, a difference of digammas of size $1/\\nu$, loses
    a factor ~ν: 1e-4 in float32 at ν ≈ 10)."""
    return jss.gammaln((nu + 1) / 2) - jss.gammaln(nu / 2) - 0.5 * jnp.log(nu * jnp.pi)


def _t_log_pdf_at_zero_jvp(primals, tangents):
    ((nu,), (t,)) = primals, tangents
    return _t_log_pdf_at_zero(nu), 0.5 * _digamma_half_gap(nu / 2) * t


_t_log_pdf_at_zero.defjvp(_t_log_pdf_at_zero_jvp)


def _t_pdf(t, nu):
    return jnp.exp(_t_log_pdf_at_zero(nu) - (nu + 1) / 2 * jnp.log1p(t * t / nu))


def _t_cdf_value(t, nu):
    """The composition (see the module); used for values and for the derivatives in ν."""
    t2 = t * t
    near = t2 < nu
    z = jnp.where(near, t2 / (nu + t2), 0.25)
    w = jnp.where(near, 0.25, nu / (nu + t2))
    inner = 0.5 + 0.5 * jnp.sign(t) * betainc(0.5, nu / 2, z)
    tail = 0.5 * betainc(nu / 2, 0.5, w)
    return jnp.where(near, inner, jnp.where(t < 0, tail, 1 - tail))


def _in_nu(t, nu):
    """`t ↦ F(t, ·)` as a function of ν alone, away from t = 0 (where F = ½ for every ν)."""
    ts = jnp.where(t == 0, 1, t)
    return lambda n: jnp.where(t == 0, 0.5, _t_cdf_value(ts, n))


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
    nodes = jnp.asarray(_NODES, t.dtype)
    s = t[..., None] * nodes
    n = nu[..., None]
    v = s * s / (n + s * s)
    g0 = _in_nu_derivative(_t_log_pdf_at_zero, nu)[..., None]
    g = g0 - 0.5 * _kernels.log1pmx(-v, jnp.log1p(-v)) + v / (2 * n)
    return t * jnp.sum(jnp.asarray(_WEIGHTS, t.dtype) * _t_pdf(s, n) * g, axis=-1)


def _t_dnu_value(t, nu):
    """$\\partial_\\nu F$: the quadrature for $t^2 < \\nu$, the composition's derivative in the
    tails."""
    near = t * t < nu
    tn = jnp.where(near, t, 0)
    tt = jnp.where(near, jnp.sqrt(nu) + 1, t)
    return jnp.where(near, _t_dnu_near(tn, nu), _in_nu_derivative(_in_nu(tt, nu), nu))


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
    return _t_cdf_value(t, nu)


def _t_cdf_jvp(primals, tangents):
    (t, nu), (tt, tnu) = primals, tangents
    dout = _args.linear_tangent((tt, lambda: _t_pdf(t, nu)), (tnu, lambda: _t_dnu(t, nu)))
    return _t_cdf(t, nu), dout


_t_cdf.defjvp(_t_cdf_jvp, zeros_as_none=True)


def student_t_cdf(x, df, loc=0.0, scale=1.0):
    r"""The Student-t distribution's CDF at $t = (x - \mathrm{loc})/\mathrm{scale}$ with `df`
    degrees of freedom (real, > 0, learnable), differentiable to second order in every
    argument — including at $t = 0$ (see the module). JAX has no Student-t CDF.

    Examples:
        >>> import jax
        >>> from jaxrules.rules import student_t_cdf
        >>> F, dF_ddf = jax.value_and_grad(student_t_cdf, 1)(1.0, 3.0)
        >>> round(float(F), 5), round(float(dF_ddf), 5)
        (0.8045, 0.01111)
    """
    x, df, loc, scale = _args.real_arrays("student_t_cdf", x=x, df=df, loc=loc, scale=scale)
    return _t_cdf((x - loc) / scale, df)


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
    k, n, p = jnp.broadcast_arrays(k, n, p)
    inside = (k >= 0) & (k < n)
    a = jnp.where(inside, n - k, 1)
    b = jnp.where(inside, k + 1, 1)
    value = betainc(a, b, 1 - p)
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
    k, n, p = jnp.broadcast_arrays(k, n, p)
    inside = k >= 0
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
    return gammainc(a, jnp.maximum((x - loc) / scale, 0))


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
    k, mu = jnp.broadcast_arrays(k, mu)
    inside = k >= 0
    value = gammaincc(jnp.where(inside, k + 1, 1), mu)
    return jnp.where(inside, value, 0.0)


# -- registration ----------------------------------------------------------------------------
# References: JAX's values (its distributions, or the same compositions of
# `jax.scipy.special`), witnessed by finite differences where JAX cannot differentiate them.
def _t_reference(x, df, loc=0.0, scale=1.0):
    x = (x - loc) / scale
    t2 = x * x
    near = t2 < df
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
