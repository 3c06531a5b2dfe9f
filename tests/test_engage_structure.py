"""The engage stage keeps its shape: SQL only in storage/, no import cycle
(imports inside functions count), nothing imported from a later stage or the
shell above it, and no function over 80 lines.

Why read the source (ast) rather than import it: a cycle hidden in a function
body only bites at run time, on the path that happens to import second.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGAGE = ROOT / "bot" / "engage"
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|PRAGMA|CREATE)\b")
UPWARD = ("bot.report", "bot.service", "bot.commands", "bot.cli")


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(ENGAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


def _imports(tree: ast.Module) -> set[str]:
    """Every module named by an import anywhere in the file, ``from a import b`` as both a and a.b."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_sql_outside_storage():
    found = [f"{path.name}:{node.lineno}" for path, tree in _modules().values() for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)]
    assert not found, f"SQL belongs in storage/: {found}"


def test_no_import_cycle_and_nothing_upward():
    mods = _modules()
    deps = {name: {d for d in _imports(tree) if d in mods and d != name} for name, (_, tree) in mods.items()}
    upward = {name: sorted(d for d in _imports(tree) if d.startswith(UPWARD)) for name, (_, tree) in mods.items()}
    assert not {k: v for k, v in upward.items() if v}, "the engage stage imports a later stage"

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for d in deps[todo.pop()] - seen:
                if d == goal:
                    return True
                seen.add(d)
                todo.append(d)
        return False

    cycles = [name for name in mods if reaches(name, name)]
    assert not cycles, f"import cycle through {cycles}"


def test_no_function_over_80_lines():
    long = [f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in _modules().values() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80]
    assert not long, long
