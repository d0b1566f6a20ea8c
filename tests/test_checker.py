"""The checker flags every wrong rule of the corpus, naming the check and argument, and passes
the correct ones."""

import concurrent.futures
import contextlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import wrong_rules as W
from conftest import needs_hijax

import jaxrules as jr
from jaxrules import inputs as I

#: Wrong rules whose checks are costly (40-50 s: the reference's derivatives, or the Student-t
#: rule's second-order programs compiled afresh): the slow tier's.
_SLOW_WRONG = {
    "fractional_power_scalar_derivative",
    "student_t_cdf_large_df_in_1_over_nu",
    "betaincinv_unbracketed",  # its implicit JVP is traced per transform: 6-9 s
}


@needs_hijax
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.slow] if n in _SLOW_WRONG else [])
        for n in sorted(W.EXPECTED)
    ],
)
def test_wrong_rule_is_flagged(name):
    check, argument, only = W.EXPECTED[name]
    transforms = ("eager", "jit", "vmap")
    # Single precision: float32, or complex64 for the mistakes only complex numbers show.
    dtype = "float32" if "float32" in W.WRONG.get(name).check.dtypes else "complex64"
    if name in W.DEFAULTS_ONLY:  # only the defaults (seeds, dtypes) show this mistake
        report = jr.check(name, registry=W.WRONG)
        dtype = next(f.dtype for f in report.failures)
    else:
        report = jr.check(name, registry=W.WRONG, seeds=1, dtypes=(dtype,), transforms=transforms)
    assert not report.passed
    hits = [
        f
        for f in report.failures
        if f.check == check and (argument is None or f.argument == argument)
    ]
    assert hits, f"expected a failing {check!r} check on {argument!r}:\n{report}"
    if only is not None:
        assert {f.transform for f in report.failures if f.transform} == set(only), report
    with pytest.raises(jr.RuleCheckError) as info:
        report.raise_if_failed()
    assert isinstance(info.value, AssertionError)
    msg = str(info.value)
    assert name in msg and dtype in msg and check in msg and "jr.check(" in msg
    if argument is not None:
        assert f"argument {argument}" in msg


# The twins of the matrix rules take 5-10 s each; the fast tier keeps the cheap ones (the slow
# tier's 20-seed sweep and `jaxrules check` on the library cover correct matrix rules too).
_SLOW_TWINS = {
    "betaincinv_skewed",
    "solve",
    "inv",
    "logdet",
    "quadratic_form",
    "sqrtm",
    "polar",
    "logm",
    "fractional_matrix_power",
    "expm",
    "gammainc",
    "gammainc_large_shape",
    "betainc",
    "student_t_cdf",
    "student_t_cdf_large_df",
    "log_iv_debye",
}


@needs_hijax
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(r.name, marks=[pytest.mark.slow] if r.name in _SLOW_TWINS else [])
        for r in W.RIGHT
    ],
)
def test_correct_twins_pass(name):
    report = jr.check(name, registry=W.RIGHT, seeds=2)
    assert report.passed, str(report)
    checks = {r.check for r in report.results}
    if any(getattr(c, "witness", "jax") == "differences" for c in W.RIGHT.get(name).cases):
        # Witnessed by finite differences of the reference (repeated eigenvalues).
        want = {"primal", "jvp_fd", "consistency", "jvp_linear", "vjp_linear", "rule_ran"}
        want |= {"jvp_jvp_fd", "hvp_fd"} if W.RIGHT.get(name).check.order >= 2 else set()
    else:
        want = {"primal", "jvp_primal", "vjp_primal", "jvp", "vjp", "jvp_linear"}
        want |= {"vjp_linear", "consistency", "rule_ran", "structure"}
        if W.RIGHT.get(name).check.order >= 2:
            want |= {"hvp", "hvp_primal", "jvp_jvp"}
    assert want <= checks, want - checks
    if {"float32", "complex64"} & set(W.RIGHT.get(name).check.dtypes):
        assert "x64" in checks
    assert {r.transform for r in report.results} == {
        None,
        "eager",
        "jit",
        "vmap",
        "vmap(directions)",
        "vmap(point)",
        "vmap(inside)",
    }
    assert {r.dtype for r in report.results} == set(W.RIGHT.get(name).check.dtypes)


@needs_hijax
def test_report_names_everything_and_reproduces():
    report = jr.check(
        "factor_of_two", registry=W.WRONG, seeds=[5], dtypes=("float64",), transforms=("jit",)
    )
    (fail,) = [f for f in report.failures if f.check == "vjp"]
    assert (fail.rule, fail.dtype, fail.transform, fail.argument, fail.output, fail.seed) == (
        "factor_of_two",
        "float64",
        "jit",
        "x",
        "out",
        5,
    )
    assert fail.error > 0.3 and fail.tol == pytest.approx(1e-9)
    assert fail.reproducer() == (
        "import jaxrules as jr\n"
        "from wrong_rules import WRONG\n"
        "jr.check('factor_of_two', registry=WRONG, dtypes=('float64',), transforms=('jit',), "
        "seeds=[5]).raise_if_failed()"
    )
    assert f"error {fail.error:.3g} > tolerance 1e-09 (seed 5)" in fail.describe()
    assert report.worst_ratio == pytest.approx(fail.error / fail.tol)
    assert "FAIL" in str(report)
    # The reproducer runs as it is, in a fresh namespace, and fails the same way.
    with pytest.raises(jr.RuleCheckError, match="factor_of_two"):
        exec(fail.reproducer(), {})


@needs_hijax
def test_one_block_per_argument_and_output():
    report = jr.check("wrong_sign", registry=W.WRONG, seeds=2, dtypes=("float32", "float64"))
    blocks = report.failure_blocks()
    # Every failing check and transform of argument x lands in one block with one reproducer.
    assert len(blocks) == len({(f.argument, f.output) for f in report.failures}), blocks
    (x_block,) = [b for b in blocks if "argument x," in b]
    assert x_block.count("reproduce:") == 1 and "jvp" in x_block and "jit" in x_block
    # Batched, the JVP of all inputs at once is checked: its block names every batching.
    (all_block,) = [b for b in blocks if "all arguments, output out" in b]
    assert "vmap, vmap(directions), vmap(inside), vmap(point)" in all_block
    text = report.failure_text()
    assert text.startswith(f"{len(report.failures)} check(s) failed, in {len(blocks)} place(s)")


def test_pass_report_states_coverage():
    report = jr.check("sin_product", registry=W.RIGHT, seeds=1, transforms=("jit",))
    assert report.failure_text().startswith(f"all {len(report.results)} checks passed")
    assert "transforms jit;" in str(report) and "seeds [0]" in str(report)
    # Only requested transforms label results (None: checks that need no transform).
    assert {r.transform for r in report.results} == {None, "jit"}
    assert "eager" not in str(report)


def test_rule_inside_a_jitted_helper_is_seen_to_run():
    # A registered function whose jaxrules rule sits inside a `jax.jit`-compiled helper (as
    # `qp`'s does): JAX caches the helper's derivatives, so a second trace runs no Python rule.
    # The check must still see the rule, on every run (a false failure before).
    @jr.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    helper = jax.jit(lambda x: 2.0 * f(x))
    reg = jr.Registry()
    reg.register(
        "jitted_helper", reference=lambda x: 2.0 * jnp.sin(x), inputs={"x": I.general((3,))}
    )(lambda x: helper(x))
    for _ in range(2):
        report = jr.check("jitted_helper", registry=reg, seeds=1, transforms=("jit",))
        ran = [r for r in report.results if r.check == "rule_ran"]
        assert ran and all(r.passed for r in ran), str(report)


def test_rule_ran_traces_without_jit_only_when_it_must(monkeypatch):
    # Without jit, loops run their bodies in Python step by step (a 300-step RK4 loop took 50 s
    # to trace): the checker traces so only where the ordinary trace saw no rule run.
    from jaxrules._check import _run

    uses = []

    @contextlib.contextmanager
    def spy():
        uses.append(1)
        with jax.disable_jit():
            yield

    monkeypatch.setattr(_run.jax, "disable_jit", spy)
    looped = jr.custom_vjp(lambda x: jax.lax.fori_loop(0, 300, lambda i, y: jnp.sin(y), x))
    looped.defvjp(
        lambda x: (looped(x), x),
        lambda x, g: (
            jax.vjp(lambda x: jax.lax.fori_loop(0, 300, lambda i, y: jnp.sin(y), x), x)[1](g)[0],
        ),
    )
    reg = jr.Registry()
    ref = lambda x: jax.lax.fori_loop(0, 300, lambda i, y: jnp.sin(y), x)
    reg.register("looped", reference=ref, inputs={"x": I.general((3,))})(looped)
    report = jr.check("looped", registry=reg, seeds=1, transforms=("jit",), dtypes=("float64",))
    assert report.passed and not uses, str(report)


def test_unregistered_function_audit_jax_builtin():
    report = jr.check(
        jnp.linalg.inv,
        reference=lambda a: jnp.linalg.solve(a, jnp.eye(4)),
        inputs={"a": I.general((4, 4))},
        seeds=2,
    )
    assert report.passed, str(report)
    # rule_ran does not apply to a function that is not a jaxrules rule.
    assert "rule_ran" not in {r.check for r in report.results}


def test_unregistered_wrong_rule_is_flagged():
    @jax.custom_vjp
    def solve(A, b):
        return jnp.linalg.solve(A, b)

    solve.defvjp(
        lambda A, b: (solve(A, b), (A, solve(A, b))),
        lambda r, g: (-jnp.outer(jnp.linalg.solve(r[0], g), r[1]), jnp.linalg.solve(r[0], g)),
    )
    report = jr.check(
        solve,
        reference=jnp.linalg.solve,
        inputs={"A": I.general((4, 4)), "b": I.general(4)},
        seeds=1,
        transforms=("jit",),
    )
    assert {f.argument for f in report.failures if f.check == "vjp"} == {"A", "b"}


def test_unregistered_needs_inputs():
    with pytest.raises(TypeError, match=r"check: 'sin' is not registered; pass inputs="):
        jr.check(jnp.sin)


def _sym_cotangent_rule():
    v = jnp.array([1.0, -2.0, 0.5])

    @jr.custom_vjp
    def apply_spd(S):
        return S @ v

    # Convention: the cotangent of a symmetric S is symmetrised, sym(ȳ vᵀ).
    apply_spd.defvjp(
        lambda S: (S @ v, None), lambda _, g: (0.5 * (jnp.outer(g, v) + jnp.outer(v, g)),)
    )
    return apply_spd, lambda S: S @ v


@needs_hijax
def test_structured_input_checked_on_its_subspace():
    f, ref = _sym_cotangent_rule()
    ok = jr.check(f, reference=ref, inputs={"S": I.spd(3)}, seeds=2)
    assert ok.passed, str(ok)
    # The same rule on general matrices is wrong: its cotangent is only right after projection.
    bad = jr.check(f, reference=ref, inputs={"S": I.general((3, 3))}, seeds=1)
    assert {f.check for f in bad.failures} >= {"vjp"}


def test_finite_difference_witness_without_reference():
    right = W.RIGHT.get("sin_product").fn
    report = jr.check(
        right,
        reference=None,
        inputs={"x": I.general(4), "y": I.general(4)},
        seeds=1,
        dtypes=("float64",),
        transforms=("eager", "jit"),
    )
    assert report.passed, str(report)
    assert {"jvp_fd", "jvp_linear", "vjp_linear", "consistency"} <= {
        r.check for r in report.results
    }
    wrong = W.WRONG.get("wrong_sign").fn
    report = jr.check(
        wrong,
        reference=None,
        inputs={"x": I.general(4), "y": I.general(4)},
        seeds=1,
        dtypes=("float64",),
        transforms=("eager", "jit"),
    )
    # Per argument under jit; all arguments at once in the eager smoke test.
    assert {(f.check, f.argument, f.transform) for f in report.failures} >= {
        ("jvp_fd", "x", "jit"),
        ("jvp_fd", None, "eager"),
    }


def test_tolerance_overrides():
    loose = jr.check("factor_of_two", registry=W.WRONG, seeds=1, rtol=10.0, dtypes=("float32",))
    assert loose.passed
    strict = jr.check("sin_product", registry=W.RIGHT, seeds=1, rtol=1e-12, dtypes=("float64",))
    tols = {r.tol for r in strict.results if r.check in ("jvp", "vjp")}
    assert min(tols) == 1e-12  # the floor is the given rtol (calibration may only raise it)


def test_unknown_transform():
    with pytest.raises(ValueError, match=r"check\('sin_product'\): unknown transform 'pmap'"):
        jr.check("sin_product", transforms=("pmap",))


def test_second_order_only_when_declared():
    report = jr.check(
        "wrong_only_at_second_order", registry=W.WRONG, seeds=1, order=1, dtypes=("float32",)
    )
    assert report.passed
    assert "hvp" not in {r.check for r in report.results}


@pytest.mark.slow
@pytest.mark.parametrize("registry_name", ["library", "corpus"])
def test_no_false_failures_over_20_seeds(registry_name):
    # The whole library under jit in both dtypes over 20 seeds (`jaxrules check`, the README's
    # main job that .ci/run runs on every JAX leg, covers the other transforms with 3 seeds).
    if registry_name == "library":
        rules = [(r.name, None) for r in jr.list_rules(module="jaxrules.rules")]
    else:
        rules = [(r.name, W.RIGHT) for r in W.RIGHT]
    # Rules in parallel threads, largest first, as `jaxrules check` runs them (XLA compiles
    # release the GIL).
    from jaxrules._cli import _size

    if registry_name == "library":
        rules.sort(key=lambda nr: _size(jr.get(nr[0])), reverse=True)
    check = lambda nr: jr.check(nr[0], registry=nr[1], seeds=20, transforms=("jit",))
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as ex:
        reports = list(ex.map(check, rules))
    for report in reports:
        assert report.passed, str(report)


_ = np


# -- float64 calibration -----------------------------------------------------------------------
@jr.custom_jvp
def _softplus(x):
    return jnp.logaddexp(x, 0.0)


@_softplus.defjvp
def _softplus_jvp(p, t):
    (x,), (dx,) = p, t
    return _softplus(x), jax.nn.sigmoid(x) * dx


def _naive_softplus(x):
    return jnp.log1p(jnp.exp(x))


@needs_hijax
@pytest.mark.parametrize(
    "seeds",
    [
        pytest.param([2, 3], id="a-widened-and-a-plain-seed"),
        pytest.param(range(20), id="20-seeds", marks=pytest.mark.slow),
    ],
)
def test_float64_tolerance_calibrated_where_the_reference_cancels(seeds):
    # JAX's float64 second derivative of log1p(exp(x)) cancels at large x (an error of 1e-4
    # relative, a step function of x): the first checker failed 7 of these 20 seeds (the
    # slow tier runs all 20; seed 2 is one where the tolerance widens, seed 3 one where not).
    reports = [
        jr.check(
            _softplus,
            reference=_naive_softplus,
            inputs={"x": I.general((8,), scale=60.0)},
            order=2,
            dtypes=("float64",),
            transforms=("jit",),
            seeds=[s],
        )
        for s in seeds
    ]
    assert all(r.passed for r in reports), [str(r) for r in reports if not r.passed]
    widened = [n for r in reports for n in r.notes]
    assert widened and "rounding noise" in widened[0].note and widened[0].tol > 1e-9
    assert "widened by calibration" in str(next(r for r in reports if r.notes))


@needs_hijax
def test_float32_softplus_against_a_naive_reference_passes():
    # In float32 at |x| ≳ 17 the stable rule's second derivative σ(x)(1 − σ(x)) rounds to 0
    # (true: 1e-12 ... 1e-40), and the naive reference log1p(exp(x)) overflows, so its float32
    # derivatives (the calibration) are NaN: these seeds failed with "error 1 > tolerance
    # 5e-05". The checker then also calibrates against JAX's own float32 derivative of the
    # rule's function with its rules removed (logaddexp, differentiated by JAX): it is as
    # inexact there, and that is what float32 allows.
    notes = []
    for seed in (1, 2, 4):
        report = jr.check(
            _softplus,
            reference=_naive_softplus,
            inputs={"x": I.general((8,), scale=60.0)},
            order=2,
            dtypes=("float32",),
            transforms=("jit",),
            seeds=[seed],
            scales=(),  # (the registered point alone: its notes are the ones asserted)
        )
        assert report.passed, str(report)
        notes += [n.note for n in report.notes]
    assert any("its rules removed" in n for n in notes), notes
    # ... and a wrong rule is still flagged at such points (JAX's own derivative of the
    # undecorated function is right where the rule is not: no excuse).
    wrong = jr.custom_jvp(lambda x: jnp.logaddexp(x, 0.0))
    wrong.defjvp(lambda p, t: (wrong(p[0]), jax.nn.sigmoid(p[0]) * 1.01 * t[0]))
    report = jr.check(
        wrong,
        reference=_naive_softplus,
        inputs={"x": I.general((8,), scale=60.0)},
        dtypes=("float32",),
        transforms=("jit",),
        seeds=[1],
    )
    assert not report.passed


@needs_hijax
def test_a_failure_at_a_scaled_point_names_the_scale_and_reproduces():
    report = jr.check("wrong_for_large_inputs", registry=W.WRONG, seeds=1, dtypes=("float64",),
                      transforms=("jit",))  # fmt: skip
    assert "inputs also × 0.01, 100" in str(report.coverage)
    fail = next(f for f in report.failures if f.check == "jvp")
    assert fail.scale == 100.0 and "inputs × 100" in fail.outcome()
    code = fail.reproducer()
    assert "scales=(100.0,)" in code
    with pytest.raises(jr.RuleCheckError):
        exec(code, {})
    # Without scaled points the default check misses it (the O(1) points never reach |x| > 20).
    assert jr.check("wrong_for_large_inputs", registry=W.WRONG, scales=()).passed


def test_scales_are_validated_and_only_scalable_generators_scale():
    with pytest.raises(ValueError, match=r"register\('s'\): scales must be a sequence of finite"):
        jr.Registry().register("s", reference=jnp.sin, inputs={"x": I.general((2,))},
                               scales=(0.0,))(jnp.sin)  # fmt: skip
    with pytest.raises(ValueError, match=r"orthogonal\(3\): its draws are not valid inputs"):
        I.orthogonal(3).scaled(2.0)
    reg = jr.Registry()
    reg.register("u", reference=jnp.dot, inputs={"a": I.general((3,)), "b": I.orthogonal(3)})(
        jnp.dot
    )
    rec = reg.get("u")
    key = jax.random.key(0)
    small, one = rec.draw(key, "float32", scale=0.01), rec.draw(key, "float32")
    np.testing.assert_allclose(small["a"], 0.01 * one["a"], rtol=1e-6)
    np.testing.assert_array_equal(small["b"], one["b"])  # orthogonal: as it is
    assert repr(I.general((3,)).scaled(100.0)) == "jr.inputs.general((3,), cond=10.0).scaled(100.0)"


@needs_hijax
def test_float64_calibration_does_not_excuse_a_small_error():
    @jr.custom_jvp
    def sin(x):
        return jnp.sin(x)

    sin.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * (1 + 1e-6) * t[0]))
    report = jr.check(
        sin, reference=jnp.sin, inputs={"x": I.general(4)}, dtypes=("float64",), seeds=1
    )
    assert {f.check for f in report.failures} >= {"jvp", "vjp"}
    assert all(f.tol == pytest.approx(1e-9) for f in report.failures if f.check == "jvp")


# -- nothing vacuous ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seeds": 0}, "seeds is empty"),
        ({"seeds": []}, "seeds is empty"),
        ({"dtypes": ()}, "dtypes is empty"),
        ({"transforms": ()}, "transforms is empty"),
        ({"directions": 0}, "directions must be an int >= 1"),
        ({"order": 0}, "order must be an int >= 1"),
        ({"dtypes": ("int32",)}, "dtypes must be floating"),
    ],
)
def test_checking_nothing_is_an_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jr.check("sin_product", registry=W.RIGHT, **kwargs)


def test_nothing_to_differentiate_is_an_error():
    with pytest.raises(ValueError, match="nothing was compared"):
        jr.check(lambda n: n * 2, reference=lambda n: n * 2, inputs={"n": I.integer(3)}, seeds=1)


# -- any signature ------------------------------------------------------------------------------
def test_positional_only_parameters_audit_jax_ufuncs():
    report = jr.check(
        jnp.sin, reference=jnp.sin, inputs={"x": I.general(5)}, seeds=1, transforms=("jit",)
    )
    assert report.passed, str(report)
    # The reproducer names the function by its public path.
    assert "import jax.numpy" in report.results[0].reproducer()
    assert "jr.check(jax.numpy.sin," in report.results[0].reproducer()

    def f(x, /, y, *, scale=2.0):
        return scale * jnp.sin(x) * y

    report = jr.check(f, reference=f, inputs={"x": I.general(3), "y": I.general(3)}, seeds=1)
    assert report.passed, str(report)


def test_var_positional_parameters():
    def total(*xs):
        return sum(jnp.sin(x) for x in xs)

    gen = lambda k, d: (I.general(3)(k, d), I.general(3)(jax.random.fold_in(k, 1), d))
    report = jr.check(total, reference=total, inputs={"xs": gen}, seeds=1, transforms=("jit",))
    assert report.passed, str(report)
    assert {r.argument for r in report.results if r.check == "jvp"} >= {"xs[0]", "xs[1]"}


def test_report_leaves_out_an_all_arguments_block_the_per_argument_one_covers():
    report = jr.check("missing_term", registry=W.WRONG, seeds=1, dtypes=("float64",),
                      transforms=("jit",))  # fmt: skip
    assert {f.argument for f in report.failures} == {"y", None}  # failed for both ...
    blocks = report.failure_blocks()
    assert len(blocks) == 1 and "argument y" in blocks[0]  # ... one block says it
    assert "(transform -: what does not depend on one" in str(report)


def test_differences_witness_is_validated_and_needs_a_reference():
    with pytest.raises(
        ValueError, match=r"Case\('r'\): witness must be one of 'jax', 'differences'"
    ):
        jr.Case("r", witness="fd")
    reg = jr.Registry()
    case = jr.Case("r", inputs={"x": jr.inputs.general((3,))}, witness="differences")
    reg.register("plain", reference=None, inputs={"x": jr.inputs.general((3,))}, cases=[case])(
        jnp.sin
    )
    with pytest.raises(ValueError, match=r"check\('plain'\): case 'r' asks for witness"):
        jr.check("plain", registry=reg)


def _raises_in_float64(x):
    if x.dtype == jnp.float64:
        raise ValueError("no float64 here")
    return jnp.sin(x)


@pytest.mark.parametrize("witness", ["differences of the reference", "differences of the rule"])
def test_a_witness_that_raises_is_reported_not_raised(witness):
    # Finite differences run in float64 only when a comparison asks for them; a reference (or,
    # without one, the rule's own function) that raises there was an exception out of
    # jr.check, which ended `jaxrules check` for every rule. Now: a failure of that rule.
    @jr.custom_jvp
    def f(x):
        return _raises_in_float64(x)

    @f.defjvp
    def _(p, t):
        return _raises_in_float64(p[0]), jnp.cos(p[0]) * t[0]

    reg = jr.Registry()
    inputs = {"x": jr.inputs.general((3,))}
    if witness == "differences of the reference":
        case = jr.Case("r", inputs=inputs, witness="differences")
        reg.register("f", reference=_raises_in_float64, inputs=inputs, cases=[case])(f)
        check = "reference"
    else:
        reg.register("f", reference=None, inputs=inputs)(f)
        check = "primal"
    report = jr.check("f", registry=reg, dtypes=("float32",), seeds=1, transforms=("jit",))
    assert not report.passed
    failed = {(r.check, r.transform) for r in report.failures}
    assert (check, "jit") in failed, str(report)
    assert "raised ValueError: no float64 here" in report.failure_text()


def test_points_with_chosen_spectra(x64):
    A = np.asarray(jr.inputs.with_eigenvalues([3.0, 1.0, 1.0])(jax.random.key(1), "float64"))
    np.testing.assert_allclose(A, A.T, atol=1e-15)
    np.testing.assert_allclose(np.linalg.eigvalsh(A), [1.0, 1.0, 3.0], atol=1e-14)
    B = np.asarray(
        jr.inputs.with_singular_values((5, 3), [2.0, 2.0, 1.0])(jax.random.key(1), "float64")
    )
    np.testing.assert_allclose(np.linalg.svd(B, compute_uv=False), [2.0, 2.0, 1.0], atol=1e-14)
    with pytest.raises(ValueError, match=r"with_singular_values: 2 values for a 5×3 matrix"):
        jr.inputs.with_singular_values((5, 3), [1.0, 2.0])


def test_second_differences_resolve_a_small_second_derivative(x64):
    # Found by the slow tier's 20-seed sweep: I₁ at (0, 0.3, -1.2) along a direction mostly
    # on x = 0 (where I₁'' = 0) moves the outputs by h²F'' ~ 3e-3 h² |F| only; a 1e-8
    # resolution left no step of the search usable ("do not settle", a false failure).
    from jaxrules import _witness

    x = [jnp.array([0.0, 0.3, -1.2])]
    v = jnp.array([0.88122354, -0.05031726, 0.05976532])
    F = lambda ys: [jax.scipy.special.i1(ys[0])]
    (est,), err = _witness.fd_jvp(F, x, None, [v], order=2)
    from jaxrules.rules import i1  # (JAX 0.10.2's own I₁'' is wrong at 0: 1, not 0)

    exact = jax.jvp(lambda y: jax.jvp(i1, (y,), (v,))[1], (x[0],), (v,))[1]
    assert np.isfinite(err)
    np.testing.assert_allclose(est, exact, rtol=1e-7, atol=1e-12)


def test_evidence_is_computed_on_demand_and_comparing_is_pure(monkeypatch):
    # Comparing asks for evidence (Wanted) and _evidence computes it: a correct rule needs the
    # float64 witness only (no calibration compiled); a wrong one in float32, whose error
    # exceeds the floor, also its calibration, once per point.
    from jaxrules._check import _compare, _evidence

    asked = []
    compute = _evidence.Witnesses.compute

    def spy(self, key):
        asked.append(key)
        return compute(self, key)

    monkeypatch.setattr(_evidence.Witnesses, "compute", spy)
    kw = dict(seeds=1, dtypes=("float32",), transforms=("jit",), order=1, scales=())
    assert jr.check("sin_product", registry=W.RIGHT, **kw).passed
    assert asked == ["want"]
    asked.clear()
    assert not jr.check("wrong_sign", registry=W.WRONG, **kw).passed
    assert asked == ["want", "calibration"]
    # compare itself: without the witness it asks for it, and runs nothing.
    with pytest.raises(_compare.Wanted) as e:
        _compare.Evidence()["want"]
    assert e.value.key == "want"


def test_a_case_value_of_a_dynamic_parameter_is_differentiated():
    # A case's values are static arguments, except where a `jr.custom_jvp` declares the
    # parameter dynamic: there the value is that input at every point and is differentiated
    # like any dynamic input (the rule claims a derivative in it, so a tangent it drops is a
    # wrong derivative, flagged in that argument). A plain function's case value is static.
    def rule(drop_v):
        @jr.custom_jvp
        def f(x, v):
            return x * jnp.sin(v)

        @f.defjvp
        def _(p, t):
            (x, v), (tx, tv) = p, t
            dv = 0.0 if drop_v else x * jnp.cos(v) * tv
            return f(x, v), tx * jnp.sin(v) + dv

        return f

    reg = jr.Registry()
    ref = lambda x, v: x * jnp.sin(v)
    for name, drop in (("right", False), ("drops_v", True)):
        reg.register(name, reference=ref, inputs={"x": I.general((3,))}, cases=[{"v": 0.7}])(
            rule(drop)
        )
    reg.register("plain", reference=ref, inputs={"x": I.general((3,))}, cases=[{"v": 0.7}])(
        lambda x, v: rule(True)(x, v)  # v static here: the dropped tangent is never asked for
    )
    kw = dict(registry=reg, seeds=1, transforms=("jit",))
    right, drops, plain = (jr.check(n, **kw) for n in ("right", "drops_v", "plain"))
    assert right.passed and plain.passed, (str(right), str(plain))
    # (None: the block of all arguments together)
    assert not drops.passed and {f.argument for f in drops.failures} - {None} == {"v"}, str(drops)
    assert "v" in {r.argument for r in right.results} - {r.argument for r in plain.results}
