"""Checking what a rule returns against the shapes JAX expects (from `jax.eval_shape`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import RuleOutputError, describe, keystr, short_aval


def _is_none(x):
    return x is None


def tangent_dtype(dtype) -> Any:
    """The tangent dtype of a primal dtype: itself for inexact, float0 for int/bool."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return dtype
    return jax.dtypes.float0


def check_tree(
    rule: str,
    what: str,
    expected: Any,
    got: Any,
    *,
    allow_none: bool,
    tangent: bool,
    hint: str = "",
) -> None:
    """Raise a `RuleOutputError` if `got` does not match the structure, shapes, dtypes of `expected`.

    `expected` is a pytree of `jax.ShapeDtypeStruct` (the primal's). With
    `tangent=True` the expected dtype is the tangent dtype (float0 for integer leaves; such
    leaves also accept `None`). `allow_none` lets any leaf be `None` (a symbolic zero).
    """
    exp_leaves, exp_tree = jax.tree_util.tree_flatten_with_path(expected)
    try:
        got_leaves = exp_tree.flatten_up_to(got)
    except (ValueError, TypeError):
        got_tree = jax.tree_util.tree_structure(got, is_leaf=_is_none)
        raise RuleOutputError(
            f"{rule}: {what} has the wrong tree structure.\n"
            f"  expected: {exp_tree}\n"
            f"  got:      {got_tree}\n"
            f"{hint}"
        ) from None
    for (path, e), g in zip(exp_leaves, got_leaves):
        if tangent and not jnp.issubdtype(e.dtype, jnp.inexact):
            # An integer/bool leaf: its tangent is float0 whatever the rule returns (JAX
            # substitutes float0 likewise), so any value, or None, is accepted and dropped.
            continue
        if g is None:
            if allow_none:
                continue
            raise RuleOutputError(
                f"{rule}: {what} at {keystr(path)} is None; expected an array "
                f"{short_aval(e.shape, e.dtype)}.{hint}"
            )
        shape = np.shape(g)
        dtype = getattr(g, "dtype", None)
        if dtype is None:
            if isinstance(g, (int, float, complex, bool)):
                dtype = jnp.result_type(g)
            else:
                raise RuleOutputError(
                    f"{rule}: {what} at {keystr(path)} is a {type(g).__name__}; expected an "
                    f"array {short_aval(e.shape, e.dtype)}.{hint}"
                )
        want_dtype = tangent_dtype(e.dtype) if tangent else e.dtype
        if tuple(shape) != tuple(e.shape) or (
            jnp.dtype(dtype) != jnp.dtype(want_dtype) and not _weak_ok(g, want_dtype)
        ):
            raise RuleOutputError(
                f"{rule}: {what} at {keystr(path)} has the wrong shape or dtype: expected "
                f"{short_aval(e.shape, want_dtype)}, got {describe(g) if hasattr(g, 'shape') else short_aval(shape, dtype)}."
                f"{hint}"
            )


def _weak_ok(g, want_dtype) -> bool:
    # A Python scalar or weakly typed value promotes to the expected dtype without loss.
    if isinstance(g, (int, float)) and not isinstance(g, bool):
        return jnp.issubdtype(want_dtype, jnp.inexact)
    weak = getattr(getattr(g, "aval", None), "weak_type", False)
    return bool(weak) and jnp.issubdtype(want_dtype, jnp.inexact)
