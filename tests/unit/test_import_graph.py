"""The package's import graph has floors: no cycle, and no import hidden in a function body.

Walks every module of `dynorm/` with `ast` (nothing is imported), builds the graph of imports
between dynorm modules that run when a module is imported (module level, outside
`if TYPE_CHECKING:`), plus those inside function bodies, and checks:

- no cycle in that graph (a cycle means import order decides whether a name exists yet);
- no function body imports a dynorm module, except one that needs an optional dependency
  (a module that itself imports `click`, `rich`, ... at module level), and no function body
  imports a required third-party dependency either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "dynorm"

#: Dependencies that only an extra installs: importing them inside a function is how a
#: module stays importable without them.
OPTIONAL = frozenset(
    {
        "click",
        "rich",
        "testcontainers",
        "docker",
        "orjson",
        "streamlit",
        "aiobotocore",
        "pytest",
        "greenlet",
    }
)

#: Function-body imports allowed by name, each with why the module must not load at import
#: time (cold start: what a Lambda pays before its first request; see benchmarks/README.md).
LAZY: dict[tuple[str, str], str] = {
    ("dynorm._async", "asyncio"): (
        "only an `a`-method runs it, and then the event loop has imported asyncio already; "
        "a sync program would pay ~15% of `import dynorm` for it"
    ),
    ("dynorm._bridge", "asyncio"): (
        "only a bridge greenlet (an `a`-method on the event loop) waits through it"
    ),
    ("dynorm._http", "dynorm._http_async"): (
        "the event loop's HTTP exchange: only a bridge greenlet sends through it, and it "
        "imports asyncio, which a sync program never loads"
    ),
    ("dynorm._async", "concurrent.futures"): (
        "the async worker pool is built when the first `a`-method runs"
    ),
    # `dynorm.__getattr__`: public names no request path needs load on first use.
    ("dynorm", "dynorm._async_transactions"): (
        "atransaction/atransaction_get: async transactions, which a GetItem never needs"
    ),
    ("dynorm", "dynorm._table"): (
        "create_table/check_table/delete_table: table management (tests, deploy scripts)"
    ),
    ("dynorm", "dynorm._transactions"): "transaction/transaction_get/Transaction",
    ("dynorm", "dynorm.singleton"): "SingletonModel: loaded by the apps that define one",
    ("dynorm", "dynorm.versioning"): (
        "VersionedModel: history writes, reads and codec (six modules) for apps that use it"
    ),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # an imported module (dotted)
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(node: ast.ImportFrom, module: str, path: Path) -> str:
    if node.level == 0:
        return node.module or ""
    base = _package_of(module, path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = _resolve(node, module, path)
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in MODULES else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:  # the `else:` of `if TYPE_CHECKING:` runs
                yield from _walk_one(other, in_function)
            continue
        yield from _walk_one(child, in_function)


def _walk_one(
    node: ast.AST, in_function: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, in_function
        return
    inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    yield from _walk(node, inner)


def _imports() -> list[Import]:
    found: list[Import] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, in_function in _walk(tree, False):
            for target in _targets(node, module, path):
                found.append(Import(module, target, node.lineno, in_function))
    return found


IMPORTS = _imports()


def _dynorm_edges(imports: list[Import]) -> dict[str, set[str]]:
    """module -> the dynorm modules importing it runs (each package's __init__ included)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in imports:
        if imp.target not in MODULES or imp.target == imp.source:
            continue
        graph[imp.source].add(imp.target)
        parent = imp.target.rpartition(".")[0]
        while parent and parent != "dynorm" and parent != imp.source:
            if not imp.source.startswith(parent + "."):  # a package's own modules are inside it
                graph[imp.source].add(parent)
            parent = parent.rpartition(".")[0]
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def _needs_optional(module: str) -> bool:
    """Whether a dynorm module imports an optional dependency when it is imported."""
    return any(
        imp.source == module and not imp.in_function and imp.target.split(".")[0] in OPTIONAL
        for imp in IMPORTS
    )


def test_the_walk_finds_the_package() -> None:
    assert "dynorm.models" in MODULES and "dynorm.query.queryset" in MODULES
    assert any(i.source == "dynorm.models" and i.target == "dynorm._keys" for i in IMPORTS)


def test_no_cycle_among_module_level_imports() -> None:
    graph = _dynorm_edges([i for i in IMPORTS if not i.in_function])
    assert _cycles(graph) == []


def test_no_cycle_counting_the_imports_functions_make_when_called() -> None:
    assert _cycles(_dynorm_edges(IMPORTS)) == []


def test_no_function_body_imports_a_dynorm_module_or_a_required_dependency() -> None:
    hidden = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if imp.in_function
        and imp.target.split(".")[0] not in OPTIONAL
        and not (imp.target in MODULES and _needs_optional(imp.target))
        and (imp.source, imp.target) not in LAZY
    ]
    assert hidden == []


def test_every_lazy_allowance_is_used() -> None:
    """An entry of LAZY whose import has gone (or moved to module level) is removed."""
    used = {(imp.source, imp.target) for imp in IMPORTS if imp.in_function}
    assert sorted(set(LAZY) - used) == []


def test_the_query_package_does_not_pull_in_the_queryset() -> None:
    """`dynorm.query`'s __init__ is the bottom of the layer: the compilers import it."""
    graph = _dynorm_edges([i for i in IMPORTS if not i.in_function])
    reached: set[str] = set()
    todo = ["dynorm.query"]
    while todo:
        node = todo.pop()
        for nxt in graph[node]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    assert "dynorm.query.queryset" not in reached
    assert "dynorm.models" not in reached


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(graph) == expected
