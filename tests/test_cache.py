"""The one compilation-cache setting: jr.check, the CLI and the plugin resolve it alike."""

import os
import subprocess
import sys

import pytest

from jaxrules import _cache


def test_the_setting_resolves_argument_then_environment_then_per_user_default(
    monkeypatch, tmp_path
):
    monkeypatch.delenv(_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert _cache.resolve() == str(tmp_path / "xdg" / "jaxrules")
    assert _cache.resolve() == str(_cache.default_dir())
    monkeypatch.setenv(_cache.ENV, str(tmp_path / "env"))
    assert _cache.resolve() == str(tmp_path / "env")
    assert _cache.resolve(tmp_path / "arg") == str(tmp_path / "arg")  # the argument wins
    for off in ("off", "OFF", "0", False):
        assert _cache.resolve(off) is None
    monkeypatch.setenv(_cache.ENV, "off")
    assert _cache.resolve() is None
    assert _cache.resolve(str(tmp_path / "arg")) == str(tmp_path / "arg")


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION", "JAXR"))}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**full, **env}
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


CHECK = """
import jax, jaxrules as jr
jr.check("sin_product", quick=True)
print(jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
"""


@pytest.mark.slow  # three fresh interpreters, each compiling a check (10-25 s)
def test_jr_check_turns_the_cache_on_and_never_replaces_the_users(tmp_path):
    # On by default (here at $JAXRULES_CACHE_DIR), every program cached, entries written.
    d = tmp_path / "jaxrules"
    assert _run(CHECK, JAXRULES_CACHE_DIR=str(d)) == [str(d), "0"]
    assert any(d.iterdir())
    # A directory the user gave JAX itself is used as it is, and nothing is written elsewhere.
    mine = tmp_path / "mine"
    out = _run(CHECK, JAXRULES_CACHE_DIR=str(d / "x"), JAX_COMPILATION_CACHE_DIR=str(mine))
    assert out[0] == str(mine) and not (d / "x").exists()
    # Off.
    assert _run(CHECK, JAXRULES_CACHE_DIR="off")[0] == "None"


OFF_THEN_CHECK = """
import warnings, jax
from jaxrules import _cache
_cache.enable("off")  # the CLI's --cache-dir off, the plugin's --jaxrules-cache-dir=off
print(_cache.enable(None), jax.config.jax_compilation_cache_dir)  # what each check then does
"""

ON_THEN_OFF = """
import sys, warnings, jax
from jaxrules import _cache
_cache.enable(sys.argv[1])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    print(_cache.enable("off"), len(w), "cannot be turned off" in str(w[0].message))
"""


def test_an_explicit_setting_holds_for_the_checks_that_follow(tmp_path):
    # The CLI and the plugin apply their option, then run checks that give none: "off" must
    # stay off (before, the first check turned the per-user cache on: the CLI's
    # `--cache-dir off` compiled into ~/.cache/jaxrules anyway).
    xdg = tmp_path / "xdg"
    assert _run(OFF_THEN_CHECK, XDG_CACHE_HOME=str(xdg)) == ["None", "None"]
    assert not xdg.exists()
    # Once on, "off" cannot turn it off (JAX reads the setting once): said, not silent.
    on = str(tmp_path / "on")
    code = ON_THEN_OFF.replace("sys.argv[1]", repr(on))
    assert _run(code, XDG_CACHE_HOME=str(xdg)) == [on, "1", "True"]
