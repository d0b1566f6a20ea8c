"""jit over inputs sharded across 4 CPU devices, shard_map, and jax.export, for each flavour.

Runs in a subprocess: the 4 host devices must be configured before JAX initialises.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import sys
    sys.path.insert(0, {tests!r})
    import jax, jax.numpy as jnp, numpy as np
    from jax import export
    from jax.sharding import NamedSharding, PartitionSpec as P
    from conftest import make_matsin, matsin_ref
    assert jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    A = jnp.asarray(np.random.default_rng(0).standard_normal((8, 8)), jnp.float32)
    x = jnp.asarray(np.random.default_rng(1).standard_normal(8), jnp.float32)
    A_s = jax.device_put(A, NamedSharding(mesh, P("d", None)))
    x_s = jax.device_put(x, NamedSharding(mesh, P("d")))
    loss = lambda f: lambda A, x: jnp.sum(jnp.tanh(f(A, x)))
    X = jnp.stack([x, 2 * x, -x, x / 2])

    def _shard_map_jvp(f, where, cv):
        sm = lambda g: jax.jit(jax.shard_map(g, mesh=mesh, in_specs=(P("d", None), P("d", None)),
                                             out_specs=P("d"), check_vma=cv))
        if where == "inside":
            return sm(lambda A, X: jax.jvp(f, (A, X[0]), (A, X[0]))[1])(A_s, X)
        return jax.jvp(sm(lambda A, X: f(A, X[0])), (A_s, X), (A_s, X))[1]

    checks = {{
        "sharded_jit_grad": lambda f: jax.jit(jax.grad(loss(f), (0, 1)))(A_s, x_s),
        "sharded_jit_jvp": lambda f: jax.jit(lambda A, x: jax.jvp(f, (A, x), (A, x)))(A_s, x_s),
        "sharded_vmap": lambda f: jax.jit(jax.vmap(f, (None, 0)))(A_s, jnp.stack([x_s] * 4)),
        # Per-device blocks: A's rows and one row of X per device (all values vary over d,
        # so the rule's cotangents vary like its inputs, as shard_map's type check requires).
        "shard_map_grad": lambda f: jax.jit(jax.shard_map(
            lambda A, X: jax.grad(loss(f), (0, 1))(A, X[0]), mesh=mesh,
            in_specs=(P("d", None), P("d", None)), out_specs=(P("d", None), P("d"))))(
                A_s, jnp.stack([x, 2 * x, -x, x / 2])),
        # Forward mode inside and through shard_map, in both of its type-checking modes (a
        # VJP-only rule's transposed JVP summed its tangent over the devices with
        # check_vma=True: a silent wrong value on JAX 0.12).
        **{{
            f"shard_map_{{where}}_jvp_vma_{{cv}}": (
                lambda f, where=where, cv=cv: _shard_map_jvp(f, where, cv)
            )
            for where in ("inside", "through")
            for cv in (True, False)
        }},
        "export_call": lambda f: export.export(jax.jit(f))(A, x).call(A, x),
        "export_grad": lambda f: export.export(jax.jit(jax.grad(loss(f), (0, 1))))(A, x).call(A, x),
        "export_jvp": lambda f: export.export(jax.jit(
            lambda A, x: jax.jvp(f, (A, x), (A, x))))(A, x).call(A, x),
        "export_roundtrip": lambda f: export.deserialize(export.export(jax.jit(
            jax.grad(loss(f), 1)))(A, x).serialize()).call(A, x),
    }}
    for flavour in ["jvp", "vjp", "both"]:
        f = make_matsin(flavour)
        for name, run in checks.items():
            got, want = run(f), run(matsin_ref)
            for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
                np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=3e-5, atol=3e-5,
                                           err_msg=flavour + " " + name)
            print("ok", flavour, name)
    """
)


def test_sharding_shard_map_export():
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=tests)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if r.returncode != 0:
        pytest.fail(f"subprocess failed:\n{r.stdout}\n{r.stderr[-4000:]}")
    assert r.stdout.count("ok ") == 36, r.stdout
