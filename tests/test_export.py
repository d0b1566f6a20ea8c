"""Every registered rule of the library lowers for GPU and TPU (78 cases × 3 programs, each
traced once and lowered for the three platforms together — 27 s on one core, half of one export
per platform; a failure is then attributed platform by platform): its primal, JVP and VJP at
the registered example point, exported with `jax.export` for `cuda`, `rocm` and `tpu` (this
runs on a CPU-only machine: lowering needs no device). The suite's
`jax_numpy_rank_promotion="raise"` (conftest) makes this also the fast tier's check that no
rule promotes ranks inside."""

import jax
import pytest
from conftest import LIBRARY_CASES, registered_point
from jax import export

import jaxrules as jr

PLATFORMS = ("cuda", "rocm", "tpu")
#: Rules that do not lower off the CPU, and why (a substring of the lowering error). Empty: the
#: matrix equations, whose Schur decomposition JAX lowers on the CPU only, take the sign path
#: elsewhere (`method="auto"`). The test fails if a listed rule starts to lower (shrink the list)
#: or if any other rule stops.
CPU_ONLY: dict[str, str] = {}


def _programs(rec, case):
    xs, G, v, w = registered_point(rec, case)
    return xs, {
        "primal": G,
        "jvp": lambda xs: jax.jvp(G, (xs,), (v,))[1],
        "vjp": lambda xs: jax.vjp(G, xs)[1](w)[0],
    }


@pytest.mark.parametrize("name, case", LIBRARY_CASES)
def test_every_library_rule_lowers_for_gpu_and_tpu(name, case):
    rec = jr.get(name)
    xs, programs = _programs(rec, rec.cases[case])
    failures = {}
    for part, fn in programs.items():
        try:  # one trace, lowered for the three platforms at once
            export.export(jax.jit(fn), platforms=PLATFORMS)(xs)
            continue
        except Exception:
            pass
        for platform in PLATFORMS:  # which of them fails
            try:
                export.export(jax.jit(fn), platforms=[platform])(xs)
            except Exception as e:
                failures[(platform, part)] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        assert failures, f"{part} lowers for each of {PLATFORMS} alone but not for all at once"
    if name in CPU_ONLY:
        assert failures, f"{name} now lowers on {PLATFORMS}: remove it from CPU_ONLY"
        assert all(CPU_ONLY[name] in msg for msg in failures.values()), failures
    else:
        assert not failures, failures


def test_the_cpu_only_list_names_registered_rules():
    names = {r.name for r in jr.list_rules(module="jaxrules.rules")}
    assert set(CPU_ONLY) <= names
