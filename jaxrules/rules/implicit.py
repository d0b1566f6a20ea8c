r"""Implicit differentiation: roots, fixed points and minimisers, never through the iterations.

Every problem here is a root $x^\star(p)$ of a residual $R(x, p) = 0$:

| function | residual $R(x, p)$ | $\partial_x R$ |
|---|---|---|
| `root(F, ...)` | $F(x, p)$ | the Jacobian of F |
| `fixed_point(T, ...)` | $T(x, p) - x$ | $\partial_x T - I$ |
| `argmin(f, ...)` | $\nabla_x f(x, p)$ | the Hessian (symmetric) |

**Implicit function theorem.** Differentiating $R(x^\star(p), p) = 0$ gives
$\partial_x R\,\dot x + \partial_p R\,\dot p = 0$, so

* **JVP:** solve $\partial_x R\,\dot x = -\partial_p R\,\dot p$ — the right-hand side is
  one JVP of $R$ in $p$ at the solution;
* **VJP:** from $\langle \bar x, \dot x\rangle
  = -\langle \bar x, (\partial_x R)^{-1}\partial_p R\,\dot p\rangle$: solve
  $(\partial_x R)^\top u = \bar x$, then $\bar p = -(\partial_p R)^\top u$ — one VJP
  of $R$ in $p$. For `argmin` the Hessian is symmetric and one factorisation
  serves both.

"Parameters" $p$ are the explicit `*params` *and the arrays the user's function closes
over*: jaxrules turns a function that captures arrays into a pytree (its captured arrays are
leaves), so `lambda x: x - a` written inside `jit` or `grad` gets the derivative with
respect to `a` — no leaked tracer, no silent zero. The initial guess `x0` is declared a
*zero* argument: the solution does not depend on it, so its derivative is exactly zero.

The solver's iterations are never differentiated: memory does not grow with the number of
steps, and any solver works (the default is Newton with a backtracking line search; pass your
own as `solver`). The linear system of the derivative is solved

* `"lu"` (the default up to 1000 unknowns): the dense Jacobian ($n$ JVPs of
  $R$), LU-factored once per rule application, on a stopped copy; for `argmin` the Hessian's
  Cholesky factor from the primal (its minimiser test) instead, so nothing is factored twice;
* `"gmres"` / `"cg"` (the default above; `cg` for `argmin`): matrix-free on JVPs of
  $R$, iterated to a relative residual of $100\,\varepsilon$ of the dtype.

Inside the rules the solves are `jax.lax.custom_linear_solve` with the operator
$v \mapsto \partial_x R\,v$ (a JVP of $R$, differentiable) and the factored or
iterative solve (never differentiated), and the solution is taken from the rule itself: so the
rules differentiate again, to any order.

**Failure is visible.** The result is a `Solution` with `converged`, `steps` and
`residual`. Where the solver did not converge (`‖R(x)‖∞ > tol·max(1, ‖R(x0)‖∞)` or a
non-finite value), or where $\partial_x R$ is singular at the solution (an LU pivot below
$n\varepsilon$ times the largest, or an iterative solve that ends above
$\sqrt\varepsilon$ relative residual), **the derivatives are NaN**, never a silently
wrong number. With `throw=True` such a failure raises `SolverError` at run time, also
under `jit` (through `jax.debug.callback`; compiled code raises it wrapped in a
`jax.errors.JaxRuntimeError`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import jax.scipy.sparse.linalg as jssl
from jax.flatten_util import ravel_pytree

from .._custom import custom_vjp
from . import _arguments as _args
from . import _linsolve
from ._failure import SolverError, error_if, nan_unless
from ._solvers import (
    _LINEAR,
    _eps,
    _flat,
    _newton,
    _pick,
    _residual,
    iterate,
    iterate_then_newton,
    newton,
)

__all__ = ["Solution", "SolverError", "argmin", "fixed_point", "iterate", "newton", "root"]

_KINDS = ("root", "fixed_point", "argmin")


class Solution(NamedTuple):
    """The result of `root`, `fixed_point` and `argmin` (a pytree).

    **Fields:** `value` (the solution, same structure as `x0`; differentiable),
    `converged` (bool: the residual test passed, everything is finite, and for `argmin`
    where `minimum` is tested, the point is a minimiser), `steps` (int32: the solver's
    iterations; `-1` for a user solver, which does not report them), `residual`
    (`‖R(value)‖∞`, a diagnostic without derivative), and `minimum` (`argmin` only: bool,
    whether the Hessian at `value` is positive definite — a strict local minimiser, not a
    maximum or saddle; tested on the dense path, up to `DENSE_MAX` unknowns, by a Cholesky
    factorisation that the derivative rules then reuse; `None` where it is not tested: for
    `root`/`fixed_point`, and for `argmin` with a matrix-free `linear_solver`).
    """

    value: Any
    converged: jax.Array
    steps: jax.Array
    residual: jax.Array
    minimum: jax.Array | None = None


# -- linear solves with ∂ₓR inside the rules ------------------------------------------------------
class _Linear(NamedTuple):
    """∂ₓR at the solution: the differentiable operator and the factors (or the method)."""

    matvec: Callable  # v ↦ ∂ₓR v, differentiable (a JVP of R)
    method: str
    factors: Any  # stopped factors: LU for "lu", the Cholesky factor for "cholesky", else None
    ok: jax.Array  # False where ∂ₓR is singular (LU) — iterative solves check afterwards
    symmetric: bool


def _linearise(R: Callable, xf, method: str, symmetric: bool) -> _Linear:
    matvec = lambda v: jax.jvp(R, (xf,), (v,))[1]
    if method != "lu":
        return _Linear(matvec, method, None, jnp.ones((), bool), symmetric)
    J = jax.lax.stop_gradient(jax.jacfwd(R)(xf))
    lu, piv = jsl.lu_factor(J)
    pivots = jnp.abs(jnp.diagonal(lu))
    big = jnp.max(pivots, initial=0.0)
    ok = jnp.all(jnp.isfinite(lu)) & (jnp.min(pivots) > xf.size * _eps(xf.dtype) * big)
    return _Linear(matvec, "lu", (lu, piv), ok, symmetric)


def _iterative(method: str, dtype, on_failure: Callable):
    """The matrix-free solve, for `custom_linear_solve`: iterate to 100ε relative residual;
    a solve that ends above √ε (rounding allows ~cond·ε) is a failure, reported by
    `on_failure(ok)` and returned as NaN. The check sits *inside* the solve, which JAX never
    differentiates or transposes (it calls the transpose solve instead): outside, it would make
    the tangent map nonlinear in the tangent."""
    tol = 100 * _eps(dtype)
    if method == "cg":
        base = lambda mv, b: jssl.cg(mv, b, tol=tol, atol=0.0, maxiter=10 * b.size)[0]
    elif method == "gmres":
        base = lambda mv, b: jssl.gmres(
            mv, b, tol=tol, atol=0.0, restart=min(b.size, 50), maxiter=10 * b.size
        )[0]
    else:
        raise ValueError(f"unknown linear solver {method!r}; expected one of {_LINEAR}.")

    def solve(mv, b, M=None):  # (no preconditioner here)
        # Scaled (`_linsolve.scaled`): a cotangent of 1e-20 in float32 gave z = 0 and a
        # silently zero gradient; a residual function of scale 1e-20, NaN.
        z = _linsolve.scaled(base, mv, b)
        res = _linsolve.norm(mv(z) - b)
        ok = jnp.isfinite(res) & (res <= _eps(dtype) ** 0.5 * _linsolve.norm(b))
        on_failure(ok)
        return z * jnp.where(ok, 1.0, jnp.nan).astype(z.dtype)

    return solve


def _solve(lin: _Linear, b, *, transpose: bool, on_failure: Callable):
    """Solve `∂ₓR z = b` (`transpose=False`) or `∂ₓRᵀ z = b`; return `(z, ok)`, where
    `ok` depends on the operator only (a singular LU); an iterative solve's failure is
    reported from inside the solve (`_iterative`) and gives NaN."""
    if lin.method == "lu":
        solver = _linsolve.lu(lin.factors, symmetric=lin.symmetric)
    elif lin.method == "cholesky":
        solver = _linsolve.cholesky(lin.factors)
    else:
        iterate = _iterative(lin.method, b.dtype, on_failure)
        solver = _linsolve.Iterative(iterate, symmetric=lin.symmetric)
    z = _linsolve.solve(lin.matvec, b, solver, transpose=transpose)
    if lin.method in ("lu", "cholesky"):
        on_failure(lin.ok)
    return z, lin.ok


# -- the rule ----------------------------------------------------------------------------------
class _Options(NamedTuple):
    """The solve's static options, one hashable record (one compilation per distinct one)."""

    kind: str  # "root", "fixed_point" or "argmin"
    tol: float | None
    max_steps: int
    linear_solver: str
    throw: bool


# The rule's functions are compiled once per problem structure (the user's function is a pytree
# whose static part compares by code, so a fresh `lambda` per call hits the cache): eagerly,
# the solver's loops would otherwise be re-traced and re-compiled on every call.
_jit = functools.partial(jax.jit, static_argnames=("options",))


# `x0` and `solver` are *zero* arguments: the solution depends on neither (a solver may
# close over arrays, even traced ones, e.g. a step size computed from the data).
@custom_vjp(static_argnames=("options",), zero_argnames=("x0", "solver"))
def _implicit(fn, x0, params, solver, *, options: _Options):
    """`(x*, converged, steps, residual, minimum, chol)`: solve, then test the residual; for
    `argmin` on the dense path also the Hessian, whose Cholesky factor `chol` (else `None`)
    both rules reuse: their linear system is that Hessian."""
    return _solve_and_test(fn, x0, params, solver, options=options)


@_jit
def _solve_and_test(fn, x0, params, solver, *, options):
    kind, linear_solver = options.kind, options.linear_solver
    if solver is None:
        default = (
            iterate_then_newton if kind == "fixed_point" else functools.partial(_newton, kind=kind)
        )
        x, steps, stepped = default(
            lambda x: fn(x, *params),
            x0,
            max_steps=options.max_steps,
            linear_solver=linear_solver,
        )
    else:
        x, steps = solver(lambda x: fn(x, *params), x0), jnp.asarray(-1, jnp.int32)
        stepped = jnp.ones((), bool)  # (a solver of the user's: the residual test alone)
    R = _residual(kind, fn, params)
    res = _inf_norm(R(x))
    res0 = _inf_norm(R(x0))
    dtype = ravel_pytree(x0)[0].dtype
    rtol = _eps(dtype) ** 0.5 if options.tol is None else options.tol
    finite = jnp.all(jnp.isfinite(ravel_pytree(x)[0]))
    # Converged: the residual fell below `rtol·max(1, ‖R(x0)‖∞)` *and* the default solver
    # stopped on a step below `tol·‖x‖∞` (relative to the start alone, a residual of 141
    # passed after 30 steps from x0 = 1e6, whose residual was 1e18).
    converged = finite & jnp.isfinite(res) & (res <= rtol * jnp.maximum(1.0, res0)) & stepped
    minimum, chol = jnp.ones((), bool), None
    if _tests_minimum(options, x):
        chol = jnp.linalg.cholesky(_hessian(fn, x, params))
        minimum = _positive_definite(chol)
        converged = converged & minimum
    return x, converged, steps, res, minimum, chol


def _tests_minimum(options: _Options, x) -> bool:
    """Whether `argmin` tests its solution for a minimum: on the dense path, where the
    Hessian is formed anyway (statically known from the problem size)."""
    n = ravel_pytree(x)[0].size
    return options.kind == "argmin" and _pick(options.linear_solver, n, options.kind) == "lu"


def _hessian(fn, x, params):
    """The Hessian of `f(·, *params)` at `x`, as a dense symmetric matrix (n HVPs)."""
    xf, unravel = ravel_pytree(x)
    g = _flat(_residual("argmin", fn, params), unravel)
    H = jax.jacfwd(g)(xf)
    return 0.5 * (H + H.T)


def _positive_definite(L) -> jax.Array:
    # The Cholesky factorisation `L` of the Hessian succeeds (finite, pivots above rounding)
    # iff it is numerically positive definite: a maximum, a saddle, or a singular Hessian (a
    # flat direction, where the minimiser is not isolated and the implicit derivative does not
    # exist) all fail.
    pivots = jnp.diagonal(L) ** 2
    big = jnp.max(pivots, initial=0.0)
    n = L.shape[0]
    # (`initial=inf`: with 1.0 the smallest pivot was capped at 1, and every Hessian larger
    # than 1/(nε) — 2e6 in float32 — failed the test.)
    smallest = jnp.min(pivots, initial=jnp.inf)
    return jnp.all(jnp.isfinite(L)) & (smallest > n * _eps(L.dtype) * big)


def _inf_norm(tree):
    flat = ravel_pytree(tree)[0]
    return jnp.max(jnp.abs(flat), initial=0.0)


def _setup(fn, x, params, options: _Options, chol=None):
    """∂ₓR at `x` (as `_Linear`) and the map from flat vectors back to pytrees. With `chol`
    (argmin: the primal's Cholesky factor of the Hessian) nothing is factored again."""
    kind = options.kind
    xf, unravel = ravel_pytree(x)
    Rf = _flat(_residual(kind, fn, params), unravel)
    if chol is not None:
        matvec = lambda v: jax.jvp(Rf, (xf,), (v,))[1]
        L = jax.lax.stop_gradient(chol)
        return _Linear(matvec, "cholesky", L, _positive_definite(L), True), unravel
    method = _pick(options.linear_solver, xf.size, kind)
    return _linearise(Rf, xf, method, symmetric=(kind == "argmin")), unravel


def _reporter(converged, options: _Options, what) -> Callable:
    """`on_failure(ok)` for `_solve`: with `throw`, a run-time error where the
    derivative's linear system failed at a converged solution."""

    def on_failure(ok):
        if options.throw:
            error_if(
                ~ok & converged,
                f"{options.kind}: the derivative's linear system is singular or was not solved "
                f"({what}): ∂ₓR is not invertible at the solution, so the solution is not a "
                "differentiable function of the parameters there.",
            )

    return on_failure


@_jit
def _implicit_jvp(primals, tangents, *, options):
    (fn, x0, params, solver), (dfn, _, dparams, _) = primals, tangents
    out = _implicit(fn, x0, params, solver, options=options)
    x, converged, chol = out[0], out[1], out[5]
    lin, unravel = _setup(fn, x, params, options, chol)
    # ∂ₓR ẋ = −(∂ₚR ṗ + ∂_fn R ḟn): one JVP of R in everything but x.
    _, rhs = jax.jvp(
        lambda fn, params: ravel_pytree(_residual(options.kind, fn, params)(x))[0],
        (fn, params),
        (dfn, dparams),
    )
    dx, ok = _solve(lin, -rhs, transpose=False, on_failure=_reporter(converged, options, "JVP"))
    dx = nan_unless(ok & converged, unravel(dx))
    return out, (dx, None, None, None, None, None)


@_jit
def _implicit_fwd(fn, x0, params, solver, *, options):
    out = _implicit(fn, x0, params, solver, options=options)
    return out, (fn, params, out[0], out[1], out[5])


@_jit
def _implicit_bwd(res, cts, *, options):
    fn, params, x, converged, chol = res
    lin, _ = _setup(fn, x, params, options, chol)
    # ∂ₓRᵀ u = x̄, then (f̄n, p̄) = −(∂_(fn,p) R)ᵀ u: one VJP of R in everything but x.
    u, ok = _solve(
        lin,
        ravel_pytree(cts[0])[0],
        transpose=True,
        on_failure=_reporter(converged, options, "VJP"),
    )
    R = lambda fn, params: ravel_pytree(_residual(options.kind, fn, params)(x))[0]
    _, vjp = jax.vjp(R, fn, params)
    fn_bar, params_bar = vjp(-u)
    fn_bar, params_bar = nan_unless(ok & converged, (fn_bar, params_bar))
    return fn_bar, None, params_bar, None


_implicit.defjvp(_implicit_jvp)
_implicit.defvjp(_implicit_fwd, _implicit_bwd)


# -- public functions --------------------------------------------------------------------------
def _run(fn, x0, params, solver, options: _Options) -> Solution:
    kind, tol, linear_solver = options.kind, options.tol, options.linear_solver
    if not callable(fn):
        raise TypeError(f"{kind}: the first argument must be a function, got {type(fn).__name__}.")
    if solver is not None and not callable(solver):
        raise TypeError(
            f"{kind}: solver must be None (Newton) or a function solver(fn, x0) -> x, got "
            f"{type(solver).__name__}."
        )
    if linear_solver not in _LINEAR:
        raise ValueError(f"{kind}: linear_solver must be one of {_LINEAR}, got {linear_solver!r}.")
    leaves = jax.tree_util.tree_leaves(x0)
    dtypes = {jnp.result_type(leaf) for leaf in leaves}
    if not leaves or len(dtypes) != 1 or not jnp.issubdtype(dtypes.pop(), jnp.floating):
        raise TypeError(
            f"{kind}: x0 must be a pytree of floating-point arrays of one dtype, got "
            f"{jax.tree_util.tree_map(lambda v: jax.typeof(v).str_short(), x0)}. Cast it, e.g. "
            "jnp.asarray(x0, jnp.float32)."
        )
    _args.full_precision(
        kind,
        "the dense Jacobian's LU factorisation has no half-precision kernel, and 3 digits "
        "cannot meet a convergence test; cast the problem's parameters too",
        x0=x0,
    )
    x0 = jax.tree_util.tree_map(jnp.asarray, x0)
    params = tuple(params)
    want = jax.tree_util.tree_structure(x0), [jax.typeof(v) for v in jax.tree_util.tree_leaves(x0)]
    if kind != "argmin":
        got = jax.eval_shape(lambda x: fn(x, *params), x0)
        got = (
            jax.tree_util.tree_structure(got),
            [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in jax.tree_util.tree_leaves(got)],
        )
        if got[0] != want[0] or [(a.shape, a.dtype) for a in got[1]] != [
            (a.shape, a.dtype) for a in want[1]
        ]:
            name = "F" if kind == "root" else "T"
            raise ValueError(
                f"{kind}: {name}(x0, *params) must return the same structure, shapes and dtypes "
                f"as x0 ({want[0]} {[a.str_short() for a in want[1]]}), got {got[0]} "
                f"{[f'{a.dtype}{list(a.shape)}' for a in got[1]]}."
            )
    else:
        out = jax.eval_shape(lambda x: fn(x, *params), x0)
        if jax.tree_util.tree_structure(out).num_leaves != 1 or out.shape != ():
            raise ValueError(f"{kind}: f(x0, *params) must return a scalar, got {out}.")
    try:
        out = _implicit(fn, x0, params, solver, options=options)
        x, converged, steps, residual, minimum, chol = out
    except jax.errors.UnexpectedTracerError as e:
        name = {"root": "F", "fixed_point": "T", "argmin": "f"}[kind]
        raise jax.errors.UnexpectedTracerError(
            f"{kind}: {name} uses a traced array that jaxrules cannot see, so it cannot be "
            "differentiated: it is hidden inside a jax.jit-compiled function or an object that "
            f"is not a pytree. Pass that array explicitly, as one of {kind}(..., *params), or "
            "capture it in a plain Python function or functools.partial."
        ) from e
    tested = chol is not None  # the Hessian was factored: the minimiser test was made
    if options.throw:
        tol_text = "√ε of the dtype" if tol is None else repr(tol)
        error_if(
            ~converged & minimum,
            f"{kind}: the solver did not converge: ‖R(x)‖∞ > tol·max(1, ‖R(x0)‖∞) with tol = "
            f"{tol_text}, or a non-finite value (max_steps = {options.max_steps}; the residual and step "
            "count are in the Solution returned with throw=False). Raise max_steps, start "
            "nearer, loosen tol, or check that a solution exists.",
        )
        if tested:
            error_if(
                ~minimum,
                "argmin: the solver stopped at a stationary point that is not a minimiser (the "
                "Hessian there is not positive definite: a maximum, a saddle, or a flat "
                "direction). Start elsewhere, or use a solver that descends (Newton, the "
                "default, can stop at a stationary point it starts on).",
            )
    return Solution(x, converged, steps, residual, minimum if tested else None)


_DOC_OPTIONS = r"""
    **Keyword arguments:** `solver` — `None` for the default (`newton`; for `fixed_point`
    iteration, then Newton if needed), or your own
    `solver(fn, x0) -> x` (`fn` is the problem's function of `x` with the parameters
    bound; the solver runs without derivatives, is never differentiated, and may close over
    arrays: its derivative is zero); `tol` —
    the convergence test `‖R(x)‖∞ ≤ tol·max(1, ‖R(x0)‖∞)` (default $\sqrt\varepsilon$
    of the dtype); `max_steps` (Newton); `linear_solver` — `"auto"`, `"lu"`,
    `"gmres"` or `"cg"` for the derivative's linear system (see the module); `throw` —
    raise `SolverError` at run time on failure instead of only flagging it.

    **Returns:** a `Solution`. Derivatives are NaN where `converged` is false or where
    the Jacobian is singular at the solution.
"""


def root(
    F: Callable,
    x0: Any,
    *params: Any,
    solver: Callable | None = None,
    tol: float | None = None,
    max_steps: int = 50,
    linear_solver: str = "auto",
    throw: bool = False,
) -> Solution:
    r"""Solve $F(x, p) = 0$ for $x$ and differentiate the solution implicitly.

    $\dot x = -(\partial_x F)^{-1}\partial_p F\,\dot p$,
    $\bar p = -(\partial_p F)^\top (\partial_x F)^{-\top}\bar x$.

    **Arguments:** `F(x, *params)` returns a pytree like `x` (it may close over arrays,
    which are differentiated like `params`); `x0` the initial guess (a pytree of floating
    arrays; its derivative is exactly zero); `params` any pytrees.
    <options>

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import root
        >>> cube_root = lambda a: root(lambda x, a: x**3 - a, jnp.ones(()), a).value
        >>> round(float(cube_root(8.0)), 6), round(float(jax.grad(cube_root)(8.0)), 6)
        (2.0, 0.083333)
    """
    options = _Options("root", tol, max_steps, linear_solver, throw)
    return _run(F, x0, params, solver, options)


def fixed_point(
    T: Callable,
    x0: Any,
    *params: Any,
    solver: Callable | None = None,
    tol: float | None = None,
    max_steps: int = 50,
    linear_solver: str = "auto",
    throw: bool = False,
) -> Solution:
    r"""Find $x = T(x, p)$ and differentiate it implicitly (the root of
    $T(x, p) - x$): $(I - \partial_x T)\,\dot x = \partial_p T\,\dot p$.

    **Arguments:** as `root`, with `T(x, *params)` returning a pytree like `x`.
    The default solver iterates $x \leftarrow T(x)$ while it contracts and hands over to
    Newton on $T(x) - x$ where it does not (`iterate_then_newton`: O(n²) a step for a
    contraction instead of a factorisation); pass `solver=` to choose.
    <options>

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import fixed_point
        >>> x = lambda a: fixed_point(lambda x, a: jnp.cos(a * x), jnp.zeros(()), a).value
        >>> round(float(x(1.0)), 6)  # the Dottie number
        0.739085
    """
    options = _Options("fixed_point", tol, max_steps, linear_solver, throw)
    return _run(T, x0, params, solver, options)


def argmin(
    f: Callable,
    x0: Any,
    *params: Any,
    solver: Callable | None = None,
    tol: float | None = None,
    max_steps: int = 50,
    linear_solver: str = "auto",
    throw: bool = False,
) -> Solution:
    r"""Minimise $f(x, p)$ over $x$ and differentiate the minimiser implicitly
    (the root of $\nabla_x f$): $H\dot x = -\partial_p\nabla_x f\,\dot p$ with the
    Hessian $H$ (symmetric: one factorisation, or CG, serves both modes).

    **Arguments:** as `root`, with `f(x, *params)` returning a scalar. The default
    solver is Newton on $\nabla f$ with an Armijo line search on $f$; any
    minimiser works (gradient descent, L-BFGS, ...) as `solver(f, x0) -> x`. The result is a
    local minimiser (a stationary point, where the Hessian is nonsingular).
    <options>

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import argmin
        >>> ridge = lambda lam: argmin(lambda w, lam: (w - 3.0) ** 2 + lam * w**2, 0.0, lam).value
        >>> round(float(ridge(1.0)), 6), round(float(jax.grad(ridge)(1.0)), 6)  # 3/(1+λ), −3/(1+λ)²
        (1.5, -0.75)
    """
    options = _Options("argmin", tol, max_steps, linear_solver, throw)
    return _run(f, x0, params, solver, options)


# The keyword arguments are documented once and spliced into the three docstrings.
for _fn in (root, fixed_point, argmin):
    _fn.__doc__ = _fn.__doc__.replace("    <options>\n", _DOC_OPTIONS)
del _fn
