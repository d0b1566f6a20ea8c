"""The README's and the documentation's code: every Python block compiles, the one-screen
example and the getting-started guide run (the guide in the slow tier)."""

import glob
import os
import re

import pytest
from conftest import needs_hijax

ROOT = os.path.join(os.path.dirname(__file__), "..")
README = os.path.join(ROOT, "README.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))


def _blocks(path):
    text = open(path, encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: os.path.relpath(p, ROOT))
def test_python_blocks_compile(path):
    for i, code in enumerate(_blocks(path)):
        compile(code, f"{path} block {i}", "exec")


@needs_hijax
def test_one_screen_example_runs():
    code = _blocks(README)[0]
    # The documentation's landing page shows the same example.
    assert code == _blocks(os.path.join(ROOT, "docs", "index.md"))[0]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    import jax

    with pytest.raises(ValueError, match="'grid' is declared constant"):
        jax.grad(lambda g: ns["smooth"](ns["x"], g).sum())(ns["grid"])


def test_check_example_runs():
    path = os.path.join(ROOT, "docs", "checker.md")
    code = next(b for b in _blocks(path) if b.startswith("report = jr.check"))
    exec(compile("import jaxrules as jr\n" + code, path, "exec"), {})


@pytest.mark.slow
def test_getting_started_runs_in_order():
    # The guide's blocks, run top to bottom in one namespace as a reader would (the guide
    # registers "softplus"; the registry is restored afterwards).
    import jax
    import jax.numpy as jnp

    import jaxrules as jr

    path = os.path.join(ROOT, "docs", "getting-started.md")
    ns: dict = {}
    registry = jr._registry.default_registry
    saved = dict(registry._rules)
    try:
        for i, code in enumerate(_blocks(path)):
            exec(compile(code, f"{path} block {i}", "exec"), ns)
        assert ns["report"].rows and str(ns["report"]).startswith("softplus vs JAX")

        # The guide's claim: the wrong variant fails, naming the checks.
        @jr.custom_jvp
        def wrong(x):
            return jnp.logaddexp(x, 0.0)

        wrong.defjvp(lambda p, t: (wrong(p[0]), 0.5 * jax.nn.sigmoid(p[0]) * t[0]))
        rep = jr.check(
            wrong,
            reference=lambda x: jnp.log1p(jnp.exp(x)),
            inputs={"x": jr.inputs.general((5,))},
            seeds=1,
        )
        assert not rep.passed and {"jvp", "vjp"} <= {r.check for r in rep.failures}
    finally:
        registry._rules.clear()
        registry._rules.update(saved)
