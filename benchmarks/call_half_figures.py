"""Size figures for "the call half" of the project: the adapters, routing, client and policy.

    python benchmarks/call_half_figures.py [repo_root]     # default: the repo this file lives in

Printed, for the tree at ``repo_root`` (any checkout or worktree, e.g. a "before" commit):

1. Files and non-blank lines per group, and the total, for the call half:
   ``langchain_routellm/*.py``, ``llamaindex_routellm/*.py``,
   ``routellm_integrations/{routing,client,server}/**/*.py`` and the single modules
   ``routellm_integrations/{policy,choosers,config,online,choice}.py`` (absent ones are
   listed as absent: ``choosers.py`` and ``config.py`` may not exist).
2. "Pair/N-way branches": lines of those files matching ``BRANCH_RE`` (below), per file and
   in total. Lines whose stripped text starts with ``#`` are not counted; docstrings are.
3. Import circles among the project's own modules (every module of ``routellm_integrations``,
   ``langchain_routellm`` and ``llamaindex_routellm``, not only the call half): the strongly
   connected components of more than one module in the import graph. An edge A -> B is any
   ``import``/``from ... import`` anywhere in A (module level, inside functions, under
   ``if TYPE_CHECKING``), relative imports resolved against A's package. ``from p import x``
   is an edge to the module ``p.x`` when that module exists, else to ``p``; ``import p.q``
   is an edge to ``p.q``. No implicit edge to parent packages is added.

Standard library only; it reads the files and never imports them.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGES = ("routellm_integrations", "langchain_routellm", "llamaindex_routellm")

# (group label, glob patterns relative to the repo root; "**" recurses)
GROUPS: list[tuple[str, list[str]]] = [
    ("langchain_routellm/*.py", ["langchain_routellm/*.py"]),
    ("llamaindex_routellm/*.py", ["llamaindex_routellm/*.py"]),
    ("routing/**", ["routellm_integrations/routing/**/*.py"]),
    ("client/**", ["routellm_integrations/client/**/*.py"]),
    ("server/**", ["routellm_integrations/server/**/*.py"]),
    ("policy.py", ["routellm_integrations/policy.py"]),
    ("choosers.py", ["routellm_integrations/choosers.py"]),
    ("config.py", ["routellm_integrations/config.py"]),
    ("online.py", ["routellm_integrations/online.py"]),
    ("choice.py", ["routellm_integrations/choice.py"]),
]

BRANCH_RE = re.compile(r"\bnway\b|_nway|models is None|models is not None|\.nway\b|if self\.models|is_pair")


def group_files(root: Path, patterns: list[str]) -> list[Path]:
    found: set[Path] = set()
    for pattern in patterns:
        found.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(found)


def nonblank_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def branch_lines(path: Path) -> int:
    count = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and BRANCH_RE.search(line):
            count += 1
    return count


# -- the import graph --------------------------------------------------------------------------

def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the project's packages."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that module ``name`` imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()

    def add(dotted: str) -> None:
        # the longest prefix that is a project module (``import a.b.c`` where c is a class, say)
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        if dotted and dotted != name:
            targets.add(dotted)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base)
    return targets


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; the components in no particular order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


# -- report ------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parents[1]).resolve()
    print(f"call-half figures for {root}")

    print(f"\n{'group':28} {'files':>5} {'lines':>7}   (non-blank)")
    call_half: list[Path] = []
    total_files = total_lines = 0
    for label, patterns in GROUPS:
        files = group_files(root, patterns)
        if not files:
            print(f"{label:28} {'absent':>5}")
            continue
        lines = sum(nonblank_lines(p) for p in files)
        call_half.extend(files)
        total_files += len(files)
        total_lines += lines
        print(f"{label:28} {len(files):5d} {lines:7d}")
    print(f"{'TOTAL':28} {total_files:5d} {total_lines:7d}")

    print(f"\npair/N-way branches: lines matching  {BRANCH_RE.pattern}  ('#' lines excluded)")
    branch_total = 0
    for path in call_half:
        n = branch_lines(path)
        branch_total += n
        if n:
            print(f"  {n:4d}  {path.relative_to(root)}")
    print(f"  {branch_total:4d}  TOTAL in {len(call_half)} files")

    modules = project_modules(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    circles = sorted((c for c in strongly_connected(graph) if len(c) > 1), key=lambda c: (-len(c), c))
    in_half = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__") for p in call_half}
    edges = sum(len(t) for t in graph.values())
    print(f"\nimport circles (strongly connected components of > 1 module) among {len(modules)} modules, "
          f"{edges} import edges: {len(circles)}")
    for c in circles:
        touching = sum(1 for m in c if m in in_half)
        print(f"  {len(c):3d} modules ({touching} in the call half): {', '.join(c)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
