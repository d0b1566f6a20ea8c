"""A rule specialised to one call signature: the flat functions JAX binds.

`Specialization` holds, for one (tree structure, static values, leaf avals) key, the
flat wrappers around the user's rules — zero handling in the rule's convention, the nondiff
error, output validation — and the function that binds them through the backend that
`jaxrules._backend` selects.

Output avals are found lazily and never by running the Python function twice: from the
function's own jaxpr when a trace is needed (that jaxpr then *is* the primal: the hijax
primitive's expansion evaluates it), or, for calls on concrete values (eager `jax.grad` /
`jax.jvp`, as JAX runs `custom_jvp` rules), from what the rule itself returns — no abstract
trace, so Python control flow on values works there as in JAX.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _backend, _closure, _conventions, _hijax
from ._errors import describe, keystr
from ._signature import call_form, call_original
from ._validate import check_tree

_SymbolicZero = jax.custom_derivatives.SymbolicZero
_VALUE = object()  # `Specialization._full`'s default: a Python number's own value
CustomVJPPrimal = jax.custom_derivatives.CustomVJPPrimal


def _zero(x, mode: str):
    """A zero tangent/cotangent for `x` (an array or a ShapeDtypeStruct) in a rule's mode."""
    if mode == "none":
        return None
    if mode == "jax":
        return _SymbolicZero(
            jax.core.ShapedArray(
                jnp.shape(x), x.dtype if hasattr(x, "dtype") else _dtype(x)
            ).to_tangent_aval()
        )
    return _zeros_like_struct(x)


def _symbolic_to_none(tree):
    """A rule may return JAX's SymbolicZero for a zero: jaxrules' None internally."""
    if tree is None or isinstance(tree, _SymbolicZero):
        return None
    return jax.tree_util.tree_map(
        lambda t: None if isinstance(t, _SymbolicZero) else t,
        tree,
        is_leaf=lambda t: isinstance(t, _SymbolicZero),
    )


def _zeros_like_struct(s):
    dt = s.dtype if hasattr(s, "dtype") else _dtype(s)  # (a Python number too)
    dt = dt if jnp.issubdtype(dt, jnp.inexact) else jax.dtypes.float0
    if dt == jax.dtypes.float0:
        return np.zeros(jnp.shape(s), dtype=dt)
    return jnp.zeros(jnp.shape(s), dt)


def _struct(x) -> jax.ShapeDtypeStruct:
    a = jax.typeof(x)  # (also for a Python number, which reaches the rules as it is)
    return jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)


def _dtype(x):
    return jax.typeof(x).dtype


def _is_python_number(x) -> bool:
    # (JAX's typed literals are float subclasses with an aval: those are arrays to JAX.)
    return isinstance(x, (bool, int, float, complex)) and not hasattr(x, "aval")


class Specialization:
    """A rule specialised to one call signature: tree structure, statics and leaf types."""

    def __init__(
        self,
        rule: Any,
        static: dict,
        treedef,
        leaves: list,
        concrete: bool,
        captured: _closure.Captured | None = None,
    ):
        self.rule = rule
        self.name = rule.name
        self.static = static
        self.treedef = treedef
        self.concrete = concrete
        # Arrays the function or its rules close over, passed as extra inputs after the
        # arguments' leaves (`_closure.Captured`; None when they capture no tracer).
        self.captured = captured
        spec = rule.argspec
        # Which parameter each leaf belongs to, and its path, for messages.
        paths_per_param = []
        for n, sub in zip(spec.traced, treedef.unflatten(leaves)):
            for p, _ in jax.tree_util.tree_flatten_with_path(sub)[0]:
                paths_per_param.append((n, p))
        check_complex(rule, leaves, paths_per_param)
        # Python numbers are constants: they reach the rules as they are (as in JAX) and are
        # not inputs of what JAX binds (never perturbed; a zero tangent in the rules).
        self.const = {i: x for i, x in enumerate(leaves) if _is_python_number(x)}
        self.full_structs = [_struct(x) for x in leaves]
        self.full_kinds = [
            "const"
            if i in self.const
            else spec.kind(n)
            if jnp.issubdtype(_dtype(x), jnp.inexact)
            else "int"
            for i, ((n, _), x) in enumerate(zip(paths_per_param, leaves))
        ]
        self.full_param = [n for n, _ in paths_per_param]
        keep = [i for i in range(len(leaves)) if i not in self.const]
        self.n_args = len(keep)  # the arguments' inputs; the captured values follow
        self.kinds = [self.full_kinds[i] for i in keep]
        paths_per_param = [paths_per_param[i] for i in keep]
        leaves = [leaves[i] for i in keep]
        if captured is not None:
            leaves = [*leaves, *captured.leaves]
            paths_per_param += [("<closed-over value>", ())] * len(captured.leaves)
            self.kinds += ["captured"] * len(captured.leaves)
        #: What is bound through JAX: the arguments' leaves but Python numbers, then the
        #: captured values.
        self.inputs = leaves
        self.leaf_param = [n for n, _ in paths_per_param]
        self.leaf_path = [p for _, p in paths_per_param]
        self.in_structs = [_struct(x) for x in leaves]
        self.traced_structs = treedef.unflatten(self.full_structs)
        self._jaxpr = None  # the primal's ClosedJaxpr, once traced
        self._out = None  # output avals, once known
        if not concrete:
            # Traced with the leaves' own avals (sharding, varying manual axes included).
            self._trace(leaves)
        self._fn = self._build()

    # -- outputs, found lazily -------------------------------------------------------------
    def _trace(self, leaves=None) -> None:
        """Trace the Python primal once; its jaxpr then serves as the primal."""
        closed, shapes = jax.make_jaxpr(self._python_primal, return_shape=True)(
            *(self.in_structs if leaves is None else leaves)
        )
        # A function closing over traced values (a vmapped value, as JAX allows) keeps its
        # Python body: those tracers belong to the enclosing transformation's scope.
        if not any(isinstance(c, jax.core.Tracer) for c in closed.consts):
            self._jaxpr = closed
        self._set_out(jax.tree_util.tree_structure(shapes).unflatten(closed.out_avals))

    def _set_out(self, avals) -> None:
        struct = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type), avals
        )
        leaves, tree = jax.tree_util.tree_flatten(struct)
        t_avals = jax.tree_util.tree_map(lambda a: a.to_tangent_aval(), avals)
        self._out = (avals, struct, leaves, tree, t_avals)

    def observe(self, out) -> None:
        """On concrete values: the output avals are those of what a rule returned."""
        if self._out is None:
            self._set_out(jax.tree_util.tree_map(jax.typeof, out))

    def _outs(self):
        if self._out is None:
            self._trace()
        return self._out

    out_avals = property(lambda self: self._outs()[0])
    out_struct = property(lambda self: self._outs()[1])
    out_leaf_structs = property(lambda self: self._outs()[2])
    out_tree = property(lambda self: self._outs()[3])
    t_out_avals = property(lambda self: self._outs()[4])

    # -- flat functions ------------------------------------------------------------------------
    def _rules(self, xs) -> tuple:
        """`(fn, jvp_rule, fwd_rule, bwd_rule)`, rebuilt from the captured values in `xs`."""
        r = self.rule
        if self.captured is None:
            return r.fn, r.jvp_rule, r.fwd_rule, r.bwd_rule
        return self.captured.rebuild(xs[self.n_args :])

    def _full(self, xs, fill=_VALUE) -> list:
        """The arguments' leaves from flat inputs: the Python numbers put back (or `fill` in
        their places), the captured values dropped."""
        it = iter(xs[: self.n_args])
        return [
            (self.const[i] if fill is _VALUE else fill) if i in self.const else next(it)
            for i in range(len(self.full_kinds))
        ]

    def _args(self, xs):
        """The arguments' pytree from flat inputs (without the captured values)."""
        return self.treedef.unflatten(self._full(xs))

    def _python_primal(self, *xs):
        traced = self._args(xs)
        if self.rule.jax_nondiff:
            traced = _conventions.unwrap(traced)
        return call_original(self.rule.argspec, self._rules(xs)[0], traced, self.static)

    def primal(self, *xs):
        # Once traced, the jaxpr is the primal: the Python function runs once per trace.
        if self._jaxpr is not None:
            out = jax.core.eval_jaxpr(self._jaxpr.jaxpr, self._jaxpr.consts, *xs)
            return self.out_tree.unflatten(out)
        out = self._python_primal(*xs)
        if self.concrete:
            self.observe(out)
        return out

    def _check_nondiff(self, nonzero, mode: str):
        owner = self.captured.owner if self.captured is not None else []
        if any(nz and owner[i] in (0, 1) for i, nz in enumerate(nonzero[self.n_args :])):
            # As JAX: the function or its JVP rule cannot close over a value being
            # differentiated. (The VJP rules may: they run later, under that differentiation,
            # which differentiates what they compute with it, as in JAX.)
            raise jax.errors.UnexpectedTracerError(
                f"{self.name}: the function or a rule closes over a value that is being "
                f"differentiated ({mode} mode); its derivative would bypass the rule. Pass that "
                f"value as an argument of {self.name} instead."
            )
        for k, nz, n, p in zip(self.kinds, nonzero, self.leaf_param, self.leaf_path):
            if k == "nondiff" and nz:
                raise ValueError(
                    f"{self.name}: argument {n!r}{_at(p)} is declared constant, but it is being "
                    f"differentiated ({mode} mode). Its derivative is not defined by this rule. "
                    f"Differentiate with respect to other arguments only (e.g. "
                    f"jax.grad(..., argnums=...)), wrap it in jax.lax.stop_gradient, or remove "
                    f"{n!r} from constant_argnames and give the rule its tangent."
                )

    def jvp(self, xs, ts, symbolic_out: bool = False):
        """Flat JVP: `ts` leaves are arrays or `None` (zero). With `symbolic_out`, zero
        output tangents are JAX's `SymbolicZero`s (for `jax.custom_jvp`, which keeps them
        symbolic downstream, as it does for a rule written for it)."""
        _backend.record(self.name, "jvp")
        self._check_nondiff([t is not None for t in ts], "forward")
        rule = self.rule
        if rule.jvp_rule is None:
            return self._jvp_by_transposition(xs, ts)
        mode = rule.jvp_zeros
        user_ts = []
        # (`None` in the Python numbers' places: never perturbed)
        for k, x, t in zip(self.full_kinds, self._full(xs), self._full(ts, fill=None)):
            if k in ("nondiff", "zero"):
                user_ts.append(None)
            elif t is None or k in ("int", "const"):
                user_ts.append(_zero(x, mode))
            else:
                user_ts.append(t)
        primals = self._args(xs)
        tangents = self.treedef.unflatten(user_ts)
        res = self._rules(xs)[1](primals, tangents, **self.static)
        out, t_out = self._primal_pair(res, "JVP rule", "tangent_out")
        return out, self._complete_tangent_out(t_out, "the JVP rule's tangent output", symbolic_out)

    def _primal_pair(self, res, what: str, second: str):
        """Check that a rule returned `(primal_out, second)` with the function's output."""
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            length = f" of length {len(res)}" if isinstance(res, (tuple, list)) else ""
            raise TypeError(
                f"{self.name}: the {what} must return a pair (primal_out, {second}), got "
                f"{describe(res)}{length}."
            )
        out, other = res
        if self.concrete:
            self.observe(out)
        check_tree(
            self.name,
            f"the {what}'s primal output",
            self.out_struct,
            out,
            allow_none=False,
            tangent=False,
        )
        return out, other

    def _complete_tangent_out(self, t_out, what, symbolic: bool = False):
        t_out = _symbolic_to_none(t_out)
        if t_out is None:
            t_leaves = [None] * len(self.out_leaf_structs)
        else:
            check_tree(self.name, what, self.out_struct, t_out, allow_none=True, tangent=True)
            t_leaves = self.out_tree.flatten_up_to(t_out)
        t_leaves = [
            (_zero(s, "jax" if symbolic else "zeros"))
            if t is None or not jnp.issubdtype(s.dtype, jnp.inexact)
            else t
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
                cts[i] if cts[i] is not None else jnp.zeros(jnp.shape(xs[i]), _dtype(xs[i]))
                for i in diff
            ]

        # The output avals as traced (with shard_map's varying manual axes: from plain
        # shapes, the transpose would treat the cotangent as invariant and sum it over devices).
        ct_structs = [
            a for a, f in zip(self.out_tree.flatten_up_to(self.out_avals), float_out) if f
        ]
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
        args = self._full(xs)
        if rule.vjp_zeros == "jax":  # JAX's spelling: CustomVJPPrimal(value, perturbed)
            # (not for nondiff arguments, which JAX passes as they are)
            nzs = self._full(list(nonzeros), fill=False)
            args = [
                x if n in spec.nondiff or k == "zero" else CustomVJPPrimal(x, bool(nz))
                for x, k, nz, n in zip(args, self.full_kinds, nzs, self.full_param)
            ]
        pos, kw = call_form(spec, self.treedef.unflatten(args), self.static)
        res = self._rules(xs)[2](*pos, **kw)
        out, residuals = self._primal_pair(res, "VJP forward rule", "residuals")
        if rule.optimize_remat:
            # JAX's optimize_remat: the output is the primal function's; `fwd` supplies only
            # the residuals (its own output is dead code, removed by XLA).
            out = self.primal(*xs)
        if self.captured is not None:  # the backward rule is rebuilt from them too
            residuals = (residuals, tuple(xs[self.n_args :]))
        return out, residuals

    def bwd(self, res, ct, symbolic: bool | None = None):
        """Flat VJP backward: `ct` is the output cotangent tree (`None` leaves = zero)."""
        _backend.record(self.name, "bwd")
        rule = self.rule
        mode = rule.vjp_zeros if symbolic is None else ("none" if symbolic else "zeros")
        ct_leaves = (
            self.out_tree.flatten_up_to(ct)
            if ct is not None
            else [None] * len(self.out_leaf_structs)
        )
        ct_leaves = [
            _zero(s, mode) if c is None else c for s, c in zip(self.out_leaf_structs, ct_leaves)
        ]
        bwd_rule = rule.bwd_rule
        if self.captured is not None:
            res, captured = res
            bwd_rule = self.captured.rebuild(captured)[3]
        cts = bwd_rule(res, self.out_tree.unflatten(ct_leaves), **self.static)
        if isinstance(cts, _SymbolicZero):
            cts = None
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
            c = _cotangent_as_tree(c, exp)
            check_tree(
                self.name,
                f"the VJP backward rule's cotangent for {pname!r}",
                exp,
                c,
                allow_none=True,
                tangent=True,
            )
            flat.extend(jax.tree_util.tree_structure(exp).flatten_up_to(c))
        flat = [c for i, c in enumerate(flat) if i not in self.const]
        flat += [None] * (len(self.kinds) - self.n_args)  # captured values: no cotangent
        return [None if k != "dynamic" else c for k, c in zip(self.kinds, flat)]

    # -- backends ------------------------------------------------------------------------------
    def _build(self) -> Callable:
        backend = self.rule.backend
        if backend != "hijax":
            return self._build_low(backend)
        staged = self._build_staged()
        if self.concrete or not _backend.direct_under_autodiff():
            # The staged form throughout (JAX >= 0.12, and eager differentiation on concrete
            # values, where JAX runs a custom_jvp's rule on the values).
            return staged
        fns = _hijax.Fns(self.name, self.primal, self.jvp, self.fwd, self.bwd)

        def call(xs):
            # JAX < 0.12: where differentiation reaches the call now, the full rule primitive
            # (a staged linear primitive would make jax.jit lower the jaxpr again on every
            # call); elsewhere (primal, vmap, jit, scan, checkpoint) the staged form, which
            # keeps both modes when differentiated later. docs/compatibility.md.
            if _hijax.under_autodiff(xs):
                return _hijax.bind(fns, tuple(xs), self.out_avals)
            return staged(xs)

        return call

    def jvp_keeping_vjp(self, xs, ts):
        """Forward mode whose tangent, if JAX transposes it later, transposes to the VJP rule.

        Runs the VJP forward rule and returns the tangent through a linear hijax primitive
        (`jaxrules._hijax.bind_linear`): evaluated, it is the JVP rule's tangent (or the
        transpose of the VJP rule); transposed, it is the VJP rule. Used where JAX differentiates
        a staged rule with its JVP first (`jit`/`scan` before JAX 0.12, `checkpoint`),
        so that reverse mode still runs the VJP rule. The forward rule's work is unused in
        forward mode and removed by XLA (this only runs while tracing a compiled function).
        """
        if not any(isinstance(v, jax.core.Tracer) for v in (*xs, *ts)):
            return self.jvp(xs, ts)  # concrete tangents: forward mode, never transposed
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

        A `custom_jvp` of the primal whose JVP rule runs the VJP forward rule and returns
        the tangent through a linear hijax primitive (`jaxrules._hijax.bind_linear`):
        evaluated (forward mode) it is the JVP rule's tangent, or the transpose of the VJP
        rule; transposed (reverse mode) it is the VJP rule. Only differentiation traces the
        JVP rule, so `jit` of the primal stages a plain `custom_jvp_call` (no hijax
        primitive, no per-call cost). In forward mode the forward rule's unused work is removed
        by XLA, and on concrete tangents the JVP rule runs alone (`jvp_keeping_vjp`).
        """
        return self._custom_jvp(self.jvp_keeping_vjp)

    def _custom_jvp(self, flat_jvp: Callable) -> Callable:
        """`jax.custom_jvp` of the flat primal whose rule is `flat_jvp(xs, ts)` (`None`
        for JAX's symbolic zeros)."""
        cj = jax.custom_jvp(_flat_function(self.primal, len(self.in_structs)))

        def jvp_rule(primals, tangents):
            ts = [None if isinstance(t, _SymbolicZero) else t for t in tangents]
            return flat_jvp(tuple(primals), ts)

        cj.defjvp(jvp_rule, symbolic_zeros=True)
        return lambda xs: cj(*xs)

    def _build_low(self, backend: str) -> Callable:
        # A plain function with a ready-made signature: JAX inspects it on every call.
        if backend == "custom_jvp":
            return self._custom_jvp(functools.partial(self.jvp, symbolic_out=True))
        cv = jax.custom_vjp(_flat_function(self.primal, len(self.in_structs)))

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

        cv.defvjp(fwd_rule, bwd_rule, symbolic_zeros=True, optimize_remat=self.rule.optimize_remat)

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


def _cotangent_as_tree(c, expected):
    """A VJP rule's cotangent for one argument, in the argument's full tree structure.

    As JAX accepts: a *prefix* of the argument's tree (one array for a pytree node stands for
    each of its leaves; `None` for a zero subtree) and `SymbolicZero` leaves. A SymbolicZero of
    the expected tangent shape and dtype becomes `None` (zero); one of another shape becomes
    zeros of *its* shape, so that validation reports the mismatch (JAX raises there too).
    """
    is_leaf = lambda x: x is None or isinstance(x, _SymbolicZero)
    if jax.tree_util.tree_structure(c, is_leaf=is_leaf) != jax.tree_util.tree_structure(expected):
        try:
            c = jax.tree.broadcast(c, expected, is_leaf=is_leaf)
        except (ValueError, TypeError):
            return c  # not a prefix: validation reports the structure
    if not any(isinstance(x, _SymbolicZero) for x in jax.tree_util.tree_leaves(c, is_leaf)):
        return c
    return jax.tree_util.tree_map(
        lambda t, e: (
            t
            if not isinstance(t, _SymbolicZero)
            else (
                None
                if (tuple(t.shape), jnp.dtype(t.dtype)) == (tuple(e.shape), _tangent_dtype(e.dtype))
                else jnp.zeros(t.shape, t.dtype)
            )
        ),
        c,
        expected,
        is_leaf=is_leaf,
    )


def _tangent_dtype(dtype):
    return jnp.dtype(dtype) if jnp.issubdtype(dtype, jnp.inexact) else jnp.dtype(jax.dtypes.float0)


def _flat_function(fn: Callable, n: int) -> Callable:
    def flat(*xs):
        return fn(*xs)

    flat.__signature__ = inspect.Signature(
        [inspect.Parameter(f"x{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n)]
    )
    flat.__name__ = flat.__qualname__ = getattr(fn, "__name__", "rule")
    return flat


def check_complex(rule, leaves, paths_per_param) -> None:
    """Complex inputs are a TypeError unless the rule declares complex support."""
    if rule.allow_complex:
        return
    for (n, p), x in zip(paths_per_param, leaves):
        if jnp.issubdtype(jnp.result_type(x), jnp.complexfloating):
            raise TypeError(
                f"{rule.name}: argument {n!r}{_at(p)} is complex ({describe(x)}), and this "
                "rule does not declare complex support. Pass real arrays, or decorate with "
                "allow_complex=True if its rules follow JAX's conjugation convention."
            )


def _at(path) -> str:
    return f" at {keystr(path)}" if path else ""
