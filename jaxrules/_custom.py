"""The decorators: ``jr.custom_jvp`` and ``jr.custom_vjp``.

Both return a :class:`CustomRule`, on which a JVP rule, a VJP rule, or both can be defined.

How a call runs:

1. the call is bound against the signature and split into static values (keywords for the
   rules, part of the cache key) and traced parameters (:mod:`jaxrules._signature`);
2. callables among the traced parameters are closure-converted (:mod:`jaxrules._closure`),
   Python numbers become arrays, and the traced parameters are flattened into leaves, each with
   a kind: ``dynamic``, ``nondiff``, ``zero`` or ``int`` (integer/bool: float0 tangents);
3. a :class:`_Specialization` is looked up by (tree structure, static values, leaf types): it
   holds the expected output shapes (one ``jax.eval_shape`` per key, never per call) and the
   flat functions that wrap the user's rules with zero handling and output validation;
4. the flat function is bound through one of three backends:

   ========================  ====================================================
   rules defined             backend
   ========================  ====================================================
   JVP only                  ``jax.custom_jvp`` (reverse mode by transposition)
   VJP only, or both         a hijax primitive (:mod:`jaxrules._hijax`): forward
                             mode uses the JVP rule, or the transpose of the VJP
                             rule when there is none; reverse mode the VJP rule
   VJP only, no hijax        ``jax.custom_vjp`` (forward mode: a clear error)
   both, no hijax            ``jax.custom_jvp`` with the JVP rule for both modes
   ========================  ====================================================
"""

from __future__ import annotations

import collections
import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import jax
import jax.numpy as jnp
import numpy as np

from . import _backend, _closure, _hijax
from ._errors import describe, keystr
from ._signature import ArgSpec, bind, call_form, call_original, make_argspec
from ._validate import check_tree

try:  # Python >= 3.10
    from typing import ParamSpec
except ImportError:  # pragma: no cover
    from typing_extensions import ParamSpec

_P = ParamSpec("_P")
_R = TypeVar("_R")

_SymbolicZero = jax.custom_derivatives.SymbolicZero

#: How many specialisations (call signatures) each rule keeps.
_CACHE_SIZE = 512


def _is_none(x):
    return x is None


def _zeros_like_struct(s):
    dt = s.dtype if jnp.issubdtype(s.dtype, jnp.inexact) else jax.dtypes.float0
    if dt == jax.dtypes.float0:
        return np.zeros(s.shape, dtype=dt)
    return jnp.zeros(s.shape, dt)


def _struct(x) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(jnp.shape(x), x.dtype, weak_type=_weak(x))


def _weak(x) -> bool:
    aval = getattr(x, "aval", None)
    return bool(getattr(aval, "weak_type", False))


class CustomRule(Generic[_P, _R]):
    """A function with custom derivative rules. Made by :func:`custom_jvp`/:func:`custom_vjp`.

    Define a JVP rule with :meth:`defjvp`, a VJP rule with :meth:`defvjp`, or both: forward
    mode then uses the JVP rule and reverse mode the VJP rule.
    """

    def __init__(
        self,
        fn: Callable[_P, _R],
        *,
        static_argnames: Any = None,
        nondiff_argnames: Any = None,
        zero_argnames: Any = None,
        allow_complex: bool = False,
        name: str | None = None,
    ):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", repr(fn))
        self.argspec: ArgSpec = make_argspec(
            fn, self.name, static_argnames, nondiff_argnames, zero_argnames
        )
        self.allow_complex = allow_complex
        self.jvp_rule: Callable | None = None
        self.jvp_symbolic_zeros = False
        self.fwd_rule: Callable | None = None
        self.bwd_rule: Callable | None = None
        self.vjp_symbolic_zeros = False
        # Specialisations, least recently used first; bounded, since a fresh closure per call
        # (a new lambda each time) makes a new key.
        self._cache: collections.OrderedDict[Any, _Specialization] = collections.OrderedDict()
        functools.update_wrapper(self, fn)

    # -- defining rules ------------------------------------------------------------------------
    def defjvp(self, jvp: Callable, *, symbolic_zeros: bool = False) -> Callable:
        """Define the JVP rule ``jvp(primals, tangents, **static) -> (out, tangent_out)``.

        ``primals`` is a tuple of the non-static arguments in signature order; ``tangents``
        has the same structure, with ``None`` for nondiff, zero and integer arguments (and,
        with ``symbolic_zeros=True``, for unperturbed ones; otherwise those arrive as zeros).
        ``tangent_out`` may be ``None`` (or have ``None`` leaves) for a zero tangent.
        Returns ``jvp``, so this works as a decorator.
        """
        if not callable(jvp):
            raise TypeError(f"{self.name}.defjvp: expected a callable rule, got {describe(jvp)}.")
        self.jvp_rule = jvp
        self.jvp_symbolic_zeros = bool(symbolic_zeros)
        self._cache.clear()
        return jvp

    def defvjp(self, fwd: Callable, bwd: Callable, *, symbolic_zeros: bool = False) -> None:
        """Define the VJP rule as a pair ``fwd``/``bwd``.

        ``fwd`` takes the same arguments as the function (static ones as keywords) and returns
        ``(out, residuals)``; ``bwd(residuals, out_cotangent, **static)`` returns a tuple with
        one cotangent per non-static argument, ``None`` meaning zero. Cotangents for nondiff
        and zero arguments are ignored. With ``symbolic_zeros=True`` a zero output cotangent
        arrives as ``None`` (leaf-wise) instead of zeros.
        """
        for what, f in (("fwd", fwd), ("bwd", bwd)):
            if not callable(f):
                raise TypeError(
                    f"{self.name}.defvjp: expected a callable {what} rule, got {describe(f)}."
                )
        self.fwd_rule, self.bwd_rule = fwd, bwd
        self.vjp_symbolic_zeros = bool(symbolic_zeros)
        self._cache.clear()

    @property
    def has_jvp(self) -> bool:
        return self.jvp_rule is not None

    @property
    def has_vjp(self) -> bool:
        return self.bwd_rule is not None

    @property
    def backend(self) -> str:
        """Which JAX mechanism carries the rules: ``custom_jvp``, ``custom_vjp`` or ``hijax``."""
        return _backend.select(self.has_jvp, self.has_vjp)

    # -- calling -------------------------------------------------------------------------------
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not (self.has_jvp or self.has_vjp):
            raise TypeError(
                f"{self.name} has no derivative rule yet: define one with @{self.name}.defjvp "
                f"or {self.name}.defvjp(fwd, bwd) before calling it."
            )
        static, traced = bind(self.argspec, args, kwargs)
        static_key = self._static_key(static)
        traced = self._prepare_traced(traced)
        leaves, treedef = jax.tree_util.tree_flatten(traced)
        key = (
            treedef,
            static_key,
            tuple(map(_leaf_key, leaves)),
            self.backend,
            _backend.bind_always(),
        )
        spec = self._cache.get(key)
        if spec is None:
            spec = _Specialization(self, static, treedef, leaves)
            self._cache[key] = spec
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        try:
            return spec.call(leaves)
        except (jax.errors.UnexpectedTracerError, TypeError) as e:
            # A leaked tracer: JAX says so with UnexpectedTracerError, or (JAX 0.12, when the
            # tracer reaches a staged jaxpr as a constant) "No constant handler for type:
            # <...Tracer>".
            if not isinstance(e, jax.errors.UnexpectedTracerError) and not (
                "No constant handler for type" in str(e) and "Tracer" in str(e)
            ):
                raise
            raise jax.errors.UnexpectedTracerError(
                f"{self.name}: a rule or the function closes over a traced value it does not "
                "receive as an argument. Pass every array the rules use as an argument of "
                f"{self.name} (declare it nondiff if it needs no derivative).\n\n{e}"
            ) from None

    def _static_key(self, static: dict) -> tuple:
        items = []
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
                    "static_argnames (declare it in nondiff_argnames if it needs no derivative)."
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
                    f"{self.name}: static argument {n!r} must be hashable (it is part of the "
                    f"cache key), got an unhashable {type(v).__name__}. Pass a tuple instead of "
                    "a list, a frozenset instead of a set, or a hashable object."
                ) from None
            items.append((n, v))
        return tuple(items)

    def _prepare_traced(self, traced: tuple) -> tuple:
        out = []
        for n, v in zip(self.argspec.traced, traced):

            def leaf(x, n=n):
                if _closure.is_array(x):
                    return x
                if isinstance(x, (bool, int, float, complex)):
                    return jnp.asarray(x)
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


def _leaf_key(x):
    # The full aval: shape, dtype, weak type, sharding and varying manual axes (shard_map).
    return jax.typeof(x)


class _Specialization:
    """A rule specialised to one call signature: tree structure, statics and leaf types."""

    def __init__(self, rule: CustomRule, static: dict, treedef, leaves: list):
        self.rule = rule
        self.name = rule.name
        self.static = static
        self.treedef = treedef
        spec = rule.argspec
        # Which parameter each leaf belongs to, and its path, for messages.
        paths_per_param = []
        for n, sub in zip(spec.traced, treedef.unflatten(leaves)):
            for p, _ in jax.tree_util.tree_flatten_with_path(sub)[0]:
                paths_per_param.append((n, p))
        self.leaf_param = [n for n, _ in paths_per_param]
        self.leaf_path = [p for _, p in paths_per_param]
        kinds = []
        for (n, p), x in zip(paths_per_param, leaves):
            dt = jnp.dtype(x.dtype)
            if jnp.issubdtype(dt, jnp.complexfloating) and not rule.allow_complex:
                raise TypeError(
                    f"{self.name}: argument {n!r}{_at(p)} is complex ({describe(x)}), and this "
                    "rule does not declare complex support. Pass real arrays, or decorate with "
                    "allow_complex=True if its rules follow JAX's conjugation convention."
                )
            if not jnp.issubdtype(dt, jnp.inexact):
                kinds.append("int")
            else:
                kinds.append(spec.kind(n))
        self.kinds = kinds
        self.in_structs = [_struct(x) for x in leaves]
        self.traced_structs = treedef.unflatten(self.in_structs)
        self.out_avals = _hijax.out_avals(self.primal, *leaves)
        self.out_struct = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type),
            self.out_avals,
        )
        self.out_leaf_structs, self.out_tree = jax.tree_util.tree_flatten(self.out_struct)
        self.t_out_avals = jax.tree_util.tree_map(lambda a: a.to_tangent_aval(), self.out_avals)
        self._fn = self._build()

    # -- flat functions ------------------------------------------------------------------------
    def primal(self, *xs):
        return call_original(
            self.rule.argspec, self.rule.fn, self.treedef.unflatten(xs), self.static
        )

    def _check_nondiff(self, nonzero, mode: str):
        for k, nz, n, p in zip(self.kinds, nonzero, self.leaf_param, self.leaf_path):
            if k == "nondiff" and nz:
                raise ValueError(
                    f"{self.name}: argument {n!r}{_at(p)} is declared nondiff, but it is being "
                    f"differentiated ({mode} mode). Its derivative is not defined by this rule. "
                    f"Differentiate with respect to other arguments only (e.g. "
                    f"jax.grad(..., argnums=...)), wrap it in jax.lax.stop_gradient, or remove "
                    f"{n!r} from nondiff_argnames and give the rule its tangent."
                )

    def jvp(self, xs, ts):
        """Flat JVP: ``ts`` leaves are arrays or ``None`` (zero)."""
        _backend.record(self.name, "jvp")
        self._check_nondiff([t is not None for t in ts], "forward")
        rule = self.rule
        if rule.jvp_rule is None:
            return self._jvp_by_transposition(xs, ts)
        sym = rule.jvp_symbolic_zeros
        user_ts = []
        for k, x, t in zip(self.kinds, xs, ts):
            if k in ("int", "nondiff", "zero"):
                user_ts.append(None)
            elif t is None:
                user_ts.append(None if sym else jnp.zeros(jnp.shape(x), x.dtype))
            else:
                user_ts.append(t)
        primals = self.treedef.unflatten(xs)
        tangents = self.treedef.unflatten(user_ts)
        res = rule.jvp_rule(primals, tangents, **self.static)
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise TypeError(
                f"{self.name}: the JVP rule must return a pair (primal_out, tangent_out), got "
                f"{describe(res)}{'' if not isinstance(res, (tuple, list)) else f' of length {len(res)}'}."
            )
        out, t_out = res
        check_tree(
            self.name,
            "the JVP rule's primal output",
            self.out_struct,
            out,
            allow_none=False,
            tangent=False,
        )
        return out, self._complete_tangent_out(t_out, "the JVP rule's tangent output")

    def _complete_tangent_out(self, t_out, what):
        if t_out is None:
            t_leaves = [None] * len(self.out_leaf_structs)
        else:
            check_tree(self.name, what, self.out_struct, t_out, allow_none=True, tangent=True)
            t_leaves = self.out_tree.flatten_up_to(t_out)
        t_leaves = [
            _zeros_like_struct(s) if t is None or not jnp.issubdtype(s.dtype, jnp.inexact) else t
            for s, t in zip(self.out_leaf_structs, t_leaves)
        ]
        return self.out_tree.unflatten(t_leaves)

    def _jvp_by_transposition(self, xs, ts):
        # The JVP of a VJP-only rule: bwd(res, ·) is linear in the output cotangent and is the
        # transpose of the JVP at this point, so the JVP is its transpose.
        out, res = self.fwd(xs, tuple(t is not None for t in ts))
        return out, self._tangent_by_transposition(xs, res, ts)

    def _tangent_by_transposition(self, xs, res, ts):
        diff = [
            i for i, (k, t) in enumerate(zip(self.kinds, ts)) if k == "dynamic" and t is not None
        ]
        float_out = [jnp.issubdtype(s.dtype, jnp.inexact) for s in self.out_leaf_structs]

        def bwd_lin(ct_float):
            it = iter(ct_float)
            ct = self.out_tree.unflatten([next(it) if f else None for f in float_out])
            cts = self.bwd(res, ct, symbolic=False)
            return [
                cts[i] if cts[i] is not None else jnp.zeros(jnp.shape(xs[i]), xs[i].dtype)
                for i in diff
            ]

        ct_structs = [s for s, f in zip(self.out_leaf_structs, float_out) if f]
        try:
            transposed = jax.linear_transpose(bwd_lin, ct_structs)
            t_float = transposed([ts[i] for i in diff])[0]
        except Exception as e:
            raise NotImplementedError(
                f"{self.name}: forward mode (jvp/jacfwd) needs the transpose of its VJP rule, and "
                f"JAX cannot transpose that rule's backward pass ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}). Define a JVP rule as well with "
                f"@{self.name}.defjvp, or use reverse mode only."
            ) from e
        it = iter(t_float)
        t_out = [next(it) if f else None for f in float_out]
        return self._complete_tangent_out(self.out_tree.unflatten(t_out), "tangent")

    def fwd(self, xs, nonzeros):
        _backend.record(self.name, "fwd")
        self._check_nondiff(nonzeros, "reverse")
        rule = self.rule
        spec = rule.argspec
        pos, kw = call_form(spec, self.treedef.unflatten(xs), self.static)
        res = rule.fwd_rule(*pos, **kw)
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise TypeError(
                f"{self.name}: the VJP forward rule must return a pair (primal_out, residuals), "
                f"got {describe(res)}."
            )
        out, residuals = res
        check_tree(
            self.name,
            "the VJP forward rule's primal output",
            self.out_struct,
            out,
            allow_none=False,
            tangent=False,
        )
        return out, residuals

    def bwd(self, res, ct, symbolic: bool | None = None):
        """Flat VJP backward: ``ct`` is the output cotangent tree (``None`` leaves = zero)."""
        _backend.record(self.name, "bwd")
        rule = self.rule
        sym = rule.vjp_symbolic_zeros if symbolic is None else symbolic
        ct_leaves = (
            self.out_tree.flatten_up_to(ct)
            if ct is not None
            else [None] * len(self.out_leaf_structs)
        )
        if not sym:
            ct_leaves = [
                (
                    jnp.zeros(s.shape, s.dtype)
                    if jnp.issubdtype(s.dtype, jnp.inexact)
                    else _zeros_like_struct(s)
                )
                if c is None
                else c
                for s, c in zip(self.out_leaf_structs, ct_leaves)
            ]
        cts = rule.bwd_rule(res, self.out_tree.unflatten(ct_leaves), **self.static)
        spec = rule.argspec
        n = len(spec.traced)
        if not isinstance(cts, (tuple, list)) or len(cts) != n:
            got = (
                f"a {type(cts).__name__} of length {len(cts)}"
                if isinstance(cts, (tuple, list))
                else describe(cts)
            )
            raise TypeError(
                f"{self.name}: the VJP backward rule must return a tuple with one cotangent per "
                f"non-static argument {spec.traced} (None for zero), got {got}."
            )
        # Validate per parameter against the expected input structure.
        flat = []
        param_structs = self.traced_structs
        for pname, c, exp in zip(spec.traced, cts, param_structs):
            kind = spec.kind(pname)
            sub_leaves = jax.tree_util.tree_leaves(exp)
            if c is None or kind in ("nondiff", "zero"):
                flat.extend([None] * len(sub_leaves))
                continue
            check_tree(
                self.name,
                f"the VJP backward rule's cotangent for {pname!r}",
                exp,
                c,
                allow_none=True,
                tangent=True,
            )
            flat.extend(jax.tree_util.tree_structure(exp).flatten_up_to(c))
        return [None if k != "dynamic" else c for k, c in zip(self.kinds, flat)]

    # -- backends ------------------------------------------------------------------------------
    def _build(self) -> Callable:
        backend = self.rule.backend
        if backend != "hijax":
            return self._build_low(backend)
        low = self._build_low("custom_jvp" if self.rule.has_jvp else "custom_vjp")
        fns = _hijax.Fns(self.name, self.primal, self.jvp, self.fwd, self.bwd, self.jvp_keeping_vjp)

        if _backend.bind_always():
            # JAX >= 0.12: staging the primitive is free, so it is bound on every call and
            # jit/scan/cond/checkpoint before differentiation do not change which rule runs.
            return lambda xs: _hijax.bind(fns, tuple(xs), self.out_avals)
        low = self._build_staged()

        def call(xs):
            # Before JAX 0.12 a jaxpr that stages a hijax primitive makes jax.jit lower it
            # again on every call, so the primitive is bound only where differentiation sees
            # it now; primal evaluation, vmap and staging (jit, scan, checkpoint) bind the low
            # form (_build_staged), which keeps both modes when differentiated later. See the
            # README, "Compatibility".
            if _hijax.under_autodiff(xs):
                return _hijax.bind(fns, tuple(xs), self.out_avals)
            return low(xs)

        return call

    def jvp_keeping_vjp(self, xs, ts):
        """Forward mode whose tangent, if JAX transposes it later, transposes to the VJP rule.

        Runs the VJP forward rule and returns the tangent through a linear hijax primitive
        (:func:`jaxrules._hijax.bind_linear`): evaluated, it is the JVP rule's tangent (or the
        transpose of the VJP rule); transposed, it is the VJP rule. Used where JAX differentiates
        a staged rule with its JVP first (``jit``/``scan`` before JAX 0.12, ``checkpoint``),
        so that reverse mode still runs the VJP rule. The forward rule's work is unused in
        forward mode and removed by XLA (this only runs while tracing a compiled function).
        """
        nz = [i for i, t in enumerate(ts) if t is not None]
        out, res = self.fwd(xs, tuple(t is not None for t in ts))

        def full(ts_nz):
            it = iter(ts_nz)
            return tuple(next(it) if t is not None else None for t in ts)

        # The primitive sees flat leaves only (residuals may hold closures and other pytrees).
        r_leaves, r_tree = jax.tree_util.tree_flatten((xs, res))

        def apply(r, ts_nz):
            xs_, res_ = r_tree.unflatten(r)
            if self.rule.jvp_rule is not None:
                return self.jvp(xs_, full(ts_nz))[1]
            return self._tangent_by_transposition(xs_, res_, full(ts_nz))

        def transpose(r, ct):
            cts = self.bwd(r_tree.unflatten(r)[1], ct)
            return [cts[i] for i in nz]

        fns = _hijax.LinFns(self.name, apply, transpose)
        t_out = _hijax.bind_linear(fns, tuple(r_leaves), tuple(ts[i] for i in nz), self.t_out_avals)
        return out, t_out

    def _build_staged(self) -> Callable:
        """The form staged where differentiation does not see the rule yet (JAX < 0.12).

        A ``custom_jvp`` of the primal whose JVP rule runs the VJP forward rule and returns
        the tangent through a linear hijax primitive (:func:`jaxrules._hijax.bind_linear`):
        evaluated (forward mode) it is the JVP rule's tangent, or the transpose of the VJP
        rule; transposed (reverse mode) it is the VJP rule. Only differentiation traces the
        JVP rule, so ``jit`` of the primal stages a plain ``custom_jvp_call`` (no hijax
        primitive, no per-call cost); the forward rule's unused work is removed by XLA in
        forward mode (this form only runs inside a staged, compiled function).
        """
        primal = _flat_function(self.primal, len(self.in_structs))
        cj = jax.custom_jvp(primal)

        def jvp_rule(primals, tangents):
            ts = [None if isinstance(t, _SymbolicZero) else t for t in tangents]
            return self.jvp_keeping_vjp(tuple(primals), ts)

        cj.defjvp(jvp_rule, symbolic_zeros=True)
        return lambda xs: cj(*xs)

    def _build_low(self, backend: str) -> Callable:
        # A plain function with a ready-made signature: JAX inspects it on every call.
        primal = _flat_function(self.primal, len(self.in_structs))
        if backend == "custom_jvp":
            cj = jax.custom_jvp(primal)

            def jvp_rule(primals, tangents):
                ts = [None if isinstance(t, _SymbolicZero) else t for t in tangents]
                return self.jvp(tuple(primals), ts)

            cj.defjvp(jvp_rule, symbolic_zeros=True)
            return lambda xs: cj(*xs)
        cv = jax.custom_vjp(primal)

        def fwd_rule(*xs):
            vals = tuple(x.value for x in xs)
            out, res = self.fwd(vals, tuple(x.perturbed for x in xs))
            return out, res

        def bwd_rule(res, ct):
            ct = jax.tree_util.tree_map(
                lambda c: None if isinstance(c, _SymbolicZero) else c,
                ct,
                is_leaf=lambda c: isinstance(c, _SymbolicZero),
            )
            return tuple(self.bwd(res, ct))

        cv.defvjp(fwd_rule, bwd_rule, symbolic_zeros=True)

        def call(xs):
            try:
                return cv(*xs)
            except TypeError as e:
                if "forward-mode" in str(e) or "jvp" in str(e):
                    raise TypeError(
                        f"{self.name}: forward mode (jvp/jacfwd) is not available: this rule "
                        "has only a VJP rule, and the JAX in use lacks "
                        "jax.experimental.hijax, which jaxrules needs to transpose it. Define "
                        f"a JVP rule with @{self.name}.defjvp, or use reverse mode."
                    ) from e
                raise

        return call

    def call(self, leaves):
        return self._fn(leaves)


def _flat_function(fn: Callable, n: int) -> Callable:
    def flat(*xs):
        return fn(*xs)

    flat.__signature__ = inspect.Signature(
        [inspect.Parameter(f"x{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n)]
    )
    flat.__name__ = flat.__qualname__ = getattr(fn, "__name__", "rule")
    return flat


def _at(path) -> str:
    return f" at {keystr(path)}" if path else ""


@overload
def custom_jvp(fn: Callable[_P, _R], /) -> CustomRule[_P, _R]: ...
@overload
def custom_jvp(
    *,
    static_argnames: Any = None,
    nondiff_argnames: Any = None,
    zero_argnames: Any = None,
    allow_complex: bool = False,
) -> Callable[[Callable[_P, _R]], CustomRule[_P, _R]]: ...
def custom_jvp(fn=None, /, **options):
    """Decorate a function whose derivative is defined by a JVP rule (and optionally a VJP).

    **Arguments:**

    - `static_argnames`: parameters that are Python configuration (never traced, hashable,
      passed to the rules as keywords).
    - `nondiff_argnames`: array parameters that are traced but have no derivative;
      differentiating with respect to one is an error naming it, never a silent zero.
    - `zero_argnames`: parameters the output does not depend on to first order (an initial
      guess): their derivative is exactly zero by declaration.
    - `allow_complex`: accept complex inputs (the rules follow JAX's conventions).

    **Returns:** a :class:`CustomRule`; define the rule with ``@f.defjvp``.

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
    nondiff_argnames: Any = None,
    zero_argnames: Any = None,
    allow_complex: bool = False,
) -> Callable[[Callable[_P, _R]], CustomRule[_P, _R]]: ...
def custom_vjp(fn=None, /, **options):
    """Decorate a function whose derivative is defined by a VJP rule (and optionally a JVP).

    Takes the same options as :func:`custom_jvp` and returns the same kind of object; the
    name only says which rule you expect to write first. A VJP-only function also gets forward
    mode, by transposing its backward rule.

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


_OPTIONS = ("static_argnames", "nondiff_argnames", "zero_argnames", "allow_complex")


def _decorator(fn, options):
    for k in options:
        if k not in _OPTIONS:
            raise TypeError(
                f"jaxrules decorator: unknown option {k!r}; expected one of {_OPTIONS}. "
                "(JAX's nondiff_argnums has no equivalent: name parameters instead, see the "
                "README's migration notes.)"
            )
    if fn is None:
        return lambda f: CustomRule(f, **options)
    if not callable(fn):
        raise TypeError(
            f"jaxrules decorator: expected a function, got {describe(fn)}. Use "
            "@jr.custom_jvp or @jr.custom_jvp(static_argnames=...)."
        )
    return CustomRule(fn, **options)
