"""A module with a wrong rule, for the CLI and pytest-plugin tests."""

import jax.numpy as jnp

import jaxrules as jr


@jr.register("plugin_bad_exp", reference=jnp.exp, inputs={"x": jr.inputs.general((3,))})
@jr.custom_vjp
def bad_exp(x):
    return jnp.exp(x)


bad_exp.defvjp(lambda x: (jnp.exp(x), x), lambda x, g: (2 * jnp.exp(x) * g,))
