"""How a drawn example point becomes the checked function `F(xs, fixed) -> output leaves`.

The example arguments are bound to the rule's signature (positional-only, `*args` and
keyword-only parameters included), then split into the differentiated leaves `xs` (floating
leaves of dynamic parameters) and the `fixed` ones (integers, nondiff and zero parameters).
A parameter the example does not give keeps its default *as it is* (not traced, not
differentiated): `jnp.linalg.pinv`'s `hermitian=False` or `qr`'s `mode="reduced"`
are options, not inputs.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from .. import _custom
from .._errors import keystr
from .._registry import Rule
from .._signature import ArgSpec, call_original, make_argspec

_P = inspect.Parameter


def argspec(rec: Rule, case: Mapping[str, Any]) -> ArgSpec:
    if isinstance(rec.fn, _custom.CustomRule):
        return rec.fn.argspec
    return make_argspec(rec.fn, rec.name, static_argnames=tuple(case))


@dataclasses.dataclass
class Layout:
    """How the traced arguments flatten into `xs` (differentiated) and `fixed` leaves."""

    static: dict  # static parameters and defaults, passed as they are
    names: tuple[str, ...]  # the parameters flattened into leaves, signature order
    treedef: Any
    x_index: list[int]
    fixed_index: list[int]
    labels: list[str]
    projectors: list[Callable | None]
    argspec: ArgSpec
    fixed_params: list[str] = dataclasses.field(default_factory=list)  # per fixed leaf

    def rebuild(self, xs, fixed):
        leaves: list[Any] = [None] * (len(self.x_index) + len(self.fixed_index))
        for i, x in zip(self.x_index, xs):
            leaves[i] = x
        for i, f in zip(self.fixed_index, fixed):
            leaves[i] = f
        return self.treedef.unflatten(leaves)

    def function(self, fn: Callable) -> Callable:
        """`fn` as a function of the leaves: `F(xs, fixed) -> list of output leaves`."""

        spec = self.argspec

        def F(xs, fixed):
            values = dict(self.static)
            values.update(zip(self.names, self.rebuild(xs, fixed)))
            traced = tuple(values[n] for n in spec.traced)
            out = call_original(spec, fn, traced, {n: values[n] for n in spec.static})
            return jax.tree_util.tree_leaves(out)

        return F


def _bind(rec: Rule, spec: ArgSpec, args: Mapping[str, Any]) -> tuple[dict[str, Any], set]:
    """Every parameter's value: the example's, else the default (`()`/`{}` for
    `*args`/`**kwargs`), and the names that took their default. By name, so
    positional-only parameters work too."""
    params = spec.signature.parameters
    unknown = [n for n in args if n not in params]
    if unknown:
        raise TypeError(
            f"check({rec.name!r}): the example inputs name {unknown}, which are not parameters "
            f"of {rec.name}{tuple(params)}."
        )
    values: dict[str, Any] = {}
    defaulted = set()
    for n, p in params.items():
        if n in args:
            v = args[n]
            values[n] = tuple(v) if p.kind is _P.VAR_POSITIONAL else v
        elif p.default is not _P.empty:
            values[n] = p.default
            defaulted.add(n)
        elif p.kind is _P.VAR_POSITIONAL:
            values[n] = ()
        elif p.kind is _P.VAR_KEYWORD:
            values[n] = {}
        else:
            raise TypeError(
                f"check({rec.name!r}): no example input for argument {n!r}; register "
                f"inputs={{{n!r}: jr.inputs.general(...)}}."
            )
    return values, defaulted


def make_layout(rec: Rule, args: Mapping[str, Any], spec: ArgSpec) -> tuple[Layout, list, list]:
    values, defaulted = _bind(rec, spec, args)
    static = {n: values[n] for n in spec.static or () if n in values}
    static.update({n: values[n] for n in defaulted})
    names = tuple(n for n in spec.traced if n not in defaulted)
    traced = tuple(values[n] for n in names)
    with_path, treedef = jax.tree_util.tree_flatten_with_path(traced)
    x_index, fixed_index, labels, projectors, fixed_params = [], [], [], [], []
    for i, (path, leaf) in enumerate(with_path):
        pname = names[path[0].idx]
        sub = path[1:]
        leaf = jnp.asarray(leaf) if isinstance(leaf, (int, float, bool)) else leaf
        diff = spec.kind(pname) == "dynamic" and jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
        if diff:
            x_index.append(i)
            labels.append(pname + (keystr(sub) if sub else ""))
            projectors.append(rec.projector(pname) if not sub else None)
        else:
            fixed_index.append(i)
            fixed_params.append(pname)
    leaves = [leaf for _, leaf in with_path]
    xs = [jnp.asarray(leaves[i]) for i in x_index]
    fixed = [leaves[i] for i in fixed_index]
    layout = Layout(
        static, names, treedef, x_index, fixed_index, labels, projectors, spec, fixed_params
    )
    return layout, xs, fixed
