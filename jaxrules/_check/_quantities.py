"""The quantities the checker compares, and the table of checks over them.

The same function computes them for the rule (under each transform) and for its reference
(the witness, in float64, and the calibration, in the rule's dtype). At a point `xs` with
tangent directions `v` and output cotangents `w` (`α = -2.5`):

| quantity | what it is |
|---|---|
| `primal` | `F(xs)` |
| `jvp_primal` | the primal output `jax.jvp` returns (a JVP rule's own primal) |
| `jvp[i]` | the JVP along `v` with only input leaf `i` perturbed (the others are symbolic zeros, so a rule's `None`/`Zero` branches run) |
| `jvp_all` | the JVP with every input perturbed |
| `jvp_lin`/`jvp_comb` | the JVP along `α v`, and `α` times the sum of the `jvp[i]` |
| `vjp_primal` | the primal output `jax.vjp` returns (a `fwd`'s primal) |
| `vjp[o]` | the VJP of output `o` alone (the other outputs' cotangents are symbolic zeros) |
| `vjp_all` | the VJP with every output's cotangent at once |
| `vjp_lin`/`vjp_comb` | the VJP of `α w`, and `α` times the sum of the `vjp[o]` |
| `hvp` | `d/dε VJP(xs + ε v)·w`: the JVP of the VJP (order 2) |
| `hvp_primal` | the primal `jax.vjp` returns under `jax.jvp` (order 2) |
| `jvp_jvp` | `d/dε JVP(xs + ε v)·v` (order 2) |

A new check is one `Check` entry in `CHECKS` (plus its quantity here, if new).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# The linearity checks' scale: negative and not -1, so that a tangent or cotangent used as
# |t| or t² shows (homogeneity); the sum over inputs (outputs) shows cross terms between them.
ALPHA = -2.5

PARTS = ("forward", "reverse", "hvp")
PART_CHECK = {"forward": "jvp", "reverse": "vjp", "hvp": "hvp"}


def is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def zero_cotangent(x):
    if is_float(x):
        return jnp.zeros(jnp.shape(x), jnp.result_type(x))
    return np.zeros(jnp.shape(x), jax.dtypes.float0)


def _floats(ts):
    return [t if is_float(t) else None for t in ts]


def _sum(rows):
    """Leaf-wise sum of the rows that are present (`None` leaves stay `None`)."""
    rows = [r for r in rows if r is not None]
    return [None if any(x is None for x in col) else sum(col[1:], col[0]) for col in zip(*rows)]


def _scale(a, ts):
    return [None if t is None else a * t for t in ts]


def quantities(
    F: Callable, xs, fixed, d: dict, order: int, parts=PARTS, full: bool = True
) -> dict[str, Any]:
    """Every quantity of `parts` for `F(xs, fixed) -> list of leaves` along `d`.

    `d`: `{"v": [...], "w": [...]}` (`w` entries are `None` for integer outputs).
    Without `full`, only the quantities of all inputs and all outputs at once (no per-leaf
    JVPs/VJPs, no linearity): what the partial batchings compute.
    """
    Fx = lambda ys: F(ys, fixed)
    v, w = list(d["v"]), d["w"]
    q: dict[str, Any] = {}
    if "forward" in parts:
        q["primal"] = Fx(xs)
        p, t = jax.jvp(Fx, (list(xs),), (v,))
        q["jvp_primal"], q["jvp_all"] = p, _floats(t)
        if len(xs) == 1:
            q["jvp"] = [q["jvp_all"]]
        elif full:
            q["jvp"] = []
            for i in range(len(xs)):

                def Fi(xi, i=i):
                    ys = list(xs)
                    ys[i] = xi
                    return Fx(ys)

                q["jvp"].append(_floats(jax.jvp(Fi, (xs[i],), (v[i],))[1]))
        if full:
            # Linearity: the JVP along α·v against α·(the sum of the per-input JVPs).
            q["jvp_lin"] = _floats(jax.jvp(Fx, (list(xs),), (_scale(ALPHA, v),))[1])
            q["jvp_comb"] = _scale(ALPHA, _sum(q["jvp"]))
        if order >= 2:
            tangent = lambda ys: jax.jvp(Fx, (ys,), (v,))[1]
            q["jvp_jvp"] = _floats(jax.jvp(tangent, (list(xs),), (v,))[1])

    def cotangents(ws, out):
        return [zero_cotangent(o) if wo is None else wo for wo, o in zip(ws, out)]

    if "reverse" in parts:
        out, pullback = jax.vjp(Fx, list(xs))
        q["vjp_primal"] = out
        g = pullback(cotangents(w, out))[0]
        q["vjp_all"] = g
        if len(out) == 1:
            q["vjp"] = [g]
        elif full:
            q["vjp"] = []
            for o in range(len(out)):
                if w[o] is None:
                    q["vjp"].append(None)
                    continue
                # Output o alone: the other outputs' cotangents are symbolic zeros.
                _, pb = jax.vjp(lambda ys, o=o: Fx(ys)[o], list(xs))
                q["vjp"].append(pb(w[o])[0])
        if full:
            # Linearity: the VJP of α·w against α·(the sum of the per-output VJPs).
            q["vjp_lin"] = pullback(cotangents(_scale(ALPHA, w), out))[0]
            q["vjp_comb"] = _scale(ALPHA, _sum(q["vjp"]))
    if "hvp" in parts and order >= 2:

        def grad_w(ys):
            out, pb = jax.vjp(Fx, ys)
            return out, pb(cotangents(w, out))[0]

        (out, _), (_, h) = jax.jvp(grad_w, (list(xs),), (list(v),))
        q["hvp_primal"], q["hvp"] = out, h
    return q


# -- the table of checks -------------------------------------------------------------------------
Key = tuple  # (input index or None for all inputs, output index or None for all outputs)


def _outs(n_in, n_out):
    return [(None, o) for o in range(n_out)]


def _ins(n_in, n_out):
    return [(i, None) for i in range(n_in)]


def _jvp_keys(n_in, n_out):
    keys = [(i, o) for i in range(n_in) for o in range(n_out)]
    return keys + (_outs(n_in, n_out) if n_in > 1 else [])


def _vjp_keys(n_in, n_out):
    keys = [(i, o) for i in range(n_in) for o in range(n_out)]
    return keys + (_ins(n_in, n_out) if n_out > 1 else [])


def _per_out(name):
    return lambda q, key: _at(q, name, key[1])


def _per_in(name):
    return lambda q, key: _at(q, name, key[0])


def _at(q, name, idx):
    seq = q.get(name)
    return None if seq is None or seq[idx] is None else seq[idx]


def _jvp(q, key):
    i, o = key
    if i is None:
        return _at(q, "jvp_all", o)
    rows = q.get("jvp")
    return None if rows is None or rows[i] is None else rows[i][o]


def _vjp(q, key):
    i, o = key
    if o is None:
        return _at(q, "vjp_all", i)
    rows = q.get("vjp")
    return None if rows is None or rows[o] is None else rows[o][i]


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the table: `got(q, key)` of the rule against `want(·, key)` of the
    reference's witness (`against="reference"`) or of the rule itself (`"self"`)."""

    name: str
    against: str
    keys: Callable[[int, int], list[Key]]
    got: Callable[[dict, Key], Any]
    want: Callable[[dict, Key], Any]
    projected: bool = False  # compare after projecting onto a structured input's subspace
    order: int = 1
    catches: str = ""

    @property
    def of_values(self) -> bool:
        """Whether it compares function values (a primal), not derivatives."""
        return self.name.endswith("primal")


CHECKS: tuple[Check, ...] = (
    Check(
        "primal", "reference", _outs, _per_out("primal"), _per_out("primal"),
        catches="a wrong function value",
    ),
    Check(
        "jvp_primal", "reference", _outs, _per_out("jvp_primal"), _per_out("primal"),
        catches="a JVP rule returning a wrong primal (jax.jvp, linearize)",
    ),
    Check(
        "vjp_primal", "reference", _outs, _per_out("vjp_primal"), _per_out("primal"),
        catches="a fwd returning a wrong primal (value_and_grad)",
    ),
    Check(
        "jvp", "reference", _jvp_keys, _jvp, _jvp,
        catches="a wrong tangent, per input (others symbolic zeros) and all inputs at once",
    ),
    Check(
        "vjp", "reference", _vjp_keys, _vjp, _vjp, projected=True,
        catches="a wrong cotangent, per output (others symbolic zeros) and all outputs at once",
    ),
    Check(
        "jvp_linear", "self", _outs, _per_out("jvp_lin"), _per_out("jvp_comb"),
        catches="a JVP that is not linear in its tangents",
    ),
    Check(
        "vjp_linear", "self", _ins, _per_in("vjp_lin"), _per_in("vjp_comb"), projected=True,
        catches="a VJP that is not linear in its cotangents (cross terms between outputs)",
    ),
    Check(
        "hvp", "reference", _ins, _per_in("hvp"), _per_in("hvp"), projected=True, order=2,
        catches="a wrong second derivative through the VJP",
    ),
    Check(
        "hvp_primal", "reference", _outs, _per_out("hvp_primal"), _per_out("primal"), order=2,
        catches="a fwd returning a wrong primal under forward mode",
    ),
    Check(
        "jvp_jvp", "reference", _outs, _per_out("jvp_jvp"), _per_out("jvp_jvp"), order=2,
        catches="a wrong second derivative through the JVP",
    ),
)  # fmt: skip
