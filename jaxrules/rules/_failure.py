"""Failure made visible: runtime errors that work under `jit` (the one place the rule library
raises from inside a compiled computation), and the NaN mask of a failed solve's derivatives.

`error_if` stages a `jax.debug.callback` that raises when its predicate holds. Eagerly
the exception propagates as it is; under `jit` JAX re-raises it as a
`jax.errors.JaxRuntimeError` (a `RuntimeError`) whose message contains ours. Under `vmap`
the callback receives the whole batch and raises if any element fails. The callback is an
effect, so it is never removed as dead code, and it runs only when its computation runs.

The callback receives the predicate only. Measured on an H200 with JAX 0.11.2: passing
computed values (a residual, a step count) to the callback from inside the solver made XLA's
GPU compiler abort the process (`multi_output_fusion.cc: Check failed ... bitcast is live`);
with the predicate alone it compiles and raises as on the CPU. Messages therefore carry only
static information; the values are in the result.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SolverError", "error_if", "nan_unless"]


class SolverError(RuntimeError):
    """A solver did not converge, or the linear system of its derivative was singular."""


def error_if(pred, message: str) -> None:
    """Raise `SolverError` with `message` at run time if `pred` (a boolean array:
    any element true raises)."""

    def callback(p):
        if np.any(p):
            raise SolverError(message)

    jax.debug.callback(callback, pred)


def nan_unless(ok, tree):
    """`tree` with its inexact leaves multiplied by 1 where `ok`, NaN where not.

    Multiplicative, so a tangent map stays linear (`jnp.where(ok, t, nan)` is not, and JAX
    cannot transpose it where it transposes a JVP rule instead of calling the VJP)."""

    def mask(t):
        if not jnp.issubdtype(jnp.result_type(t), jnp.inexact):
            return t
        return t * jnp.where(ok, 1.0, jnp.nan).astype(jnp.result_type(t))

    return jax.tree_util.tree_map(mask, tree)
