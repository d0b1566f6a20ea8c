"""The decorators: `jr.custom_jvp` and `jr.custom_vjp`.

Both return a `CustomRule`, on which a JVP rule, a VJP rule, or both can be defined.

How a call runs:

1. the call is bound against the signature and split into static values (keywords for the
   rules, part of the cache key) and traced parameters (`jaxrules._signature`);
2. callables among the traced parameters are closure-converted (`jaxrules._closure`),
   Python numbers become arrays, and the traced parameters are flattened into leaves, each with
   a kind: `dynamic`, `nondiff`, `zero` or `int` (integer/bool: float0 tangents);
3. a `jaxrules._specialize.Specialization` is looked up by (tree structure, static values, leaf types): it
   holds the expected output shapes (one `jax.eval_shape` per key, never per call) and the
   flat functions that wrap the user's rules with zero handling and output validation;
4. the flat function is bound through one of three backends:

   | rules defined | backend |
   |---|---|
   | JVP only | `jax.custom_jvp` (reverse mode by transposition) |
   | VJP only, or both | a hijax primitive (`jaxrules._hijax`): forward mode uses the JVP rule, or the transpose of the VJP rule when there is none; reverse mode the VJP rule |
   | VJP only, no hijax | `jax.custom_vjp` (forward mode: a clear error) |
   | both, no hijax | `jax.custom_jvp` with the JVP rule for both modes |
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import jax

from . import _backend, _closure, _conventions
from ._errors import describe, keystr
from ._signature import ArgSpec, bind, call_original, make_argspec
from ._specialize import Specialization, check_complex

try:  # Python >= 3.10
    from typing import ParamSpec
except ImportError:  # pragma: no cover
    from typing_extensions import ParamSpec

_P = ParamSpec("_P")
_R = TypeVar("_R")


class CustomRule(Generic[_P, _R]):
    """A function with custom derivative rules. Made by `custom_jvp`/`custom_vjp`.

    Define a JVP rule with `defjvp`, a VJP rule with `defvjp`, or both: forward
    mode then uses the JVP rule and reverse mode the VJP rule.
    """

    def __init__(
        self,
        fn: Callable[_P, _R],
        *,
        static_argnames: Any = None,
        constant_argnames: Any = None,
        zero_argnames: Any = None,
        allow_complex: bool = False,
        nondiff_argnums: Any = None,
        nondiff_argnames: Any = None,
        name: str | None = None,
    ):
        self.fn = fn
        self.name = name or getattr(
            fn, "__name__", getattr(getattr(fn, "func", None), "__name__", repr(fn))
        )
        #: JAX's spelling: these parameters come first in the rules (see _conventions).
        self.jax_nondiff: tuple[str, ...] = ()
        if nondiff_argnums is not None or nondiff_argnames is not None:
            if static_argnames or constant_argnames or zero_argnames:
                raise TypeError(
                    f"{self.name}: nondiff_argnums / nondiff_argnames (JAX's spelling: those "
                    "arguments come first in the rules) cannot be combined with "
                    "static_argnames / constant_argnames / zero_argnames (jaxrules' spelling); "
                    "use one of the two."
                )
            self.jax_nondiff = _conventions.jax_nondiff_names(
                fn, self.name, nondiff_argnums, nondiff_argnames
            )
            constant_argnames = self.jax_nondiff
        self.argspec: ArgSpec = make_argspec(
            fn, self.name, static_argnames, constant_argnames, zero_argnames
        )
        self._jax_conv = (
            _conventions.JaxNondiff(self.argspec.traced, self.jax_nondiff, _var_positional(fn))
            if self.jax_nondiff
            else None
        )
        self.allow_complex = allow_complex
        self.jvp_rule: Callable | None = None
        #: How zero tangents reach the JVP rule: "zeros" (materialised, JAX's default),
        #: "jax" (SymbolicZero objects) or "none" (None, jaxrules' own convention).
        self.jvp_zeros = "zeros"
        self.fwd_rule: Callable | None = None
        self.bwd_rule: Callable | None = None
        self.optimize_remat = False
        self.vjp_zeros = "zeros"
        functools.update_wrapper(self, fn)

    # -- defining rules ------------------------------------------------------------------------
    def defjvp(
        self, jvp: Callable, *, symbolic_zeros: bool = False, zeros_as_none: bool = False
    ) -> Callable:
        """Define the JVP rule `jvp(primals, tangents, **static) -> (out, tangent_out)`.

        `primals` is a tuple of the non-static arguments in signature order; `tangents`
        has the same structure, with `None` for nondiff, zero and integer arguments. The
        tangent of an unperturbed argument arrives as zeros (JAX's default), as a
        `jax.custom_derivatives.SymbolicZero` with `symbolic_zeros=True` (JAX's spelling),
        or as `None` with `zeros_as_none=True` (jaxrules' own: the rule can skip work).
        `tangent_out` may be `None` (or have `None` / `SymbolicZero` leaves) for a zero
        tangent. With `nondiff_argnums` (JAX's spelling) the rule is JAX's
        `jvp(*nondiff_args, primals, tangents)`. Returns `jvp`, so this works as a
        decorator.
        """
        if not callable(jvp):
            raise TypeError(f"{self.name}.defjvp: expected a callable rule, got {describe(jvp)}.")
        self.jvp_zeros = _zero_mode(self.name, "defjvp", symbolic_zeros, zeros_as_none)
        self.jvp_rule = self._jax_conv.jvp(jvp) if self._jax_conv else jvp
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        """Define the JVP rule as one tangent function per argument, as
        `jax.custom_jvp.defjvps`: `jvp_i(tangent_i, primal_out, *primals)` (`None`: that
        argument contributes nothing); the contributions are summed."""
        if self.jax_nondiff:
            raise TypeError(
                f"{self.name}.defjvps cannot be used with nondiff_argnums (as in JAX); use defjvp."
            )
        self.defjvp(_conventions.defjvps_rule(self, jvps))

    def defvjp(
        self,
        fwd: Callable,
        bwd: Callable,
        *,
        symbolic_zeros: bool = False,
        zeros_as_none: bool = False,
        optimize_remat: bool = False,
    ) -> None:
        """Define the VJP rule as a pair `fwd`/`bwd`.

        `fwd` takes the same arguments as the function (static ones as keywords) and returns
        `(out, residuals)`; `bwd(residuals, out_cotangent, **static)` returns a tuple with
        one cotangent per non-static argument, `None` meaning zero. Cotangents for nondiff,
        zero and integer arguments are ignored (any value; JAX substitutes float0 likewise).
        A zero output cotangent arrives as zeros (JAX's default), as a `SymbolicZero` with
        `symbolic_zeros=True` (`fwd` then receives `CustomVJPPrimal` objects with
        `.value` and `.perturbed`, as in JAX) or as `None` with `zeros_as_none=True`.
        With `nondiff_argnums` the rules are JAX's `fwd(*args)` and
        `bwd(*nondiff_args, res, g)` returning cotangents of the other arguments.
        `optimize_remat=True` is JAX's option (under `jax.checkpoint`, `fwd` recomputes only
        the residuals): passed to `jax.custom_vjp` where that backend carries the rule; the
        hijax backend runs `fwd` only when reverse mode needs it and ignores the option.
        """
        for what, f in (("fwd", fwd), ("bwd", bwd)):
            if not callable(f):
                raise TypeError(
                    f"{self.name}.defvjp: expected a callable {what} rule, got {describe(f)}."
                )
        self.vjp_zeros = _zero_mode(self.name, "defvjp", symbolic_zeros, zeros_as_none)
        if self._jax_conv:
            fwd, bwd = self._jax_conv.fwd(fwd), self._jax_conv.bwd(bwd)
        self.fwd_rule, self.bwd_rule = fwd, bwd
        self.optimize_remat = bool(optimize_remat)

    @property
    def has_jvp(self) -> bool:
        return self.jvp_rule is not None

    @property
    def has_vjp(self) -> bool:
        return self.bwd_rule is not None

    @property
    def backend(self) -> str:
        """Which JAX mechanism carries the rules: `custom_jvp`, `custom_vjp` or `hijax`."""
        return _backend.select(self.has_jvp, self.has_vjp)

    # -- calling -------------------------------------------------------------------------------
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if _backend.is_undecorated():
            return self.fn(*args, **kwargs)
        if not (self.has_jvp or self.has_vjp):
            raise AttributeError(  # (JAX's exception class for a missing rule)
                f"{self.name} has no derivative rule yet: define one with @{self.name}.defjvp "
                f"or {self.name}.defvjp(fwd, bwd) before calling it."
            )
        static, traced = bind(self.argspec, args, kwargs)
        self._check_static(static)
        traced = self._prepare_traced(traced)
        leaves, treedef = jax.tree_util.tree_flatten(traced)
        tracers = [x for x in leaves if isinstance(x, jax.core.Tracer)]
        # Tracers of an enclosing transformation that the function or a rule closes over
        # become extra inputs (as JAX closure-converts them).
        captured = _closure.Captured((self.fn, self.jvp_rule, self.fwd_rule, self.bwd_rule))
        if not captured.has_tracer:
            captured = None
        elif not tracers:
            tracers = [x for x in captured.leaves if isinstance(x, jax.core.Tracer)]
        if not tracers:
            # Concrete values, no transformation: run the function once, as JAX does.
            out = self._call_eagerly(static, traced, treedef, leaves)
            if not any(isinstance(o, jax.core.Tracer) for o in jax.tree_util.tree_leaves(out)):
                return out
            # A traced output from concrete inputs: a transformation is in progress (a JVP
            # rule that JAX runs under an enclosing `vmap`), or the function hides a tracer
            # where jaxrules cannot see it (inside a `jax.jit` function). Bind the rule, as
            # JAX binds every call: JAX then batches it, or raises for the hidden tracer.
            return self._bind(static, treedef, leaves, True, None)
        return self._bind(static, treedef, leaves, _backend.all_concrete(tracers), captured)

    def _bind(self, static, treedef, leaves, concrete, captured):
        # A specialisation per call, never reused across calls: like `jax.custom_jvp`, the
        # function is traced afresh each time it is called under a transformation, so it always
        # sees the Python state it reads now (the caching contract, docs/how-it-works.md).
        spec = Specialization(self, static, treedef, leaves, concrete, captured)
        try:
            return spec.call(spec.inputs)
        except (jax.errors.UnexpectedTracerError, TypeError) as e:
            # A leaked tracer: JAX says so with UnexpectedTracerError, or (JAX 0.12, when the
            # tracer reaches a staged jaxpr as a constant) "No constant handler for type:
            # <...Tracer>".
            if not isinstance(e, jax.errors.UnexpectedTracerError) and not (
                "No constant handler for type" in str(e) and "Tracer" in str(e)
            ):
                raise
            raise jax.errors.UnexpectedTracerError(f"{_leak_message(self.name)}\n\n{e}") from None

    def _call_eagerly(self, static, traced, treedef, leaves):
        paths = [
            (n, p)
            for n, sub in zip(self.argspec.traced, traced)
            for p, _ in jax.tree_util.tree_flatten_with_path(sub)[0]
        ]
        check_complex(self, leaves, paths)
        if self.jax_nondiff:
            traced = _conventions.unwrap(traced)
        return call_original(self.argspec, self.fn, traced, static)

    def _check_static(self, static: dict) -> None:
        for n, v in static.items():
            bad = [
                (p, x)
                for p, x in jax.tree_util.tree_flatten_with_path(v)[0]
                if _closure.is_array(x)
            ]
            if bad:
                p, x = bad[0]
                where = f" (at {keystr(p)})" if p else ""
                raise TypeError(
                    f"{self.name}: static argument {n!r} got an array {describe(x)}{where}. "
                    "Static arguments are Python configuration, never traced. Remove it from "
                    "static_argnames (declare it in constant_argnames if it needs no derivative)."
                )
            if callable(v) and _closure.captures_arrays(v):
                raise TypeError(
                    f"{self.name}: static argument {n!r} is a callable that closes over arrays; "
                    "their derivatives would be lost. Remove it from static_argnames: jaxrules "
                    "then converts the closure into inputs that get derivatives."
                )
            try:
                hash(v)
            except TypeError:
                raise TypeError(
                    f"{self.name}: static argument {n!r} must be hashable (as jax.jit's static "
                    f"arguments), got an unhashable {type(v).__name__}. Pass a tuple instead of "
                    "a list, a frozenset instead of a set, or a hashable object."
                ) from None

    def _prepare_traced(self, traced: tuple) -> tuple:
        out = []
        for n, v in zip(self.argspec.traced, traced):
            if n in self.jax_nondiff and not _has_arrays(v):
                out.append(_conventions.StaticValue(v))  # static, as JAX treats it
                continue

            def leaf(x, n=n):
                if _closure.is_array(x) or isinstance(x, (bool, int, float, complex)):
                    return x  # (Python numbers reach the rules as they are, as in JAX)
                if callable(x):
                    # Its captured arrays become traced leaves; with none, it is static.
                    return _closure.as_pytree(x)
                raise TypeError(
                    f"{self.name}: argument {n!r} got a {type(x).__name__}, which JAX cannot "
                    "trace. Pass arrays (or pytrees of arrays), or declare it static with "
                    f"static_argnames=({n!r},)."
                )

            out.append(
                jax.tree_util.tree_map(leaf, v, is_leaf=lambda x: isinstance(x, _closure.Closure))
            )
        return tuple(out)

    def __repr__(self):
        return f"<jaxrules.CustomRule {self.name}>"

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


def _var_positional(fn) -> str | None:
    params = inspect.signature(fn).parameters.values()
    return next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)


def _leak_message(name: str) -> str:
    return (
        f"{name}: a rule or the function closes over a traced value it does not receive as an "
        f"argument. Pass every array the rules use as an argument of {name} (in "
        "constant_argnames if it needs no derivative)."
    )


def _has_arrays(v) -> bool:
    for x in jax.tree_util.tree_leaves(v):
        if _closure.is_array(x) or (callable(x) and _closure.captures_arrays(x)):
            return True
    return False


def _zero_mode(name: str, where: str, symbolic_zeros: bool, zeros_as_none: bool) -> str:
    if symbolic_zeros and zeros_as_none:
        raise TypeError(
            f"{name}.{where}: symbolic_zeros=True (JAX's SymbolicZero objects) and "
            "zeros_as_none=True (None) are two conventions for the same thing; pick one."
        )
    return "jax" if symbolic_zeros else "none" if zeros_as_none else "zeros"


@overload
def custom_jvp(fn: Callable[_P, _R], /) -> CustomRule[_P, _R]: ...
@overload
def custom_jvp(
    *,
    static_argnames: Any = None,
    constant_argnames: Any = None,
    zero_argnames: Any = None,
    allow_complex: bool = False,
    nondiff_argnums: Any = None,
    nondiff_argnames: Any = None,
) -> Callable[[Callable[_P, _R]], CustomRule[_P, _R]]: ...
def custom_jvp(fn=None, /, **options):
    """Decorate a function whose derivative is defined by a JVP rule (and optionally a VJP).

    **Arguments:**

    - `static_argnames`: parameters that are Python configuration (never traced, hashable,
      passed to the rules as keywords).
    - `constant_argnames`: array parameters that are traced but constant for differentiation
      (data: the matrix `A` of `A x`); differentiating with respect to one is an error naming
      it, never a silent zero. (jaxrules' own spelling; JAX's `nondiff_argnames` is below.)
    - `zero_argnames`: parameters the output does not depend on to first order (an initial
      guess): their derivative is exactly zero by declaration.
    - `allow_complex`: accept complex inputs (the rules follow JAX's conventions).
    - `nondiff_argnums` / `nondiff_argnames`: JAX's spelling, with JAX's meaning (those
      arguments come first in the rules); each is static when it holds no array and constant
      (an error if differentiated, where JAX gives zero) when it does.

    **Returns:** a `CustomRule`; define the rule with `@f.defjvp`.

    Examples:
        >>> import jax, jax.numpy as jnp, jaxrules as jr
        >>> @jr.custom_jvp
        ... def log1pexp(x):
        ...     return jnp.log1p(jnp.exp(x))
        >>> @log1pexp.defjvp
        ... def _(primals, tangents):
        ...     (x,), (dx,) = primals, tangents
        ...     return log1pexp(x), jax.nn.sigmoid(x) * dx
        >>> float(jax.grad(log1pexp)(100.0))
        1.0
    """
    return _decorator(fn, options)


@overload
def custom_vjp(fn: Callable[_P, _R], /) -> CustomRule[_P, _R]: ...
@overload
def custom_vjp(
    *,
    static_argnames: Any = None,
    constant_argnames: Any = None,
    zero_argnames: Any = None,
    allow_complex: bool = False,
    nondiff_argnums: Any = None,
    nondiff_argnames: Any = None,
) -> Callable[[Callable[_P, _R]], CustomRule[_P, _R]]: ...
def custom_vjp(fn=None, /, **options):
    """Decorate a function whose derivative is defined by a VJP rule (and optionally a JVP).

    Takes the same options as `custom_jvp` and returns the same kind of object; the
    name only says which rule you expect to write first. A VJP-only function also gets forward
    mode, by transposing its backward rule.

    Examples:
        >>> import jax, jax.numpy as jnp, jaxrules as jr
        >>> @jr.custom_vjp
        ... def clip_gradient(x, lo=-1.0, hi=1.0):
        ...     return x
        >>> def fwd(x, lo, hi):
        ...     return x, (lo, hi)
        >>> def bwd(res, g):
        ...     lo, hi = res
        ...     return jnp.clip(g, lo, hi), None, None
        >>> clip_gradient.defvjp(fwd, bwd)
        >>> float(jax.grad(lambda x: 3.0 * clip_gradient(x))(2.0))
        1.0
    """
    return _decorator(fn, options)


_OPTIONS = (
    "static_argnames",
    "constant_argnames",
    "zero_argnames",
    "allow_complex",
    "nondiff_argnums",
    "nondiff_argnames",
)


def _decorator(fn, options):
    for k in options:
        if k not in _OPTIONS:
            raise TypeError(
                f"jaxrules decorator: unknown option {k!r}; expected one of {_OPTIONS}."
            )
    if fn is None:
        return lambda f: CustomRule(f, **options)
    if not callable(fn):
        raise TypeError(
            f"jaxrules decorator: expected a function, got {describe(fn)}. Use "
            "@jr.custom_jvp or @jr.custom_jvp(static_argnames=...)."
        )
    return CustomRule(fn, **options)


def undecorated(fn: Callable) -> Callable:
    """The function under jaxrules' decorators (`fn` itself if it has none): a rule's
    `__wrapped__` chain, unwound through `CustomRule`s only (a user's own wrapper stays)."""
    return inspect.unwrap(fn, stop=lambda f: not isinstance(f, CustomRule))
