"""Drop-in: JAX's own documented custom-derivative examples, with jaxrules' decorators.

The examples are those of JAX's "Custom derivative rules" tutorial. Code without nondiff
arguments changes only its decorator; code with ``nondiff_argnums`` moves to named
declarations (docs/decorators.md, "Migrating from jax.custom_jvp / jax.custom_vjp").
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_tree_close

import jaxrules as jr


@pytest.mark.parametrize("decorator", [jax.custom_jvp, jr.custom_jvp])
def test_log1pexp(decorator):
    @decorator
    def log1pexp(x):
        return jnp.log(1.0 + jnp.exp(x))

    @log1pexp.defjvp
    def log1pexp_jvp(primals, tangents):
        (x,) = primals
        (x_dot,) = tangents
        ans = log1pexp(x)
        ans_dot = (1 - 1 / (1 + jnp.exp(x))) * x_dot
        return ans, ans_dot

    assert float(jax.grad(log1pexp)(100.0)) == 1.0
    assert float(jax.jit(jax.grad(log1pexp))(3.0)) == pytest.approx(0.95257413)
    np.testing.assert_allclose(
        jax.vmap(jax.jit(jax.grad(log1pexp)))(jnp.arange(3.0)),
        [0.5, 0.7310586, 0.8807971],
        rtol=1e-6,
    )


@pytest.mark.parametrize("decorator", [jax.custom_jvp, jr.custom_jvp])
def test_custom_jvp_f(decorator):
    @decorator
    def f(x, y):
        return jnp.sin(x) * y

    @f.defjvp
    def f_jvp(primals, tangents):
        x, y = primals
        x_dot, y_dot = tangents
        primal_out = f(x, y)
        tangent_out = jnp.cos(x) * x_dot * y + jnp.sin(x) * y_dot
        return primal_out, tangent_out

    assert float(f(2.0, 3.0)) == pytest.approx(2.7278922)
    _, y_dot = jax.jvp(f, (2.0, 3.0), (1.0, 0.0))
    assert float(y_dot) == pytest.approx(-1.2484405)
    assert float(jax.grad(f)(2.0, 3.0)) == pytest.approx(-1.2484405)


@pytest.mark.parametrize("decorator", [jax.custom_vjp, jr.custom_vjp])
def test_custom_vjp_f(decorator):
    @decorator
    def f(x, y):
        return jnp.sin(x) * y

    def f_fwd(x, y):
        return f(x, y), (jnp.cos(x), jnp.sin(x), y)

    def f_bwd(res, g):
        cos_x, sin_x, y = res
        return (cos_x * g * y, sin_x * g)

    f.defvjp(f_fwd, f_bwd)
    assert float(jax.grad(f)(2.0, 3.0)) == pytest.approx(-1.2484405)
    assert_tree_close(jax.grad(f, (0, 1))(2.0, 3.0), (-1.2484405, 0.9092974))


@pytest.mark.parametrize("decorator", [jax.custom_jvp, jr.custom_jvp])
def test_safe_norm_style_where(decorator):
    # The tutorial's numerical-stability example: a rule that avoids NaN at 0.
    @decorator
    def safe_log1p_sq(x):
        return jnp.log1p(x**2)

    @safe_log1p_sq.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return safe_log1p_sq(x), 2 * x / (1 + x**2) * t

    assert float(jax.grad(safe_log1p_sq)(0.0)) == 0.0


def test_clip_gradient_migration():
    # JAX: @partial(jax.custom_vjp, nondiff_argnums=(0, 1)) def clip_gradient(lo, hi, x)
    #      bwd(lo, hi, res, g). jaxrules: name them; the rules take them as keywords.
    @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
    def clip_jax(lo, hi, x):
        return x

    clip_jax.defvjp(lambda lo, hi, x: (x, None), lambda lo, hi, _, g: (jnp.clip(g, lo, hi),))

    @jr.custom_vjp(static_argnames=("lo", "hi"))
    def clip_jr(lo, hi, x):
        return x

    clip_jr.defvjp(lambda x, *, lo, hi: (x, None), lambda _, g, *, lo, hi: (jnp.clip(g, lo, hi),))
    for clip in (clip_jax, clip_jr):
        t = jnp.linspace(0.0, 10.0, 5)
        g = jax.vmap(jax.grad(lambda x: clip(-0.75, 0.75, jnp.sin(x))))(t)
        np.testing.assert_allclose(g, 0.75 * jnp.cos(t), rtol=1e-6)


def test_fixed_point_migration():
    # JAX: @partial(jax.custom_vjp, nondiff_argnums=(0,)) def fixed_point(f, a, x_guess).
    @jr.custom_vjp(static_argnames="f", zero_argnames="x_guess")
    def fixed_point(f, a, x_guess):
        def cond_fun(carry):
            x_prev, x = carry
            return jnp.abs(x_prev - x) > 1e-6

        def body_fun(carry):
            _, x = carry
            return x, f(a, x)

        _, x_star = jax.lax.while_loop(cond_fun, body_fun, (x_guess, f(a, x_guess)))
        return x_star

    def fixed_point_fwd(a, x_init, *, f):
        x_star = fixed_point(f, a, x_init)
        return x_star, (a, x_star)

    def rev_iter(f, packed, u):
        a, x_star, x_star_bar = packed
        _, vjp_x = jax.vjp(lambda x: f(a, x), x_star)
        return x_star_bar + vjp_x(u)[0]

    def fixed_point_rev(res, x_star_bar, *, f):
        a, x_star = res
        _, vjp_a = jax.vjp(lambda a: f(a, x_star), a)
        (a_bar,) = vjp_a(
            fixed_point(functools.partial(rev_iter, f), (a, x_star, x_star_bar), x_star_bar)
        )
        return a_bar, None

    fixed_point.defvjp(fixed_point_fwd, fixed_point_rev)

    def newton_sqrt(a):
        update = lambda a, x: 0.5 * (x + a / x)
        return fixed_point(update, a, a)

    assert float(newton_sqrt(2.0)) == pytest.approx(1.4142135)
    assert float(jax.grad(newton_sqrt)(2.0)) == pytest.approx(0.35355338, rel=1e-5)
    assert float(jax.grad(jax.grad(newton_sqrt))(2.0)) == pytest.approx(-0.08838835, rel=1e-4)
