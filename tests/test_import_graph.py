"""The packages' import graph has no circle, lazy and type-checking imports included: no
module imports back into one that imports it (a package's ``__init__`` importing its own
submodules is how a package is built, not a circle: a submodule importing from its
package's ``__init__`` is). The graph is the one ``benchmarks/call_half_figures.py``
reports from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("call_half_figures", ROOT / "benchmarks" / "call_half_figures.py")
figures = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(figures)  # type: ignore[union-attr]


def import_graph() -> dict[str, set[str]]:
    modules = figures.project_modules(ROOT)
    return {name: figures.imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module."""
    return [c for c in figures.strongly_connected(graph) if len(c) > 1]


def test_the_import_graph_has_no_circle() -> None:
    graph = import_graph()
    assert "routellm_integrations.policy" in graph and "routellm_integrations.state" in graph  # the graph was read
    assert circles(graph) == []


def test_a_circle_is_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
