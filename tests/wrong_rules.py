"""A corpus of plausible mistakes in derivative rules, and their correct twins.

Each wrong rule is registered in ``WRONG`` with the check and argument the checker must name:
``EXPECTED[name] = (check, argument, transforms where it must fail or None for all)``.
The correct twins are in ``RIGHT``. Used by the checker's tests and by
``benchmarks/checker_vs_check_grads.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxrules as jr
from jaxrules import inputs as I

WRONG = jr.Registry()
RIGHT = jr.Registry()
EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...] | None]] = {}
#: Mistakes only the checker's *defaults* catch (`jr.check(name)`, no dtype or seed chosen):
#: the test runs these with the registration's defaults.
DEFAULTS_ONLY: set[str] = set()


def wrong(name, check, argument, *, only=None, **options):
    def deco(fn):
        EXPECTED[name] = (check, argument, only)
        return WRONG.register(name, **options)(fn)

    return deco


def _rule(primal, jvp=None, fwd=None, bwd=None, **decl):
    f = jr.custom_vjp(**decl)(primal)
    if jvp is not None:
        f.defjvp(jvp)
    if fwd is not None:
        f.defvjp(fwd, bwd)
    return f


vec = I.general((4,))
mat = I.general((4, 4))
rect = I.general((3, 4))


# -- elementwise ---------------------------------------------------------------------------------
def _sinprod(x, y):
    return jnp.sin(x) * y


def _sinprod_jvp(p, t):
    (x, y), (dx, dy) = p, t
    return jnp.sin(x) * y, jnp.cos(x) * y * dx + jnp.sin(x) * dy


def _sinprod_fwd(x, y):
    return jnp.sin(x) * y, (x, y)


def _sinprod_bwd(r, g):
    x, y = r
    return jnp.cos(x) * y * g, jnp.sin(x) * g


SP = dict(reference=_sinprod, inputs={"x": vec, "y": vec})

RIGHT.register("sin_product", **SP, order=2)(
    _rule(_sinprod, _sinprod_jvp, _sinprod_fwd, _sinprod_bwd)
)

wrong("missing_term", "jvp", "y", **SP)(
    _rule(
        _sinprod,
        lambda p, t: (_sinprod(*p), jnp.cos(p[0]) * p[1] * t[0]),
        _sinprod_fwd,
        _sinprod_bwd,
    )
)
wrong("wrong_sign", "jvp", "x", **SP)(
    _rule(
        _sinprod,
        lambda p, t: (_sinprod(*p), -jnp.cos(p[0]) * p[1] * t[0] + jnp.sin(p[0]) * t[1]),
        _sinprod_fwd,
        _sinprod_bwd,
    )
)
wrong("factor_of_two", "vjp", "x", **SP)(
    _rule(
        _sinprod,
        _sinprod_jvp,
        _sinprod_fwd,
        lambda r, g: (2 * jnp.cos(r[0]) * r[1] * g, jnp.sin(r[0]) * g),
    )
)
wrong("wrong_for_one_argument", "vjp", "y", **SP)(
    _rule(
        _sinprod,
        _sinprod_jvp,
        _sinprod_fwd,
        lambda r, g: (jnp.cos(r[0]) * r[1] * g, jnp.cos(r[0]) * g),
    )
)
wrong("ignores_cotangent", "vjp", "x", **SP)(
    _rule(_sinprod, None, _sinprod_fwd, lambda r, g: (jnp.cos(r[0]) * r[1], jnp.sin(r[0])))
)
wrong("wrong_primal", "primal", None, **SP)(_rule(lambda x, y: jnp.sin(x) * y + 1e-3, _sinprod_jvp))
wrong("vjp_only_wrong_forward_by_transposition", "jvp", "x", **SP)(
    _rule(_sinprod, None, _sinprod_fwd, lambda r, g: (jnp.cos(r[0]) * g, jnp.sin(r[0]) * g))
)
wrong("wrong_cotangent_shape", "vjp", None, **SP)(
    _rule(
        _sinprod,
        _sinprod_jvp,
        _sinprod_fwd,
        lambda r, g: ((jnp.cos(r[0]) * r[1] * g)[:, None], jnp.sin(r[0]) * g),
    )
)
wrong("wrong_cotangent_dtype", "vjp", None, **SP)(
    _rule(
        _sinprod,
        _sinprod_jvp,
        _sinprod_fwd,
        lambda r, g: ((jnp.cos(r[0]) * r[1] * g).astype(jnp.float16), jnp.sin(r[0]) * g),
    )
)


def _plain_sinprod(x, y):  # "registered" without any custom rule: JAX differentiates it
    return jnp.sin(x) * y


wrong("never_used", "rule_ran", None, **SP)(_plain_sinprod)


# -- second order --------------------------------------------------------------------------------
def _sin(x):
    return jnp.sin(x)


wrong("wrong_only_at_second_order", "hvp", "x", reference=jnp.sin, inputs={"x": vec}, order=2)(
    # The tangent treats cos(x) as a constant: right at first order, wrong at second.
    _rule(_sin, lambda p, t: (jnp.sin(p[0]), jnp.cos(jax.lax.stop_gradient(p[0])) * t[0]))
)
RIGHT.register("sin", reference=jnp.sin, inputs={"x": vec}, order=2)(
    _rule(_sin, lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]))
)


# -- batching ------------------------------------------------------------------------------------
@jax.custom_batching.custom_vmap
def _scale_cos(x, t):
    return jnp.cos(x) * t


@_scale_cos.def_vmap
def _scale_cos_vmap(axis_size, in_batched, x, t):
    # Wrong batching rule: reduces over the batch instead of mapping over it.
    xb, tb = in_batched
    x = x if xb else jnp.broadcast_to(x, (axis_size, *x.shape))
    t = t if tb else jnp.broadcast_to(t, (axis_size, *t.shape))
    out = jnp.cos(x) * jnp.mean(t, axis=0, keepdims=True)
    return jnp.broadcast_to(out, x.shape), True


wrong(
    "wrong_only_under_vmap",
    "jvp",
    "x",
    only=("vmap", "vmap(directions)", "vmap(inside)"),  # wherever the tangent is batched
    reference=jnp.sin,
    inputs={"x": vec},
)(
    _rule(
        _sin,
        lambda p, t: (jnp.sin(p[0]), _scale_cos(p[0], t[0])),
        lambda x: (jnp.sin(x), x),
        lambda x, g: (jnp.cos(x) * g,),
    )
)


# -- linear algebra ------------------------------------------------------------------------------
def _matvec(A, x):
    return A @ x


def _matvec_jvp(p, t):
    (A, x), (dA, dx) = p, t
    return A @ x, dA @ x + A @ dx


MV = dict(reference=_matvec, inputs={"A": mat, "x": vec})
RIGHT.register("matvec", **MV, order=2)(
    _rule(
        _matvec,
        _matvec_jvp,
        lambda A, x: (A @ x, (A, x)),
        lambda r, g: (jnp.outer(g, r[1]), r[0].T @ g),
    )
)
wrong("wrong_transpose", "vjp", "x", **MV)(
    _rule(
        _matvec,
        _matvec_jvp,
        lambda A, x: (A @ x, (A, x)),
        lambda r, g: (jnp.outer(g, r[1]), r[0] @ g),
    )
)
wrong("transposed_matrix_cotangent", "vjp", "A", **MV)(
    _rule(
        _matvec,
        _matvec_jvp,
        lambda A, x: (A @ x, (A, x)),
        lambda r, g: (jnp.outer(r[1], g), r[0].T @ g),
    )
)


def _quad(x, Q):
    return 0.5 * x @ Q @ x


wrong("right_only_at_symmetric_points", "vjp", "x", reference=_quad, inputs={"x": vec, "Q": mat})(
    _rule(
        _quad,
        None,
        lambda x, Q: (_quad(x, Q), (x, Q)),
        lambda r, g: (r[1] @ r[0] * g, 0.5 * g * jnp.outer(r[0], r[0])),
    )
)
wrong("quadratic_form_factor_two_in_Q", "vjp", "Q", reference=_quad, inputs={"x": vec, "Q": mat})(
    _rule(
        _quad,
        None,
        lambda x, Q: (_quad(x, Q), (x, Q)),
        lambda r, g: (0.5 * (r[1] + r[1].T) @ r[0] * g, g * jnp.outer(r[0], r[0])),
    )
)


def _inv(A):
    return jnp.linalg.inv(A)


wrong("inv_missing_transposes", "vjp", "A", reference=_inv, inputs={"A": mat})(
    _rule(_inv, None, lambda A: (jnp.linalg.inv(A), jnp.linalg.inv(A)), lambda Y, G: (-Y @ G @ Y,))
)


def _logdet(A):
    return jnp.linalg.slogdet(A)[1]


wrong("logdet_missing_transpose", "vjp", "A", reference=_logdet, inputs={"A": mat})(
    _rule(_logdet, None, lambda A: (_logdet(A), A), lambda A, g: (g * jnp.linalg.inv(A),))
)


def _solve(A, b):
    return jnp.linalg.solve(A, b)


wrong("solve_wrong_adjoint", "vjp", "b", reference=_solve, inputs={"A": mat, "b": vec})(
    _rule(
        _solve,
        None,
        lambda A, b: (_solve(A, b), (A, _solve(A, b))),
        lambda r, g: (-jnp.outer(jnp.linalg.solve(r[0].T, g), r[1]), jnp.linalg.solve(r[0], g)),
    )
)
wrong("solve_jvp_sign", "jvp", "A", reference=_solve, inputs={"A": mat, "b": vec})(
    _rule(_solve, lambda p, t: (_solve(*p), jnp.linalg.solve(p[0], t[1] + t[0] @ _solve(*p))))
)


# -- pytrees and several outputs -----------------------------------------------------------------
def _affine(p, x):
    return p["w"] @ x + p["b"]


wrong(
    "wrong_for_one_pytree_leaf",
    "jvp",
    "p['b']",
    reference=_affine,
    inputs={
        "p": lambda k, d: {"w": rect(k, d), "b": I.general((3,))(jax.random.fold_in(k, 1), d)},
        "x": vec,
    },
)(_rule(_affine, lambda pr, t: (_affine(*pr), t[0]["w"] @ pr[1] + pr[0]["w"] @ t[1] - t[0]["b"])))


def _sincos(x):
    return jnp.sin(x), jnp.cos(x)


wrong("wrong_for_second_output", "jvp", "x", reference=_sincos, inputs={"x": vec})(
    _rule(_sincos, lambda p, t: (_sincos(p[0]), (jnp.cos(p[0]) * t[0], jnp.sin(p[0]) * t[0])))
)


def _sumsq(x):
    return jnp.sum(x**2)


wrong("mean_instead_of_sum", "jvp", "x", reference=_sumsq, inputs={"x": vec})(
    _rule(_sumsq, lambda p, t: (_sumsq(p[0]), 2 * jnp.mean(p[0] * t[0])))
)
wrong("jvp_right_vjp_wrong_in_both_mode", "vjp", "x", reference=_sumsq, inputs={"x": vec})(
    _rule(
        _sumsq,
        lambda p, t: (_sumsq(p[0]), 2 * jnp.sum(p[0] * t[0])),
        lambda x: (_sumsq(x), x),
        lambda x, g: (x * g,),
    )
)

# -- holes closed in the checker's second version (each was passed by the first) ----------------
# A fwd that returns a wrong primal (the function body is right): value_and_grad is wrong.
wrong("fwd_wrong_primal", "vjp_primal", None, **SP, order=2)(
    _rule(
        _sinprod,
        None,
        lambda x, y: (jnp.sin(x) * y + 1e-2, (x, y)),
        _sinprod_bwd,
    )
)
# A JVP rule with a wrong primal and a right tangent: jax.jvp and linearize are wrong.
wrong("jvp_wrong_primal", "jvp_primal", None, **SP)(
    _rule(_sinprod, lambda p, t: (_sinprod(*p) * 1.01, _sinprod_jvp(p, t)[1]))
)


def _sincos_jvp(p, t):
    return _sincos(p[0]), (jnp.cos(p[0]) * t[0], -jnp.sin(p[0]) * t[0])


def _none_branch_bwd(x, g):
    gs, gc = g
    if gc is None:  # wrong only when the second output's cotangent is a symbolic zero
        return (2 * jnp.cos(x) * gs,)
    if gs is None:
        return (-jnp.sin(x) * gc,)
    return (jnp.cos(x) * gs - jnp.sin(x) * gc,)


_sincos_none = jr.custom_vjp(_sincos)
_sincos_none.defjvp(_sincos_jvp)
_sincos_none.defvjp(lambda x: (_sincos(x), x), _none_branch_bwd, zeros_as_none=True)
wrong("wrong_when_a_cotangent_is_none", "vjp", "x", reference=_sincos, inputs={"x": vec})(
    _sincos_none
)
# A bwd that is not linear in the cotangent: a cross term between the two outputs'
# cotangents, invisible when they are passed one at a time.
wrong("bwd_not_linear", "vjp_linear", "x", reference=_sincos, inputs={"x": vec})(
    _rule(
        _sincos,
        _sincos_jvp,
        lambda x: (_sincos(x), x),
        lambda x, g: (jnp.cos(x) * g[0] - jnp.sin(x) * g[1] + 0.1 * g[0] * g[1],),
    )
)


def _batching_bug(bad):
    """``cos(x)·t`` with a batching rule that is wrong for one pattern ``bad`` of
    (x batched, t batched) only."""

    @jax.custom_batching.custom_vmap
    def op(x, t):
        return jnp.cos(x) * t

    @op.def_vmap
    def _(axis_size, in_batched, x, t):
        x = x if in_batched[0] else jnp.broadcast_to(x, (axis_size, *x.shape))
        t = t if in_batched[1] else jnp.broadcast_to(t, (axis_size, *t.shape))
        out = jnp.cos(x) * t
        return (-out if tuple(in_batched) == bad else out), True

    return op


_pb = _batching_bug((False, True))
wrong(
    "wrong_only_point_unbatched",
    "jvp",
    "x",
    only=("vmap(directions)",),
    reference=jnp.sin,
    inputs={"x": vec},
)(  # jacfwd's pattern: the point unbatched, the tangents batched
    _rule(_sin, lambda p, t: (jnp.sin(p[0]), _pb(p[0], t[0])), lambda x: (jnp.sin(x), x),
          lambda x, g: (jnp.cos(x) * g,))
)  # fmt: skip
_pp = _batching_bug((True, False))
wrong(
    "wrong_only_cotangent_unbatched",
    "vjp",
    "x",
    only=("vmap(point)",),
    reference=jnp.sin,
    inputs={"x": vec},
)(  # vmap(grad(f))'s pattern: the point batched, the cotangent unbatched
    _rule(_sin, lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]), lambda x: (jnp.sin(x), x),
          lambda x, g: (_pp(x, g),))
)  # fmt: skip


def _cond_tangent(p, t):
    # Right values and derivatives, but the tangent goes through a `cond` on the point: under
    # `grad` of a batched function the predicate is batched, JAX turns the `cond` into a select
    # with `stop_gradient` on its operands, and cannot transpose it (vmap of grad is fine).
    (x,), (dx,) = p, t
    slope = jax.lax.cond(x[0] > 100.0, lambda c: 2.0 * c, lambda c: c, jnp.cos(x) * dx)
    return jnp.sin(x), slope


wrong(
    "untransposable_when_batched",
    "vjp",
    None,
    only=("vmap(inside)",),
    reference=jnp.sin,
    inputs={"x": vec},
)(_rule(_sin, _cond_tangent))


# -- complex numbers: JAX's convention (cotangents paired by Re Σ aᵢbᵢ, no conjugation) -----
cvec = I.general((4,))
CPLX = ("complex128", "complex64")


def _mul(a, b):
    return a * b


wrong("wrong_conjugated_vjp", "vjp", "a", reference=_mul, inputs={"a": cvec, "b": cvec},
      dtypes=CPLX)(  # PyTorch's convention (conjugate cotangents) in a JAX rule
    _rule(_mul, None, lambda a, b: (a * b, (a, b)),
          lambda r, g: (jnp.conj(r[1]) * g, jnp.conj(r[0]) * g), allow_complex=True)
)  # fmt: skip
RIGHT.register("mul", reference=_mul, inputs={"a": cvec, "b": cvec}, dtypes=CPLX)(
    _rule(_mul, None, lambda a, b: (a * b, (a, b)), lambda r, g: (r[1] * g, r[0] * g),
          allow_complex=True)
)  # fmt: skip


def _abs2(z):
    return jnp.real(z * jnp.conj(z))


def _abs2_fwd(z):
    return _abs2(z), z


wrong("wrong_real_axis_only", "jvp", "z", reference=_abs2, inputs={"z": cvec}, dtypes=CPLX)(
    # d|z|² = 2 Re(z̄ ż), written as if z were real: the imaginary direction is lost
    _rule(_abs2, lambda p, t: (_abs2(p[0]), 2 * jnp.real(p[0]) * jnp.real(t[0])),
          allow_complex=True)
)  # fmt: skip
RIGHT.register("abs2", reference=_abs2, inputs={"z": cvec}, dtypes=CPLX)(
    _rule(_abs2, lambda p, t: (_abs2(p[0]), 2 * jnp.real(jnp.conj(p[0]) * t[0])),
          _abs2_fwd, lambda z, g: (2 * g * jnp.conj(z),), allow_complex=True)
)  # fmt: skip


def _gram(A):
    return jnp.conj(A.T) @ A


wrong("wrong_gram_transpose", "vjp", "A", reference=_gram, inputs={"A": rect}, dtypes=CPLX)(
    # G = AᴴA is not holomorphic: the real rule Ā = A(Ḡ + Ḡᵀ) misses the conjugates
    _rule(_gram, None, lambda A: (_gram(A), A), lambda A, g: (A @ (g + g.T),),
          allow_complex=True)
)  # fmt: skip
RIGHT.register("gram", reference=_gram, inputs={"A": rect}, dtypes=(*CPLX, "float64"))(
    # Ā = conj(A) (Ḡ + Ḡᴴ): the real rule for gradients (g = conj(cotangent)), conjugated
    _rule(_gram, None, lambda A: (_gram(A), A),
          lambda A, g: (jnp.conj(A) @ (g + jnp.conj(g.T)),), allow_complex=True)
)  # fmt: skip


# -- issue 27: what the checker used to miss -------------------------------------------------
def _sin_flag(x):
    return jnp.sin(x), jnp.all(x > -10.0)  # a `converged`-style boolean output


wrong("wrong_flag", "primal", None, reference=_sin_flag, inputs={"x": vec})(
    _rule(lambda x: (jnp.sin(x), jnp.all(x > 10.0)), None,
          lambda x: ((jnp.sin(x), jnp.all(x > 10.0)), x), lambda x, g: (jnp.cos(x) * g[0],))
)  # fmt: skip
RIGHT.register("sin_flag", reference=_sin_flag, inputs={"x": vec})(
    _rule(_sin_flag, None, lambda x: (_sin_flag(x), x), lambda x, g: (jnp.cos(x) * g[0],))
)

_MEMO: dict = {}


def _memo_bwd(x, g):
    # A Python-side memo of cos(x), keyed by shape and filled on concrete values: right at the
    # first eager point, stale at every other one (traced calls compute it afresh).
    if isinstance(x, jax.core.Tracer):
        return (jnp.cos(x) * g,)
    c = _MEMO.setdefault(x.shape, jnp.cos(x))
    return (c * g,)


wrong("memo_after_first_point", "vjp", "x", only=("eager",), reference=jnp.sin,
      inputs={"x": vec})(
    _rule(lambda x: jnp.sin(x), lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]),
          lambda x: (jnp.sin(x), x), _memo_bwd)
)  # fmt: skip
DEFAULTS_ONLY.add("memo_after_first_point")


wrong("float64_under_x64", "x64", None, reference=jnp.sin,
      inputs={"x": vec})(
    # np.float64(1.0) is float32 without x64 and float64 with it: the JVP rule's primal is
    # then float64 for float32 inputs
    _rule(lambda x: jnp.sin(x),
          lambda p, t: (jnp.sin(p[0]) * np.float64(1.0), jnp.cos(p[0]) * t[0]))
)  # fmt: skip


def _cmul(a, b):
    return a * b


wrong("complex_path_wrong", "vjp", "a", reference=_cmul, inputs={"a": vec, "b": vec})(
    # declared complex-capable, right on real inputs, conjugated on complex ones; registered
    # without dtypes: the complex dtypes are checked by default
    _rule(_cmul, None, lambda a, b: (a * b, (a, b)),
          lambda r, g: (jnp.conj(r[1]) * g, jnp.conj(r[0]) * g), allow_complex=True)
)  # fmt: skip
DEFAULTS_ONLY.add("complex_path_wrong")


def _shifted(x, x0):
    return jnp.sin(x) + 0.1 * x0


wrong("zero_declared_but_used", "zero_declared", "x0", reference=_shifted,
      inputs={"x": vec, "x0": vec})(
    # `x0` is declared zero (an initial guess), but the output depends on it
    _rule(_shifted, lambda p, t: (_shifted(*p), jnp.cos(p[0]) * t[0]), zero_argnames=("x0",))
)  # fmt: skip
RIGHT.register("zero_declared", reference=lambda x, x0: jnp.sin(x) + 0.0 * x0,
               inputs={"x": vec, "x0": vec})(
    _rule(lambda x, x0: jnp.sin(x), lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0]),
          zero_argnames=("x0",))
)  # fmt: skip


# -- branches the O(1) example points never reach (the checker's scaled points do) --------------
def _arctan_jvp(asymptotic):
    def jvp(p, t):
        (x,), (dx,) = p, t
        # For |x| > 20 a rule may use an asymptotic form of 1/(1 + x²): here 1/x (wrong: it
        # is 1/x², to leading order) or the exact value rearranged (right).
        far = jnp.abs(x) > 20.0
        safe = jnp.where(far, x, 1.0)
        return jnp.arctan(x), jnp.where(far, asymptotic(safe), 1 / (1 + x * x)) * dx

    return jvp


wrong("wrong_for_large_inputs", "jvp", "x", reference=jnp.arctan, inputs={"x": vec})(
    _rule(jnp.arctan, _arctan_jvp(lambda x: 1 / x))
)
RIGHT.register("arctan_far", reference=jnp.arctan, inputs={"x": vec})(
    _rule(jnp.arctan, _arctan_jvp(lambda x: 1 / (x * x) / (1 + 1 / (x * x))))
)


def _sinc(x):
    return jnp.sin(x) / x


def _sinc_jvp(sign):
    def jvp(p, t):
        (x,), (dx,) = p, t
        # Near 0, (x cos x − sin x)/x² cancels: its series −x/3 + x³/30 − x⁵/840 (the next
        # term is 1e-16 of it at |x| = 0.01; here with a wrong sign in the wrong twin).
        near = jnp.abs(x) < 0.01
        safe = jnp.where(near, 1.0, x)
        series = sign * (-x / 3 + x**3 / 30 - x**5 / 840)
        exact = (safe * jnp.cos(safe) - jnp.sin(safe)) / (safe * safe)
        return _sinc(x), jnp.where(near, series, exact) * dx

    return jvp


wrong("wrong_for_small_inputs", "jvp", "x", reference=_sinc, inputs={"x": vec})(
    _rule(_sinc, _sinc_jvp(-1.0))
)
RIGHT.register("sinc_near_zero", reference=_sinc, inputs={"x": vec})(_rule(_sinc, _sinc_jvp(1.0)))


# -- spectral functions (Daleckii–Krein) ---------------------------------------------------------
def _expm_sym_ref(A):
    w, V = jnp.linalg.eigh(0.5 * (A + A.T))
    return (V * jnp.exp(w)[None, :]) @ V.T


def _expm_sym_jvp_diagonal_only(p, t):
    # The mistake: f'(λᵢ) for every pair (i, j) — the divided differences (f(λᵢ) − f(λⱼ)) /
    # (λᵢ − λⱼ) replaced by the derivative, as if the eigenvectors did not move.
    (A,), (dA,) = p, t
    w, V = jnp.linalg.eigh(0.5 * (A + A.T))
    F = jnp.broadcast_to(jnp.exp(w)[:, None], (w.size, w.size))
    return _expm_sym_ref(A), V @ (F * (V.T @ (0.5 * (dA + dA.T)) @ V)) @ V.T


SYM = dict(reference=_expm_sym_ref, inputs={"A": I.symmetric(4)})
wrong("spectral_without_divided_differences", "jvp", "A", **SYM)(
    _rule(_expm_sym_ref, _expm_sym_jvp_diagonal_only)
)


def _expm_sym_library(A):
    from jaxrules.rules import funm_symmetric

    return funm_symmetric(jnp.exp, A)


RIGHT.register("expm_symmetric", **SYM, order=2)(_expm_sym_library)


# At repeated eigenvalues, where JAX's derivative of the reference is NaN: the cases are
# witnessed by finite differences of the reference (`Case(witness="differences")`).
REPEATED = jr.Case(
    "repeated",
    inputs={"A": I.with_eigenvalues([2.0, 2.0, 2.0, -1.0])},
    witness="differences",
)
SYM_REPEATED = dict(
    reference=_expm_sym_ref, inputs={"A": I.symmetric(4)}, cases=[REPEATED], scales=(0.1, 2.0)
)


def _expm_sym_jvp_masked(p, t):
    # The mistake (the masked eigenvector derivative of many projects' eigh rules): the
    # divided differences of a close pair set to 0 instead of f′ — right wherever the
    # eigenvalues are distinct, wrong at a repeated one.
    (A,), (dA,) = p, t
    w, V = jnp.linalg.eigh(0.5 * (A + A.T))
    gap = w[:, None] - w[None, :]
    close = jnp.abs(gap) < 1e-6
    F = jnp.where(
        close, 0.0, (jnp.exp(w)[:, None] - jnp.exp(w)[None, :]) / jnp.where(close, 1, gap)
    )
    F = F + jnp.diag(jnp.exp(w))
    return _expm_sym_ref(A), V @ (F * (V.T @ (0.5 * (dA + dA.T)) @ V)) @ V.T


wrong("spectral_masked_at_repeated", "jvp_fd", "A", **SYM_REPEATED)(
    _rule(_expm_sym_ref, _expm_sym_jvp_masked)
)


def _expm_sym_jvp_through_eigh(p, t):
    # The mistake: a right first-order rule (Daleckii–Krein) whose second order is left to
    # JAX, through eigh — right at distinct eigenvalues, not at a repeated one (the rule's
    # own derivative meets eigh's 1/(λᵢ − λⱼ)).
    from jaxrules.rules.spectral import _divided_differences

    (A,), (dA,) = p, t
    w, V = jnp.linalg.eigh(0.5 * (A + A.T))
    F = _divided_differences(jnp.exp, w)
    return _expm_sym_ref(A), V @ (F * (V.T @ (0.5 * (dA + dA.T)) @ V)) @ V.T


wrong("spectral_second_order_through_eigh", "jvp_jvp_fd", None, **SYM_REPEATED, order=2)(
    _rule(_expm_sym_ref, _expm_sym_jvp_through_eigh)
)
RIGHT.register("expm_symmetric_repeated", **SYM_REPEATED, order=2)(_expm_sym_library)


# -- matrix functions of general matrices ----------------------------------------------------
def _sqrtm_ref(A):
    from jaxrules.rules.matrix_functions import _sqrtm_ref

    return _sqrtm_ref(A)


def _sqrtm_jvp_scalar_rule(p, t):
    # The mistake: the scalar rule (√a)' = ȧ / (2√a) carried over as Ẋ = ½ X⁻¹ Ȧ — right only
    # for perturbations that commute with A; the derivative solves X Ẋ + Ẋ X = Ȧ.
    (A,), (dA,) = p, t
    X = _sqrtm_ref(A)
    return X, 0.5 * jnp.linalg.solve(X, dA)


ROOT = dict(reference=_sqrtm_ref, inputs={"A": I.positive_stable(4)})
wrong("sqrtm_scalar_derivative", "jvp", "A", **ROOT)(_rule(_sqrtm_ref, _sqrtm_jvp_scalar_rule))


def _sqrtm_library(A):
    from jaxrules.rules import sqrtm

    return sqrtm(A)


RIGHT.register("sqrtm", **ROOT, order=2)(_sqrtm_library)


def _logm_ref(A):
    from jaxrules.rules.matrix_functions import _logm_ref

    return _logm_ref(A)


def _logm_jvp_scalar_rule(p, t):
    # The mistake: (log a)' = ȧ/a carried over as L̇ = A⁻¹ Ȧ — right only for perturbations
    # that commute with A (its trace is right: tr L̇ = tr A⁻¹Ȧ).
    (A,), (dA,) = p, t
    return _logm_ref(A), jnp.linalg.solve(A, dA)


LOG = dict(reference=_logm_ref, inputs={"A": I.positive_stable(4)})
wrong("logm_scalar_derivative", "jvp", "A", **LOG)(_rule(_logm_ref, _logm_jvp_scalar_rule))


def _logm_library(A):
    from jaxrules.rules import logm

    return logm(A)


RIGHT.register("logm", **LOG, order=2)(_logm_library)


def _fmp_ref(A, p):
    return jax.scipy.linalg.expm(p * _logm_ref(A))


def _fmp_jvp_scalar_rule(prim, tang):
    # The mistake: (a^p)' = p a^(p−1) ȧ carried over as p A^(p−1) Ȧ (right only for Ȧ commuting
    # with A); the derivative in p, log(A) A^p ṗ, is right.
    (A, p), (dA, dp) = prim, tang
    X = _fmp_ref(A, p)
    return X, p * jnp.linalg.solve(A, X) @ dA + _logm_ref(A) @ X * dp


FMP = dict(reference=_fmp_ref, inputs={"A": I.positive_stable(3), "p": I.general(())})
wrong("fractional_power_scalar_derivative", "jvp", "A", **FMP)(
    _rule(_fmp_ref, _fmp_jvp_scalar_rule)
)


def _fmp_library(A, p):
    from jaxrules.rules import fractional_matrix_power

    return fractional_matrix_power(A, p)


RIGHT.register("fractional_matrix_power", **FMP, order=1)(_fmp_library)


def _polar_ref(A):
    W, s, Vt = jnp.linalg.svd(A, full_matrices=False)
    return W @ Vt, (Vt.T * s[None, :]) @ Vt


def _polar_jvp_without_dp(p, t):
    # The mistake: U = A P⁻¹ differentiated as if P were constant, U̇ = Ȧ P⁻¹ (the −U Ṗ P⁻¹
    # term dropped); Ṗ itself right.
    (A,), (dA,) = p, t
    U, P = _polar_ref(A)
    _, dP = jax.jvp(_polar_ref, (A,), (dA,))[1]
    return (U, P), (jnp.linalg.solve(P.T, dA.T).T, dP)


POLAR = dict(reference=_polar_ref, inputs={"A": I.general((4, 3))})
wrong("polar_without_p_dot", "jvp", "A", **POLAR)(_rule(_polar_ref, _polar_jvp_without_dp))


def _polar_library(A):
    from jaxrules.rules import polar

    return polar(A)


RIGHT.register("polar", **POLAR, order=2)(_polar_library)


def _expm_ref(A):
    return jax.scipy.linalg.expm(A)


def _expm_jvp(p, t):
    from jaxrules.rules.matrix_exponential import _frechet, _pieces

    return _frechet(_pieces(p[0]), t[0], adjoint=False)


def _expm_fwd(A):
    from jaxrules.rules.matrix_exponential import _pieces

    return _expm_ref(A), _pieces(A)


def _expm_bwd_untransposed(pieces, G):
    # The mistake: the cotangent as the Fréchet derivative at A, L(A, Ḡ), where the adjoint
    # of L(A, ·) is L(Aᵀ, ·) — right only for a symmetric A.
    from jaxrules.rules.matrix_exponential import _frechet

    return (_frechet(pieces, G, adjoint=False)[1],)


EXPM = dict(reference=_expm_ref, inputs={"A": I.general((4, 4))}, scales=(1e-2, 4.0))
wrong("expm_vjp_untransposed", "vjp", "A", **EXPM)(
    _rule(_expm_ref, _expm_jvp, _expm_fwd, _expm_bwd_untransposed)
)


def _expm_library(A):
    from jaxrules.rules import expm

    return expm(A)


RIGHT.register("expm", **EXPM, order=2)(_expm_library)


# -- special functions: a derivative wrong at one point ------------------------------------------
def _i1_ref(x):
    return jax.scipy.special.i1(x)


def _i1_jvp_limit_dropped(p, t):
    # The mistake: I₁′ = I₀ − I₁/x with the 0/0 at x = 0 guarded to 0 instead of its limit ½ —
    # right everywhere but x = 0 (I₁′(0) = ½, this gives 1). Only a registered point at 0 shows
    # it; JAX's derivative of the reference is witnessed by differences there (it was itself
    # wrong at 0 for `i0` on JAX 0.10.2).
    (x,), (dx,) = p, t
    zero = x == 0
    quotient = jnp.where(zero, 0.0, _i1_ref(x) / jnp.where(zero, 1.0, x))
    return _i1_ref(x), (jax.scipy.special.i0(x) - quotient) * dx


I1_AT_ZERO = dict(
    reference=_i1_ref,
    inputs={"x": I.general((4,))},
    cases=[jr.Case("at_zero", inputs={"x": I.fixed([0.0, 0.3, -1.2])}, witness="differences")],
    scales=(1e-2, 10.0),
)
wrong("i1_limit_at_zero_dropped", "jvp_fd", "x", **I1_AT_ZERO)(
    _rule(_i1_ref, _i1_jvp_limit_dropped)
)


def _i1_library(x):
    from jaxrules.rules import i1

    return i1(x)


RIGHT.register("i1", **I1_AT_ZERO, order=2)(_i1_library)


# The correct twins of the linear-algebra mistakes, for false-positive counts.
RIGHT.register("quadratic_form", reference=_quad, inputs={"x": vec, "Q": mat}, order=2)(
    _rule(
        _quad,
        None,
        lambda x, Q: (_quad(x, Q), (x, Q)),
        lambda r, g: (0.5 * (r[1] + r[1].T) @ r[0] * g, 0.5 * g * jnp.outer(r[0], r[0])),
    )
)
RIGHT.register("inv", reference=_inv, inputs={"A": mat}, order=2)(
    _rule(
        _inv, None, lambda A: (jnp.linalg.inv(A), jnp.linalg.inv(A)), lambda Y, G: (-Y.T @ G @ Y.T,)
    )
)
RIGHT.register("logdet", reference=_logdet, inputs={"A": mat}, order=2)(
    _rule(_logdet, None, lambda A: (_logdet(A), A), lambda A, g: (g * jnp.linalg.inv(A).T,))
)
RIGHT.register("solve", reference=_solve, inputs={"A": mat, "b": vec}, order=2)(
    _rule(
        _solve,
        None,
        lambda A, b: (_solve(A, b), (A, _solve(A, b))),
        lambda r, g: (-jnp.outer(jnp.linalg.solve(r[0].T, g), r[1]), jnp.linalg.solve(r[0].T, g)),
    )
)

assert len(EXPECTED) >= 20, len(EXPECTED)
_ = np  # numpy kept for users of this module


# -- incomplete gamma and beta functions, distributions: derivatives in the parameters ----------
_POS = I.positive((4,), low=0.3, high=4.0)
_DIFF = [jr.Case("general", witness="differences")]  # JAX cannot differentiate the references
GAMMA = dict(
    reference=jax.scipy.special.gammainc,
    inputs={"a": _POS, "x": I.positive((4,))},
    cases=_DIFF,
    scales=(),
)


def _gammainc_twin(mixed: bool):
    # `mixed=False` is the mistake: ∂P/∂a's own JVP without its x-term ∂²P/∂a∂x — the first
    # derivatives and ∂²P/∂a² are right; only a Hessian's mixed entry is wrong.
    from jaxrules.rules import incomplete_gamma as G

    @jr.custom_jvp
    def da(a, x):
        return G._da(a, x)

    @da.defjvp
    def _(p, t):
        (a, x), (ta, tx) = p, t
        return da(a, x), G._da2(a, x) * ta + (G._da_dx(a, x) * tx if mixed else 0)

    @jr.custom_jvp
    def gammainc(a, x):
        return jax.scipy.special.gammainc(a, x)

    @gammainc.defjvp
    def _(p, t):
        (a, x), (ta, tx) = p, t
        return gammainc(a, x), da(a, x) * ta + G._dx(a, x) * tx

    return gammainc


wrong("gammainc_mixed_term_dropped", "jvp_jvp_fd", None, **GAMMA, order=2)(_gammainc_twin(False))
RIGHT.register("gammainc", **GAMMA, order=2)(_gammainc_twin(True))


def _gammainc_temme_twin(lower: bool):
    # `lower=False` is the mistake: from a = 1e5 the rule's a-derivative is JAX's of Temme's
    # expansion, and this takes Q's (the expansion's other half) for P's without negating it.
    from jaxrules.rules import _jets
    from jaxrules.rules import incomplete_gamma as G

    @jr.custom_jvp
    def gammainc(a, x):  # the rule's value: JAX's float32 one is 12 % off at a = 2e5
        return G._value(a, x, False)

    @gammainc.defjvp
    def _(p, t):
        (a, x), (ta, tx) = p, t
        da = _jets.of(lambda th: G._temme(th[..., 0], x, not lower), a[..., None], 1).g[..., 0]
        return gammainc(a, x), da * ta + G._dx(a, x) * tx

    return gammainc


GAMMA_LARGE = dict(
    reference=jax.scipy.special.gammainc,
    inputs={
        "a": I.Generator("uniform(4, 2e5, 2.005e5)", lambda r: r.uniform(2e5, 2.005e5, 4)),
        "x": I.Generator("uniform(4, 1.998e5, 2.007e5)", lambda r: r.uniform(1.998e5, 2.007e5, 4)),
    },
    cases=_DIFF,
    scales=(),
)
wrong("gammainc_temme_upper_for_lower", "jvp_fd", "a", **GAMMA_LARGE)(_gammainc_temme_twin(False))
RIGHT.register("gammainc_large_shape", **GAMMA_LARGE)(_gammainc_temme_twin(True))


def _gammaincc_half_negated(a, x):
    return jax.scipy.special.gammaincc(a, x)


def _gammaincc_half_negated_jvp(p, t):
    # The mistake: Q = 1 − P, its x-term negated but its a-term taken from P unchanged.
    from jaxrules.rules import incomplete_gamma as G

    (a, x), (ta, tx) = p, t
    return _gammaincc_half_negated(a, x), G._da(a, x) * ta - G._dx(a, x) * tx


wrong(
    "gammaincc_a_term_not_negated",
    "jvp_fd",
    "a",
    **{**GAMMA, "reference": jax.scipy.special.gammaincc},
)(_rule(_gammaincc_half_negated, _gammaincc_half_negated_jvp))

BETA = dict(
    reference=jax.scipy.special.betainc,
    inputs={"a": _POS, "b": _POS, "x": I.probability((4,))},
    cases=_DIFF,
    scales=(),
)


def _betainc_twin(swap_roles: bool):
    # `swap_roles=False` is the mistake: above x = (a+1)/(a+b+2) the fraction is evaluated for
    # 1 − I_{1−x}(b, a), and its gradient in (b, a) must be read back as one in (a, b); this
    # negates it without exchanging the two. Right below the switch, wrong above it.
    from jaxrules.rules import incomplete_beta as B

    @jr.custom_jvp
    def betainc(a, b, x):
        return jax.scipy.special.betainc(a, b, x)

    @betainc.defjvp
    def _(p, t):
        (a, b, x), (ta, tb, tx) = p, t
        g = B._grad_ab(a, b, x, 1 - x)
        if not swap_roles:
            g = jnp.where((x > (a + 1) / (a + b + 2))[..., None], g[..., ::-1], g)
        return betainc(a, b, x), g[..., 0] * ta + g[..., 1] * tb + B._dx(a, b, x, 1 - x) * tx

    return betainc


wrong("betainc_swapped_roles_kept", "jvp_fd", "a", **BETA)(_betainc_twin(False))
RIGHT.register("betainc", **BETA)(_betainc_twin(True))


def _t_library(x, df):
    from jaxrules.rules import student_t_cdf

    return student_t_cdf(x, df)


def _t_composed(x, df):
    # The mistake: no rule of its own — betainc's rules composed, whose ∂/∂x at the argument 0
    # is ∞ while the argument's derivative in t is 0: ∞ · 0 = NaN at t = 0, right elsewhere.
    from jaxrules.rules.distributions import _t_cdf_composed

    return _t_cdf_composed(x, df)


def _t_ref(x, df):
    from jaxrules.rules.distributions import _t_reference

    return _t_reference(x, df)


STUDENT_AT_ZERO = dict(
    reference=_t_ref,
    inputs={"x": I.general((4,)), "df": _POS},
    cases=[
        jr.Case(
            "at_zero",
            inputs={"x": I.fixed([0.0, 0.4, -1.3, 3.0]), "df": _POS},
            witness="differences",
        )
    ],
    scales=(),
)
wrong("student_t_cdf_composed_nan_at_zero", "jvp_fd", "x", **STUDENT_AT_ZERO)(_t_composed)
RIGHT.register("student_t_cdf", **STUDENT_AT_ZERO, order=2)(_t_library)


def _t_large_df_twin(in_nu: bool):
    # `in_nu=False` is the mistake: at ν ≥ 1000 the CDF is an expansion in e = 1/ν, and its
    # derivative in e is taken for the one in ν (the chain factor −1/ν² forgotten). Right
    # below ν = 1000 (the composition), wrong above.
    from jaxrules.rules import distributions as D

    @jr.custom_jvp
    def student_t_cdf(x, df):
        return D._t_cdf_value(x, df)

    @student_t_cdf.defjvp
    def _(p, t):
        (x, df), (tx, tdf) = p, t
        dnu = D._t_dnu_value(x, df)
        if not in_nu:
            big, (xb, nb), _ = D._split(x, df)
            in_e = jax.jvp(lambda e: D._t_cdf_expansion(xb, 1 / e), (1 / nb,), (jnp.ones_like(nb),))
            dnu = jnp.where(big, in_e[1], dnu)
        return student_t_cdf(x, df), D._t_pdf(x, df) * tx + dnu * tdf

    return student_t_cdf


STUDENT_LARGE_DF = dict(
    reference=_t_ref,
    inputs={"x": I.general((4,)), "df": I.positive((4,), low=1000.0, high=1500.0)},
    cases=_DIFF,
    scales=(),
)
wrong("student_t_cdf_large_df_in_1_over_nu", "jvp_fd", "df", **STUDENT_LARGE_DF)(
    _t_large_df_twin(False)
)
RIGHT.register("student_t_cdf_large_df", **STUDENT_LARGE_DF)(_t_large_df_twin(True))

_K = I.integer((4,), low=0, high=5)
BINOMIAL = dict(
    reference=lambda k, n, p: jax.scipy.special.betainc(n - k, k + 1.0, 1 - p),
    inputs={"k": _K, "n": I.positive((4,), low=6.0, high=12.0), "p": I.probability((4,))},
    cases=_DIFF,
    scales=(),
)


def _binomial_complement(k, n, p):
    # The mistake: P(X ≤ k) as I_p(k+1, n−k), which is P(X ≥ k+1) = 1 − P(X ≤ k).
    from jaxrules.rules import betainc

    k = jnp.floor(k)
    return betainc(k + 1.0, n - k, p)


wrong("binomial_cdf_complement", "primal", None, **BINOMIAL)(_binomial_complement)
POISSON = dict(
    reference=lambda k, mu: jax.scipy.special.gammaincc(k + 1.0, mu),
    inputs={"k": _K, "mu": I.positive((4,), low=0.5, high=6.0)},
    scales=(),
)


def _poisson_off_by_one(k, mu):
    # The mistake: P(X ≤ k) as Q(k, μ), which is P(X ≤ k − 1).
    from jaxrules.rules import gammaincc

    return gammaincc(jnp.maximum(jnp.floor(k), 0.5), mu)


wrong("poisson_cdf_off_by_one", "primal", None, **POISSON)(_poisson_off_by_one)


# -- the inverses: implicit differentiation --------------------------------------------------
def _gammaincinv_ref(a, p):
    from jaxrules.rules.incomplete_inverse import _gamma_solve

    return _gamma_solve(a, p, own=False)


def _gammaincinv_sign_jvp(p_, t):
    # The mistake: ẋ = (ṗ + ∂P/∂a·ȧ)/∂P/∂x — the implicit function theorem's minus sign lost.
    from jaxrules.rules import incomplete_gamma as G

    (a, p), (ta, tp) = p_, t
    x = _gammaincinv_ref(a, p)
    return x, (tp + G._da(a, x) * ta) / G._dx(a, x)


wrong(
    "gammaincinv_implicit_sign",
    "jvp_fd",
    "a",
    reference=_gammaincinv_ref,
    inputs={"a": _POS, "p": I.probability((4,))},
    cases=_DIFF,
    scales=(),
)(_rule(_gammaincinv_ref, _gammaincinv_sign_jvp))


def _betaincinv_ref(a, b, p):
    from jaxrules.rules.incomplete_inverse import _beta_solve

    return _beta_solve(a, b, p, own=False)


def _betaincinv_exchanged_jvp(p_, t):
    # The mistake: ∂I/∂a and ∂I/∂b read in the wrong order from the gradient in (a, b).
    from jaxrules.rules import incomplete_beta as B

    (a, b, p), (ta, tb, tp) = p_, t
    x = _betaincinv_ref(a, b, p)
    g = B._grad_ab(a, b, x, 1 - x)
    return x, (tp - g[..., 1] * ta - g[..., 0] * tb) / B._dx(a, b, x, 1 - x)


wrong(
    "betaincinv_shapes_exchanged",
    "jvp_fd",
    "a",
    reference=_betaincinv_ref,
    inputs={"a": _POS, "b": _POS, "p": I.probability((4,))},
    cases=_DIFF,
    scales=(),
)(_rule(_betaincinv_ref, _betaincinv_exchanged_jvp))


def _betaincinv_unbracketed(a, b, p):
    # The mistake: Newton's method in log x on log I, 24 steps from x = ½, unbracketed,
    # whichever side of ½ the root is on: near x = 1 it steps past 1 (betaincinv's former
    # solve did, and returned 1.01 at (3, 0.3, 0.3) and -26.3 at (3, 1e4, 1 - 1e-7)).
    from jax.scipy.special import betainc, betaln

    def step(_, y):
        x = jnp.exp(y)
        F = betainc(a, b, x)
        slope = jnp.exp(a * y + (b - 1) * jnp.log1p(-x) - betaln(a, b)) / F
        new = y - (jnp.log(F) - jnp.log(p)) / slope
        return jnp.where(jnp.isfinite(new), new, y)

    return jnp.exp(jax.lax.fori_loop(0, 24, step, jnp.full_like(p, jnp.log(0.5))))


def _betaincinv_bisection(a, b, p):
    from jaxrules.rules.incomplete_inverse import _beta_bisect_jax

    return _beta_bisect_jax(a, b, p)


def _betaincinv_unbracketed_jvp(p_, t):
    from jaxrules.rules import incomplete_beta as B

    (a, b, p), (ta, tb, tp) = p_, t
    x = _betaincinv_unbracketed(a, b, p)
    g = B._grad_ab(a, b, x, 1 - x)
    return x, (tp - g[..., 0] * ta - g[..., 1] * tb) / B._dx(a, b, x, 1 - x)


BETAINCINV_SKEWED = dict(
    reference=_betaincinv_bisection,
    inputs={
        "a": I.Generator("uniform(4, 2, 4)", lambda r: r.uniform(2.0, 4.0, 4)),
        "b": I.Generator("uniform(4, 0.2, 0.5)", lambda r: r.uniform(0.2, 0.5, 4)),
        "p": I.Generator("uniform(4, 0.3, 0.7)", lambda r: r.uniform(0.3, 0.7, 4)),
    },
    cases=_DIFF,
    scales=(),
)
wrong("betaincinv_unbracketed", "primal", None, **BETAINCINV_SKEWED)(
    _rule(_betaincinv_unbracketed, _betaincinv_unbracketed_jvp)
)


def _betaincinv(a, b, p):
    from jaxrules.rules import betaincinv

    return betaincinv(a, b, p)


RIGHT.register("betaincinv_skewed", **BETAINCINV_SKEWED, order=2)(_betaincinv)

# -- Bessel functions of real order: the Riccati equations -----------------------------------
BESSEL = dict(
    inputs={"x": I.positive((4,), low=0.3, high=6.0)},
    cases=[jr.Case("v=2.5", {"v": 2.5}, witness="differences")],
    scales=(),
)


def _bessel_twin(name: str, mistake: str):
    from jaxrules.rules import bessel as Bs

    @jr.custom_jvp
    def ratio(v, x):  # I_{v+1}/I_v
        return Bs._core(v, x)[1]

    @ratio.defjvp
    def _(p, t):
        (v, x), (_, tx) = p, t
        r = ratio(v, x)
        # The mistake "riccati_sign": r' = 1 − r² + (2v+1)r/x (the last sign flipped): first
        # derivatives right, second wrong.
        sign = 1 if mistake == "riccati_sign" else -1
        return r, (1 - r * r + sign * (2 * v + 1) / x * r) * tx

    @jr.custom_jvp
    def fn(v, x):
        return Bs._reference(getattr(Bs, name))(v, x)

    @fn.defjvp
    def _(p, t):
        (v, x), (_, tx) = p, t
        y = fn(v, x)
        if name == "ive":
            return y, y * (ratio(v, x) + v / x - 1) * tx
        s = Bs._core(v, x)[3]
        # The mistake "unscaled": K_v′/K_v = v/x − s, forgetting the +1 of the e^x scaling.
        return y, y * ((0 if mistake == "unscaled" else 1) + v / x - s) * tx

    # A plain function of (x, v): the case's v is a static value (the decorated `fn` would
    # declare v dynamic, and the checker would perturb it).
    return lambda x, v: fn(v, x)


def _bessel_reference(name):
    from jaxrules.rules import bessel as Bs

    ref = Bs._reference(getattr(Bs, name))
    return lambda x, v: ref(v, x)


wrong("ive_riccati_sign", "jvp_jvp_fd", None, reference=_bessel_reference("ive"), order=2,
      **BESSEL)(_bessel_twin("ive", "riccati_sign"))  # fmt: skip
wrong("kve_derivative_unscaled", "jvp_fd", "x", reference=_bessel_reference("kve"), **BESSEL)(
    _bessel_twin("kve", "unscaled")
)


def _bessel_rule(tangent, name="kve"):
    """`name`'s values (the registered reference) with the JVP `tangent(v, x, y, tv, tx)`."""
    from jaxrules.rules import bessel as Bs

    @jr.custom_jvp
    def fn(v, x):
        return Bs._reference(getattr(Bs, name))(v, x)

    @fn.defjvp
    def _(p, t):
        (v, x), (tv, tx) = p, t
        y = fn(v, x)
        return y, tangent(v, x, y, tv, tx)

    return fn


def _region_twins(name, v, right, mistake, slope):
    """A right and a wrong twin of `name`: its values with the JVP `slope(v, x, wrong)·ẋ`
    (times the value for `kve`: the slope of its logarithm), on x in (24, 60) — Hankel's and
    Debye's regions in both dtypes — at the static order `v`, witnessed by differences; the
    wrong one must fail `jvp_fd` in x."""
    options = dict(
        reference=_bessel_reference(name),
        inputs={"x": I.positive((4,), low=24.0, high=60.0)},
        cases=[jr.Case(f"v={v:g}", {"v": v}, witness="differences")],
        scales=(),
    )
    scaled = name != "log_iv"  # the slope of a logarithm: times y for the function itself
    for wrong_, register in ((False, RIGHT.register(right, **options)),
                             (True, wrong(mistake, "jvp_fd", "x", **options))):  # fmt: skip

        def tangent(v, x, y, tv, tx, wrong_=wrong_):
            return (y if scaled else 1.0) * slope(v, x, wrong_) * tx

        register(_x_first(_bessel_rule(tangent, name)))


def _x_first(fn):
    return lambda x, v: fn(v, x)  # the case's v is static


def _kve_hankel_slope(v, x, alternating):
    """kve's slope where Hankel's expansion gives it: -1/(2x) + S'/S with K's series, all
    terms of one sign (right), or the mistake: I's alternating series taken for K's."""
    from jaxrules.rules import bessel as Bs

    return -0.5 / x + Bs._hankel(v, x, alternating=alternating)[1]


def _log_iv_debye_slope(v, x, no_prefactor):
    """log_iv's slope where Debye's expansion gives it (orders ≥ 25, x ≥ 20): right, or the
    mistake: the derivative of the prefactor (1 + z²)^(-1/4), -1/(2x(1 + u²)), left out."""
    from jaxrules.rules import bessel as Bs

    slope = Bs._debye_slope(v, x, log=True)
    return slope + 0.5 / (x * (1 + (v / x) ** 2)) if no_prefactor else slope


_region_twins("kve", 1.5, "kve_hankel", "kve_hankel_alternating", _kve_hankel_slope)
_region_twins("log_iv", 30.0, "log_iv_debye", "log_iv_debye_no_prefactor", _log_iv_debye_slope)


def _kve_order_twin(mistake):
    """kve with its derivative in the order: ∫₀^∞ t sinh(vt) e^{-x(cosh t − 1)} dt (right), or
    the mistake "missing_t": ∂/∂v cosh(vt) taken as sinh(vt), the chain rule's t forgotten."""
    from jaxrules.rules import bessel as Bs

    def tangent(v, x, y, tv, tx):
        lo, hi = (jax.lax.stop_gradient(e) for e in Bs._order_window(v, x))
        n = 256
        k = jnp.arange(n + 1)[(None,) * lo.ndim]
        ts = lo[..., None] + (hi - lo)[..., None] / n * k
        w = jnp.where((k % n) == 0, 0.5, 1.0)
        g = jnp.sinh(v[..., None] * ts) * jnp.exp(-x[..., None] * (jnp.cosh(ts) - 1))
        g = g if mistake == "missing_t" else ts * g
        dv = (hi - lo) / n * jnp.sum(w * g, axis=-1)
        s = Bs._core(jnp.abs(v), x)[3]
        return y * (1 + jnp.abs(v) / x - s) * tx + dv * tv

    return _bessel_rule(tangent)


def _kve_reference(v, x):
    from jaxrules.rules import bessel as Bs

    return Bs._reference(Bs.kve)(v, x)


KVE_ORDER = dict(
    reference=_kve_reference,
    inputs={"v": I.positive((4,), low=0.2, high=8.0), "x": I.positive((4,), low=0.3, high=6.0)},
    cases=[jr.Case("general", witness="differences")],
    scales=(),
)
RIGHT.register("kve_order", **KVE_ORDER)(_kve_order_twin(None))
wrong("kve_order_missing_t", "jvp_fd", "v", **KVE_ORDER)(_kve_order_twin("missing_t"))


# -- the remaining distribution functions and log_iv ---------------------------------------------
def _beta_cdf_shapes_swapped(x, a, b):
    # The mistake: the beta CDF as I_x(b, a), the shapes' roles exchanged.
    from jaxrules.rules import betainc

    return betainc(b, a, x)


wrong("beta_cdf_shapes_swapped", "primal", None, reference=jax.scipy.stats.beta.cdf,
      inputs={"x": I.probability((4,)), "a": _POS, "b": _POS}, cases=_DIFF,
      scales=())(_beta_cdf_shapes_swapped)  # fmt: skip


def _nbinom_failure_probability(k, n, p):
    # The mistake: p read as the failure probability, I_{1−p}(n, k+1) (SciPy's nbinom: success).
    from jaxrules.rules import betainc

    return betainc(n, jnp.floor(k) + 1.0, 1 - p)


wrong("negative_binomial_cdf_failure_probability", "primal", None,
      reference=lambda k, n, p: jax.scipy.special.betainc(n, k + 1.0, p),
      inputs={"k": _K, "n": _POS, "p": I.probability((4,))}, cases=_DIFF,
      scales=())(_nbinom_failure_probability)  # fmt: skip


def _gamma_cdf_ref(x, a):
    return jax.scipy.stats.gamma.cdf(x, a)


def _gamma_cdf_density_jvp(p_, t):
    # The mistake: the density with Γ(a+1) for Γ(a) — x^{a−1}e^{−x}/Γ(a+1), off by a factor a.
    from jaxrules.rules import incomplete_gamma as G

    (x, a), (tx, ta) = p_, t
    density = jnp.exp((a - 1) * jnp.log(x) - x - jax.scipy.special.gammaln(a + 1))
    return _gamma_cdf_ref(x, a), density * tx + G._da(a, x) * ta


wrong("gamma_cdf_density_gamma_a_plus_1", "jvp_fd", "x", reference=_gamma_cdf_ref,
      inputs={"x": I.positive((4,)), "a": _POS}, cases=_DIFF,
      scales=())(_rule(_gamma_cdf_ref, _gamma_cdf_density_jvp))  # fmt: skip


def _log_iv_twin():
    # The mistake: (log I_v)′ = I_{v+1}/I_v − v/x (the recurrence's sign slipped).
    from jaxrules.rules import bessel as Bs

    @jr.custom_jvp
    def fn(v, x):
        return Bs._reference(Bs.log_iv)(v, x)

    @fn.defjvp
    def _(p, t):
        (v, x), (_, tx) = p, t
        return fn(v, x), (Bs._core(v, x)[1] - v / x) * tx

    return lambda x, v: fn(v, x)  # v static (see the Bessel twins above)


wrong("log_iv_ratio_sign", "jvp_fd", "x", reference=_bessel_reference("log_iv"), **BESSEL)(
    _log_iv_twin()
)
