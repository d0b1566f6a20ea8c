"""Drop-in, part 2: JAX's documented behaviours of custom_jvp/custom_vjp, each run with JAX's
decorator and with jaxrules' and compared (values, and which rules ran).

Each test takes ``deco`` = a pair (custom_jvp, custom_vjp) from JAX or from jaxrules; the code
inside is written once, in JAX's spelling.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr

DECOS = {"jax": (jax.custom_jvp, jax.custom_vjp), "jaxrules": (jr.custom_jvp, jr.custom_vjp)}


@pytest.fixture(params=list(DECOS))
def deco(request):
    return DECOS[request.param]


def _both(make, run):
    """Run ``run(make(deco))`` with JAX's and jaxrules' decorators; return both results."""
    return [run(make(d)) for d in DECOS.values()]


def assert_same(results, rtol=1e-6):
    want, got = results
    lw, tw = jax.tree_util.tree_flatten(want)
    lg, tg = jax.tree_util.tree_flatten(got)
    assert tw == tg, (tw, tg)
    for w, g in zip(lw, lg):
        assert jnp.result_type(w) == jnp.result_type(g), (w, g)
        np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), rtol=rtol)


# -- 1. Python control flow on values outside jit ---------------------------------------------
def _make_clip_relu(deco):
    custom_jvp, _ = deco
    log = []

    @custom_jvp
    def f(x):
        log.append("primal")
        if x > 0:  # Python control flow on the value: fine outside jit
            return x
        return 0.0 * x

    @f.defjvp
    def f_jvp(primals, tangents):
        log.append("jvp")
        (x,), (t,) = primals, tangents
        if x > 0:
            return f(x), 2.0 * t
        return f(x), 0.0 * t

    return f, log


@pytest.mark.parametrize("x", [1.5, -0.5])
def test_python_control_flow_on_values_eagerly(x):
    def run(fl):
        f, log = fl
        out = (f(x), jax.grad(f)(x), jax.jvp(f, (x,), (1.0,)))
        return out, tuple(log)

    (want, log_jax), (got, log_jr) = _both(_make_clip_relu, run)
    assert_same((want, got))
    assert log_jax == log_jr


def test_ensure_compile_time_eval_inside_the_function():
    def make(deco):
        custom_jvp, _ = deco

        @custom_jvp
        def f(x):
            with jax.ensure_compile_time_eval():
                n = int(jnp.sum(jnp.arange(3)))  # concrete even under jit
            return x * n

        f.defjvp(lambda p, t: (f(p[0]), 3.0 * t[0]))
        return f

    assert_same(
        _both(make, lambda f: (jax.jit(f)(2.0), jax.grad(f)(2.0), jax.jit(jax.grad(f))(2.0)))
    )


# -- 2. functools.partial with keyword-bound arguments ----------------------------------------
def test_partial_with_keyword_bound_argument():
    def make(deco):
        custom_jvp, _ = deco

        def base(x, a):
            return a * jnp.sin(x)

        f = custom_jvp(functools.partial(base, a=2.0))
        f.defjvp(lambda p, t: (f(p[0]), 2.0 * jnp.cos(p[0]) * t[0]))
        return f

    assert_same(_both(make, lambda f: (f(0.3), jax.grad(f)(0.3), jax.jit(jax.grad(f))(0.3))))


# -- 3. integer inputs ------------------------------------------------------------------------
@pytest.mark.parametrize("int_ct", ["none", "zeros_int", "zeros_float0", "anything"])
def test_integer_input_cotangent(int_ct):
    def make(deco):
        _, custom_vjp = deco

        @custom_vjp
        def f(x, n):
            return x * n

        def fwd(x, n):
            return x * n, (x, n)

        def bwd(res, g):
            _x, n = res
            ct = {
                "none": None,
                "zeros_int": jnp.zeros_like(n),
                "zeros_float0": np.zeros(np.shape(n), jax.dtypes.float0),
                "anything": jnp.ones_like(n),
            }[int_ct]
            return g * n, ct

        f.defvjp(fwd, bwd)
        return f

    n = jnp.array(3, jnp.int32)
    assert_same(
        _both(
            make,
            lambda f: (
                jax.grad(f)(2.0, n),
                jax.jit(jax.grad(f))(2.0, n),
                jax.vmap(jax.grad(f), (0, None))(jnp.arange(3.0), n),
            ),
        )
    )


def test_integer_input_grad_is_float0(deco):
    _, custom_vjp = deco

    @custom_vjp
    def f(x, n):
        return x * n

    f.defvjp(lambda x, n: (x * n, n), lambda n, g: (g * n, None))
    gx, gn = jax.grad(f, (0, 1), allow_int=True)(2.0, jnp.array(3))
    assert float(gx) == 3.0
    assert gn.dtype == jax.dtypes.float0


# -- 4. a custom_vjp closing over a value batched by an enclosing vmap --------------------------
def test_closure_over_vmapped_value():
    def run(deco):
        _, custom_vjp = deco

        def outer(scale, x):
            @custom_vjp
            def f(x):
                return scale * jnp.sin(x)

            f.defvjp(lambda x: (scale * jnp.sin(x), x), lambda x, g: (scale * jnp.cos(x) * g,))
            return f(x)

        xs = jnp.linspace(0.1, 1.0, 4)
        scales = jnp.arange(1.0, 5.0)
        return (
            jax.vmap(outer)(scales, xs),
            jax.vmap(jax.grad(outer, 1))(scales, xs),
        )

    want, got = run(DECOS["jax"]), run(DECOS["jaxrules"])
    assert_same((want, got))


# -- 5. defjvps ---------------------------------------------------------------------------------
def test_defjvps():
    def make(deco):
        custom_jvp, _ = deco

        @custom_jvp
        def f(x, y):
            return jnp.sin(x) * y

        f.defjvps(
            lambda x_dot, primal_out, x, y: jnp.cos(x) * x_dot * y,
            lambda y_dot, primal_out, x, y: jnp.sin(x) * y_dot,
        )
        return f

    x, y = jnp.array([0.3, 1.2]), jnp.array([2.0, -1.0])
    assert_same(
        _both(
            make,
            lambda f: (
                jax.jvp(f, (x, y), (jnp.ones(2), jnp.zeros(2))),
                jax.grad(lambda x, y: f(x, y).sum(), (0, 1))(x, y),
                jax.jit(jax.jacfwd(f, 1))(x, y),
            ),
        )
    )


def test_defjvps_with_none():
    def make(deco):
        custom_jvp, _ = deco

        @custom_jvp
        def f(x, y):
            return x * jax.lax.stop_gradient(y)

        f.defjvps(lambda x_dot, primal_out, x, y: x_dot * y, None)
        return f

    assert_same(_both(make, lambda f: (jax.grad(f)(2.0, 3.0), jax.grad(f, 1)(2.0, 3.0))))


# -- 6. symbolic zeros with JAX's objects -----------------------------------------------------
def test_symbolic_zeros_jvp_objects():
    def make(deco):
        custom_jvp, _ = deco
        seen = []

        @custom_jvp
        def f(x, y):
            return x * y

        def f_jvp(primals, tangents):
            x, y = primals
            dx, dy = tangents
            seen.append(tuple(type(t).__name__ for t in tangents))
            out = 0.0
            if not isinstance(dx, jax.custom_derivatives.SymbolicZero):
                out = out + dx * y
            if not isinstance(dy, jax.custom_derivatives.SymbolicZero):
                out = out + x * dy
            return f(x, y), out

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f, seen

    def run(fs):
        f, seen = fs
        vals = (jax.grad(f)(2.0, 3.0), jax.grad(f, 1)(2.0, 3.0), jax.jvp(f, (2.0, 3.0), (1.0, 1.0)))
        return vals, tuple(seen)

    (want, seen_jax), (got, seen_jr) = _both(make, run)
    assert_same((want, got))
    assert seen_jax == seen_jr
    assert any("SymbolicZero" in s for s in seen_jr)


def test_symbolic_zeros_vjp_objects():
    def make(deco):
        _, custom_vjp = deco
        seen = []

        @custom_vjp
        def f(x, y):
            return x * y, jnp.sin(x)

        def fwd(x, y):
            seen.append(("fwd", type(x).__name__, bool(x.perturbed), bool(y.perturbed)))
            return f(x.value, y.value), (x.value, y.value)

        def bwd(res, cts):
            x, y = res
            a, b = cts
            seen.append(("bwd", *tuple(type(c).__name__ for c in cts)))
            a = 0.0 if isinstance(a, jax.custom_derivatives.SymbolicZero) else a
            b = 0.0 if isinstance(b, jax.custom_derivatives.SymbolicZero) else b
            return a * y + b * jnp.cos(x), a * x

        f.defvjp(fwd, bwd, symbolic_zeros=True)
        return f, seen

    def run(fs):
        f, seen = fs
        vals = (
            jax.grad(lambda x, y: f(x, y)[0])(2.0, 3.0),
            jax.grad(lambda x, y: f(x, y)[1], 1, allow_int=True)(2.0, 3.0),
            jax.grad(lambda y: f(2.0, y)[0])(3.0),
            jax.jit(jax.grad(lambda x, y: sum(f(x, y))))(2.0, 3.0),
        )
        return vals, tuple(seen)

    (want, seen_jax), (got, seen_jr) = _both(make, run)
    assert_same((want, got))
    assert seen_jax == seen_jr


def test_zeros_as_none_is_jaxrules_own_convention():
    @jr.custom_jvp
    def f(x, y):
        return x * y

    seen = []

    def jvp(primals, tangents):
        seen.append(tangents)
        (x, y), (dx, dy) = primals, tangents
        return f(x, y), (0.0 if dx is None else dx * y) + (0.0 if dy is None else x * dy)

    f.defjvp(jvp, zeros_as_none=True)
    assert float(jax.grad(f)(2.0, 3.0)) == 3.0
    assert seen[-1][1] is None


# -- 7. nondiff_argnums with JAX's calling convention -------------------------------------------
def test_nondiff_argnums_custom_vjp_clip_gradient():
    def make(deco):
        _, custom_vjp = deco

        @functools.partial(custom_vjp, nondiff_argnums=(0, 1))
        def clip_gradient(lo, hi, x):
            return x

        def fwd(lo, hi, x):
            return x, None

        def bwd(lo, hi, _, g):
            return (jnp.clip(g, lo, hi),)

        clip_gradient.defvjp(fwd, bwd)
        return clip_gradient

    t = jnp.linspace(0.0, 10.0, 5)
    assert_same(
        _both(
            make,
            lambda clip: (
                jax.vmap(jax.grad(lambda x: clip(-0.75, 0.75, jnp.sin(x))))(t),
                jax.jit(jax.grad(lambda x: clip(-0.5, 0.5, 3 * x)))(1.0),
            ),
        )
    )


def test_nondiff_argnums_custom_jvp_with_callable():
    def make(deco):
        custom_jvp, _ = deco

        @functools.partial(custom_jvp, nondiff_argnums=(0,))
        def app(f, x):
            return f(x)

        @app.defjvp
        def app_jvp(f, primals, tangents):
            (x,), (x_dot,) = primals, tangents
            return f(x), 2.0 * x_dot

        return app

    assert_same(
        _both(
            make,
            lambda app: (
                app(jnp.sin, 0.5),
                jax.grad(lambda x: app(jnp.sin, x))(0.5),
                jax.jit(jax.jvp, static_argnums=0)(lambda x: app(jnp.cos, x), (0.5,), (1.0,)),
            ),
        )
    )


def test_nondiff_argnames_with_jax_meaning():
    # JAX's nondiff_argnames: those arguments come first in the rules, alone or with argnums.
    def make(deco):
        _, custom_vjp = deco

        @functools.partial(custom_vjp, nondiff_argnums=(0,), nondiff_argnames=("g",))
        def app(f, g, x):
            return f(x) + g(x)

        def fwd(f, g, x):
            return app(f, g, x), jnp.cos(x)

        def bwd(f, g, cos_x, v):
            return (cos_x * v,)

        app.defvjp(fwd, bwd)
        return app

    double = lambda x: 2 * x
    assert_same(
        _both(
            make,
            lambda app: (
                app(double, double, 1.0),
                jax.value_and_grad(lambda x: app(double, jnp.sin, x))(1.0),
                jax.vmap(jax.grad(lambda x: app(jnp.sin, double, x)))(jnp.arange(3.0)),
            ),
        )
    )
    with pytest.raises(ValueError, match=r"_app_for_errors: nondiff_argnames names 'h', which"):
        jr.custom_vjp(nondiff_argnames=("h",))(_app_for_errors)


def _app_for_errors(f, x):
    return f(x)


def test_nondiff_argnums_array_is_nondiff_not_a_silent_zero():
    # JAX: an array in nondiff_argnums of custom_jvp silently gets a zero gradient. jaxrules
    # runs the same code, and differentiating with respect to that array is an error.
    @functools.partial(jr.custom_jvp, nondiff_argnums=(0,))
    def scale(a, x):
        return a * x

    scale.defjvp(lambda a, p, t: (a * p[0], a * t[0]))
    a = jnp.array(3.0)
    assert float(jax.grad(lambda x: scale(a, x))(2.0)) == 3.0
    with pytest.raises(ValueError, match=r"scale: argument 'a' is declared constant"):
        jax.grad(lambda a: scale(a, 2.0))(a)


# -- 8. the primal runs once per call -------------------------------------------------------------
@pytest.mark.parametrize("which", ["jvp", "vjp"])
def test_primal_runs_once_per_eager_call(which):
    def make(deco):
        custom_jvp, custom_vjp = deco
        calls = []

        def body(x):
            calls.append(1)
            return jnp.sin(x)

        if which == "jvp":
            f = custom_jvp(body)
            f.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]))
        else:
            f = custom_vjp(body)
            f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
        return f, calls

    def run(fc):
        f, calls = fc
        x = jnp.arange(3.0)
        counts = []
        for _ in range(2):
            f(x)
            counts.append(len(calls))
        jax.jit(f)(x)
        counts.append(len(calls))
        return counts

    want, got = _both(make, run)
    assert got == want


# -- every convention under every transform ----------------------------------------------------
def _prog_nondiff_vjp(deco):
    _, custom_vjp = deco

    @functools.partial(custom_vjp, nondiff_argnums=(0,))
    def f(scale, x):
        return scale * jnp.sin(x)

    f.defvjp(lambda s, x: (s * jnp.sin(x), x), lambda s, x, g: (s * jnp.cos(x) * g,))
    return lambda x: f(2.0, x)


def _prog_defjvps(deco):
    custom_jvp, _ = deco

    @custom_jvp
    def f(x, y):
        return jnp.sin(x) * y

    f.defjvps(lambda t, o, x, y: jnp.cos(x) * t * y, lambda t, o, x, y: jnp.sin(x) * t)
    return lambda x: f(x, x + 1.0)


def _prog_symbolic_vjp(deco):
    _, custom_vjp = deco

    @custom_vjp
    def f(x, y):
        return x * y

    def fwd(x, y):
        return x.value * y.value, (x.value, y.value)

    def bwd(res, g):
        x, y = res
        return g * y, (g * x) if not isinstance(g, jax.custom_derivatives.SymbolicZero) else None

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return lambda x: f(x, jnp.cos(x))


def _prog_int_input(deco):
    _, custom_vjp = deco

    @custom_vjp
    def f(x, n):
        return x * n

    f.defvjp(lambda x, n: (x * n, n), lambda n, g: (g * n, jnp.zeros_like(n)))
    return lambda x: f(x, jnp.array(3))


PROGRAMS = {
    "nondiff_argnums": _prog_nondiff_vjp,
    "defjvps": _prog_defjvps,
    "symbolic_zeros": _prog_symbolic_vjp,
    "int_input": _prog_int_input,
}

DIFF = {
    "grad": lambda h: jax.grad(lambda x: jnp.sum(jnp.tanh(h(x))))(jnp.array(0.7)),
    "jit_grad": lambda h: jax.jit(jax.grad(lambda x: jnp.sum(jnp.tanh(h(x)))))(jnp.array(0.7)),
    "vmap_grad": lambda h: jax.vmap(jax.grad(lambda x: jnp.tanh(h(x))))(jnp.linspace(0.1, 1, 3)),
    "checkpoint": lambda h: jax.grad(jax.checkpoint(lambda x: jnp.tanh(h(x))))(0.7),
    "scan": lambda h: jax.grad(
        lambda x: jax.lax.scan(lambda c, _: (jnp.tanh(h(c)), None), x, None, length=3)[0]
    )(0.7),
    "vmap": lambda h: jax.vmap(h)(jnp.linspace(0.1, 1.0, 3)),
}


@pytest.mark.parametrize("transform", list(DIFF))
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_conventions_under_transforms(program, transform):
    assert_same(_both(PROGRAMS[program], DIFF[transform]), rtol=2e-6)


def test_defjvps_with_nondiff_argnums_is_refused_as_in_jax():
    for custom_jvp in (jax.custom_jvp, jr.custom_jvp):
        f = functools.partial(custom_jvp, nondiff_argnums=(0,))(lambda a, x: a * x)
        with pytest.raises(TypeError, match="defjvps"):
            f.defjvps(lambda t, o, a, x: a * t)


def test_nondiff_int_array_reaches_fwd_plain_with_symbolic_zeros():
    def make(deco):
        _, custom_vjp = deco

        @functools.partial(custom_vjp, nondiff_argnums=(0,))
        def f(n, x):
            return x * n

        def fwd(n, x):
            assert not hasattr(n, "perturbed")  # JAX passes nondiff arguments as they are
            return x.value * n, n

        f.defvjp(fwd, lambda n, res, g: (g * res,), symbolic_zeros=True)
        return f

    n = jnp.array(3)
    assert_same(_both(make, lambda f: jax.grad(lambda x: f(n, x))(2.0)))
