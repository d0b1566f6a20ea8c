"""Importing a user's rule modules for the CLI and the pytest plugin, as `python -m` does.

The current directory (and, for pytest, the rootdir) is put on `sys.path` first, so that
`jaxrules check myrules` and `pytest --jaxrules=myrules` find `myrules.py` in the project
folder; every way an import can fail becomes one paragraph that says what to do.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterable


class ModuleError(ValueError):
    """A rule module named on the command line could not be imported (a usage error)."""


def add_to_path(*folders: str | os.PathLike) -> None:
    for folder in folders:
        folder = os.path.abspath(folder)
        if folder not in (os.path.abspath(p or os.curdir) for p in sys.path):
            sys.path.insert(0, folder)


def import_modules(modules: Iterable[str], *, where: str = "jaxrules") -> None:
    """Import each module; raise `ModuleError` with an actionable message if one fails."""
    add_to_path(os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name != e.name and not name.startswith(e.name + "."):
                raise ModuleError(_raised(where, name, e)) from None
            raise ModuleError(
                f"{where}: cannot import module {name!r}: no module of that name on the path. "
                f"The current directory ({os.getcwd()}) is searched, as with `python -m`; give "
                "the module's dotted name (mypkg.rules, not mypkg/rules.py), run from the folder "
                "that contains it, or install your package (pip install -e .)."
            ) from None
        except SyntaxError as e:
            raise ModuleError(
                f"{where}: cannot import module {name!r}: syntax error in {e.filename}, line "
                f"{e.lineno}: {e.msg}. Fix it (python -c 'import {name}' shows the line)."
            ) from None
        except Exception as e:
            raise ModuleError(_raised(where, name, e)) from None


def _raised(where: str, name: str, e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return (
        f"{where}: importing module {name!r} raised {type(e).__name__}{at}: {first}. "
        f"Run python -c 'import {name}' to see the whole traceback."
    )
