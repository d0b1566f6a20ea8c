r"""Elementwise rules: the seed tutorial's running example.

`sin_product` is $z = \sin(x)\,y$, elementwise. Differentiating each factor:

$$
\dot z = \cos(x)\,y\,\dot x + \sin(x)\,\dot y .
$$

The map $(\dot x, \dot y) \mapsto \dot z$ is diagonal in each argument, so it is its own
transpose: for an output cotangent $\bar z$,

$$
\bar x = \cos(x)\,y\,\bar z, \qquad \bar y = \sin(x)\,\bar z .
$$
"""

from __future__ import annotations

import jax.numpy as jnp

from .. import _registry as registry
from .. import inputs
from .._custom import custom_vjp

__all__ = ["sin_product"]


@registry.register(
    "sin_product",
    reference=lambda x, y: jnp.sin(x) * y,
    inputs={"x": inputs.general((5,)), "y": inputs.general((5,))},
    bench_inputs=lambda n: {"x": inputs.general((n,)), "y": inputs.general((n,))},
    bench_sizes=(1_000, 100_000, 1_000_000),
    order=2,
    tags=("elementwise",),
)
@custom_vjp
def sin_product(x, y):
    r"""Elementwise $z = \sin(x)\,y$, with both a JVP and a VJP rule.

    **Arguments:** `x`, `y`: arrays of the same shape (or broadcastable scalars).

    **Returns:** `sin(x) * y`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrules.rules import sin_product
        >>> x, y = jnp.array([0.0, 1.0]), jnp.array([2.0, 3.0])
        >>> g = jax.grad(lambda x: sin_product(x, y).sum())(x)  # cos(x) * y
        >>> [round(float(v), 4) for v in g]
        [2.0, 1.6209]
    """
    return jnp.sin(x) * y


@sin_product.defjvp
def _sin_product_jvp(primals, tangents):
    x, y = primals
    dx, dy = tangents
    s, c = jnp.sin(x), jnp.cos(x)
    z = s * y
    # dz = cos(x) y dx + sin(x) dy ; a None tangent is a symbolic zero and costs nothing.
    dz = None
    if dx is not None:
        dz = c * y * dx
    if dy is not None:
        dz = s * dy if dz is None else dz + s * dy
    return z, None if dz is None else jnp.broadcast_to(dz, z.shape)


def _sin_product_fwd(x, y):
    s = jnp.sin(x)
    return s * y, (x, y, s)


def _sin_product_bwd(res, z_bar):
    x, y, s = res
    # Both partials are diagonal, hence self-adjoint: x̄ = cos(x) y z̄, ȳ = sin(x) z̄.
    # Broadcasting in the primal means summing cotangents back to the input shapes.
    x_bar = _unbroadcast(jnp.cos(x) * y * z_bar, jnp.shape(x))
    y_bar = _unbroadcast(s * z_bar, jnp.shape(y))
    return x_bar, y_bar


def _unbroadcast(g, shape):
    extra = g.ndim - len(shape)
    g = jnp.sum(g, axis=tuple(range(extra))) if extra else g
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return jnp.sum(g, axis=axes, keepdims=True) if axes else g


sin_product.defjvp(_sin_product_jvp, zeros_as_none=True)
sin_product.defvjp(_sin_product_fwd, _sin_product_bwd)
