"""The package's layering (import-linter contracts in pyproject.toml) holds, and breaks when a
rule module imports the package's front door or the checker."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter is in the dev extra")

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    # The copy of the package in `tree` comes first on the path: it is the one analysed.
    env = {"PYTHONPATH": str(tree), "PATH": str(LINT.parent)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(ROOT / "jaxrules", tmp_path / "jaxrules")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(tree: Path, line: str, module: str = "rules/linalg.py") -> None:
    path = tree / "jaxrules" / module
    text = path.read_text()
    path.write_text(text.replace("\nimport jax\n", f"\nimport jax\n{line}\n", 1))


@pytest.mark.parametrize(
    "planted, summary, edge",
    [
        (None, "Contracts: 3 kept, 0 broken.", None),
        # both: the face is forbidden, and it imports the checker (a higher layer)
        ("import jaxrules", "Contracts: 1 kept, 2 broken.", "jaxrules.rules.linalg -> jaxrules "),
        ("from jaxrules import _check", "Contracts: 2 kept, 1 broken.", "-> jaxrules._check "),
        ("from .. import _bench", "Contracts: 2 kept, 1 broken.", "-> jaxrules._bench "),
        # comparing calls back into the programs (as it used to)
        (
            ("from ._programs import ReferencePrograms", "_check/_compare.py"),
            "Contracts: 2 kept, 1 broken.",
            "jaxrules._check._compare -> jaxrules._check._programs",
        ),
    ],
    ids=[
        "as-is",
        "rules-import-the-face",
        "rules-import-the-checker",
        "rules-import-the-bench",
        "compare-runs-programs",
    ],
)
def test_import_contracts(tree, planted, summary, edge):
    if planted is not None:
        _plant(tree, *((planted,) if isinstance(planted, str) else planted))
    r = _lint(tree)
    out = r.stdout + r.stderr
    assert summary in out, out
    assert (r.returncode == 0) == (planted is None), out
    if edge is not None:
        assert edge in out, out
