"""The one compilation-cache setting of the checker (`jr.check`, the CLI, the pytest plugin).

Checking a rule compiles a few dozen small programs; JAX's persistent compilation cache keeps
them on disk, so a second check of an unchanged rule skips nearly all of its compiles. It is
on by default, at a per-user location (as pip's and JAX tools' caches are):

1. the `cache_dir=` argument of `jr.check` (the CLI's `--cache-dir`, the plugin's
   `--jaxrules-cache-dir`): a directory, or `"off"`;
2. else the environment variable `JAXRULES_CACHE_DIR`: a directory, or `off`;
3. else `$XDG_CACHE_HOME/jaxrules` (`~/.cache/jaxrules`; `~/Library/Caches/jaxrules` on
   macOS, `%LOCALAPPDATA%\\jaxrules\\Cache` on Windows).

A directory the user gave JAX itself (`JAX_COMPILATION_CACHE_DIR`,
`jax.config.update("jax_compilation_cache_dir", ...)`) wins over all three: it is never
replaced. JAX's cache is per process, so the setting applies to every program compiled after
it, and an explicit setting (an argument, the CLI's `--cache-dir`, the plugin's option) holds
for the rest of the process: the checks the CLI and the plugin then run, which give none,
keep it (before, their `"off"` was undone by the first check, which turned the per-user cache
on). Turning it off once on is not possible (JAX reads the setting once): a warning says so.
jaxrules caches every program however fast it compiled (JAX's default skips programs
compiled in under a second: all of the checker's), and caps an unbounded cache at 2 GiB
(least recently used entries go first) where the `filelock` package JAX needs for that is
installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import jax

ENV = "JAXRULES_CACHE_DIR"
_OFF = ("off", "0", "false", "no", "none")
_MAX_BYTES = 2 * 2**30
#: Whether the last explicit setting in this process was "off" (a directory leaves its trace in
#: JAX's config; "off" leaves none): calls without a setting keep it.
_off = False


def default_dir() -> Path:
    """The per-user cache location for this platform."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "jaxrules" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "jaxrules"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jaxrules"


def resolve(option: str | os.PathLike | bool | None = None) -> str | None:
    """The directory the setting names (`None`: off). `option` is `jr.check`'s `cache_dir`:
    `None` defers to the environment variable, then the per-user default; `False` or
    `"off"` turns the cache off."""
    if option is None:
        option = os.environ.get(ENV, "").strip() or None
    if option is None or option is True:
        return str(default_dir())
    if option is False or str(option).strip().lower() in _OFF:
        return None
    return os.path.abspath(os.path.expanduser(os.fspath(option)))


def enable(option: str | os.PathLike | bool | None = None) -> str | None:
    """Turn JAX's persistent compilation cache on as the setting says; return the directory
    in use (the user's own JAX setting if there is one), or `None` if it is off. `option`
    `None` (no setting given) keeps what an explicit setting chose earlier in the process."""
    global _off
    current = jax.config.jax_compilation_cache_dir
    if option is None and _off and not current:
        return None
    path = resolve(option)
    if option is not None:
        _off = path is None
    if current:
        if path is None and option is not None:
            warnings.warn(
                f"jaxrules: the compilation cache cannot be turned off (cache_dir={option!r}): "
                f"JAX's persistent cache is already on in this process, at {current}. Turn it "
                "off before the first check (the CLI's --cache-dir off, "
                "JAXRULES_CACHE_DIR=off), or leave JAX's own setting unset.",
                stacklevel=2,
            )
        path = current  # the user's (or an earlier call's): never replaced
    elif path is None:
        return None
    else:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError:
            return None  # a read-only home: check without the cache rather than fail
        jax.config.update("jax_compilation_cache_dir", path)
    # Only JAX's defaults are changed, never a value the user set.
    if jax.config.jax_persistent_cache_min_compile_time_secs == 1.0:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if jax.config.jax_compilation_cache_max_size == -1 and importlib.util.find_spec("filelock"):
        # (JAX's size limit needs filelock; without it the cache stays unbounded, JAX's default)
        jax.config.update("jax_compilation_cache_max_size", _MAX_BYTES)
    return path
