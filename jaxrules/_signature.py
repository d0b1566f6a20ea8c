"""Binding a call: split the arguments into static, nondiff, zero and dynamic ones.

The declarations are validated once, when the decorator runs; each call is then bound against
the function's signature (keyword-only, defaulted and `*args` parameters included) and split
into a dict of static values and a tuple of the remaining ("traced") parameters, in signature
order. Rules receive the traced parameters in that order and the static ones as keywords.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

_P = inspect.Parameter


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """The declared kinds of a function's parameters."""

    name: str  # the rule's name, for messages
    signature: inspect.Signature
    static: tuple[str, ...]
    nondiff: tuple[str, ...]
    zero: tuple[str, ...]
    traced: tuple[str, ...]  # non-static parameters, signature order

    def kind(self, param: str) -> str:
        if param in self.nondiff:
            return "nondiff"
        if param in self.zero:
            return "zero"
        return "dynamic"


def _as_names(fn_name: str, what: str, names: str | Iterable[str] | None) -> tuple[str, ...]:
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    try:
        out = tuple(names)
    except TypeError:
        raise TypeError(
            f"{fn_name}: {what} must be a string or a sequence of strings, got "
            f"{type(names).__name__}."
        ) from None
    for n in out:
        if not isinstance(n, str):
            raise TypeError(
                f"{fn_name}: {what} must contain parameter names (strings), got {n!r}. "
                "jaxrules declares arguments by name, not by position."
            )
    return out


def make_argspec(
    fn: Callable,
    name: str,
    static_argnames: Any = None,
    constant_argnames: Any = None,
    zero_argnames: Any = None,
) -> ArgSpec:
    """Validate the declarations against `fn`'s signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: cannot read the signature of {fn!r}: {e}") from None
    if isinstance(fn, functools.partial) and fn.keywords:
        # The keywords a partial binds are part of the function, not arguments of the call
        # (JAX treats a partial's signature as opaque: the rules see the caller's arguments).
        sig = sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in fn.keywords])
    params = sig.parameters
    groups = {
        "static_argnames": _as_names(name, "static_argnames", static_argnames),
        "constant_argnames": _as_names(name, "constant_argnames", constant_argnames),
        "zero_argnames": _as_names(name, "zero_argnames", zero_argnames),
    }
    seen: dict[str, str] = {}
    for group, names in groups.items():
        for n in names:
            if n not in params:
                close = [p for p in params if p.lower() == n.lower() or p.startswith(n[:3])]
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"{name}: {group} names {n!r}, which is not a parameter of {name}"
                    f"{tuple(params)}.{hint}"
                )
            if params[n].kind is _P.VAR_KEYWORD:
                raise ValueError(
                    f"{name}: {group} names the **{n} parameter; declare the individual "
                    "keywords as parameters instead."
                )
            if n in seen:
                what = "twice in " + group if seen[n] == group else f"in both {seen[n]} and {group}"
                raise ValueError(
                    f"{name}: parameter {n!r} is declared {what}; give each parameter one kind."
                )
            seen[n] = group
    static = groups["static_argnames"]
    traced = tuple(p for p in params if p not in static)
    return ArgSpec(
        name=name,
        signature=sig,
        static=static,
        nondiff=groups["constant_argnames"],
        zero=groups["zero_argnames"],
        traced=traced,
    )


def bind(spec: ArgSpec, args: tuple, kwargs: dict) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """Bind a call; return `(static values by name, traced values in signature order)`."""
    try:
        bound = spec.signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{spec.name}: {e}") from None
    bound.apply_defaults()
    values = bound.arguments
    static = {n: values[n] for n in spec.static}
    traced = tuple(values[n] for n in spec.traced)
    return static, traced


def call_form(spec: ArgSpec, traced: tuple, static: dict) -> tuple[tuple, dict]:
    """Arrange values for calling a function with `spec`'s signature.

    Traced positional parameters go positionally (`*args` expanded), keyword-only and
    `**kwargs` values by keyword, and static values always by keyword.
    """
    pos: list[Any] = []
    kw: dict[str, Any] = dict(static)
    params = spec.signature.parameters
    for n, v in zip(spec.traced, traced):
        kind = params[n].kind
        if kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD):
            pos.append(v)
        elif kind is _P.VAR_POSITIONAL:
            pos.extend(v)
        elif kind is _P.KEYWORD_ONLY:
            kw[n] = v
        else:  # VAR_KEYWORD
            kw.update(v)
    return tuple(pos), kw


def call_original(spec: ArgSpec, fn: Callable, traced: tuple, static: dict) -> Any:
    """Call `fn` exactly as the user called the decorated function (static values in place)."""
    values = dict(static)
    values.update(zip(spec.traced, traced))
    pos: list[Any] = []
    kw: dict[str, Any] = {}
    for n, p in spec.signature.parameters.items():
        v = values[n]
        if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD):
            pos.append(v)
        elif p.kind is _P.VAR_POSITIONAL:
            pos.extend(v)
        elif p.kind is _P.KEYWORD_ONLY:
            kw[n] = v
        else:
            kw.update(v)
    return fn(*pos, **kw)
