"""Declared arguments: static, nondiff, zero, dynamic; callables, integers, complex, scalars."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_tree_close, skip_vjp_only_forward

import jaxrules as jr

FLAVOURS = ["jvp", "vjp", "both"]


# -- declarations are validated when decorating ----------------------------------------------
def test_typo_in_static_names():
    with pytest.raises(ValueError, match=r"smooth: static_argnames names 'metod'.*Did you mean"):

        @jr.custom_jvp(static_argnames=("metod",))
        def smooth(x, method="cubic"):
            return x


def test_unknown_nondiff_name():
    with pytest.raises(ValueError, match=r"f: constant_argnames names 'z', which is not a param"):

        @jr.custom_vjp(constant_argnames="z")
        def f(x, y):
            return x


def test_name_declared_twice():
    with pytest.raises(ValueError, match=r"f: parameter 'y' is declared in both static_argnames"):

        @jr.custom_jvp(static_argnames=("y",), constant_argnames=("y",))
        def f(x, y):
            return x

    with pytest.raises(ValueError, match=r"parameter 'y' is declared twice in zero_argnames"):

        @jr.custom_jvp(zero_argnames=("y", "y"))
        def g(x, y):
            return x


def test_names_must_be_strings_and_options_known():
    with pytest.raises(TypeError, match=r"f: static_argnames must contain parameter names"):

        @jr.custom_jvp(static_argnames=(1,))
        def f(x, y):
            return x

    with pytest.raises(TypeError, match=r"unknown option 'nondiff_argnum'"):
        jr.custom_jvp(nondiff_argnum=(0,))


def test_no_rule_defined_is_an_error():
    @jr.custom_jvp
    def f(x):
        return x

    with pytest.raises(
        AttributeError, match=r"f has no derivative rule yet: define one with @f.defjvp"
    ):
        f(1.0)


# -- static arguments -------------------------------------------------------------------------
def _scaled(flavour, **options):
    @jr.custom_jvp(**options)
    def f(x, *, power=2, scale=1.0):
        return scale * x**power

    def jvp(p, t, *, power):
        (x, scale), (dx, dscale) = p, t
        y = scale * x**power
        return y, scale * power * x ** (power - 1) * dx + x**power * dscale

    def fwd(x, *, power, scale):
        return scale * x**power, (x, scale)

    def bwd(res, g, *, power):
        x, scale = res
        return scale * power * x ** (power - 1) * g, jnp.sum(x**power * g)

    if flavour in ("jvp", "both"):
        f.defjvp(jvp)
    if flavour in ("vjp", "both"):
        f.defvjp(fwd, bwd)
    return f


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_keyword_only_and_defaults_static_and_dynamic(flavour):
    f = _scaled(flavour, static_argnames="power")
    x = jnp.array([1.0, 2.0, 3.0])
    ref = lambda x, power=2, scale=1.0: scale * x**power
    for kwargs in [{}, {"power": 3}, {"scale": 2.0}, {"power": 3, "scale": 0.5}]:
        np.testing.assert_allclose(f(x, **kwargs), ref(x, **kwargs), rtol=1e-6)
        got = jax.grad(
            lambda x, s: f(x, scale=s, **{k: v for k, v in kwargs.items() if k != "scale"}).sum(),
            (0, 1),
        )(x, kwargs.get("scale", 1.0))
        want = jax.grad(
            lambda x, s: ref(x, scale=s, **{k: v for k, v in kwargs.items() if k != "scale"}).sum(),
            (0, 1),
        )(x, kwargs.get("scale", 1.0))
        assert_tree_close(got, want)
    # Under jit, a static value is part of the cache key, not traced.
    np.testing.assert_allclose(jax.jit(f, static_argnames="power")(x, power=4), x**4, rtol=1e-6)


def test_array_in_static_slot_is_an_error():
    f = _scaled("jvp", static_argnames="power")
    with pytest.raises(TypeError, match=r"f: static argument 'power' got an array f32\[\]"):
        f(jnp.ones(3), power=jnp.float32(2.0))
    with pytest.raises(TypeError, match=r"static argument 'power' got an array"):
        jax.jit(lambda p: f(jnp.ones(3), power=p))(2.0)


def test_unhashable_static_is_an_error():
    @jr.custom_jvp(static_argnames="opts")
    def f(x, opts):
        return x

    f.defjvp(lambda p, t, *, opts: (p[0], t[0]))
    with pytest.raises(TypeError, match=r"f: static argument 'opts' must be hashable.*tuple"):
        f(1.0, opts=["a"])


def test_non_array_in_dynamic_slot_is_an_error():
    f = _scaled("jvp")
    with pytest.raises(TypeError, match=r"f: argument 'scale' got a str.*static_argnames"):
        f(jnp.ones(3), scale="big")


# -- nondiff arguments ------------------------------------------------------------------------
def _with_grid(flavour):
    @jr.custom_jvp(constant_argnames=("grid",))
    def interp(x, grid):
        return jnp.sin(x) * grid

    def jvp(p, t):
        (x, grid), (dx, dgrid) = p, t
        assert dgrid is None
        return interp(x, grid), jnp.cos(x) * grid * dx

    def fwd(x, grid):
        return interp(x, grid), (x, grid)

    def bwd(res, g):
        x, grid = res
        return jnp.cos(x) * grid * g, None

    if flavour in ("jvp", "both"):
        interp.defjvp(jvp)
    if flavour in ("vjp", "both"):
        interp.defvjp(fwd, bwd)
    return interp


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_nondiff_is_traced_and_differentiable_elsewhere(flavour):
    f = _with_grid(flavour)
    x, grid = jnp.array([0.1, 0.2]), jnp.array([3.0, 4.0])
    np.testing.assert_allclose(jax.grad(lambda x: f(x, grid).sum())(x), jnp.cos(x) * grid)
    # grid is traced: jit does not recompile for a new grid, vmap over it works.
    np.testing.assert_allclose(jax.jit(f)(x, 2 * grid), jnp.sin(x) * 2 * grid)
    np.testing.assert_allclose(
        jax.vmap(f, (None, 0))(x, jnp.stack([grid, grid])), jnp.stack([jnp.sin(x) * grid] * 2)
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("how", ["grad", "jit_grad", "jvp", "jit_jvp", "jacfwd"])
def test_differentiating_nondiff_is_an_error(flavour, how):
    f = _with_grid(flavour)
    x, grid = jnp.array([0.1, 0.2]), jnp.array([3.0, 4.0])
    g = lambda grid: f(x, grid).sum()
    run = {
        "grad": lambda: jax.grad(g)(grid),
        "jit_grad": lambda: jax.jit(jax.grad(g))(grid),
        "jvp": lambda: jax.jvp(g, (grid,), (grid,)),
        "jit_jvp": lambda: jax.jit(lambda t: jax.jvp(g, (grid,), (t,)))(grid),
        "jacfwd": lambda: jax.jacfwd(g)(grid),
    }[how]
    with pytest.raises(
        ValueError,
        match=r"interp: argument 'grid' is declared constant, but it is"
        r" being differentiated .*stop_gradient",
    ):
        run()


def test_nondiff_explicit_zero_tangent_counts_as_perturbed():
    f = _with_grid("jvp")
    x, grid = jnp.array([0.1, 0.2]), jnp.array([3.0, 4.0])
    with pytest.raises(ValueError, match="declared constant"):
        jax.jvp(f, (x, grid), (x, jnp.zeros(2)))
    # A stop_gradient makes it unperturbed.
    jax.grad(lambda g: f(x, jax.lax.stop_gradient(g)).sum() + g.sum())(grid)


# -- zero arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_zero_argument_has_zero_derivative(flavour):
    skip_vjp_only_forward(flavour)

    @jr.custom_jvp(zero_argnames=("x0",))
    def sqrt_newton(a, x0):
        def body(_, x):
            return 0.5 * (x + a / x)

        return jax.lax.fori_loop(0, 30, body, x0)

    def jvp(p, t):
        (a, x0), (da, dx0) = p, t
        assert dx0 is None
        r = sqrt_newton(a, x0)
        return r, da / (2 * r)

    def fwd(a, x0):
        r = sqrt_newton(a, x0)
        return r, r

    def bwd(r, g):
        return g / (2 * r), jnp.ones_like(r) * 123.0  # ignored: x0 is declared zero

    if flavour in ("jvp", "both"):
        sqrt_newton.defjvp(jvp)
    if flavour in ("vjp", "both"):
        sqrt_newton.defvjp(fwd, bwd)
    a = jnp.array([2.0, 9.0])
    da, dx0 = jax.grad(lambda a, x0: sqrt_newton(a, x0).sum(), (0, 1))(a, jnp.ones(2))
    np.testing.assert_allclose(da, 0.5 / jnp.sqrt(a), rtol=1e-6)
    np.testing.assert_array_equal(dx0, jnp.zeros(2))
    _, t = jax.jvp(sqrt_newton, (a, jnp.ones(2)), (jnp.zeros(2), jnp.ones(2)))
    np.testing.assert_array_equal(t, jnp.zeros(2))


# -- callables closing over traced arrays -----------------------------------------------------
def _apply(flavour):
    """g(F, x) = F(x)**2, with rules that differentiate through the pytree-callable F."""

    @jr.custom_jvp
    def square_of(F, x):
        return F(x) ** 2

    def jvp(p, t):
        (F, x), (dF, dx) = p, t
        y, dy = jax.jvp(lambda F, x: F(x), (F, x), (dF, dx))
        return y**2, 2 * y * dy

    def fwd(F, x):
        y = F(x)
        return y**2, (y, F, x)

    def bwd(res, g):
        y, F, x = res
        _, vjp = jax.vjp(lambda F, x: F(x), F, x)
        return vjp(2 * y * g)

    if flavour in ("jvp", "both"):
        square_of.defjvp(jvp)
    if flavour in ("vjp", "both"):
        square_of.defvjp(fwd, bwd)
    return square_of


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("capture", ["lambda", "nested", "partial", "default"])
def test_closure_over_traced_arrays_gets_derivatives(flavour, capture):
    skip_vjp_only_forward(flavour)
    f = _apply(flavour)

    def make_F(p, q):
        if capture == "lambda":
            return lambda x: jnp.sin(p * x) + q
        if capture == "nested":
            inner = lambda x: p * x

            def F(x):
                return jnp.sin(inner(x)) + q

            return F
        if capture == "partial":
            return functools.partial(lambda x, p, q: jnp.sin(p * x) + q, p=p, q=q)
        return lambda x, p=p, q=q: jnp.sin(p * x) + q

    loss = lambda p, q, x, fn: fn(make_F(p, q), x).sum()
    ref = lambda F, x: F(x) ** 2
    p, q, x = jnp.array([0.5, 1.5]), jnp.array(0.3), jnp.array([1.0, -2.0])
    got = jax.grad(loss, (0, 1, 2))(p, q, x, f)
    want = jax.grad(loss, (0, 1, 2))(p, q, x, ref)
    assert_tree_close(got, want)
    got = jax.jit(jax.grad(lambda p, q, x: loss(p, q, x, f), (0, 1, 2)))(p, q, x)
    assert_tree_close(got, want)
    _, t = jax.jvp(lambda p: loss(p, q, x, f), (p,), (jnp.ones(2),))
    _, t_ref = jax.jvp(lambda p: loss(p, q, x, ref), (p,), (jnp.ones(2),))
    np.testing.assert_allclose(t, t_ref, rtol=1e-5)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_callable_without_arrays_is_static(flavour):
    skip_vjp_only_forward(flavour)
    f = _apply(flavour)
    x = jnp.array([0.3, -1.2])
    np.testing.assert_allclose(f(jnp.sin, x), jnp.sin(x) ** 2, rtol=1e-6)
    g = jax.grad(lambda x: f(jnp.sin, x).sum())(x)
    np.testing.assert_allclose(g, 2 * jnp.sin(x) * jnp.cos(x), rtol=1e-6)
    _, t = jax.jvp(lambda x: f(jnp.tanh, x), (x,), (jnp.ones(2),))
    np.testing.assert_allclose(t, 2 * jnp.tanh(x) * (1 - jnp.tanh(x) ** 2), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda x: f(jnp.sin, x))(x), jnp.sin(x) ** 2, rtol=1e-6)


def test_static_callable_closing_over_tracer_is_an_error():
    @jr.custom_jvp(static_argnames="F")
    def apply(x, F):
        return F(x)

    apply.defjvp(lambda p, t, *, F: (F(p[0]), t[0]))
    assert float(apply(2.0, F=jnp.sin)) == pytest.approx(np.sin(2.0), rel=1e-6)
    with pytest.raises(
        TypeError,
        match=r"apply: static argument 'F' is a callable that closes "
        r"over arrays.*Remove it from static_argnames",
    ):
        jax.grad(lambda p: apply(1.0, F=lambda x: x * p))(2.0)


def test_rule_closing_over_tracer_is_an_error():
    def outer(p):
        @jr.custom_vjp
        def f(x):
            return x * p

        f.defvjp(lambda x: (x * p, None), lambda res, g: (g * p,))
        return f(jnp.ones(2)).sum()

    with pytest.raises(Exception, match=r"f: a rule or the function closes over a traced value"):
        jax.grad(outer)(2.0)


# -- integers, complex, Python scalars --------------------------------------------------------
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_integer_arguments_get_float0_tangents(flavour):
    # As in JAX: an integer argument's tangent is float0 zeros (None with zeros_as_none=True).
    skip_vjp_only_forward(flavour)

    @jr.custom_jvp
    def power(x, n):
        return x**n

    def jvp(p, t):
        (x, n), (dx, dn) = p, t
        assert dn.dtype == jax.dtypes.float0 and dn.shape == n.shape
        return x**n, n * x ** (n - 1) * dx

    def fwd(x, n):
        return x**n, (x, n)

    def bwd(res, g):
        x, n = res
        return n * x ** (n - 1) * g, None

    if flavour in ("jvp", "both"):
        power.defjvp(jvp)
    if flavour in ("vjp", "both"):
        power.defvjp(fwd, bwd)
    x, n = jnp.array([1.5, 2.0]), jnp.array([2, 3])
    gx, gn = jax.grad(lambda x, n: power(x, n).sum(), (0, 1), allow_int=True)(x, n)
    np.testing.assert_allclose(gx, n * x ** (n - 1))
    assert gn.dtype == jax.dtypes.float0
    np.testing.assert_allclose(jax.jacfwd(power)(x, n), jnp.diag(n * x ** (n - 1)))


def test_complex_rejected_unless_declared():
    @jr.custom_jvp
    def sq(z):
        return z * z

    sq.defjvp(lambda p, t: (p[0] * p[0], 2 * p[0] * t[0]))
    with pytest.raises(TypeError, match=r"sq: argument 'z' is complex \(c64\[2\]\).*allow_complex"):
        sq(jnp.array([1 + 1j, 2.0]))

    @jr.custom_jvp(allow_complex=True)
    def sq2(z):
        return z * z

    sq2.defjvp(lambda p, t: (p[0] * p[0], 2 * p[0] * t[0]))
    z = jnp.array([1 + 1j, 2.0 - 0.5j])
    _, t = jax.jvp(sq2, (z,), (jnp.ones_like(z),))
    np.testing.assert_allclose(t, 2 * z)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_python_scalars(flavour):
    from conftest import make_matsin

    f = make_matsin(flavour)
    g = lambda a, x: f(jnp.array([[a]]), jnp.array([x]))[0]
    ref = lambda a, x: a * jnp.sin(x)
    assert_tree_close(jax.grad(g, (0, 1))(1.5, 0.7), jax.grad(ref, (0, 1))(1.5, 0.7))

    @jr.custom_vjp
    def s(x):
        return jnp.sin(x)

    s.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    assert float(jax.grad(s)(1.0)) == pytest.approx(np.cos(1.0), rel=1e-6)
    assert float(s(1.0)) == pytest.approx(np.sin(1.0), rel=1e-6)


# -- zeros as None (jaxrules' own convention; JAX's SymbolicZero: test_dropin_conventions) -
@pytest.mark.parametrize("symbolic", [False, True])
def test_unperturbed_inputs_zeros_or_none(symbolic):
    seen = []

    @jr.custom_jvp
    def f(x, y):
        return x * y

    def jvp(p, t):
        (x, y), (dx, dy) = p, t
        seen.append((dx is None, dy is None))
        dx = 0.0 if dx is None else dx
        dy = 0.0 if dy is None else dy
        return x * y, dx * y + x * dy

    f.defjvp(jvp, zeros_as_none=symbolic)
    x, y = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
    _, t = jax.jvp(lambda x: f(x, y), (x,), (jnp.ones(2),))
    np.testing.assert_allclose(t, y)
    np.testing.assert_allclose(jax.grad(lambda y: f(x, y).sum())(y), x)
    assert seen[0] == (False, symbolic)
    assert seen[-1] == (symbolic, False)


@pytest.mark.parametrize("symbolic", [False, True])
def test_vjp_symbolic_zero_cotangents(symbolic):
    seen = []

    @jr.custom_vjp
    def two(x):
        return jnp.sin(x), jnp.cos(x)

    def bwd(x, g):
        gs, gc = g
        seen.append((gs is None, gc is None))
        out = jnp.zeros_like(x)
        if gs is not None:
            out = out + jnp.cos(x) * gs
        if gc is not None:
            out = out - jnp.sin(x) * gc
        return (out,)

    two.defvjp(lambda x: (two(x), x), bwd, zeros_as_none=symbolic)
    x = jnp.array([0.3, 0.4])
    np.testing.assert_allclose(jax.grad(lambda x: two(x)[0].sum())(x), jnp.cos(x), rtol=1e-6)
    assert seen[-1] == (False, symbolic)


def test_rule_may_return_none_tangent():
    @jr.custom_jvp
    def step(x):
        return jnp.floor(x)

    step.defjvp(lambda p, t: (jnp.floor(p[0]), None))
    _, t = jax.jvp(step, (jnp.array([1.5]),), (jnp.ones(1),))
    np.testing.assert_array_equal(t, jnp.zeros(1))


# -- pytrees ----------------------------------------------------------------------------------
@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Params:
    w: jax.Array
    b: jax.Array


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_pytree_arguments_and_outputs(flavour):
    skip_vjp_only_forward(flavour)

    @jr.custom_jvp
    def affine(p: Params, xs):
        y = p.w @ xs["a"] + p.b
        return {"y": y, "pair": (jnp.sum(y), xs["a"])}

    def jvp(primals, tangents):
        (p, xs), (dp, dxs) = primals, tangents
        dy = dp.w @ xs["a"] + p.w @ dxs["a"] + dp.b
        return affine(p, xs), {"y": dy, "pair": (jnp.sum(dy), dxs["a"])}

    def fwd(p, xs):
        return affine(p, xs), (p, xs)

    def bwd(res, g):
        p, xs = res
        gy = g["y"] + g["pair"][0]
        return Params(jnp.outer(gy, xs["a"]), gy), {"a": p.w.T @ gy + g["pair"][1]}

    if flavour in ("jvp", "both"):
        affine.defjvp(jvp)
    if flavour in ("vjp", "both"):
        affine.defvjp(fwd, bwd)
    ref = lambda p, xs: {"y": p.w @ xs["a"] + p.b, "pair": (jnp.sum(p.w @ xs["a"] + p.b), xs["a"])}
    p = Params(jnp.arange(6.0).reshape(2, 3) / 7, jnp.array([0.1, -0.2]))
    xs = {"a": jnp.array([1.0, -1.0, 0.5])}
    loss = lambda fn: (
        lambda p, xs: (
            jnp.sum(jnp.sin(fn(p, xs)["y"]))
            + fn(p, xs)["pair"][0] ** 2
            + fn(p, xs)["pair"][1].sum()
        )
    )
    assert_tree_close(jax.grad(loss(affine), (0, 1))(p, xs), jax.grad(loss(ref), (0, 1))(p, xs))
    assert_tree_close(jax.jvp(affine, (p, xs), (p, xs)), jax.jvp(ref, (p, xs), (p, xs)))
    assert_tree_close(jax.jacfwd(affine)(p, xs), jax.jacfwd(ref)(p, xs))


def test_var_positional_parameters():
    @jr.custom_jvp(static_argnames="scale")
    def total(x, *rest, scale=1.0):
        return scale * (x + sum(rest))

    def jvp(p, t, *, scale):
        (x, rest), (dx, drest) = p, t
        return total(x, *rest, scale=scale), scale * (dx + sum(drest))

    total.defjvp(jvp)
    g = jax.grad(lambda a, b, c: total(a, b, c, scale=2.0), (0, 1, 2))(1.0, 2.0, 3.0)
    assert [float(v) for v in g] == [2.0, 2.0, 2.0]


def test_primal_runs_once_per_call_and_trace():
    # As with jax.custom_jvp: an eager call runs the function once; a trace runs it once (its
    # jaxpr is then the primal, and the output avals come from it: no second trace).
    calls = []

    @jr.custom_vjp
    def f(x):
        calls.append(1)
        return jnp.sin(x)

    f.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]))
    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    for _ in range(3):
        f(jnp.ones(3))
    assert len(calls) == 3
    jax.jit(f)(jnp.ones(3))
    assert len(calls) == 4
    jax.jit(f)(jnp.ones(4))  # a new shape: one trace
    assert len(calls) == 5
    jax.jit(jax.grad(lambda x: f(x).sum()))(jnp.ones(5))
    assert len(calls) == 6


def test_fresh_closures_are_traced_like_jax():
    # Users write `lambda x: x * p` anew on every call: each call under a transformation traces
    # the function once (as jax.custom_jvp does), with what the closure holds now.
    f = _apply("jvp")
    x = jnp.array([1.0, 2.0])
    jvp = lambda g: jax.jvp(g, (x,), (x,))[0]
    for i in range(3):
        p = jnp.array(float(i))
        np.testing.assert_allclose(jvp(lambda x: f(lambda x: x * p, x)), (x * i) ** 2)
        np.testing.assert_allclose(jvp(lambda x: f(lambda x, k=3: x * p + k, x)), (x * i + 3) ** 2)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_python_scalars_under_every_transform(flavour):
    # f(x, 2.0): a Python float beside an array reaches the rules as JAX's typed literal under
    # some transforms (jvp of jit, jit of jacfwd); it used to crash ('TypedFloat' has no shape).
    skip_vjp_only_forward(flavour)

    @jr.custom_jvp
    def f(x, y):
        return jnp.sin(x) * y

    if flavour in ("jvp", "both"):
        f.defjvp(lambda p, t: (f(*p), jnp.cos(p[0]) * p[1] * t[0] + jnp.sin(p[0]) * t[1]))
    if flavour in ("vjp", "both"):
        f.defvjp(
            lambda x, y: (f(x, y), (x, y)),
            lambda r, g: (jnp.cos(r[0]) * r[1] * g, jnp.sum(jnp.sin(r[0]) * g)),
        )
    x = jnp.array([0.3, -1.1, 2.0])
    dfdx = np.diag(2.0 * np.cos(np.asarray(x)))
    g = lambda x: f(x, 2.0)
    results = {
        "jvp of jit": jax.jvp(jax.jit(g), (x,), (jnp.ones(3),))[1],
        "jit of jacfwd": jax.jit(jax.jacfwd(g))(x),
        "jit of jacrev": jax.jit(jax.jacrev(g))(x),
        "jacfwd of jit": jax.jacfwd(jax.jit(g))(x),
        "vmap of grad": jax.vmap(jax.grad(g))(x),
        "hessian": jax.hessian(lambda s: f(s, 2.0))(0.3) if flavour != "vjp" else None,
        "scalar jvp of jit": jax.jvp(jax.jit(g), (0.3,), (1.0,))[1],
    }
    want = {
        "jvp of jit": dfdx.sum(1),
        "jit of jacfwd": dfdx,
        "jit of jacrev": dfdx,
        "jacfwd of jit": dfdx,
        "vmap of grad": np.diag(dfdx),
        "hessian": -2.0 * np.sin(0.3) if flavour != "vjp" else None,
        "scalar jvp of jit": 2.0 * np.cos(0.3),
    }
    for k, v in results.items():
        if v is not None:
            np.testing.assert_allclose(v, want[k], rtol=1e-5, err_msg=k)
