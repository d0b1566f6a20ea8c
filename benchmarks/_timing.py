"""Timing helpers for the benchmark scripts: the library's own (``jaxrules._bench``), so that the
scripts and ``jr.benchmark`` measure the same way."""

from jaxrules._bench import calibrate, interleaved_ratio, machine, temp_bytes, time_once
from jaxrules._bench import mean_time as best_of

__all__ = [
    "best_of",
    "calibrate",
    "interleaved_ratio",
    "machine",
    "ratio_cell",
    "record_ratio",
    "temp_bytes",
    "time_once",
]


def record_ratio(row: dict, key: str, a, b, *, pairs: int) -> tuple[float, float]:
    """Time `a` against `b` interleaved, store `row[key + "_ratio"]` and `row[key + "_spread"]`
    (what `ratio_cell` reads) and return the two median times."""
    t_a, t_b, r, spread = interleaved_ratio(a, b, pairs=pairs)
    row[key + "_ratio"], row[key + "_spread"] = r, spread
    return t_a, t_b


def ratio_cell(row: dict, key: str) -> str:
    """A table cell "median (min–max)" from `row[key + "_ratio"]` and `row[key + "_spread"]`;
    "–" where the row has no such ratio (the baseline)."""
    if key + "_ratio" not in row:
        return "–"
    lo, hi = row[key + "_spread"]
    return f"{row[key + '_ratio']:.2f} ({lo:.2f}–{hi:.2f})"
