"""Dtype helpers for the checker, its witnesses and the input generators: real and complex.

JAX's convention for complex derivatives: a JVP is the real-linear map of the tangent
(`C` as `R²`), and a VJP is its transpose under the *real bilinear* pairing
`⟨a, b⟩ = Re Σ aᵢ bᵢ` — no conjugation (so `grad(lambda z: abs(z) ** 2)(z) == 2 * conj(z)`).
Every rule and check follows it; `pairing` is that pairing.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

INEXACT = ("float64", "float32", "complex128", "complex64")


def is_complex(dtype) -> bool:
    return jnp.issubdtype(jnp.dtype(dtype), jnp.complexfloating)


def real_name(dtype) -> str:
    """The real dtype of the same precision: `complex64` → `float32`."""
    return jnp.finfo(jnp.dtype(dtype)).dtype.name


def double(dtype) -> bool:
    """64-bit (real part) precision: `float64` and `complex128` (run under `enable_x64`)."""
    return real_name(dtype) == "float64"


def wide(x) -> np.ndarray:
    """`x` as a NumPy float64 array, or complex128 if it is complex (never dropping an
    imaginary part)."""
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def normal(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Standard normal draws of `dtype`'s kind: complex ones have independent real and
    imaginary parts of variance ½ each (so `E|z|² = 1`)."""
    if is_complex(dtype):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)
    return rng.standard_normal(shape)


def pairing(a, b) -> float:
    """`Re Σ aᵢ bᵢ`: the pairing under which JAX's VJP is the transpose of its JVP."""
    return float(np.real(np.sum(wide(a) * wide(b))))
