"""The CLI and the pytest plugin, run as a user would (in subprocesses)."""

import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def run(*cmd, timeout=600):
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=HERE)


def test_version_is_written_once():
    import jaxrules
    from jaxrules._cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"\d+\.\d+\.\d+", jaxrules.__version__)
    from importlib.metadata import version

    assert version("jaxrules") == jaxrules.__version__  # pyproject.toml reads _version.py


@pytest.mark.slow  # subprocesses; the fast tier keeps test_cli_checks_rules_defined_in_module_and_fails
def test_cli_list_and_check_builtin():
    r = run(sys.executable, "-m", "jaxrules", "list")
    assert r.returncode == 0, r.stderr
    assert "sin_product" in r.stdout
    r = run(
        sys.executable,
        "-m",
        "jaxrules",
        "check",
        "--rule",
        "sin_product",
        "--seeds",
        "1",
        "--transform",
        "jit",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 0 failed" in r.stdout
    # Progress: a line when the rule starts and one when it finishes, with elapsed time.
    assert re.search(r"\[\s*\d+s\] start  sin_product", r.stderr), r.stderr
    assert re.search(r"\[\s*\d+s\] PASS   sin_product in [\d.]+s \(1/1 done\)", r.stderr), r.stderr


def test_cli_checks_rules_defined_in_module_and_fails():
    r = run(sys.executable, "-m", "jaxrules", "check", "plugin_rules.good", "--seeds", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plugin_cube" in r.stdout and "sin_product" not in r.stdout  # imported, not defined
    r = run(
        sys.executable,
        "-m",
        "jaxrules",
        "check",
        "plugin_rules.bad",
        "--seeds",
        "1",
        "--dtype",
        "float32",
    )
    assert r.returncode == 1
    assert "plugin_bad_exp — argument x, output out: " in r.stdout and "vjp" in r.stdout
    assert "import plugin_rules.bad  # registers 'plugin_bad_exp'" in r.stdout
    assert "jr.check('plugin_bad_exp', dtypes=('float32',)" in r.stdout


# Usage errors: nothing to check is an error (exit status 2), never a pass.
USAGE_ERRORS = [
    (["check", "no_such_module_xyz"], "cannot import module 'no_such_module_xyz'"),
    (["check", "--rule", "nope"], "no rule named 'nope'"),
    (["check", "plugin_rules"], "no rules are registered in plugin_rules"),  # a package, no rules
    (["check", "--tag", "no-such-tag"], "no rules with tag 'no-such-tag'"),
    (["check", "--order", "0"], "expected a whole number >= 1"),
    (["check", "--seeds", "0"], "expected a whole number >= 1"),
]


@pytest.mark.slow  # six subprocesses (7 s); the same cases run in-process in the fast tier
def test_cli_errors():
    for argv, message in USAGE_ERRORS:
        r = run(sys.executable, "-m", "jaxrules", *argv)
        assert r.returncode == 2 and message in r.stderr, (argv, r.returncode, r.stderr)


@pytest.mark.parametrize("argv, message", USAGE_ERRORS)
def test_cli_usage_errors_in_process(argv, message, capsys, monkeypatch):
    from jaxrules import _cli

    monkeypatch.syspath_prepend(HERE)
    with pytest.raises(SystemExit) as e:
        _cli.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # a pytest subprocess checking rules (6 s)
def test_pytest_plugin_items(tmp_path):
    r = run(
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-o",
        "addopts=",
        "--jaxrules=plugin_rules.good,plugin_rules.bad",
        "--jaxrules-seeds=1",
        f"--jaxrules-cache-dir={tmp_path / 'cache'}",
        "plugin_rules/__init__.py",
    )
    out = r.stdout
    assert r.returncode == 1, out
    assert any((tmp_path / "cache").iterdir())  # the checks' programs were cached
    # One item per rule, case, dtype and transform, for the two rules defined there.
    assert "6 failed, 6 passed" in out, out
    assert "plugin_bad_exp[case0-float32-vmap]" in out
    assert "sin_product" not in out


def test_plugin_is_cheap_when_unused(tmp_path):
    # Without --jaxrules the plugin imports neither jaxrules nor JAX (an empty project).
    (tmp_path / "test_nothing.py").write_text("def test_ok():\n    assert True\n")
    code = (
        "import sys, pytest; pytest.main(['-q', '-p', 'no:cacheprovider', "
        "'test_nothing.py']); "
        "print('LOADED', 'jax' in sys.modules, 'jaxrules' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert "1 passed" in r.stdout and "LOADED False False" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert "--jaxrules=MODULE[,MODULE]" in r.stdout


@pytest.mark.slow  # subprocesses, 14–20 s; the fast tier keeps the other CLI/plugin tests
def test_cli_check_with_a_persistent_compilation_cache(tmp_path):
    cache = tmp_path / "cache"
    args = ("check", "--rule", "sin_product", "--seeds", "1", "--transform", "jit")
    r = run(sys.executable, "-m", "jaxrules", *args, "--cache-dir", str(cache))
    assert r.returncode == 0, r.stdout + r.stderr
    assert cache.is_dir() and any(cache.iterdir())  # compiled programs were stored
    env_run = subprocess.run(
        [sys.executable, "-m", "jaxrules", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE,
        env=dict(os.environ, JAXRULES_CACHE_DIR=str(tmp_path / "env_cache")),
    )
    assert env_run.returncode == 0, env_run.stdout + env_run.stderr
    assert any((tmp_path / "env_cache").iterdir())
    # --cache-dir off: nothing cached, not even at the per-user default (before: the first
    # check turned that on)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAXRULES", "JAX_COMP"))}
    off_run = subprocess.run(
        [sys.executable, "-m", "jaxrules", *args, "--cache-dir", "off"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE,
        env=dict(env, XDG_CACHE_HOME=str(tmp_path / "xdg")),
    )
    assert off_run.returncode == 0, off_run.stdout + off_run.stderr
    assert not (tmp_path / "xdg").exists()


RULE_MODULE = """
import jax.numpy as jnp
import jaxrules as jr

@jr.register("myrules_cube", reference=lambda x: x**3, inputs={"x": jr.inputs.general((3,))})
@jr.custom_jvp
def cube(x):
    return x**3

cube.defjvp(lambda p, t: (p[0] ** 3, 3 * p[0] ** 2 * t[0]))
"""


def _user_project(tmp_path):
    (tmp_path / "myrules.py").write_text(RULE_MODULE)
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "raises.py").write_text("import jax\nraise RuntimeError('no GPU here')\n")
    return tmp_path


def _in(tmp_path, *cmd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


@pytest.mark.slow  # subprocesses, 14–20 s; the fast tier keeps the other CLI/plugin tests
def test_cli_finds_modules_in_the_current_directory_and_explains_mistakes(tmp_path):
    proj = _user_project(tmp_path)
    cli = (sys.executable, "-m", "jaxrules", "check")
    r = _in(proj, *cli, "myrules", "--seeds", "1", "--transform", "jit", "--dtype", "float32")
    assert r.returncode == 0 and "myrules_cube" in r.stdout, r.stdout + r.stderr
    for module, says in [
        ("nosuch", "no module of that name on the path. The current directory"),
        ("broken", "syntax error in"),
        ("raises", "raised RuntimeError at"),
    ]:
        r = _in(proj, *cli, module)
        assert r.returncode == 2 and says in r.stderr, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
    r = _in(proj, *cli, "myrules", "--rule", "myrules_cub")
    assert r.returncode == 2 and "Did you mean 'myrules_cube'?" in r.stderr, r.stderr


@pytest.mark.slow  # subprocesses, 14–20 s; the fast tier keeps the other CLI/plugin tests
def test_plugin_usage_errors_are_not_internal_errors(tmp_path):
    proj = _user_project(tmp_path)
    base = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q")
    r = _in(proj, *base, "--jaxrules=myrules", "--jaxrules-seeds=1")
    assert r.returncode == 0 and "passed" in r.stdout, r.stdout + r.stderr
    for args, says in [
        (("--jaxrules=nosuch",), "no module of that name on the path"),
        (("--jaxrules=broken",), "syntax error in"),
        (("--jaxrules=myrules", "--jaxrules-seeds=abc"), "expected a whole number >= 1"),
    ]:
        r = _in(proj, *base, *args)
        out = r.stdout + r.stderr
        assert r.returncode == 4 and says in out and "INTERNALERROR" not in out, out


def test_cli_progress_estimates_time_left(capsys):
    # The estimate weights each rule by its cases and order, from the throughput so far.
    import types

    from jaxrules._cli import _Progress

    rules = [
        types.SimpleNamespace(name="a", cases=[{}], check=types.SimpleNamespace(order=1)),
        types.SimpleNamespace(name="b", cases=[{}, {}, {}], check=types.SimpleNamespace(order=1)),
    ]
    p = _Progress(rules, t0=0.0)
    p.start(rules[0])
    p.finish(rules[0], True, 2.0)
    p.finish(rules[1], False, 5.0)
    err = capsys.readouterr().err.splitlines()
    assert "start  a" in err[0]
    assert "PASS   a in 2.0s (1/2 done, about " in err[1] and err[1].endswith("s left)")
    assert "FAIL   b in 5.0s (2/2 done)" in err[2]


def test_quick_profile_is_labelled_and_still_catches_a_wrong_rule():
    import jaxrules as jr

    report = jr.check("sin_product", quick=True)
    assert report.passed
    c = report.coverage
    assert (c.dtypes, c.transforms, c.seeds, c.scales) == (("float64",), ("jit",), (0,), ())
    assert str(c).startswith("QUICK PROFILE, not the full proof")
    import wrong_rules as W

    assert not jr.check("wrong_sign", registry=W.WRONG, quick=True).passed


@pytest.mark.slow  # a pytest subprocess (6 s)
def test_a_failing_rule_test_file_traceback_starts_at_the_test(tmp_path):
    (tmp_path / "test_mine.py").write_text(
        "import pytest\n"
        "from jaxrules.testing import check_rule_param, rule_params\n\n"
        '@pytest.mark.parametrize("param", rule_params("plugin_rules.bad", seeds=1)[:1])\n'
        "def test_rule(param):\n"
        "    check_rule_param(param)\n"
    )
    r = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            str(tmp_path / "test_mine.py"))  # fmt: skip
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "check_rule_param(param)" in out and "RuleCheckError" in out, out
    # jaxrules' own frames (check_rule_param's body, raise_if_failed) are hidden
    assert "report.raise_if_failed()" not in out and "raise RuleCheckError" not in out, out


def test_rule_params_are_marked_so_ci_can_run_each_rule_once():
    from jaxrules.testing import rule_params

    params = rule_params("plugin_rules.good", seeds=1)
    assert params and all(any(m.name == "jaxrules" for m in p.marks) for p in params)
