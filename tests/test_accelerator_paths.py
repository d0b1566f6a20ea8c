"""The matrix equations' two paths (issue 29): Bartels–Stewart with JAX's Schur decomposition
(CPU only) and the matrix sign iteration (LU and products: every platform), chosen per platform
by `method="auto"`. Both run here on the CPU; the registry checks both (`cases`), these tests
pin down what the registry does not: agreement with each other and SciPy, the sign path's
documented NaN outside its reach, and which path each platform lowers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl
from jax import export

import jaxrules as jr
from jaxrules.rules import discrete_lyapunov, lyapunov, sylvester


def _problem(n, m, seed=0, dtype="float64"):
    A = jr.inputs.stable(n)(jax.random.key(seed), dtype)
    B = jr.inputs.stable(m)(jax.random.key(seed + 1), dtype)
    C = jr.inputs.general((n, m))(jax.random.key(seed + 2), dtype)
    Ad = jr.inputs.general((n, n), scale=0.9 / np.sqrt(n))(jax.random.key(seed + 3), dtype)
    return A, B, C, Ad


_NAMES = ("sylvester", "lyapunov", "discrete_lyapunov")


def _calls(method):
    s = lambda Y: jnp.sum(jnp.sin(Y))
    return {
        "sylvester": lambda A, B, C, Ad: s(sylvester(A, B, C, method=method)),
        "lyapunov": lambda A, B, C, Ad: s(lyapunov(A, C @ C.T + A, method=method)),
        "discrete_lyapunov": lambda A, B, C, Ad: s(discrete_lyapunov(Ad, C @ C.T, method=method)),
    }


@pytest.mark.parametrize(
    "name, n",
    [
        ("sylvester", 6),  # the fast tier; the others (4 s each) and n = 60 in the slow tier
        *(pytest.param(m, 6, marks=pytest.mark.slow) for m in ("lyapunov", "discrete_lyapunov")),
        *(pytest.param(m, 60, marks=pytest.mark.slow) for m in _NAMES),
    ],
)
def test_the_sign_path_agrees_with_the_schur_path(name, n, x64):
    args = _problem(n, n)  # square: C @ C.T and A share a shape
    f_sign, f_schur = _calls("sign")[name], _calls("schur")[name]
    np.testing.assert_allclose(jax.jit(f_sign)(*args), jax.jit(f_schur)(*args), rtol=1e-11)
    g_sign = jax.jit(jax.grad(f_sign, argnums=(0, 1, 2, 3)))(*args)
    g_schur = jax.jit(jax.grad(f_schur, argnums=(0, 1, 2, 3)))(*args)
    for a, b in zip(g_sign, g_schur):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_the_sign_path_matches_scipy_for_complex_and_float32(x64):
    A, B, C, _ = _problem(7, 4)
    Ac = A + 0.5j * jr.inputs.general((7, 7))(jax.random.key(9), "float64")
    X = sylvester(Ac, B, C, method="sign")
    # SciPy 1.17's solve_sylvester is wrong for a complex A with a real B (residual 0.27 here):
    # give it complex B and C.
    np.testing.assert_allclose(X, sl.solve_sylvester(Ac, B + 0j, C + 0j), rtol=1e-11)
    np.testing.assert_allclose(Ac @ X + X @ B, C, atol=1e-12)
    X32 = sylvester(A.astype("float32"), B.astype("float32"), C.astype("float32"), method="sign")
    assert X32.dtype == jnp.float32
    np.testing.assert_allclose(X32, sl.solve_sylvester(A, B, C), rtol=2e-5, atol=2e-6)
    Q = C[:4, :4]
    P = lyapunov(Ac[:4, :4], Q, method="sign")
    np.testing.assert_allclose(P, sl.solve_continuous_lyapunov(Ac[:4, :4], -Q), rtol=1e-11)


def test_the_sign_path_returns_nan_outside_its_reach_not_a_wrong_answer(x64):
    # Solvable equations (Schur solves them) whose spectra the imaginary axis does not separate.
    A, B, C, _ = _problem(4, 3)
    # A stable, B anti-stable: spectra of A and −B are disjoint, both in the left half-plane.
    X = sylvester(A, -B, C, method="schur")
    np.testing.assert_allclose(A @ X - X @ B, C, atol=1e-10)
    assert np.all(np.isnan(sylvester(A, -B, C, method="sign")))
    grad = jax.grad(lambda A: jnp.sum(sylvester(A, -B, C, method="sign")))(A)
    assert np.all(np.isnan(grad))  # not a silent zero
    # Lyapunov: eigenvalues −1, −2 and 3 (no two sum to zero).
    U = jnp.array([[0.0, 0.5, 0.2], [0.0, 0.0, 0.3], [0.0, 0.0, 0.0]])
    Am = U + jnp.diag(jnp.array([-1.0, -2.0, 3.0]))
    assert np.all(np.isfinite(lyapunov(Am, jnp.eye(3), method="schur")))
    assert np.all(np.isnan(lyapunov(Am, jnp.eye(3), method="sign")))
    # Stein: eigenvalues 0.5 and 3 (product ≠ 1, but one outside the unit circle).
    Ad = U[:2, :2] + jnp.diag(jnp.array([0.5, 3.0]))
    assert np.all(np.isfinite(discrete_lyapunov(Ad, jnp.eye(2), method="schur")))
    assert np.all(np.isnan(discrete_lyapunov(Ad, jnp.eye(2), method="sign")))


@pytest.mark.parametrize(
    "dtype, scales", [("float64", (1e-150, 1e150)), ("float32", (1e-15, 1e15))]
)
def test_the_sign_path_at_any_scale_of_the_operator(dtype, scales):
    # The iteration's scaling μ = (‖A⁻¹‖²/‖A‖²)^(1/4) squared the entries: a stable A of scale
    # 1e-150 (1e-15 in float32) gave inf / NaN. (sA) X + X (sB) = C has the solution X / s.
    with jax.enable_x64(dtype == "float64"):
        A, B, C, _ = _problem(5, 3, dtype=dtype)
        X = sylvester(A, B, C, method="sign")
        rtol = 1e-12 if dtype == "float64" else 1e-5
        for s in scales:
            Xs = s * sylvester(s * A, s * B, C, method="sign")
            np.testing.assert_allclose(Xs, X, atol=rtol * float(jnp.abs(X).max()))
            P, P1 = (lyapunov(t * A[:3, :3], C[:3], method="sign") for t in (s, 1.0))
            np.testing.assert_allclose(s * P, P1, atol=rtol * float(jnp.abs(P1).max()))


def _hlo(fn, platform, *args):
    return export.export(jax.jit(fn), platforms=[platform])(*args).mlir_module()


def test_auto_lowers_schur_on_the_cpu_and_the_sign_iteration_elsewhere():
    A, B, C, _ = _problem(5, 3, dtype="float32")
    auto = lambda A, B, C: sylvester(A, B, C, method="auto")
    cpu = _hlo(auto, "cpu", A, B, C)
    assert "gees" in cpu.lower()  # LAPACK's Schur decomposition
    for platform in ("cuda", "rocm", "tpu"):
        text = _hlo(auto, platform, A, B, C)
        assert "gees" not in text.lower() and "while" in text, platform
    with pytest.raises(Exception, match="schur"):
        _hlo(lambda A, B, C: sylvester(A, B, C, method="schur"), "cuda", A, B, C)


@pytest.mark.parametrize("fn", [sylvester, lyapunov, discrete_lyapunov])
def test_an_unknown_method_names_the_rule_and_the_choices(fn):
    args = (jnp.eye(2), jnp.eye(2), jnp.eye(2))[: 3 if fn is sylvester else 2]
    with pytest.raises(ValueError, match=rf"{fn.__name__}: method must be one of 'auto', "):
        fn(*args, method="qr")
