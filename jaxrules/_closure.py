"""Closure conversion: callables that close over arrays become pytrees.

A solver's residual `F` written inside `jit` or `grad` typically closes over traced
arrays (`lambda x: x - p`). Passing such a callable through `jax.custom_vjp` leaks the
tracer; passing it as a static argument silently drops the derivative with respect to `p`.
jaxrules instead turns the callable into a `Closure`: a pytree whose leaves are the
arrays found in its closure cells, defaults, `functools.partial` arguments and bound
`self`, and which rebuilds an equivalent function from new leaves. The arrays then travel
as ordinary inputs and get derivatives like any other; a rule differentiates through the
callable with `jax.jvp`/`jax.vjp` as with any pytree argument.

A callable that closes over no array becomes a `Closure` with no leaves: static, part of
the cache key by identity.
"""

from __future__ import annotations

import functools
import itertools
import types
from typing import Any

import jax
import numpy as np

_MAX_DEPTH = 8


def is_array(x: Any) -> bool:
    """An array for jaxrules: jax/numpy arrays, tracers, and JAX's typed literals."""
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) or (
        hasattr(x, "aval") and hasattr(x, "dtype")
    )


_SIMPLE = (int, str, bytes, bool, type(None), np.dtype)

#: Top-level packages whose modules, classes and functions jaxrules takes as constant (their
#: behaviour does not change while the process runs). Anything else that can change without
#: changing its identity — a user's module or class (attributes), a dict, a list, an object, a
#: NumPy array, a method bound to one of them (``d.get``) — is never a cache hit.
_CONSTANT_PACKAGES = frozenset(
    {
        "jax",
        "jaxlib",
        "jaxrules",
        "numpy",
        "scipy",
        "ml_dtypes",
        "opt_einsum",
        "math",
        "cmath",
        "operator",
        "functools",
        "itertools",
        "builtins",
        "typing",
        "types",
    }
)

#: Keys of values whose state may change between calls without changing their identity (a
#: dict, a list, an object with attributes): unique per conversion, so never a cache hit.
_fresh = itertools.count()


class _Ident:
    """An identity key that keeps its value alive (so that its id is never reused)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Ident) and other.value is self.value

    def __hash__(self):
        return id(self.value)


def _package(name: Any) -> str:
    return (name if isinstance(name, str) else "").split(".")[0]


def _immutable_by_identity(value: Any) -> bool:
    """Values whose behaviour cannot change while they live: JAX arrays, and the modules,
    classes and functions of the packages in `_CONSTANT_PACKAGES` (`jnp`, `jnp.sin`, a
    `jax.jit` function, `math.exp`, `float`). A user's module or class is not (its attributes
    can be reassigned), nor a builtin method bound to an object (`d.get`)."""
    if isinstance(value, jax.Array):
        return True
    if isinstance(value, types.ModuleType):
        return _package(value.__name__) in _CONSTANT_PACKAGES
    if isinstance(value, type):
        return _package(value.__module__) in _CONSTANT_PACKAGES
    if isinstance(value, types.BuiltinFunctionType):
        owner = value.__self__
        return owner is None or (
            isinstance(owner, types.ModuleType) and _package(owner.__name__) in _CONSTANT_PACKAGES
        )
    mod = getattr(type(value), "__module__", "") or ""
    return callable(value) and _package(mod) in ("jax", "jaxlib", "numpy")


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _code_key(fn: types.FunctionType, depth: int = 0) -> tuple:
    """A function's code and the values of the globals that code reads."""
    g = fn.__globals__
    names = sorted(n for n in _global_names(fn.__code__) if n in g)
    return (fn.__code__, id(g), tuple((n, _key(g[n], depth + 1)) for n in names))


def _key(value: Any, depth: int = 0) -> Any:
    """A structural key for a static value: equal keys mean interchangeable values.

    Plain values compare by type and value; functions by their code, the values of the globals
    their code reads and (recursively) their captured values and defaults, so that
    `lambda x: x - a` created afresh on every call (as users write it) is the same static
    structure each time and hits every cache; modules, classes, builtins and JAX's functions
    by identity. Anything whose state can change without its identity changing — a dict, a
    list, a NumPy array, an object — gets a key of its own, so that a cache never returns a
    value computed with its old state (as `jax.jit` re-traces a fresh function).
    """
    if isinstance(value, (float, complex)):
        # By bits: 0.0 == -0.0 (and nan != nan), yet they are different constants.
        return (type(value), repr(value), np.asarray(value).tobytes())
    if isinstance(value, _SIMPLE):
        return (type(value), value)
    if _immutable_by_identity(value):
        return ("ident", _Ident(value))
    if depth < _MAX_DEPTH and isinstance(value, (tuple, frozenset)):
        items = value if isinstance(value, tuple) else sorted(value, key=repr)
        return (type(value), tuple(_key(v, depth + 1) for v in items))
    if depth < _MAX_DEPTH and isinstance(value, functools.partial):
        kw = tuple(sorted(value.keywords.items()))
        return (
            "partial",
            _key(value.func, depth + 1),
            _key(value.args, depth + 1),
            _key(kw, depth + 1),
        )
    if isinstance(value, types.FunctionType) and depth >= _MAX_DEPTH:
        return ("ident", _Ident(value))  # deep (or recursive through its globals)
    if isinstance(value, types.FunctionType):
        try:
            cells = tuple(_key(c.cell_contents, depth + 1) for c in value.__closure__ or ())
        except ValueError:  # an empty cell
            return ("fresh", next(_fresh))
        return (
            "function",
            *_code_key(value, depth),
            cells,
            _key(value.__defaults__, depth + 1),
            _key(tuple(sorted((value.__kwdefaults__ or {}).items())), depth + 1),
        )
    return ("fresh", next(_fresh))


class _Opaque:
    """Wraps a non-array value in the static part of a Closure; compares structurally
    (`_key`), and keeps the value alive so that identity keys stay valid."""

    __slots__ = ("key", "value")

    def __init__(self, value, key=None):
        self.value = value
        self.key = _key(value) if key is None else key

    def __eq__(self, other):
        return isinstance(other, _Opaque) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


@jax.tree_util.register_pytree_node_class
class Closure:
    """A callable rebuilt from a template function and the arrays it closes over.

    Calling it calls the original function with the current leaves in place of the arrays it
    captured. It is a pytree, so `jax.jvp(lambda F: F(x), (F,), (dF,))` differentiates with
    respect to the captured arrays.
    """

    def __init__(self, kind: str, template: Any, parts: Any, tkey: Any = None):
        self.kind = kind  # "function" | "partial" | "method"
        self.template = template
        self.parts = parts  # a pytree of arrays, nested Closures and _Opaque values
        # Computed once: flattening the same Closure twice must give equal tree structures.
        self._tkey = self._template_key() if tkey is None else tkey

    # -- pytree --------------------------------------------------------------------------
    def tree_flatten(self):
        leaves, treedef = jax.tree_util.tree_flatten(
            self.parts, is_leaf=lambda x: isinstance(x, _Opaque)
        )
        arrays = [x for x in leaves if not isinstance(x, _Opaque)]
        statics = tuple(x if isinstance(x, _Opaque) else None for x in leaves)
        return arrays, (self.kind, _Opaque(self.template, self._tkey), treedef, statics)

    def _template_key(self):
        # The captured values are in `parts` (compared there); the template itself only
        # contributes what `rebuild` takes from it.
        t = self.template
        if self.kind == "function":
            # The code, and the values of the globals it reads (the captured values are in
            # `parts`): a changed global is a different function.
            return ("function", t.__name__, *_code_key(t))
        if self.kind == "static":
            return _key(t)
        return (self.kind,)

    @classmethod
    def tree_unflatten(cls, aux, children):
        kind, template, treedef, statics = aux
        it = iter(children)
        leaves = [next(it) if s is None else s for s in statics]
        return cls(
            kind, template.value, jax.tree_util.tree_unflatten(treedef, leaves), template.key
        )

    # -- behaviour -----------------------------------------------------------------------
    def rebuild(self):
        if self.kind == "static":
            return self.template
        parts = jax.tree_util.tree_map(
            lambda p: p.value if isinstance(p, _Opaque) else p,
            self.parts,
            is_leaf=lambda p: isinstance(p, (_Opaque, Closure)),
        )
        parts = jax.tree_util.tree_map(
            lambda p: p.rebuild() if isinstance(p, Closure) else p,
            parts,
            is_leaf=lambda p: isinstance(p, Closure),
        )
        t = self.template
        if self.kind == "function":
            cells, defaults, kwdefaults = parts
            closure = tuple(types.CellType(c) for c in cells) if t.__closure__ else None
            fn = types.FunctionType(t.__code__, t.__globals__, t.__name__, defaults, closure)
            fn.__kwdefaults__ = kwdefaults
            fn.__dict__.update(t.__dict__)
            fn.__qualname__ = t.__qualname__
            return fn
        if self.kind == "partial":
            func, args, keywords = parts
            return functools.partial(func, *args, **keywords)
        func, self_obj = parts
        return types.MethodType(func, self_obj)

    def __call__(self, *args, **kwargs):
        return self.rebuild()(*args, **kwargs)

    @property
    def __name__(self):
        return getattr(self.template, "__name__", "closure")

    def __repr__(self):
        return f"Closure({self.template!r})"


#: Mutable containers: with `shallow`, their contents are not looked into (a rule appending
#: values to a list it closes over is keeping a log, not computing with them).
_MUTABLE = (list, dict, set)


def _convert_value(
    v: Any, depth: int, seen: set[int], shallow: bool = False, keep: Any = None
) -> tuple[Any, bool]:
    """Turn `v` into a pytree of arrays / Closures / _Opaque; report if any array was found.
    With `shallow`, lists, dicts and sets (but `keep`) are opaque values."""
    found = False

    def leaf(x):
        nonlocal found
        if is_array(x):
            found = True
            return x
        if callable(x) and not isinstance(x, type):
            c, f = _convert(x, depth + 1, seen, shallow)
            found = found or f
            return c if f else _Opaque(x)
        return _Opaque(x)

    def is_leaf(x):
        if x is None or isinstance(x, Closure):
            return True
        return shallow and isinstance(x, _MUTABLE) and x is not keep

    try:
        out = jax.tree_util.tree_map(leaf, v, is_leaf=is_leaf)
    except Exception:  # an object that flattens badly is kept as it is
        return _Opaque(v), False
    return out, found


def _convert(fn: Any, depth: int, seen: set[int], shallow: bool = False) -> tuple[Any, bool]:
    if depth > _MAX_DEPTH or id(fn) in seen:
        return fn, False
    seen = seen | {id(fn)}
    if isinstance(fn, Closure):
        return fn, True
    if isinstance(fn, functools.partial):
        parts, found = _convert_value(
            (fn.func, fn.args, fn.keywords), depth, seen, shallow, fn.keywords
        )
        return (Closure("partial", fn, parts), True) if found else (fn, False)
    if isinstance(fn, types.MethodType):
        parts, found = _convert_value((fn.__func__, fn.__self__), depth, seen, shallow)
        return (Closure("method", fn, parts), True) if found else (fn, False)
    if isinstance(fn, types.FunctionType):
        cells = []
        for c in fn.__closure__ or ():
            try:
                cells.append(c.cell_contents)
            except ValueError:  # an empty cell (a not-yet-assigned recursive name)
                return fn, False
        parts, found = _convert_value(
            (tuple(cells), fn.__defaults__, fn.__kwdefaults__),
            depth,
            seen,
            shallow,
            fn.__kwdefaults__,
        )
        return (Closure("function", fn, parts), True) if found else (fn, False)
    return fn, False


def convert(fn: Any) -> Any:
    """Closure-convert `fn` if it captures arrays; otherwise return it unchanged."""
    out, _ = _convert(fn, 0, set())
    return out


def as_pytree(fn: Any) -> Closure:
    """`fn` as a pytree: its captured arrays are the leaves; none (a static callable) if it
    captures no array."""
    return _as_pytree(fn)


def _as_pytree(fn: Any, shallow: bool = False) -> Closure:
    out, found = _convert(fn, 0, set(), shallow)
    return out if found else Closure("static", fn, ())


def captures_arrays(fn: Any) -> bool:
    return _convert(fn, 0, set())[1]


class Captured:
    """The arrays that some callables close over, as flat leaves, and the callables rebuilt
    from new leaves.

    A function or rule that closes over a tracer of an enclosing transformation (a `vmap`ped
    value, a value inside `jit`) is called by JAX's machinery where that tracer cannot be a
    constant (a staged jaxpr, a backward pass traced apart). As JAX closure-converts such
    functions, jaxrules passes the captured arrays as extra inputs and rebuilds the callables
    from the values that arrive.
    """

    def __init__(self, fns: tuple):
        # Shallow: arrays held in lists, dicts or sets the callables close over are not
        # extra inputs (a log of values is not data; JAX never sees it either).
        tree = tuple(None if f is None else _as_pytree(f, shallow=True) for f in fns)
        self.leaves, self.treedef = jax.tree_util.tree_flatten(tree)
        #: For each leaf, the index in `fns` of the callable that captured it.
        self.owner = [
            i for i, c in enumerate(tree) for _ in range(len(jax.tree_util.tree_leaves(c)))
        ]

    @property
    def has_tracer(self) -> bool:
        return any(isinstance(x, jax.core.Tracer) for x in self.leaves)

    def rebuild(self, leaves) -> tuple:
        tree = self.treedef.unflatten(list(leaves))
        return tuple(None if c is None else c.rebuild() for c in tree)
