"""The project's one set of figures (benchmarks/figures.py): every timing and count of the
main job and the tests in the README and the docs is rendered from docs/figures.json."""

import importlib.util
import json
import re
from pathlib import Path

import jaxrules as jr

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("figures", ROOT / "benchmarks" / "figures.py")
figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figures)
RECORD = json.loads((ROOT / "docs" / "figures.json").read_text())


def test_every_page_shows_the_record():
    # A figure edited by hand in one page (and so different from the others) fails here;
    # `python benchmarks/figures.py render` writes the record's.
    assert figures.differences(RECORD) == []
    used = {m["key"] for p in figures.pages() for m in figures.MARK.finditer(p.read_text())}
    assert {"rules", "checks", "check_cold", "check_warm", "tests"} <= used


def test_the_record_counts_the_library_as_it_is():
    # A rule added or removed without measuring again makes every page's count stale.
    lib = jr.list_rules(module="jaxrules.rules")
    assert RECORD["check"]["rules"] == len(lib), "run: python benchmarks/figures.py measure"
    assert RECORD["check"]["cases"] == sum(len(r.cases) for r in lib)


def test_no_unmarked_copy_of_the_main_jobs_figures():
    # "N checks" / "N check results" of the library's check appear only inside markers.
    stray = []
    for path in figures.pages():
        text = figures.MARK.sub("", path.read_text())
        for m in re.finditer(r"\b\d[\d,]* (checks|check results)\b", text):
            stray.append(f"{path.relative_to(ROOT)}: {m[0]!r}")
    assert stray == []


def test_a_page_that_differs_is_found(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("takes <!--fig:check_cold-->1 min 0 s<!--/fig--> cold")
    monkeypatch.setattr(figures, "pages", lambda: [page])
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    (diff,) = figures.differences(RECORD)
    assert diff.startswith("page.md: check_cold: '1 min 0 s' != ")
    page.write_text(figures.render(RECORD, page.read_text()))
    assert figures.differences(RECORD) == []
