"""`jr.benchmark`: is a rule faster than JAX differentiating its reference?

For each size, the rule's arguments are drawn (`bench_inputs` of the registration, or the
example inputs), and three computations are compiled for the rule and for its reference:

- `primal`: `f(*args)`;
- `jvp`: `jax.jvp(f, args, tangents)` — forward mode, all arguments perturbed;
- `vjp`: `jax.vjp(f, *args)[1](cotangent)` — reverse mode, the full cotangent.

Each is `jax.jit`-compiled ahead of time (so the timing excludes dispatch and cache lookup),
warmed up, and timed *interleaved* with its reference counterpart (rule, reference, rule, ...)
with `block_until_ready`; the result is the median ratio rule / reference over the pairs and
its range — a ratio survives a noisy machine better than two absolute times. Memory is XLA's
temporary allocation of each compiled computation (`compiled.memory_analysis()`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._closure import is_array
from ._custom import CustomRule, undecorated
from ._registry import Registry, Rule, case_label, default_registry

MODES = ("primal", "jvp", "vjp")

#: A rule counts as faster (slower) than its reference when the ratio is below 0.95 (above
#: 1.05) *and* every pair agrees (a sign test: with 5 pairs, 1 chance in 32 by luck);
#: otherwise it is "on par" within the noise. Where the pairs' ratios differ by more than a
#: factor `_NOISY` the machine was too noisy to decide anything: "noisy: rerun".
_FASTER, _SLOWER, _NOISY = 0.95, 1.05, 2.0

#: What each mode's time includes (printed with every report).
INCLUDES = (
    "primal: one call; JVP: jax.jvp (primal and tangent together); VJP: jax.vjp and its "
    "pullback on a full cotangent (the forward pass included)"
)


# -- timing -------------------------------------------------------------------------------------
def machine() -> str:
    """One line naming the machine: processor, JAX backend and device, JAX version."""
    dev = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {dev.platform}:{dev.device_kind}, jax {jax.__version__}"


def time_once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def mean_time(fn: Callable[[], Any], inner: int) -> float:
    """Mean time of `inner` back-to-back calls, blocking once at the end."""
    t0 = time.perf_counter()
    out = None
    for _ in range(inner):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / inner


def calibrate(fn: Callable[[], Any], target: float = 0.02) -> int:
    """Repetitions so that one measurement of `fn` takes about `target` seconds."""
    t = max(time_once(fn), 1e-6)
    return max(1, min(10_000, int(target / t)))


def interleaved_ratio(a: Callable, b: Callable, *, pairs: int = 7, inner: int | None = None):
    """Time `a` and `b` alternately (after one warm-up call each).

    **Returns:** `(median time of a, median time of b, median of the ratios a/b, (min, max)
    of the ratios)`. `inner`: calls per measurement (default: enough for ~20 ms each, so that
    dispatch does not dominate small problems).
    """
    jax.block_until_ready(a())
    jax.block_until_ready(b())
    if inner is None:
        inner = max(calibrate(a), calibrate(b))
    ta, tb, ratios = [], [], []
    for _ in range(max(1, pairs)):
        x = mean_time(a, inner)
        y = mean_time(b, inner)
        ta.append(x)
        tb.append(y)
        ratios.append(x / y)
    return (
        statistics.median(ta),
        statistics.median(tb),
        statistics.median(ratios),
        (min(ratios), max(ratios)),
    )


def temp_bytes(compiled) -> int | None:
    """XLA's temporary memory of a compiled computation (None where the backend won't say)."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # pragma: no cover - backend without memory analysis
        return None
    return None if stats is None else int(stats.temp_size_in_bytes)


# -- results -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BenchRow:
    """One (size, mode): median times in seconds, `ratio = rule_s / ref_s` (so the columns
    agree), `ratio_range` the smallest and largest ratio of the interleaved pairs."""

    size: int | None
    mode: str
    rule_s: float
    ref_s: float | None
    ratio: float | None
    ratio_range: tuple[float, float] | None
    rule_bytes: int | None
    ref_bytes: int | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "no reference"
        lo, hi = self.ratio_range
        if hi > _NOISY * lo:
            return "noisy: rerun"
        if self.ratio < _FASTER and hi < 1.0:
            return "faster"
        if self.ratio > _SLOWER and lo > 1.0:
            return "slower"
        return "on par"


def _ms(t):
    return "–" if t is None else (f"{t * 1e3:.3g}" if t < 1 else f"{t * 1e3:.0f}")


def _mib(b):
    return "–" if b is None else f"{b / 2**20:.3g}"


@dataclasses.dataclass
class BenchmarkReport:
    """What `benchmark` measured: `rows` (`BenchRow`), with a readable table
    (`str(report)`), a one-line verdict per mode, `to_dict()` and `plot(path)`."""

    rule: str
    dtype: str
    pairs: int
    machine: str
    rows: list[BenchRow]
    against: str = "its reference"  # what the rule is timed against, named
    arguments: dict = dataclasses.field(default_factory=dict)  # size -> the timed arguments

    def summary(self) -> str:
        parts = []
        for mode in MODES:
            rows = [r for r in self.rows if r.mode == mode and r.ratio is not None]
            if not rows:
                continue
            by: dict[str, list[str]] = {}
            for r in rows:
                by.setdefault(r.verdict, []).append("example" if r.size is None else str(r.size))
            text = "; ".join(f"{v} at n={', '.join(s)}" for v, s in by.items())
            parts.append(f"{mode.upper() if mode != 'primal' else 'primal'}: {text}")
        head = f"{self.rule} vs JAX differentiating {self.against} ({self.dtype})"
        if self.pairs < 5:
            head += " [fewer than 5 pairs: indicative only]"
        return head + (": " + " | ".join(parts) if parts else ": no reference to compare")

    def table(self) -> str:
        header = (
            "| n | mode | rule ms | reference ms | rule / reference (range) | verdict | "
            "rule temp MiB | reference temp MiB |"
        )
        lines = [header, "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            ratio = (
                "–"
                if r.ratio is None
                else f"{r.ratio:.2f} ({r.ratio_range[0]:.2f}–{r.ratio_range[1]:.2f})"
            )
            verdict = r.verdict + (f" ({r.note})" if r.note else "")
            size = "example" if r.size is None else r.size
            lines.append(
                f"| {size} | {r.mode} | {_ms(r.rule_s)} | {_ms(r.ref_s)} | {ratio} | {verdict} "
                f"| {_mib(r.rule_bytes)} | {_mib(r.ref_bytes)} |"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        noisy = sum(r.ratio is not None and r.verdict == "noisy: rerun" for r in self.rows)
        warn = (
            f"\nWARNING: {noisy} cell(s) too noisy to decide (their pairs differ by more than "
            f"{_NOISY:g}x): rerun on an idle machine, or with more pairs."
            if noisy
            else ""
        )
        args = "".join(
            f"\n  n={'example' if n is None else n}: {shapes}"
            for n, shapes in self.arguments.items()
        )
        return (
            f"{self.summary()}\n{self.pairs} interleaved pairs per cell; ms: medians; "
            f"rule / reference: the ratio of the medians, (range) over the pairs; "
            f"{self.machine}\nTimes include: {INCLUDES}.{warn}"
            f"{chr(10) + 'Differentiated arguments:' + args if args else ''}\n\n{self.table()}"
        )

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "dtype": self.dtype,
            "pairs": self.pairs,
            "machine": self.machine,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "against": self.against,
            "arguments": {str(k): v for k, v in self.arguments.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> BenchmarkReport:
        """The inverse of `to_dict` (e.g. to re-tabulate saved results)."""
        rows = []
        for r in d["rows"]:
            r = dict(r)
            if r.get("ratio_range") is not None:
                r["ratio_range"] = tuple(r["ratio_range"])
            rows.append(BenchRow(**r))
        args = {None if k == "None" else int(k): v for k, v in d.get("arguments", {}).items()}
        return cls(
            d["rule"], d["dtype"], d["pairs"], d["machine"], rows,
            d.get("against", "its reference"), args,
        )  # fmt: skip

    def to_json(self, path: str) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)

    def plot(self, path: str | None = None, ax=None):
        """Time against size, rule (solid) and reference (dashed), one colour per mode.
        Needs matplotlib (the `bench` extra). Returns the figure."""
        import matplotlib

        if path is not None and ax is None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
        sized = [r for r in self.rows if r.size is not None]
        for i, mode in enumerate(MODES):
            rows = sorted((r for r in sized if r.mode == mode), key=lambda r: r.size)
            if not rows:
                continue
            n = [r.size for r in rows]
            color = f"C{i}"
            ax.plot(n, [r.rule_s * 1e3 for r in rows], "o-", color=color, label=f"{mode}: rule")
            refs = [(r.size, r.ref_s * 1e3) for r in rows if r.ref_s is not None]
            if refs:
                ax.plot(*zip(*refs), "s--", color=color, alpha=0.7, label=f"{mode}: reference")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("time (ms)")
        ax.set_title(f"{self.rule} ({self.dtype})")
        ax.legend(fontsize=7)
        fig = fig or ax.figure
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig


# -- the benchmark -----------------------------------------------------------------------------
def _is_float(x) -> bool:
    return is_array(x) and jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _compile(fn, *args):
    return jax.jit(fn).lower(*args).compile()


def _programs(f: Callable, dyn: dict, seed: int):
    """The three computations of `f(dyn)`, and their arguments."""
    rng = np.random.default_rng(seed)
    randn = lambda x: jnp.asarray(rng.standard_normal(jnp.shape(x)), jnp.result_type(x))
    tangents = jax.tree_util.tree_map(randn, dyn)
    out = jax.eval_shape(f, dyn)
    cot = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), out)
    return {
        "primal": (f, (dyn,)),
        "jvp": (lambda d, t: jax.jvp(f, (d,), (t,))[1], (dyn, tangents)),
        "vjp": (lambda d, c: jax.vjp(f, d)[1](c)[0], (dyn, cot)),
    }


def _caller(rec: Rule, fn: Callable, static: dict) -> Callable:
    """`d -> fn(...)` called as the rule is: positional where the rule's parameter is, so a
    reference with other parameter names (`jnp.linalg.inv(a)`) works too."""
    sig = inspect.signature(undecorated(rec.fn))

    def call(d):
        bound = sig.bind_partial(**d, **static)
        return fn(*bound.args, **bound.kwargs)

    return call


def _describe_error(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"reference: {type(e).__name__}" + (f": {msg[:60]}" if msg else "")


def benchmark(
    rule: str | Callable | Rule,
    *,
    sizes: Iterable[int] | None = None,
    dtype: str = "float32",
    pairs: int = 5,
    modes: Sequence[str] = MODES,
    reference: Callable | None = None,
    seed: int = 0,
    registry: Registry | None = None,
    progress: Callable[[str], None] | None = None,
    case: int | str | None = None,
) -> BenchmarkReport:
    """Time and measure a registered rule against JAX differentiating its reference.

    **Arguments:**

    - `rule`: a registered rule's name, its function, or its `Rule`.
    - `sizes`: problem sizes `n` (the registration's `bench_inputs(n)` draws the
      arguments); default the registration's `bench_sizes`, or its example inputs.
    - `dtype`: `"float32"` or `"float64"` (run inside `jax.enable_x64()`).
    - `pairs`: interleaved (rule, reference) measurement pairs per cell (≥ 5 for a claim).
    - `modes`: any of `"primal"`, `"jvp"`, `"vjp"`.
    - `reference`: what to compare against (default: the registration's
      `bench_reference`, else its `reference`).
    - `progress`: called with a short message before each cell (the CLI prints them).
    - `case`: which registered case (index or label; default the first): its static values,
      and its own benchmark inputs and reference where the `jr.Case` has them.

    **Returns:** a `BenchmarkReport`; `print(report)` shows a verdict per mode and
    the table.

    Examples:
        >>> import jaxrules as jr
        >>> report = jr.benchmark("linear_solve", sizes=[8], pairs=1)
        >>> [(row.size, row.mode) for row in report.rows]
        [(8, 'primal'), (8, 'jvp'), (8, 'vjp')]
    """
    rec, _ = (registry if registry is not None else default_registry).resolve(rule, who="benchmark")
    case_idx = 0 if case is None else rec.select(case)
    the_case = rec.cases[case_idx] if rec.cases else {}
    name = rec.name if len(rec.cases) <= 1 else f"{rec.name} ({case_label(the_case, case_idx)})"
    rec = rec.for_case(the_case)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"benchmark: unknown mode(s) {bad}; expected any of {MODES}.")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"benchmark: dtype must be 'float32' or 'float64', got {dtype!r}.")
    sizes_list: list[int | None]
    if sizes is None:
        sizes_list = list(rec.bench.sizes) if rec.bench.sizes else [None]
    else:
        sizes_list = [int(n) for n in sizes]
    ref_fn = reference or rec.bench.reference or rec.reference
    against = _named(
        "the given reference" if reference else
        "its bench_reference" if rec.bench.reference else "its reference",
        ref_fn,
    )  # fmt: skip
    arguments: dict = {}
    rows: list[BenchRow] = []
    with jax.enable_x64(dtype == "float64"):
        for size in sizes_list:
            case = dict(the_case)
            args = rec.draw(jax.random.key(seed), dtype, case, size=size)
            # Differentiate the float arguments the rule differentiates (not its static,
            # nondiff or integer ones: those stay fixed, for the reference too).
            fixed = set(case)
            if isinstance(rec.fn, CustomRule):
                fixed |= set(rec.fn.argspec.static) | set(rec.fn.argspec.nondiff)
            static = {k: v for k, v in args.items() if k in fixed or not _is_float(v)}
            dyn = {k: v for k, v in args.items() if k not in static}
            arguments[size] = ", ".join(f"{k} {tuple(jnp.shape(v))}" for k, v in dyn.items())
            f_rule = _caller(rec, rec.fn, static)
            f_ref = None if ref_fn is None else _caller(rec, ref_fn, static)
            rule_progs = _programs(f_rule, dyn, seed)
            ref_progs = None if f_ref is None else _programs(f_ref, dyn, seed)
            for mode in modes:
                if progress is not None:
                    progress(f"{name} n={'example' if size is None else size} {mode}")
                fn, fargs = rule_progs[mode]
                c_rule = _compile(fn, *fargs)
                call_rule = lambda c=c_rule, a=fargs: c(*a)
                note, c_ref = "", None
                if ref_progs is not None:
                    try:
                        rfn, rargs = ref_progs[mode]
                        c_ref = _compile(rfn, *rargs)
                        call_ref = lambda c=c_ref, a=rargs: c(*a)
                    except Exception as e:  # e.g. JAX cannot differentiate the reference
                        note, c_ref = _describe_error(e), None
                if c_ref is not None:
                    t_rule, t_ref, _, spread = interleaved_ratio(call_rule, call_ref, pairs=pairs)
                    ratio = t_rule / t_ref  # of the medians shown: the columns agree
                else:
                    jax.block_until_ready(call_rule())
                    inner = calibrate(call_rule)
                    t_rule = statistics.median(
                        mean_time(call_rule, inner) for _ in range(max(1, pairs))
                    )
                    t_ref, ratio, spread = None, None, None
                rows.append(
                    BenchRow(
                        size=size,
                        mode=mode,
                        rule_s=t_rule,
                        ref_s=t_ref,
                        ratio=ratio,
                        ratio_range=spread,
                        rule_bytes=temp_bytes(c_rule),
                        ref_bytes=None if c_ref is None else temp_bytes(c_ref),
                        note=note,
                    )
                )
    return BenchmarkReport(name, dtype, pairs, machine(), rows, against, arguments)


def _named(what: str, fn) -> str:
    """`what` and the function's name, where it has a useful one."""
    if fn is None:
        return what
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    mod = getattr(fn, "__module__", None)
    if not name or "<" in name:
        return what
    return f"{what} ({mod}.{name})" if mod else f"{what} ({name})"
