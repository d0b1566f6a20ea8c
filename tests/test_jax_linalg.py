# Copyright 2018 The JAX Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     https://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

#
# Modifications for jaxrules: the cases of JAX's tests/linalg_test.py (jax-v0.10.2) for the
# functions jaxrules mirrors, with JAX's function replaced by jaxrules' rule through the thin
# adapters below (JAX's signatures onto jaxrules'), test bodies otherwise unchanged; they run
# under JAX's own test settings (jtu.JaxTestCase: strict dtype promotion, rank promotion
# "raise", enable_checks; x64 as the environment sets it, JAX_ENABLE_X64=1 in .ci/run).
# NumpyLinalgTest: testSlogdet, testSlogdetGrad, testIssue1213, testSolve,
# testSolveBroadcasting, testInv. ScipyLinalgTest: testSolve (assume_a "gen"/"pos", lower).
# Not ported, because jaxrules has no function with that contract: lstsq (jaxrules' is for full
# column rank and returns the solution only; JAX's has rcond, ranks, residuals), cho_solve and
# solve_triangular with transpose/unit_diagonal (jaxrules solves triangular systems through
# linear_solve(assume="lower"/"upper") only).

from functools import partial

import jax
import numpy as np
import pytest
import scipy as osp
from absl.testing import absltest
from jax import numpy as jnp
from jax._src import config
from jax._src import test_util as jtu

from jaxrules import rules as _rules

config.parse_flags_with_absl()
pytestmark = pytest.mark.jax_suite

float_types = jtu.dtypes.floating
complex_types = jtu.dtypes.complex

T = lambda x: np.swapaxes(x, -1, -2)


def _random_invertible(rng, shape, dtype):
  """
  Generate a random invertible matrix was specified shape and dtype
  """
  while True:
    a = rng(shape, dtype)
    try:
      np.linalg.inv(a)
    except np.linalg.LinAlgError:
      pass
    else:
      return a


class jr_linalg:
  """`jnp.linalg`'s signatures onto jaxrules' rules."""

  solve = staticmethod(_rules.linear_solve)
  inv = staticmethod(_rules.inv)

  @staticmethod
  def slogdet(a, *, method=None):
    # `method` picks JAX's factorisation (LU or QR); jaxrules' slogdet is LU-based.
    return _rules.slogdet(a)


class jr_scipy_linalg:
  """`jax.scipy.linalg.solve`'s signature onto `linear_solve`."""

  @staticmethod
  def solve(a, b, *, assume_a="gen", lower=False):
    if assume_a == "gen":
      return _rules.linear_solve(a, b)
    # assume="pos" reads the lower triangle; scipy's lower=False gives the upper one, whose
    # conjugate transpose is the same Hermitian matrix's lower triangle.
    if not lower:
      a = jnp.conj(jnp.swapaxes(a, -1, -2))
    return _rules.linear_solve(a, b, assume="pos")


class NumpyLinalgTest(jtu.JaxTestCase):


  @jtu.sample_product(
    [dict(dtype=dtype, method=method)
     for dtype in float_types + complex_types
     for method in (["lu"] if jnp.issubdtype(dtype, jnp.complexfloating)
                     else ["lu", "qr"])
    ],
    shape=[(0, 0), (1, 1), (3, 3), (4, 4), (10, 10), (200, 200), (2, 2, 2),
           (2, 3, 3), (3, 2, 2)],
  )
  @jtu.ignore_warning(message="(divide by zero|overflow|invalid value)", category=RuntimeWarning)
  def testSlogdet(self, shape, dtype, method):
    rng = jtu.rand_default(self.rng())
    args_maker = lambda: [rng(shape, dtype)]
    slogdet = partial(jr_linalg.slogdet, method=method)
    self._CheckAgainstNumpy(np.linalg.slogdet, slogdet, args_maker,
                            tol=1e-3)
    self._CompileAndCheck(slogdet, args_maker)


  @jtu.sample_product(
    shape=[(1, 1), (4, 4), (5, 5), (2, 7, 7)],
    dtype=float_types + complex_types,
  )
  @jtu.skip_on_flag("jax_skip_slow_tests", True)
  def testSlogdetGrad(self, shape, dtype):
    rng = jtu.rand_default(self.rng())
    a = rng(shape, dtype)
    jtu.check_grads(jr_linalg.slogdet, (a,), 2, atol=1e-1, rtol=2e-1)


  def testIssue1213(self):
    for n in range(5):
      mat = jnp.array([np.diag(np.ones([5], dtype=np.float32))*(-.01)] * 2)
      args_maker = lambda: [mat]
      self._CheckAgainstNumpy(np.linalg.slogdet, jr_linalg.slogdet, args_maker,
                              tol=1e-3)


  @jtu.sample_product(
    [dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape)
     for lhs_shape, rhs_shape in [
      ((1, 1), (1, 1)),
      ((4, 4), (4,)),
      ((8, 8), (8, 4)),
      ((2, 2), (3, 2, 2)),
      ((2, 1, 3, 3), (1, 4, 3, 4)),
      ((1, 0, 0), (1, 0, 2)),
     ]
    ],
    dtype=float_types + complex_types,
  )
  @jax.numpy_rank_promotion('allow')  # This test explicitly exercises implicit rank promotion.
  def testSolve(self, lhs_shape, rhs_shape, dtype):
    rng = jtu.rand_default(self.rng())
    args_maker = lambda: [rng(lhs_shape, dtype), rng(rhs_shape, dtype)]

    self._CheckAgainstNumpy(np.linalg.solve, jr_linalg.solve, args_maker,
                            tol=1e-3)
    self._CompileAndCheck(jr_linalg.solve, args_maker)


  @jtu.sample_product(
      lhs_shape=[(2, 2), (2, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2, 2)],
      rhs_shape=[(2,), (2, 2), (2, 2, 2), (2, 2, 2, 2)]
  )
  @jax.numpy_rank_promotion('allow')  # This test explicitly exercises implicit rank promotion.
  def testSolveBroadcasting(self, lhs_shape, rhs_shape):
    # Batched solve can involve some ambiguities; this test checks
    # that we match NumPy's convention in all cases.
    rng = jtu.rand_default(self.rng())
    args_maker = lambda: [rng(lhs_shape, 'float32'), rng(rhs_shape, 'float32')]
    self._CheckAgainstNumpy(np.linalg.solve, jr_linalg.solve, args_maker, tol=1E-3)
    self._CompileAndCheck(jr_linalg.solve, args_maker)


  @jtu.sample_product(
    shape=[(1, 1), (4, 4), (2, 5, 5), (100, 100), (5, 5, 5), (0, 0)],
    dtype=float_types,
  )
  def testInv(self, shape, dtype):
    rng = jtu.rand_default(self.rng())

    def args_maker():
      a = _random_invertible(rng=rng, shape=shape, dtype=dtype)
      return [a]

    self._CheckAgainstNumpy(np.linalg.inv, jr_linalg.inv, args_maker,
                            tol=1e-3)
    self._CompileAndCheck(jr_linalg.inv, args_maker)


class ScipyLinalgTest(jtu.JaxTestCase):


  @jtu.sample_product(
    [dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape)
      for lhs_shape, rhs_shape in [
        ((1, 1), (1, 1)),
        ((4, 4), (4,)),
        ((8, 8), (8, 4)),
      ]
    ],
    [dict(assume_a=assume_a, lower=lower)
      for assume_a, lower in [
        ('gen', False),
        ('pos', False),
        ('pos', True),
      ]
    ],
    dtype=float_types + complex_types,
  )
  def testSolve(self, lhs_shape, rhs_shape, dtype, assume_a, lower):
    rng = jtu.rand_default(self.rng())
    osp_fun = lambda lhs, rhs: osp.linalg.solve(lhs, rhs, assume_a=assume_a, lower=lower)
    jsp_fun = lambda lhs, rhs: jr_scipy_linalg.solve(lhs, rhs, assume_a=assume_a, lower=lower)

    def args_maker():
      a = rng(lhs_shape, dtype)
      if assume_a == 'pos':
        a = np.matmul(a, np.conj(T(a)))
        a = np.tril(a) if lower else np.triu(a)
      return [a, rng(rhs_shape, dtype)]

    self._CheckAgainstNumpy(osp_fun, jsp_fun, args_maker, tol=1e-3)
    self._CompileAndCheck(jsp_fun, args_maker)
