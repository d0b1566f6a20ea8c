"""The checker: prove a rule against JAX's own differentiation of its reference.

For each case (static values), dtype and seed, the checker draws a general point, random
tangent directions and output cotangents, and computes the same table of quantities
(`._quantities`: primal outputs of every path, JVPs and VJPs per argument and output and
all at once, their linearity, second derivatives) for the rule under each transform
(`._programs`) and for its reference in float64 — the witness (for a case registered with
`witness="differences"`, at a point where JAX's derivative of the reference fails: finite
differences of the reference's value instead, `.._witness`). It compares them leaf by
leaf (`._compare`) with norm-wise relative tolerances calibrated by measurement
(`._tolerance`), and reports one block per failing (rule, argument, output) with a
reproducer (`._report`). `._run` is the orchestration, `._layout` turns a
drawn point into the function of its leaves.
"""

from ._report import CheckReport as CheckReport
from ._report import CheckResult as CheckResult
from ._report import Coverage as Coverage
from ._run import TRANSFORMS as TRANSFORMS
from ._run import check as check
