"""Example-input generators for registered rules.

A generator is any callable `(key, dtype) -> pytree of arrays`; `key` is a JAX PRNG key.
The built-in ones draw in float64 with NumPy (seeded from the key, so a seed reproduces the
same point) and cast to `dtype`. Defaults are deliberately *general*: non-symmetric,
non-normal, no special values, with a controlled condition number. A wrong transpose is
invisible at a symmetric point, and a rule tested only at the identity proves nothing.

Structured generators (`spd`, `symmetric`, `lower`, `upper`) carry a `project`
method: the orthogonal projection onto their subspace, which the checker uses to perturb
such inputs only inside it and to compare cotangents after projection.

Complex dtypes (`complex64`, `complex128`) draw complex points of the same kind: unitary
factors instead of orthogonal ones, Hermitian instead of symmetric (`spd` is Hermitian
positive definite), entries with random phases. A generator with no complex meaning
(`positive`) raises rather than return a real point in a complex dtype.

Examples:
    >>> import jax, jaxrules as jr
    >>> A = jr.inputs.general((3, 3), cond=5.0)(jax.random.key(0), "float32")
    >>> A.shape, str(A.dtype)
    ((3, 3), 'float32')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._dtypes import double, normal

__all__ = [
    "Generator",
    "fixed",
    "general",
    "integer",
    "lower",
    "orthogonal",
    "positive",
    "positive_stable",
    "probability",
    "spd",
    "stable",
    "symmetric",
    "upper",
    "well_conditioned",
    "with_eigenvalues",
    "with_singular_values",
]


def _rng(key) -> np.random.Generator:
    if isinstance(key, (int, np.integer)):
        return np.random.default_rng(int(key))
    data = np.asarray(jax.random.key_data(key)).ravel()
    return np.random.default_rng([int(d) for d in data])


class Generator:
    """A named example-input generator: `gen(key, dtype) -> array`.

    `project` (identity unless the generator is structured) maps a tangent or cotangent onto
    the subspace the inputs live in. `complex_draw`: the draw for complex dtypes; without it,
    a complex dtype uses `draw` and must get complex values from it (a real point cast to
    complex would check only the real axis: that is an error). `scalable`: multiplying a
    draw by a positive number keeps it a valid input (true of every built-in generator but
    `orthogonal` and `integer`), so the checker may use `scaled` copies to check the rule at
    large and small magnitudes.
    """

    def __init__(
        self,
        name: str,
        draw: Callable[[np.random.Generator], np.ndarray],
        project=None,
        *,
        complex_draw: Callable[[np.random.Generator], np.ndarray] | None = None,
        scalable: bool = False,
    ):
        self.name = name
        self._draw = draw
        self._project = project
        self._complex_draw = complex_draw
        self.scalable = scalable

    def scaled(self, factor: float) -> Generator:
        """The same draws times `factor` (> 0): the same structure at another magnitude.

        Examples:
            >>> import jax, jaxrules as jr
            >>> g = jr.inputs.general((3,))
            >>> big = g.scaled(100.0)(jax.random.key(0), "float32")
            >>> bool(abs(big / g(jax.random.key(0), "float32") - 100).max() < 1e-3)
            True
        """
        if not self.scalable:
            raise ValueError(
                f"{self.name}: its draws are not valid inputs at another magnitude (an "
                "orthogonal matrix, integers), so it cannot be scaled."
            )
        factor = float(factor)
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError(f"{self.name}: scaled() needs a finite factor > 0, got {factor}.")
        times = lambda draw: None if draw is None else (lambda rng: factor * draw(rng))
        return Generator(
            f"{self.name}.scaled({factor!r})",
            times(self._draw),
            self._project,
            complex_draw=times(self._complex_draw),
            scalable=True,
        )

    @property
    def structured(self) -> bool:
        return self._project is not None

    def project(self, x):
        return x if self._project is None else self._project(x)

    def __call__(self, key, dtype: Any = "float32"):
        dt = jnp.dtype(dtype)
        if jnp.issubdtype(dt, jnp.inexact) and double(dt) and not jax.config.jax_enable_x64:
            raise ValueError(
                f"{self.name}: {dt.name} inputs were requested but JAX's 64-bit mode is off, so "
                "they would silently become 32-bit. Draw them inside `with jax.enable_x64():`."
            )
        cplx = jnp.issubdtype(dt, jnp.complexfloating)
        draw = self._complex_draw if cplx and self._complex_draw is not None else self._draw
        x = np.asarray(draw(_rng(key)))
        if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
            return jnp.asarray(x)
        if cplx:
            if not np.iscomplexobj(x):
                raise TypeError(
                    f"{self.name}: {dt.name} inputs were requested, but this generator draws "
                    "real values (a real point would check only the real axis). Use a "
                    "generator with a complex version (general, spd, lower, ...) or give "
                    "Generator a complex_draw."
                )
            return jnp.asarray(x, dt)
        if np.iscomplexobj(x):
            raise TypeError(
                f"{self.name}: drew complex values but {dt.name} inputs were requested."
            )
        return jnp.asarray(np.asarray(x, np.float64), dt)

    def __repr__(self):
        return f"jr.inputs.{self.name}"


def _shape(shape) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _both(name: str, draw, project=None) -> Generator:
    """A generator from `draw(rng, cplx)`: its real and complex versions."""
    return Generator(
        name,
        lambda rng: draw(rng, False),
        project,
        complex_draw=lambda rng: draw(rng, True),
        scalable=True,
    )


def _unitary(rng, n: int, cplx: bool, haar: bool = False) -> np.ndarray:
    """An orthogonal (unitary if `cplx`) `n × n` matrix: the Q of a Gaussian's QR; with
    `haar`, R's diagonal phases moved into Q, so that it is Haar-distributed."""
    q, r = np.linalg.qr(normal(rng, (n, n), "complex128" if cplx else "float64"))
    if not haar:
        return q
    d = np.diag(r)
    return q * (d / np.abs(d))


def _svd_matrix(rng, m: int, n: int, cond: float, cplx: bool = False) -> np.ndarray:
    k = min(m, n)
    u, v = _unitary(rng, m, cplx), _unitary(rng, n, cplx)
    s = np.geomspace(1.0, 1.0 / cond, k) if k > 1 else np.ones(1)
    s = rng.permutation(s)
    return (u[:, :k] * s) @ v[:, :k].conj().T


def _general(shape, cond, scale):
    shape = _shape(shape)

    def draw(rng, cplx):
        if len(shape) < 2:
            return scale * normal(rng, shape, "complex128" if cplx else "float64")
        *batch, m, n = shape
        mats = [_svd_matrix(rng, m, n, cond, cplx) for _ in range(int(np.prod(batch, dtype=int)))]
        return scale * np.sqrt(max(m, n)) * np.stack(mats).reshape(shape)

    return draw


def general(shape, *, cond: float = 10.0, scale: float = 1.0) -> Generator:
    """Dense, general inputs: normal vectors; matrices `U·diag(s)·Vᴴ` with condition `cond`.

    Matrices (the last two axes; leading axes are a batch) are scaled by `√max(m, n)` so
    their entries are of order one; singular values are log-spaced in `[1/cond, 1]` and
    shuffled, so nothing is diagonal, symmetric or normal. `U`, `V` are Haar orthogonal
    (unitary for complex dtypes).
    """
    extra = "" if scale == 1.0 else f", scale={scale}"  # (the reproducer's code: every option)
    return _both(f"general({_shape(shape)}, cond={cond}{extra})", _general(shape, cond, scale))


def well_conditioned(shape, *, cond: float = 4.0) -> Generator:
    """`general` with a small condition number (default 4)."""
    return _both(f"well_conditioned({_shape(shape)}, cond={cond})", _general(shape, cond, 1.0))


def _herm(x):
    """The Hermitian part (the symmetric part of a real matrix)."""
    return (x + jnp.conj(jnp.swapaxes(x, -1, -2))) / 2


def spd(n: int, *, cond: float = 10.0) -> Generator:
    """Symmetric positive definite `Q·diag(s)·Qᵀ`, eigenvalues log-spaced in `[n/cond, n]`
    (Hermitian positive definite, `Q` unitary, for complex dtypes).

    Structured: tangents and cotangents are projected onto the Hermitian (symmetric) part.
    """

    def draw(rng, cplx):
        q = _unitary(rng, n, cplx)
        s = rng.permutation(np.geomspace(1.0, 1.0 / cond, n)) * n
        return (q * s) @ q.conj().T

    return _both(f"spd({n}, cond={cond})", draw, project=_herm)


def symmetric(n: int, *, cond: float = 10.0) -> Generator:
    """Symmetric indefinite (Hermitian for complex dtypes): eigenvalues of both signs,
    magnitudes in `[n/cond, n]`."""

    def draw(rng, cplx):
        q = _unitary(rng, n, cplx)
        s = np.geomspace(1.0, 1.0 / cond, n) * n * rng.choice([-1.0, 1.0], n)
        return (q * s) @ q.conj().T

    return _both(f"symmetric({n})", draw, project=_herm)


def with_eigenvalues(values) -> Generator:
    """Symmetric (Hermitian for complex dtypes) `Q·diag(values)·Qᴴ` with a random orthogonal
    (unitary) `Q`: a chosen spectrum, for points where eigenvalues repeat — `[2, 2, 2, 2]` is
    `2I` to rounding, `[3, 1, 1, -2]` a double eigenvalue — at which JAX's derivative of
    `eigh` is not finite. Register such a point with `Case(..., witness="differences")`.

    Structured: tangents and cotangents are projected onto the Hermitian (symmetric) part.

    Examples:
        >>> import jax, numpy as np
        >>> from jaxrules import inputs
        >>> A = inputs.with_eigenvalues([3.0, 1.0, 1.0])(jax.random.key(0), "float32")
        >>> np.round(np.linalg.eigvalsh(A), 5).tolist()
        [1.0, 1.0, 3.0]
    """
    lam = np.asarray(values, dtype=float)

    def draw(rng, cplx):
        q = _unitary(rng, len(lam), cplx)
        return (q * lam) @ q.conj().T

    return _both(f"with_eigenvalues({lam.tolist()})", draw, project=_herm)


def with_singular_values(shape, values) -> Generator:
    """`U·diag(values)·Vᴴ` of shape `(m, n)` with random orthonormal `U`, `V` (`len(values)
    = min(m, n)`): chosen singular values, for points where they repeat, at which JAX's
    derivative of `svd` is not finite."""
    m, n = _shape(shape)
    sv = np.asarray(values, dtype=float)
    if len(sv) != min(m, n):
        raise ValueError(
            f"with_singular_values: {len(sv)} values for a {m}×{n} matrix, which has "
            f"min(m, n) = {min(m, n)} singular values."
        )

    def draw(rng, cplx):
        u, v = _unitary(rng, m, cplx), _unitary(rng, n, cplx)
        return (u[:, : len(sv)] * sv) @ v[:, : len(sv)].conj().T

    return _both(f"with_singular_values({(m, n)}, {sv.tolist()})", draw)


def fixed(values) -> Generator:
    """Exactly these values, every draw (real only): for a registered point where a derivative
    is known to go wrong — `fixed([0.0, 1e-3, -2.5])` puts `x = 0` in the check of a Bessel
    function, whose JAX derivative is wrong there. Scalable (× a factor keeps 0 at 0).

    Examples:
        >>> import jax
        >>> from jaxrules import inputs
        >>> inputs.fixed([0.0, -2.5])(jax.random.key(0), "float32").tolist()
        [0.0, -2.5]
    """
    vals = np.asarray(values, dtype=float)
    return Generator(f"fixed({vals.tolist()})", lambda rng: vals.copy(), scalable=True)


def orthogonal(n: int) -> Generator:
    """A random orthogonal matrix (unitary for complex dtypes; Haar-distributed, via QR with
    the phase correction)."""
    g = _both(f"orthogonal({n})", lambda rng, cplx: _unitary(rng, n, cplx, haar=True))
    g.scalable = False  # a multiple of an orthogonal matrix is not orthogonal
    return g


def positive(shape, *, low: float = 0.5, high: float = 2.0) -> Generator:
    """Entries uniform in `[low, high]` (for logs, square roots, divisions). Real only."""
    shape = _shape(shape)
    return Generator(
        f"positive({shape}, low={low}, high={high})",
        lambda rng: rng.uniform(low, high, shape),
        scalable=True,
    )


def probability(shape, *, low: float = 0.1, high: float = 0.9) -> Generator:
    """Entries uniform in `[low, high]` inside $(0, 1)$: probabilities, the argument of an
    incomplete beta function. Not scalable (a multiple leaves the interval). Real only.

    Examples:
        >>> import jax
        >>> from jaxrules import inputs
        >>> p = inputs.probability((3,))(jax.random.key(0), "float32")
        >>> bool(((p > 0) & (p < 1)).all())
        True
    """
    if not 0 < low <= high < 1:
        raise ValueError(f"probability: need 0 < low <= high < 1, got low={low}, high={high}.")
    shape = _shape(shape)
    return Generator(
        f"probability({shape}, low={low}, high={high})",
        lambda rng: rng.uniform(low, high, shape),
        scalable=False,
    )


def stable(n: int, *, margin: float = 0.5) -> Generator:
    """A general (non-normal) matrix with its spectrum in the left half-plane.

    Built as `M − (max Re λ(M) + margin·√n)·I` from a general `M`: every eigenvalue has
    real part at most `−margin·√n`, as continuous Lyapunov equations need.
    """

    def draw(rng, cplx):
        m = _svd_matrix(rng, n, n, 10.0, cplx) * np.sqrt(n)
        shift = np.max(np.linalg.eigvals(m).real) + margin * np.sqrt(n)
        return m - shift * np.eye(n)

    return _both(f"stable({n})", draw)


def positive_stable(n: int, *, margin: float = 0.5) -> Generator:
    """A general (non-normal) matrix with its spectrum in the right half-plane: `−stable(n)`'s
    mirror image, `M + (margin·√n − min Re λ(M))·I`. No eigenvalue on the closed negative
    real axis, so its principal square root and logarithm are defined and smooth there.
    """

    def draw(rng, cplx):
        m = _svd_matrix(rng, n, n, 10.0, cplx) * np.sqrt(n)
        shift = margin * np.sqrt(n) - np.min(np.linalg.eigvals(m).real)
        return m + shift * np.eye(n)

    return _both(f"positive_stable({n})", draw)


def _triangular(n: int, lower_: bool):
    def draw(rng, cplx):
        kind = "complex128" if cplx else "float64"
        d = rng.uniform(1.0, 2.0, n)
        d = d * (np.exp(1j * rng.uniform(0, 2 * np.pi, n)) if cplx else rng.choice([-1.0, 1.0], n))
        off = normal(rng, (n, n), kind) / np.sqrt(n)
        m = np.tril(off, -1) if lower_ else np.triu(off, 1)
        return m + np.diag(d)

    return draw


def lower(n: int) -> Generator:
    """Lower triangular, diagonal of magnitude in `[1, 2]`: well conditioned.

    Structured: tangents and cotangents are projected with `tril`.
    """
    return _both(f"lower({n})", _triangular(n, True), project=jnp.tril)


def upper(n: int) -> Generator:
    """Upper triangular counterpart of `lower`."""
    return _both(f"upper({n})", _triangular(n, False), project=jnp.triu)


def integer(shape, *, low: int = 0, high: int = 10, dtype: Any = "int32") -> Generator:
    """Integers uniform in `[low, high)` (dtype fixed: not cast to the rule's float dtype)."""
    shape = _shape(shape)
    return Generator(
        f"integer({shape})", lambda rng: rng.integers(low, high, shape).astype(np.dtype(dtype))
    )
