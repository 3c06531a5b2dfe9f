"""Reads our packages' source with ``ast`` (never importing them) into the
facts the structure rules and the structure benchmark judge: which module
imports which (module-level or inside a function), string constants, and
function lengths.

Standard library only, so the rules run before anything is installed and
in well under a second. Shared by ``tests/test_structure.py`` (the rules)
and ``bench/bench_structure.py`` (the figures), so both read the same graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "storage", "nlp", "bot")

# The application's layers, lowest first; a module may import its own layer
# or a lower one, never a higher one. The shared helpers sit below the stages
# (every stage may use them; they use no stage); commands and cli are the shell.
STAGES = ("helpers", "find", "understand", "engage", "report", "service", "commands", "cli")
HELPERS = frozenset({"bot", "bot.errors", "bot.logs", "bot.progress", "bot.textsafe", "bot.argtypes", "bot.i18n", "bot.context"})


@dataclass(frozen=True)
class Module:
    name: str
    path: Path  # relative to the repository
    tree: ast.Module


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool

    def where(self, modules: dict[str, Module]) -> str:
        kind = "in a function" if self.in_function else "at module level"
        return f"{modules[self.source].path}:{self.line}: {self.source} imports {self.target} ({kind})"


def module_name(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def read_modules(root: Path = REPO) -> dict[str, Module]:
    """Every module of our four packages, parsed once per process."""
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(relative))
            modules[module_name(relative)] = Module(module_name(relative), relative, tree)
    return modules


def ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def layer(name: str) -> str:
    """The layer a module of ours belongs to, or "" when no rule places it."""
    top = name.split(".")[0]
    if top != "bot":
        return top
    if name in HELPERS:
        return "helpers"
    if name in ("bot.cli", "bot.__main__"):
        return "cli"
    stage = name.split(".")[1]
    return stage if stage in STAGES else ""


def _resolve(node: ast.ImportFrom, source: Module) -> str:
    """The absolute module named by a ``from X import ...``, relative or not."""
    if not node.level:
        return node.module or ""
    parts = source.name.split(".")
    keep = len(parts) - node.level + (1 if source.path.name == "__init__.py" else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def _targets(node: ast.AST, source: Module, known: dict[str, Module]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(node, source)
        for alias in node.names:
            yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value  # an f-string (plugin discovery) names no one module


def _walk(node: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        yield child, in_function
        inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inside)


@cache
def all_imports(root: Path = REPO) -> tuple[Import, ...]:
    """Every import of one of our modules by another, wherever it is written:
    at module level, inside a function, under ``if TYPE_CHECKING`` (a type
    named is still a dependency), or as ``importlib.import_module("literal")``."""
    modules = read_modules(root)
    found: set[Import] = set()
    for module in modules.values():
        for node, in_function in _walk(module.tree):
            for target in _targets(node, module, modules):
                if ours(target) and target != module.name:
                    found.add(Import(module.name, target, node.lineno, in_function))
    return tuple(sorted(found, key=lambda i: (str(modules[i.source].path), i.line, i.target)))


def edges(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return [c for c in strongly_connected(graph) if len(c) > 1]


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest import chain, counting each cycle (strongly connected
    component) as one level, so the figure exists even while cycles do."""
    components = strongly_connected(graph)  # Tarjan emits them dependencies first
    owner = {member: i for i, component in enumerate(components) for member in component}
    best: dict[int, list[str]] = {}
    for i, component in enumerate(components):
        below = [
            best[owner[t]]
            for m in component
            for t in graph.get(m, ())
            if owner[t] != i
        ]
        label = component[0] if len(component) == 1 else "{" + ", ".join(component) + "}"
        best[i] = [label] + max(below, key=len, default=[])
    return max(best.values(), key=len, default=[])


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


@dataclass(frozen=True)
class Text:
    line: int
    text: str
    node: ast.expr


def string_constants(module: Module) -> list[Text]:
    """Each string written in code, docstrings left out, in line order. An
    f-string is one text with ``_`` for each value it formats, so
    f"UPDATE {table} SET ..." reads as the statement it builds."""
    skip = docstrings(module.tree)
    parts = set()
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.JoinedStr):
            parts.update(id(value) for value in node.values)
            text = "".join(v.value if isinstance(v, ast.Constant) else "_" for v in node.values)
            found.append(Text(node.lineno, text, node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found.append(Text(node.lineno, node.value, node))
    found = [t for t in found if id(t.node) not in parts]
    return sorted(found, key=lambda t: (t.line, t.node.col_offset))


def functions(module: Module) -> Iterator[tuple[str, int, int]]:
    """(qualified name, first line, length in lines) of every function, nested ones too."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child.lineno, child.end_lineno - child.lineno + 1
                yield from visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(module.tree, "")
