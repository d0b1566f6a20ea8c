"""Timing helpers for the benchmark scripts: the library's own (``jaxrules._bench``), so that the
scripts and ``jr.benchmark`` measure the same way."""

from jaxrules._bench import calibrate, interleaved_ratio, machine, temp_bytes, time_once
from jaxrules._bench import mean_time as best_of

__all__ = ["best_of", "calibrate", "interleaved_ratio", "machine", "temp_bytes", "time_once"]
