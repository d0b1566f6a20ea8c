"""pytest entry point of jaxrules (``pytest11``).

Tiny, and outside the ``jaxrules`` package on purpose: it imports jaxrules, and so JAX, only
when ``--jaxrules`` is given, so installing jaxrules costs other projects' pytest nothing.
"""

from __future__ import annotations


def pytest_addoption(parser):
    group = parser.getgroup("jaxrules")
    group.addoption(
        "--jaxrules",
        action="store",
        default=None,
        metavar="MODULE[,MODULE]",
        help="check the jaxrules rules defined in these modules (one test per rule, case, "
        "dtype and transform)",
    )
    group.addoption(
        "--jaxrules-seeds",
        action="store",
        default=None,
        metavar="N",
        help="random points per check (default: the checker's default)",
    )


def pytest_collection_modifyitems(session, config, items):
    if config.getoption("jaxrules", None):
        from jaxrules.testing import _collect_items

        items.extend(_collect_items(session, config))
