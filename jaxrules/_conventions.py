"""JAX's spellings of custom rules, mapped onto jaxrules' own.

`jax.custom_jvp`/`jax.custom_vjp` code runs unchanged on jaxrules' decorators. This module
translates the three spellings that differ from jaxrules' own conventions:

- `nondiff_argnums=(i, ...)`: JAX passes those arguments *first and positionally* to the
  rules (`jvp(*nondiff, primals, tangents)`, `bwd(*nondiff, res, g)` returning cotangents
  of the other arguments only). jaxrules maps each such argument, per call, onto one of its own
  kinds: a value without arrays (a float, a string, a function closing over no array) is
  *static* (wrapped in `StaticValue`, part of the cache key), an array or a pytree or
  closure holding arrays is *nondiff* (traced; differentiating with respect to it is an error,
  where JAX silently returns zero).
- `defjvps(*jvps)`: one tangent function per argument, summed.
- `symbolic_zeros=True`: zero tangents/cotangents arrive as JAX's `SymbolicZero` objects and
  `fwd` receives `CustomVJPPrimal` objects (handled by `jaxrules._custom` through the
  zero mode `"jax"`; jaxrules' own `None` convention is `zeros_as_none=True`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax

from ._errors import describe

_SymbolicZero = jax.custom_derivatives.SymbolicZero


@jax.tree_util.register_pytree_node_class
class StaticValue:
    """A non-array value in an argument slot that JAX's spelling treats as static: a leafless
    pytree node, so that it travels with the traced arguments and keys caches by value (or by
    identity when unhashable)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def tree_flatten(self):
        return (), _Key(self.value)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux.value)

    def __repr__(self):
        return f"StaticValue({self.value!r})"


class _Key:
    """Hash/compare a static value by type and value (`1` vs `1.0` differ), or by identity
    when it is unhashable."""

    __slots__ = ("key", "value")

    def __init__(self, value):
        self.value = value
        try:
            hash(value)
            self.key = (type(value), value)
        except TypeError:
            self.key = ("id", id(value))

    def __eq__(self, other):
        return isinstance(other, _Key) and self.key == other.key

    def __hash__(self):
        return hash(self.key)


def unwrap(tree: Any) -> Any:
    """Replace `StaticValue` nodes by their values."""
    return jax.tree_util.tree_map(
        lambda x: x.value if isinstance(x, StaticValue) else x,
        tree,
        is_leaf=lambda x: isinstance(x, StaticValue),
    )


def argnums_to_names(fn: Callable, name: str, argnums: Any) -> tuple[str, ...]:
    """The parameter names at JAX's `nondiff_argnums` positions, validated."""
    if isinstance(argnums, int):
        argnums = (argnums,)
    try:
        nums = tuple(int(i) for i in argnums)
    except TypeError:
        raise TypeError(
            f"{name}: nondiff_argnums must be an int or a sequence of ints, got "
            f"{describe(argnums)}."
        ) from None
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    out = []
    for i in nums:
        if not -len(params) <= i < len(params):
            raise ValueError(
                f"{name}: nondiff_argnums has {i}, but {name} has {len(params)} positional "
                f"parameters {tuple(p.name for p in params)}."
            )
        out.append(params[i].name)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: nondiff_argnums {nums} names a parameter twice.")
    # JAX passes them to the rules in increasing position order.
    order = {p.name: k for k, p in enumerate(params)}
    return tuple(sorted(out, key=order.__getitem__))


def jax_nondiff_names(fn: Callable, name: str, argnums: Any, argnames: Any) -> tuple[str, ...]:
    """JAX's `nondiff_argnums` and `nondiff_argnames` together (as JAX: their union), as
    parameter names in increasing position order, validated."""
    names = list(argnums_to_names(fn, name, argnums) if argnums is not None else ())
    if isinstance(argnames, str):
        argnames = (argnames,)
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    order = {p.name: k for k, p in enumerate(params)}
    for n in argnames or ():
        if n not in order:
            raise ValueError(
                f"{name}: nondiff_argnames names {n!r}, which is not a positional parameter of "
                f"{name}{tuple(order)}."
            )
        if n not in names:
            names.append(n)
    return tuple(sorted(names, key=order.__getitem__))


class JaxNondiff:
    """Adapters from JAX's `nondiff_argnums` rule signatures to jaxrules' internal ones.

    `traced` are the function's non-static parameters in signature order (jaxrules passes
    them to rules in that order); `nondiff` the names at `nondiff_argnums`.
    """

    def __init__(self, traced: Sequence[str], nondiff: Sequence[str], var: str | None = None):
        self.traced = tuple(traced)
        self.nondiff = tuple(nondiff)
        #: The `*args` parameter, if any: JAX's rules see its values one by one.
        self.var = var
        self.diff_idx = [i for i, n in enumerate(self.traced) if n not in self.nondiff]
        self.nd_idx = [self.traced.index(n) for n in self.nondiff]

    def _flat(self, values) -> tuple:
        """The differentiable arguments as JAX passes them: `*args` expanded."""
        out: list[Any] = []
        for i in self.diff_idx:
            if self.traced[i] == self.var:
                out.extend(values[i])
            else:
                out.append(values[i])
        return tuple(out)

    def jvp(self, user_jvp: Callable) -> Callable:
        def jvp(primals, tangents, **static):
            nd = [unwrap(primals[i]) for i in self.nd_idx]
            return user_jvp(*nd, self._flat(primals), self._flat(tangents), **static)

        return jvp

    def fwd(self, user_fwd: Callable) -> Callable:
        def fwd(*args, **static):
            args = unwrap(args)
            out, res = user_fwd(*args, **static)
            # JAX hands the nondiff arguments to bwd as well: keep them with the residuals,
            # and how many values `*args` had (JAX's cotangents list them one by one).
            nd = [args[i] for i in self.nd_idx]
            n_var = len(args) - (len(self.traced) - (self.var is not None))
            return out, (_wrap_static(nd), StaticValue(n_var), res)

        return fwd

    def bwd(self, user_bwd: Callable) -> Callable:
        def bwd(residuals, ct, **static):
            nd, n_var, res = residuals
            cts = user_bwd(*unwrap(nd), res, ct, **static)
            n = len(self.diff_idx) + (n_var.value - 1 if self.var is not None else 0)
            if not isinstance(cts, (tuple, list)) or len(cts) != n:
                return cts  # jaxrules' own validation reports it (with the expected length)
            full: list[Any] = [None] * len(self.traced)
            it = iter(cts)
            for i in self.diff_idx:
                if self.traced[i] == self.var:
                    full[i] = tuple(next(it) for _ in range(n_var.value))
                else:
                    full[i] = next(it)
            return tuple(full)

        return bwd


def _wrap_static(values):
    # Non-array values cannot be residuals: keep them as leafless pytree nodes.
    return [
        v if jax.tree_util.tree_leaves(v) and _all_arrays(v) else StaticValue(v) for v in values
    ]


def _all_arrays(v) -> bool:
    return all(hasattr(x, "dtype") and hasattr(x, "shape") for x in jax.tree_util.tree_leaves(v))


def defjvps_rule(rule: Callable, jvps: Sequence[Callable | None]) -> Callable:
    """A JVP rule (JAX's convention) from one tangent function per argument, as
    `jax.custom_jvp.defjvps`: `jvp_i(t_i, primal_out, *primals)`, `None` for no
    contribution; the contributions are summed."""

    def jvp(primals, tangents):
        if len(jvps) != len(primals):
            raise TypeError(
                f"{getattr(rule, 'name', 'rule')}.defjvps: got {len(jvps)} tangent functions "
                f"for {len(primals)} differentiable arguments; pass one per argument (None for "
                "an argument with no derivative)."
            )
        out = rule(*primals)
        total = None
        for f, t in zip(jvps, tangents):
            if f is None or t is None or isinstance(t, _SymbolicZero):
                continue
            contrib = f(t, out, *primals)
            total = (
                contrib
                if total is None
                else jax.tree_util.tree_map(lambda a, b: a + b, total, contrib)
            )
        if total is None:
            total = jax.tree_util.tree_map(lambda o: o * 0, out)
        return out, total

    return jvp
