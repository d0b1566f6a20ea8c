"""Probe (accelerator): do run-time errors raised from host callbacks reach Python, and which
form of ``root(..., throw=True)`` under ``jit`` compiles? Each case runs in its own subprocess,
so an abort (XLA ``Check failed``) ends only that case. Results on an H200 with JAX 0.11.2:
``benchmarks/results/device_callback_probes_h200_jax0.11.2.txt``.

Run: ``python benchmarks/device_callback_probe.py`` (from the repository root).
"""

import subprocess
import sys

# 1. Every kind of host callback raising, eagerly and under jit.
CALLBACKS = (
    """
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
""",
    {
        "debug_callback_eager": "error_if_debug(jnp.array(True))",
        "debug_callback_jit": ("jax.jit(lambda p: (error_if_debug(p), p)[1])(jnp.array(True))"),
        "pure_callback_jit": "jax.jit(error_if_pure)(jnp.array(True), jnp.ones(3))",
        "pure_callback_eager": "error_if_pure(jnp.array(True), jnp.ones(3))",
        "io_callback_jit": "jax.jit(error_if_io)(jnp.array(True), jnp.ones(3))",
    },
)

# 2. root(..., throw=True) as the library builds it.
ROOT = "jax.jit(lambda a: root(F, jnp.ones(()), a, max_steps={steps}, throw={throw}).value)({a})"
THROW = (
    """
import jax, jax.numpy as jnp
from jaxrules.rules import root
F = lambda x, a: x**3 - a
""",
    {
        "jit_throw_false": ROOT.format(steps=2, throw=False, a=1000.0),
        "jit_throw_true_converges": ROOT.format(steps=50, throw=True, a=8.0),
        "jit_throw_true_fails": ROOT.format(steps=2, throw=True, a=1000.0),
        "eager_throw_true_fails": "root(F, jnp.ones(()), 1000.0, max_steps=2, throw=True).value",
    },
)

# 3. What the callback may receive: the predicate alone, or computed values too.
VARIANT = """
import jax, jax.numpy as jnp, numpy as np
import jaxrules.rules.implicit as im
from jaxrules.rules import root
from jaxrules.rules._failure import SolverError
F = lambda x, a: x**3 - a
def error_if(pred, message, *values):
    def cb(p, *vs):
        if np.any(p):
            raise SolverError(message)
    if VARIANT == "barrier":
        pred, values = jax.lax.optimization_barrier((pred, values))
    jax.debug.callback(cb, pred, *values)
def with_values(pred, message):  # the first version fed the residual and the step count
    error_if(pred, message, jnp.float32(1.0) * pred, jnp.int32(2) * pred)
im.error_if = error_if if VARIANT == "no_values" else with_values
"""
VARIANTS = {
    v: (f"VARIANT = {v!r}\n" + VARIANT, {v: ROOT.format(steps=2, throw=True, a=1000.0)})
    for v in ("no_values", "values", "barrier")
}


def run_cases(prelude: str, cases: dict) -> None:
    for name, stmt in cases.items():
        code = (
            prelude
            + f"\ntry:\n    jax.block_until_ready({stmt})\n    print('NO ERROR')\n"
            + "except Exception as e:\n    print('RAISED', type(e).__name__)\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        out = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
        crash = " | ".join(ln for ln in r.stderr.splitlines() if "Check failed" in ln)[-200:]
        print(f"{name}: rc={r.returncode} {out} {crash}", flush=True)


if __name__ == "__main__":
    run_cases(*CALLBACKS)
    run_cases(*THROW)
    for prelude, cases in VARIANTS.values():
        run_cases(prelude, cases)
