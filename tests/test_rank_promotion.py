"""No implicit rank promotion inside the library: every registered rule traces — its JVP and
VJP batched by `vmap`, and the second order it declares; its registered reference the same at
first order —
with `jax.numpy_rank_promotion("raise")`, the setting JAX's own test suite runs under
(jax-ml/jax#7208) and that projects set to catch broadcasting mistakes (google/flax#1534).
Tracing is enough: JAX raises while tracing, and nothing is compiled. Slow tier (about 50 s on
two workers): the fast tier runs every test under the setting, `test_export.py` tracing each rule's
primal, JVP and VJP.

Before: `ive`, `kve`, `log_iv` (Debye's coefficients, `(n, 1) ** (k,)`), `student_t_cdf`
(`(k,) + (n, k)`), `sylvester`, `lyapunov`, `discrete_lyapunov`, `sqrtm` (a column sweep scaling
`(n, b) * (b,)`), `polar` (`V * s`) and `qp` (`Gᵀ * D`) raised `ValueError: Operands could not
be broadcast together ... jax_numpy_rank_promotion='raise'` from inside jaxrules (22 of the 78
float64 cases here), so a project with that setting could not use them; `polar`'s reference
(`Vᵀ * s`) too, which failed the checker's 20-seed sweep and the benchmark smoke test.

The whole test suite runs with the setting (`conftest.py`), as JAX's does; the few tests of
broadcasting a user asks for (`linear_solve(A (4, 3, 3), b (3,))`, as `jnp.linalg.solve`
allows it) allow it where they ask."""

import jax
import jax.numpy as jnp
import pytest
from conftest import LIBRARY_CASES, registered_point

import jaxrules as jr


def _programs(rec, case, dtype, fn=None, order=1):
    xs, G, v, w = registered_point(rec, case, dtype, fn)
    jvp = lambda xs, v: jax.jvp(G, (xs,), (v,))[1]
    vjp = lambda xs, w: jax.vjp(G, xs)[1](w)[0]
    batch = lambda t: [jnp.stack([a, a]) for a in t]
    # vmap(jvp) traces the JVP rule, vmap(vjp) the VJP (JAX's batching runs the rule's
    # Python with unbatched shapes, so it raises where the unbatched rule would, and where
    # batching adds a broadcast); jvp(vjp) the second order.
    programs = {
        "vmap(jvp)": (jax.vmap(jvp), (batch(xs), batch(v))),
        "vmap(vjp)": (jax.vmap(vjp), (batch(xs), batch(w))),
    }
    if order >= 2:
        programs["jvp(vjp)"] = (
            lambda xs, v: jax.jvp(lambda ys: vjp(ys, w), (xs,), (v,))[1],
            (xs, v),
        )
    return programs


@pytest.mark.slow  # the fast tier: every test runs under "raise" (test_export traces them all)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, case", LIBRARY_CASES)
def test_no_rule_promotes_ranks_implicitly(name, case, dtype):
    rec = jr.get(name)
    with jax.enable_x64(dtype == "float64"), jax.numpy_rank_promotion("raise"):
        failures = {}
        programs = _programs(rec, rec.cases[case], dtype, order=rec.check.order)
        if rec.reference is not None:  # the registered reference (the checker's witness)
            ref = _programs(rec, rec.cases[case], dtype, rec.reference)
            programs.update({f"reference {k}": p for k, p in ref.items()})
        for part, (fn, args) in programs.items():
            try:
                jax.make_jaxpr(fn)(*args)
            except Exception as e:
                if "rank_promotion" in str(e) or "rank promotion" in str(e):
                    failures[part] = str(e).splitlines()[0]
                elif not part.startswith("reference"):
                    raise
                # (else JAX cannot differentiate the reference so: a while_loop in reverse
                # mode — the checker's witness is then finite differences)
    assert not failures, failures
