"""jr.benchmark and `jaxrules bench`: the code paths at tiny sizes (never timings)."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import jaxrules as jr
from jaxrules._bench import BenchRow, interleaved_ratio


def test_benchmark_rows_table_and_summary():
    rep = jr.benchmark("linear_solve", sizes=[4, 8], pairs=1)
    assert [(r.size, r.mode) for r in rep.rows] == [
        (n, m) for n in (4, 8) for m in ("primal", "jvp", "vjp")
    ]
    for r in rep.rows:
        assert r.rule_s > 0 and r.ref_s > 0 and r.ratio > 0
        assert r.ratio == pytest.approx(r.rule_s / r.ref_s)  # the columns agree
        lo, hi = r.ratio_range
        assert lo * (1 - 1e-9) <= r.ratio <= hi * (1 + 1e-9)
        assert r.rule_bytes is None or r.rule_bytes >= 0
    text = str(rep)
    # The header names what was timed against, and the arguments' shapes.
    assert text.startswith(
        "linear_solve (gen) vs JAX differentiating its reference "
        "(jaxrules.rules.linalg._solve_ref) (float32)"
    )
    assert "Differentiated arguments:\n  n=4: A (4, 4), b (4,)\n  n=8: A (8, 8), b (8,)" in text
    assert "[fewer than 5 pairs: indicative only]" in text
    assert "VJP: jax.vjp and its pullback on a full cotangent (the forward pass included)" in text
    assert "| 8 | vjp |" in text
    d = rep.to_dict()
    assert d["rule"] == "linear_solve (gen)" and len(d["rows"]) == 6
    json.dumps(d)


def test_benchmark_float64_example_inputs_and_modes():
    # Default sizes: the registration's bench_sizes; without them, the example inputs.
    rep = jr.benchmark("sin_product", sizes=None, pairs=1, dtype="float64", modes=("vjp",))
    assert rep.dtype == "float64" and {r.mode for r in rep.rows} == {"vjp"}
    assert [r.size for r in rep.rows] == list(jr.get("sin_product").bench.sizes)
    reg = jr.Registry()
    reg.register("plain", reference=lambda x: x**3, inputs={"x": jr.inputs.general((3,))})(
        lambda x: x**3
    )
    rep = jr.benchmark("plain", registry=reg, pairs=1)
    assert [r.size for r in rep.rows] == [None, None, None]
    assert "| example | primal |" in rep.table()


def test_verdicts_need_every_pair_to_agree():
    row = lambda r, lo, hi: BenchRow(4, "vjp", 1.0, 1.0, r, (lo, hi), None, None)
    assert row(0.5, 0.45, 0.8).verdict == "faster"
    assert row(0.9, 0.7, 1.2).verdict == "on par"  # one pair disagrees
    assert row(1.5, 1.1, 1.9).verdict == "slower"
    assert row(1.02, 1.01, 1.03).verdict == "on par"
    # Pairs that differ by more than 2x decide nothing (the two runs of one rule):
    assert row(0.17, 0.03, 0.43).verdict == "noisy: rerun"
    assert row(3.93, 1.18, 13.68).verdict == "noisy: rerun"
    rep = jr.BenchmarkReport("r", "float32", 5, "here", [row(3.93, 1.18, 13.68)])
    assert "WARNING: 1 cell(s) too noisy to decide" in str(rep)
    assert "noisy: rerun" in rep.summary()
    assert BenchRow(4, "vjp", 1.0, None, None, None, None, None).verdict == "no reference"


@pytest.mark.slow  # 5 s
def test_reference_that_jax_cannot_differentiate_is_reported():
    ref = lambda A, B, C, method=None: jax.scipy.linalg.solve_sylvester(A, B, C)
    rep = jr.benchmark("sylvester", sizes=[4], pairs=1, reference=ref)
    by = {r.mode: r for r in rep.rows}
    assert by["primal"].ratio is not None
    assert by["vjp"].ratio is None and by["vjp"].ref_s is None
    assert by["vjp"].note.startswith("reference: NotImplementedError")
    assert "no reference (reference: NotImplementedError" in rep.table()


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match=r"benchmark: expected a registered rule.*Register it"):
        jr.benchmark(jnp.sin)
    with pytest.raises(ValueError, match=r"benchmark: unknown mode\(s\) \['hvp'\]"):
        jr.benchmark("linear_solve", modes=("hvp",))
    with pytest.raises(ValueError, match=r"benchmark: dtype must be 'float32' or 'float64'"):
        jr.benchmark("linear_solve", dtype="float16")
    reg = jr.Registry()
    reg.register("plain", reference=lambda x: x, inputs={"x": jr.inputs.general((3,))})(lambda x: x)
    with pytest.raises(ValueError, match=r"rule 'plain' has no bench_inputs.*size 5"):
        jr.benchmark("plain", registry=reg, sizes=[5])


def test_interleaved_ratio_alternates_and_reports_the_spread():
    calls = []
    a = lambda: calls.append("a") or jnp.zeros(())
    b = lambda: calls.append("b") or jnp.zeros(())
    ta, tb, ratio, (lo, hi) = interleaved_ratio(a, b, pairs=3, inner=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then strictly alternating
    assert ta > 0 and tb > 0 and lo <= ratio <= hi


@pytest.mark.slow
def test_every_library_rule_with_sizes_benchmarks_at_a_tiny_size():
    # The bench_inputs of every registration produce arguments the rule and its benchmark
    # reference accept (tiny sizes, one pair: a smoke test, not a timing).
    for rule in jr.list_rules(module="jaxrules.rules"):
        if rule.bench.inputs is None:
            continue
        rep = jr.benchmark(rule, sizes=[4], pairs=1, modes=("vjp",))
        assert rep.rows[0].ratio is not None, (rule.name, rep.rows[0].note)


@pytest.mark.slow  # a subprocess running benchmarks (9 s)
def test_cli_bench_table_json_and_plot(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "jaxrules",
        "bench",
        "--rule",
        "inv",
        "--rule",
        "logdet",
        "--sizes",
        "4",
        "8",
        "--pairs",
        "1",
        "--json",
        str(out),
    ]
    plot = importlib.util.find_spec("matplotlib") is not None
    if plot:
        cmd += ["--plot", str(tmp_path / "bench.png")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"inv vs JAX differentiating its reference \(\S*inv\) \(float32\)", r.stdout)
    assert "Summary:" in r.stdout and "[1/2] inv n=4 primal" in r.stderr
    data = json.loads(out.read_text())
    assert [d["rule"] for d in data] == ["inv", "logdet"]
    if plot:
        assert (tmp_path / "bench.png").stat().st_size > 1000


@pytest.mark.slow
def test_benchmarks_run_smoke_and_docs_update(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "benchmarks", "run.py")
    # Every section, in two processes at once (about half the sections' time each).
    halves = {
        tmp_path / "a": ["library", "implicit", "ode", "overhead"],
        tmp_path / "b": ["peers", "krylov", "quadratic_programs", "linalg", "matrix_equations"],
    }
    procs = {}
    for out, sections in halves.items():
        out.mkdir()
        log = open(out / "log.txt", "w")  # a file, not a pipe: neither process can block
        procs[out] = subprocess.Popen(
            [sys.executable, script, "--smoke", "--out", str(out), "--only", *sections],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    for out, p in procs.items():
        p.wait(timeout=1200)
        assert p.returncode == 0, (out / "log.txt").read_text()[-6000:]
        for section in halves[out]:
            data = json.loads((out / f"{section}.json").read_text())
            assert data["machine"] and data["data"]
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert summary.startswith("Machine: ") and "### Library" in summary
    # The section of docs/performance.md between the markers is replaced, the rest kept.
    sys.path.insert(0, os.path.dirname(script))
    try:
        import run as bench_run
    finally:
        sys.path.pop(0)
    assert sorted(s for v in halves.values() for s in v) == sorted(bench_run.SECTIONS)
    readme = tmp_path / "performance.md"
    readme.write_text(f"intro\n{bench_run.START}\nold\n{bench_run.END}\noutro\n")
    bench_run.update_docs(summary, str(readme))
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert "### Library" in text


def test_benchmark_runs_a_case_with_its_own_problems():
    # linear_solve's "lower" case benchmarks triangular systems against solve_triangular.
    rep = jr.benchmark("linear_solve", sizes=[6], pairs=1, case="lower", modes=("primal",))
    assert rep.rule == "linear_solve (lower)" and rep.rows[0].ratio > 0
    assert jr.get("linear_solve").bench_cases() == [0, 1, 2, 3]
    assert jr.get("lstsq").bench_cases() == [0]  # the orthonormal case has no problems of its own
