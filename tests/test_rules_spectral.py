"""Spectral functions of symmetric matrices beyond ``jr.check``: repeated eigenvalues, where
JAX's derivative of ``eigh`` is not finite and the function still is differentiable."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxrules.rules import funm_symmetric, logm_spd, psd_projection, sqrtm_psd


def _repeated(eigs, seed=0):
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))[0]
    return jnp.asarray((q * np.asarray(eigs, float)) @ q.T)


def _fd_jvp(fn, A, dA, h=1e-5):
    return (fn(A + h * dA) - fn(A - h * dA)) / (2 * h)


@pytest.mark.parametrize("f", [jnp.sqrt, jnp.exp, jnp.log], ids=["sqrt", "exp", "log"])
def test_derivatives_finite_and_right_at_repeated_eigenvalues(x64, f):
    A = _repeated([1.0, 1.0, 2.0, 3.0, 3.0])
    dA = _repeated([0.3, -1.0, 0.5, 2.0, 0.7], seed=1)  # symmetric, general
    fn = lambda A: funm_symmetric(f, A)
    _, t = jax.jvp(fn, (A,), (dA,))
    np.testing.assert_allclose(t, _fd_jvp(fn, A, dA), rtol=1e-7, atol=1e-9)
    W = jnp.asarray(np.random.default_rng(2).standard_normal(A.shape))
    g = jax.grad(lambda A: jnp.sum(W * fn(A)))(A)
    # <g, dA> = <W, J dA> (the VJP is the JVP's transpose, on symmetric directions)
    np.testing.assert_allclose(jnp.vdot(g, dA), jnp.vdot(W, t), rtol=1e-10)
    # JAX's own derivative through eigh is not finite here, or (JAX 0.12: the computed
    # eigenvalues differ by rounding, 1/gap ~ 1e16) finite and wrong (jax-ml/jax#669, #2311)
    plain = lambda A: (lambda w, V: (V * f(w)[None, :]) @ V.T)(*jnp.linalg.eigh(A))
    g_jax = jax.grad(lambda A: jnp.sum(W * plain(A)))(A)
    wrong = abs(float(jnp.vdot(g_jax, dA) - jnp.vdot(W, t))) > 1e-3 * abs(float(jnp.vdot(W, t)))
    assert not bool(jnp.all(jnp.isfinite(g_jax))) or wrong


@pytest.mark.parametrize("f", [jnp.sqrt, jnp.exp], ids=["sqrt", "exp"])
@pytest.mark.parametrize("eigs", [[1.0, 1.0, 2.0, 3.0, 3.0], [2.0] * 4], ids=["double", "2I"])
def test_second_order_exact_at_repeated_eigenvalues(x64, f, eigs):
    # The rule's tangent map has its own rule (second divided differences): JAX's derivative
    # of the first-order rule through eigh was NaN at 2I and wrong at a double eigenvalue
    # (measured before the fix: jvp_jvp error 2.6 relative, flagged by `jr.check`).
    A = _repeated(eigs)
    dA = _repeated(np.linspace(-1.0, 1.3, len(eigs)) ** 3, seed=1)
    fn = lambda A: funm_symmetric(f, A)
    second = jax.jvp(lambda A: jax.jvp(fn, (A,), (dA,))[1], (A,), (dA,))[1]
    h = 1e-3
    fd2 = (fn(A + h * dA) - 2 * fn(A) + fn(A - h * dA)) / h**2
    fd2_half = (fn(A + h / 2 * dA) - 2 * fn(A) + fn(A - h / 2 * dA)) / (h / 2) ** 2
    np.testing.assert_allclose(second, (4 * fd2_half - fd2) / 3, rtol=1e-6, atol=1e-7)
    W = jnp.asarray(np.random.default_rng(2).standard_normal(A.shape))
    loss = lambda A: jnp.sum(W * fn(A))
    hvp = jax.jvp(jax.grad(loss), (A,), (dA,))[1]  # forward over reverse
    np.testing.assert_allclose(jnp.vdot(hvp, dA), jnp.vdot(W, second), rtol=1e-9)
    gg = jax.grad(lambda A: jnp.vdot(jax.grad(loss)(A), dA))(A)  # reverse over reverse
    np.testing.assert_allclose(gg, hvp, rtol=1e-9, atol=1e-12)


def test_sqrt_at_a_multiple_of_the_identity(x64):
    # The example: V sqrt(Λ) Vᵀ at 2·I. d tr √A / dA = ½ A^(-1/2) = I / (2√2).
    g = jax.grad(lambda A: jnp.trace(sqrtm_psd(A)))(2.0 * jnp.eye(4))
    np.testing.assert_allclose(g, jnp.eye(4) / (2 * np.sqrt(2)), atol=1e-12)


def test_ready_made_functions_agree_with_their_definitions(x64):
    S = _repeated([0.5, 1.0, 2.0, 4.0], seed=3)
    R = sqrtm_psd(S)
    np.testing.assert_allclose(R @ R, S, atol=1e-12)
    np.testing.assert_allclose(logm_spd(S), scipy.linalg.logm(np.asarray(S)), atol=1e-12)
    B = _repeated([-1.0, 0.5, 2.0, -3.0], seed=4)
    P = psd_projection(B)
    w = np.linalg.eigvalsh(np.asarray(P))
    assert w.min() > -1e-12
    np.testing.assert_allclose(P, _repeated([0.0, 0.5, 2.0, 0.0], seed=4), atol=1e-12)
    # batched like jnp.linalg: (..., n, n)
    stack = jnp.stack([S, 2 * S])
    np.testing.assert_allclose(sqrtm_psd(stack)[1], sqrtm_psd(2 * S), atol=1e-12)


def test_input_errors_name_the_function_and_argument():
    with pytest.raises(TypeError, match=r"funm_symmetric: A is complex"):
        funm_symmetric(jnp.exp, jnp.eye(2) * 1j)
    with pytest.raises(ValueError, match=r"funm_symmetric: A must be a square matrix"):
        funm_symmetric(jnp.exp, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"funm_symmetric: f must be an elementwise JAX function"):
        funm_symmetric(2.0, jnp.eye(2))


def test_why_no_eigh_rule_zeroes_degenerate_terms(x64):
    # docs/library/spectral.md: the "zero the degenerate 0/0 terms" VJP of eigh (Kasim 2020) is
    # wrong for an eigenbasis-invariant smooth loss, tr(G √A) at A = 2I, and no check on its
    # cotangents can tell (K = 0 exactly); funm_symmetric, a rule on the composed function, is
    # right there.
    G = np.random.default_rng(0).standard_normal((3, 3))
    G = jnp.asarray(G + G.T)
    A = 2.0 * jnp.eye(3)
    w, V = jnp.linalg.eigh(A)
    w_bar = jnp.diag(V.T @ G @ V) * 0.5 / jnp.sqrt(w)
    V_bar = 2 * G @ V @ jnp.diag(jnp.sqrt(w))
    M = V.T @ V_bar
    K = (M - M.T) / 2
    assert float(jnp.abs(K).max()) == 0.0
    zeroed = V @ jnp.diag(w_bar) @ V.T  # the degenerate F∘K terms set to 0 (all pairs here)
    true = G / (2 * np.sqrt(2.0))
    assert np.linalg.norm(zeroed - true) / np.linalg.norm(true) > 0.5
    ours = jax.grad(lambda A: jnp.trace(G @ funm_symmetric(jnp.sqrt, A)))(A)
    np.testing.assert_allclose(ours, true, rtol=1e-12, atol=1e-14)


def test_third_order_is_an_error_not_a_silent_zero(x64):
    A = _repeated([0.5, 1.0, 2.0])
    f = lambda A: jnp.sum(jnp.sin(funm_symmetric(jnp.exp, A)))
    d = lambda g: lambda A: jax.jvp(g, (A,), (A,))[1]  # a directional derivative
    assert np.isfinite(d(d(f))(A))  # second order: fine
    with pytest.raises(NotImplementedError, match=r"funm_symmetric .* order 3"):
        d(d(d(f)))(A)


def _readers(fn, *args, argnum):
    """The primitives that read `fn`'s argument `argnum` directly, following it into
    sub-jaxprs (calls, custom rules) whose inputs line up with the equation's."""
    readers = []

    def walk(jaxpr, tracked):
        for eqn in jaxpr.eqns:
            hits = [i for i, v in enumerate(eqn.invars) if any(v is t for t in tracked)]
            if not hits:
                continue
            subs = [
                s for s in jax.extend.core.jaxprs_in_params(eqn.params)
                if len(s.invars) == len(eqn.invars)
            ]  # fmt: skip
            if eqn.primitive.name == "call_hi_primitive":  # hijax (JAX ≥ 0.11): its expansion
                prim = eqn.params["_prim"]
                expand = lambda *flat, prim=prim: prim.expand(*prim.in_tree.unflatten(flat))
                subs = [jax.make_jaxpr(expand)(*(v.aval for v in eqn.invars)).jaxpr]
            if not subs:
                readers.append(eqn.primitive.name)
            for s in subs:
                walk(s, [s.invars[i] for i in hits])

    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    walk(jaxpr, [jaxpr.invars[argnum]])
    return readers


def test_derivatives_read_the_direction_only_through_a_product(x64):
    # sym(E) of an unmaterialised E (a cotangent cos(X), say) made XLA fuse E's elementwise
    # work into both of sym's reads: the gradient of Σ sin(f(A)) computed every cos twice
    # (1.4× JAX's gradient at n = 200). The rule symmetrises after the congruence VᵀEV.
    A = _repeated([0.5, 1.0, 2.0, 3.0])
    fn = lambda A: funm_symmetric(jnp.exp, A)
    jvp = lambda A, E: jax.jvp(fn, (A,), (E,))[1]
    vjp = lambda A, X_bar: jax.vjp(fn, A)[1](X_bar)[0]
    assert set(_readers(jvp, A, A, argnum=1)) == {"dot_general"}
    assert set(_readers(vjp, A, A, argnum=1)) == {"dot_general"}
    # ... and still uses only the symmetric parts of A, of the direction and of the cotangent
    N = jnp.asarray(np.random.default_rng(3).standard_normal(A.shape))
    sym = lambda M: (M + M.T) / 2
    np.testing.assert_allclose(fn(A + N - N.T), fn(A), rtol=1e-13)
    np.testing.assert_allclose(jvp(A, N), jvp(A, sym(N)), rtol=1e-13)
    np.testing.assert_allclose(vjp(A, N), vjp(A, sym(N)), rtol=1e-13)
    np.testing.assert_allclose(vjp(A, N), vjp(A, N).T, rtol=1e-13)


def test_derivatives_of_a_small_scale_spectrum(x64):
    # The close-pair threshold was ε^(1/3) max(scale, 1): for a spectrum of scale 1e-6 (a
    # covariance in small units) every gap counted as close and took f' at the midpoint — the
    # JVPs of logm_spd and sqrtm_psd were 1.3e-2 and 5e-3 off. Homogeneity is the witness:
    # log(cA) = log c I + log A and √(cA) = √c √A, so their derivatives along E at cA are
    # 1/c and 1/√c times those at A; second order likewise (1/c², c^(-3/2)).
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    A = jnp.asarray(Q @ np.diag([1.0, 1.5, 2.0, 3.0, 4.0]) @ Q.T)
    E = jnp.asarray((lambda M: M + M.T)(rng.standard_normal((5, 5))))
    for f, power in ((logm_spd, 0.0), (sqrtm_psd, 0.5)):
        d1 = lambda A: jax.jvp(f, (A,), (E,))[1]
        d2 = lambda A: jax.jvp(d1, (A,), (E,))[1]
        at_one = d1(A), d2(A)
        for c in (1e-6, 1e-9):
            np.testing.assert_allclose(d1(c * A), at_one[0] * c ** (power - 1), rtol=1e-12)
            np.testing.assert_allclose(d2(c * A), at_one[1] * c ** (power - 2), rtol=1e-10)
