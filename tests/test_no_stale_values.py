"""No cache ever returns a value computed for other inputs, globals or captured state.

Fresh lambdas of the same code share a specialisation (a measured speed-up) only when their key
is complete: code, captured values, and the globals the code reads. Mutable state (a dict, a
list, an object) makes the key incomplete: then the function is keyed by identity, as
``jax.jit`` keys it.
"""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    # The benefit kept: a fresh lambda per call over the same values reuses the rule's
    # specialisation (one trace), a different captured value does not.
    from jaxrules.rules import implicit as im

    def F(x, a):
        return x**3 - a

    def fresh(a):  # a new function object of the same code on every call
        return lambda x: F(x, a)

    x0 = jnp.array(1.0)
    jax.grad(lambda s: root(fresh(8.0), x0 * s).value)(1.0)
    n = len(im._implicit._cache)
    for _ in range(3):
        jax.grad(lambda s: root(fresh(8.0), x0 * s).value)(1.0)
    assert len(im._implicit._cache) == n
    assert float(root(fresh(27.0), x0).value) == pytest.approx(3.0)
    jax.grad(lambda s: root(fresh(27.0), x0 * s).value)(1.0)
    assert len(im._implicit._cache) > n


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


def test_threads_share_the_specialisation_cache(monkeypatch):
    from jaxrules import _custom

    monkeypatch.setattr(_custom, "_CACHE_SIZE", 3)

    @jr.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    errors = []

    def work(k):
        try:
            for i in range(30):
                x = jnp.ones(1 + (i + k) % 7)
                jax.grad(lambda x: f(x).sum())(x)
        except Exception as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
