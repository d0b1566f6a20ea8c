"""Rule outputs are checked against ``jax.eval_shape`` of the function: structure, shape, dtype."""

import jax
import jax.numpy as jnp
import pytest

import jaxrules as jr


def _pair():
    @jr.custom_jvp
    def pair(x):
        return {"a": jnp.sin(x), "b": (x.sum(), x)}

    return pair


X = jnp.array([0.1, 0.2, 0.3])


def test_jvp_wrong_primal_structure():
    # Traced (here by jit), the rule's primal output is compared with the function's. On
    # concrete values (eager jax.jvp) the function is not run, as in JAX: a rule is checked
    # against itself there (tangent vs its primal), and against the function by jr.check.
    f = _pair()
    f.defjvp(lambda p, t: ((jnp.sin(p[0]), p[0].sum(), p[0]), None))
    with pytest.raises(
        TypeError,
        match=r"pair: the JVP rule's primal output has the wrong tree "
        r"structure.(.|\n)*expected: PyTreeDef\(\{'a'",
    ):
        jax.jit(lambda x: jax.jvp(f, (x,), (x,)))(X)


def test_jvp_wrong_tangent_shape_names_path():
    f = _pair()

    def jvp(p, t):
        (x,), (dx,) = p, t
        return f(x), {"a": jnp.cos(x) * dx, "b": (dx.sum(), dx[:, None])}

    f.defjvp(jvp)
    with pytest.raises(
        TypeError,
        match=r"pair: the JVP rule's tangent output at \['b'\]\[1\] has "
        r"the wrong shape or dtype: expected f32\[3\], got f32\[3,1\]",
    ):
        jax.jvp(f, (X,), (X,))
    with pytest.raises(TypeError, match=r"at \['b'\]\[1\] has the wrong shape"):
        jax.jit(lambda x: jax.jvp(f, (x,), (x,)))(X)


def test_jvp_wrong_tangent_dtype():
    @jr.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: (jnp.sin(p[0]), (jnp.cos(p[0]) * t[0]).astype(jnp.float16)))
    with pytest.raises(
        TypeError,
        match=r"f: the JVP rule's tangent output at <root> .* expected "
        r"f32\[3\], got f16\[3\]",
    ):
        jax.jvp(f, (X,), (X,))


def test_jvp_rule_must_return_pair():
    @jr.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: jnp.cos(p[0]) * t[0])
    with pytest.raises(TypeError, match=r"f: the JVP rule must return a pair"):
        jax.jvp(f, (X,), (X,))


def test_fwd_wrong_primal_dtype():
    @jr.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x).astype(jnp.int32), x), lambda x, g: (g,))
    with pytest.raises(
        TypeError,
        match=r"f: the VJP forward rule's primal output at <root> has "
        r"the wrong shape or dtype: expected f32\[3\], got i32\[3\]",
    ):
        jax.jit(jax.grad(lambda x: f(x).sum()))(X)


def test_bwd_wrong_cotangent_shape_names_argument():
    @jr.custom_vjp
    def f(x, y):
        return jnp.sin(x) * y

    f.defvjp(lambda x, y: (f(x, y), (x, y)), lambda r, g: (g, (g * r[0])[:, None]))
    with pytest.raises(
        TypeError,
        match=r"f: the VJP backward rule's cotangent for 'y' at <root> "
        r"has the wrong shape or dtype: expected f32\[3\], got f32\[3,1\]",
    ):
        jax.grad(lambda x, y: f(x, y).sum(), 1)(X, X)


def test_bwd_wrong_cotangent_dtype():
    # JAX itself accepts a wrong-dtype cotangent from a custom_vjp bwd; jaxrules does not.
    @jr.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: ((jnp.cos(x) * g).astype(jnp.float16),))
    with pytest.raises(TypeError, match=r"expected f32\[3\], got f16\[3\]"):
        jax.grad(lambda x: f(x).sum())(X)


def test_bwd_wrong_arity():
    @jr.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: r[1] * g)
    with pytest.raises(
        TypeError,
        match=r"f: the VJP backward rule must return a tuple with one "
        r"cotangent per non-static argument \('x', 'y'\)",
    ):
        jax.grad(lambda x: f(x, X).sum())(X)


def test_bwd_wrong_structure_pytree_argument():
    @jr.custom_vjp
    def f(p):
        return p["w"] * p["b"]

    f.defvjp(lambda p: (f(p), p), lambda p, g: ((g * p["b"], g * p["w"]),))
    with pytest.raises(
        TypeError,
        match=r"f: the VJP backward rule's cotangent for 'p' has the "
        r"wrong tree structure",
    ):
        jax.grad(lambda p: f(p).sum())({"w": X, "b": X})


def test_defjvp_needs_callable():
    @jr.custom_jvp
    def f(x):
        return x

    with pytest.raises(TypeError, match=r"f.defjvp: expected a callable rule, got f32\[3\]"):
        f.defjvp(X)
    with pytest.raises(TypeError, match=r"f.defvjp: expected a callable bwd rule, got None"):
        f.defvjp(lambda x: (x, None), None)
