"""Interleaved timing helpers shared by the benchmark scripts (not part of the library API)."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import jax


def machine() -> str:
    dev = jax.devices()[0]
    return f"{platform.processor() or platform.machine()}, {dev.platform}:{dev.device_kind}, jax {jax.__version__}"


def once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def best_of(fn: Callable[[], object], inner: int) -> float:
    """Mean time of ``inner`` back-to-back calls (after the caller's warm-up)."""
    t0 = time.perf_counter()
    for _ in range(inner):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / inner


def calibrate(fn: Callable, target: float = 0.02) -> int:
    """Repetitions so that one measurement of ``fn`` takes about ``target`` seconds."""
    t = max(once(fn), 1e-6)
    return max(1, min(10_000, int(target / t)))


def interleaved_ratio(a: Callable, b: Callable, *, pairs: int = 7, inner: int | None = None):
    """Time ``a`` and ``b`` alternately; return (median a, median b, median a/b, (lo, hi)).

    ``inner`` calls per measurement (default: enough for ~20 ms, so that dispatch overhead
    does not dominate small problems).
    """
    jax.block_until_ready(a())
    jax.block_until_ready(b())
    if inner is None:
        inner = max(calibrate(a), calibrate(b))
    ta, tb, ratios = [], [], []
    for _ in range(pairs):
        x = best_of(a, inner)
        y = best_of(b, inner)
        ta.append(x)
        tb.append(y)
        ratios.append(x / y)
    return (
        statistics.median(ta),
        statistics.median(tb),
        statistics.median(ratios),
        (min(ratios), max(ratios)),
    )
