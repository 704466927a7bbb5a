"""The import structure of ``dashboard``: no circles, and no imports hidden inside functions.

A circle means two modules each need the other to be read first; a function-level import is
how one is usually stepped around, so both are checked: the graph of module-level imports
(read with ``ast``, nothing is imported) must have no cycle, and an import inside a function
is only allowed for an optional dependency, one an installation may lack.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dashboard"

# Installed only for some deployments (SQL Server drivers, Arrow ODBC, ADBC, the report's
# browser, Redis, PostgreSQL, Entra sign-in): imported where they are used.
OPTIONAL = {"pyodbc", "arrow_odbc", "adbc_driver_manager", "adbc_driver_sqlite", "playwright"}
OPTIONAL |= {"redis", "psycopg", "psycopg2", "msal", "kaleido"}
# Only Graph sign-in with a certificate reads one (cryptography comes with msal).
OPTIONAL |= {"cryptography"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolved(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = name.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def top_level_imports(tree: ast.Module):
    """Import nodes executed when the module is imported (``if TYPE_CHECKING`` excluded)."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                pending += handler.body
        elif isinstance(node, ast.With):
            pending += node.body


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node in top_level_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = resolved(node, name, is_package)
                # ``from . import figures`` names a module; ``from .x import f`` a value.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            graph[name] |= {target for target in targets if target in known and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def function_level_imports() -> list[str]:
    """``file:line: module`` for each import inside a function of a non-optional module."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for outer in ast.walk(tree):
            if not isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(outer):
                if isinstance(node, ast.Import):
                    roots = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    roots = [
                        "dashboard" if node.level else (node.module or "").split(".")[0]  # absolute
                    ]
                else:
                    continue
                for root in roots:
                    if root not in OPTIONAL:
                        where = path.relative_to(PACKAGE.parent)
                        found.append(f"{where}:{node.lineno}: {root} (in {name})")
    return sorted(set(found))


def test_the_graph_reader_sees_a_circle():
    """The checker itself: a two-module circle and a relative import are found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles(graph) == [["a", "b"]]
    node = ast.parse("from ..model import states").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert resolved(node, "dashboard.web.figures", is_package=False) == "dashboard.model"
    graph = import_graph()
    assert "dashboard.model.summary" in graph["dashboard.service.store"]
    assert "dashboard.model.states" in graph["dashboard.model.summary"]


def test_dashboard_has_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_inside_a_function_except_optional_dependencies():
    found = function_level_imports()
    assert not found, "imports inside functions:\n" + "\n".join(found)
