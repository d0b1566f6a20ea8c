"""jaxrules: custom differentiation rules for JAX, done right."""

from . import inputs as inputs
from ._custom import CustomRule as CustomRule
from ._custom import custom_jvp as custom_jvp
from ._custom import custom_vjp as custom_vjp
from ._errors import RuleCheckError as RuleCheckError

__version__ = "0.1.0.dev0"
