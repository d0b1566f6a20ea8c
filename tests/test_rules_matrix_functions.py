"""`sqrtm` of general matrices (issue 29): against SciPy, where JAX has no derivative, on both
paths (Schur on the CPU, Denman–Beavers elsewhere), at second order, batched, and the domain's
edges (NaN for a real matrix without a real principal root)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl

import jaxrules as jr
from jaxrules.rules import sqrtm
from jaxrules.rules.matrix_functions import _logm_ref, _sqrtm_ref

METHODS = ["schur", "newton"]


def _A(n=6, dtype="float64", seed=0):
    return jr.inputs.positive_stable(n)(jax.random.key(seed), dtype)


def _fd(f, A, E, h=1e-5):
    """Central differences of `f` at `A` along `E`."""
    return (f(A + h * E) - f(A - h * E)) / (2 * h)


def _rotation(theta, r=2.0):
    # Eigenvalues r·e^{±iθ}: for θ > π/2 in the left half-plane, off the negative real axis.
    return r * jnp.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


@pytest.mark.parametrize("method", METHODS)
def test_values_match_scipy(method, x64):
    for dtype in ("float64", "complex128"):
        A = _A(dtype=dtype)
        X = jax.jit(lambda A: sqrtm(A, method=method))(A)
        np.testing.assert_allclose(X, sl.sqrtm(np.asarray(A)), rtol=1e-12, atol=1e-13)
        assert X.dtype == A.dtype
    # Not positive stable: a complex pair in the left half-plane (θ = 2.5), real input.
    A = _rotation(2.5)
    np.testing.assert_allclose(sqrtm(A, method=method), sl.sqrtm(np.asarray(A)), atol=1e-13)
    X32 = sqrtm(_A(dtype="float32"), method=method)
    assert X32.dtype == jnp.float32
    np.testing.assert_allclose(X32, sl.sqrtm(np.asarray(_A())), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("method", METHODS)
def test_gradient_where_jax_has_none(method, x64):
    A = _A()
    loss = lambda f: lambda A: jnp.sum(jnp.sin(f(A)))
    with pytest.raises(NotImplementedError):
        jax.grad(loss(jax.scipy.linalg.sqrtm))(A)
    g = jax.jit(jax.grad(loss(lambda A: sqrtm(A, method=method))))(A)
    np.testing.assert_allclose(g, jax.grad(loss(_sqrtm_ref))(A), rtol=1e-10, atol=1e-12)
    # and against central differences of SciPy's value along a random direction
    E = np.asarray(jr.inputs.general((6, 6))(jax.random.key(3), "float64"))
    fd = _fd(lambda A: np.sum(np.sin(sl.sqrtm(A))), np.asarray(A), E, h=1e-6)
    np.testing.assert_allclose(np.sum(np.asarray(g) * E), fd, rtol=1e-7)


@pytest.mark.slow  # 6-11 s each (`jaxrules check` covers second order in the fast profile too)
@pytest.mark.parametrize("method", METHODS)
def test_second_order_however_jax_reaches_the_rule(method, x64):
    A = _A(4)
    f = lambda A: jnp.sum(jnp.sin(sqrtm(A, method=method)))
    H = jax.hessian(lambda A: jnp.sum(jnp.sin(_sqrtm_ref(A))))(A)
    for how in (jax.hessian(f), jax.jacrev(jax.grad(jax.jit(f))), jax.jacfwd(jax.jacfwd(f))):
        np.testing.assert_allclose(how(A), H, rtol=1e-8, atol=1e-10)


@pytest.mark.slow  # 5 s; `jaxrules check` covers complex dtypes in the fast profile
def test_complex_derivative_is_holomorphic(x64):
    A = _A(4, "complex128")
    f = lambda A: jnp.sum(sqrtm(A) ** 2 + sqrtm(A))
    g = jax.grad(f, holomorphic=True)(A)
    g_ref = jax.grad(lambda A: jnp.sum(_sqrtm_ref(A) ** 2 + _sqrtm_ref(A)), holomorphic=True)(A)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)


def test_the_schur_path_factors_once(x64):
    # The derivative solves X Ẋ + Ẋ X = Ȧ with the primal's Schur vectors: one decomposition for
    # the value, the gradient and the Hessian.
    from test_rules_linalg import _count

    A = _A(4)
    f = lambda A: jnp.sum(jnp.sin(sqrtm(A, method="schur")))
    for fn in (f, jax.grad(f), jax.hessian(f)):
        assert _count(fn, A, names=["schur"])["schur"] == 1


def test_batched_like_jnp_linalg(x64):
    As = jnp.stack([_A(3, seed=s) for s in range(4)]).reshape(2, 2, 3, 3)
    X = sqrtm(As)
    assert X.shape == (2, 2, 3, 3)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(X[i, j], sl.sqrtm(np.asarray(As[i, j])), rtol=1e-12)
    g = jax.grad(lambda As: jnp.sum(sqrtm(As)))(As)
    np.testing.assert_allclose(g[1, 0], jax.grad(lambda A: jnp.sum(sqrtm(A)))(As[1, 0]))


@pytest.mark.parametrize("method", METHODS)
def test_no_real_root_is_nan_and_complex_input_gives_scipys_root(method, x64):
    A = jnp.array([[-1.0, 0.3, 0.1], [0.0, 2.0, 0.5], [0.0, 0.2, 3.0]])  # eigenvalue −1
    assert np.all(np.isnan(sqrtm(A, method=method)))
    assert np.all(np.isnan(jax.grad(lambda A: jnp.sum(sqrtm(A, method=method)))(A)))
    Xc = sqrtm(A.astype(jnp.complex128), method="schur")
    np.testing.assert_allclose(Xc, sl.sqrtm(np.asarray(A)), atol=1e-13)


def test_errors_name_the_rule_and_argument():
    with pytest.raises(
        ValueError, match=r"sqrtm: A must be a square matrix of shape \(\.\.\., n, n\)"
    ):
        sqrtm(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sqrtm: method must be one of 'auto', 'schur', 'newton'"):
        sqrtm(jnp.eye(2), method="sign")


# -- polar ----------------------------------------------------------------------------------------
def _orthogonal(n, seed=0):
    return jnp.asarray(np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0])


@pytest.mark.parametrize("shape", [(4, 4), (6, 3)])
def test_polar_matches_jax_and_is_a_polar_decomposition(shape, x64):
    A = jr.inputs.general(shape)(jax.random.key(1), "float64")
    U, P = jax.jit(jr.rules.polar)(A)
    U_jax, P_jax = jax.scipy.linalg.polar(A, method="svd")
    np.testing.assert_allclose(U, U_jax, atol=1e-13)
    np.testing.assert_allclose(P, P_jax, atol=1e-13)
    np.testing.assert_allclose(U.T @ U, np.eye(shape[1]), atol=1e-13)
    np.testing.assert_allclose(U @ P, A, atol=1e-13)


def _polar_loss(A):
    U, P = jr.rules.polar(A)
    return jnp.sum(jnp.sin(U) * jnp.arange(U.size).reshape(U.shape)) + jnp.sum(jnp.cos(P))


def test_polar_derivatives_at_repeated_singular_values(x64):
    # A = 2Q (all singular values 2) and a matrix with a double singular value: first and second
    # derivatives against central differences of the value (of the gradient).
    Q = _orthogonal(4)
    A2 = Q @ jnp.diag(jnp.array([3.0, 2.0, 2.0, 1.0])) @ _orthogonal(4, 1).T
    E = jr.inputs.general((4, 4))(jax.random.key(2), "float64")
    for A in (2.0 * Q, A2):
        g = jax.jit(jax.grad(_polar_loss))(A)
        np.testing.assert_allclose(jnp.sum(g * E), _fd(_polar_loss, A, E), rtol=1e-8)
        hvp = jax.jvp(jax.grad(_polar_loss), (A,), (E,))[1]
        np.testing.assert_allclose(hvp, _fd(jax.grad(_polar_loss), A, E), rtol=1e-6, atol=1e-8)
    # JAX's own: through its SVD (NaN on JAX 0.12; finite on 0.10.2 — and wrong there?), and
    # its default QDWH method has no reverse mode.
    jax_loss = lambda A: jnp.sum(jnp.sin(jax.scipy.linalg.polar(A, method="svd")[0]))
    ours = lambda A: jnp.sum(jnp.sin(jr.rules.polar(A)[0]))
    g_jax, g = jax.grad(jax_loss)(2.0 * Q), jax.grad(ours)(2.0 * Q)
    assert not np.allclose(g_jax, g, atol=1e-6)  # NaN, or wrong
    with pytest.raises(ValueError, match="Reverse-mode"):
        jax.grad(lambda A: jnp.sum(jax.scipy.linalg.polar(A)[0]))(2.0 * Q)


def test_polar_batched_and_errors(x64):
    As = jr.inputs.general((2, 3, 5, 3))(jax.random.key(3), "float64")
    U, P = jr.rules.polar(As)
    assert U.shape == (2, 3, 5, 3) and P.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(U[1, 2], jr.rules.polar(As[1, 2])[0], atol=1e-14)
    with pytest.raises(ValueError, match=r"polar: A must be a matrix of shape \(\.\.\., m, n\) "):
        jr.rules.polar(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"polar: A is complex"):
        jr.rules.polar(jnp.eye(2, dtype=jnp.complex64))
    # rank-deficient: no derivative, and none is invented
    g = jax.grad(lambda A: jnp.sum(jr.rules.polar(A)[0]))(jnp.array([[1.0, 0.0], [0.0, 0.0]]))
    assert not np.all(np.isfinite(g))


@pytest.mark.parametrize("shape, rank", [((5, 5), 3), ((6, 3), 2)])
def test_polar_of_a_rank_deficient_matrix_has_nan_derivatives(shape, rank, x64):
    # A product of rank `rank`: its smallest singular values are rounding (1e-16), not 0, and
    # the rule's 1/σ gave derivatives of 1e14 — finite, silent, and meaningless (no derivative
    # exists there). The value is one valid polar decomposition.
    m, n = shape
    A = _general((m, rank)) @ _general((rank, n), seed=1)
    U, P = jr.rules.polar(A)
    np.testing.assert_allclose(U @ P, A, atol=1e-13)
    np.testing.assert_allclose(U.T @ U, np.eye(n), atol=1e-13)
    np.testing.assert_allclose(P, sl.polar(np.asarray(A))[1], atol=1e-13)
    dU, dP = jax.jvp(jr.rules.polar, (A,), (_general(shape, seed=2),))[1]
    assert np.isnan(dU).all() and np.isnan(dP).all()
    assert np.isnan(jax.grad(lambda A: jnp.sum(jnp.sin(jr.rules.polar(A)[0])))(A)).all()


# -- logm -----------------------------------------------------------------------------------------
def test_logm_values_match_scipy(x64):
    assert not hasattr(jax.scipy.linalg, "logm")  # JAX has none (0.10.2, 0.12)
    cases = [
        _A(),
        _A(dtype="complex128"),
        _rotation(2.5),  # a complex pair in the left half-plane
        1000.0 * _A(),  # several more square roots
        0.001 * _A(),
    ]
    for A in cases:
        X = jax.jit(jr.rules.logm)(A)
        ref = sl.logm(np.asarray(A))
        np.testing.assert_allclose(X, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        tol = 1e-11 * np.abs(A).max()  # expm's own error, relative to the matrix
        np.testing.assert_allclose(jax.scipy.linalg.expm(X), A, rtol=1e-10, atol=tol)
    X32 = jr.rules.logm(_A(dtype="float32"))
    assert X32.dtype == jnp.float32
    np.testing.assert_allclose(X32, sl.logm(np.asarray(_A())), rtol=1e-5, atol=1e-5)


def test_logm_gradient_against_central_differences(x64):
    A = _A()
    loss = lambda A: jnp.sum(jnp.sin(jr.rules.logm(A)))
    g = jax.jit(jax.grad(loss))(A)  # (against the reference: `jaxrules check`, slow tier)
    E = np.asarray(jr.inputs.general((6, 6))(jax.random.key(4), "float64"))
    fd = _fd(lambda A: np.sum(np.sin(sl.logm(A))), np.asarray(A), E, h=1e-6)
    np.testing.assert_allclose(np.sum(np.asarray(g) * E), fd, rtol=1e-7)
    # tr log A = log det A: its gradient is A⁻ᵀ, also for a rotation-like A
    for A in (_A(), _rotation(2.5)):
        g = jax.grad(lambda A: jnp.trace(jr.rules.logm(A)))(A)
        np.testing.assert_allclose(g, jnp.linalg.inv(A).T, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # 10-20 s
def test_logm_second_order(x64):
    A = _A(4)
    f = lambda A: jnp.sum(jnp.sin(jr.rules.logm(A)))
    H = jax.hessian(lambda A: jnp.sum(jnp.sin(_logm_ref(A))))(A)
    for how in (jax.hessian(f), jax.jacfwd(jax.grad(jax.jit(f)))):
        np.testing.assert_allclose(how(A), H, rtol=1e-8, atol=1e-10)


def _pade_backward_error_bound(theta, u):
    """`Σₖ |cₖ| θᵏ / u` for `h(y) = (e^{r(y)} − 1 − y)/y = Σₖ cₖ yᵏ`, `r` the 8-point
    Gauss–Legendre rule for `log(1 + y)` in exact arithmetic (nodes refined in mpmath): at most 1
    where `‖Y‖₁ ≤ θ` makes `r(Y)` the logarithm of `I + Y + ΔY` with `‖ΔY‖₁ ≤ u ‖Y‖₁`."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        nodes = []
        for t in np.polynomial.legendre.leggauss(8)[0]:
            t = mp.mpf(t)
            for _ in range(4):  # Newton on P₈
                t -= mp.legendre(8, t) / mp.diff(lambda z: mp.legendre(8, z), t)
            w = 1 / ((1 - t**2) * mp.diff(lambda z: mp.legendre(8, z), t) ** 2)  # on [0, 1]
            nodes.append(((1 + t) / 2, w))
        K = 160  # r's radius of convergence is 1/max xⱼ ≈ 1.02: ample at θ < 0.8
        a = [mp.mpf(0)] + [sum(w * (-x) ** (k - 1) for x, w in nodes) for k in range(1, K + 2)]
        b = [mp.mpf(1)]  # e^{r}: n bₙ = Σₖ k aₖ bₙ₋ₖ
        for n in range(1, K + 2):
            b.append(sum(k * a[k] * b[n - k] for k in range(1, n + 1)) / n)
        c = [b[1] - 1, *b[2:]]
        return float(sum(abs(ck) * mp.mpf(theta) ** k for k, ck in enumerate(c)) / mp.mpf(u))


@pytest.mark.parametrize("precision", ["double", "single"])
def test_logm_roots_stop_where_the_pade_backward_error_is_the_unit_roundoff(precision, x64):
    # θ (how close to I the roots must come) is the largest ‖Y‖₁ with backward error ≤ u: within
    # 1% of it, and at it the value and the derivative are as accurate as SciPy's. No root is
    # taken at ‖A − I‖₁ = θ (before: θ = 1/4 in every precision, a root more than needed in
    # float64 for the registry's inputs at n = 200, two in float32; each root costs a
    # Denman–Beavers loop and, in the derivative, a Sylvester solve).
    from jaxrules.rules import matrix_functions as mf

    theta = mf._LOG_THETA[precision]
    u = 2.0**-53 if precision == "double" else 2.0**-24
    assert _pade_backward_error_bound(theta, u) <= 1 < _pade_backward_error_bound(1.01 * theta, u)
    dtype = "float64" if precision == "double" else "float32"
    G = np.asarray(jr.inputs.general((6, 6))(jax.random.key(5), "float64"))
    M = -(np.eye(6) + 0.2 * G)  # eigenvalues near −1: the rule's worst side
    A = np.eye(6) + theta * M / np.abs(M).sum(axis=0).max()
    E = np.asarray(jr.inputs.general((6, 6))(jax.random.key(6), "float64"))
    A_, E_ = jnp.asarray(A, dtype), jnp.asarray(E, dtype)
    assert int(mf._logm_primal(A_)[2]) == 0  # s: no root
    X, dX = jax.jit(lambda A, E: jax.jvp(jr.rules.logm, (A,), (E,)))(A_, E_)
    block = sl.logm(np.block([[A, E], [np.zeros_like(A), A]]))  # [[log A, L(A, E)], [0, log A]]
    tol = 1e-13 if precision == "double" else 2e-6
    np.testing.assert_allclose(X, block[:6, :6], rtol=tol, atol=tol)
    np.testing.assert_allclose(dX, block[:6, 6:], rtol=tol, atol=tol)


def test_logm_derivatives_factor_nothing_the_primal_has_not(x64):
    # The quadrature's inverses come from the primal (it solves with no factors of its own),
    # and each root's Sylvester equation R Ė + Ė R = Ė' (B is A) inverts one matrix per sign
    # step: in the JVP and the gradient the only LUs beyond the primal's are the sign loop's,
    # one in its body and one in its transpose's (traced into `custom_linear_solve`'s
    # parameters). Before: 16 more (the quadrature factored Q and Qᵀ again) and two per loop
    # body.
    from test_rules_linalg import _count

    from jaxrules.rules import logm

    A, E = _A(4), _A(4, seed=1)
    primal = _count(logm, A, names=["lu"])["lu"]
    jvp = lambda A, E: jax.jvp(logm, (A,), (E,))
    grad = jax.grad(lambda A: jnp.sum(jnp.sin(logm(A))))
    assert _count(jvp, A, E, names=["lu"])["lu"] == primal + 2
    assert _count(grad, A, names=["lu"])["lu"] == primal + 2
    newton = lambda A: sqrtm(A, method="newton")
    primal = _count(newton, A, names=["lu"])["lu"]
    assert _count(lambda A, E: jax.jvp(newton, (A,), (E,)), A, E, names=["lu"])["lu"] == primal + 2


def test_logm_domain_batching_and_errors(x64):
    A = jnp.array([[-1.0, 0.3, 0.1], [0.0, 2.0, 0.5], [0.0, 0.2, 3.0]])  # eigenvalue −1
    assert np.all(np.isnan(jr.rules.logm(A)))
    assert np.all(np.isnan(jax.grad(lambda A: jnp.sum(jr.rules.logm(A)))(A)))
    As = jnp.stack([_A(3, seed=s) for s in range(4)]).reshape(2, 2, 3, 3)
    X = jr.rules.logm(As)
    np.testing.assert_allclose(X[1, 1], sl.logm(np.asarray(As[1, 1])), rtol=1e-12, atol=1e-13)
    # reverse mode of the batched rule (JAX cannot transpose a batched `cond`: the rule avoids it)
    g = jax.grad(lambda As: jnp.sum(jr.rules.logm(As)))(As)
    np.testing.assert_allclose(g[0, 1], jax.grad(lambda A: jnp.sum(jr.rules.logm(A)))(As[0, 1]))
    with pytest.raises(ValueError, match=r"logm: A must be a square matrix"):
        jr.rules.logm(jnp.ones((2, 3)))


def test_logm_of_a_very_non_normal_matrix(x64):
    # Eigenvalues in 0.5–2, off-diagonal entries ~30: ‖log A‖₁ = 7e4, so A^(1/2^s) is within
    # θ of I only from s = 18 roots. With at most 12 the value and derivatives were NaN (outside
    # the documented domain); now at most 24.
    rng = np.random.default_rng(1)
    A = np.triu(rng.standard_normal((6, 6)), 1) * 30 + np.diag(rng.uniform(0.5, 2, 6))
    want = sl.logm(A)
    assert np.abs(want).sum(0).max() > 0.33 * 2**12  # more than 12 roots needed
    X = jr.rules.logm(jnp.asarray(A))
    np.testing.assert_allclose(X, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    E = jnp.asarray(rng.standard_normal((6, 6)))
    _, dX = jax.jvp(jr.rules.logm, (jnp.asarray(A),), (E,))
    # The Fréchet derivative from SciPy: log [[A, E], [0, A]] = [[log A, L(A, E)], [0, log A]].
    frechet = sl.logm(np.block([[A, np.asarray(E)], [np.zeros_like(A), A]]))[:6, 6:]
    np.testing.assert_allclose(dX, frechet, rtol=1e-8, atol=1e-8 * np.abs(frechet).max())


# -- fractional_matrix_power ----------------------------------------------------------------------
def test_fractional_matrix_power_matches_scipy_and_differentiates_in_a_and_p(x64):
    fmp = jr.rules.fractional_matrix_power
    A = _A(5)
    for p in (0.5, -1.3, 2.7):
        ref = sl.fractional_matrix_power(np.asarray(A), p)
        np.testing.assert_allclose(fmp(A, p), ref, rtol=1e-11, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(fmp(A, 0.5), sqrtm(A), rtol=1e-12)
    np.testing.assert_allclose(fmp(A, -1.0), jnp.linalg.inv(A), rtol=1e-11, atol=1e-13)
    # d/dp A^p = log(A) A^p; d/dA against central differences of SciPy's value
    dp = jax.jacfwd(fmp, argnums=1)(A, 0.7)
    np.testing.assert_allclose(dp, jr.rules.logm(A) @ fmp(A, 0.7), rtol=1e-10, atol=1e-12)
    E = np.asarray(jr.inputs.general((5, 5))(jax.random.key(5), "float64"))
    g = jax.grad(lambda A: jnp.sum(jnp.sin(fmp(A, 0.7))))(A)
    f = lambda A: np.sum(np.sin(sl.fractional_matrix_power(A, 0.7)))
    fd = _fd(f, np.asarray(A), E, h=1e-6)
    np.testing.assert_allclose(np.sum(np.asarray(g) * E), fd, rtol=1e-7)
    with pytest.raises(ValueError, match=r"fractional_matrix_power: p must be a scalar"):
        fmp(A, jnp.ones(2))
    X32 = fmp(_A(5, "float32"), np.float64(0.5))  # a float64 p does not widen a float32 A
    assert X32.dtype == jnp.float32


# -- expm ----------------------------------------------------------------------------------------
def _general(shape, dtype="float64", seed=0):
    return jr.inputs.general(shape)(jax.random.key(seed), dtype)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_expm_value_and_frechet_match_scipy(scale, x64):
    from jaxrules.rules import expm

    for dtype in ("float64", "complex128"):
        A, E, G = (scale * _general((6, 6), dtype, s) for s in range(3))
        A, E, G = A, E / scale, G / scale
        X, L = jax.jit(lambda A, E: jax.jvp(expm, (A,), (E,)))(A, E)
        Xs, Ls = sl.expm_frechet(np.asarray(A), np.asarray(E))
        np.testing.assert_allclose(X, Xs, rtol=1e-12 * max(scale, 1), atol=0)
        np.testing.assert_allclose(L, Ls, rtol=1e-11 * max(scale, 1), atol=0)
        # The VJP is L(Aᵀ, Ḡ) (JAX's bilinear pairing, also for complex A): ⟨Ḡ, L(A, E)⟩.
        (A_bar,) = jax.vjp(expm, A)[1](G)
        np.testing.assert_allclose(
            np.sum(np.asarray(A_bar) * np.asarray(E)), np.sum(np.asarray(G) * Ls), rtol=1e-11
        )
    X32 = expm(_general((6, 6), "float32"))
    assert X32.dtype == jnp.float32
    np.testing.assert_allclose(X32, sl.expm(np.asarray(_general((6, 6)))), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-13), ("float32", 3e-5)])
def test_expm_where_the_norm_is_just_past_a_scaling_threshold(dtype, rtol, x64):
    # s = ⌈log₂(‖A‖₁/θ)⌉ squarings keep ‖2⁻ˢA‖₁ ≤ θ, where the Padé approximant is exact to
    # the unit roundoff. ⌊·⌋ (as jax.scipy.linalg.expm) leaves norms up to 2θ: for a normal
    # matrix (spectral radius = norm) the value and its Fréchet derivative were 1e-8 off in
    # float64 and 9e-3 in float32, and e^20 as a 1 × 1 matrix 4e-8.
    from jaxrules.rules import expm
    from jaxrules.rules.matrix_exponential import _THETA, _degree

    theta = _THETA[_degree(jnp.dtype(dtype))]
    M = np.asarray(_general((4, 4)))
    M = M + M.T + 3 * np.eye(4)
    M /= np.abs(M).sum(0).max()
    E = np.asarray(_general((4, 4), seed=1))
    norms = theta * np.array([0.9, 1.1, 1.5, 1.9, 2.5, 3.5, 7.0, 14.0])
    As = norms[:, None, None] * M
    X, L = jax.jit(jax.vmap(lambda A: jax.jvp(expm, (A,), (jnp.asarray(E, dtype),))))(
        jnp.asarray(As, dtype)
    )
    for A, x, dx in zip(As, X, L):
        Xs, Ls = sl.expm_frechet(A, E)
        np.testing.assert_allclose(x, Xs, rtol=rtol, atol=rtol * np.abs(Xs).max())
        np.testing.assert_allclose(dx, Ls, rtol=rtol, atol=rtol * np.abs(Ls).max())
    for x in (20.0, -9.0):
        np.testing.assert_allclose(expm(jnp.full((1, 1), x, dtype))[0, 0], np.exp(x), rtol=rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_expm_squares_no_more_than_the_pade_bound_needs(dtype, x64):
    # s = ⌊log₂(‖A‖₁/θ)⌋ (JAX's count, ‖B‖₁ ≤ 2θ), plus one where α = max(‖B⁴‖₁^(1/4),
    # ‖B⁶‖₁^(1/6)) > θ: α bounds the Padé approximant's backward error as ‖B‖₁ does. For a
    # general matrix α ≪ ‖B‖₁, and ⌈·⌉ (the rule before) squared once more than needed —
    # three products of the JVP, and a little accuracy (float32 at n = 200: 1.3e-6 vs 2.7e-6).
    # For a normal matrix α is its 2-norm, near ‖B‖₁: ⌈·⌉ (the threshold test above).
    from jaxrules.rules import expm
    from jaxrules.rules.matrix_exponential import _THETA, _degree, _pieces

    theta = _THETA[_degree(jnp.dtype(dtype))]
    A = 2.0 * _general((50, 50), dtype)
    ratio = float(np.abs(np.asarray(A, np.float64)).sum(0).max()) / theta
    assert np.ceil(np.log2(ratio)) > np.floor(np.log2(ratio)) >= 1
    assert int(_pieces(A).s) == np.floor(np.log2(ratio))
    A64 = np.asarray(A, np.float64)
    rtol = 1e-14 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(
        jax.jit(expm)(A), sl.expm(A64), rtol=0, atol=rtol * np.abs(sl.expm(A64)).max()
    )
    M = np.asarray(_general((4, 4)))
    M = M + M.T + 3 * np.eye(4)
    M *= 1.5 * theta / np.abs(M).sum(0).max()  # ‖M‖₁ = 1.5θ, ‖M‖₂ > θ: one squaring
    assert np.linalg.norm(M, 2) > theta
    assert int(_pieces(jnp.asarray(M, dtype)).s) == 1


@pytest.mark.parametrize(
    "dtype, rtol, rtol_2", [("float64", 1e-12, 3e-11), ("float32", 5e-4, 5e-4)]
)
def test_expm_of_a_triangular_non_normal_matrix(dtype, rtol, rtol_2, x64):
    # e^A of a triangular A is triangular, but a pivoted LU of the Padé denominator (of Qᵀ
    # here, of Q in JAX's expm) leaves rounding of size u‖R‖ in the zero triangle, which the
    # squarings of a non-normal A amplify: an upper triangular 4 × 4 with off-diagonal entries
    # of 1e3 was 1.8e-9 off in float64 and 240 % in float32 (1e-9 and 130 % in JAX's for the
    # lower triangular one). The zero triangle of A is now zero in R: 7.5e-15, 1.5e-5.
    import mpmath

    from jaxrules.rules import expm

    rng = np.random.default_rng(0)
    T = np.triu(rng.uniform(-1, 1, (4, 4)))
    mpmath.mp.dps = 30
    for b in (1e3, 1e4):
        U = np.diag(np.diag(T)) + b * np.triu(T, 1)
        for A in (U, U.T):
            X = np.array(mpmath.expm(mpmath.matrix(A.tolist())).tolist(), dtype=float)
            x = np.asarray(jax.jit(expm)(jnp.asarray(A, dtype)), np.float64)
            np.testing.assert_allclose(x, X, rtol=0, atol=rtol * np.abs(X).max())
    # The zeroing is of the value only: second derivatives in every direction, as JAX's.
    f = lambda expm: lambda A: jnp.sum(jnp.sin(expm(A)))
    T, E = jnp.asarray(T, dtype), jnp.asarray(rng.standard_normal((4, 4)), dtype)
    hvp = lambda expm: jax.jvp(jax.grad(f(expm)), (T,), (E,))[1]  # E: not triangular
    np.testing.assert_allclose(hvp(expm), hvp(jax.scipy.linalg.expm), atol=30 * rtol)
    # [[1, b], [0, −1]]: e^A = [[e, b sinh 1], [0, 1/e]]; b = 1e6 needs 17 squarings (NaN
    # before), whose rounding grows with each (float64 8e-12; SciPy's α-scaling needs none).
    for b in (1e4, 1e6):
        x = expm(jnp.asarray([[1.0, b], [0.0, -1.0]], dtype))
        X = np.array([[np.e, b * np.sinh(1.0)], [0.0, np.exp(-1.0)]])
        np.testing.assert_allclose(x, X, rtol=0, atol=rtol_2 * np.abs(X).max())


def test_expm_second_order_in_every_mode(x64):
    from jaxrules.rules import expm

    A = _general((4, 4))
    f = lambda expm: lambda A: jnp.sum(jnp.sin(expm(A)))
    ours, jaxs = f(expm), f(jax.scipy.linalg.expm)
    np.testing.assert_allclose(jax.hessian(ours)(A), jax.hessian(jaxs)(A), atol=1e-12)
    gg = lambda f: jax.grad(lambda A: jnp.sum(jax.grad(f)(A) ** 2))  # reverse over reverse
    np.testing.assert_allclose(gg(ours)(A), gg(jaxs)(A), atol=1e-12)
    stack = jnp.stack([_general((4, 4), seed=s) for s in range(3)])
    np.testing.assert_allclose(
        jax.vmap(jax.grad(ours))(stack), jax.vmap(jax.grad(jaxs))(stack), atol=1e-12
    )
    np.testing.assert_allclose(expm(stack), jax.vmap(jax.scipy.linalg.expm)(stack), atol=1e-12)


def test_expm_reverse_mode_keeps_no_tape_and_factors_once(x64):
    from jaxrules.rules import expm

    A = _general((5, 5))
    loss = lambda f: lambda A: jnp.sum(jnp.sin(f(A)))
    from test_rules_linalg import _count

    for fn in (jax.grad(loss(expm)), lambda A: jax.jvp(expm, (A,), (A,))):
        assert _count(fn, A, names=["lu"])["lu"] == 1
    # Residuals of the VJP: the pieces (a handful of n×n matrices), not 16 squarings' worth.
    res = jax.vjp(expm, A)[1]
    leaves = [x for x in jax.tree_util.tree_leaves(res) if getattr(x, "ndim", 0) >= 2]
    assert sum(x.size for x in leaves) <= 12 * A.size


def _rate_matrix(n, seed=0):
    """A continuous-time Markov chain's generator (rates in [0.1, 1], rows summing to 0) and
    its stationary distribution π (πᵀQ = 0): the rows of e^(tQ) tend to πᵀ."""
    rng = np.random.default_rng(seed)
    Q = rng.uniform(0.1, 1.0, (n, n))
    np.fill_diagonal(Q, 0.0)
    Q -= np.diag(Q.sum(1))
    w, V = np.linalg.eig(Q.T)
    pi = np.real(V[:, np.argmin(np.abs(w))])
    return Q, pi / pi.sum()


@pytest.mark.parametrize("dtype, t, rtol", [("float64", 1e6, 1e-9), ("float32", 1e5, 3e-2)])
def test_expm_of_a_rate_matrix_at_long_times(dtype, t, rtol, x64):
    # e^(tQ) at t·‖Q‖₁ beyond 2¹⁶θ needs more than 16 squarings: the value was NaN (as
    # jax.scipy.linalg.expm's) where the answer is finite and plain — every row the stationary
    # distribution — and the JVP and gradient were finite and wrong (the squarings' tangent
    # loop stopped at 16 with no NaN). Up to 64 squarings now, all three right; the error
    # grows as ‖tQ‖·u, as SciPy's (float64 1.1e-10 at t = 1e6).
    from jaxrules.rules import expm

    Q, pi = _rate_matrix(4)
    E = np.asarray(_general((4, 4), seed=1))
    A = jnp.asarray(t * Q, dtype)
    P, L = jax.jvp(expm, (A,), (jnp.asarray(E, dtype),))
    g = jax.grad(lambda A: expm(A)[0, 1])(A)
    Ls = sl.expm_frechet(t * Q, E, compute_expm=False)
    gs = sl.expm_frechet(t * Q.T, np.outer(np.eye(4)[0], np.eye(4)[1]), compute_expm=False)
    np.testing.assert_allclose(P, np.broadcast_to(pi, (4, 4)), rtol=rtol, atol=0)
    np.testing.assert_allclose(L, Ls, rtol=0, atol=rtol * np.abs(Ls).max())
    np.testing.assert_allclose(g, gs, rtol=0, atol=rtol * np.abs(gs).max())


def test_expm_overflowing_scaling_is_nan_and_errors_name_the_rule(x64):
    from jaxrules.rules import expm

    # e^A overflows: inf. Its eigenvalues 2e12 and 0 need 39 squarings; with −A, e^A is the
    # projection onto A's kernel, [[1, −1], [−1, 1]] / 2, to ‖A‖₁u.
    assert np.isposinf(expm(jnp.full((2, 2), 1e12))).all()
    np.testing.assert_allclose(expm(jnp.full((2, 2), -1e12)), [[0.5, -0.5], [-0.5, 0.5]], rtol=1e-3)
    # Beyond 64 squarings (‖A‖₁ > 2⁶⁴θ): NaN, the derivatives too (no silent finite tangent).
    A = jnp.full((2, 2), 1e30)
    X, dX = jax.jvp(expm, (A,), (jnp.eye(2),))
    assert np.isnan(X).all() and np.isnan(dX).all()
    assert np.isnan(jax.grad(lambda A: expm(A)[0, 0])(A)).all()
    with pytest.raises(ValueError, match=r"expm: A must be a square matrix"):
        expm(jnp.ones((2, 3)))


def test_polar_of_a_matrix_with_an_infinite_entry_is_nan(x64):
    # LAPACK's SVD (jnp.linalg.svd, JAX 0.10.2 and 0.12, CPU) never returns for a matrix with an
    # infinite entry; polar, built on it, hung too. Now NaN, value and derivatives.
    from jaxrules.rules import polar

    for dtype in ("float64", "float32"):
        A = np.array(_general((4, 3)), dtype)
        A[0, 0] = np.inf  # (at [1, 2] LAPACK returns: it depends on the entry)
        U, P = polar(jnp.asarray(A))
        assert np.isnan(U).all() and np.isnan(P).all()
        g = jax.grad(lambda A: jnp.sum(polar(A)[1]))(jnp.asarray(A))
        assert np.isnan(g).all()
