"""The rule registry: each rule with its reference, example inputs and checking metadata."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax

from ._custom import CustomRule, undecorated
from ._dtypes import INEXACT
from .inputs import Generator

InputSpec = Mapping[str, Any] | Callable[[Any, Any], Any]

#: "Not given" for an argument where `None` means something (`jr.check(reference=None)`).
MISSING: Any = object()


class Case(Mapping):
    """One registered case of a rule: its static values, and optionally its own inputs.

    A `Case` reads as the mapping of its static values (so `dict(case)` is what the rule is
    called with); `inputs`, `bench_inputs` and `bench_reference` replace the rule's for this
    case, so one registration covers variants that need different example points (a
    triangular solve needs a triangular matrix) instead of one registration per variant.
    `label` names it (`jr.check(name, case="pos")`, the benchmark tables).

    `witness="differences"` checks this case's derivatives against float64 central finite
    differences of the reference (first and second order) instead of JAX's differentiation of
    it: for points where the reference's *value* is right but JAX's derivative of it is not —
    an `eigh`-based reference at repeated eigenvalues (NaN), an SVD at repeated singular
    values. The rule's VJP and its Hessian-vector products are tied to those differences by
    their pairings with the JVP (`consistency`, `hvp_fd`).

    Examples:
        >>> import jaxrules as jr
        >>> c = jr.Case("pos", {"assume": "pos"}, inputs={"A": jr.inputs.spd(3)})
        >>> dict(c), c.label
        ({'assume': 'pos'}, 'pos')
    """

    def __init__(
        self,
        label: str = "",
        static: Mapping[str, Any] | None = None,
        *,
        inputs: InputSpec | None = None,
        bench_inputs: Callable[[int], InputSpec] | None = None,
        bench_reference: Callable | None = None,
        witness: str = "jax",
    ):
        if witness not in WITNESSES:
            raise ValueError(
                f"Case({label!r}): witness must be one of {', '.join(map(repr, WITNESSES))}, got "
                f"{witness!r}. 'jax' (default): JAX's differentiation of the reference; "
                "'differences': finite differences of the reference, for points where JAX's "
                "derivative of it fails."
            )
        self.witness = witness
        self.label = str(label)
        self.static = dict(static or {})
        self.inputs = inputs
        self.bench_inputs = bench_inputs
        self.bench_reference = bench_reference

    def __getitem__(self, key):
        return self.static[key]

    def __iter__(self):
        return iter(self.static)

    def __len__(self):
        return len(self.static)

    def __repr__(self):
        return f"jr.Case({self.label!r}, {self.static!r})"

    def __eq__(self, other):
        if isinstance(other, Case):
            return (self.label, self.static, self.inputs, self.witness) == (
                other.label,
                other.static,
                other.inputs,
                other.witness,
            )
        return NotImplemented if not isinstance(other, Mapping) else False

    __hash__ = None  # type: ignore[assignment]


#: How a case's derivatives are witnessed (see `Case`).
WITNESSES = ("jax", "differences")


def witness_of(case: Mapping[str, Any]) -> str:
    """A case's witness: `"jax"` unless a `Case` says `"differences"`."""
    return case.witness if isinstance(case, Case) else "jax"


def case_label(case: Mapping[str, Any], index: int) -> str:
    """A case's name for reports and tables: its label, else its static values, else its
    index."""
    if isinstance(case, Case) and case.label:
        return case.label
    if case:
        return ",".join(f"{k}={v}" for k, v in case.items())
    return str(index)


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """How the checker checks a rule by default (validated on construction).

    - `dtypes`: the dtypes it is checked in (`("float64", "float32")`; `register` adds
      `"complex128", "complex64"` for a rule decorated with `allow_complex=True`);
    - `rtol`/`atol`: tolerance overrides (`rtol` may be a dict by real dtype name,
      `{"float64": 1e-8, "float32": 1e-3}`); `order`: the highest derivative order the
      rule supports;
    - `scales`: the magnitudes, beyond the registered inputs' own, at which the checker also
      checks the rule (one point each, the scalable generators of `inputs` multiplied by the
      factor, see `jaxrules.inputs.Generator.scaled`): by default `(1e-2, 1e2)`, so a branch
      for small or large inputs is exercised; `()` for a rule whose domain is only the
      registered magnitudes (say why in the registration);
    - `projectors`: per-parameter tangent projectors for structured arguments (taken from
      structured generators unless given).
    """

    dtypes: tuple[str, ...] = ("float64", "float32")
    rtol: float | Mapping[str, float] | None = None
    atol: float | None = None
    order: int = 1
    scales: tuple[float, ...] = (1e-2, 1e2)
    projectors: Mapping[str, Callable] = dataclasses.field(default_factory=dict)
    who: dataclasses.InitVar[str] = "CheckSpec"

    def __post_init__(self, who: str):
        dtypes = (self.dtypes,) if isinstance(self.dtypes, str) else tuple(self.dtypes)
        for d in dtypes:
            if not isinstance(d, str) or d not in INEXACT:
                raise ValueError(f"{who}: dtypes must name some of {INEXACT}, got {d!r}.")
        if not dtypes:
            raise ValueError(f"{who}: dtypes is empty; the checker would check nothing.")
        if not isinstance(self.order, int) or isinstance(self.order, bool) or self.order < 1:
            raise ValueError(f"{who}: order must be an int >= 1, got {self.order!r}.")
        rtol = dict(self.rtol) if isinstance(self.rtol, Mapping) else self.rtol
        for name, value in (
            ("dtypes", dtypes),
            ("rtol", rtol),
            ("scales", _scales(who, self.scales)),
            ("projectors", dict(self.projectors or {})),
        ):
            object.__setattr__(self, name, value)


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """What `jaxrules.benchmark` times a rule on (validated on construction).

    - `inputs`: `n -> inputs` (the forms of `Rule.inputs`) giving arguments of size `n`;
    - `sizes`: its default sizes;
    - `reference`: what the benchmark compares against, where the checker's reference does
      not scale (e.g. a Kronecker-product solve); `None`: the rule's `reference`.
    """

    inputs: Callable[[int], InputSpec] | None = None
    sizes: tuple[int, ...] = ()
    reference: Callable | None = None
    who: dataclasses.InitVar[str] = "BenchSpec"

    def __post_init__(self, who: str):
        for what, f in (("bench_inputs", self.inputs), ("bench_reference", self.reference)):
            if f is not None and not callable(f):
                raise TypeError(f"{who}: {what} must be callable, got {type(f).__name__}.")
        object.__setattr__(self, "sizes", tuple(int(n) for n in self.sizes))


#: `register`'s keywords that go to the rule's `CheckSpec` / `BenchSpec` (by field name).
CHECK_OPTIONS = ("dtypes", "rtol", "atol", "order", "scales", "projectors")
BENCH_OPTIONS = {"bench_inputs": "inputs", "bench_sizes": "sizes", "bench_reference": "reference"}


@dataclasses.dataclass(frozen=True)
class Rule:
    """A registered rule. Fields:

    - `name`: the registry name; `fn`: the function with custom rules;
    - `reference`: a plain-JAX implementation JAX can differentiate (same call signature);
    - `inputs`: per-parameter generators `{name: (key, dtype) -> value}`, or one joint
      generator `(key, dtype) -> dict of arguments`;
    - `cases`: example static values, one dict per case (`({},)` when none), or `Case`
      objects that also carry their own inputs / benchmark inputs / benchmark reference;
    - `tags`; `check`: the checker's settings (`CheckSpec`: dtypes, tolerances, order,
      scales, projectors); `bench`: the benchmark's (`BenchSpec`: inputs by size, sizes,
      reference);
    - `module`/`qualname`: where defined; `doc`: its docstring.
    """

    name: str
    fn: Callable
    reference: Callable | None
    inputs: InputSpec
    cases: tuple[Mapping[str, Any], ...] = ({},)
    tags: tuple[str, ...] = ()
    check: CheckSpec = dataclasses.field(default_factory=CheckSpec)
    bench: BenchSpec = dataclasses.field(default_factory=BenchSpec)
    module: str = ""
    qualname: str = ""
    doc: str = ""

    @property
    def identity(self) -> tuple[str, str]:
        return (self.module, self.qualname)

    def for_case(self, case: Mapping[str, Any] | None) -> Rule:
        """This rule with a `Case`'s own inputs, benchmark inputs and reference in place of
        the registration's (itself for a plain dict of static values)."""
        if not isinstance(case, Case):
            return self
        bench = self.bench
        if case.bench_inputs is not None:
            bench = dataclasses.replace(bench, inputs=case.bench_inputs)
        if case.bench_reference is not None:
            bench = dataclasses.replace(bench, reference=case.bench_reference)
        inputs = self.inputs if case.inputs is None else case.inputs
        return dataclasses.replace(self, inputs=inputs, bench=bench)

    def bench_cases(self) -> list[int]:
        """The cases a benchmark of the whole rule runs: the first, and each `Case` with its
        own benchmark inputs (others would repeat the first's problems)."""
        return [0] + [
            i
            for i, c in enumerate(self.cases)
            if i > 0 and isinstance(c, Case) and c.bench_inputs is not None
        ]

    def select(self, case: int | str) -> int:
        """The index of a case given by index or label (`ValueError` naming the choices)."""
        labels = [case_label(c, i) for i, c in enumerate(self.cases)]
        if isinstance(case, (int,)) and not isinstance(case, bool) and 0 <= case < len(labels):
            return int(case)
        if isinstance(case, str) and case in labels:
            return labels.index(case)
        raise ValueError(
            f"rule {self.name!r} has no case {case!r}; its cases are "
            f"{', '.join(f'{i} ({lab})' for i, lab in enumerate(labels))}."
        )

    def scalable(self, case: Mapping[str, Any] | None = None) -> bool:
        """Whether the example inputs (of `case`) can be drawn at another magnitude: some of
        them are generators that scale (a joint generator cannot be)."""
        spec = self.for_case(case).inputs
        return isinstance(spec, Mapping) and any(
            isinstance(g, Generator) and g.scalable for g in spec.values()
        )

    def draw(
        self,
        key,
        dtype,
        case: Mapping[str, Any] | None = None,
        *,
        size: int | None = None,
        scale: float = 1.0,
    ) -> dict[str, Any]:
        """Example arguments (static values of `case` included) as a dict by parameter name;
        with `size`, the benchmark's arguments of that size (`bench_inputs`); with `scale`,
        the scalable generators' draws times `scale` (the others' as they are)."""
        rec = self.for_case(case)
        if rec is not self:
            return rec.draw(key, dtype, dict(case), size=size, scale=scale)
        case = dict(case or {})
        spec = self.inputs
        if size is not None:
            if self.bench.inputs is None:
                raise ValueError(
                    f"rule {self.name!r} has no bench_inputs, so it cannot be benchmarked at "
                    f"size {size}. Register it with bench_inputs=lambda n: {{...}}, or "
                    "benchmark its example inputs (sizes=None)."
                )
            spec = self.bench.inputs(size)
        if callable(spec) and not isinstance(spec, Mapping):
            args = spec(key, dtype)
            if not isinstance(args, Mapping):
                raise TypeError(
                    f"rule {self.name!r}: its joint input generator must return a dict of "
                    f"arguments by name, got {type(args).__name__}."
                )
            args = dict(args)
        else:
            keys = jax.random.split(key, max(len(spec), 1))
            if scale != 1.0:
                spec = {
                    n: g.scaled(scale) if isinstance(g, Generator) and g.scalable else g
                    for n, g in spec.items()
                }
            args = {n: g(k, dtype) for (n, g), k in zip(spec.items(), keys)}
        args.update(case)
        return args

    def projector(self, param: str) -> Callable | None:
        if param in self.check.projectors:
            return self.check.projectors[param]
        if isinstance(self.inputs, Mapping):
            g = self.inputs.get(param)
            if isinstance(g, Generator) and g.structured:
                return g.project
        return None


class Registry:
    """A collection of rules, keyed by name. `jr.register` adds to the default one.

    Examples:
        >>> import jaxrules as jr
        >>> reg = jr.Registry()
        >>> len(reg)
        0
    """

    def __init__(self):
        self._rules: dict[str, Rule] = {}

    def add(self, rule: Rule) -> Rule:
        old = self._rules.get(rule.name)
        if old is not None and old.identity != rule.identity:
            raise ValueError(
                f"rule name {rule.name!r} is already registered by {old.module}.{old.qualname}; "
                f"{rule.module}.{rule.qualname} cannot take it. Choose another name."
            )
        if old is not None and old.fn is not rule.fn and _code(old.fn) is _code(rule.fn):
            # Same module, qualname *and code object*: two functions made by one factory (a
            # module reload compiles new code, and re-registers cleanly below).
            raise ValueError(
                f"rule name {rule.name!r} is already registered by another function made by "
                f"the same factory ({rule.module}.{rule.qualname}); the second registration "
                "would silently replace the first. Give each one its own name (e.g. "
                "register(f'{base}_{variant}', ...))."
            )
        self._rules[rule.name] = rule  # same identity: a module reload re-registers cleanly
        return rule

    def register(self, name: str | None = None, **options) -> Callable[[Callable], Callable]:
        """Decorator: register the decorated function (see `register`)."""

        def deco(fn: Callable) -> Callable:
            self.add(make_rule(name, fn, **options))
            return fn

        return deco

    def get(self, name: str) -> Rule:
        try:
            return self._rules[name]
        except KeyError:
            known = ", ".join(sorted(self._rules)) or "none"
            raise KeyError(
                f"no rule named {name!r} is registered (known: {known}). Import the module "
                "that defines it first."
            ) from None

    def lookup(self, rule: Any) -> Rule | None:
        """The record for a `Rule`, a registered name (`KeyError` if unknown) or a
        registered function; `None` for a function that is not registered."""
        if isinstance(rule, Rule):
            return rule
        if isinstance(rule, str):
            return self.get(rule)
        return next((r for r in self._rules.values() if r.fn is rule), None)

    def resolve(
        self,
        rule: Any,
        *,
        who: str,
        reference: Any = MISSING,
        inputs: InputSpec | None = None,
        cases: Sequence[Mapping[str, Any]] | None = None,
    ) -> tuple[Rule, bool]:
        """The one way the checker and the benchmark (`who`) turn what a user passed into a
        `Rule`: a name, a `Rule` or a registered function give the registered record, with
        `reference`/`inputs`/`cases` replacing its own where given; a function that is not
        registered (or is given with its own reference or inputs) gets a record made from
        them. Also returns whether the record is the registry's."""
        if isinstance(rule, (Rule, str)):
            rec = self.lookup(rule)
        elif callable(rule):
            found = self.lookup(rule)
            if found is not None and reference is MISSING and inputs is None:
                rec = found
            elif inputs is None:
                name = getattr(rule, "__name__", type(rule).__name__)
                if who == "check":
                    raise TypeError(
                        f"check: {name!r} is not registered; pass inputs={{name: generator}} "
                        "(and reference=...) to check it."
                    )
                raise TypeError(
                    f"{who}: expected a registered rule (its name, the function or the Rule), "
                    f"got {name!r}, which is not registered. Register it with "
                    "jr.register(..., reference=..., inputs=...)."
                )
            else:
                ref = None if reference is MISSING else reference
                return make_rule(None, rule, reference=ref, inputs=inputs, cases=cases), False
        else:
            raise TypeError(
                f"{who}: expected a rule name, a registered function or a Rule, got "
                f"{type(rule).__name__}."
            )
        if reference is not MISSING or inputs is not None or cases is not None:
            rec = dataclasses.replace(
                rec,
                reference=rec.reference if reference is MISSING else reference,
                inputs=rec.inputs if inputs is None else inputs,
                cases=rec.cases if cases is None else tuple(_case(c) for c in cases),
            )
        return rec, True

    def rules(
        self, tag: str | None = None, module: str | Sequence[str] | None = None
    ) -> list[Rule]:
        """Registered rules, optionally only those with `tag` or defined in `module`(s)."""
        mods = (module,) if isinstance(module, str) else tuple(module or ())
        return [
            r
            for r in self._rules.values()
            if (tag is None or tag in r.tags)
            and (not mods or any(r.module == m or r.module.startswith(m + ".") for m in mods))
        ]

    def __iter__(self) -> Iterator[Rule]:
        return iter(list(self._rules.values()))

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, name: object) -> bool:
        return name in self._rules


def make_rule(
    name: str | None,
    fn: Callable,
    *,
    reference: Callable | None,
    inputs: InputSpec,
    cases: Sequence[Mapping[str, Any]] | None = None,
    tags: Sequence[str] = (),
    **options,
) -> Rule:
    """A `Rule` for `fn`; `options` are `register`'s keywords for the checker
    (`CHECK_OPTIONS`) and the benchmark (`BENCH_OPTIONS`), validated by their records."""
    target = undecorated(fn)
    name = name or getattr(target, "__name__", None)
    if not name:
        raise ValueError("register: cannot infer a name for this rule; pass one explicitly.")
    who = f"register({name!r})"
    unknown = sorted(set(options) - set(CHECK_OPTIONS) - set(BENCH_OPTIONS))
    if unknown:
        known = ", ".join(("reference", "inputs", "cases", "tags", *CHECK_OPTIONS, *BENCH_OPTIONS))
        raise TypeError(f"{who}: unknown option(s) {', '.join(unknown)}; expected some of {known}.")
    if not callable(fn):
        raise TypeError(f"{who}: expected a callable rule, got {type(fn).__name__}.")
    if reference is not None and not callable(reference):
        raise TypeError(
            f"{who}: reference must be a plain-JAX callable, got {type(reference).__name__}."
        )
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no signature (a C function): names cannot be checked
        params = None
    cases_t = tuple(c if isinstance(c, Case) else dict(c) for c in (cases or ({},)))
    for spec in [inputs] + [c.inputs for c in cases_t if isinstance(c, Case) and c.inputs]:
        _check_inputs(name, spec, params)
    check = {k: options[k] for k in CHECK_OPTIONS if options.get(k) is not None}
    if "dtypes" not in check:  # a rule that declares complex support is checked in complex too
        cplx = isinstance(fn, CustomRule) and fn.allow_complex
        check["dtypes"] = ("float64", "float32") + (("complex128", "complex64") if cplx else ())
    bench = {field: options[k] for k, field in BENCH_OPTIONS.items() if options.get(k) is not None}
    return Rule(
        name=name,
        fn=fn,
        reference=reference,
        inputs=inputs,
        cases=cases_t,
        tags=tuple(tags),
        check=CheckSpec(**check, who=who),
        bench=BenchSpec(**bench, who=who),
        module=getattr(target, "__module__", "") or "",
        qualname=getattr(target, "__qualname__", name),
        doc=inspect.getdoc(target) or "",
    )


def _scales(who: str, scales) -> tuple[float, ...]:
    """`scales` as a tuple of finite positive floats (a `ValueError` naming `who`)."""
    try:
        out = tuple(float(s) for s in scales)
    except TypeError:
        out = None
    if out is None or not all(s > 0 and s != float("inf") for s in out):
        raise ValueError(
            f"{who}: scales must be a sequence of finite factors > 0 (e.g. (1e-2, 1e2); () "
            f"for none), got {scales!r}."
        )
    return out


def _check_inputs(name: str, inputs: InputSpec, params) -> None:
    if not (isinstance(inputs, Mapping) or callable(inputs)):
        raise TypeError(
            f"register({name!r}): inputs must be a dict {{parameter: generator}} or a joint "
            f"generator (key, dtype) -> dict, got {type(inputs).__name__}."
        )
    if not isinstance(inputs, Mapping):
        return
    for p, g in inputs.items():
        if params is not None and p not in params:
            raise ValueError(
                f"register({name!r}): inputs names {p!r}, which is not a parameter of "
                f"{name}{tuple(params)}."
            )
        if not callable(g):
            raise TypeError(
                f"register({name!r}): the input for {p!r} must be a generator "
                f"(key, dtype) -> value such as jr.inputs.general((3,)), got "
                f"{type(g).__name__}."
            )


def _case(c) -> Mapping[str, Any]:
    return c if isinstance(c, Case) else dict(c)


def _code(fn: Callable):
    """The code object behind a rule's function (`None` if it has none)."""
    target = undecorated(fn)
    return getattr(target, "__code__", None) or object()


default_registry = Registry()


def register(name: str | None = None, **options) -> Callable[[Callable], Callable]:
    """Register a rule in the default registry, with its reference and example inputs.

    **Arguments:** `name` (defaults to the function's), and keywords `reference`,
    `inputs`, `cases`, `dtypes`, `rtol`, `atol`, `order`, `tags`, `projectors`, `scales`,
    `bench_inputs`, `bench_sizes`, `bench_reference` (see `Rule`).

    Examples:
        >>> import jax.numpy as jnp, jaxrules as jr
        >>> @jr.register("doc_square", reference=lambda x: x * x,
        ...              inputs={"x": jr.inputs.general((3,))})
        ... @jr.custom_jvp
        ... def square(x):
        ...     return x * x
        >>> @square.defjvp
        ... def _(p, t):
        ...     return square(p[0]), 2 * p[0] * t[0]
        >>> jr.get("doc_square").name
        'doc_square'
    """
    return default_registry.register(name, **options)


def list_rules(tag: str | None = None, module: str | Sequence[str] | None = None) -> list[Rule]:
    """The rules of the default registry (optionally by tag or defining module).

    Examples:
        >>> import jaxrules as jr
        >>> "linear_solve" in [r.name for r in jr.list_rules(tag="linalg")]
        True
    """
    return default_registry.rules(tag=tag, module=module)


def get(name: str) -> Rule:
    """Look up a rule of the default registry by name."""
    return default_registry.get(name)
