"""Both rules on one function, via `jax.experimental.hijax` (the one experimental import).

JAX cannot attach a JVP rule *and* a VJP rule to one function: `custom_jvp` gets reverse mode
only by transposing its JVP, `custom_vjp` has no forward mode. `VJPHiPrimitive` (JAX >= 0.8)
carries `jvp`, `vjp_fwd`/`vjp_bwd_retval` and a batching rule on one object, which is
exactly what a function with both rules needs. JAX 0.11.2 renamed the class `HiPrim` (same
members); it is resolved here by either name.

This module is the only place that touches that API. `AVAILABLE` says whether it is
present; `jaxrules._backend` decides, per JAX version, when to bind it and what to fall
back to without it. Both paths are tested.

The primitive's batching rule is our own rather than hijax's `VmapOf`: `VmapOf.jvp` batches
the primal output even when only the tangents are batched (`jacfwd`), which fails. Ours
builds a new primitive whose functions are the `vmap` of the old ones, all outputs batched
along axis 0, and sums cotangents of unbatched inputs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: The names the hijax primitive class has had: `VJPHiPrimitive` (JAX 0.8 - 0.11.0), `HiPrim`
#: (JAX 0.11.2 onwards; same members). A future rename is one more entry here.
CLASS_NAMES = ("HiPrim", "VJPHiPrimitive")


def _resolve() -> tuple[Any, Any, str, str]:
    """`(class, Zero, class name, why unavailable)` for the installed JAX."""
    if os.environ.get("JAXRULES_DISABLE_HIJAX"):
        return object, (), "", "disabled by JAXRULES_DISABLE_HIJAX"
    try:
        from jax.experimental import hijax
    except ImportError as e:  # pragma: no cover - depends on the installed JAX
        return object, (), "", f"jax.experimental.hijax cannot be imported ({e})"
    zero = getattr(hijax, "Zero", None)
    for name in CLASS_NAMES:
        cls = getattr(hijax, name, None)
        if isinstance(cls, type) and zero is not None:
            return cls, zero, name, ""
    return (  # pragma: no cover - depends on the installed JAX
        object,
        (),
        "",
        f"jax.experimental.hijax has none of {CLASS_NAMES} (or no Zero)",
    )


_VJPHiPrimitive, _Zero, CLASS_NAME, UNAVAILABLE_REASON = _resolve()
#: Whether the hijax primitive class was found (under any known name) and not disabled.
AVAILABLE = bool(CLASS_NAME)


@dataclasses.dataclass(frozen=True, eq=False)
class Fns:
    """A rule over flat leaves. `None` stands for a zero tangent/cotangent throughout.

    - `primal(*xs) -> out`
    - `jvp(xs, ts) -> (out, t_out)`
    - `fwd(xs, nonzeros) -> (out, residuals)`
    - `bwd(residuals, ct_out) -> per-leaf cotangents`
    """

    name: str
    primal: Callable
    jvp: Callable
    fwd: Callable
    bwd: Callable


def _none_if_zero(t):
    return None if isinstance(t, _Zero) else t


def out_avals(fn: Callable, *xs) -> Any:
    """The output avals of `fn` (sharding and varying manual axes included), as a pytree."""
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

    def batched_jvp(jvp_fn):
        def jvp(xs, ts):
            nz = tuple(t is not None for t in ts)
            t_axes = tuple(a for a, n in zip(axes, nz) if n)

            def one(xs_, ts_nz):
                it = iter(ts_nz)
                return jvp_fn(xs_, tuple(next(it) if n else None for n in nz))

            ts_nz = tuple(t for t, n in zip(ts, nz) if n)
            return vm(one, (axes, t_axes))(xs, ts_nz)

        return jvp

    jvp = batched_jvp(fns.jvp)

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


@dataclasses.dataclass(frozen=True, eq=False)
class LinFns:
    """A map `t_out = L(res, ts)`, linear in `ts`, given by both of its directions.

    - `apply(res, ts) -> t_out`: the map itself (forward mode evaluates it);
    - `transpose(res, ct) -> cts`: its transpose, one entry per `ts` leaf (`None` = 0).
    """

    name: str
    apply: Callable
    transpose: Callable


class _LinearPrimitive(_VJPHiPrimitive):  # type: ignore[misc,valid-type]
    """The tangent of a staged rule (JAX < 0.12, see `jaxrules._backend`).

    A `custom_jvp` staged under `jit` before differentiation returns its tangent through
    this primitive: evaluating it (forward mode) runs the forward tangent map (the JVP rule, or
    the transpose of the VJP rule), transposing it (reverse mode) runs the VJP rule. So a rule
    staged before differentiation keeps both of its modes, as when differentiation sees it
    directly.
    """

    def __init__(self, fns: LinFns, in_avals: tuple, out_aval: Any):
        self.in_avals = in_avals
        self.out_aval = out_aval
        self.params = dict(lin=fns)
        super().__init__()

    def expand(self, res, ts):
        return self.lin.apply(res, ts)

    def transpose(self, ct, res, accums):
        ct = jax.tree_util.tree_map(_none_if_zero, ct, is_leaf=lambda t: isinstance(t, _Zero))
        cts = self.lin.transpose(res, ct)
        for acc, c in zip(accums, cts):
            if c is not None and hasattr(acc, "accum"):
                acc.accum(c)

    # derivatives with respect to the residuals too (higher orders): through `apply`
    def jvp(self, primals, tangents):
        # Only perturbed inputs are differentiated: the others stay symbolic zeros (a rule
        # that apply calls may refuse a perturbed nondiff argument).
        flat_p, tree = jax.tree_util.tree_flatten(tuple(primals))
        flat_t = tree.flatten_up_to(tuple(tangents))
        nz = [not isinstance(t, _Zero) and _inexact(p) for p, t in zip(flat_p, flat_t)]

        def f(*nz_vals):
            it = iter(nz_vals)
            return self.lin.apply(
                *tree.unflatten([next(it) if n else p for p, n in zip(flat_p, nz)])
            )

        pick = lambda xs: tuple(x for x, n in zip(xs, nz) if n)
        return jax.jvp(f, pick(flat_p), pick(flat_t))

    def vjp_fwd(self, nzs_in, res, ts):
        flat = (*res, *ts)
        nzs = (*nzs_in[0], *nzs_in[1])
        # Which inputs are perturbed travels in the residuals' structure (dict keys).
        saved = (
            {i: x for i, (x, n) in enumerate(zip(flat, nzs)) if n and _inexact(x)},
            {i: x for i, (x, n) in enumerate(zip(flat, nzs)) if not (n and _inexact(x))},
        )
        return self.lin.apply(res, ts), saved

    def vjp_bwd_retval(self, saved, ct):
        ct = jax.tree_util.tree_map(
            lambda c, a: jnp.zeros(a.shape, a.dtype) if isinstance(c, _Zero) else c,
            ct,
            self.out_aval,
            is_leaf=lambda t: isinstance(t, _Zero),
        )
        nz, z = saved
        n = len(nz) + len(z)
        keys = sorted(nz)
        n_res = len(self.in_avals[0])

        def f(*vals):
            full = dict(z)
            full.update(zip(keys, vals))
            flat = [full[i] for i in range(n)]
            return self.lin.apply(tuple(flat[:n_res]), tuple(flat[n_res:]))

        cts = jax.vjp(f, *(nz[k] for k in keys))[1](ct)
        out = [None] * n
        for k, c in zip(keys, cts):
            out[k] = c
        return tuple(out[:n_res]), tuple(out[n_res:])

    def batch(self, axis_data, args, dims):
        res, ts = args  # flat tuples of arrays
        r_leaves, t_leaves = list(res), list(ts)
        r_dims, t_dims = list(dims[0]), list(dims[1])
        if all(d is None for d in r_dims + t_dims):
            out = self(res, ts)
            return out, jax.tree_util.tree_map(lambda _: None, out)
        front = lambda a, d: a if d is None else jnp.moveaxis(a, d, 0)
        r_leaves = [front(a, d) for a, d in zip(r_leaves, r_dims)]
        t_leaves = [front(a, d) for a, d in zip(t_leaves, t_dims)]
        raxes = tuple(None if d is None else 0 for d in r_dims)
        taxes = tuple(None if d is None else 0 for d in t_dims)
        res, ts = tuple(r_leaves), tuple(t_leaves)
        size = axis_data.size
        lin = self.lin

        def apply(r, t):
            return jax.vmap(lin.apply, (raxes, taxes), 0, axis_size=size)(r, t)

        def transpose(r, ct):
            def one(r_, c_):
                return tuple(lin.transpose(r_, c_))

            cts = jax.vmap(one, (raxes, 0), 0, axis_size=size)(r, ct)
            # A cotangent for an unbatched tangent sums over the batch.
            return [c if (c is None or a == 0) else jnp.sum(c, axis=0) for c, a in zip(cts, taxes)]

        fns = LinFns(lin.name, apply, transpose)
        # Every output batched along axis 0. Not found by tracing `apply`: in reverse mode the
        # map is only ever transposed, and tracing it here would run the transpose of the VJP
        # rule (the VJP rule itself, with zeros for its symbolic-zero cotangents) needlessly.
        out_aval = jax.tree_util.tree_map(lambda a: a.update(shape=(size, *a.shape)), self.out_aval)
        out = _LinearPrimitive(fns, (_typeof_tree(res), _typeof_tree(ts)), out_aval)(res, ts)
        return out, jax.tree_util.tree_map(lambda _: 0, out)


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _typeof_tree(tree):
    return jax.tree_util.tree_map(jax.typeof, tree)


def bind_linear(fns: LinFns, res: tuple, ts: tuple, out_aval: Any) -> Any:
    """`fns.apply(res, ts)`, linear in `ts`, whose transpose is `fns.transpose`
    (`res` and `ts`: flat tuples of arrays)."""
    prim = _LinearPrimitive(fns, (_typeof_tree(res), _typeof_tree(tuple(ts))), out_aval)
    return prim(res, tuple(ts))


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
    """Apply the rule `fns` to the flat inputs `xs` through a hijax primitive.

    `out_aval` is the pytree of output avals (from `out_avals`, cached by the caller).
    """
    return _RulePrimitive(fns, tuple(jax.typeof(x) for x in xs), out_aval)(*xs)
