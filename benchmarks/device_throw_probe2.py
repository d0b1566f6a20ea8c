"""Probe (GPU): error_if variants under jit around XLA's multi_output_fusion crash."""

import subprocess
import sys

PRELUDE = """
import jax, jax.numpy as jnp, numpy as np
import jaxrules.rules.implicit as im
from jaxrules.rules import root
from jaxrules.rules._failure import SolverError
F = lambda x, a: x**3 - a
VARIANT = {variant!r}
def error_if(pred, message, *values):
    def cb(p, *vs):
        if np.any(p):
            raise SolverError(message.format(*[np.asarray(v).max() for v in vs]))
    if VARIANT == "no_values":
        jax.debug.callback(lambda p: cb(p, *([0] * len(values))), pred)
    elif VARIANT == "barrier":
        pred, values = jax.lax.optimization_barrier((pred, values))
        jax.debug.callback(cb, pred, *values)
    elif VARIANT == "copy":
        jax.debug.callback(cb, pred, *[jnp.array(v, copy=True) + 0 for v in values])
im.error_if = error_if
"""
STMT = "jax.jit(lambda a: root(F, jnp.ones(()), a, max_steps=2, throw=True).value)(1000.0)"
for variant in ("no_values", "barrier", "copy"):
    code = (
        PRELUDE.format(variant=variant)
        + f"\ntry:\n    jax.block_until_ready({STMT})\n    print('NO ERROR')\nexcept Exception as e:\n    print('RAISED', type(e).__name__, 'did not converge' in str(e))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    out = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    err = " | ".join(ln for ln in r.stderr.splitlines() if "Check failed" in ln)[-200:]
    print(f"{variant}: rc={r.returncode} {out} {err}")
