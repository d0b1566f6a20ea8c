"""The library beyond one device (issue 29, docs/scaling-out.md): each family's derivatives on
inputs sharded over 4 host CPU devices keep the sharding — no all-gather in the compiled
program — and equal the unsharded values; and one solve across two processes joined by
`jax.distributed` (gloo collectives on the CPU).

Both run in subprocesses (the device count and the distributed runtime must be set before JAX
initialises). Slow tier: each compiles a dozen programs.
"""

import os
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

SHARDED = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import NamedSharding, PartitionSpec as P
    import jaxrules as jr
    from jaxrules.rules import (krylov_solve, linear_solve, logm, odeint, polar, sqrtm,
                                sylvester, funm_symmetric)
    assert jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = lambda a: jax.device_put(a, NamedSharding(mesh, P("d", *([None] * (a.ndim - 1)))))
    key = lambda i: jax.random.key(i)
    B = 8  # two problems per device

    def stack(gen, i):
        return jnp.stack([gen(jax.random.fold_in(key(i), k), "float64") for k in range(B)])

    As = stack(jr.inputs.general((6, 6), cond=4.0), 0)
    Ps = stack(jr.inputs.positive_stable(5), 1)
    Ss = stack(jr.inputs.stable(4), 2)
    Cs = stack(jr.inputs.general((4, 4)), 3)
    Ys = stack(jr.inputs.symmetric(5), 4)
    bs = stack(jr.inputs.general((6, 2)), 5)  # (8, 6, 2): jnp.linalg.solve's batched b
    d = jnp.linspace(1.0, 3.0, 4096)  # a diagonal SPD operator on a long, sharded vector
    v = jr.inputs.general((4096,))(key(6), "float64")
    W = 0.3 * jr.inputs.general((3, 3))(key(7), "float64")
    y0s = stack(jr.inputs.general((3,)), 8)

    s = lambda y: jnp.sum(jnp.sin(y))
    ode = lambda y0, W: odeint(lambda y, t, W: jnp.tanh(W @ y) - y / 2, y0,
                               jnp.array([0.0, 0.5, 1.0]), W).ys
    cases = {
        "linear_solve (batched)": (lambda A, b: s(linear_solve(A, b)), (As, bs)),
        "sqrtm (batched)": (lambda A: s(sqrtm(A)), (Ps,)),
        "logm (batched)": (lambda A: s(logm(A)), (Ps,)),
        "polar (batched)": (lambda A: s(polar(A)[0]), (As,)),
        "funm_symmetric (batched)": (lambda A: s(funm_symmetric(jnp.exp, A)), (Ys,)),
        "sylvester (vmapped)": (
            lambda A, C: s(jax.vmap(lambda A, C: sylvester(A, A.T, C))(A, C)), (Ss, Cs)),
        "odeint (vmapped over y0)": (
            lambda y0: s(jax.vmap(lambda y: ode(y, W))(y0)), (y0s,)),
        "krylov_solve cg (one sharded vector)": (
            lambda dd, b: s(krylov_solve(lambda x: dd * x, b, solver="cg").value),
            (d, v)),
    }
    # The probe can fail: a sort of the sharded vector needs its other shards (an all-gather).
    control = jax.jit(jax.grad(lambda v: s(jnp.sort(v)))).lower(batch(v)).compile().as_text()
    assert "all-gather" in control
    for name, (loss, args) in cases.items():
        sharded = tuple(batch(a) for a in args)
        g = jax.jit(jax.grad(loss, tuple(range(len(args)))))
        hlo = g.lower(*sharded).compile().as_text()
        assert "all-gather" not in hlo, name
        got, want = g(*sharded), jax.grad(loss, tuple(range(len(args))))(*args)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12,
                                       err_msg=name)
            assert a.sharding.spec[0] == "d", (name, a.sharding)  # the gradient stays sharded
        print("ok", name)
    """
)


def _run(code, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout
    )


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    return env


def test_every_family_keeps_its_sharding_without_gathers():
    r = _run(SHARDED, _env())
    if r.returncode != 0:
        pytest.fail(f"subprocess failed:\n{r.stdout}\n{r.stderr[-4000:]}")
    assert r.stdout.count("ok ") == 8, r.stdout


PROCESS = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address="127.0.0.1:{port}", num_processes=2,
                               process_id=int(sys.argv[1]))
    from jax.sharding import NamedSharding, PartitionSpec as P
    from jaxrules.rules import krylov_solve
    assert jax.process_count() == 2 and jax.device_count() == 2, jax.devices()
    mesh = jax.make_mesh((2,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    n = 2048
    full_d = np.linspace(1.0, 3.0, n)
    full_b = np.sin(np.arange(n) * 0.37)
    local = slice(jax.process_index() * n // 2, (jax.process_index() + 1) * n // 2)
    put = lambda a: jax.make_array_from_process_local_data(NamedSharding(mesh, P("d")), a[local])
    d, b = put(full_d), put(full_b)
    loss = lambda f: lambda d, b: jnp.sum(jnp.sin(f(d, b)))
    ours = lambda d, b: krylov_solve(lambda x: d * x, b, solver="cg").value
    theirs = lambda d, b: jax.scipy.sparse.linalg.cg(lambda x: d * x, b, tol=1e-12)[0]
    g1 = jax.jit(jax.grad(loss(ours), (0, 1)))(d, b)
    g2 = jax.jit(jax.grad(loss(theirs), (0, 1)))(d, b)
    for a, c in zip(g1, g2):
        for s1, s2 in zip(a.addressable_shards, c.addressable_shards):
            np.testing.assert_allclose(np.asarray(s1.data), np.asarray(s2.data), rtol=1e-8)
    # and against the closed form on this process's half: x = b/d, loss = Σ sin(x)
    x = full_b / full_d
    gb = np.cos(x) / full_d
    np.testing.assert_allclose(np.asarray(g1[1].addressable_shards[0].data), gb[local],
                               rtol=1e-8)
    print("ok process", jax.process_index())
    """
)


def test_a_solve_across_two_processes():
    with socket.socket() as sock:  # a free port for the coordinator
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = PROCESS.format(port=port)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        if p.returncode != 0:
            pytest.fail(f"process {i} failed:\n{out}\n{err[-4000:]}")
        assert f"ok process {i}" in out
