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
