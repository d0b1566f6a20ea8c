"""The library of hand-derived rules, one module per family. Each is registered and checked
(`jr.list_rules(module="jaxrules.rules")` lists them).

The modules import what they use from jaxrules' private modules (the decorators, the
registry, the input generators), never the package's front door, the checker or the
benchmark (import-linter contracts in `pyproject.toml`, run by `.ci/run`).
"""

from ._solvers import iterate as iterate
from ._solvers import newton as newton
from .bessel import ive as ive
from .bessel import kve as kve
from .bessel import log_iv as log_iv
from .distributions import beta_cdf as beta_cdf
from .distributions import binomial_cdf as binomial_cdf
from .distributions import gamma_cdf as gamma_cdf
from .distributions import negative_binomial_cdf as negative_binomial_cdf
from .distributions import poisson_cdf as poisson_cdf
from .distributions import student_t_cdf as student_t_cdf
from .elementwise import sin_product as sin_product
from .implicit import Solution as Solution
from .implicit import SolverError as SolverError
from .implicit import argmin as argmin
from .implicit import fixed_point as fixed_point
from .implicit import root as root
from .incomplete_beta import betainc as betainc
from .incomplete_gamma import gammainc as gammainc
from .incomplete_gamma import gammaincc as gammaincc
from .incomplete_inverse import betaincinv as betaincinv
from .incomplete_inverse import gammaincinv as gammaincinv
from .krylov import KrylovSolution as KrylovSolution
from .krylov import krylov_solve as krylov_solve
from .linalg import inv as inv
from .linalg import linear_solve as linear_solve
from .linalg import logdet as logdet
from .linalg import lstsq as lstsq
from .linalg import matvec as matvec
from .linalg import matvec_fixed as matvec_fixed
from .linalg import quadratic_form as quadratic_form
from .linalg import slogdet as slogdet
from .matrix_equations import discrete_lyapunov as discrete_lyapunov
from .matrix_equations import lyapunov as lyapunov
from .matrix_equations import sylvester as sylvester
from .matrix_exponential import expm as expm
from .matrix_functions import fractional_matrix_power as fractional_matrix_power
from .matrix_functions import logm as logm
from .matrix_functions import polar as polar
from .matrix_functions import sqrtm as sqrtm
from .ode import Adjoint as Adjoint
from .ode import BacksolveAdjoint as BacksolveAdjoint
from .ode import CheckpointAdjoint as CheckpointAdjoint
from .ode import ODESolution as ODESolution
from .ode import odeint as odeint
from .quadratic_programs import QPSolution as QPSolution
from .quadratic_programs import eq_qp as eq_qp
from .quadratic_programs import qp as qp
from .quadratic_programs import qp_layer as qp_layer
from .special import i0 as i0
from .special import i1 as i1
from .spectral import funm_symmetric as funm_symmetric
from .spectral import logm_spd as logm_spd
from .spectral import psd_projection as psd_projection
from .spectral import sqrtm_psd as sqrtm_psd

# isort: split
# Last, so that `jaxrules list` shows the library's functions first: registers the implicit
# rules' example problems (`root_example`, `fixed_point_example`, `argmin_example`).
from . import examples as examples
