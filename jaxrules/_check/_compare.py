"""Comparing the rule's quantities at one point with the witnesses, check by check: a pure
function of arrays (`compare(point, evidence, transform, k, q) -> results`). The evidence is
computed elsewhere, on demand (`_evidence`): a comparison that needs a piece it lacks raises
`Wanted`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._dtypes import double, pairing, real_name, wide
from .._registry import Rule
from ._layout import Layout
from ._quantities import CHECKS, Check
from ._report import CheckResult, Recipe, badness
from ._tolerance import (
    CALIBRATION,
    FD_RTOL,
    FD_UNSETTLED,
    allowed,
    denominator,
    noise,
    norm,
    note,
    relative,
)


def upcast(x):
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact):
        return wide(x)
    return x


def up_tree(t):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(upcast(a)), t)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How one (rule, case, dtype) is checked: built once by `jr.check`, shared by its
    points."""

    rec: Rule
    case_idx: int
    case: Mapping[str, Any]
    dtype: str
    transforms: tuple[str, ...]
    order: int  # the highest derivative order checked
    seeds: tuple[int, ...]
    scales: tuple[float, ...]  # the magnitudes also checked (empty: none; see CheckSpec.scales)
    n_directions: int  # random directions (and output cotangents) per point
    floor: float  # the relative tolerance before calibration
    atol: float | None
    expects_rule: bool  # a jaxrules rule must run (the `rule_ran` check)
    first_dtype: bool  # the case's first dtype: eager and zero_declared run in it only
    # What the derivatives are compared with: "jax" (JAX's differentiation of the reference),
    # "differences" (finite differences of the reference: `Case(witness=...)`), "rule" (no
    # reference: finite differences of the rule itself).
    witness: str = "jax"


@dataclasses.dataclass(frozen=True)
class Point:
    """One drawn point of one (rule, case, dtype): its leaves and directions (pure data)."""

    settings: Settings
    seed: int
    scale: float  # the factor on the scalable generators' draws (see CheckSpec.scales)
    layout: Layout | None
    xs: list
    fixed: list
    # stacked random directions {"v": per input, "w": per output}: lists of
    # (n_directions, ...) arrays (None: an integer output)
    directions: dict
    out_struct: list  # the rule's output leaves (ShapeDtypeStruct), traced once per point

    @property
    def n_out(self) -> int:
        return len(self.out_struct)

    # The settings this point is checked with, by name.
    rec = property(lambda self: self.settings.rec)
    case_idx = property(lambda self: self.settings.case_idx)
    case = property(lambda self: self.settings.case)
    dtype = property(lambda self: self.settings.dtype)
    order = property(lambda self: self.settings.order)
    floor = property(lambda self: self.settings.floor)
    atol = property(lambda self: self.settings.atol)

    @property
    def float64(self) -> bool:
        return double(self.dtype)

    @property
    def jax_witness(self) -> bool:
        """Whether JAX's derivatives of the reference are the witness (else differences)."""
        return self.settings.witness == "jax"

    def result(self, transform, check, arg, out, err, tol, message="", note_="") -> CheckResult:
        return CheckResult(
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
            self.seed,
            message,
            note_,
            self.scale,
        )

    def label_in(self, i):
        return None if i is None else self.layout.labels[i]

    def label_out(self, o):
        if o is None:
            return None
        return f"out[{o}]" if self.n_out > 1 else "out"


class Wanted(Exception):
    """A comparison needs a piece of evidence not computed yet: its key."""

    def __init__(self, key):
        super().__init__(key)
        self.key = key


class Evidence(dict):
    """What a point's quantities are compared with, by key (pure data; computed by
    `_evidence.Witnesses`): `"want"` (the float64 witness, per direction), `"calibration"`
    (the reference's quantities in the rule's dtype), `"undecorated"` (JAX's derivatives of
    the rule's undecorated function, or `None`), `"noise"` (the witness at four nearby
    points), `("fd", i, k, order)` (finite differences and their error), `"fd_value"`. A
    missing key raises `Wanted`."""

    def __missing__(self, key):
        raise Wanted(key)


class Accumulator:
    """Keeps, per (transform, check, argument, output), the worst result seen."""

    def __init__(self, recipe: Recipe, order: int):
        self.recipe, self.order = recipe, order
        self.worst: dict[tuple, CheckResult] = {}

    def add(self, r: CheckResult) -> None:
        r = dataclasses.replace(r, recipe=self.recipe, order=self.order)
        key = (r.case, r.dtype, r.transform, r.check, r.argument, r.output)
        old = self.worst.get(key)
        if old is None or badness(r) > badness(old):
            self.worst[key] = r

    def error(
        self, point: Point, transform, check, exc: BaseException, arg=None, during: str = ""
    ) -> None:
        text = str(exc).strip()
        lines = text.splitlines()
        msg = f"{during + ' ' if during else ''}raised {type(exc).__name__}: {lines[0] if lines else ''}"
        if len(lines) > 1:
            msg += "\n      " + "\n      ".join(lines[1:8])
        self.add(point.result(transform, check, arg, None, float("inf"), 0.0, msg))

    def results(self) -> list[CheckResult]:
        return list(self.worst.values())


def _inexact(x) -> bool:
    return jnp.issubdtype(np.asarray(x).dtype, jnp.inexact)


def _project(P, x):
    return x if P is None or x is None else np.asarray(P(x))


def _e_ref(point: Point, ev: Evidence, check: Check, k, key, w, denom, P) -> tuple[float, str]:
    """The measured error of the witness itself in this comparison (see _tolerance)."""
    if check.against == "self":
        if not point.jax_witness:
            return 0.0, "self"
        src = ev["want"][k] if point.float64 else ev["calibration"][k]
        g, ww = check.got(src, key), check.want(src, key)
        if g is None or ww is None:
            return 0.0, "self"
        return relative(_project(P, g), _project(P, ww), denom), "self"
    if point.float64:
        values = [check.want(s[k], key) for s in ev["noise"]]
        if any(v is None for v in values):
            return 0.0, "noise"
        return noise([_project(P, v) for v in values], w) / denom, "noise"
    e = _calibration_error(ev["calibration"], check, k, key, w, denom, P)
    return (0.0 if e is None else e), "calibration"


def _calibration_error(calib, check: Check, k: int, key, w, denom, P) -> float | None:
    """The error of a calibration's quantity (JAX's own derivative in the rule's dtype) in
    this comparison; `None` where it has none."""
    c = None if calib is None else check.got(calib[k], key)
    return None if c is None else relative(_project(P, c), w, denom)


def _e_undecorated(ev: Evidence, check: Check, k: int, key, w, denom, P) -> float:
    e = _calibration_error(ev["undecorated"], check, k, key, w, denom, P)
    return e if e is not None and np.isfinite(e) else -1.0


def compare(point: Point, ev: Evidence, transform: str, k: int, q: dict) -> list[CheckResult]:
    """Every check of the table for the rule's quantities `q` (direction k) under
    `transform`, plus the JVP/VJP consistency and (witness by differences) finite
    differences: the results. Raises `Wanted` for evidence it needs and `ev` lacks."""
    out: list[CheckResult] = []
    n_in, n_out = len(point.xs), point.n_out
    for check in CHECKS:
        if check.order > point.order:
            continue
        if check.against == "reference" and not point.jax_witness:
            continue
        src = ev["want"][k] if check.against == "reference" else q
        keys = check.keys(n_in, n_out)
        pairs = []
        for key in keys:
            g, w = check.got(q, key), check.want(src, key)
            if g is None or w is None:
                continue
            P = point.layout.projectors[key[0]] if check.projected and key[0] is not None else None
            pairs.append((key, _project(P, g), _project(P, w), P))
        # M: the largest wanted norm of this check and direction (the scale of zeros).
        M = max((norm(w) for _, _, w, _ in pairs if _inexact(w)), default=0.0)
        for key, g, w, P in pairs:
            if np.shape(g) != np.shape(w):
                out.append(
                    point.result(
                        transform, check.name, point.label_in(key[0]), point.label_out(key[1]),
                        float("inf"), 0.0,
                        f"shape {np.shape(g)} where the witness has {np.shape(w)}",
                    )
                )  # fmt: skip
                continue
            if not jnp.issubdtype(np.asarray(w).dtype, jnp.inexact):
                # An integer or boolean output (a `converged` flag, a count): exactly.
                same = np.array_equal(np.asarray(g), np.asarray(w))
                msg = (
                    ""
                    if same
                    else (
                        f"integer/boolean output {np.asarray(g).tolist()!r} where the reference "
                        f"gives {np.asarray(w).tolist()!r} (compared exactly)"
                    )
                )
                out.append(
                    point.result(
                        transform, check.name, point.label_in(key[0]), point.label_out(key[1]),
                        0.0 if same else float("inf"), 0.0, msg,
                    )
                )  # fmt: skip
                continue
            denom = denominator(norm(w), M, point.floor, point.atol)
            err = relative(g, w, denom)
            tol, why = point.floor, ""
            if err > point.floor:
                e_ref, how = _e_ref(point, ev, check, k, key, w, denom, P)
                if not np.isfinite(e_ref) and how == "calibration" and not check.of_values:
                    # The reference's derivatives in this dtype are not finite here (a naive
                    # reference overflows where the rule's stable formula does not), so they
                    # cannot say what the dtype allows: JAX's own derivative of the rule's
                    # *undecorated* function can. (Derivatives only: its values are the
                    # rule's own, checked as such.)
                    e_fn = _e_undecorated(ev, check, k, key, w, denom, P)
                    if e_fn >= 0:
                        e_ref, how = e_fn, "undecorated"
                tol = allowed(point.floor, e_ref)
                why = note(point.dtype, point.floor, tol, e_ref, how)
            out.append(
                point.result(
                    transform, check.name, point.label_in(key[0]), point.label_out(key[1]),
                    err, tol, note_=why,
                )
            )  # fmt: skip
    out += _consistency(point, ev, transform, k, q)
    if not point.jax_witness:
        out += _finite_differences(point, ev, transform, k, q)
    return out


def _consistency(point: Point, ev: Evidence, transform, k, q) -> list[CheckResult]:
    """The rule's own JVP and VJP agree: `<w, J v> = <Jᵀ w, v>`."""
    out: list[CheckResult] = []
    if "jvp" not in q or "vjp" not in q:
        return out
    for i in range(len(point.xs)):
        v = upcast(point.directions["v"][i][k])
        for o in range(point.n_out):
            w = point.directions["w"][o]
            jv = q["jvp"][i][o] if q["jvp"][i] is not None else None
            jtw = q["vjp"][o][i] if q["vjp"][o] is not None else None
            if jv is None or jtw is None or w is None:
                continue
            wo = upcast(w[k])

            def gap(jv, jtw):
                a, b = pairing(wo, jv), pairing(jtw, v)
                return abs(a - b), max(norm(wo) * norm(jv), norm(jtw) * norm(v), 1e-300)

            d, scale = gap(jv, jtw)
            err = d / scale
            tol, why = point.floor, ""
            if err > point.floor and point.jax_witness:
                src = ev["want"][k] if point.float64 else ev["calibration"][k]
                e_ref = gap(src["jvp"][i][o], src["vjp"][o][i])[0] / scale
                tol = allowed(point.floor, e_ref)
                why = note(point.dtype, point.floor, tol, e_ref, "self")
            out.append(
                point.result(
                    transform, "consistency", point.label_in(i), point.label_out(o), err, tol,
                    note_=why,
                )
            )  # fmt: skip
    return out


def _finite_differences(point: Point, ev: Evidence, transform, k, q) -> list[CheckResult]:
    """Without a witness by JAX: the rule's JVPs against central differences (per input where
    they were computed, else all inputs at once) — of its own primal where it has no
    reference, of the reference's where the case asks for `witness="differences"`; there
    also the values against the reference's and, at order 2, the second directional
    derivative and the Hessian-vector product's pairing against second differences."""
    out: list[CheckResult] = []
    add = out.append
    if "jvp" in q:
        rows = [(i, q["jvp"][i]) for i in range(len(point.xs))]
    elif "jvp_all" in q:
        rows = [(None, q["jvp_all"])]
    else:
        rows = []
    for i, row in rows:
        if row is None:
            continue
        fd, fd_err = ev[("fd", i, k, 1)]
        settle = fd_err / _size(fd)
        for o in range(point.n_out):
            if row[o] is not None:
                err = norm(row[o] - fd[o]) / max(norm(fd[o]), 1e-300)
                add(_against_fd(point, transform, "jvp_fd", i, o, err, settle))
    if point.settings.witness != "differences":
        return out
    if "primal" in q:
        for o, (g, w) in enumerate(zip(q["primal"], ev["fd_value"])):
            if _inexact(w):
                err = relative(g, w, denominator(norm(w), norm(w), point.floor, point.atol))
                add(point.result(transform, "primal", None, point.label_out(o), err, point.floor))
    if point.order < 2 or not ({"jvp_jvp", "hvp"} & set(q)):
        return out
    fd2, fd2_err = ev[("fd", None, k, 2)]
    settle = fd2_err / _size(fd2)
    for o, g in enumerate(q.get("jvp_jvp") or []):
        if g is not None:
            err = norm(g - fd2[o]) / max(norm(fd2[o]), 1e-300)
            add(_against_fd(point, transform, "jvp_jvp_fd", None, o, err, settle))
    if q.get("hvp") is not None:
        # ⟨d/dε VJP(x + εv)·w, v⟩ = wᵀ D²F[v, v]: the Hessian-vector product against the
        # second differences, through its pairing with v (relative to the terms' scale).
        v = [upcast(V[k]) for V in point.directions["v"]]
        ws = [None if w is None else upcast(w[k]) for w in point.directions["w"]]
        got = sum(pairing(h, vi) for h, vi in zip(q["hvp"], v) if h is not None)
        want = sum(pairing(w, f) for w, f in zip(ws, fd2) if w is not None)
        scale = sum(norm(w) * norm(f) for w, f in zip(ws, fd2) if w is not None)
        err = abs(got - want) / max(scale, 1e-300)
        add(_against_fd(point, transform, "hvp_fd", None, None, err, settle))
    return out


def _size(fd) -> float:
    return max(sum(norm(f) for f in fd), 1e-300)


def _against_fd(point: Point, transform, check, i, o, err, settle) -> CheckResult:
    """One comparison with finite differences (relative error `err`; `settle`: how much the
    differences changed between steps, relative to them): the tolerance is the dtype's floor,
    the differences' accuracy in float64, or their measured error, whichever is largest."""
    label, out = point.label_in(i), point.label_out(o)
    if settle > FD_UNSETTLED:
        msg = (
            f"finite differences do not settle here (they change by {settle:.2g} between "
            "steps ten times apart): no derivative at this point, or one that finite "
            "differences cannot resolve"
        )
        return point.result(transform, check, label, out, float("inf"), 0.0, msg)
    fd_rtol = FD_RTOL.get(real_name(point.dtype), 0.0)
    tol = max(point.floor, fd_rtol, CALIBRATION * settle)
    return point.result(transform, check, label, out, err, tol)
