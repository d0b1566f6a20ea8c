"""`jr.check`: which rule, which points, which programs — and nothing vacuous."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _backend, _cache, _custom
from .._dtypes import double, normal
from .._registry import (
    MISSING,
    Case,
    Rule,
    _scales,
    case_label,
    default_registry,
    witness_of,
)
from ._compare import Accumulator, Evidence, Point, Settings, up_tree, upcast
from ._evidence import Witnesses, judge
from ._layout import argspec, make_layout
from ._programs import ReferencePrograms, RulePrograms
from ._quantities import is_float, zero_cotangent
from ._report import CheckReport, Coverage, recipe_for
from ._tolerance import floor_for, norm

TRANSFORMS = ("eager", "jit", "vmap")


# -- argument validation: no check runs vacuously -----------------------------------------------
def _validate(name, dtypes, transforms, seeds, directions, order) -> tuple[list[int], list[str]]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seed_list = list(range(int(seeds)))
    else:
        seed_list = [int(s) for s in seeds]
    dtypes = [jnp.dtype(d).name for d in ([dtypes] if isinstance(dtypes, str) else dtypes)]
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    for t in transforms:
        if t not in TRANSFORMS:
            raise ValueError(
                f"check({name!r}): unknown transform {t!r}; expected some of {TRANSFORMS}."
            )
    for d in dtypes:
        if not jnp.issubdtype(d, jnp.inexact):
            raise ValueError(
                f"check({name!r}): dtypes must be floating or complex dtypes (float64, float32, "
                f"complex128, complex64, ...), got {d!r}."
            )
    empty = [
        what
        for what, n in (
            ("seeds", len(seed_list)),
            ("dtypes", len(dtypes)),
            ("transforms", len(transforms)),
        )
        if n == 0
    ]
    if empty:
        raise ValueError(
            f"check({name!r}): {' and '.join(empty)} is empty, so nothing would be checked; a "
            "check that runs nothing cannot pass. Pass at least one of each (defaults: "
            "seeds=3, the rule's dtypes, transforms=('eager', 'jit', 'vmap'))."
        )
    if not isinstance(directions, (int, np.integer)) or directions < 1:
        raise ValueError(f"check({name!r}): directions must be an int >= 1, got {directions!r}.")
    if order is not None and (not isinstance(order, (int, np.integer)) or order < 1):
        raise ValueError(f"check({name!r}): order must be an int >= 1, got {order!r}.")
    return seed_list, dtypes


@contextlib.contextmanager
def _precision(dtype: str):
    with jax.enable_x64(double(dtype)):
        yield


def check(
    rule: str | Callable | Rule,
    *,
    dtypes: Sequence[str] | None = None,
    transforms: Sequence[str] = TRANSFORMS,
    order: int | None = None,
    seeds: int | Iterable[int] = 3,
    directions: int = 2,
    rtol: float | None = None,
    atol: float | None = None,
    reference: Callable | None = MISSING,  # type: ignore[assignment]
    inputs: Any = None,
    cases: Sequence[Mapping[str, Any]] | None = None,
    case: int | str | None = None,
    registry=None,
    scales: Sequence[float] | None = None,
    quick: bool = False,
    cache_dir: str | bool | None = None,
) -> CheckReport:
    """Check a rule's derivatives against JAX's own differentiation of its reference.

    **Arguments:**

    - `rule`: a registered rule's name, a registered function, or any function (then pass
      `inputs=` and usually `reference=`) — JAX's built-ins and other libraries' rules too,
      positional-only and `*args` parameters included.
    - `dtypes`: the dtypes to check in (default: the registration's `dtypes`, which is
      `("float64", "float32")` unless the rule declares complex support; float64 and
      complex128 run inside `jax.enable_x64()`). Complex dtypes follow JAX's convention
      (tangents and cotangents paired by `Re Σ aᵢbᵢ`).
    - `transforms`: any of `"eager"`, `"jit"`, `"vmap"` (`vmap` also runs the two
      partial batchings: point unbatched with batched directions, and the reverse).
    - `order`: the highest derivative order to check (default: the rule's declared order).
    - `seeds`: a count, or the list of seeds: one random point per seed.
    - `directions`: random directions (and output cotangents) per point.
    - `rtol`/`atol`: override the relative floor and add an absolute floor.
    - `reference`, `inputs`, `cases`: override or supply the registered ones (`cases`:
      dicts of static values, or `jr.Case` objects with their own inputs).
    - `case`: check only this one of the rule's cases (its index or label).
    - `cache_dir`: JAX's persistent compilation cache for the programs the check compiles:
      a directory, or `"off"`; by default `$JAXRULES_CACHE_DIR`, else a per-user cache
      (`~/.cache/jaxrules`). The one setting of the CLI and the plugin too, see
      `jaxrules._cache`; a cache the user gave JAX is used as it is.
    - `quick`: the editing profile, not the full proof: one dtype (the rule's first), one
      seed, `jit` only, no scaled points (`dtypes`, `transforms`, `seeds` and `scales` are
      ignored); the report says so. Use the default, full profile in CI.
    - `scales`: magnitudes at which the rule is also checked, one point each (the first
      seed's, its scalable generators' draws times the factor; under `jit`, or the one
      compiled transform asked for): default the registration's, `(1e-2, 1e2)` unless it declares its own;
      `()` for none. Joint generators and rules without scalable inputs have none.

    **Returns:** a `CheckReport`; `.raise_if_failed()` raises
    `jaxrules.RuleCheckError` (an `AssertionError`) naming each failure. Asking for
    no seeds, dtypes or transforms is a `ValueError`, never a vacuous pass.

    Examples:
        >>> import jax.numpy as jnp, jaxrules as jr
        >>> report = jr.check(jnp.linalg.inv, reference=lambda a: jnp.linalg.solve(a, jnp.eye(3)),
        ...                   inputs={"a": jr.inputs.general((3, 3))}, seeds=2)
        >>> report.passed
        True
    """
    t0 = time.perf_counter()
    _cache.enable(cache_dir)
    reg = registry or default_registry
    rec, registered = reg.resolve(
        rule, who="check", reference=reference, inputs=inputs, cases=cases
    )
    # Whether it promises a jaxrules rule (so 'rule_ran' applies): every registered record.
    expects_rule = registered or isinstance(rule, _custom.CustomRule)
    if quick:
        dtypes, transforms, seeds, scales = rec.check.dtypes[:1], ("jit",), 1, ()
    dtypes = rec.check.dtypes if dtypes is None else dtypes
    seed_list, dtype_list = _validate(rec.name, dtypes, transforms, seeds, directions, order)
    order_ = rec.check.order if order is None else int(order)
    scale_list = _scales(f"check({rec.name!r})", rec.check.scales if scales is None else scales)
    recipe = recipe_for(rec, registered, registry, reference, inputs)
    if registered and cases is None:  # a registered case is reproduced by its index
        by_index = len(rec.cases) > 1 or isinstance(rec.cases[0], Case)
        recipe = dataclasses.replace(recipe, by_index=by_index)
    selected = list(enumerate(rec.cases))
    if case is not None:
        selected = [selected[rec.select(case)]]
    acc = Accumulator(recipe, order_ if order is not None else None)
    for case_idx, case_ in selected:
        # The float64 witness is shared by the dtypes of a case: one compilation. A case
        # witnessed by differences (of the reference) runs no JAX derivative of it.
        witness = witness_of(case_)
        if witness == "differences" and rec.reference is None:
            raise ValueError(
                f"check({rec.name!r}): case {case_label(case_, case_idx)!r} asks for "
                "witness='differences' (finite differences of the reference), but the rule has "
                "no reference. Register one, or drop the witness option (a rule without a "
                "reference is checked against differences of itself)."
            )
        plain = rec.reference is None or witness == "differences"
        refs = None if plain else ReferencePrograms(order_)
        for dtype in dtype_list:
            settings = Settings(
                rec=rec,
                case_idx=case_idx,
                case=case_,
                dtype=dtype,
                transforms=tuple(transforms),
                order=order_,
                seeds=tuple(seed_list),
                scales=tuple(scale_list) if rec.scalable(case_) else (),
                n_directions=int(directions),
                floor=floor_for(dtype, rtol, rec.check.rtol),
                atol=atol if atol is not None else rec.check.atol,
                expects_rule=expects_rule,
                first_dtype=dtype == dtype_list[0],
                witness=witness if rec.reference is not None else "rule",
            )
            with _precision(dtype):
                _check_case(settings, refs, acc)
    results = acc.results()
    if not any(r.check not in ("structure", "rule_ran") for r in results):
        raise ValueError(
            f"check({rec.name!r}): nothing was compared — the rule has no floating-point "
            "inputs or outputs to differentiate at its example inputs. Check the registered "
            "inputs (integer inputs are held fixed; nondiff/static parameters are not "
            "differentiated)."
        )
    coverage = Coverage(
        tuple(dtype_list),
        tuple(transforms),
        tuple(seed_list),
        order_,
        int(directions),
        len(selected),
        tuple(scale_list) if any(rec.scalable(c) for _, c in selected) else (),
        bool(quick),
    )
    return CheckReport(results, time.perf_counter() - t0, coverage)


def _draw_point(s: Settings, seed: int, scale: float, acc) -> Point | None:
    """The point of `seed` (its inputs × `scale`), its directions and output structure;
    `None` (reported to `acc`) where it cannot be drawn or the rule cannot be traced."""
    rec, case, dtype, K = s.rec, s.case, s.dtype, s.n_directions
    kx = jax.random.split(jax.random.key(seed), 3)[0]
    stub = Point(s, seed, scale, None, [], [], {}, [])
    try:
        args = rec.draw(kx, dtype, case, scale=scale)
        layout, xs, fixed = make_layout(rec.for_case(case), args, argspec(rec, case))
    except Exception as e:  # a bad generator is a failure of the registration
        acc.error(stub, None, "inputs", e)
        return None
    if not xs:
        return None
    F = layout.function(rec.fn)
    try:
        out_struct = jax.eval_shape(F, xs, fixed)
    except Exception as e:
        acc.error(stub, None, "primal", e)
        return None
    # Random general directions (projected for structured inputs) and output cotangents, in
    # NumPy (JAX's PRNG would compile for every shape).
    rng = np.random.default_rng([seed, 104729])
    directions = {
        "v": [
            _project(
                layout.projectors[i], jnp.asarray(normal(rng, (K, *x.shape), x.dtype), x.dtype)
            )
            for i, x in enumerate(xs)
        ],
        "w": [
            jnp.asarray(normal(rng, (K, *o.shape), o.dtype), o.dtype) if is_float(o) else None
            for o in out_struct
        ],
    }
    return Point(s, seed, scale, layout, xs, fixed, directions, list(out_struct))


def _finite(tree) -> bool:
    return all(
        np.all(np.isfinite(a))
        for a in jax.tree_util.tree_leaves(tree)
        if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.inexact)
    )


def _undecorated(F):
    """`F` with every jaxrules rule it calls replaced by its undecorated function."""

    def G(xs, fixed):
        with _backend.undecorated():
            return F(xs, fixed)

    return G


def _project(P, V):
    return V if P is None else jax.vmap(P)(V)


def _check_case(s: Settings, refs: ReferencePrograms | None, acc: Accumulator) -> None:
    """Every point of one (rule, case, dtype): the seeds', then the scaled ones."""
    rec, transforms, seeds, scales = s.rec, s.transforms, s.seeds, s.scales
    programs = None
    # The seeds' points, then the first seed's at each scale, under one compiled transform
    # (jit where asked for: what a scaled point adds is the values that reach the rule).
    compiled = [t for t in transforms if t != "eager"]
    scaled_transforms = ["jit"] if "jit" in compiled else compiled[:1]
    if not scaled_transforms:
        scales = ()
    points = [(i, seed, 1.0) for i, seed in enumerate(seeds)]
    points += [(len(seeds), seeds[0], float(s)) for s in scales if float(s) != 1.0]
    for seed_i, seed, scale in points:
        point = _draw_point(s, seed, scale, acc)
        if point is None:
            return
        F = point.layout.function(rec.fn)
        if programs is None:
            programs = RulePrograms(F, s.order, s.n_directions)
            undecorated = ReferencePrograms(s.order)
            undecorated.bind(_undecorated(F))
        witnesses, evidence = Witnesses(point, refs, undecorated), Evidence()
        if refs is not None:
            refs.bind(point.layout.function(rec.reference))
            try:
                evidence["want"] = witnesses.compute("want")
            except Exception as e:
                acc.error(point, None, "reference", e)
                return
            if scale != 1.0 and not _finite(evidence["want"]):
                # Beyond the reference's own domain (exp overflowing in float64): there is
                # nothing to compare with. Said in the report, never silently.
                why = (
                    f"skipped: the reference's float64 derivatives are not finite at inputs × "
                    f"{scale:g} (beyond its domain); declare the rule's scales to avoid this"
                )
                acc.add(point.result(None, "scaled_point", None, None, 0.0, 0.0, note_=why))
                continue
        if seed_i == 0:
            _check_structure(point, acc)
            if s.expects_rule:
                _check_rule_ran(point, F, acc)
            if s.first_dtype:
                _check_zero_declared(point, acc)
            if not double(s.dtype):
                _check_single_under_x64(point, F, acc)
        for transform in transforms if scale == 1.0 else scaled_transforms:
            if transform == "eager" and not s.first_dtype:
                continue  # eager: at every seed's point of the first dtype
            on_error = lambda label, check, e: acc.error(point, label, check, e)
            for label, k, q in programs.evaluate(
                transform, point.xs, point.fixed, point.directions, on_error
            ):
                judge(point, evidence, witnesses, label, k, q, acc)


def _check_structure(point: Point, acc) -> None:
    if not point.jax_witness:
        return
    F_ref = point.layout.function(point.rec.reference)
    got = [(s.shape, jnp.dtype(s.dtype)) for s in point.out_struct]
    try:
        want = [(s.shape, jnp.dtype(s.dtype)) for s in jax.eval_shape(F_ref, point.xs, point.fixed)]
    except Exception as e:
        acc.error(point, None, "reference", e)
        return
    if got != want:
        msg = (
            f"output leaves (shape, dtype) differ from the reference's: got {got}, expected {want}"
        )
        acc.add(point.result(None, "structure", None, None, float("inf"), 0.0, msg))
    else:
        acc.add(point.result(None, "structure", None, None, 0.0, 0.0))


def _check_zero_declared(point: Point, acc) -> None:
    """Arguments declared to have a zero derivative (`zero_argnames`: users get exactly zero
    for them) must not move the reference's output: JAX's JVP of the reference with respect
    to each, float64, along a random direction, against the JVP with respect to the
    differentiated arguments."""
    if not point.jax_witness:
        return
    spec = point.layout.argspec
    zero = [
        j
        for j, (n, f) in enumerate(zip(point.layout.fixed_params, point.fixed))
        if spec.kind(n) == "zero" and jnp.issubdtype(jnp.result_type(f), jnp.inexact)
    ]
    if not zero:
        return
    F_ref = point.layout.function(point.rec.reference)
    rng = np.random.default_rng([point.seed, 7919])
    with jax.enable_x64(True):
        xs, fixed = up_tree(point.xs), up_tree(point.fixed)
        v = [upcast(V[0]) for V in point.directions["v"]]
        try:
            _, t_x = jax.jvp(lambda ys: F_ref(ys, fixed), (xs,), (v,))
        except Exception as e:
            acc.error(point, None, "reference", e)
            return
        scale = sum(norm(t) for t in t_x if is_float(t))
        for j in zero:
            d = jnp.asarray(normal(rng, jnp.shape(fixed[j]), fixed[j].dtype))

            def G(z, j=j):
                fx = list(fixed)
                fx[j] = z
                return F_ref(xs, fx)

            _, t_z = jax.jvp(G, (fixed[j],), (d,))
            err = sum(norm(t) for t in t_z if is_float(t)) / max(scale, 1e-300)
            tol = max(point.floor, 1e-9) ** 0.5
            name = point.layout.fixed_params[j]
            msg = (
                ""
                if err <= tol
                else (
                    f"the reference's output depends on {name!r}, declared in zero_argnames: "
                    "users differentiating with respect to it get a silent zero. Remove it from "
                    "zero_argnames (give the rule its derivative), or fix the reference"
                )
            )
            acc.add(point.result(None, "zero_declared", name, None, err, tol, msg))


def _check_single_under_x64(point: Point, F, acc) -> None:
    """A single-precision point also under `jax.enable_x64(True)` (where users run it too):
    the output, tangent and cotangent dtypes stay those without x64 (a rule computing with a
    NumPy float64 constant returns float64 only there), by tracing, not running."""
    v = [a[0] for a in point.directions["v"]]
    w = [
        zero_cotangent(o) if a is None else a[0]
        for a, o in zip(point.directions["w"], point.out_struct)
    ]
    G = lambda ys: F(ys, point.fixed)
    outs = [jnp.dtype(s.dtype) for s in point.out_struct]
    ins = [jnp.dtype(x.dtype) for x in point.xs]
    # (part, what to trace, the dtypes it must keep: its primal output's, or the inputs')
    for part, fn, want in (
        ("primal", lambda xs: G(xs), outs),
        ("jvp", lambda xs: jax.jvp(G, (xs,), (v,))[0], outs),
        ("vjp", lambda xs: jax.vjp(G, xs)[1](w), ins),
    ):
        with jax.enable_x64(True):
            try:
                out = jax.eval_shape(fn, point.xs)
            except Exception as e:
                acc.error(point, None, "x64", e)
                continue
        got = [jnp.dtype(o.dtype) for o in jax.tree_util.tree_leaves(out)]
        ok = got == want
        msg = (
            ""
            if ok
            else (
                f"{part} dtypes under jax.enable_x64(True) are {[str(d) for d in got]}, without it "
                f"{[str(d) for d in want]}: the rule mixes in a float64 value (a NumPy float64 "
                "constant, or .astype(float)) that only x64 mode keeps"
            )
        )
        acc.add(point.result(None, "x64", None, part, 0.0 if ok else float("inf"), 0.0, msg))


def _check_rule_ran(point: Point, F, acc) -> None:
    """Trace the JVP and the VJP once each and see whether a jaxrules rule was invoked."""
    xs, fixed = point.xs, point.fixed
    v = [a[0] for a in point.directions["v"]]
    w = [
        zero_cotangent(o) if a is None else a[0]
        for a, o in zip(point.directions["w"], point.out_struct)
    ]
    for part, fn in (
        (
            "forward",
            lambda: jax.make_jaxpr(lambda xs: jax.jvp(lambda ys: F(ys, fixed), (xs,), (v,)))(xs),
        ),
        (
            "reverse",
            lambda: jax.make_jaxpr(lambda xs: jax.vjp(lambda ys: F(ys, fixed), xs)[1](w))(xs),
        ),
    ):
        try:
            with _backend.record_rule_calls() as log:
                fn()
            if not log:
                # A rule inside a `jax.jit`-compiled helper runs in Python only when JAX
                # differentiates that helper's jaxpr afresh, and JAX caches those derivatives
                # (the reverse trace reuses the forward one's and logs nothing): trace again
                # without jit. Only then: without jit, loops (`while_loop`, `scan`) run their
                # bodies in Python, step by step, which takes minutes for a solver's loop.
                with jax.disable_jit(), _backend.record_rule_calls() as log:
                    fn()
        except Exception:
            continue  # reported by the jvp/vjp checks
        if log:
            acc.add(point.result(None, "rule_ran", None, part, 0.0, 0.0))
        else:
            msg = (
                f"no jaxrules rule ran in {part} mode: JAX differentiated the function "
                "itself. Is the registered function the decorated one, and are its rules "
                "defined (defjvp/defvjp) before it is called?"
            )
            acc.add(point.result(None, "rule_ran", None, part, float("inf"), 0.0, msg))
