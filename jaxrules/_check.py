"""The checker: prove a rule against JAX's own differentiation of its reference.

For each case (static values), dtype and seed, the checker draws a general point and random
directions, evaluates the rule's primal, JVPs (one input leaf at a time) and VJPs (one output
leaf at a time, random general cotangents) and, up to the declared order, Hessian-vector
products (JVP of VJP) and second directional derivatives (JVP of JVP); it evaluates the same
quantities with JAX differentiating the *reference* in float64 at the same (upcast) point —
the witness — and in the rule's dtype — the calibration; and it compares them leaf by leaf.

Tolerances are norm-wise relative and never scale with array size::

    error   = ‖got − want‖ / max(‖want‖, 10⁻² · M)       (M: the largest ‖want‖ of the same
                                                          check and direction: a component
                                                          that is exactly zero is measured
                                                          against the scale of the others)
    allowed = max(floor, k · e_ref)                      (e_ref: the same error of JAX's own
                                                          derivative of the reference in the
                                                          rule's dtype; k = 30)

with floors of 1e-9 (float64) and 5e-5 (float32), overridable per rule and per call. A correct
rule is no worse than k times JAX's own rounding at that very point; a wrong one is off by
O(1). Without a reference the witness is central finite differences with Richardson
extrapolation in float64 (:mod:`jaxrules._witness`) for JVPs, and VJPs are held to the
``<w, J v> = <Jᵀ w, v>`` identity with the verified JVPs.

Transforms: ``eager`` runs op by op and loops over directions in Python; ``jit`` compiles one
function per (rule, case, dtype) that loops over the directions inside; ``vmap`` compiles the
``vmap`` of the one-direction function over a batch of directions (and of broadcast points,
so the rule's batching rule runs). A batching bug thus shows up in ``vmap`` alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _backend, _custom, _witness
from ._errors import RuleCheckError, keystr
from ._registry import Rule, default_registry, make_rule
from ._signature import call_original, make_argspec

FLOOR = {"float64": 1e-9, "float32": 5e-5, "float16": 5e-3, "bfloat16": 5e-2}
CALIBRATION = 30.0
ZERO_FRACTION = 1e-2
FD_RTOL = {"float64": 1e-7}
TRANSFORMS = ("eager", "jit", "vmap")
_MISSING = object()


# -- results ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check of one rule at one (case, dtype, transform, argument, output)."""

    rule: str
    case: int
    case_values: Mapping[str, Any]
    dtype: str
    transform: str
    check: str
    argument: str | None
    output: str | None
    error: float
    tol: float
    seed: int | None
    message: str = ""

    @property
    def passed(self) -> bool:
        return not self.message and self.error <= self.tol

    def reproducer(self) -> str:
        seeds = f"[{self.seed}]" if self.seed is not None else "1"
        return (
            f"jr.check({self.rule!r}, dtypes=({self.dtype!r},), transforms=({self.transform!r},), "
            f"seeds={seeds})"
        )

    def describe(self) -> str:
        where = []
        if self.argument:
            where.append(f"argument {self.argument}")
        if self.output:
            where.append(f"output {self.output}")
        case = f" case {self.case} {dict(self.case_values)}" if self.case_values else ""
        head = (
            f"{self.rule}{case} [{self.dtype}, {self.transform}] {self.check}"
            f"{' (' + ', '.join(where) + ')' if where else ''}"
        )
        if self.message:
            body = self.message
        else:
            body = f"error {self.error:.3g} > tolerance {self.tol:.3g} (seed {self.seed})"
        return f"{head}: {body}\n    reproduce: {self.reproducer()}"


@dataclasses.dataclass
class CheckReport:
    """The outcome of :func:`check`: every check's worst case over seeds and directions."""

    results: list[CheckResult]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def raise_if_failed(self) -> CheckReport:
        """Raise :class:`jaxrules.RuleCheckError` listing every failure; return self if none."""
        if not self.passed:
            raise RuleCheckError(self.failure_text())
        return self

    def failure_text(self) -> str:
        fails = self.failures
        lines = [f"{len(fails)} check(s) failed:"]
        lines += ["  " + f.describe() for f in fails]
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def worst_ratio(self) -> float:
        """The largest error/tolerance among the checks that produced a number."""
        return worst_ratio(self.results)

    def summary(self) -> str:
        rows: dict[tuple, list[CheckResult]] = {}
        for r in self.results:
            rows.setdefault((r.rule, r.case, r.dtype, r.transform), []).append(r)
        out = ["rule                 case  dtype    transform  checks  worst err/tol  status"]
        for (rule, case, dtype, tr), rs in rows.items():
            worst = worst_ratio(rs)
            ok = all(x.passed for x in rs)
            out.append(
                f"{rule:<20} {case:>4}  {dtype:<8} {tr:<10} {len(rs):>6}  {worst:>13.3g}  "
                f"{'PASS' if ok else 'FAIL'}"
            )
        return "\n".join(out)

    def __str__(self) -> str:
        s = self.summary()
        if not self.passed:
            s += "\n\n" + self.failure_text()
        return s


def worst_ratio(results: Sequence[CheckResult]) -> float:
    """Largest error/tolerance over ``results`` that are numbers (not raised errors); 0 if none."""
    return max((r.error / r.tol for r in results if not r.message and r.tol), default=0.0)


# -- the rule under test ------------------------------------------------------------------------
def _resolve(rule, reference, inputs, cases, registry) -> tuple[Rule, bool]:
    """The rule record, and whether it promises a jaxrules rule (so 'rule_ran' applies)."""
    reg = registry or default_registry
    if isinstance(rule, (Rule, str)):
        rec = reg.lookup(rule)
    elif callable(rule):
        found = reg.lookup(rule)
        if found is not None and reference is _MISSING and inputs is None:
            rec = found
        else:
            if inputs is None:
                raise TypeError(
                    f"check: {getattr(rule, '__name__', rule)!r} is not registered; pass "
                    "inputs={name: generator} (and reference=...) to check it."
                )
            rec = make_rule(
                None,
                rule,
                reference=None if reference is _MISSING else reference,
                inputs=inputs,
                cases=cases,
            )
            return rec, isinstance(rule, _custom.CustomRule)
    else:
        raise TypeError(
            f"check: expected a rule name, a registered function or a Rule, got "
            f"{type(rule).__name__}."
        )
    if reference is not _MISSING or inputs is not None or cases is not None:
        rec = dataclasses.replace(
            rec,
            reference=rec.reference if reference is _MISSING else reference,
            inputs=rec.inputs if inputs is None else inputs,
            cases=rec.cases if cases is None else tuple(dict(c) for c in cases),
        )
    return rec, True


def _argspec(rec: Rule, case: Mapping[str, Any]):
    if isinstance(rec.fn, _custom.CustomRule):
        return rec.fn.argspec
    return make_argspec(rec.fn, rec.name, static_argnames=tuple(case))


@dataclasses.dataclass
class _Layout:
    """How a drawn point splits into differentiated float leaves ``xs`` and fixed leaves."""

    static: dict
    treedef: Any
    x_index: list[int]
    fixed_index: list[int]
    labels: list[str]
    projectors: list[Callable | None]
    argspec: Any

    def rebuild(self, xs, fixed):
        leaves: list[Any] = [None] * (len(self.x_index) + len(self.fixed_index))
        for i, x in zip(self.x_index, xs):
            leaves[i] = x
        for i, f in zip(self.fixed_index, fixed):
            leaves[i] = f
        return self.treedef.unflatten(leaves)

    def function(self, fn: Callable) -> Callable:
        def F(xs, fixed):
            out = call_original(self.argspec, fn, self.rebuild(xs, fixed), self.static)
            return jax.tree_util.tree_leaves(out)

        return F


def _layout(rec: Rule, args: dict, argspec) -> tuple[_Layout, list, list]:
    static = {n: args[n] for n in argspec.static if n in args}
    missing = [n for n in argspec.traced if n not in args]
    for n in missing:
        p = argspec.signature.parameters[n]
        if p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            raise TypeError(
                f"check({rec.name!r}): no example input for argument {n!r}; register "
                f"inputs={{{n!r}: jr.inputs.general(...)}}."
            )
    bound = argspec.signature.bind_partial(**{k: v for k, v in args.items()})
    bound.apply_defaults()
    for n in argspec.static:
        static.setdefault(n, bound.arguments.get(n))
    traced = tuple(
        bound.arguments.get(
            n,
            () if argspec.signature.parameters[n].kind is inspect.Parameter.VAR_POSITIONAL else {},
        )
        for n in argspec.traced
    )
    with_path, treedef = jax.tree_util.tree_flatten_with_path(traced)
    x_index, fixed_index, labels, projectors = [], [], [], []
    for i, (path, leaf) in enumerate(with_path):
        pname = argspec.traced[path[0].idx]
        sub = path[1:]
        leaf = jnp.asarray(leaf) if isinstance(leaf, (int, float, bool)) else leaf
        diff = argspec.kind(pname) == "dynamic" and jnp.issubdtype(
            jnp.result_type(leaf), jnp.inexact
        )
        if diff:
            x_index.append(i)
            labels.append(pname + (keystr(sub) if sub else ""))
            proj = rec.projector(pname) if not sub else None
            projectors.append(proj)
        else:
            fixed_index.append(i)
    leaves = [leaf for _, leaf in with_path]
    xs = [jnp.asarray(leaves[i]) for i in x_index]
    fixed = [leaves[i] for i in fixed_index]
    return (
        _Layout(static, treedef, x_index, fixed_index, labels, projectors, argspec),
        xs,
        fixed,
    )


# -- the quantities compared ---------------------------------------------------------------------
def _forward(F, xs, fixed, vs, order):
    """Primal, JVP per input leaf (others unperturbed) and, at order 2, JVP of JVP."""
    out = F(xs, fixed)
    jvps = []
    for i in range(len(xs)):

        def Fi(xi, i=i):
            ys = list(xs)
            ys[i] = xi
            return F(ys, fixed)

        jvps.append(jax.jvp(Fi, (xs[i],), (vs[i],))[1])
    res = {"out": out, "jvp": jvps}
    if order >= 2:

        def tangent(ys):
            return jax.jvp(lambda zs: F(zs, fixed), (ys,), (vs,))[1]

        res["jvp_jvp"] = jax.jvp(tangent, (list(xs),), (list(vs),))[1]
    return res


def _reverse(F, xs, fixed, ws, vs, order):
    """VJP for each output leaf's cotangent (others zero) and, at order 2, HVPs."""
    out, pullback = jax.vjp(lambda ys: F(ys, fixed), list(xs))
    vjps = []
    for o in range(len(out)):
        ct = [ws[o] if p == o else _zero_ct(out[p]) for p in range(len(out))]
        vjps.append(pullback(ct)[0])
    res = {"vjp": vjps}
    if order >= 2:

        def grad_w(ys):
            _, pb = jax.vjp(lambda zs: F(zs, fixed), ys)
            return pb([ws[o] if _is_float(out[o]) else _zero_ct(out[o]) for o in range(len(out))])[
                0
            ]

        res["hvp"] = jax.jvp(grad_w, (list(xs),), (list(vs),))[1]
    return res


def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _zero_ct(x):
    if _is_float(x):
        return jnp.zeros(jnp.shape(x), jnp.result_type(x))
    return np.zeros(jnp.shape(x), jax.dtypes.float0)


def _map_directions(fn, Vs, Ws, K):
    """``fn(v, w)`` for each of the K directions, stacked along a leading axis.

    A ``lax.map`` (compiled once, run K times) when every cotangent is a float array; a
    Python loop otherwise (float0 cotangents of integer outputs cannot be mapped over).
    """
    if all(getattr(W, "dtype", None) != jax.dtypes.float0 for W in Ws):
        return jax.lax.map(lambda vw: fn(vw[0], vw[1]), (list(Vs), list(Ws)))
    outs = [fn([V[k] for V in Vs], [W[k] for W in Ws]) for k in range(K)]
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *outs)


def _split(stacked, K):
    return [jax.tree_util.tree_map(lambda a, k=k: a[k], stacked) for k in range(K)]


# -- comparison ----------------------------------------------------------------------------------
def _norm(x) -> float:
    return float(np.linalg.norm(np.ravel(np.asarray(x, np.float64))))


def _np(x):
    x = np.asarray(x)
    if x.dtype == jax.dtypes.float0:
        return None
    return x.astype(np.float64) if np.issubdtype(x.dtype, np.inexact) else x


class _Accumulator:
    """Keeps, per (transform, check, argument, output), the worst error/tolerance seen."""

    def __init__(self, rec, case_idx, case, dtype, floor, atol):
        self.rec, self.case_idx, self.case, self.dtype = rec, case_idx, case, dtype
        self.floor, self.atol = floor, atol
        self.worst: dict[tuple, CheckResult] = {}

    def add(self, transform, check, arg, out, err, tol, seed, message=""):
        key = (transform, check, arg, out)
        r = CheckResult(
            self.rec.name,
            self.case_idx,
            dict(self.case),
            self.dtype,
            transform,
            check,
            arg,
            out,
            float(err),
            float(tol),
            seed,
            message,
        )
        old = self.worst.get(key)
        if old is None or _badness(r) > _badness(old):
            self.worst[key] = r

    def error(self, transform, check, seed, exc: BaseException, arg=None):
        msg = f"raised {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        full = str(exc).strip()
        if len(full.splitlines()) > 1:
            msg += "\n      " + "\n      ".join(full.splitlines()[1:8])
        self.add(transform, check, arg, None, float("inf"), 0.0, seed, msg)

    def compare(
        self,
        transform,
        check,
        seed,
        got,
        want,
        calib,
        labels_arg,
        labels_out,
        proj=None,
        scale_group=None,
    ):
        """``got``/``want``/``calib``: dict (arg, out) -> array (numpy f64) or None."""
        # M: the largest wanted norm in this group, the scale for components that are zero.
        norms = {k: _norm(w) for k, w in want.items() if w is not None}
        M = max(norms.values(), default=0.0)
        for key, w in want.items():
            g = got.get(key)
            if w is None or g is None:
                continue
            if proj is not None and proj.get(key) is not None:
                P = proj[key]
                g, w = np.asarray(P(g)), np.asarray(P(w))
                c = calib.get(key)
                c = None if c is None else np.asarray(P(c))
            else:
                c = calib.get(key)
            denom = max(_norm(w), ZERO_FRACTION * M, 1e-300)
            if self.atol is not None:
                denom = max(denom, self.atol / max(self.floor, 1e-300))
            err = _norm(g - w) / denom
            if not np.isfinite(err):
                err = float("inf")
            e_ref = 0.0 if c is None else _norm(c - w) / denom
            tol = max(self.floor, CALIBRATION * e_ref if np.isfinite(e_ref) else 0.0)
            self.add(transform, check, labels_arg(key), labels_out(key), err, tol, seed)

    def results(self) -> list[CheckResult]:
        return list(self.worst.values())


def _badness(r: CheckResult) -> float:
    if r.message:
        return float("inf")
    if r.tol == 0:
        return r.error
    return r.error / r.tol


# -- the checker -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _precision(dtype: str):
    if jnp.dtype(dtype).itemsize == 8:
        with jax.enable_x64(True):
            yield
    else:
        with jax.enable_x64(False):
            yield


def check(
    rule: str | Callable | Rule,
    *,
    dtypes: Sequence[str] = ("float64", "float32"),
    transforms: Sequence[str] = TRANSFORMS,
    order: int | None = None,
    seeds: int | Iterable[int] = 3,
    directions: int = 2,
    rtol: float | None = None,
    atol: float | None = None,
    reference: Callable | None = _MISSING,  # type: ignore[assignment]
    inputs: Any = None,
    cases: Sequence[Mapping[str, Any]] | None = None,
    registry=None,
) -> CheckReport:
    """Check a rule's derivatives against JAX's own differentiation of its reference.

    **Arguments:**

    - `rule`: a registered rule's name, a registered function, or any function (then pass
      `inputs=` and usually `reference=`) — JAX's built-ins and other libraries' rules too.
    - `dtypes`: float dtypes to check in (float64 runs inside ``jax.enable_x64()``).
    - `transforms`: any of ``"eager"``, ``"jit"``, ``"vmap"``.
    - `order`: the highest derivative order to check (default: the rule's declared order).
    - `seeds`: a count, or the list of seeds: one random point per seed.
    - `directions`: random directions (and output cotangents) per point.
    - `rtol`/`atol`: override the relative floor and add an absolute floor.
    - `reference`, `inputs`, `cases`: override or supply the registered ones.

    **Returns:** a :class:`CheckReport`; ``.raise_if_failed()`` raises
    :class:`jaxrules.RuleCheckError` (an ``AssertionError``) naming each failure.

    >>> import jax.numpy as jnp, jaxrules as jr
    >>> report = jr.check(jnp.linalg.inv, reference=lambda a: jnp.linalg.solve(a, jnp.eye(3)),
    ...                   inputs={"a": jr.inputs.general((3, 3))}, seeds=2)
    >>> report.passed
    True
    """
    t0 = time.perf_counter()
    rec, expects_rule = _resolve(rule, reference, inputs, cases, registry)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    for t in transforms:
        if t not in TRANSFORMS:
            raise ValueError(f"check: unknown transform {t!r}; expected some of {TRANSFORMS}.")
    order_ = rec.order if order is None else int(order)
    results: list[CheckResult] = []
    for case_idx, case in enumerate(rec.cases):
        # The float64 witness function is shared by the dtypes of a case: one compilation.
        ref_fns: dict[str, Callable] = {}
        for dtype in dtypes:
            dtype = jnp.dtype(dtype).name
            floor = (
                rtol
                if rtol is not None
                else (rec.rtol if rec.rtol is not None else FLOOR.get(dtype, 1e-4))
            )
            atol_ = atol if atol is not None else rec.atol
            acc = _Accumulator(rec, case_idx, case, dtype, floor, atol_)
            with _precision(dtype):
                _check_case(
                    rec,
                    case,
                    dtype,
                    tuple(transforms),
                    order_,
                    seed_list,
                    directions,
                    acc,
                    expects_rule,
                    ref_fns,
                )
            results.extend(acc.results())
    return CheckReport(results, time.perf_counter() - t0)


def _upcast(x):
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact):
        return np.asarray(x, np.float64)
    return x


def _check_case(rec, case, dtype, transforms, order, seeds, K, acc, expects_rule, ref_fns):
    argspec = _argspec(rec, case)
    jitted: dict[str, Callable] = {}
    ref_fns.pop("d", None)  # the calibration runs in this dtype
    for seed_i, seed in enumerate(seeds):
        key = jax.random.key(seed)
        kx, kv, kw = jax.random.split(key, 3)
        try:
            args = rec.draw(kx, dtype, case)
            layout, xs, fixed = _layout(rec, args, argspec)
        except Exception as e:  # a bad generator is a failure of the registration
            acc.error("eager", "inputs", seed, e)
            return
        F = layout.function(rec.fn)
        # Random general directions (projected for structured inputs) and output cotangents.
        vks = jax.random.split(kv, max(len(xs), 1))
        Vs = [
            _project(layout.projectors[i], jax.random.normal(vks[i], (K, *jnp.shape(x)), x.dtype))
            for i, x in enumerate(xs)
        ]
        try:
            out_struct = jax.eval_shape(F, xs, fixed)
        except Exception as e:
            acc.error("eager", "primal", seed, e)
            return
        wks = jax.random.split(kw, max(len(out_struct), 1))
        Ws = [
            jax.random.normal(wks[o], (K, *s.shape), s.dtype)
            if jnp.issubdtype(s.dtype, jnp.inexact)
            else np.zeros((K, *s.shape), jax.dtypes.float0)
            for o, s in enumerate(out_struct)
        ]
        per_k = lambda k: ([V[k] for V in Vs], [W[k] for W in Ws])

        # Witnesses: the reference in float64 at the upcast point, and in the rule's dtype.
        want, calib = _witnesses(rec, layout, xs, fixed, Vs, Ws, K, order, ref_fns, dtype)

        # Structure: the rule's output tree, shapes and dtypes vs the reference's.
        if seed_i == 0:
            _check_structure(rec, layout, xs, fixed, out_struct, acc, seed, dtype)
            if expects_rule:
                _check_rule_ran(F, xs, fixed, per_k(0), acc, seed)

        for transform in transforms:
            got = _evaluate(transform, F, xs, fixed, Vs, Ws, K, order, jitted, seed, acc)
            if got is None:
                continue
            _compare_all(
                acc,
                transform,
                seed,
                got,
                want,
                calib,
                layout,
                Vs,
                Ws,
                K,
                order,
                len(out_struct),
                rec.reference is None,
                F,
                xs,
                fixed,
            )


def _project(P, V):
    if P is None:
        return V
    return jax.vmap(P)(V)


def _evaluate(transform, F, xs, fixed, Vs, Ws, K, order, jitted, seed, acc):
    """The rule's quantities for each direction, under ``transform``.

    One function computes the forward and the reverse quantities (one compilation per
    transform); if it raises, each part runs alone so that the failure names its mode.
    ``eager`` checks first order only: op-by-op second derivatives cost much and show nothing
    that ``jit`` does not.
    """
    if transform == "eager":
        order = 1

    def one(xs, fixed, v, w, parts):
        res = {}
        if "forward" in parts:
            res.update(_forward(F, xs, fixed, v, order))
        if "reverse" in parts:
            res.update(_reverse(F, xs, fixed, w, v, order if "hvp" in parts else 1))
        elif "hvp" in parts:
            res["hvp"] = _reverse(F, xs, fixed, w, v, order)["hvp"]
        return res

    def run(parts):
        if transform == "eager":
            return [one(xs, fixed, [V[k] for V in Vs], [W[k] for W in Ws], parts) for k in range(K)]
        fn = jitted.get((transform, parts))
        if fn is None:
            if transform == "jit":
                # lax.map over the directions: a loop, compiled once (not unrolled K times).
                fn = jax.jit(
                    lambda xs, fixed, Vs, Ws: _map_directions(
                        lambda v, w: one(xs, fixed, v, w, parts), Vs, Ws, K
                    )
                )
            else:  # vmap over directions, with the point broadcast (so the rule is batched)
                fn = jax.jit(
                    jax.vmap(
                        lambda xs, fixed, v, w: one(xs, fixed, v, w, parts), in_axes=(0, None, 0, 0)
                    )
                )
            jitted[(transform, parts)] = fn
        if transform == "jit":
            return _split(fn(xs, fixed, Vs, Ws), K)
        xb = [jnp.broadcast_to(x, (K, *jnp.shape(x))) for x in xs]
        batched = fn(xb, fixed, Vs, Ws)
        return [jax.tree_util.tree_map(lambda a, k=k: a[k], batched) for k in range(K)]

    got: dict[int, dict] = {}
    # Without hijax, a rule with both a JVP and a VJP rule runs its JVP rule in both modes;
    # check each rule in its own mode by forcing the backend per part.
    # (Second order then runs as JAX runs it there: through the JVP rule.)
    separate = not _backend.hijax_enabled()
    all_parts = ("forward", "reverse", "hvp") if order >= 2 else ("forward", "reverse")
    res = None
    if not separate:
        try:
            res = run(all_parts)
        except Exception:
            res = None
    if res is None:
        res = [{} for _ in range(K)]
        for part in all_parts if separate or order < 2 else ("forward", "reverse"):
            force = (
                {"forward": "custom_jvp", "reverse": "custom_vjp"}.get(part) if separate else None
            )
            parts = (
                (part,)
                if separate
                else ((part, "hvp") if part == "reverse" and order >= 2 else (part,))
            )
            try:
                with _backend.force_backend(force):
                    part_res = run(parts)
            except Exception as e:
                check = {"forward": "jvp", "reverse": "vjp", "hvp": "hvp"}[part]
                acc.error(transform, check, seed, e)
                continue
            for k in range(K):
                res[k].update(part_res[k])
    res = jax.tree_util.tree_map(_np, res)
    for k in range(K):
        if res[k]:
            got[k] = res[k]
    return got or None


def _witnesses(rec, layout, xs, fixed, Vs, Ws, K, order, ref_fns, dtype):
    if rec.reference is None:
        return None, None
    F_ref = layout.function(rec.reference)

    def both(xs, fixed, Vs, Ws):
        def one(v, w):
            return dict(
                _forward(F_ref, xs, fixed, v, order), **_reverse(F_ref, xs, fixed, w, v, order)
            )

        return _split(_map_directions(one, Vs, Ws, K), K)

    calib = None
    if jnp.dtype(dtype).itemsize < 8:  # in float64 the calibration is the witness itself
        if "d" not in ref_fns:
            ref_fns["d"] = jax.jit(both)
        calib = jax.tree_util.tree_map(_np, ref_fns["d"](xs, fixed, Vs, Ws))
    with jax.enable_x64(True):
        if "64" not in ref_fns:
            ref_fns["64"] = jax.jit(both)
        up = lambda t: jax.tree_util.tree_map(
            lambda a: (
                jnp.asarray(_upcast(a))
                if not (hasattr(a, "dtype") and a.dtype == jax.dtypes.float0)
                else a
            ),
            t,
        )
        want = jax.tree_util.tree_map(_np, ref_fns["64"](up(xs), up(fixed), up(Vs), up(Ws)))
    return want, want if calib is None else calib


def _check_structure(rec, layout, xs, fixed, out_struct, acc, seed, dtype):
    if rec.reference is None:
        return
    F_ref = layout.function(rec.reference)
    try:
        ref_struct = jax.eval_shape(F_ref, xs, fixed)
    except Exception as e:
        acc.error("eager", "reference", seed, e)
        return
    got_tree = [(s.shape, jnp.dtype(s.dtype)) for s in out_struct]
    want_tree = [(s.shape, jnp.dtype(s.dtype)) for s in ref_struct]
    if got_tree != want_tree:
        acc.add(
            "eager",
            "structure",
            None,
            None,
            float("inf"),
            0.0,
            seed,
            f"output leaves (shape, dtype) differ from the reference's: got {got_tree}, "
            f"expected {want_tree}",
        )
    else:
        acc.add("eager", "structure", None, None, 0.0, 0.0, seed)


def _check_rule_ran(F, xs, fixed, dirs, acc, seed):
    """Trace the JVP and the VJP once each and see whether a jaxrules rule was invoked."""
    v, w = dirs
    for part, fn in (
        (
            "forward",
            lambda: jax.make_jaxpr(lambda xs: jax.jvp(lambda ys: F(ys, fixed), (xs,), (v,)))(xs),
        ),
        (
            "reverse",
            lambda: jax.make_jaxpr(
                lambda xs: jax.vjp(lambda ys: F(ys, fixed), xs)[1](
                    [wi if _is_float(wi) else _zero_ct(wi) for wi in w]
                )
            )(xs),
        ),
    ):
        try:
            with _backend.record_rule_calls() as log:
                fn()
        except Exception:
            continue  # reported by the jvp/vjp checks
        if log:
            acc.add("eager", "rule_ran", None, part, 0.0, 0.0, seed)
        else:
            acc.add(
                "eager",
                "rule_ran",
                None,
                part,
                float("inf"),
                0.0,
                seed,
                f"no jaxrules rule ran in {part} mode: JAX differentiated the function "
                "itself. Is the registered function the decorated one, and are its rules "
                "defined (defjvp/defvjp) before it is called?",
            )


def _compare_all(
    acc,
    transform,
    seed,
    got,
    want,
    calib,
    layout,
    Vs,
    Ws,
    K,
    order,
    n_out,
    no_reference,
    F,
    xs,
    fixed,
):
    labels = layout.labels
    out_label = lambda o: f"out[{o}]" if n_out > 1 else "out"
    proj_in = {i: layout.projectors[i] for i in range(len(labels))}
    for k in range(K):
        g = got.get(k)
        if g is None:
            continue
        if not no_reference:
            w, c = want[k], calib[k]
            n_in = len(labels)
            io = [(i, o) for i in range(n_in) for o in range(n_out)]
            outs = [(None, o) for o in range(n_out)]
            ins = [(i, None) for i in range(n_in)]
            # (check, keys (argument, output), getter, compare after projection?)
            specs = [
                ("primal", outs, lambda d, key: d["out"][key[1]], False),
                ("jvp", io, lambda d, key: d["jvp"][key[0]][key[1]], False),
                ("vjp", io, lambda d, key: d["vjp"][key[1]][key[0]], True),
                ("hvp", ins, lambda d, key: d["hvp"][key[0]], True),
                ("jvp_jvp", outs, lambda d, key: d["jvp_jvp"][key[1]], False),
            ]
            for check, keys, get, projected in specs:
                field = "out" if check == "primal" else check
                if field not in g or (check in ("hvp", "jvp_jvp") and order < 2):
                    continue
                got_, want_, calib_ = ({key: get(d, key) for key in keys} for d in (g, w, c))
                acc.compare(
                    transform,
                    check,
                    seed,
                    got_,
                    want_,
                    calib_,
                    lambda key: None if key[0] is None else labels[key[0]],
                    lambda key: None if key[1] is None else out_label(key[1]),
                    proj={key: proj_in[key[0]] for key in keys} if projected else None,
                )
        elif "jvp" in g and transform == "eager":
            # No reference: JVPs against central differences of the rule's primal, in float64.
            with jax.enable_x64(True):
                up = [jnp.asarray(_upcast(x)) for x in xs]
                upf = [jnp.asarray(_upcast(f)) if hasattr(f, "dtype") else f for f in fixed]
                for i in range(len(labels)):
                    fd = _witness.fd_jvp(lambda ys: F(ys, upf), up, i, _upcast(Vs[i][k]))
                    for o in range(n_out):
                        if g["jvp"][i][o] is None:
                            continue
                        err = _norm(g["jvp"][i][o] - fd[o]) / max(_norm(fd[o]), 1e-300)
                        tol = max(acc.floor, FD_RTOL.get(acc.dtype, 0.0))
                        acc.add(transform, "jvp_fd", labels[i], out_label(o), err, tol, seed)
        # Consistency of the rule's own JVP and VJP: <w, J v> = <Jᵀ w, v>.
        if "jvp" in g and "vjp" in g:
            for i in range(len(labels)):
                v = _np(Vs[i][k])
                for o in range(n_out):
                    jv, jtw = g["jvp"][i][o], g["vjp"][o][i]
                    wo = _np(Ws[o][k])
                    if jv is None or jtw is None or wo is None:
                        continue
                    a = float(np.vdot(wo, jv))
                    b = float(np.vdot(jtw, v))
                    scale = max(_norm(wo) * _norm(jv), _norm(jtw) * _norm(v), 1e-300)
                    err = abs(a - b) / scale
                    e_ref = 0.0
                    if not no_reference:
                        cj, ct = calib[k]["jvp"][i][o], calib[k]["vjp"][o][i]
                        if cj is not None and ct is not None:
                            e_ref = abs(float(np.vdot(wo, cj)) - float(np.vdot(ct, v))) / scale
                    tol = max(acc.floor, CALIBRATION * e_ref)
                    acc.add(transform, "consistency", labels[i], out_label(o), err, tol, seed)
