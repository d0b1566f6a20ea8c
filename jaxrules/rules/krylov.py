r"""Matrix-free linear solves: $A(x) = b$ for an operator given as a function, by Krylov
iterations (CG, GMRES, BiCGSTAB), differentiated implicitly — never through the iterations.

The operator is any linear function `A(v)` (a stencil, a sum of matrix products, a
convolution); it may close over arrays — a coefficient field, a mesh, a network's weights —
and those get derivatives: jaxrules turns the function into a pytree whose leaves are the
arrays it captures (closure conversion, as for `root`). Write $\theta$ for them.

**Derivatives.** $x = A_\theta^{-1} b$. Differentiating $A_\theta x = b$:

* **JVP:** $A\dot x = \dot b - \dot A x$, where $\dot A x = \tfrac{d}{d\varepsilon}
  A_{\theta + \varepsilon\dot\theta}(x)$ is one JVP of the operator in its captured arrays; one
  more Krylov solve with $A$.
* **VJP:** from $\langle \bar x, \dot x\rangle = \langle w, \dot b - \dot A x\rangle$ with
  $A^\top w = \bar x$: $\bar b = w$ and $\bar\theta = -(\partial_\theta A_\theta x)^\top w$,
  one VJP of the operator in its arrays. The transposed operator is `jax.linear_transpose`
  of `A` (for CG, which needs $A$ symmetric, $A$ itself), the transposed preconditioner
  likewise.

Memory does not depend on the number of iterations: no iterate is kept for the derivative.
Inside the rules the solves are `jax.lax.custom_linear_solve` with the operator (a
differentiable function of $\theta$) and the Krylov iteration (never differentiated), so the
rules differentiate again, to any order.

**Failure is visible.** `krylov_solve` returns a `KrylovSolution` with `converged` and the
true `residual` $\|b - A x\|$; it converged when the residual is finite and at most
$10\max(\mathrm{tol}\,\|b\|, \mathrm{atol})$ (Krylov methods stop on a recursively updated
residual, which drifts from the true one by rounding: the factor 10 allows for that). Where it
did not — or where a Krylov solve inside a derivative fails the same test — the value and the
derivatives are NaN; with `throw=True` it raises `SolverError` at run time.

The CG and BiCGSTAB iterations are `jax.scipy.sparse.linalg`'s `cg` and `bicgstab`
(maintained, and batched under `vmap`). GMRES is `jaxrules.rules._gmres`: restarted GMRES
that, unlike `jax.scipy`'s default, knows its residual after every Arnoldi step and stops
there instead of finishing the restart cycle (same preconditioning and tolerance convention).
What this module adds is the convergence test, the failure semantics, the closure
conversion, the checked registration and the benchmark.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.sparse.linalg as jssl
from jax.flatten_util import ravel_pytree

from .. import _registry as registry
from .. import inputs
from .._closure import is_array
from .._custom import custom_vjp
from . import _arguments as _args
from . import _gmres, _linsolve
from ._failure import error_if, nan_unless

__all__ = ["KrylovSolution", "krylov_solve"]

_SOLVERS = ("cg", "gmres", "bicgstab")
_SLACK = 10.0  # true residual against the requested tolerance (see the module)


class KrylovSolution(NamedTuple):
    """The result of `krylov_solve` (a pytree).

    **Fields:** `value` (the solution; differentiable; NaN where not converged),
    `converged` (bool: the true residual is finite and within the tolerance) and `residual`
    (`‖b − A(value)‖₂`, a diagnostic without derivative).
    """

    value: jax.Array
    converged: jax.Array
    residual: jax.Array


def _default_tol(dtype) -> float:
    # 1e-5 (JAX's and SciPy's default) in single precision; 1e-10 in double, which float64
    # reaches for any reasonably conditioned operator.
    return 1e-10 if jnp.finfo(dtype).bits == 64 else 1e-5


def _within(residual, rhs, tol, atol):
    bound = _SLACK * jnp.maximum(tol * _linsolve.norm(rhs), atol)
    return jnp.isfinite(residual) & (residual <= bound)


class _Options(NamedTuple):
    """The solve's static options, one hashable record."""

    solver: str  # "cg", "gmres" or "bicgstab"
    tol: float
    atol: float
    maxiter: int | None
    restart: int


def _iteration(options: _Options, mask=True):
    """`(matvec, rhs, M) -> z`: the Krylov iteration, NaN where its true residual fails the
    test (the test sits inside the solve, which JAX never differentiates: outside, a mask
    would make the tangent map depend on the tangent). Without `mask` the iterate as it is
    (the primal, which reports its residual)."""

    solver, tol, atol, maxiter, restart = options

    def solve(mv, rhs, M):
        # On rhs / c and the operator A / d, powers of two (`_linsolve.scales`), the
        # preconditioner d M (still ≈ (A / d)⁻¹), scaled back by c / d: a right-hand side of
        # 1e-170 "converged" at x = 0, an operator of 1e-20 in float32 was NaN.
        c, d = _linsolve.scales(mv, rhs)
        Md = None if M is None else (lambda v: d * M(v))
        kw = dict(tol=tol, atol=atol / c, maxiter=maxiter, M=Md)
        mvd = lambda v: mv(v) / d
        if solver == "cg":
            z = jssl.cg(mvd, rhs / c, **kw)[0]
        elif solver == "gmres":
            z = _gmres.gmres(mvd, rhs / c, restart=restart, **kw)
        else:
            z = jssl.bicgstab(mvd, rhs / c, **kw)[0]
        z = (c / d) * z
        if not mask:
            return z
        return nan_unless(_within(_linsolve.norm(mv(z) - rhs), rhs, tol, atol), z)

    return solve


def _solve(A, M, r, options: _Options, *, transpose=False, mask=True):
    """`A⁻¹ r` (or `A⁻ᵀ r`) through the library's linear solve: differentiable in `A`'s
    arrays at every order; the iterations are never differentiated. CG's operator is
    symmetric (its own transpose, and so is its preconditioner)."""
    iterate = _iteration(options, mask)
    linear = _linsolve.Iterative(iterate, M, symmetric=options.solver == "cg")
    return _linsolve.solve(lambda v: A(v), r, linear, transpose=transpose)


def _test(A, b, x, tol, atol):
    residual = jax.lax.stop_gradient(_linsolve.norm(b - A(x)))
    return _within(residual, b, tol, atol), residual


def _spd_probe(A, b):
    """Whether `A` looks symmetric positive definite, as CG assumes, on two random vectors:
    `|⟨u, A v⟩ − ⟨A u, v⟩| ≤ 16·ε·√n·(‖A u‖‖v‖ + ‖A v‖‖u‖)` and `⟨v, A v⟩ > 0` (two
    extra products with A). CG on a slightly nonsymmetric operator converges to a value whose
    gradient, which solves with the same operator, is wrong (1.2% at an asymmetry of 1e-3,
    measured). Symmetric operators measured at 1e-17–1e-8 of the scale (dense, stencils,
    n = 30 – 250 000, both precisions), far below the bound."""
    ku, kv = jax.random.split(jax.random.PRNGKey(0))
    u = jax.random.normal(ku, b.shape, b.dtype)
    v = jax.random.normal(kv, b.shape, b.dtype)
    Au, Av = A(u), A(v)
    gap = jnp.abs(jnp.vdot(u, Av) - jnp.vdot(Au, v))
    norm = _linsolve.norm  # (jnp.linalg.norm squares: 0 for an operator of scale 1e-200)
    scale = norm(Au) * norm(v) + norm(Av) * norm(u)
    bound = 16 * jnp.finfo(b.dtype).eps * b.size**0.5 * scale
    return (gap <= bound) & (jnp.vdot(v, Av) > 0)


@functools.partial(jax.jit, static_argnames=("options",))
def _primal(A, b, M, options):
    x = _solve(A, M, b, options, mask=False)
    converged, residual = _test(A, b, x, options.tol, options.atol)
    if options.solver == "cg":
        converged = converged & _spd_probe(A, b)
    # An affine map (A(v) = M v + c) transposes like a linear one: A(0) must be 0.
    converged = converged & jnp.all(A(jnp.zeros_like(b)) == 0)
    return nan_unless(converged, x), converged, residual


# `M` is a *zero* argument: the solution does not depend on the preconditioner.
@custom_vjp(static_argnames=("options",), zero_argnames=("M",))
def _krylov(A, b, M, *, options: _Options):
    return _primal(A, b, M, options)


def _krylov_jvp(primals, tangents, *, options):
    # A ẋ = ḃ − Ȧ x: one JVP of the operator in its arrays, one more Krylov solve.
    A, b, M = primals
    dA, db, _ = tangents
    out = _primal(A, b, M, options)
    x, converged = out[0], out[1]
    rhs = db - jax.jvp(lambda A: A(x), (A,), (dA,))[1]
    dx = _solve(A, M, rhs, options)
    return out, (nan_unless(converged, dx), None, None)


def _krylov_fwd(A, b, M, *, options):
    out = _primal(A, b, M, options)
    return out, (A, M, out[0], out[1])


def _krylov_bwd(res, cts, *, options):
    # Aᵀ w = x̄; b̄ = w, θ̄ = −(∂θ A_θ x)ᵀ w: one VJP of the operator in its arrays.
    A, M, x, converged = res
    w = _solve(A, M, cts[0], options, transpose=True)
    _, vjp = jax.vjp(lambda A: A(x), A)
    (A_bar,) = vjp(-w)
    mask = functools.partial(nan_unless, converged)
    return jax.tree_util.tree_map(mask, A_bar), mask(w), None


_krylov.defjvp(_krylov_jvp)
_krylov.defvjp(_krylov_fwd, _krylov_bwd)


def krylov_solve(
    A: Callable,
    b: Any,
    *,
    solver: str = "gmres",
    M: Callable | None = None,
    tol: float | None = None,
    atol: float = 0.0,
    maxiter: int | None = None,
    restart: int = 20,
    throw: bool = False,
) -> KrylovSolution:
    r"""Solve $A(x) = b$ for a linear operator given as a function, by a Krylov method.

    **Arguments:**

    - `A`: a linear function `v ↦ A v` on arrays of `b`'s shape; it may close over arrays,
      which get derivatives (a coefficient field, weights).
    - `b`: the right-hand side, a floating-point array of any shape, or a pytree of them (as
      `jax.scipy.sparse.linalg` takes; `A` and `M` then map such pytrees to such pytrees).
    - `solver`: `"cg"` (A symmetric positive definite: probed on two random vectors, and
      `converged` is false where it is not), `"gmres"` (any nonsingular A; the default),
      `"bicgstab"`.
    - `M`: a preconditioner, a function approximating `A⁻¹` (no derivative flows into it).
    - `tol`, `atol`: stop when `‖b − A x‖ ≤ max(tol·‖b‖, atol)`; `tol` defaults to 1e-5 in
      single precision and 1e-10 in double.
    - `maxiter`: the iteration cap (default: JAX's, `10·n`; for GMRES, as in JAX, the number
      of restart cycles); `restart`: GMRES's Krylov subspace size.
    - `throw`: raise `SolverError` at run time where the solve did not converge.

    **Returns:** a `KrylovSolution` `(value, converged, residual)`; `value` and its
    derivatives are NaN where `converged` is false.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import krylov_solve
        >>> k = jnp.array([2.0, 3.0, 4.0])
        >>> laplace = lambda u: k * u - 0.5 * (jnp.roll(u, 1) + jnp.roll(u, -1))
        >>> sol = krylov_solve(laplace, jnp.ones(3), solver="cg")
        >>> bool(sol.converged), jnp.allclose(laplace(sol.value), 1.0).item()
        (True, True)
        >>> g = jax.grad(lambda k: krylov_solve(lambda u: k * u, jnp.ones(3)).value.sum())(k)
        >>> jnp.allclose(g, -1 / k**2).item()
        True
    """
    if not callable(A):
        raise TypeError(
            f"krylov_solve: A must be a linear function v -> A v, got {type(A).__name__}. For "
            "a matrix use linear_solve(A, b) (dense), or pass lambda v: A @ v."
        )
    if solver not in _SOLVERS:
        raise ValueError(f"krylov_solve: solver must be one of {_SOLVERS}, got {solver!r}.")
    if M is not None and not callable(M):
        raise TypeError(
            f"krylov_solve: M (the preconditioner) must be a function v -> M v, got "
            f"{type(M).__name__}."
        )
    if not (is_array(b) or isinstance(b, (int, float))):
        # A pytree right-hand side (as jax.scipy.sparse.linalg takes): solve on the flat
        # vector, with A and M wrapped to act on it.
        b_flat, unravel = ravel_pytree(b)
        flat = lambda f: None if f is None else (lambda v: ravel_pytree(f(unravel(v)))[0])
        sol = krylov_solve(
            flat(A), b_flat, solver=solver, M=flat(M), tol=tol, atol=atol, maxiter=maxiter,
            restart=restart, throw=throw,
        )  # fmt: skip
        return KrylovSolution(unravel(sol.value), sol.converged, sol.residual)
    b = jnp.asarray(b)
    if jnp.issubdtype(b.dtype, jnp.complexfloating):
        raise TypeError(
            f"krylov_solve: b is complex ({b.dtype}); krylov_solve supports real operators only "
            "so far. Split the system into real and imaginary parts."
        )
    if not jnp.issubdtype(b.dtype, jnp.floating):
        b = b.astype(jnp.zeros((), float).dtype)
    _args.full_precision(
        "krylov_solve", "3 digits cannot meet a convergence test; cast the operator too", b=b
    )
    out = jax.eval_shape(A, b)
    if not hasattr(out, "shape") or (out.shape, out.dtype) != (b.shape, b.dtype):
        got = getattr(out, "shape", type(out).__name__), getattr(out, "dtype", "")
        raise ValueError(
            f"krylov_solve: A(v) must return an array of b's shape and dtype {b.shape} "
            f"{b.dtype}, got {got[0]} {got[1]}."
        )
    try:  # tracing only: JAX transposes a linear function, and nothing else
        jax.eval_shape(lambda v: jax.linear_transpose(A, v)(v), b)
    except Exception as e:
        raise TypeError(
            f"krylov_solve: A must be a linear function v -> A v, and JAX cannot transpose "
            f"this one ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}): it "
            "is not linear in v. For a nonlinear system use jaxrules.rules.root."
        ) from None
    tol_ = _default_tol(b.dtype) if tol is None else float(tol)
    options = _Options(solver, tol_, float(atol), maxiter, int(restart))
    x, converged, residual = _krylov(A, b, M, options=options)
    if throw:
        error_if(
            ~converged,
            f"krylov_solve: {solver} did not converge: ‖b − A x‖ > 10·max(tol·‖b‖, atol) with "
            f"tol = {tol_:g}, atol = {atol:g} (maxiter = {maxiter}). Raise maxiter, loosen tol, "
            "precondition (M=...), or pick a solver that suits A (cg needs A symmetric "
            "positive definite).",
        )
    return KrylovSolution(x, converged, residual)


# -- the registered example: a 2-D diffusion(-convection) operator ----------------------------
def _operator(kappa, convection):
    """`u ↦ −∇·(κ∇u) + u + c ∂ₓu` on a grid (unit spacing, zero Dirichlet boundary), with the
    coefficient field `κ` on the grid's cells: symmetric positive definite for `c = 0`."""

    def along(x, axis, mode):  # pad one cell on both sides of `axis`, move it first
        pads = [(1, 1) if a == axis else (0, 0) for a in range(2)]
        return jnp.moveaxis(jnp.pad(x, pads, mode=mode), axis, 0)

    def A(u):
        out = u
        for axis in (0, 1):
            up, kp = along(u, axis, "constant"), along(kappa, axis, "edge")
            flux = 0.5 * (kp[1:] + kp[:-1]) * (up[1:] - up[:-1])  # on the m + 1 faces
            out = out - jnp.moveaxis(flux[1:] - flux[:-1], 0, axis)
            if axis == 0:
                out = out + convection * 0.5 * jnp.moveaxis(up[2:] - up[:-2], 0, axis)
        return out

    return A


def _convection(solver):
    return 0.0 if solver == "cg" else 0.5  # CG needs a symmetric operator


def krylov_example(kappa, b, *, solver="gmres"):
    """The registered example of `krylov_solve`: a diffusion operator with coefficient field
    `kappa` (plus convection for the non-symmetric solvers), solved matrix-free; the
    derivative with respect to `kappa` goes through the operator's closure."""
    A = _operator(kappa, _convection(solver))
    return krylov_solve(A, b, solver=solver).value


def _dense_reference(kappa, b, solver="gmres"):
    A = _operator(kappa, _convection(solver))
    n = b.size
    K = jax.jacfwd(lambda u: A(u.reshape(b.shape)).ravel())(jnp.zeros(n, b.dtype))
    return jnp.linalg.solve(K, b.ravel()).reshape(b.shape)


registry.register(
    "krylov_example",
    reference=_dense_reference,
    inputs={"kappa": inputs.positive((4, 4)), "b": inputs.general((4, 4))},
    cases=[registry.Case(s, {"solver": s}) for s in _SOLVERS],
    # The iterations stop at tol (1e-10 in float64, 1e-5 in float32), so the solution and its
    # derivatives are that accurate, times the condition number (~20 here), not to rounding.
    rtol={"float64": 1e-8, "float32": 1e-3},
    bench_inputs=lambda n: {
        "kappa": inputs.positive((n, n)),
        "b": inputs.general((n, n)),
    },
    # Against the dense solve of the assembled matrix (n = m² unknowns: small m only); the
    # peers at n = 10⁴ are in benchmarks/krylov.py.
    bench_sizes=(16, 32),
    bench_reference=_dense_reference,
    order=2,
    tags=("linalg", "krylov"),
)(krylov_example)
