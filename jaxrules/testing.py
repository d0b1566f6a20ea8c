"""Helpers to check rules from any test runner, and the pytest plugin's items.

With pytest, either pass `--jaxrules=mypkg.rules` (the plugin adds one test item per rule,
case, dtype and transform), or parametrize a test yourself:

```python
import pytest
from jaxrules.testing import rule_params, check_rule_param

@pytest.mark.parametrize("param", rule_params("mypkg.rules"))
def test_rules(param):
    check_rule_param(param)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ._check import TRANSFORMS, check
from ._errors import RuleCheckError
from ._modules import import_modules
from ._registry import Rule, default_registry

__all__ = ["RuleParam", "check_rule_param", "rule_params"]


@dataclasses.dataclass(frozen=True)
class RuleParam:
    """One (rule, case, dtype, transform) to check; `id` is a readable test id."""

    rule: str
    case: int
    dtype: str
    transform: str
    seeds: int = 3

    @property
    def id(self) -> str:
        return f"{self.rule}[case{self.case}-{self.dtype}-{self.transform}]"


def _rules_in(modules: Sequence[str]) -> list[Rule]:
    import_modules(modules, where="rule_params")
    return default_registry.rules(module=tuple(modules))


def rule_params(
    *modules: str,
    dtypes: Sequence[str] | None = None,
    transforms: Sequence[str] = TRANSFORMS,
    seeds: int = 3,
):
    """`pytest.param` objects (or `RuleParam` without pytest) for the rules *defined
    in* `modules` (imported here): one per rule, case, dtype and transform (`dtypes`:
    default each rule's registered dtypes)."""
    out = [
        RuleParam(r.name, i, d, t, seeds)
        for r in _rules_in(modules)
        for i in range(len(r.cases))
        for d in (r.check.dtypes if dtypes is None else dtypes)
        for t in transforms
    ]
    try:
        import pytest
    except ImportError:  # pragma: no cover
        return out
    # Marked `jaxrules`: a CI that runs `jaxrules check` deselects them (-m "not jaxrules"),
    # so no rule is checked twice.
    return [pytest.param(p, id=p.id, marks=pytest.mark.jaxrules) for p in out]


def check_rule_param(param: RuleParam) -> None:
    """Run the checks of one `RuleParam`; raise `RuleCheckError` on failure."""
    __tracebackhide__ = True  # pytest: the traceback starts at the test that called this
    rule = default_registry.get(param.rule)
    report = check(
        rule,
        case=param.case,
        dtypes=(param.dtype,),
        transforms=(param.transform,),
        seeds=param.seeds,
    )
    report.raise_if_failed()


# -- the pytest plugin's items (pytest is imported only when the plugin is active) ---------------
def _collect_items(session, config):
    import pytest

    class RuleItem(pytest.Item):
        def __init__(self, *, param: RuleParam, **kwargs):
            super().__init__(**kwargs)
            self.param = param

        def runtest(self):
            check_rule_param(self.param)

        def repr_failure(self, excinfo, style=None):
            if isinstance(excinfo.value, RuleCheckError):
                return str(excinfo.value)
            return super().repr_failure(excinfo)

        def reportinfo(self):
            return self.path, None, f"jaxrules check {self.param.id}"

    modules = [m.strip() for m in config.getoption("jaxrules").split(",") if m.strip()]
    seeds = config.getoption("jaxrules_seeds")
    kw = {"seeds": int(seeds)} if seeds else {}
    items = []
    for p in rule_params(*modules, **kw):
        param = p.values[0]
        item = RuleItem.from_parent(session, name=f"jaxrules::{param.id}", param=param)
        item.add_marker("jaxrules")
        items.append(item)
    return items
