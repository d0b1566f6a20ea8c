"""pytest entry point of jaxrules (`pytest11`).

Tiny, and outside the `jaxrules` package on purpose: it imports jaxrules, and so JAX, only
when `--jaxrules` is given, so installing jaxrules costs other projects' pytest nothing.
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
    group.addoption(
        "--jaxrules-cache-dir",
        action="store",
        default=None,
        metavar="DIR",
        help="JAX's persistent compilation cache for the checks, or 'off' (default: "
        "$JAXRULES_CACHE_DIR, else a per-user cache); keep DIR between CI runs",
    )


def pytest_configure(config):
    """Validate the options and import the rule modules now, so that a mistake is a usage
    error (one paragraph, exit status 4), never an INTERNALERROR during collection."""
    config.addinivalue_line(
        "markers",
        "jaxrules: a check of a registered rule (the plugin's items, rule_params); deselect "
        "with -m 'not jaxrules' where `jaxrules check` runs them already",
    )
    modules = config.getoption("jaxrules", None)
    if not modules:
        return
    import pytest

    seeds = config.getoption("jaxrules_seeds", None)
    if seeds is not None:
        try:
            ok = int(seeds) >= 1
        except ValueError:
            ok = False
        if not ok:
            raise pytest.UsageError(
                f"--jaxrules-seeds: expected a whole number >= 1, got {seeds!r}."
            )
    from jaxrules._modules import ModuleError, add_to_path, import_modules

    add_to_path(str(config.rootpath))
    names = [m.strip() for m in modules.split(",") if m.strip()]
    try:
        import_modules(names, where="--jaxrules")
    except ModuleError as e:
        raise pytest.UsageError(str(e)) from None
    import jaxrules as jr
    from jaxrules import _cache

    _cache.enable(config.getoption("jaxrules_cache_dir", None))
    if not jr.list_rules(module=tuple(names)):
        raise pytest.UsageError(
            f"--jaxrules: no rules are registered in {', '.join(names)}; register them with "
            "@jr.register(...) in the module you name."
        )


def pytest_collection_modifyitems(session, config, items):
    if config.getoption("jaxrules", None):
        from jaxrules.testing import _collect_items

        items.extend(_collect_items(session, config))
