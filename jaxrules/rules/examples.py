"""Registered example problems for the implicit rules: the machinery of `root`,
`fixed_point` and `argmin` checked against JAX differentiating converged unrolled solvers.

They are examples, registered under `root_example`, `fixed_point_example` and
`argmin_example` (`jaxrules check --rule root_example`), not the functions `root`,
`fixed_point` and `argmin` themselves, which take any problem.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .. import _registry as registry
from .. import inputs
from ._solvers import _flat
from .implicit import argmin, fixed_point, root

# -- registered examples: the machinery checked against unrolled solvers --------------------------
# Each is a small problem built on root / fixed_point / argmin, with a plain-JAX reference that
# differentiates through a converged unrolled solver (Newton, or plain iteration). They cover a
# pytree state, parameters passed explicitly *and* captured by the user's function, and all three
# kinds. Inputs are general (non-symmetric W, generic b, c).


def _system(x, W, b, c):
    # F(u, v) = (u + ½ tanh(W u) + 0.1 Σv − b,  v³ + v − c ⊙ u[:2]); ∂ₓF is invertible for
    # ‖W‖₂ ≤ 1 (I + ½ D W with ‖½ D W‖ ≤ ½, plus a small coupling).
    u, v = x
    return (u + 0.5 * jnp.tanh(W @ u) + 0.1 * jnp.sum(v) - b, v**3 + v - c * u[:2])


def root_system(W, b, c):
    """A two-block nonlinear system solved by `root`; `c` is captured by the closure."""
    x0 = (jnp.zeros_like(b), jnp.zeros_like(c))
    return root(lambda x, W, b: _system(x, W, b, c), x0, W, b).value


def _unrolled_newton(R, x0, steps=30):
    x0f, unravel = ravel_pytree(x0)
    Rf = _flat(R, unravel)

    def body(_, xf):
        return xf - jnp.linalg.solve(jax.jacfwd(Rf)(xf), Rf(xf))

    return unravel(jax.lax.fori_loop(0, steps, body, x0f))


def _root_system_ref(W, b, c):
    x0 = (jnp.zeros_like(b), jnp.zeros_like(c))
    return _unrolled_newton(lambda x: _system(x, W, b, c), x0)


def _root_system_inputs(key, dtype):
    kw, kb, kc = jax.random.split(key, 3)
    return {
        "W": inputs.general((3, 3), scale=3**-0.5)(kw, dtype),  # ‖W‖₂ = 1
        "b": inputs.general((3,))(kb, dtype),
        "c": inputs.general((2,))(kc, dtype),
    }


def _root_system_bench(n):
    def draw(key, dtype):
        kw, kb = jax.random.split(key)
        return {
            **_root_system_inputs(key, dtype),
            "W": inputs.general((n, n), scale=n**-0.5)(kw, dtype),
            "b": inputs.general((n,))(kb, dtype),
        }

    return draw


registry.register(
    "root_example",
    reference=_root_system_ref,
    inputs=_root_system_inputs,
    order=2,
    tags=("implicit",),
    bench_inputs=_root_system_bench,
    bench_sizes=(10, 50, 200),
)(root_system)


def fixed_point_tanh(W, b):
    r"""The equilibrium $x = \tanh(Wx + b)$ of a contraction ($\|W\|_2 < 1$),
    found by `fixed_point` (a deep-equilibrium layer)."""
    return fixed_point(lambda x, W, b: jnp.tanh(W @ x + b), jnp.zeros_like(b), W, b).value


def _fixed_point_ref(W, b):
    # Plain iteration, unrolled: a contraction by 0.8 converges to rounding in 200 steps, and so
    # does the derivative of the iterate.
    return jax.lax.fori_loop(0, 200, lambda _, x: jnp.tanh(W @ x + b), jnp.zeros_like(b))


registry.register(
    "fixed_point_example",
    reference=_fixed_point_ref,
    inputs={"W": inputs.general((4, 4), scale=0.8 / 2), "b": inputs.general((4,))},  # ‖W‖₂=0.8
    bench_inputs=lambda n: {
        "W": inputs.general((n, n), scale=0.8 / n**0.5),
        "b": inputs.general((n,)),
    },
    bench_sizes=(10, 100, 500),
    order=2,
    tags=("implicit",),
)(fixed_point_tanh)


def _logistic(w, X, y, lam):
    # Ridge-regularised logistic loss; y may be any real (soft labels) — smooth in every input.
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * lam * jnp.vdot(w, w)


def logistic_ridge(X, y, lam):
    """Ridge-regularised logistic regression weights, found by `argmin`."""
    return argmin(_logistic, jnp.zeros(X.shape[1], X.dtype), X, y, lam).value


def _logistic_ridge_ref(X, y, lam):
    w0 = jnp.zeros(X.shape[1], X.dtype)
    return _unrolled_newton(jax.grad(lambda w: _logistic(w, X, y, lam)), w0)


registry.register(
    "argmin_example",
    reference=_logistic_ridge_ref,
    inputs={
        "X": inputs.general((8, 3)),
        "y": lambda key, dtype: jax.random.uniform(key, (8,), dtype),  # soft labels in (0, 1)
        "lam": inputs.positive(()),
    },
    bench_inputs=lambda n: {
        "X": inputs.general((4 * n, n)),
        "y": lambda key, dtype: jax.random.uniform(key, (4 * n,), dtype),
        "lam": inputs.positive(()),
    },
    bench_sizes=(10, 50, 200),
    order=2,
    tags=("implicit",),
)(logistic_ridge)
