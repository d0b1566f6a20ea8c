"""The project's one set of figures: how long the main job and the tests take, and how much
they check. Every such figure in the README and the docs is rendered from one record,
`docs/figures.json`, between markers ``<!--fig:KEY-->…<!--/fig-->``; a test
(`tests/test_figures.py`) fails where a page differs from the record or where the library
has more or fewer rules than the record counted.

    python benchmarks/figures.py measure   # ~20 min on 2 cores, on an idle machine: the record
    python benchmarks/figures.py loop      # ~1 min: only the edit-check loop's figures
    python benchmarks/figures.py tests     # ~5 min: only the fast tier's figures
    python benchmarks/figures.py render    # write the record's figures into the pages
    python benchmarks/figures.py check     # exit 1 where a page differs from the record

`measure` runs, each in a fresh process: `jaxrules check` with an empty compilation cache
(cold) and again with the cache it filled (warm); `jaxrules check --quick` cold and warm; the
README's test command (`python -m pytest -q`) twice, timed the second time (warm cache).
Counts are parsed from their outputs (the checks are the sum of the summary table's column).
`loop` times the edit-check loop on one small rule (`sin_product`, and the plugin and a test
file on `tests/plugin_rules/good.py`'s rule), each route cold (an empty cache) then warm.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "figures.json"
PAGES = ("README.md", "docs")
MARK = re.compile(r"<!--fig:(?P<key>[a-z_0-9]+)-->(?P<value>.*?)<!--/fig-->", re.S)


def duration(seconds: float) -> str:
    """`9 min 23 s`, `41 s`."""
    s = round(seconds)
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def rendered(record: dict) -> dict[str, str]:
    """The text of each figure, by key."""
    c, q, t = record["check"], record["quick"], record["tests"]
    return {
        "rules": str(c["rules"]),
        "checks": str(c["checks"]),
        "cases": str(c["cases"]),
        "check_cold": duration(c["cold_s"]),
        "check_warm": duration(c["warm_s"]),
        "quick_cold": duration(q["cold_s"]),
        "quick_warm": duration(q["warm_s"]),
        "quick_checks": str(q["checks"]),
        "tests": str(t["passed"]),
        "tests_time": duration(t["seconds"]),
        **{
            f"loop_{route}_{when}": f"{times[when + '_s']:.1f} s"
            for route, times in record.get("loop", {}).items()
            for when in ("cold", "warm")
        },
        "where": f"{record['machine']}, JAX {record['jax']}, {record['date']}",
    }


def pages() -> list[Path]:
    out = [ROOT / "README.md"]
    out += sorted(p for p in (ROOT / "docs").rglob("*.md") if "notebooks" not in p.parts)
    return out


def render(record: dict, text: str) -> str:
    values = rendered(record)

    def sub(m):
        key = m["key"]
        if key not in values:
            raise KeyError(f"no figure named {key!r} (known: {', '.join(values)})")
        return f"<!--fig:{key}-->{values[key]}<!--/fig-->"

    return MARK.sub(sub, text)


def differences(record: dict) -> list[str]:
    """Where a page's figures differ from the record: `path: key: page != record`."""
    values, out = rendered(record), []
    for path in pages():
        for m in MARK.finditer(path.read_text()):
            want = values.get(m["key"], f"<no figure named {m['key']!r}>")
            if m["value"] != want:
                out.append(f"{path.relative_to(ROOT)}: {m['key']}: {m['value']!r} != {want!r}")
    return out


# -- measuring -------------------------------------------------------------------------------
def _run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = r.stdout + r.stderr
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{out[-3000:]}")
    print(f"  {' '.join(cmd)}: {wall:.1f} s", flush=True)
    return wall, out


def _checks(out: str) -> tuple[int, int, int]:
    """(rules, checks, cases) from `jaxrules check`'s summary."""
    rows = re.findall(r"^(\w+)\s+(\d+)\s+(\d+)\s+\S+\s+PASS$", out, re.M)
    cases = re.search(r"every registered case \((\d+) in all\)", out)
    return len(rows), sum(int(n) for _, n, _ in rows), int(cases[1]) if cases else 0


def measure() -> dict:
    import jax

    cli = [str(Path(sys.executable).with_name("jaxrules"))]
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as quick:
        env = dict(os.environ, JAXRULES_CACHE_DIR=cache, PYTHONDONTWRITEBYTECODE="1")
        cold, out = _run([*cli, "check"], env)
        rules, checks, cases = _checks(out)
        warm, _ = _run([*cli, "check"], env)
        qenv = dict(env, JAXRULES_CACHE_DIR=quick)
        qcold, qout = _run([*cli, "check", "--quick"], qenv)
        qwarm, _ = _run([*cli, "check", "--quick"], qenv)
        old = json.loads(RECORD.read_text()) if RECORD.exists() else {}
        record = {
            "machine": f"an idle {os.cpu_count()}-core {platform.machine()}",
            "jax": jax.__version__,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "check": {
                "rules": rules,
                "checks": checks,
                "cases": cases,
                "cold_s": round(cold, 1),
                "warm_s": round(warm, 1),
            },
            "quick": {
                "checks": _checks(qout)[1],
                "cold_s": round(qcold, 1),
                "warm_s": round(qwarm, 1),
            },
            "tests": old.get("tests", {"passed": 0, "seconds": 0.0}),
            "loop": old.get("loop") or loop(),
        }
        # The tests check the pages against the record: write both before running them.
        _write(record)
        record["tests"] = tests(env)
    _write(record)
    return record


def tests(env: dict) -> dict:
    """The README's test command, twice: the first fills the compilation cache, the second
    is timed (warm)."""
    _run([sys.executable, "-m", "pytest", "-q"], env)
    seconds, out = _run([sys.executable, "-m", "pytest", "-q"], env)
    return {"passed": int(re.search(r"(\d+) passed", out)[1]), "seconds": round(seconds, 1)}


def loop() -> dict:
    """The edit-check loop: each route on one small rule, cold then warm (fresh processes)."""
    cli = [str(Path(sys.executable).with_name("jaxrules"))]
    pytest = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        test_file = Path(tmp) / "test_rules.py"
        test_file.write_text(
            "import pytest\n"
            "from jaxrules.testing import check_rule_param, rule_params\n\n"
            '@pytest.mark.parametrize("param", rule_params("tests.plugin_rules.good"))\n'
            "def test_rule(param):\n"
            "    check_rule_param(param)\n"
        )
        routes = {
            "quick": [*cli, "check", "--rule", "sin_product", "--quick"],
            "full": [*cli, "check", "--rule", "sin_product"],
            # (an empty directory: the plugin's items only, not the project's tests)
            "plugin": [*pytest, "--jaxrules=tests.plugin_rules.good", str(empty)],
            "test_file": [*pytest, str(test_file)],
        }
        for route, cmd in routes.items():
            cache = Path(tmp) / f"cache-{route}"
            env = dict(os.environ, JAXRULES_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
            cold = _run(cmd, env)[0]
            warm = _run(cmd, env)[0]
            out[route] = {"cold_s": round(cold, 1), "warm_s": round(warm, 1)}
    return out


def _write(record: dict) -> None:
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    for path in pages():
        text = path.read_text()
        new = render(record, text)
        if new != text:
            path.write_text(new)
            print(f"  wrote {path.relative_to(ROOT)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("measure", "loop", "tests", "render", "check"))
    a = p.parse_args(argv)
    if a.command == "measure":
        print(json.dumps(measure(), indent=2))
        return 0
    record = json.loads(RECORD.read_text())
    if a.command in ("loop", "tests"):
        if a.command == "loop":
            record["loop"] = loop()
        else:
            with tempfile.TemporaryDirectory() as cache:
                record["tests"] = tests(dict(os.environ, JAXRULES_CACHE_DIR=cache))
        _write(record)
        print(json.dumps(record[a.command], indent=2))
        return 0
    if a.command == "render":
        _write(record)
        return 0
    diff = differences(record)
    print("\n".join(diff) if diff else "every page's figures are the record's")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
