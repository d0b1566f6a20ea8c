"""A user's rule module, for the CLI and pytest-plugin tests."""

import jaxrules as jr
from jaxrules.rules import sin_product  # noqa: F401  (imported, not defined here)


@jr.register("plugin_cube", reference=lambda x: x**3, inputs={"x": jr.inputs.general((3,))})
@jr.custom_jvp
def cube(x):
    return x**3


cube.defjvp(lambda p, t: (p[0] ** 3, 3 * p[0] ** 2 * t[0]))
