"""What a point's quantities are compared with, computed in one place.

Comparing (`_compare.compare`) is a pure function of arrays: the rule's quantities and an
`Evidence` record — the float64 witness, the calibration in the rule's dtype, JAX's
derivatives of the rule's undecorated function, the witness at the noise estimate's nearby
points, finite differences. Most of that is needed only where an error exceeds its floor, and
computing it compiles programs, so the evidence is computed **on demand**: a comparison that
needs a piece it does not have raises `Wanted(key)`; `judge` computes that piece here
(`Witnesses.compute`, the only place that runs the reference's programs or finite
differences while checking) and compares again. A passing rule never compiles its
calibration.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .. import _witness
from .._dtypes import wide
from ._compare import Accumulator, Evidence, Point, Wanted, compare, up_tree, upcast
from ._programs import ReferencePrograms
from ._tolerance import noise_points


class Witnesses:
    """The programs behind one point's evidence: `refs` (JAX's derivatives of the reference;
    `None` where the witness is finite differences) and `undecorated` (JAX's derivatives of
    the rule's function with its jaxrules rules undone)."""

    def __init__(
        self, point: Point, refs: ReferencePrograms | None, undecorated: ReferencePrograms
    ):
        self.point, self.refs, self.undecorated = point, refs, undecorated

    def compute(self, key):
        """The evidence named `key` (see `Evidence`)."""
        p = self.point
        if key == "want":  # the float64 witness
            with jax.enable_x64(True):
                return self.refs.run("64", up_tree(p.xs), up_tree(p.fixed), up_tree(p.directions))
        if key == "calibration":  # the reference's quantities in the rule's dtype
            return self.refs.run(p.dtype, p.xs, p.fixed, p.directions)
        if key == "undecorated":
            return self._undecorated()
        if key == "noise":  # the float64 witness at the noise estimate's four nearby points
            with jax.enable_x64(True):
                fixed, D = up_tree(p.fixed), up_tree(p.directions)
                return [
                    self.refs.run("64", [jnp.asarray(y) for y in ys], fixed, D)
                    for ys in noise_points(p.xs, p.layout.projectors, p.seed)
                ]
        if key == "fd_value":  # the differenced function's value, float64
            F = self._fd_function()
            with jax.enable_x64(True):
                up, upf = self._up()
                return [wide(o) for o in F(up, upf)]
        if isinstance(key, tuple) and key[0] == "fd":
            # Central differences (Richardson) along direction k, float64, perturbing input
            # leaf i (None: all of them); order 2: the second directional derivative.
            _, i, k, order = key
            F = self._fd_function()
            with jax.enable_x64(True):
                up, upf = self._up()
                vs = [upcast(V[k]) for V in p.directions["v"]]
                v = vs if i is None else vs[i]
                return _witness.fd_jvp(lambda ys: F(ys, upf), up, i, v, order)
        raise KeyError(f"no evidence named {key!r}")

    def source(self, key) -> tuple[str, str]:
        """What computes the evidence `key`: the check to blame (the reference, or the rule's
        own function where finite differences of it are the witness) and what it was doing."""
        if key == "fd_value" or (isinstance(key, tuple) and key[0] == "fd"):
            what = "float64 finite differences (the witness)"
            if self.point.settings.witness != "differences":
                return "primal", f"the rule's function, in its {what}"
            return "reference", f"the reference, in its {what}"
        what = {
            "want": "float64",
            "noise": "float64, at nearby points",
            "calibration": "the rule's dtype",
        }
        return "reference", f"JAX's derivatives of the reference ({what.get(key, key)})"

    def _undecorated(self) -> list[dict] | None:
        """JAX's own derivatives, in the rule's dtype, of the rule's function with every
        jaxrules rule replaced by its undecorated function; `None` where JAX cannot
        differentiate that (a `while_loop` in reverse mode, say)."""
        progs, p = self.undecorated, self.point
        if progs is None or progs.failed:
            return None
        try:
            return progs.run(p.dtype, p.xs, p.fixed, p.directions)
        except Exception:
            progs.failed = True
            return None

    def _fd_function(self) -> Callable:
        """What finite differences differentiate: the reference where the case asks for
        differences of it, else (no reference) the rule's own primal."""
        p = self.point
        rec = p.rec
        return p.layout.function(rec.reference if p.settings.witness == "differences" else rec.fn)

    def _up(self):
        p = self.point
        up = [jnp.asarray(upcast(x)) for x in p.xs]
        upf = [jnp.asarray(upcast(f)) if hasattr(f, "dtype") else f for f in p.fixed]
        return up, upf


def judge(
    point: Point, evidence: Evidence, witnesses: Witnesses, transform, k, q, acc: Accumulator
) -> None:
    """Compare the rule's quantities `q` (direction `k`, under `transform`), computing each
    piece of evidence the comparison asks for, once; add the results to `acc`."""
    while True:
        try:
            results = compare(point, evidence, transform, k, q)
        except Wanted as w:
            try:
                evidence[w.key] = witnesses.compute(w.key)
            except Exception as e:  # the witness itself fails: that rule's failure, reported
                check, what = witnesses.source(w.key)
                acc.error(point, transform, check, e, during=what)
                return
            continue
        for r in results:
            acc.add(r)
        return
