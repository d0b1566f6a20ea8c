"""What the checker reports: one result per check, grouped into failure blocks a person can act
on, each with one complete reproducer."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import RuleCheckError
from .._registry import MISSING, Rule, default_registry

#: `jr.check`'s default for `reference`: none given (`None` means "no reference").


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to re-run a check from a fresh Python: the imports and the `jr.check` call's
    fixed part (what is checked, and the registry, reference and inputs it needs)."""

    imports: tuple[str, ...]
    target: str  # the first argument of jr.check, as code
    extra: tuple[str, ...] = ()  # further keyword arguments, as code ("registry=WRONG", ...)
    by_index: bool = False  # select the case as case=<index> (a registered rule's own cases)

    def code(
        self,
        *,
        case: Mapping[str, Any] | None,
        dtypes,
        transforms,
        seed,
        order,
        index=0,
        scale=1.0,
    ) -> str:
        kw = list(self.extra)
        if self.by_index:
            kw.append(f"case={index}")
        elif case:
            kw.append(f"cases=[{dict(case)!r}]")
        kw.append(f"dtypes={tuple(dtypes)!r}")
        kw.append(f"transforms={tuple(transforms)!r}")
        if seed is not None:
            kw.append(f"seeds=[{seed}]")
        if scale != 1.0:
            kw.append(f"scales=({scale!r},)")
        if order is not None:
            kw.append(f"order={order}")
        call = f"jr.check({self.target}, {', '.join(kw)}).raise_if_failed()"
        return "\n".join([*self.imports, call])


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check of one rule at one (case, dtype, transform, argument, output).

    `transform` is `None` for what does not depend on a transform (the example inputs, the
    output structure, whether a jaxrules rule ran). `argument`/`output` are `None` when
    the check covers every argument (all inputs perturbed at once) or every output (all
    cotangents at once). `note` says when the tolerance was widened, and why.
    """

    rule: str
    case: int
    case_values: Mapping[str, Any]
    dtype: str
    transform: str | None
    check: str
    argument: str | None
    output: str | None
    error: float
    tol: float
    seed: int | None
    message: str = ""
    note: str = ""
    scale: float = 1.0  # the magnitude of the point (see `CheckSpec.scales`)
    order: int | None = dataclasses.field(default=None, compare=False)
    recipe: Recipe | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return not self.message and self.error <= self.tol

    @property
    def requested_transform(self) -> str | None:
        """The `transforms=` entry that ran this check (`vmap(point)` comes from `vmap`)."""
        return None if self.transform is None else self.transform.split("(")[0]

    def reproducer(self, dtypes=None, transforms=None) -> str:
        """Python code that re-runs this check alone (imports included); `dtypes` and
        `transforms` widen it to those of a group of failures."""
        recipe = self.recipe or Recipe(("import jaxrules as jr",), repr(self.rule))
        tr = self.requested_transform
        return recipe.code(
            case=self.case_values,
            index=self.case,
            dtypes=dtypes or (self.dtype,),
            transforms=transforms or ((tr,) if tr else ("jit",)),
            seed=self.seed,
            order=self.order,
            scale=self.scale,
        )

    @property
    def where(self) -> str:
        arg = "all arguments" if self.argument is None else f"argument {self.argument}"
        out = "all outputs" if self.output is None else f"output {self.output}"
        return f"{arg}, {out}"

    def outcome(self) -> str:
        if self.message:
            return self.message
        at = f"seed {self.seed}" + ("" if self.scale == 1.0 else f", inputs × {self.scale:g}")
        return f"error {self.error:.3g} > tolerance {self.tol:.3g} ({at})"

    def describe(self) -> str:
        case = f" case {self.case} {dict(self.case_values)}" if self.case_values else ""
        tr = f", {self.transform}" if self.transform else ""
        head = f"{self.rule}{case} [{self.dtype}{tr}] {self.check} ({self.where})"
        code = self.reproducer().replace("\n", "\n        ")
        return f"{head}: {self.outcome()}\n    reproduce:\n        {code}"


@dataclasses.dataclass(frozen=True)
class Coverage:
    """What a `check` call covered: stated in every summary, so a pass says what it means."""

    dtypes: tuple[str, ...]
    transforms: tuple[str, ...]
    seeds: tuple[int, ...]
    order: int
    directions: int
    cases: int
    scales: tuple[float, ...] = ()
    quick: bool = False

    def __str__(self) -> str:
        notes = {
            "vmap": " (+ point-only and directions-only batching)",
            "eager": f" ({self.dtypes[0]})",
        }
        tr = ", ".join(t + notes.get(t, "") for t in self.transforms)
        scales = (
            f"; inputs also × {', '.join(f'{s:g}' for s in self.scales)} (first seed)"
            if self.scales
            else ""
        )
        head = (
            "QUICK PROFILE, not the full proof (run without quick for that): " if self.quick else ""
        )
        return (
            f"{head}dtypes {', '.join(self.dtypes)}; transforms {tr}; seeds {list(self.seeds)}"
            f"{scales}; order {self.order}; {self.directions} direction(s) per point; "
            f"{self.cases} case(s)"
        )


def _group_key(r: CheckResult):
    return (r.rule, r.case, r.argument, r.output)


def _redundant(key, fails, groups) -> bool:
    """An "all arguments" (or "all outputs") block each of whose failures (check, dtype,
    transform) is also a failure of a block for one argument (output): it adds nothing to
    that block, and is left out. (Batched, only all arguments at once are checked: such a
    block names the batchings, and stays.)"""
    rule, case, arg, out = key
    if arg is not None and out is not None:
        return False
    covered: set[tuple] = set()
    for (r, c, a, o), fs in groups.items():
        finer = (arg is None and a is not None) or (out is None and o is not None)
        same = (arg is None or a == arg) and (out is None or o == out)
        if (r, c) == (rule, case) and finer and same:
            covered |= {(f.check, f.dtype, f.transform) for f in fs}
    return {(f.check, f.dtype, f.transform) for f in fails} <= covered


def _failure_block(fails: Sequence[CheckResult]) -> str:
    """One block for the failures of one (rule, case, argument, output)."""
    first = fails[0]
    worst = max(fails, key=badness)
    checks = sorted({f.check for f in fails})
    dtypes = sorted({f.dtype for f in fails}, reverse=True)
    transforms = sorted({f.transform for f in fails if f.transform})
    case = f" case {first.case} {dict(first.case_values)}" if first.case_values else ""
    lines = [
        f"{first.rule}{case} — {first.where}: {', '.join(checks)} failed "
        f"[{', '.join(dtypes)}{'; ' + ', '.join(transforms) if transforms else ''}]"
    ]
    tr = f" under {worst.transform}" if worst.transform else ""
    lines.append(f"    worst: {worst.check} in {worst.dtype}{tr}: {worst.outcome()}")
    if worst.note:
        lines.append(f"    note: {worst.note}")
    requested = tuple(dict.fromkeys(f.requested_transform for f in fails if f.transform))
    code = worst.reproducer(tuple(dtypes), requested or ("jit",))
    lines.append("    reproduce:\n        " + code.replace("\n", "\n        "))
    return "\n".join(lines)


@dataclasses.dataclass
class CheckReport:
    """The outcome of `check`: every check's worst case over seeds and directions."""

    results: list[CheckResult]
    seconds: float = 0.0
    coverage: Coverage | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def notes(self) -> list[CheckResult]:
        """The results whose tolerance was widened by calibration (with the reason)."""
        return [r for r in self.results if r.note and r.check != "scaled_point"]

    @property
    def skipped(self) -> list[CheckResult]:
        """The scaled points not checked because the reference is not finite there."""
        return [r for r in self.results if r.check == "scaled_point"]

    def raise_if_failed(self) -> CheckReport:
        """Raise `jaxrules.RuleCheckError` listing every failure; return self if none."""
        __tracebackhide__ = True  # pytest: the traceback starts at the caller
        if not self.passed:
            raise RuleCheckError(self.failure_text())
        return self

    def failure_blocks(self) -> list[str]:
        """One text block per failing (rule, case, argument, output), with a reproducer."""
        groups: dict[tuple, list[CheckResult]] = {}
        for f in self.failures:
            groups.setdefault(_group_key(f), []).append(f)
        return [_failure_block(g) for k, g in groups.items() if not _redundant(k, g, groups)]

    def failure_text(self) -> str:
        if self.passed:
            return f"all {len(self.results)} checks passed" + (
                f" ({self.coverage})" if self.coverage else ""
            )
        blocks = self.failure_blocks()
        head = (
            f"{len(self.failures)} check(s) failed, in {len(blocks)} place(s) "
            "(rule, argument, output):"
        )
        return "\n".join([head, *blocks])

    def __bool__(self) -> bool:
        return self.passed

    @property
    def worst_ratio(self) -> float:
        """The largest error/tolerance among the checks that produced a number."""
        return worst_ratio(self.results)

    def summary(self) -> str:
        rows: dict[tuple, list[CheckResult]] = {}
        for r in self.results:
            rows.setdefault((r.rule, r.case, r.dtype, r.transform or "-"), []).append(r)
        out = [
            "rule                 case  dtype      transform         checks  worst err/tol  status"
        ]
        for (rule, case, dtype, tr), rs in rows.items():
            ok = all(x.passed for x in rs)
            out.append(
                f"{rule:<20} {case:>4}  {dtype:<10} {tr:<17} {len(rs):>6}  "
                f"{worst_ratio(rs):>13.3g}  {'PASS' if ok else 'FAIL'}"
            )
        if any(tr == "-" for (_, _, _, tr) in rows):
            out.append(
                "(transform -: what does not depend on one: the output structure, that a rule "
                "ran, the x64 dtypes, zero_declared)"
            )
        if self.coverage is not None:
            out.append(f"covered: {self.coverage}")
        widened = self.notes
        if widened:
            out.append(
                f"{len(widened)} tolerance(s) widened by calibration, e.g. {widened[0].note}"
            )
        for r in self.skipped:
            out.append(f"{r.rule} [{r.dtype}]: {r.note}")
        return "\n".join(out)

    def __str__(self) -> str:
        s = self.summary()
        if not self.passed:
            s += "\n\n" + self.failure_text()
        return s


def badness(r: CheckResult) -> float:
    if r.message:
        return float("inf")
    if r.tol == 0:
        return r.error
    return r.error / r.tol


def worst_ratio(results: Sequence[CheckResult]) -> float:
    """Largest error/tolerance over `results` that are numbers (not raised errors); 0 if none."""
    return max((r.error / r.tol for r in results if not r.message and r.tol), default=0.0)


__all__ = ["CheckReport", "CheckResult", "Coverage", "Recipe", "RuleCheckError"]


# -- reproducer code -----------------------------------------------------------------------------
def _code_for(fn: Callable) -> tuple[str | None, str]:
    """An import line and an expression naming `fn` from a fresh interpreter, if it has one."""
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not mod or not qual or "<" in qual or mod == "__main__":
        return None, f"<{getattr(fn, '__name__', 'your function')}>"
    for m in dict.fromkeys([mod.replace("._src", ""), mod]):
        try:
            obj = importlib.import_module(m)
            for part in qual.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            continue
        if obj is fn:
            return f"import {m}", f"{m}.{qual}"
    return None, f"<{qual}>"


def recipe_for(rec: Rule, registered: bool, registry, reference, inputs) -> Recipe:
    """How to re-run a check of `rec` from a fresh interpreter (`reference`, `inputs`: what
    the `jr.check` call overrode; `MISSING` / `None` where it did not)."""
    imports = ["import jaxrules as jr"]
    extra: list[str] = []
    if registered:
        if (
            rec.module
            and rec.module not in ("__main__", "jaxrules")
            and registry
            in (
                None,
                default_registry,
            )
        ):
            imports.append(f"import {rec.module}  # registers {rec.name!r}")
        if registry not in (None, default_registry):
            found = _registry_name(registry, rec.module)
            if found:
                imports.append(f"from {found[0]} import {found[1]}")
                extra.append(f"registry={found[1]}")
            else:
                extra.append("registry=<the Registry holding it>")
        target = repr(rec.name)
    else:
        line, target = _code_for(rec.fn)
        if line:
            imports.append(line)
    if reference is not MISSING:
        if reference is None:
            extra.append("reference=None")
        else:
            line, code = _code_for(reference)
            if line:
                imports.append(line)
            extra.append(f"reference={code}")
    if inputs is not None:
        if isinstance(inputs, Mapping):
            extra.append("inputs={" + ", ".join(f"{k!r}: {g!r}" for k, g in inputs.items()) + "}")
        else:
            extra.append(f"inputs={inputs!r}")
    return Recipe(tuple(dict.fromkeys(imports)), target, tuple(extra))


def _registry_name(registry, module: str) -> tuple[str, str] | None:
    """The module attribute holding `registry` (the rule's own module first)."""
    mods = [sys.modules.get(module), *list(sys.modules.values())]
    for m in mods:
        if m is None:
            continue
        for attr, val in list(vars(m).items()):
            if val is registry and not attr.startswith("__"):
                return m.__name__, attr
    return None
