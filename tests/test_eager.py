"""Eager calls of the rules compile once: a derivative that runs a loop (or a `cond`) over
closures made afresh at each call traces and lowers that loop again at every eager call —
0.16 s an eager `gammainc` gradient against 0.004 s, and the checker's eager transform pays it
thousands of times. The library jits such internals at module level; these tests fail where
one is not (the second call must lower nothing)."""

import jax
import jax.monitoring as monitoring
import jax.numpy as jnp
import pytest

import jaxrules as jr
from jaxrules.rules import betainc, expm, fractional_matrix_power, gammainc, ive, logm

_LOWERING = "/jax/core/compile/jaxpr_to_mlir_module_duration"


def _matrix():
    return jr.inputs.positive_stable(3)(jax.random.key(0), "float32")


def _vector(lo, hi, seed=0):
    return jax.random.uniform(jax.random.key(seed), (4,), "float32", lo, hi)


CALLS = {
    "logm grad": lambda: jax.grad(lambda A: jnp.sum(jnp.sin(logm(A))))(_matrix()),
    "logm jvp": lambda: jax.jvp(logm, (_matrix(),), (_matrix(),)),
    "expm grad": lambda: jax.grad(lambda A: jnp.sum(jnp.sin(expm(A))))(_matrix()),
    "fractional_matrix_power grad": lambda: jax.grad(
        lambda A: jnp.sum(fractional_matrix_power(A, 0.3))
    )(_matrix()),
    "gammainc grad a, x": lambda: jax.grad(lambda a, x: jnp.sum(gammainc(a, x)), (0, 1))(
        _vector(0.5, 20.0), _vector(0.5, 20.0, 1)
    ),
    "betainc grad x": lambda: jax.grad(lambda x: jnp.sum(betainc(12.0, 30.0, x)))(
        _vector(0.1, 0.9)
    ),
    "ive grad": lambda: jax.grad(lambda x: jnp.sum(ive(1.5, x)))(_vector(0.5, 40.0)),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_a_second_eager_call_lowers_nothing(name):
    lowered = []

    def listener(event, seconds, **kwargs):
        if event == _LOWERING:
            lowered.append(event)

    call = CALLS[name]
    jax.block_until_ready(call())  # the first call compiles what it needs
    monitoring.register_event_duration_secs_listener(listener)
    try:
        jax.block_until_ready(call())
    finally:
        monitoring.unregister_event_duration_listener(listener)
    assert not lowered, f"{name}: the second eager call lowered {len(lowered)} programs again"
