"""jaxrules: custom differentiation rules for JAX, done right.

Examples:
    >>> import jaxrules as jr
    >>> from jaxrules.rules import sin_product
    >>> "sin_product" in [r.name for r in jr.list_rules()]
    True
"""

from . import inputs as inputs
from . import references as references
from . import rules as rules  # the rule library: importing it registers the built-in rules
from ._backend import FallbackWarning as FallbackWarning
from ._bench import BenchmarkReport as BenchmarkReport
from ._bench import BenchRow as BenchRow
from ._bench import benchmark as benchmark
from ._check import CheckReport as CheckReport
from ._check import CheckResult as CheckResult
from ._check import check as check
from ._custom import CustomRule as CustomRule
from ._custom import custom_jvp as custom_jvp
from ._custom import custom_vjp as custom_vjp
from ._errors import RuleCheckError as RuleCheckError
from ._errors import RuleOutputError as RuleOutputError
from ._registry import BenchSpec as BenchSpec
from ._registry import Case as Case
from ._registry import CheckSpec as CheckSpec
from ._registry import Registry as Registry
from ._registry import Rule as Rule
from ._registry import get as get
from ._registry import list_rules as list_rules
from ._registry import register as register
from ._version import __version__ as __version__
