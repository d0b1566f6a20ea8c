"""The backend layer: which JAX mechanism carries a rule on the JAX in use (jaxrules._backend)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_matsin

from jaxrules import _backend, _hijax


def test_hijax_is_found_on_every_supported_jax():
    # No silent fallback: every supported JAX (0.10.2 on) has the primitive class under one of
    # its known names. This fails on a JAX that renames it again, unless the fallback was
    # asked for explicitly.
    if os.environ.get("JAXRULES_DISABLE_HIJAX"):
        assert not _hijax.AVAILABLE
        assert "JAXRULES_DISABLE_HIJAX" in _hijax.UNAVAILABLE_REASON
        return
    assert _backend.JAX_VERSION >= _backend.MIN_JAX
    assert _hijax.AVAILABLE, _hijax.UNAVAILABLE_REASON
    assert _hijax.CLASS_NAME in _hijax.CLASS_NAMES
    # The renamed class on the versions measured: VJPHiPrimitive up to 0.11.0, HiPrim after.
    if _backend.JAX_VERSION >= (0, 11, 2):
        assert _hijax.CLASS_NAME == "HiPrim"
    elif _backend.JAX_VERSION <= (0, 11, 0):
        assert _hijax.CLASS_NAME == "VJPHiPrimitive"


@pytest.mark.parametrize(
    "text, want",
    [("0.10.2", (0, 10, 2)), ("0.12.0.1", (0, 12, 0)), ("0.13.0.dev20270101+abc", (0, 13, 0))],
)
def test_version_parsing(text, want):
    assert _backend._parse_version(text) == want


def test_bind_gate(monkeypatch):
    monkeypatch.delenv("JAXRULES_HIJAX_BIND", raising=False)
    assert _backend.direct_under_autodiff() == (_backend.JAX_VERSION < (0, 12))
    monkeypatch.setenv("JAXRULES_HIJAX_BIND", "staged")
    assert not _backend.direct_under_autodiff()
    monkeypatch.setenv("JAXRULES_HIJAX_BIND", "direct")
    assert _backend.direct_under_autodiff()


def test_select_and_force():
    with _backend.use_hijax(_hijax.AVAILABLE):
        want = "hijax" if _hijax.AVAILABLE else "custom_vjp"
        assert _backend.select(has_jvp=False, has_vjp=True) == want
        assert _backend.select(has_jvp=True, has_vjp=False) == "custom_jvp"
        with _backend.force_backend("custom_jvp"):
            assert _backend.select(has_jvp=True, has_vjp=True) == "custom_jvp"
            # A rule without a JVP rule cannot be forced onto custom_jvp.
            assert _backend.select(has_jvp=False, has_vjp=True) == want
    with _backend.use_hijax(False):
        assert _backend.select(has_jvp=True, has_vjp=True) == "custom_jvp"
        assert _backend.select(has_jvp=False, has_vjp=True) == "custom_vjp"


def test_record_rule_calls(A, x):
    f = make_matsin("both")
    with _backend.record_rule_calls() as log:
        jax.grad(lambda x: f(A, x).sum())(x)
    assert ("matsin", "bwd") in log
    with _backend.record_rule_calls() as log:
        jax.jvp(lambda x: f(A, x), (x,), (x,))
    names = {w for _, w in log}
    assert "jvp" in names and "bwd" not in names


def test_info_names_the_version():
    info = _backend.describe()
    assert info["jax"] == jax.__version__
    if _hijax.AVAILABLE:
        assert info["hijax"] in _hijax.CLASS_NAMES
        assert info["bind"] in ("staged", "direct under autodiff, staged elsewhere")


FALLBACK = textwrap.dedent(
    """
    import warnings, sys
    sys.path.insert(0, {tests!r})
    import jax, jax.numpy as jnp
    from conftest import make_matsin
    A, x = jnp.ones((3, 4)), jnp.linspace(0.1, 1.0, 4)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f = make_matsin("vjp", vjp_scale=3.0)
        g = jax.grad(lambda x: f(A, x).sum())(x)
        make_matsin("both")(A, x)
    msgs = [str(m.message) for m in w if m.category.__name__ == "FallbackWarning"]
    print(len(msgs))
    print(msgs[0] if msgs else "")
    print(float(abs(g - 3.0 * jnp.cos(x) * A.sum(0)).max()))
    try:
        jax.jvp(lambda x: f(A, x), (x,), (x,))
    except TypeError as e:
        print("jvp error:", str(e).splitlines()[0])
    """
)


def test_fallback_is_loud_once_and_correct():
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, JAXRULES_DISABLE_HIJAX="1")
    r = subprocess.run(
        [sys.executable, "-c", FALLBACK.format(tests=tests)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    count, msg, err, jvp_line = r.stdout.strip().splitlines()[:4]
    assert count == "1"  # one warning, however many rules
    assert f"JAX {jax.__version__}" in msg
    assert "no forward mode" in msg and "JVP rule in both modes" in msg
    assert float(err) < 1e-5  # the VJP rule still runs in reverse mode
    assert "matsin: forward mode (jvp/jacfwd) is not available" in jvp_line


def test_fallback_not_warned_when_hijax_is_switched_off_by_tests(recwarn, A, x, no_hijax):
    f = make_matsin("vjp")
    np.testing.assert_allclose(
        jax.grad(lambda x: f(A, x).sum())(x), jnp.cos(x) * A.sum(0), rtol=1e-5
    )
    assert not [w for w in recwarn if w.category is _backend.FallbackWarning]
