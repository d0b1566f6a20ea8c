"""Probe (GPU): does an exception raised in a host callback reach Python, or abort? Each case
runs in its own subprocess so an abort does not end the probe."""

import subprocess
import sys

CASES = {
    "debug_callback_eager": "error_if_debug(jnp.array(True))",
    "debug_callback_jit": "jax.block_until_ready(jax.jit(lambda p: (error_if_debug(p), p)[1])(jnp.array(True)))",
    "pure_callback_jit": "jax.block_until_ready(jax.jit(error_if_pure)(jnp.array(True), jnp.ones(3)))",
    "pure_callback_eager": "jax.block_until_ready(error_if_pure(jnp.array(True), jnp.ones(3)))",
    "io_callback_jit": "jax.block_until_ready(jax.jit(error_if_io)(jnp.array(True), jnp.ones(3)))",
}
PRELUDE = """
import jax, jax.numpy as jnp, numpy as np
from jax.experimental import io_callback
def _raise(p):
    if np.any(p):
        raise RuntimeError("probe-message")
def error_if_debug(p):
    jax.debug.callback(_raise, p)
def _raise_pass(p, x):
    _raise(p)
    return np.asarray(x)
def error_if_pure(p, x):
    return jax.pure_callback(_raise_pass, jax.ShapeDtypeStruct(x.shape, x.dtype), p, x)
def error_if_io(p, x):
    return io_callback(_raise_pass, jax.ShapeDtypeStruct(x.shape, x.dtype), p, x)
"""
for name, stmt in CASES.items():
    code = (
        PRELUDE
        + f"\ntry:\n    {stmt}\n    print('NO ERROR')\nexcept Exception as e:\n    print('RAISED', type(e).__name__, 'probe-message' in str(e))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    out = r.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"{name}: rc={r.returncode} {out[0]}")
