"""The README's runnable examples run."""

import os
import re

import pytest
from conftest import needs_hijax

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _blocks():
    text = open(README, encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@needs_hijax
def test_one_screen_example_runs():
    code = _blocks()[0]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    import jax

    with pytest.raises(ValueError, match="'grid' is declared nondiff"):
        jax.grad(lambda g: ns["smooth"](ns["x"], g).sum())(ns["grid"])


def test_check_example_runs():
    code = next(b for b in _blocks() if b.startswith("report = jr.check"))
    exec(compile("import jaxrules as jr\n" + code, "README.md", "exec"), {})
