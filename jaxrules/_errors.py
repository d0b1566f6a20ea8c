"""Exception types and message helpers shared by every layer."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


class RuleCheckError(AssertionError):
    """A registered rule failed one of `jaxrules.check`'s checks.

    It subclasses `AssertionError`, so pytest and every other test runner report it as a
    test failure with its full message.
    """


class RuleOutputError(TypeError, ValueError):
    """A rule returned an output of the wrong structure, shape or dtype.

    Both a `TypeError` (jaxrules' convention for a wrong kind of value) and a `ValueError`
    (what JAX raises for a custom rule's mismatched output), so that code catching either
    keeps working when `jax.custom_*` is swapped for jaxrules' decorators.
    """


def describe(x: Any) -> str:
    """Short type description of a value, JAX style: `f32[3,4]`, `int`, `None`."""
    if x is None:
        return "None"
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None and dtype is not None:
        return short_aval(shape, dtype)
    return type(x).__name__


def short_aval(shape: tuple[int, ...], dtype: Any) -> str:
    try:
        name = "float0" if dtype == jax.dtypes.float0 else np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    abbrev = {
        "float64": "f64",
        "float32": "f32",
        "float16": "f16",
        "bfloat16": "bf16",
        "int64": "i64",
        "int32": "i32",
        "int16": "i16",
        "int8": "i8",
        "uint32": "u32",
        "uint8": "u8",
        "bool": "bool",
        "complex64": "c64",
        "complex128": "c128",
    }.get(name, name)
    return f"{abbrev}[{','.join(str(d) for d in shape)}]"


def keystr(path: tuple) -> str:
    """A readable tree path: `['a'][0]`; the empty path prints as `<root>`."""
    s = jax.tree_util.keystr(path)
    return s if s else "<root>"
