"""Broadcasting without implicit rank promotion.

The rules never rely on NumPy's implicit rank promotion (`(n, k) * (k,)`): a project that runs
with `jax.config.update("jax_numpy_rank_promotion", "raise")` — as JAX's own test suite does —
would get a `ValueError` from inside the library. A table of constants along a new last axis
is given the leading unit axes explicitly instead.
"""

from __future__ import annotations

import jax.numpy as jnp


def along_last(vector, like):
    """`vector` (shape `(k,)`) as `(1, …, 1, k)` with `like`'s rank of unit axes in front: it
    broadcasts against `like[..., None]` with no rank promotion.

    Examples:
        >>> import jax.numpy as jnp
        >>> t = jnp.ones((2, 3))
        >>> (t[..., None] * along_last(jnp.arange(4.0), t)).shape
        (2, 3, 4)
    """
    vector = jnp.asarray(vector)
    return jnp.reshape(vector, (1,) * jnp.ndim(like) + vector.shape)
