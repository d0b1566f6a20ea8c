"""Both rules on one function, via ``jax.experimental.hijax`` (the one experimental import).

JAX cannot attach a JVP rule *and* a VJP rule to one function: ``custom_jvp`` gets reverse mode
only by transposing its JVP, ``custom_vjp`` has no forward mode. ``VJPHiPrimitive`` (JAX >= 0.8)
carries ``jvp``, ``vjp_fwd``/``vjp_bwd_retval`` and a batching rule on one object, which is
exactly what a function with both rules needs.

This module is the only place that touches that API. :data:`AVAILABLE` says whether it is
present; when it is not, :mod:`jaxrules._custom` falls back to ``jax.custom_jvp`` (a function
with a JVP rule then uses it for both modes) or ``jax.custom_vjp`` (a VJP-only function then
has no forward mode and says so). Both paths are tested.

The primitive's batching rule is our own rather than hijax's ``VmapOf``: ``VmapOf.jvp`` batches
the primal output even when only the tangents are batched (``jacfwd``), which fails. Ours
builds a new primitive whose functions are the ``vmap`` of the old ones, all outputs batched
along axis 0, and sums cotangents of unbatched inputs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

try:  # pragma: no cover - depends on the installed JAX
    if os.environ.get("JAXRULES_DISABLE_HIJAX"):
        raise ImportError("disabled by JAXRULES_DISABLE_HIJAX")
    from jax.experimental.hijax import VJPHiPrimitive as _VJPHiPrimitive
    from jax.experimental.hijax import Zero as _Zero

    AVAILABLE = True
except ImportError:  # pragma: no cover
    _VJPHiPrimitive = object  # type: ignore[assignment,misc]
    _Zero = ()  # type: ignore[assignment]
    AVAILABLE = False


@dataclasses.dataclass(frozen=True, eq=False)
class Fns:
    """A rule over flat leaves. ``None`` stands for a zero tangent/cotangent throughout.

    - ``primal(*xs) -> out``
    - ``jvp(xs, ts) -> (out, t_out)``
    - ``fwd(xs, nonzeros) -> (out, residuals)``
    - ``bwd(residuals, ct_out) -> per-leaf cotangents``
    """

    name: str
    primal: Callable
    jvp: Callable
    fwd: Callable
    bwd: Callable


def _none_if_zero(t):
    return None if isinstance(t, _Zero) else t


def out_avals(fn: Callable, *xs) -> Any:
    """The output avals of ``fn`` (sharding and varying manual axes included), as a pytree."""
    closed, shapes = jax.make_jaxpr(fn, return_shape=True)(*xs)
    return jax.tree_util.tree_structure(shapes).unflatten(closed.out_avals)


class _RulePrimitive(_VJPHiPrimitive):  # type: ignore[misc,valid-type]
    def __init__(self, fns: Fns, in_avals: tuple, out_aval: Any):
        self.in_avals = in_avals
        self.out_aval = out_aval
        self.params = dict(fns=fns)
        super().__init__()

    def expand(self, *xs):
        return self.fns.primal(*xs)

    # forward mode
    def jvp(self, primals, tangents):
        return self.fns.jvp(tuple(primals), tuple(_none_if_zero(t) for t in tangents))

    def lin(self, nzs_in, *xs):
        return self.fns.primal(*xs), xs

    def linearized(self, xs, *tangents):
        return self.fns.jvp(tuple(xs), tuple(_none_if_zero(t) for t in tangents))[1]

    # reverse mode
    def vjp_fwd(self, nzs_in, *xs):
        return self.fns.fwd(xs, tuple(bool(n) for n in nzs_in))

    def vjp_bwd_retval(self, res, ct_out):
        ct_out = jax.tree_util.tree_map(
            _none_if_zero, ct_out, is_leaf=lambda t: isinstance(t, _Zero)
        )
        return tuple(self.fns.bwd(res, ct_out))

    # batching
    def batch(self, axis_data, args, dims):
        if all(d is None for d in dims):  # nothing batched (a rule run inside vmap's trace)
            out = self(*args)
            return out, jax.tree_util.tree_map(lambda _: None, out)
        args = tuple(a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims))
        axes = tuple(None if d is None else 0 for d in dims)
        size = axis_data.size
        fns = _vmap_fns(self.fns, axes, size)
        in_avals = tuple(jax.typeof(a) for a in args)
        out = _RulePrimitive(fns, in_avals, out_avals(fns.primal, *args))(*args)
        # One batch dimension per output leaf (a bare 0 fails for tuple outputs).
        return out, jax.tree_util.tree_map(lambda _: 0, out)


def _vmap_fns(fns: Fns, axes: tuple, size: int) -> Fns:
    vm = lambda f, in_axes: jax.vmap(f, in_axes=in_axes, out_axes=0, axis_size=size)

    def primal(*xs):
        return vm(fns.primal, axes)(*xs)

    def jvp(xs, ts):
        nz = tuple(t is not None for t in ts)
        t_axes = tuple(a for a, n in zip(axes, nz) if n)

        def one(xs_, ts_nz):
            it = iter(ts_nz)
            return fns.jvp(xs_, tuple(next(it) if n else None for n in nz))

        ts_nz = tuple(t for t, n in zip(ts, nz) if n)
        return vm(one, (axes, t_axes))(xs, ts_nz)

    def fwd(xs, nonzeros):
        return vm(lambda *xs_: fns.fwd(xs_, nonzeros), axes)(*xs)

    def bwd(res, ct):
        ct_leaves, ct_tree = jax.tree_util.tree_flatten(ct, is_leaf=lambda c: c is None)
        nz = tuple(c is not None for c in ct_leaves)

        def one(res_, cts_nz):
            it = iter(cts_nz)
            return tuple(fns.bwd(res_, ct_tree.unflatten([next(it) if n else None for n in nz])))

        cts = vm(one, (0, 0))(res, tuple(c for c, n in zip(ct_leaves, nz) if n))
        return tuple(c if (c is None or a == 0) else jnp.sum(c, axis=0) for c, a in zip(cts, axes))

    return Fns(fns.name, primal, jvp, fwd, bwd)


_AD_TRACERS = ("JVPTracer", "LinearizeTracer")


def under_autodiff(xs) -> bool:
    """Whether any input is being differentiated right now (a JVP/linearize tracer, possibly
    inside batching or shard_map tracers)."""
    for x in xs:
        seen = 0
        while isinstance(x, jax.core.Tracer) and seen < 64:
            if type(x).__name__ in _AD_TRACERS:
                return True
            x = getattr(x, "val", None) if hasattr(x, "val") else getattr(x, "primal", None)
            seen += 1
    return False


def bind(fns: Fns, xs: tuple, out_aval: Any) -> Any:
    """Apply the rule ``fns`` to the flat inputs ``xs`` through a hijax primitive.

    ``out_aval`` is the pytree of output avals (from :func:`out_avals`, cached by the caller).
    """
    return _RulePrimitive(fns, tuple(jax.typeof(x) for x in xs), out_aval)(*xs)
