"""The `jaxrules` command line: `list`, `check` and `bench`."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import threading
import time
from collections.abc import Sequence

BUILTIN = "jaxrules.rules"


def _rules(modules: Sequence[str], names: Sequence[str] | None, tag: str | None):
    # (imported here, not at the top: `jaxrules --help` does not import JAX)
    from ._modules import ModuleError, import_modules
    from ._registry import list_rules

    mods = list(modules) or [BUILTIN]
    try:
        import_modules(mods)
    except ModuleError as e:
        _usage_error(str(e))
    rules = list_rules(tag=tag, module=tuple(mods))
    if not rules:
        where = f"with tag {tag!r} " if tag else ""
        known = sorted({t for r in list_rules(module=tuple(mods)) for t in r.tags})
        hint = f" (tags there: {', '.join(known)})" if tag and known else ""
        _usage_error(
            f"jaxrules: no rules {where}are registered in {', '.join(mods)}{hint}; nothing to "
            "do. Rules are registered with @jr.register(...) in the module you name."
        )
    if names:
        known = {r.name: r for r in rules}
        missing = [n for n in names if n not in known]
        if missing:
            close = [
                k for m in missing for k in known if k.startswith(m[:3]) or m.startswith(k[:3])
            ]
            hint = f" Did you mean {', '.join(map(repr, sorted(set(close))))}?" if close else ""
            _usage_error(
                f"jaxrules: no rule named {', '.join(map(repr, missing))} in {', '.join(mods)} "
                f"(known: {', '.join(sorted(known)) or 'none'}).{hint}"
            )
        rules = [known[n] for n in names]
    return rules


def _usage_error(message: str):
    print(message, file=sys.stderr)
    raise SystemExit(2)


def _cmd_list(a) -> int:
    rules = _rules(a.modules, a.rule, a.tag)
    print(f"{'rule':<22} {'order':>5}  {'cases':>5}  {'tags':<20} module")
    for r in rules:
        print(
            f"{r.name:<22} {r.check.order:>5}  {len(r.cases):>5}  {','.join(r.tags):<20} {r.module}"
        )
    print(f"{len(rules)} rule(s)")
    return 0


def _size(rule) -> int:
    """Total number of input elements at the rule's example point (a proxy for check cost)."""
    import jax

    try:
        args = rule.draw(jax.random.key(0), "float32", rule.cases[0])
        return sum(getattr(x, "size", 1) for x in jax.tree_util.tree_leaves(args))
    except Exception:
        return 0


class _Progress:
    """Progress lines on stderr: one when a rule starts, one when it finishes, with the elapsed
    wall time and an estimate of the time left (from the throughput so far, weighting each rule
    by its cases and order: a rough guide, said as such)."""

    def __init__(self, rules, t0: float):
        self.weight = {r.name: max(1, len(r.cases)) * max(1, r.check.order) for r in rules}
        self.total = sum(self.weight.values())
        self.n, self.done, self.done_weight, self.t0 = len(rules), 0, 0, t0

    def _say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def start(self, r) -> None:
        self._say(f"[{time.perf_counter() - self.t0:5.0f}s] start  {r.name}")

    def finish(self, r, passed: bool, seconds: float) -> None:
        self.done += 1
        self.done_weight += self.weight[r.name]
        elapsed = time.perf_counter() - self.t0
        left = self.total - self.done_weight
        eta = f", about {elapsed / self.done_weight * left:.0f}s left" if left else ""
        self._say(
            f"[{elapsed:5.0f}s] {'PASS' if passed else 'FAIL'}   {r.name} in {seconds:.1f}s "
            f"({self.done}/{self.n} done{eta})"
        )


def _cmd_check(a) -> int:
    from . import _cache
    from ._check import check

    _cache.enable(a.cache_dir)

    rules = _rules(a.modules, a.rule, a.tag)
    # Only the asked dtypes each rule is registered for (default: all of them).
    asked = {r.name: [d for d in a.dtype or r.check.dtypes if d in r.check.dtypes] for r in rules}
    if a.dtype:
        skipped = [r.name for r in rules if not asked[r.name]]
        rules = [r for r in rules if asked[r.name]]
        if skipped:
            print(f"not registered for {', '.join(a.dtype)} (skipped): {', '.join(skipped)}")
        if not rules:
            print("error: no rule is registered for the asked dtypes", file=sys.stderr)
            return 2
    seeds = a.seed if a.seed else a.seeds
    if a.quick:
        print("quick profile (one dtype, one seed, jit): not the full proof; CI runs the full one")
    t0 = time.perf_counter()
    lock = threading.Lock()
    progress = _Progress(rules, t0)

    def run(r):
        with lock:
            progress.start(r)
        t = time.perf_counter()
        rep = check(
            r,
            dtypes=asked[r.name],
            transforms=a.transform or ("eager", "jit", "vmap"),
            seeds=seeds,
            order=a.order,
            quick=a.quick,
        )
        with lock:
            progress.finish(r, rep.passed, time.perf_counter() - t)
        return rep

    # Checks of different rules are independent; XLA compiles release the GIL, so threads
    # use several cores.
    jobs = max(1, a.jobs or min(len(rules), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        # Largest problems first, so that the slowest checks do not start last.
        futures = {r.name: ex.submit(run, r) for r in sorted(rules, key=_size, reverse=True)}
        reports = [futures[r.name].result() for r in rules]
    failed = sum(not rep.passed for rep in reports)
    print()
    print(f"{'rule':<24}{'checks':>8}{'failed':>8}  {'worst err/tol':>14}  status")
    for r, rep in zip(rules, reports):
        print(
            f"{r.name:<24}{len(rep.results):>8}{len(rep.failures):>8}  {rep.worst_ratio:>14.3g}  "
            f"{'PASS' if rep.passed else 'FAIL'}"
        )
    wall = time.perf_counter() - t0
    overlap = f"; {jobs} rules at a time, so per-rule times overlap" if jobs > 1 else ""
    print(f"\n{len(rules) - failed} passed, {failed} failed ({wall:.1f}s wall{overlap})")
    if reports and reports[0].coverage is not None:
        c = reports[0].coverage
        order = f"order {a.order}" if a.order else "each rule at its declared order"
        kinds: dict[tuple, int] = {}
        for rep in reports:
            kinds[rep.coverage.dtypes] = kinds.get(rep.coverage.dtypes, 0) + 1
        dtypes = "; ".join(f"{', '.join(d)} ({n} rules)" for d, n in kinds.items())
        scaled = [rep.coverage.scales for rep in reports if rep.coverage.scales]
        scales = (
            f"; inputs also × {', '.join(f'{s:g}' for s in scaled[0])} "
            f"({len(scaled)} rules with scalable inputs)"
            if scaled
            else ""
        )
        quick = "QUICK PROFILE, not the full proof: " if a.quick else ""
        print(
            f"covered: {quick}dtypes {dtypes}; transforms {', '.join(c.transforms)}; "
            f"seeds {list(c.seeds)}{scales}; {order}; every registered case "
            f"({sum(len(r.cases) for r in rules)} in all)"
        )
    for rep in reports:
        if not rep.passed:
            print("\n" + rep.failure_text())
        elif rep.notes:
            print(f"\nnote ({rep.notes[0].rule}): {rep.notes[0].note}")
    return 1 if failed else 0


def _cmd_bench(a) -> int:
    from ._bench import benchmark

    rules = _rules(a.modules, a.rule, a.tag)
    if a.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit(
                "jaxrules bench: --plot needs matplotlib: pip install matplotlib"
            ) from None
    t0 = time.perf_counter()
    reports = []
    for i, r in enumerate(rules, 1):
        progress = lambda msg, i=i: print(
            f"[{i}/{len(rules)}] {msg} ({time.perf_counter() - t0:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        sizes = a.sizes if a.sizes else None
        if sizes is None and not r.bench.sizes:
            progress(f"{r.name}: no bench_inputs, benchmarking its example inputs")
        for case in r.bench_cases():  # each case with problems of its own
            rep = benchmark(
                r, sizes=sizes, dtype=a.dtype, pairs=a.pairs, progress=progress, case=case
            )
            reports.append(rep)
            print(f"\n{rep}\n", flush=True)
    if len(reports) > 1:
        print("Summary:")
        for rep in reports:
            print("  " + rep.summary())
    if a.json:
        import json

        with open(a.json, "w") as fh:
            json.dump([rep.to_dict() for rep in reports], fh, indent=1)
    if a.plot:
        _plot(reports, a.plot)
    return 0


def _plot(reports, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(reports)
    cols = min(k, 3)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, rep in zip(axes.ravel(), reports):
        rep.plot(ax=ax)
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {n}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    from ._version import __version__

    p = argparse.ArgumentParser(
        prog="jaxrules", description="Check and benchmark JAX custom differentiation rules."
    )
    p.add_argument("--version", action="version", version=f"jaxrules {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("modules", nargs="*", help=f"modules defining rules (default: {BUILTIN})")
        sp.add_argument("--rule", action="append", help="only this rule (repeatable)")
        sp.add_argument("--tag", default=None, help="only rules with this tag")

    sp = sub.add_parser("list", help="list registered rules")
    common(sp)
    sp.set_defaults(func=_cmd_list)

    sp = sub.add_parser("check", help="check rules against JAX's differentiation of references")
    common(sp)
    sp.add_argument(
        "--dtype",
        action="append",
        choices=["float64", "float32", "complex128", "complex64"],
        help="check in this dtype (repeatable; default: each rule's registered dtypes)",
    )
    sp.add_argument("--transform", action="append", choices=["eager", "jit", "vmap"])
    sp.add_argument("--seed", action="append", type=int, help="a seed to check (repeatable)")
    sp.add_argument("--seeds", type=_positive, default=3, help="number of seeds (default 3)")
    sp.add_argument(
        "--quick",
        action="store_true",
        help="while editing: one dtype, one seed, jit only (not the full proof; CI runs that)",
    )
    sp.add_argument("--order", type=_positive, default=None, help="highest order to check")
    sp.add_argument(
        "--jobs", type=int, default=None, help="rules checked in parallel (default: cores)"
    )
    sp.add_argument(
        "--cache-dir",
        default=None,
        help="JAX's persistent compilation cache, or 'off' (default: $JAXRULES_CACHE_DIR, "
        "else a per-user cache)",
    )
    sp.set_defaults(func=_cmd_check)

    sp = sub.add_parser("bench", help="time rules against JAX differentiating their references")
    common(sp)
    sp.add_argument("--sizes", type=int, nargs="+", help="problem sizes n (default: per rule)")
    sp.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    sp.add_argument("--pairs", type=int, default=5, help="interleaved pairs per cell (5)")
    sp.add_argument("--json", default=None, help="write the results to this JSON file")
    sp.add_argument("--plot", default=None, help="write a plot of time against size (PNG)")
    sp.set_defaults(func=_cmd_bench)

    sp = sub.add_parser("info", help="the JAX in use and what jaxrules does on it")
    sp.set_defaults(func=_cmd_info)

    a = p.parse_args(argv)
    return a.func(a)


def _cmd_info(a) -> int:
    from . import _backend

    info = _backend.describe()
    print(f"jax {info['jax']}")
    if info["hijax"]:
        print(f"hijax primitive: jax.experimental.hijax.{info['hijax']}")
        print(f"bound: {info['bind']} (docs/compatibility.md)")
    else:
        print(f"hijax primitive: unavailable ({info['hijax_unavailable_reason']})")
        print(
            "fallback: VJP-only rules have no forward mode; rules with both rules use the JVP "
            "rule in both modes"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
