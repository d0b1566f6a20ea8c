"""The registry and the example-input generators."""

import importlib
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrules as jr
from jaxrules import inputs


def _rule(name="r"):
    @jr.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]))
    return f


def test_register_get_list_by_tag_and_module():
    reg = jr.Registry()
    f = _rule()
    reg.register("sine", reference=jnp.sin, inputs={"x": inputs.general((3,))}, tags=("t",))(f)
    assert "sine" in reg and len(reg) == 1
    r = reg.get("sine")
    assert r.fn is f and r.reference is jnp.sin and r.tags == ("t",)
    assert r.module == __name__ and r.qualname.endswith("f")
    assert reg.rules(tag="t") == [r] and reg.rules(tag="other") == []
    assert reg.rules(module=__name__) == [r] and reg.rules(module="elsewhere") == []
    args = r.draw(jax.random.key(0), "float32")
    assert set(args) == {"x"} and args["x"].shape == (3,)


def test_unknown_rule_lists_known():
    reg = jr.Registry()
    with pytest.raises(KeyError, match=r"no rule named 'nope' is registered \(known: none\)"):
        reg.get("nope")


def test_name_taken_by_another_rule_is_an_error():
    reg = jr.Registry()
    reg.register("dup", reference=None, inputs={"x": inputs.general(3)})(_rule())

    def other(x):
        return x

    with pytest.raises(ValueError, match=r"rule name 'dup' is already registered by .*cannot take"):
        reg.register("dup", reference=None, inputs={"x": inputs.general(3)})(other)


def test_module_reload_reregisters_cleanly(tmp_path, monkeypatch):
    (tmp_path / "reload_me.py").write_text(
        textwrap.dedent(
            """
            import jax.numpy as jnp
            import jaxrules as jr

            @jr.register("reload_me_rule", reference=jnp.cos, inputs={"x": jr.inputs.general(3)})
            @jr.custom_jvp
            def f(x):
                return jnp.cos(x)

            f.defjvp(lambda p, t: (jnp.cos(p[0]), -jnp.sin(p[0]) * t[0]))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("reload_me")
    first = jr.get("reload_me_rule")
    importlib.reload(mod)
    second = jr.get("reload_me_rule")
    assert second.fn is mod.f and second is not first
    assert jr.list_rules(module="reload_me") == [second]
    del sys.modules["reload_me"]


def test_register_validates_its_arguments():
    reg = jr.Registry()
    f = _rule()
    with pytest.raises(ValueError, match=r"register\('bad'\): inputs names 'y', which is not a"):
        reg.register("bad", reference=jnp.sin, inputs={"y": inputs.general(3)})(f)
    with pytest.raises(
        TypeError, match=r"register\('bad'\): the input for 'x' must be a generator"
    ):
        reg.register("bad", reference=jnp.sin, inputs={"x": np.ones(3)})(f)
    with pytest.raises(TypeError, match=r"register\('bad'\): reference must be a plain-JAX"):
        reg.register("bad", reference=3, inputs={"x": inputs.general(3)})(f)
    with pytest.raises(ValueError, match=r"order must be an int >= 1"):
        reg.register("bad", reference=None, inputs={"x": inputs.general(3)}, order=0)(f)
    # A misspelt option names itself and the known ones (it used to be Python's bare "got an
    # unexpected keyword argument" from an internal function).
    with pytest.raises(TypeError, match=r"register\('bad'\): unknown option\(s\) tolerance;.*rtol"):
        reg.register("bad", reference=None, inputs={"x": inputs.general(3)}, tolerance=1e-3)(f)


def test_settings_are_records_validated_on_construction():
    # The checker's and the benchmark's settings are sub-records of the Rule, each validated
    # where it is made, also outside register().
    rule = jr.get("sin_product")
    assert rule.check.order == 2 and rule.check.dtypes == ("float64", "float32")
    assert rule.bench.sizes and callable(rule.bench.inputs)
    with pytest.raises(ValueError, match=r"CheckSpec: order must be an int >= 1, got 0"):
        jr.CheckSpec(order=0)
    with pytest.raises(TypeError, match=r"BenchSpec: bench_inputs must be callable"):
        jr.BenchSpec(inputs=3)
    assert jr.CheckSpec(dtypes="float32", rtol={"float32": 1e-3}).dtypes == ("float32",)


def test_joint_inputs_and_cases():
    reg = jr.Registry()

    @jr.custom_jvp(static_argnames="k")
    def f(x, y, k=1):
        return x * y * k

    f.defjvp(lambda p, t, *, k: (f(*p, k=k), k * (t[0] * p[1] + p[0] * t[1])))

    def joint(key, dtype):
        x = inputs.general((4,))(key, dtype)
        return {"x": x, "y": 2 * x}  # arguments tied together

    reg.register(
        "joint", reference=lambda x, y, k=1: x * y * k, inputs=joint, cases=[{"k": 1}, {"k": 3}]
    )(f)
    r = reg.get("joint")
    args = r.draw(jax.random.key(1), "float32", r.cases[1])
    np.testing.assert_allclose(args["y"], 2 * args["x"])
    assert args["k"] == 3
    bad = jr.Registry()
    bad.register("j2", reference=None, inputs=lambda key, dtype: (1, 2))(f)
    with pytest.raises(TypeError, match=r"rule 'j2': its joint input generator must return a dict"):
        bad.get("j2").draw(jax.random.key(0), "float32")


def test_builtin_library_is_registered():
    names = [r.name for r in jr.list_rules(module="jaxrules.rules")]
    assert "sin_product" in names
    from jaxrules.rules import sin_product

    assert jr.get("sin_product").fn is sin_product


# -- input generators ------------------------------------------------------------------------
KEY = jax.random.key(42)


def test_float64_needs_x64_mode():
    with pytest.raises(
        ValueError,
        match=r"general\(\(3,\), cond=10.0\): float64 inputs were "
        r"requested but JAX's 64-bit mode is off.*enable_x64",
    ):
        inputs.general(3)(KEY, "float64")


def test_general_is_generic_and_conditioned(x64):
    A = np.asarray(inputs.general((6, 6), cond=50.0)(KEY, "float64"))
    assert A.dtype == np.float64
    assert not np.allclose(A, A.T)
    assert np.linalg.cond(A) == pytest.approx(50.0, rel=1e-8)
    assert not np.allclose(A @ A.T, A.T @ A)  # not normal
    B = np.asarray(inputs.general((2, 5, 3))(KEY, "float32"))
    assert B.shape == (2, 5, 3) and B.dtype == np.float32
    np.testing.assert_array_equal(
        inputs.general(4)(KEY, "float32"), inputs.general(4)(KEY, "float32")
    )
    assert not np.allclose(
        inputs.general(4)(KEY, "float32"), inputs.general(4)(jax.random.key(1), "float32")
    )


def test_structured_generators(x64):
    S = np.asarray(inputs.spd(5, cond=20.0)(KEY, "float64"))
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    ev = np.linalg.eigvalsh(S)
    assert ev.min() > 0 and ev.max() / ev.min() == pytest.approx(20.0, rel=1e-8)
    Y = np.asarray(inputs.symmetric(5)(KEY, "float64"))
    np.testing.assert_allclose(Y, Y.T, atol=1e-12)
    ev = np.linalg.eigvalsh(Y)
    assert ev.min() < 0 < ev.max()
    Q = np.asarray(inputs.orthogonal(4)(KEY, "float64"))
    np.testing.assert_allclose(Q @ Q.T, np.eye(4), atol=1e-12)
    P = np.asarray(inputs.positive((3, 2), low=1.0, high=3.0)(KEY, "float32"))
    assert P.min() >= 1.0 and P.max() <= 3.0
    St = np.asarray(inputs.stable(6)(KEY, "float64"))
    assert np.linalg.eigvals(St).real.max() < 0
    assert not np.allclose(St, St.T)
    L = np.asarray(inputs.lower(4)(KEY, "float64"))
    np.testing.assert_array_equal(L, np.tril(L))
    assert np.abs(np.diag(L)).min() >= 1.0
    U = np.asarray(inputs.upper(4)(KEY, "float64"))
    np.testing.assert_array_equal(U, np.triu(U))
    ints = inputs.integer((5,), low=2, high=4)(KEY, "float32")
    assert ints.dtype == jnp.int32 and set(np.asarray(ints).tolist()) <= {2, 3}
    W = np.asarray(inputs.well_conditioned((4, 4), cond=3.0)(KEY, "float64"))
    assert np.linalg.cond(W) == pytest.approx(3.0, rel=1e-8)


def test_projectors():
    M = jnp.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(inputs.spd(3).project(M), (M + M.T) / 2)
    np.testing.assert_allclose(inputs.lower(3).project(M), jnp.tril(M))
    np.testing.assert_allclose(inputs.upper(3).project(M), jnp.triu(M))
    assert inputs.general((3, 3)).project(M) is M
    assert inputs.spd(3).structured and not inputs.general(3).structured
    reg = jr.Registry()

    @jr.custom_jvp
    def g(S, x):
        return S @ x

    g.defjvp(lambda p, t: (p[0] @ p[1], t[0] @ p[1] + p[0] @ t[1]))
    reg.register("g", reference=None, inputs={"S": inputs.spd(3), "x": inputs.general(3)})(g)
    assert reg.get("g").projector("S") is not None and reg.get("g").projector("x") is None


def test_every_library_rule_has_a_docstring_with_a_runnable_example():
    # (The examples run as doctests in CI; this guards against a docstring that is not one,
    # e.g. an expression that builds a string instead of a literal.)
    import jaxrules.rules as R

    names = [
        "sin_product",
        "matvec",
        "matvec_fixed",
        "quadratic_form",
        "linear_solve",
        "inv",
        "logdet",
        "slogdet",
        "lstsq",
        "sylvester",
        "lyapunov",
        "discrete_lyapunov",
        "eq_qp",
        "root",
        "fixed_point",
        "argmin",
    ]
    for name in names:
        fn = getattr(R, name)
        doc = getattr(fn, "__doc__", None) or getattr(getattr(fn, "fn", None), "__doc__", "")
        assert doc and ">>>" in doc, name


def test_two_rules_from_one_factory_under_one_name_is_an_error():
    reg = jr.Registry()

    def make(scale):
        @reg.register("scaled_sin", reference=lambda x: scale * jnp.sin(x),
                      inputs={"x": jr.inputs.general(3)})  # fmt: skip
        @jr.custom_jvp
        def scaled_sin(x):
            return scale * jnp.sin(x)

        scaled_sin.defjvp(lambda p, t: (scale * jnp.sin(p[0]), scale * jnp.cos(p[0]) * t[0]))
        return scaled_sin

    first = make(2.0)
    with pytest.raises(ValueError, match="made by the same factory"):
        make(3.0)
    assert reg.get("scaled_sin").fn is first  # the first one stays, not silently replaced
    # The same function registered again is not an error.
    reg.register("scaled_sin", reference=jnp.sin, inputs={"x": jr.inputs.general(3)})(first)


def _cased_rule():
    """One rule, two `jr.Case`s with their own example points; its JVP is wrong for matrices
    only, so only the second case can show it."""

    @jr.custom_jvp(static_argnames="k")
    def f(x, k=1.0):
        return k * jnp.sin(x)

    def jvp(p, t, *, k):
        (x,), (dx,) = p, t
        wrong = 2.0 if x.ndim == 2 else 1.0
        return f(x, k=k), wrong * k * jnp.cos(x) * dx

    f.defjvp(jvp)
    reg = jr.Registry()
    reg.register(
        "cased",
        reference=lambda x, k=1.0: k * jnp.sin(x),
        inputs={"x": inputs.general((3,))},
        cases=[
            jr.Case("vector", {"k": 2.0}),
            jr.Case(
                "matrix",
                {"k": 3.0},
                inputs={"x": inputs.general((2, 2))},
                bench_inputs=lambda n: {"x": inputs.general((n, n))},
            ),
        ],
    )(f)
    return reg


def test_cases_carry_their_own_inputs_and_are_selected_by_label():
    reg = _cased_rule()
    r = reg.get("cased")
    assert [dict(c) for c in r.cases] == [{"k": 2.0}, {"k": 3.0}]
    assert r.draw(jax.random.key(0), "float32", r.cases[0])["x"].shape == (3,)
    args = r.draw(jax.random.key(0), "float32", r.cases[1])
    assert args["x"].shape == (2, 2) and args["k"] == 3.0
    assert r.draw(jax.random.key(0), "float32", r.cases[1], size=4)["x"].shape == (4, 4)
    assert r.bench_cases() == [0, 1]
    assert r.select("matrix") == 1 and r.select(0) == 0
    with pytest.raises(
        ValueError, match=r"rule 'cased' has no case 'pos'.*0 \(vector\), 1 \(matrix\)"
    ):
        r.select("pos")
    # The checker runs each case at its own point: only the matrix case shows the bug.
    assert jr.check("cased", registry=reg, case="vector", seeds=1, dtypes=("float32",)).passed
    report = jr.check("cased", registry=reg, seeds=1, dtypes=("float32",), transforms=("jit",))
    assert {f.case for f in report.failures} == {1}
    assert report.coverage.cases == 2
    # The reproducer selects the registered case by index (its inputs come with it).
    code = report.failures[0].reproducer()
    assert "case=1" in code and "cases=" not in code
    again = jr.check(
        "cased", registry=reg, case=1, seeds=1, dtypes=("float32",), transforms=("jit",)
    )
    assert not again.passed and again.coverage.cases == 1


def test_case_inputs_are_validated_at_registration():
    with pytest.raises(ValueError, match=r"register\('bad'\): inputs names 'y'"):
        jr.Registry().register(
            "bad",
            reference=jnp.sin,
            inputs={"x": inputs.general((3,))},
            cases=[jr.Case("c", inputs={"y": inputs.general((3,))})],
        )(lambda x: jnp.sin(x))


def test_failure_block_reproduces_its_own_case():
    reg = _cased_rule()
    report = jr.check("cased", registry=reg, seeds=1, dtypes=("float32",), transforms=("jit",))
    (block,) = report.failure_blocks()
    assert "case 1" in block and "case=1" in block


def test_generator_repr_reproduces_every_option():
    # A reproducer prints generators by repr: general(scale=60) printed without its scale.
    for g in (jr.inputs.general((8,), scale=60.0), jr.inputs.general((3, 3), cond=5.0)):
        again = eval(repr(g), {"jr": jr})
        key = jax.random.key(4)
        np.testing.assert_array_equal(g(key, "float32"), again(key, "float32"))
