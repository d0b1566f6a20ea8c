"""The compiled programs the checker runs: the rule under each transform, and its reference.

Transforms (what `transforms=` asks for, and the labels results carry):

- `eager`: op by op, first order, one direction, all inputs and outputs at once, at the
  first seed of the first dtype (a smoke test of the rule outside `jit`, where jaxrules runs
  rules on concrete values: Python control flow on values, leaked tracers; op-by-op dispatch
  compiles every operation alone, so it is the costliest transform per quantity);
- `jit`: one compiled program per (rule, case, dtype) that loops over the directions
  inside (`lax.map`);
- `vmap`: one compiled program with four batchings of the one-direction function:
  `vmap` (point and directions batched, at the declared order), `vmap(directions)` (the
  point unbatched, directions batched: how `jacfwd`/`jacrev`/`hessian` call a rule),
  `vmap(point)` (the point batched, directions unbatched: how `vmap(grad(f))` calls it) and
  `vmap(inside)` (the batched function differentiated, `jvp`/`vjp` of `vmap(f)`: how
  `grad` of a batched loss calls it — JAX then transposes the *batched* rule, which fails
  where the batched rule has no transpose, e.g. a `cond` whose predicate became batched),
  all four on the quantities of all inputs and outputs at once (the per-leaf and linearity
  ones run under `jit`), the three partial ones at first order.

The programs are compiled with XLA's backend optimisation off: they run a handful of times
on small inputs, so optimising them costs more than it saves (about 1.5× faster compiles).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import _backend
from .._dtypes import wide
from ._quantities import PART_CHECK, PARTS, quantities

COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
VMAP_VARIANTS = ("vmap", "vmap(directions)", "vmap(point)", "vmap(inside)")


def jit(fn: Callable) -> Callable:
    """`jax.jit` with cheap compilation (plain `jax.jit` where options are refused)."""
    fast = jax.jit(fn, compiler_options=COMPILER_OPTIONS)
    plain = []

    def call(*args):
        if plain:
            return plain[0](*args)
        try:
            return fast(*args)
        except Exception as e:  # an XLA without these options: compile normally
            if "compile option" not in str(e).lower() and "debug option" not in str(e).lower():
                raise
            plain.append(jax.jit(fn))
            return plain[0](*args)

    return call


def to_numpy(x):
    x = np.asarray(x)
    if x.dtype == jax.dtypes.float0:
        return None
    return wide(x) if np.issubdtype(x.dtype, np.inexact) else x


def tree_numpy(t):
    return jax.tree_util.tree_map(to_numpy, t)


def _take(tree, k):
    return jax.tree_util.tree_map(lambda a: a[k], tree)


class RulePrograms:
    """The rule's quantities under each transform, compiled once per (rule, case, dtype)."""

    def __init__(self, F: Callable, order: int, K: int):
        self.F, self.order, self.K = F, order, K
        self._compiled: dict[tuple, Callable] = {}

    def _program(self, transform: str, parts: tuple, variants: tuple) -> Callable:
        key = (transform, parts, variants)
        fn = self._compiled.get(key)
        if fn is not None:
            return fn
        F, order = self.F, self.order
        if transform == "jit":

            def fn(xs, fixed, D):
                return jax.lax.map(lambda d: quantities(F, xs, fixed, d, order, parts), D)

            fn = jit(fn)
        else:  # vmap: the requested batchings in one program

            def fn(xs, fixed, D, xb):
                res = {}
                # Batched: the quantities of all inputs and outputs at once (per-leaf ones
                # and linearity run under jit); the partial batchings at first order.
                q = lambda o: lambda x, f, d: quantities(F, x, f, d, o, parts, full=False)
                if "vmap" in variants:
                    res["vmap"] = jax.vmap(q(order), (0, None, 0))(xb, fixed, D)
                if "vmap(directions)" in variants:
                    part = jax.vmap(q(1), (None, None, 0))
                    res["vmap(directions)"] = part(xs, fixed, D)
                if "vmap(point)" in variants:
                    part = jax.vmap(q(1), (0, None, None))
                    res["vmap(point)"] = part(xb, fixed, _take(D, 0))
                if "vmap(inside)" in variants:  # the batched function, differentiated
                    Fb = lambda ys, f: jax.vmap(lambda y: F(y, f))(ys)
                    res["vmap(inside)"] = quantities(Fb, xb, fixed, D, 1, parts, full=False)
                return res

            fn = jit(fn)
        self._compiled[key] = fn
        return fn

    def _run(self, transform, parts, variants, xs, fixed, D) -> list[tuple[str, int, dict]]:
        K = self.K
        if transform == "eager":
            q = quantities(self.F, xs, fixed, _take(D, 0), 1, parts, full=False)
            return [("eager", 0, tree_numpy(q))]
        fn = self._program(transform, parts, variants)
        if transform == "jit":
            res = tree_numpy(fn(xs, fixed, D))
            return [("jit", k, _take(res, k)) for k in range(K)]
        xb = [jnp.broadcast_to(x, (K, *jnp.shape(x))) for x in xs]
        res = tree_numpy(fn(xs, fixed, D, xb))
        out = []
        for label, batch in res.items():
            for k in range(K):
                # vmap(point) runs direction 0 at each (identical) point of the batch.
                out.append((label, 0 if label == "vmap(point)" else k, _take(batch, k)))
        return out

    def evaluate(self, transform: str, xs, fixed, D, on_error) -> list[tuple[str, int, dict]]:
        """`[(label, direction index, quantities)]`; a part (or batching) that raises is
        reported through `on_error(label, check, exc)` and the rest still runs."""
        variants = VMAP_VARIANTS if transform == "vmap" else (transform,)
        # Without hijax, a rule with both a JVP and a VJP rule runs its JVP rule in both
        # modes; check each rule in its own mode by forcing the backend per part.
        separate = not _backend.hijax_enabled()
        if not separate:
            try:
                return self._run(transform, PARTS, variants, xs, fixed, D)
            except Exception:
                pass  # run piece by piece below, so that the failure names its mode
        merged: dict[tuple[str, int], dict] = {}
        for variant in variants:
            for part in PARTS:
                if part == "hvp" and (self.order < 2 or variant not in ("jit", "vmap")):
                    continue
                force = {"forward": "custom_jvp", "reverse": "custom_vjp"}.get(part)
                try:
                    with _backend.force_backend(force if separate else None):
                        got = self._run(transform, (part,), (variant,), xs, fixed, D)
                except Exception as e:
                    on_error(variant, PART_CHECK[part], e)
                    continue
                for label, k, q in got:
                    merged.setdefault((label, k), {}).update(q)
        return [(label, k, q) for (label, k), q in merged.items()]


class ReferencePrograms:
    """The reference's quantities: the float64 witness (shared by a case's dtypes) and the
    calibration in the rule's dtype (compiled only when some error exceeds its floor)."""

    def __init__(self, order: int):
        self.order = order
        self._fn: Callable | None = None
        self._compiled: dict[str, Callable] = {}
        self.failed = False  # (the undecorated calibration: JAX cannot differentiate it)

    def bind(self, F_ref: Callable) -> None:
        """Set the reference as a function of the leaves (once per case: the layouts of a
        case's points and dtypes share one structure)."""
        if self._fn is None:
            order = self.order
            self._fn = lambda xs, fixed, D: jax.lax.map(
                lambda d: quantities(F_ref, xs, fixed, d, order), D
            )

    def run(self, precision: str, xs, fixed, D) -> list[dict]:
        fn = self._compiled.get(precision)
        if fn is None:
            fn = self._compiled[precision] = jit(self._fn)
        res = tree_numpy(fn(xs, fixed, D))
        K = len(jax.tree_util.tree_leaves(D)[0])
        return [_take(res, k) for k in range(K)]
