"""Every rule flavour (JVP only, VJP only, both) under every JAX transform, against plain JAX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_tree_close, make_matsin, matsin_ref, needs_hijax, skip_vjp_only_forward

import jaxrules as jr
from jaxrules import _backend

FLAVOURS = ["jvp", "vjp", "both"]


def _loss(f):
    return lambda A, x: jnp.sum(jnp.tanh(f(A, x)))


TRANSFORMS = {
    "call": lambda f, A, x: f(A, x),
    "jit": lambda f, A, x: jax.jit(f)(A, x),
    "jvp": lambda f, A, x: jax.jvp(f, (A, x), (jnp.cos(A), jnp.sin(x) + 1.0)),
    "linearize": lambda f, A, x: jax.linearize(f, A, x)[1](jnp.cos(A), x),
    "grad": lambda f, A, x: jax.grad(_loss(f), (0, 1))(A, x),
    "jacfwd": lambda f, A, x: jax.jacfwd(f, (0, 1))(A, x),
    "jacrev": lambda f, A, x: jax.jacrev(f, (0, 1))(A, x),
    "hessian": lambda f, A, x: jax.hessian(_loss(f), 1)(A, x),
    "grad_of_grad": lambda f, A, x: jax.grad(lambda x: jax.grad(_loss(f), 1)(A, x).sum())(x),
    "vmap": lambda f, A, x: jax.vmap(f, (None, 0))(A, jnp.stack([x, 2 * x])),
    "vmap_both": lambda f, A, x: jax.vmap(f)(jnp.stack([A, -A]), jnp.stack([x, 2 * x])),
    "vmap_grad": lambda f, A, x: jax.vmap(jax.grad(_loss(f), 1), (None, 0))(
        A, jnp.stack([x, 2 * x])
    ),
    "grad_vmap": lambda f, A, x: jax.grad(
        lambda A, x: jnp.sum(jnp.tanh(jax.vmap(f, (None, 0))(A, jnp.stack([x, 2 * x])))), (0, 1)
    )(A, x),
    "jit_grad": lambda f, A, x: jax.jit(jax.grad(_loss(f), (0, 1)))(A, x),
    "checkpoint": lambda f, A, x: jax.grad(jax.checkpoint(_loss(f)), (0, 1))(A, x),
    "scan": lambda f, A, x: jax.grad(
        lambda x: jax.lax.scan(
            lambda c, _: (jnp.tanh(f(A[:, :4].T @ A[:, :4], c)), None), x, None, length=3
        )[0].sum()
    )(x),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_transform_matches_plain_jax(flavour, transform, A, x):
    if transform in ("jvp", "linearize", "jacfwd", "hessian"):
        skip_vjp_only_forward(flavour)
    f = make_matsin(flavour)
    got = TRANSFORMS[transform](f, A, x)
    want = TRANSFORMS[transform](matsin_ref, A, x)
    assert_tree_close(got, want, rtol=2e-5, atol=2e-5)


# Which rule runs in which mode: a rule scaled by 2 (JVP) or 3 (VJP) shows up only where used.
@pytest.mark.parametrize(
    "flavour, fwd_scale, rev_scale",
    [("jvp", 2.0, 2.0), ("vjp", 3.0, 3.0), ("both", 2.0, 3.0)],
)
@needs_hijax
def test_each_mode_uses_its_rule(flavour, fwd_scale, rev_scale, A, x):
    f = make_matsin(flavour, jvp_scale=2.0, vjp_scale=3.0)
    dx = jnp.sin(x) + 1.0
    _, t = jax.jvp(lambda x: f(A, x), (x,), (dx,))
    want_t = fwd_scale * (A @ (jnp.cos(x) * dx))
    np.testing.assert_allclose(t, want_t, rtol=1e-5)
    g = jax.grad(lambda x: f(A, x).sum())(x)
    want_g = rev_scale * jnp.cos(x) * (A.T @ jnp.ones(3))
    np.testing.assert_allclose(g, want_g, rtol=1e-5)
    # jacfwd is forward mode, jacrev reverse mode.
    np.testing.assert_allclose(
        jax.jacfwd(f, 1)(A, x), fwd_scale * A * jnp.cos(x)[None, :], rtol=1e-5
    )
    np.testing.assert_allclose(
        jax.jacrev(f, 1)(A, x), rev_scale * A * jnp.cos(x)[None, :], rtol=1e-5
    )


@needs_hijax
def test_backend_names():
    assert make_matsin("jvp").backend == "custom_jvp"
    assert make_matsin("vjp").backend == "hijax"
    assert make_matsin("both").backend == "hijax"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fallback_without_hijax_is_correct_or_clear(flavour, A, x, no_hijax):
    f = make_matsin(flavour, jvp_scale=2.0, vjp_scale=3.0)
    g = jax.grad(lambda x: f(A, x).sum())(x)
    base = jnp.cos(x) * (A.T @ jnp.ones(3))
    if flavour == "vjp":
        assert f.backend == "custom_vjp"
        np.testing.assert_allclose(g, 3.0 * base, rtol=1e-5)
        with pytest.raises(TypeError, match="forward mode .* not available.*defjvp"):
            jax.jvp(lambda x: f(A, x), (x,), (x,))
    else:
        # Both rules degrade to the JVP rule in both modes: right, never a mixture.
        assert f.backend == "custom_jvp"
        np.testing.assert_allclose(g, 2.0 * base, rtol=1e-5)
        _, t = jax.jvp(lambda x: f(A, x), (x,), (x,))
        np.testing.assert_allclose(t, 2.0 * (A @ (jnp.cos(x) * x)), rtol=1e-5)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fallback_transforms(flavour, A, x, no_hijax):
    f = make_matsin(flavour)
    for name in ["jit", "grad", "jacrev", "vmap_grad", "checkpoint", "scan"]:
        assert_tree_close(
            TRANSFORMS[name](f, A, x), TRANSFORMS[name](matsin_ref, A, x), rtol=2e-5, atol=2e-5
        )


@needs_hijax
def test_vjp_only_forward_mode_needs_transposable_backward(A, x):
    import jaxrules as jr

    @jr.custom_vjp
    def f(x):
        return jnp.sin(x)

    def bwd(res, g):
        # A while_loop with a data-dependent trip count: JAX cannot transpose it.
        def body(c):
            i, v = c
            return i + 1, v * 1.0

        _, v = jax.lax.while_loop(lambda c: c[0] < 2, body, (0, jnp.cos(res) * g))
        return (v,)

    f.defvjp(lambda x: (jnp.sin(x), x), bwd)
    np.testing.assert_allclose(jax.grad(lambda x: f(x).sum())(x), jnp.cos(x), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="f: forward mode .*transpose of its VJP rule"):
        jax.jvp(f, (x,), (x,))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_jit_caches_functions_that_use_a_rule(flavour, A, x):
    # A jaxpr that stages a hijax primitive would make jax.jit re-trace on every call; the
    # primal path binds the low form, so a jitted function traces once.
    traces = []

    def model(A, x):
        traces.append(1)
        return make_matsin(flavour)(A, x)

    f = jax.jit(model)
    for _ in range(3):
        f(A, x).block_until_ready()
    assert len(traces) == 1
    g = jax.jit(jax.grad(lambda A, x: model(A, x).sum(), 1))
    for _ in range(3):
        g(A, x).block_until_ready()
    assert len(traces) == 2


# Staged before differentiation: jit (scan, cond, checkpoint) traced the rule before AD reached
# it. In both binding modes each mode still uses its own rule: scaled rules show which one ran.
STAGERS = {
    "jit": jax.jit,
    "checkpoint": jax.checkpoint,
    "cond": lambda h: lambda x: jax.lax.cond(True, h, lambda x: h(x) * 0.0, x),
    "scan": lambda h: lambda x: jax.lax.scan(lambda c, _: (c, h(x)), 0.0, None, length=1)[1][0],
}


# Both ways of binding (the staged form throughout, the default from JAX 0.12; the full
# primitive where differentiation reaches the call directly, the default before), on every
# version.
@pytest.fixture(params=["staged", "direct"])
def bind_mode(request):
    with _backend.use_hijax(True, direct=request.param == "direct"):
        yield request.param


@needs_hijax
@pytest.mark.parametrize("stager", list(STAGERS))
@pytest.mark.parametrize("flavour, fwd_scale, rev_scale", [("vjp", 3.0, 3.0), ("both", 2.0, 3.0)])
def test_staged_before_differentiation(stager, flavour, fwd_scale, rev_scale, A, x, bind_mode):
    f = make_matsin(flavour, jvp_scale=2.0, vjp_scale=3.0)
    h = STAGERS[stager](lambda x: f(A, x))
    base = A * jnp.cos(x)[None, :]
    _, t = jax.jvp(h, (x,), (x,))
    np.testing.assert_allclose(t, fwd_scale * base @ x, rtol=1e-5)
    np.testing.assert_allclose(jax.jacfwd(h)(x), fwd_scale * base, rtol=1e-5)
    np.testing.assert_allclose(jax.jacrev(h)(x), rev_scale * base, rtol=1e-5)
    g = jax.grad(lambda x: h(x).sum())(x)
    np.testing.assert_allclose(g, rev_scale * base.sum(0), rtol=1e-5)
    g2 = jax.vmap(jax.grad(lambda x: h(x).sum()))(jnp.stack([x, x]))
    np.testing.assert_allclose(g2, rev_scale * jnp.stack([base.sum(0)] * 2), rtol=1e-5)


# Second order of a correctly scaled rule against plain JAX, staged each way; the staged
# forms other than jit (about 3 s each, op by op) run in the slow tier.
@needs_hijax
@pytest.mark.parametrize(
    "stager", ["jit", *(pytest.param(s, marks=pytest.mark.slow) for s in STAGERS if s != "jit")]
)
@pytest.mark.parametrize("flavour", ["vjp", "both"])
def test_staged_before_differentiation_second_order(stager, flavour, A, x, bind_mode):
    f1 = make_matsin(flavour)
    h1 = STAGERS[stager](lambda x: jnp.tanh(f1(A, x)))
    href = STAGERS[stager](lambda x: jnp.tanh(matsin_ref(A, x)))
    assert_tree_close(
        jax.hessian(lambda x: h1(x).sum())(x), jax.hessian(lambda x: href(x).sum())(x)
    )
    assert_tree_close(
        jax.jacrev(jax.jacrev(h1))(x), jax.jacrev(jax.jacrev(href))(x), rtol=1e-4, atol=1e-5
    )
    assert_tree_close(
        jax.jacfwd(jax.jacfwd(h1))(x), jax.jacfwd(jax.jacfwd(href))(x), rtol=1e-4, atol=1e-5
    )


@needs_hijax
def test_staged_jitted_function_traces_once(A, x, bind_mode):
    # jit(jvp(jit(f))) of a VJP-only rule: the staged tangent is evaluated each call, no
    # re-tracing of the user's function.
    traces = []

    def model(x):
        traces.append(1)
        return make_matsin("vjp")(A, x)

    inner = jax.jit(model)
    outer = jax.jit(lambda x: jax.jvp(inner, (x,), (x,))[1])
    for _ in range(3):
        outer(x).block_until_ready()
    assert len(traces) == 1


@needs_hijax
def test_staged_rules_that_jax_cannot_transpose(A, x, bind_mode):
    # A JVP rule with a while_loop (not transposable): staged, reverse mode still uses the VJP
    # rule; a VJP rule with a while_loop: staged, forward mode raises jaxrules' error.
    def loop(v):
        return jax.lax.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] * 1.0), (0, v))[1]

    @jr.custom_vjp
    def both(x):
        return jnp.sin(x)

    both.defjvp(lambda p, t: (jnp.sin(p[0]), loop(jnp.cos(p[0]) * t[0])))
    both.defvjp(lambda x: (jnp.sin(x), x), lambda r, g: (jnp.cos(r) * g,))
    g = jax.grad(jax.jit(lambda x: both(x).sum()))(x)
    np.testing.assert_allclose(g, jnp.cos(x), rtol=1e-6)
    np.testing.assert_allclose(jax.jvp(jax.jit(both), (x,), (x,))[1], jnp.cos(x) * x, rtol=1e-6)

    @jr.custom_vjp
    def vjp_only(x):
        return jnp.sin(x)

    vjp_only.defvjp(lambda x: (jnp.sin(x), x), lambda r, g: (loop(jnp.cos(r) * g),))
    g = jax.grad(jax.jit(lambda x: vjp_only(x).sum()))(x)
    np.testing.assert_allclose(g, jnp.cos(x), rtol=1e-6)
    for run in (
        lambda: jax.jvp(jax.jit(vjp_only), (x,), (x,)),
        lambda: jax.jacfwd(jax.jit(vjp_only))(x),
    ):
        with pytest.raises(
            NotImplementedError, match=r"vjp_only: forward mode .*transpose of its VJP rule.*defjvp"
        ):
            run()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_tuple_outputs_under_vmap_inside_grad(flavour):
    # A rule with two outputs, batched inside a differentiated function: the batching rule
    # must give one batch dimension per output (a regression: it returned a bare 0).
    import jaxrules as jr

    skip_vjp_only_forward(flavour)

    @jr.custom_vjp
    def two(a, b):
        return a * b, jnp.sin(a) + b

    def jvp(p, t):
        (a, b), (da, db) = p, t
        return two(a, b), (da * b + a * db, jnp.cos(a) * da + db)

    def fwd(a, b):
        return two(a, b), (a, b)

    def bwd(res, cts):
        (a, b), (u, v) = res, cts
        return u * b + jnp.cos(a) * v, u * a + v

    if flavour in ("jvp", "both"):
        two.defjvp(jvp)
    if flavour in ("vjp", "both"):
        two.defvjp(fwd, bwd)
    ref = lambda a, b: (a * b, jnp.sin(a) + b)
    a, bs = jnp.array([0.3, -1.2]), jnp.array([[1.0, 2.0], [0.5, -0.5], [3.0, 1.0]])

    def loss(f):
        return lambda a: sum(jnp.sum(o**2) for o in jax.vmap(f, (None, 0))(a, bs))

    assert_tree_close(jax.grad(loss(two))(a), jax.grad(loss(ref))(a))
    assert_tree_close(jax.jit(jax.grad(loss(two)))(a), jax.grad(loss(ref))(a))
    assert_tree_close(
        jax.jacrev(lambda a: jax.vmap(two, (None, 0))(a, bs))(a),
        jax.jacrev(lambda a: jax.vmap(ref, (None, 0))(a, bs))(a),
    )
