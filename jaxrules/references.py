r"""References computed outside JAX: an exact witness for rules JAX cannot check itself.

A rule's reference is normally plain JAX, and the checker's witness is JAX's derivative of
it. For a special function in its parameters there is often no such reference — JAX cannot
differentiate `betainc` in `a`, its `i0` is wrong at 0 on some versions — and a float64
reimplementation would only be checked against itself. `mpmath_elementwise` turns an
[mpmath](https://mpmath.org) function of scalars into a JAX function that evaluates it on
the host (`jax.pure_callback`) at `dps` significant digits, elementwise with broadcasting,
and whose derivatives — JVPs to any order up to `order` — are mpmath's own high-precision
numerical differentiation of it (`mpmath.diff`, which differences at extra working precision,
so the derivatives are accurate to far below float64's rounding):

$$\partial^{\alpha} f(x) \approx \texttt{mpmath.diff}(f, x, \alpha)
  \quad\text{at } \texttt{dps} \text{ digits, rounded to the input's dtype.}$$

Give it as a rule's `reference` (or `jr.check(..., reference=...)`): the checker's witness is
then JAX's derivative of it — mpmath's — and the rule is proved against an independent
reference, not another float64 implementation. It works under `jit` and `vmap` (the callback
loops over the batch on the host); it is for checking, not for speed (each element is an
mpmath evaluation), and it needs `mpmath` installed (`pip install mpmath`; jaxrules' test
extra has it). Derivatives beyond `order` raise `NotImplementedError` naming the order.

Examples:
    >>> import jax, jax.numpy as jnp, mpmath
    >>> from jaxrules.references import mpmath_elementwise
    >>> i1 = mpmath_elementwise(lambda x: mpmath.besseli(1, x), name="i1")
    >>> d2 = jax.grad(jax.grad(lambda x: i1(x)))(jnp.float32(0.0))  # I₁''(0) = 0
    >>> float(d2)
    0.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["mpmath_elementwise"]


def _import_mpmath():
    try:
        import mpmath
    except ImportError:
        raise ImportError(
            "jaxrules.references.mpmath_elementwise needs mpmath: pip install mpmath "
            "(jaxrules' test extra includes it)."
        ) from None
    return mpmath


def _host(f: Callable, partial: tuple[int, ...], dps: int):
    """The callback: `f`'s partial derivative `partial` (all zeros: its value) at each element
    of the broadcast arguments, at `dps` digits, rounded to their dtype."""
    mpmath = _import_mpmath()

    def run(*arrays):
        arrays = np.broadcast_arrays(*(np.asarray(a) for a in arrays))
        out = np.empty(arrays[0].shape, arrays[0].dtype)
        with mpmath.workdps(dps):
            for idx in np.ndindex(out.shape):
                args = [mpmath.mpf(float(a[idx])) for a in arrays]
                if len(args) == 1 and partial[0]:
                    value = mpmath.diff(f, args[0], partial[0])
                elif any(partial):
                    value = mpmath.diff(f, args, partial)
                else:
                    value = f(*args)
                out[idx] = float(mpmath.re(value))
        return out

    return run


@functools.cache
def _build(f: Callable, nargs: int, partial: tuple[int, ...], dps: int, order: int, name: str):
    def value(*xs):
        xs = jnp.broadcast_arrays(*(jnp.asarray(x) for x in xs))
        dtype = jnp.result_type(*xs)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        xs = [x.astype(dtype) for x in xs]
        shape = jax.ShapeDtypeStruct(xs[0].shape, dtype)
        return jax.pure_callback(_host(f, partial, dps), shape, *xs, vmap_method="broadcast_all")

    fn = jax.custom_jvp(value)

    @fn.defjvp
    def _jvp(primals, tangents):
        if sum(partial) >= order:
            raise NotImplementedError(
                f"{name}: mpmath_elementwise(order={order}) gives derivatives up to order "
                f"{order}; this asks for order {sum(partial) + 1}. Raise order=."
            )
        y = fn(*primals)
        dy = jnp.zeros_like(y)
        for i, t in enumerate(tangents):
            step = tuple(p + (j == i) for j, p in enumerate(partial))
            dy = dy + _build(f, nargs, step, dps, order, name)(*primals) * t
        return y, dy

    return fn


def mpmath_elementwise(
    f: Callable, *, nargs: int = 1, dps: int = 40, order: int = 2, name: str | None = None
) -> Callable:
    """`f` (an mpmath function of `nargs` real scalars) as a JAX function: elementwise with
    broadcasting, evaluated on the host at `dps` digits, differentiable to `order` by
    mpmath's high-precision differences. See the module documentation.

    **Arguments:** `f` — e.g. `lambda a, x: mpmath.gammainc(a, 0, x, regularized=True)`;
    `nargs` — how many arguments it takes; `dps` — mpmath's working precision (digits);
    `order` — the highest derivative order it provides; `name` — for error messages.
    """
    if not callable(f):
        raise TypeError(f"mpmath_elementwise: f must be a function, got {type(f).__name__}.")
    if not (isinstance(order, int) and order >= 0):
        raise ValueError(f"mpmath_elementwise: order must be an int >= 0, got {order!r}.")
    _import_mpmath()
    name = name or getattr(f, "__name__", "mpmath reference")
    fn = _build(f, int(nargs), (0,) * int(nargs), int(dps), order, name)

    def reference(*xs):
        if len(xs) != nargs:
            raise TypeError(f"{name}: takes {nargs} argument(s), got {len(xs)}.")
        return fn(*xs)

    return reference
