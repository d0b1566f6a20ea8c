import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr
from jaxrules import _backend, _hijax

# The suite runs with implicit rank promotion an error, as JAX's own does (jax-ml/jax#7208):
# the library must not rely on it (tests/test_rank_promotion.py); a test of broadcasting that a
# user asks for allows it where it asks (`with jax.numpy_rank_promotion("allow")`).
jax.config.update("jax_numpy_rank_promotion", "raise")

#: Tests of semantics that need the hijax backend (forward mode of VJP-only rules, the VJP rule
#: used in reverse mode when both exist) are skipped where it is unavailable (JAX >= 0.11 moved
#: the API); the fallback's own behaviour is tested with the ``no_hijax`` fixture.
needs_hijax = pytest.mark.skipif(
    not _hijax.AVAILABLE, reason="needs jax.experimental.hijax (HiPrim / VJPHiPrimitive)"
)


def skip_vjp_only_forward(flavour: str) -> None:
    if flavour == "vjp" and not _hijax.AVAILABLE:
        pytest.skip("forward mode of a VJP-only rule needs jax.experimental.hijax")


def make_matsin(flavour: str, *, jvp_scale: float = 1.0, vjp_scale: float = 1.0, **options):
    """``f(A, x) = A @ sin(x)`` with a JVP rule, a VJP rule, or both (``flavour``).

    The scales multiply the ``x`` part of one rule only, so a test can tell which rule ran.
    """

    @jr.custom_jvp(**options)
    def matsin(A, x):
        return A @ jnp.sin(x)

    def jvp(primals, tangents):
        A, x = primals
        dA, dx = tangents
        y = A @ jnp.sin(x)
        return y, dA @ jnp.sin(x) + jvp_scale * (A @ (jnp.cos(x) * dx))

    def fwd(A, x):
        return A @ jnp.sin(x), (A, x)

    def bwd(res, g):
        A, x = res
        return jnp.outer(g, jnp.sin(x)), vjp_scale * jnp.cos(x) * (A.T @ g)

    if flavour in ("jvp", "both"):
        matsin.defjvp(jvp)
    if flavour in ("vjp", "both"):
        matsin.defvjp(fwd, bwd)
    return matsin


def registered_point(rec, case, dtype="float32", fn=None):
    """A registered case's example point: its differentiable leaves `xs`, the function `G(xs)`
    of the rule's (or `fn`'s: its reference, say) floating outputs, and unit directions `v`
    (inputs) and `w` (outputs)."""
    from jaxrules._check._layout import argspec, make_layout

    args = rec.draw(jax.random.key(0), dtype, case)
    layout, xs, fixed = make_layout(rec.for_case(case), args, argspec(rec, case))
    F = layout.function(rec.fn if fn is None else fn)
    G = lambda xs: [o for o in F(xs, fixed) if jnp.issubdtype(jnp.result_type(o), jnp.inexact)]
    out = jax.eval_shape(G, xs)
    return xs, G, [jnp.ones_like(x) for x in xs], [jnp.ones(o.shape, o.dtype) for o in out]


#: Every registered (rule, case) of the library, as pytest parameters.
LIBRARY_CASES = [
    pytest.param(rec.name, i, id=f"{rec.name}[{i}]")
    for rec in jr.list_rules(module="jaxrules.rules")
    for i in range(len(rec.cases))
]


def matsin_ref(A, x):
    return A @ jnp.sin(x)


@pytest.fixture
def A():
    return jnp.asarray(np.random.default_rng(0).standard_normal((3, 4)), jnp.float32)


@pytest.fixture
def x():
    return jnp.asarray(np.random.default_rng(1).standard_normal(4), jnp.float32)


@pytest.fixture
def no_hijax():
    """Run a test with the fallback backends (as on a JAX without hijax)."""
    with _backend.use_hijax(False):
        yield


def assert_tree_close(a, b, rtol=1e-5, atol=1e-5):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, (ta, tb)
    for u, v in zip(la, lb):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


@pytest.fixture
def x64():
    """Float64 for the test (JAX's `enable_x64` context)."""
    with jax.enable_x64():
        yield
