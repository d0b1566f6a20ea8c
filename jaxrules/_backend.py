"""Which JAX mechanism carries a rule, on the JAX in use: the one place that decides.

Everything that depends on the installed JAX version lives here (the experimental API itself is
in `jaxrules._hijax`), so that a JAX release that renames or changes something touches
this layer only:

- `JAX_VERSION`, parsed once;
- whether the hijax primitive is available (`jaxrules._hijax.AVAILABLE`, under any of
  its known class names) and, if not, a one-time `FallbackWarning` that names the JAX
  version and what is lost — never a silent degradation;
- *how* a rule with a VJP rule is bound (`direct_under_autodiff`). Everywhere: the
  *staged form*, a `jax.custom_jvp` of the primal whose JVP rule returns its tangent through
  a linear hijax primitive (evaluated: the JVP rule; transposed: the VJP rule), so that every
  transformation — `jit`, `scan`, `cond`, `checkpoint` before differentiation
  included — runs each mode's own rule. Before JAX 0.12, where differentiation reaches the call
  directly, the full rule primitive is bound instead: there a jaxpr that stages a hijax
  primitive makes `jax.jit` lower it again on every call (70-128 µs per call on
  0.10.2-0.11.2, measured), and the direct binding keeps the linear primitive out of jitted
  forward-mode code. JAX 0.12 lowers such jaxprs once (4.9 µs, as without), so there the staged
  form is used throughout. `JAXRULES_HIJAX_BIND=direct|staged` overrides the version gate;
- `select`: the backend of a rule (`hijax`, `custom_jvp` or `custom_vjp`) from the
  rules it has;
- the checker's and the tests' hooks: `force_backend`, `record_rule_calls`,
  `use_hijax`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator

import jax

from . import _hijax


def _parse_version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v.split("+")[0])[:3])


#: The installed JAX version, e.g. `(0, 12, 0)`.
JAX_VERSION: tuple[int, ...] = _parse_version(jax.__version__)

#: The oldest JAX this project supports (and tests in CI).
MIN_JAX = (0, 10, 2)

#: From this JAX on, staging a hijax primitive under `jit` is as cheap as staging a plain
#: `custom_vjp` (measured: benchmarks/overhead.py, docs/compatibility.md).
CHEAP_STAGING_FROM = (0, 12)

_BIND_ENV = "JAXRULES_HIJAX_BIND"


class FallbackWarning(UserWarning):
    """jaxrules runs without the hijax primitive: some rules lose a mode (see the message)."""


class _State(threading.local):
    def __init__(self):
        self.forced: str | None = None
        self.log: list | None = None
        self.undecorated = False


_state = _State()
# Process-wide switches (tests flip them to exercise every path).
_switches = {"use_hijax": _hijax.AVAILABLE, "direct": None}
_warned = [False]


def direct_under_autodiff() -> bool:
    """Whether a call that differentiation reaches directly binds the full rule primitive
    (JAX < 0.12) rather than the staged form (see the module docstring)."""
    if _switches["direct"] is not None:
        return bool(_switches["direct"])
    env = os.environ.get(_BIND_ENV, "").strip().lower()
    if env in ("direct", "staged"):
        return env == "direct"
    return JAX_VERSION < CHEAP_STAGING_FROM


def hijax_enabled() -> bool:
    return bool(_switches["use_hijax"])


@contextlib.contextmanager
def use_hijax(enabled: bool = True, *, direct: bool | None = None) -> Iterator[None]:
    """Inside the block, rules use (or do not use) the hijax primitives; tests only.

    `direct` overrides the version gate of `direct_under_autodiff` as well.
    """
    if enabled and not _hijax.AVAILABLE:
        raise RuntimeError(f"hijax is unavailable: {_hijax.UNAVAILABLE_REASON}")
    old = dict(_switches)
    _switches["use_hijax"] = enabled
    if direct is not None:
        _switches["direct"] = direct
    try:
        yield
    finally:
        _switches.update(old)


def _warn_fallback() -> None:
    if _warned[0] or _hijax.AVAILABLE:
        return
    _warned[0] = True
    warnings.warn(
        f"jaxrules: running without jax.experimental.hijax on JAX {jax.__version__} "
        f"({_hijax.UNAVAILABLE_REASON}). What is lost: a rule with only a VJP rule has no "
        "forward mode (jvp, jacfwd raise an error naming the rule), and a rule with both a JVP "
        "and a VJP rule uses its JVP rule in both modes. Every JAX from "
        f"{'.'.join(map(str, MIN_JAX))} on has the primitive; unset JAXRULES_DISABLE_HIJAX "
        "unless you are testing this fallback, and report a JAX release that lacks it.",
        FallbackWarning,
        stacklevel=4,
    )


def select(has_jvp: bool, has_vjp: bool) -> str:
    """The backend of a rule with these rules: `hijax`, `custom_jvp` or `custom_vjp`."""
    forced = _state.forced
    if forced == "custom_vjp" and has_vjp:
        return "custom_vjp"
    if forced == "custom_jvp" and has_jvp:
        return "custom_jvp"
    if has_vjp:
        if _switches["use_hijax"]:
            return "hijax"
        if forced is None:
            _warn_fallback()
    return "custom_jvp" if has_jvp else "custom_vjp"


@contextlib.contextmanager
def force_backend(backend: str | None) -> Iterator[None]:
    """Inside the block, rules that have the matching rule use `backend` (checker only).

    Without hijax, the checker forces each mode's own rule: `custom_jvp` (the JVP rule) for
    forward-mode checks and `custom_vjp` (the VJP rule) for reverse-mode ones.
    """
    old = _state.forced
    _state.forced = backend
    try:
        yield
    finally:
        _state.forced = old


@contextlib.contextmanager
def undecorated() -> Iterator[None]:
    """Inside the block (at trace time, per thread), a rule's call runs its undecorated
    function, which JAX then differentiates itself (checker only: its calibration of what
    JAX's own differentiation achieves in a dtype)."""
    old = _state.undecorated
    _state.undecorated = True
    try:
        yield
    finally:
        _state.undecorated = old


def is_undecorated() -> bool:
    return _state.undecorated


@contextlib.contextmanager
def record_rule_calls() -> Iterator[list]:
    """Log `(rule name, "jvp" | "fwd" | "bwd")` for each rule JAX invokes inside the block
    (at trace time; per thread: the CLI checks rules in parallel)."""
    old = _state.log
    _state.log = []
    try:
        yield _state.log
    finally:
        _state.log = old


def record(name: str, what: str) -> None:
    if _state.log is not None:
        _state.log.append((name, what))


def all_concrete(tracers) -> bool:
    """Whether every tracer wraps a concrete value (eager `jax.grad`/`jax.jvp` outside
    `jit`), so that the rule can run on values as JAX runs a `custom_jvp` rule there.

    `Tracer.to_concrete_value` (JAX 0.4.36 - 0.12 at least) answers it; where it is missing,
    every tracer counts as abstract (the rule is traced, as under `jit`).
    """
    for t in tracers:
        get = getattr(t, "to_concrete_value", None)
        if get is None:
            return False
        try:
            if get() is None:
                return False
        except Exception:
            return False
    return True


def describe() -> dict:
    """What this JAX gives jaxrules (for `jaxrules info` and bug reports)."""
    return {
        "jax": jax.__version__,
        "hijax": _hijax.CLASS_NAME or None,
        "hijax_unavailable_reason": _hijax.UNAVAILABLE_REASON or None,
        "bind": (
            ("direct under autodiff, staged elsewhere" if direct_under_autodiff() else "staged")
            if hijax_enabled()
            else None
        ),
    }
