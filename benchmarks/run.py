"""All benchmarks, one entry point: the library against JAX's own differentiation and its peers.

Sections (each writes ``benchmarks/results/<section>[_<tag>].json``):

- ``library``: :func:`jaxrules.benchmark` on every built-in rule at its default sizes —
  primal, JVP and VJP against JAX differentiating the rule's reference, time and memory;
- ``peers``: ``linear_solve``'s gradient against ``jnp.linalg.solve`` and lineax
  (``lx.linear_solve`` with ``lx.LU()``) on the same systems;
- ``implicit``: ``argmin`` against unrolled gradient descent, jaxopt and optimistix
  (``benchmarks/implicit.py``);
- ``krylov``: matrix-free ``krylov_solve`` against lineax and ``jax.scipy.sparse.linalg`` on
  2-D diffusion and convection-diffusion operators (``benchmarks/krylov.py``);
- ``quadratic_programs``: ``qp`` against jaxopt's OSQP / BoxOSQP and a dense KKT reference on
  a batch of 64 inequality-constrained QPs (``benchmarks/qp.py``);
- ``ode``: ``odeint``'s checkpoint and backsolve adjoints against diffrax's and
  ``jax.experimental.ode.odeint`` on Lotka–Volterra and a neural ODE (``benchmarks/ode.py``);
- ``linalg``: ``linear_solve``, ``inv``, ``logdet``, ``lstsq`` against JAX's own functions at
  n = 100, 500, 1000 in float64 and float32: gradient / primal, gradient and JVP against JAX's
  (``benchmarks/linalg.py``);
- ``matrix_equations``: Sylvester / Lyapunov primal and gradient against JAX's
  ``solve_sylvester`` and SciPy (``benchmarks/linalg.py``; CPU only: JAX's Schur is);
- ``overhead``: the decorators against raw ``jax.custom_jvp``/``custom_vjp``
  (``benchmarks/overhead.py``).

Then ``benchmarks/results/summary[_<tag>].md`` collects the tables with the machine they ran
on, and ``--update-docs`` copies it into ``docs/performance.md`` between the markers
``<!-- benchmarks:start -->`` / ``<!-- benchmarks:end -->`` (``benchmarks-<tag>`` with a tag;
the tables are generated, never typed). Peers that are not installed (the ``bench`` extra) are skipped and say so.

Run: ``python benchmarks/run.py [--only SECTION ...] [--pairs 5] [--tag gpu] [--smoke]
[--update-docs]``. ``--smoke`` runs every code path at tiny sizes with one pair (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing

import jaxrules as jr

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PERFORMANCE = os.path.join(os.path.dirname(HERE), "docs", "performance.md")
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def markers(tag: str = "") -> tuple[str, str]:
    """The markers of the generated section (one pair per tag: CPU, gpu, ...)."""
    if not tag:
        return START, END
    return f"<!-- benchmarks-{tag}:start -->", f"<!-- benchmarks-{tag}:end -->"


SECTIONS = (
    "library",
    "peers",
    "implicit",
    "krylov",
    "quadratic_programs",
    "ode",
    "linalg",
    "matrix_equations",
    "overhead",
)


def _r(ratio, spread):
    return f"{ratio:.2f} ({spread[0]:.2f}–{spread[1]:.2f})"


# -- library: every rule against JAX differentiating its reference -------------------------------
def library(pairs, smoke):
    reports = []
    for rule in jr.list_rules(module="jaxrules.rules"):
        if rule.bench.inputs is None:
            continue  # registered for the checker only
        if jax.default_backend() != "cpu" and "matrix_equations" in rule.tags:
            continue  # JAX's Schur decomposition lowers on CPU only
        sizes = [4] if smoke else None
        for i in rule.bench_cases():  # each case with problems of its own
            print(f"  library: {rule.name} case {i}", file=sys.stderr, flush=True)
            reports.append(jr.benchmark(rule, sizes=sizes, pairs=pairs, case=i))
    return [r.to_dict() for r in reports]


def library_md(data) -> str:
    reports = [jr.BenchmarkReport.from_dict(d) for d in data]
    pairs = reports[0].pairs if reports else 0
    lines = [
        "Every built-in rule against JAX differentiating its registered reference (`jr.benchmark`, "
        f"float32, {pairs} interleaved pairs; rule / reference, median and range; the largest "
        "benchmarked size of each rule; `jaxrules bench --rule NAME` for all sizes):",
        "",
        "| rule | n | primal | JVP | VJP | VJP temp memory: rule / reference | verdict (VJP) |",
        "|---|---|---|---|---|---|---|",
    ]
    for rep in reports:
        n = max((r.size for r in rep.rows if r.size is not None), default=None)
        by = {r.mode: r for r in rep.rows if r.size == n}

        def cell(mode, by=by):
            r = by.get(mode)
            if r is None or r.ratio is None:
                return "–"
            return _r(r.ratio, r.ratio_range)

        v = by.get("vjp")
        mem = "–"
        if v is not None and v.rule_bytes and v.ref_bytes:
            mem = f"{v.rule_bytes / v.ref_bytes:.2f}"
        verdict = v.verdict + (f" ({v.note})" if v is not None and v.note else "") if v else "–"
        lines.append(
            f"| `{rep.rule}` | {n if n is not None else 'example'} | {cell('primal')} | "
            f"{cell('jvp')} | {cell('vjp')} | {mem} | {verdict} |"
        )
    return "\n".join(lines)


# -- peers: linear solve against jnp.linalg.solve and lineax -------------------------------------
def peers(pairs, smoke):
    from jaxrules.rules import linear_solve

    solvers = {"jnp.linalg.solve": jnp.linalg.solve}
    try:
        import lineax as lx

        solvers["lineax LU"] = lambda A, b: (
            lx.linear_solve(lx.MatrixLinearOperator(A), b, solver=lx.LU()).value
        )
    except ImportError:
        print("  peers: lineax not installed, skipped", file=sys.stderr)
    rows = []
    sizes = [8] if smoke else [100, 500, 1000]
    for n in sizes:
        rng = np.random.default_rng(n)
        A = jnp.asarray(rng.standard_normal((n, n)) + np.sqrt(n) * np.eye(n), jnp.float32)
        b = jnp.asarray(rng.standard_normal(n), jnp.float32)
        w = jnp.asarray(rng.standard_normal(n), jnp.float32)

        def grad_of(f):
            return jax.jit(jax.grad(lambda A, b: jnp.vdot(w, f(A, b)), (0, 1)))

        ours = grad_of(linear_solve)
        for name, f in solvers.items():
            theirs = grad_of(f)
            t_o, t_t, ratio, spread = _timing.interleaved_ratio(
                lambda: ours(A, b), lambda: theirs(A, b), pairs=pairs
            )
            err = max(
                float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
                for x, y in zip(ours(A, b), theirs(A, b))
            )
            rows.append(
                dict(
                    n=n,
                    peer=name,
                    ours_ms=t_o * 1e3,
                    peer_ms=t_t * 1e3,
                    ratio=ratio,
                    spread=spread,
                    max_rel_diff=err,
                    pairs=pairs,
                )
            )
    return rows


def peers_md(rows) -> str:
    pairs = rows[0].get("pairs", 7) if rows else 0
    lines = [
        "`linear_solve`'s gradient (of ⟨w, x⟩ w.r.t. A and b, float32) against its peers on the "
        f"same systems ({pairs} interleaved pairs; ours / peer):",
        "",
        "| n | peer | ours ms | peer ms | ours / peer | max rel. difference |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['peer']} | {r['ours_ms']:.3g} | {r['peer_ms']:.3g} | "
            f"{_r(r['ratio'], r['spread'])} | {r['max_rel_diff']:.1e} |"
        )
    return "\n".join(lines)


# -- the scripts ------------------------------------------------------------------------------
def implicit(pairs, smoke):
    import implicit as bench

    if smoke:
        return bench.run(pairs, curve_steps=(5, 10), m=40, d=5, steps=10)
    return bench.run(pairs)


def implicit_md(res) -> str:
    import implicit as bench

    return bench.markdown(res)


def _linalg_rows(rules, sizes, pairs, smoke):
    """``benchmarks/linalg.py`` on ``rules``: float64 and float32 (float64 at n = 4 if smoke)."""
    import linalg as bench

    if smoke:
        return bench.run([4], ["float64"], pairs, rules)
    return bench.run(sizes, ["float64", "float32"], pairs, rules)


def _linalg_md(intro, rows) -> str:
    import linalg as bench

    return intro + "\n\n" + bench.HEADER + "\n" + "\n".join(bench._fmt(r) for r in rows)


def linalg(pairs, smoke):
    rules = ["linear_solve", "inv", "logdet", "lstsq"]
    return _linalg_rows(rules, [100, 500, 1000], pairs, smoke)


def linalg_md(rows) -> str:
    return _linalg_md(
        "Dense linear algebra (`benchmarks/linalg.py`): each rule against JAX's own function "
        "(`jnp.linalg.solve`, `inv`, `slogdet`, `lstsq`), gradient of ⟨w, f⟩ with respect to "
        "every input; ratios are ours / JAX's.",
        rows,
    )


def matrix_equations(pairs, smoke):
    if jax.default_backend() != "cpu":
        return None
    rules = ["sylvester", "lyapunov", "discrete_lyapunov"]
    return _linalg_rows(rules, [100, 200], pairs, smoke)


def matrix_equations_md(rows) -> str:
    return _linalg_md(
        "Matrix equations (`benchmarks/linalg.py`): primal against JAX's `solve_sylvester` and "
        "SciPy; JAX cannot differentiate its own with respect to A or B.",
        rows,
    )


def krylov(pairs, smoke):
    import krylov as bench

    return bench.run(m=6 if smoke else 100, pairs=pairs)


def krylov_md(res) -> str:
    import krylov as bench

    return bench.markdown(res)


def quadratic_programs(pairs, smoke):
    import qp as bench

    if smoke:
        return bench.run(pairs, batch=2, n=10, m=5, p=1, active=2)
    return bench.run(pairs, batch=64)


def quadratic_programs_md(res) -> str:
    import qp as bench

    return bench.markdown(res)


def ode(pairs, smoke):
    import ode as bench

    return bench.run(pairs, smoke=smoke)


def ode_md(res) -> str:
    import ode as bench

    return bench.markdown(res)


def overhead(pairs, smoke):
    import overhead as bench

    n = 8 if smoke else 1000
    return [dict(r, n=n) for r in bench.run(n=n, pairs=pairs)]


def overhead_md(rows) -> str:
    import overhead as bench

    n = rows[0].get("n", 1000) if rows else 1000
    return (
        "Decorator overhead: the same rule on jaxrules and on raw `jax.custom_jvp`/`custom_vjp` "
        f"(`z = sin(x)·y`, n = {n}):\n\n" + bench.table(rows)
    )


def update_docs(summary: str, path: str = PERFORMANCE, tag: str = "") -> None:
    start, end = markers(tag)
    text = open(path).read()
    if start not in text or end not in text:
        raise SystemExit(f"run.py: {path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as fh:
        fh.write(head + start + "\n" + summary.strip() + "\n" + end + tail)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--tag", default="", help="suffix for the result files (e.g. gpu)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one pair: code paths only")
    ap.add_argument("--out", default=RESULTS, help="results folder")
    ap.add_argument(
        "--update-docs", action="store_true", help="copy the summary into docs/performance.md"
    )
    ap.add_argument(
        "--summarize",
        action="store_true",
        help="run nothing: rebuild summary.md (and docs/performance.md) from the saved JSON files",
    )
    a = ap.parse_args(argv)
    pairs = 1 if a.smoke else a.pairs
    suffix = f"_{a.tag}" if a.tag else ""
    os.makedirs(a.out, exist_ok=True)
    machine = _timing.machine()
    parts = [
        f"Machine: {machine}. Generated by `python benchmarks/run.py` on "
        f"{time.strftime('%Y-%m-%d')}."
    ]
    dates = set()
    for name in a.only:
        path = os.path.join(a.out, f"{name}{suffix}.json")
        t0 = time.perf_counter()
        if a.summarize:
            if not os.path.exists(path):
                continue
            with open(path) as fh:
                saved = json.load(fh)
            data, machine = saved["data"], saved["machine"]
            dates.add(saved.get("date", "an unrecorded date"))
            parts[0] = (
                f"Machine: {machine}. Generated by `python benchmarks/run.py` on "
                f"{', '.join(sorted(dates))} (`--summarize` from the saved results)."
            )
        else:
            print(f"== {name}", file=sys.stderr, flush=True)
            data = globals()[name](pairs, a.smoke)
            if data is None:
                print(f"  {name}: skipped on {jax.default_backend()}", file=sys.stderr)
                continue
            with open(path, "w") as fh:
                json.dump(
                    {"machine": machine, "date": time.strftime("%Y-%m-%d"), "data": data},
                    fh,
                    indent=1,
                    default=str,
                )
        text = globals()[f"{name}_md"](data)
        parts.append(f"### {name.replace('_', ' ').capitalize()}\n\n{text}")
        print(text + f"\n({time.perf_counter() - t0:.0f}s)\n", flush=True)
    summary = "\n\n".join(parts) + "\n"
    with open(os.path.join(a.out, f"summary{suffix}.md"), "w") as fh:
        fh.write(summary)
    if a.update_docs:
        update_docs(summary, tag=a.tag)


if __name__ == "__main__":
    main()
