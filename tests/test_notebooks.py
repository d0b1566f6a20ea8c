"""The tutorial notebooks: stored without outputs, linked from the README, and (slow tier)
executed top to bottom."""

import glob
import os
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


def test_notebooks_are_stored_without_outputs_and_linked_in_order():
    import json

    assert len(NOTEBOOKS) == 8
    readme = open(os.path.join(ROOT, "README.md")).read()
    positions = []
    for path in NOTEBOOKS:
        nb = json.load(open(path))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path
        name = os.path.basename(path)
        assert f"notebooks/{name}" in readme, f"README does not link {name}"
        positions.append(readme.index(f"notebooks/{name}"))
    assert positions == sorted(positions), "README lists the notebooks out of order"


def test_notebooks_run_from_the_command_line_as_the_readme_says():
    # README: `jupyter execute notebooks/01_basics.ipynb` with the notebooks extra installed.
    import shutil
    import subprocess
    import sys

    pytest.importorskip("nbclient", reason="pip install 'jaxrules[notebooks]'")
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "jupyter execute notebooks/01_basics.ipynb" in readme
    exe = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or shutil.which("jupyter")
    assert exe, "the notebooks extra provides the `jupyter` command"
    r = subprocess.run([exe, "execute", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--inplace" in r.stdout, r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="pip install 'jaxrules[notebooks]'")
    nbclient = pytest.importorskip("nbclient", reason="pip install 'jaxrules[notebooks]'")
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    print(f"{os.path.basename(path)}: {time.perf_counter() - t0:.1f}s")
