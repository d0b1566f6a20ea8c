"""Runtime errors that work under ``jit``: the one place the rule library raises from inside a
compiled computation.

:func:`error_if` stages a ``jax.debug.callback`` that raises when its predicate holds. Eagerly
the exception propagates as it is; under ``jit`` JAX re-raises it as a
``jax.errors.JaxRuntimeError`` (a ``RuntimeError``) whose message contains ours. Under ``vmap``
the callback receives the whole batch and raises if any element fails. The callback is an
effect, so it is never removed as dead code, and it runs only when its computation runs.
"""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["SolverError", "error_if"]


class SolverError(RuntimeError):
    """A solver did not converge, or the linear system of its derivative was singular."""


def error_if(pred, message: str, *values) -> None:
    """Raise :class:`SolverError` with ``message.format(*values)`` at run time if ``pred``.

    ``pred`` is a boolean array (any element true raises); ``values`` are arrays formatted
    into the message (their largest element, for batches).
    """

    def callback(p, *vs):
        if np.any(p):
            shown = [np.max(np.asarray(v)) if np.ndim(v) else np.asarray(v).item() for v in vs]
            raise SolverError(message.format(*shown))

    jax.debug.callback(callback, pred, *values)
