"""Argument handling shared by the matrix rules: validation, `jnp`'s dtype promotion, and
leading batch dimensions (`jnp.linalg`'s `(..., n, n)` convention).

Batching is `jax.vmap` of the rule on one matrix over the flattened batch: every primitive
inside (LU, Cholesky, Schur, triangular solves) has a batching rule, so a stack of matrices
runs one batched factorisation, never a Python loop.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

#: The registered dtypes of the rules that support complex numbers.
WITH_COMPLEX = ("float64", "float32", "complex128", "complex64")


def inexact(*arrays):
    """The arrays as `jnp` arrays of one inexact dtype, promoted as `jnp.linalg` does: booleans
    and integers of up to 32 bits become `float32`, 64-bit integers `float64` (JAX's
    `to_inexact_dtype`, also under x64), `float16` with `float32` becomes `float32`."""
    arrays = [jnp.asarray(a) for a in arrays]
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.inexact):
        wide = jnp.dtype(dtype).itemsize == 8
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if wide else jnp.float32)
    return [a.astype(dtype) for a in arrays]


def is_half(dtype) -> bool:
    """Whether `dtype` is a half-precision float (`float16`, `bfloat16`)."""
    return jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32


def full_precision(name: str, why: str, **arrays) -> None:
    """A half-precision (`float16`, `bfloat16`) argument of the rule `name`, by name (each a
    pytree), is a `TypeError` naming the rule, the argument and `why` the rule needs float32
    or float64, and how to cast."""
    for what, tree in arrays.items():
        for leaf in jax.tree_util.tree_leaves(tree):
            dtype = jnp.result_type(leaf)
            if is_half(dtype):
                raise TypeError(
                    f"{name}: {what} is {dtype}; {name} works in float32 or float64 ({why}). "
                    f"Cast it, e.g. jnp.asarray({what}, jnp.float32), and the result back to "
                    f"{dtype} if you need it there."
                )


def matrices(name: str, **arrays) -> list:
    """The array arguments of the matrix rule `name`, by name, promoted to one inexact dtype
    (`inexact`: `float16` with `float32` is `float32`). A half-precision result is a
    `TypeError` naming the argument (`full_precision`): LAPACK has no half-precision
    factorisations, and JAX's own error says only `Unsupported dtype float16`."""
    out = inexact(*arrays.values())
    if out and is_half(out[0].dtype):
        half = {k: v for k, v in arrays.items() if is_half(jnp.result_type(v))}
        full_precision(name, "LAPACK's factorisations have no half-precision kernels", **half)
    return out


def in_single(fn: Callable, *arrays):
    """`fn(*arrays)` for arrays of one dtype (`real_arrays`' output), computed in float32 where
    that dtype is half precision and the result (a pytree) rounded back to it: the special
    functions' series, continued fractions and Newton steps need float32's digits and range
    (`float16`'s `exp(-x)` underflows from x ≈ 17, its 11 bits lose several ulps in a
    recurrence), as XLA computes the transcendental functions of half floats in float32. The
    casts are differentiable: derivatives come back in the half dtype."""
    dtype = arrays[0].dtype if arrays else None
    if dtype is None or not is_half(dtype):
        return fn(*arrays)
    out = fn(*(a.astype(jnp.float32) for a in arrays))
    return jax.tree_util.tree_map(
        lambda o: o.astype(dtype) if jnp.issubdtype(o.dtype, jnp.floating) else o, out
    )


def real(name: str, **arrays) -> None:
    """Complex input is a `TypeError` naming the rule and the argument."""
    for what, M in arrays.items():
        if jnp.issubdtype(jnp.result_type(M), jnp.complexfloating):
            raise TypeError(
                f"{name}: {what} is complex ({jnp.result_type(M)}); {name} supports real "
                "matrices only so far. Split the problem into real and imaginary parts, or use "
                "the jnp.linalg / jax.scipy.linalg function."
            )


def real_elementwise(name: str, what: str, x) -> None:
    """Complex input to an elementwise real function is a `TypeError` naming the rule and the
    argument."""
    if jnp.issubdtype(jnp.result_type(x), jnp.complexfloating):
        raise TypeError(
            f"{name}: {what} is complex ({jnp.result_type(x)}); {name} is defined here for real "
            "arguments only. Use jax.scipy.special for its values at complex arguments."
        )


def real_arrays(name: str, **arrays) -> list:
    """The arguments of an elementwise real function, by name: each checked real
    (`real_elementwise`), then promoted to one inexact dtype (`inexact`) and broadcast."""
    for what, arr in arrays.items():
        real_elementwise(name, what, arr)
    return jnp.broadcast_arrays(*inexact(*arrays.values()))


def linear_tangent(*terms):
    """$\\sum_i c_i t_i$ over the tangents $t_i$ that are not `None` (zero tangents arrive as
    `None` with `zeros_as_none=True`); `None` when all are. `terms` are `(tangent, coefficient)`
    pairs with the coefficient a thunk, so an expensive one (a loop) runs only for a tangent
    that is there."""
    out = None
    for t, coefficient in terms:
        if t is not None:
            term = coefficient() * t
            out = term if out is None else out + term
    return out


def square(name: str, what: str, M, *, batched: bool = True) -> None:
    """`M` must be a square matrix (with leading batch dimensions if `batched`)."""
    shape = jnp.shape(M)
    if len(shape) < 2 or shape[-1] != shape[-2] or (not batched and len(shape) != 2):
        expected = "(..., n, n)" if batched else "(n, n)"
        raise ValueError(
            f"{name}: {what} must be a square matrix of shape {expected}, got shape {shape}."
        )


def over_batch(name: str, fn: Callable, args: dict, core_ndims: Sequence[int]):
    """`fn` on the trailing `core_ndims` axes of each argument (`args`: by name, in `fn`'s
    order), mapped over their broadcast leading (batch) axes; outputs get the batch shape in
    front. No batch: `fn(*args)`. Batches that do not broadcast are a `ValueError` naming the
    rule and the arguments. Batches of different ranks are promoted as `jnp.vectorize` (and so
    `jnp.linalg.solve`) promotes them: an error or a warning where the user's
    `jax_numpy_rank_promotion` setting says so."""
    batches = [jnp.shape(a)[: jnp.ndim(a) - k] for a, k in zip(args.values(), core_ndims)]
    shapes = " and ".join(f"{what} {b}" for what, b in zip(args, batches))
    try:
        batch = jnp.broadcast_shapes(*batches)
    except ValueError:
        raise ValueError(
            f"{name}: the batch dimensions of {shapes} do not broadcast against each other."
        ) from None
    promotion = jax.config.jax_numpy_rank_promotion
    if promotion != "allow" and len({len(b) for b in batches}) > 1:
        msg = (
            f"{name}: the batch dimensions of {shapes} differ in rank, and "
            f"jax_numpy_rank_promotion is {promotion!r} (as for jnp.vectorize and "
            f"jnp.linalg.solve). Give each argument its batch axes explicitly (e.g. x[None] for "
            "one more leading axis), or allow it: with jax.numpy_rank_promotion('allow')."
        )
        if promotion == "raise":
            raise ValueError(msg)
        warnings.warn(msg, stacklevel=3)
    args = list(args.values())
    if not batch:
        return fn(*args)
    size = math.prod(batch)
    flat = []
    for a, k in zip(args, core_ndims):
        core = jnp.shape(a)[jnp.ndim(a) - k :]
        flat.append(jnp.broadcast_to(a, batch + core).reshape((size, *core)))
    out = jax.vmap(fn)(*flat)
    return jax.tree_util.tree_map(lambda o: o.reshape(batch + o.shape[1:]), out)
