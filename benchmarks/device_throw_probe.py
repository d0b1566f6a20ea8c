"""Probe (GPU): which part of root(..., throw=True) under jit aborts XLA's compiler."""

import subprocess
import sys

PRELUDE = """
import jax, jax.numpy as jnp
from jaxrules.rules import root
F = lambda x, a: x**3 - a
"""
CASES = {
    "jit_throw_false": "jax.jit(lambda a: root(F, jnp.ones(()), a, max_steps=2).value)(1000.0)",
    "jit_throw_true_converges": "jax.jit(lambda a: root(F, jnp.ones(()), a, throw=True).value)(8.0)",
    "jit_throw_true_fails": "jax.jit(lambda a: root(F, jnp.ones(()), a, max_steps=2, throw=True).value)(1000.0)",
    "eager_throw_true_fails": "root(F, jnp.ones(()), 1000.0, max_steps=2, throw=True).value",
}
for name, stmt in CASES.items():
    code = (
        PRELUDE
        + f"\ntry:\n    jax.block_until_ready({stmt})\n    print('NO ERROR')\nexcept Exception as e:\n    print('RAISED', type(e).__name__, str(e)[:80].replace(chr(10), ' '))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    out = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    err = " | ".join(
        ln
        for ln in r.stderr.splitlines()
        if "F0000" in ln or "Check failed" in ln or "error" in ln.lower()
    )[-400:]
    print(f"{name}: rc={r.returncode} {out} {err}")
