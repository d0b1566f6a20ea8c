"""The tolerance model: norm-wise relative errors, floors, and calibration by measurement.

```text
error   = ‖got − want‖ / max(‖want‖, 10⁻² · M)      M: the largest ‖want‖ of the same check
                                                    and direction (a component that is
                                                    exactly zero is measured against the
                                                    scale of the others)
allowed = max(floor, k · e_ref)                     k = 30
```

`floor`: 1e-9 (float64), 5e-5 (float32), overridable per rule and per call. `e_ref` is
measured, and only where some error exceeds its floor (so a passing rule costs nothing):

- below float64, the same error of JAX's own derivative of the reference in the rule's dtype
  (a correct rule is no worse than k times JAX's own rounding at that very point);
- in float64, the rounding noise of the float64 witness itself, estimated from its values at
  four nearby points (a fourth difference, `noise`): where JAX's float64 derivative of
  the reference is inaccurate (cancellation, as in the second derivative of `log1p(exp(x))`
  at large `x`, whose error is a step function of `x` that a few-ulp perturbation does
  not move), the tolerance widens to that measured noise, with a note;
- for the checks of the rule against itself (linearity, consistency), the reference's own
  error in the same check.

Without a reference, JVPs are held to adaptive-step finite differences (float64) within
`max(floor, 1e-7, k · their own error estimate)`; where they do not settle to 1e-3, the
point has no derivative they can resolve, and that is reported as a failure, never a pass.

A wrong rule is off by O(1); none of these measurements comes near that.
"""

from __future__ import annotations

import numpy as np

from .._dtypes import real_name, wide

FLOOR = {"float64": 1e-9, "float32": 5e-5, "float16": 5e-3, "bfloat16": 5e-2}
CALIBRATION = 30.0
ZERO_FRACTION = 1e-2
FD_RTOL = {"float64": 1e-7}
FD_UNSETTLED = 1e-3  # finite differences changing more than this between steps: no witness
NOISE_STEP = 1e-4  # relative step of the noise estimate's points
NOISE_STEPS = (-2, -1, 1, 2)  # the points x + j·h·u besides x itself


def floor_for(dtype: str, rtol: float | None, rule_rtol: float | None) -> float:
    if rtol is not None:
        return rtol
    if isinstance(rule_rtol, dict):  # per dtype: {"float64": ..., "float32": ...}
        rule_rtol = rule_rtol.get(real_name(dtype))
    if rule_rtol is not None:
        return rule_rtol
    return FLOOR.get(real_name(dtype), 1e-4)


def norm(x) -> float:
    return float(np.linalg.norm(np.ravel(wide(x))))


def relative(got, want, denom: float) -> float:
    err = norm(np.asarray(got) - np.asarray(want)) / denom
    return err if np.isfinite(err) else float("inf")


def denominator(want_norm: float, scale: float, floor: float, atol: float | None) -> float:
    d = max(want_norm, ZERO_FRACTION * scale, 1e-300)
    if atol is not None:
        d = max(d, atol / max(floor, 1e-300))
    return d


def allowed(floor: float, e_ref: float) -> float:
    return max(floor, CALIBRATION * e_ref if np.isfinite(e_ref) else 0.0)


def noise_points(xs, projectors, seed: int) -> list[list[np.ndarray]]:
    """The float64 point moved to `x + j·h·u` for `j` in `NOISE_STEPS`: `u` a random
    sign per element times the element's scale (projected onto a structured input's
    subspace, so it stays symmetric, triangular, ...), `h` = `NOISE_STEP`."""
    rng = np.random.default_rng([seed, 7919])
    us = []
    for x, P in zip(xs, projectors):
        x = wide(x)
        rms = float(np.sqrt(np.mean(np.abs(x) ** 2))) if x.size else 1.0
        u = NOISE_STEP * np.maximum(np.abs(x), rms) * rng.choice([-1.0, 1.0], x.shape)
        if np.iscomplexobj(x):  # a random direction in the complex plane
            u = u * np.exp(1j * rng.uniform(0.0, 2 * np.pi, x.shape))
        us.append(u if P is None else wide(P(u)))
    return [[wide(x) + j * u for x, u in zip(xs, us)] for j in NOISE_STEPS]


def noise(values: list, center) -> float:
    """The rounding noise of a float64 computation from its values at `x + j·h·u`
    (`NOISE_STEPS`) and `x`: the fourth difference, divided by √70 (its standard
    deviation for independent noise of unit size). A smooth function contributes only
    `h⁴·f⁗` (about 1e-16 relative); the noise of a computation that cancels does not
    shrink with `h` and shows (Moré and Wild, *Estimating computational noise*, 2011)."""
    m2, m1, p1, p2 = (wide(v) for v in values)
    d4 = m2 - 4 * m1 + 6 * wide(center) - 4 * p1 + p2
    return norm(d4) / np.sqrt(70.0)


def note(dtype: str, floor: float, tol: float, e_ref: float, how: str) -> str:
    if tol <= floor:
        return ""
    why = {
        "noise": "JAX's float64 derivative of the reference has rounding noise of {e:.2g} "
        "here (measured at nearby points: it is itself that inaccurate)",
        "calibration": "JAX's own {dtype} derivative of the reference is off by {e:.2g} here",
        "undecorated": "JAX's own {dtype} derivative of the rule's function, its rules "
        "removed, is off by {e:.2g} here (the reference's is not finite)",
        "self": "the reference's own {dtype} result is off by {e:.2g} in this check",
    }[how].format(e=e_ref, dtype=dtype)
    return f"tolerance widened from {floor:.0e} to {tol:.2g}: {why}"
