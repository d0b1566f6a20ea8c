"""The caching contract: no cache ever returns a value computed for other Python state.

With the same rules, jaxrules returns what ``jax.custom_jvp`` / ``jax.custom_vjp`` would, under
every transformation, after any change to the Python state a function or rule reads (module
globals, class and module attributes, captured dicts and objects, ``-0.0`` vs ``0.0``). The
decorators keep nothing across calls; the solvers' compiled programs are shared between fresh
lambdas of the same code only when their key is complete (code, captured values, the globals
the code reads), and any state that can change in place makes the key unique.
"""

import sys
import threading
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_tree_close

import jaxrules as jr
from jaxrules.rules import argmin, fixed_point, odeint, root

A = 8.0
HP = {"lam": 1.0}


def test_root_sees_a_changed_global():
    global A
    A = 8.0
    assert float(root(lambda x: x**3 - A, jnp.array(1.0)).value) == pytest.approx(2.0)
    A = 27.0
    try:
        assert float(root(lambda x: x**3 - A, jnp.array(1.0)).value) == pytest.approx(3.0)
        g = jax.grad(lambda s: root(lambda x: x**3 - A * s, jnp.array(1.0)).value)(1.0)
        assert float(g) == pytest.approx(A / (3 * 9.0), rel=1e-4)  # d/ds (27 s)^(1/3) at 1
    finally:
        A = 8.0


def test_argmin_sees_a_changed_captured_dict():
    def solve(c):
        return argmin(
            lambda x: 0.5 * HP["lam"] * jnp.sum((x - c) ** 2) + jnp.sum(x**2), jnp.zeros(2)
        )

    c = jnp.array([1.0, -2.0])
    HP["lam"] = 1.0
    x1 = solve(c).value
    g1 = jax.grad(lambda c: jnp.sum(solve(c).value))(c)
    HP["lam"] = 4.0
    try:
        x2 = solve(c).value
        g2 = jax.grad(lambda c: jnp.sum(solve(c).value))(c)
    finally:
        HP["lam"] = 1.0
    # minimiser of lam/2 |x-c|^2 + |x|^2: x = lam c / (lam + 2)
    np.testing.assert_allclose(x1, c / 3.0, rtol=1e-5)
    np.testing.assert_allclose(x2, 4.0 * c / 6.0, rtol=1e-5)
    np.testing.assert_allclose(g1, np.full(2, 1 / 3), rtol=1e-5)
    np.testing.assert_allclose(g2, np.full(2, 4 / 6), rtol=1e-5)


def test_odeint_sees_a_changed_global_and_captured_dict():
    global A
    ts = jnp.array([0.0, 0.5])
    decay = lambda y, t: -A * y
    A = 1.0
    try:
        first = float(odeint(lambda y, t: -A * y, jnp.array(1.0), ts).ys[1])
        A = 2.0
        second = float(odeint(lambda y, t: -A * y, jnp.array(1.0), ts).ys[1])
        assert (first, second) == pytest.approx((np.exp(-0.5), np.exp(-1.0)), rel=1e-4)
        grad = jax.grad(lambda y0: odeint(decay, y0, ts).ys[1])(1.0)
        assert float(grad) == pytest.approx(np.exp(-1.0), rel=1e-4)
    finally:
        A = 8.0
    hp = {"k": 1.0}
    f = lambda y, t: -hp["k"] * y
    assert float(odeint(f, jnp.array(1.0), ts).ys[1]) == pytest.approx(np.exp(-0.5), rel=1e-4)
    hp["k"] = 3.0
    assert float(odeint(f, jnp.array(1.0), ts).ys[1]) == pytest.approx(np.exp(-1.5), rel=1e-4)


def test_fixed_point_sees_a_changed_captured_object():
    class Params:
        rate = 0.5

    p = Params()

    def run():
        return fixed_point(lambda x: p.rate * x + 1.0, jnp.array(0.0)).value

    assert float(run()) == pytest.approx(2.0, rel=1e-5)
    p.rate = 0.75
    assert float(run()) == pytest.approx(4.0, rel=1e-5)


def test_fresh_lambdas_with_the_same_complete_key_share_a_trace():
    # The benefit kept: a fresh lambda per call over the same values reuses the solver's
    # compiled program (its key is complete), a different captured value does not.
    from jaxrules.rules import implicit as im

    def F(x, a):
        return x**3 - a

    def fresh(a):  # a new function object of the same code on every call
        return lambda x: F(x, a)

    x0 = jnp.array(1.0)
    jax.grad(lambda s: root(fresh(8.0), x0 * s).value)(1.0)
    n = im._solve_and_test._cache_size()
    for _ in range(3):
        jax.grad(lambda s: root(fresh(8.0), x0 * s).value)(1.0)
    assert im._solve_and_test._cache_size() == n
    assert float(root(fresh(27.0), x0).value) == pytest.approx(3.0)
    jax.grad(lambda s: root(fresh(27.0), x0 * s).value)(1.0)
    assert im._solve_and_test._cache_size() > n


@pytest.mark.parametrize("fill", [1, 1.0, True])
def test_static_values_that_compare_equal_are_different_keys(fill):
    @jr.custom_jvp(static_argnames="fill")
    def full(x, fill):
        return x + jnp.full(3, fill)

    full.defjvp(lambda p, t, *, fill: (full(p[0], fill), t[0]))
    outs = {}
    for v in (1, 1.0, True):
        outs[type(v)] = jax.jit(lambda x, v=v: full(x, v))(jnp.zeros((), jnp.int32))
    assert outs[int].dtype == jnp.int32
    assert outs[float].dtype == jnp.float32
    assert outs[bool].dtype == jnp.int32  # int32 + bool
    assert full(jnp.zeros((), jnp.int32), fill).dtype == jnp.result_type(
        jnp.zeros((), jnp.int32), jnp.full(3, fill)
    )


def test_concurrent_calls_from_threads():
    @jr.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    errors = []

    def work(k):
        try:
            for i in range(20):
                x = jnp.ones(1 + (i + k) % 7)
                g = jax.grad(lambda x: f(x).sum())(x)
                np.testing.assert_allclose(g, np.cos(1.0), rtol=1e-6)
        except Exception as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# -- the decorators against JAX's, property-style ---------------------------------------------
SCALE = 2.0
WEIGHT = jnp.array(2.0)


class Config:
    scale = 2.0


user_module = types.ModuleType("user_config")  # a user's module: its attributes can change
user_module.scale = 2.0
HYPER = {"scale": 2.0}


def _state(kind):
    """(read, set): a function reading one kind of Python state, and a setter for it."""
    if kind == "global":
        return (lambda: SCALE), lambda v: globals().__setitem__("SCALE", v)
    if kind == "global_array":
        return (lambda: WEIGHT), lambda v: globals().__setitem__("WEIGHT", jnp.array(v))
    if kind == "class_attribute":
        return (lambda: Config.scale), lambda v: setattr(Config, "scale", v)
    if kind == "module_attribute":
        return (lambda: user_module.scale), lambda v: setattr(user_module, "scale", v)
    get = HYPER.get  # a captured bound method of a dict
    return (lambda: get("scale")), lambda v: HYPER.__setitem__("scale", v)


def _pair(flavour, read):
    """The same function and rules under jaxrules' decorator and JAX's (for both rules, JAX's
    custom_jvp with the JVP rule: the VJP rule computes the same derivative)."""

    def make(deco, with_jvp, with_vjp):
        @deco
        def f(x):
            return read() * jnp.sin(x)

        if with_jvp:
            f.defjvp(lambda p, t: (read() * jnp.sin(p[0]), read() * jnp.cos(p[0]) * t[0]))
        if with_vjp:
            f.defvjp(lambda x: (read() * jnp.sin(x), x), lambda x, g: (read() * jnp.cos(x) * g,))
        return f

    jvp, vjp = flavour in ("jvp", "both"), flavour in ("vjp", "both")
    theirs = (
        make(jax.custom_vjp, False, True) if flavour == "vjp" else make(jax.custom_jvp, True, False)
    )
    return make(jr.custom_jvp, jvp, vjp), theirs


def _transforms(f, x, forward):
    loss = lambda x: jnp.sum(f(x) ** 2)
    out = {
        "eager": f(x),
        "vmap": jax.vmap(f)(x),
        "fresh jit": jax.jit(lambda x: f(x))(x),
        "grad": jax.grad(loss)(x),
        "value_and_grad": jax.value_and_grad(loss)(x),
        "vmap of grad": jax.vmap(jax.grad(lambda x: jnp.sum(f(x))))(x),
        "scan": jax.lax.scan(lambda c, xi: (c + jnp.sum(f(xi)), f(xi)), 0.0, x),
        "grad of checkpoint": jax.grad(jax.checkpoint(loss))(x),
        "grad of fresh jit": jax.grad(jax.jit(lambda x: loss(x)))(x),
    }
    if forward:  # (JAX's custom_vjp has no forward mode)
        out["jvp"] = jax.jvp(f, (x,), (jnp.ones_like(x),))
        out["jvp of fresh jit"] = jax.jvp(jax.jit(lambda x: f(x)), (x,), (jnp.ones_like(x),))
    return out


@pytest.mark.parametrize(
    "kind", ["global", "global_array", "class_attribute", "module_attribute", "captured_get"]
)
@pytest.mark.parametrize("flavour", ["jvp", "vjp", "both"])
def test_decorators_see_changed_state_as_jax_does(kind, flavour):
    read, set_ = _state(kind)
    mine, theirs = _pair(flavour, read)
    x = jnp.array([0.3, -1.2, 2.0])
    try:
        for value in (2.0, 3.0, -0.5):
            set_(value)
            forward = flavour != "vjp"
            got, want = _transforms(mine, x, forward), _transforms(theirs, x, forward)
            for name in want:
                assert_tree_close(got[name], want[name], rtol=1e-6, atol=1e-6)
            # and the value really changed (JAX's reference is not stale either)
            np.testing.assert_allclose(
                got["eager"], np.asarray(read()) * np.sin(np.asarray(x)), rtol=1e-6
            )
    finally:
        set_(2.0)


# -- the solvers: what `root` used to key by identity or by `==` ------------------------------
class RootConfig:
    target = 8.0


root_module = types.ModuleType("root_config")
root_module.target = 8.0
ROOT_HYPER = {"target": 8.0}


def _residual(kind, z=0.0):
    # One code object per kind: a fresh lambda of the same code on every call, as users write.
    if kind == "class_attribute":
        return lambda x: x**3 - RootConfig.target
    if kind == "module_attribute":
        return lambda x: x**3 - root_module.target
    if kind == "captured_get":
        get = ROOT_HYPER.get
        return lambda x: x**3 - get("target")
    # a captured signed zero: 0.0 == -0.0, yet they are different constants
    return lambda x: x**3 - (27.0 if np.signbit(z) else 8.0)


def _set_target(kind, v):
    RootConfig.target = v
    root_module.target = v
    ROOT_HYPER["target"] = v


@pytest.mark.parametrize(
    "kind", ["class_attribute", "module_attribute", "captured_get", "signed_zero"]
)
def test_root_sees_changed_state(kind):
    x0 = jnp.array(1.0)
    try:
        _set_target(kind, 8.0)
        first = float(root(_residual(kind, 0.0), x0).value)
        _set_target(kind, 27.0)
        second = float(root(_residual(kind, -0.0), x0).value)
        g = jax.grad(lambda s: root(_residual(kind, -0.0), x0 * s).value)(1.0)
    finally:
        _set_target(kind, 8.0)
    assert (first, second) == pytest.approx((2.0, 3.0), rel=1e-5)
    assert float(g) == 0.0  # the root does not depend on the starting point


def test_solver_key_of_a_module_and_a_class():
    from jaxrules import _closure

    # JAX's and NumPy's modules and functions are constants; a user's module, class, or a
    # method bound to a dict are not (never a cache hit).
    assert _closure._key(jnp) == _closure._key(jnp)
    assert _closure._key(jnp.sin) == _closure._key(jnp.sin)
    assert _closure._key(np.float32) == _closure._key(np.float32)
    for value in (root_module, RootConfig, ROOT_HYPER.get, sys.modules[__name__]):
        assert _closure._key(value) != _closure._key(value)
    assert _closure._key(0.0) != _closure._key(-0.0)
    assert _closure._key(float("nan")) == _closure._key(float("nan"))
