"""The rules that keep the structure (docs/architecture.md explains them).

Each rule is one test that reads the source with ``ast`` (nothing is
imported, nothing installed is needed) and, when broken, lists every
offending file:line with what to do instead. Imports are counted wherever
they are written - inside functions and under ``if TYPE_CHECKING`` too - since
a deferred import is still a dependency and still a cycle.
"""

from __future__ import annotations

import ast
import re

from modgraph import STAGES, Import, Module, all_imports, cycles, edges, functions, layer, read_modules, string_constants

MAX_FUNCTION_LINES = 80

# SQL as the project writes it: upper-case keywords, so prose ("select a
# file", "from here") passes. Clauses are listed too because queries are
# often assembled from pieces (" FROM queue WHERE id = ?").
SQL = re.compile(
    r"\b(SELECT|INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|BEGIN|COMMIT|ROLLBACK|SAVEPOINT"
    r"|PRAGMA|CREATE\s+(?:TABLE|INDEX|VIEW|TRIGGER|VIRTUAL\s+TABLE)|DROP\s+TABLE|ALTER\s+TABLE"
    r"|FROM\s+\w+|JOIN\s+\w+|WHERE\s+[\w.]+\s*(?:=|!=|<|>|IN\b|IS\b|LIKE\b)|VALUES\s*\(|ON\s+CONFLICT|ORDER\s+BY|GROUP\s+BY)\b"
)
# Reading another tool's SQLite file (MediaCrawler's store, weibo-crawler's
# weibodata.db) is querying a schema storage/ does not own.
SQL_ALLOWED = ("bot/find/imports/",)

PLATFORMS = frozenset({"weibo", "sandbox", "rss", "mastodon"})
# Adapters and their registry own platform knowledge. Two other places are
# about one platform by nature: the importers read other tools' Weibo files,
# whose table and key names are "weibo"; the sandbox server imitates Weibo's
# API, whose payloads contain the word.
PLATFORMS_ALLOWED = ("bot/find/sources/", "bot/find/imports/", "bot/find/sandbox/")

MODULES = read_modules()
IMPORTS = all_imports()


def _listing(rule: str, lines: list[str], count: int | None = None) -> str:
    return f"{rule} ({len(lines) if count is None else count}):\n  " + "\n  ".join(lines)


def _imports_from(source_layer: str) -> list[Import]:
    return [i for i in IMPORTS if layer(i.source) == source_layer]


def _bad_imports(source_layer: str, allowed: set[str]) -> list[str]:
    return [i.where(MODULES) for i in _imports_from(source_layer) if layer(i.target) not in allowed]


def test_every_module_has_a_layer() -> None:
    unplaced = [f"{m.path}" for m in MODULES.values() if not layer(m.name)]
    assert not unplaced, _listing(
        "modules in no layer: put them under a stage (bot/find, understand, engage, report, service) "
        "or add a shared helper to HELPERS in tests/modgraph.py", unplaced)


def test_config_imports_only_config() -> None:
    """config/ is read by every layer, so it may depend on none of them."""
    bad = _bad_imports("config", {"config"})
    assert not bad, _listing("config/ imports something of ours besides config", bad)


def test_storage_imports_only_storage_and_config() -> None:
    """storage/ answers the application's questions; it knows nothing of who asks."""
    bad = _bad_imports("storage", {"storage", "config"})
    assert not bad, _listing("storage/ imports something of ours besides storage and config", bad)


def test_nlp_imports_only_nlp() -> None:
    """nlp/ is pure text and ML: no database, no application, not even the
    settings or the time module (its functions take plain parameters: parsed
    times, a time zone, texts, matrices; the stage feeding it reads them)."""
    bad = [i.where(MODULES) for i in _imports_from("nlp") if layer(i.target) != "nlp"]
    assert not bad, _listing("nlp/ imports something of ours besides nlp", bad)


def test_bot_stages_point_one_way() -> None:
    """find -> understand -> engage -> report -> service -> commands -> cli: a
    stage may import an earlier stage, never a later one."""
    order = {name: rank for rank, name in enumerate(STAGES)}
    bad = [
        f"{i.where(MODULES)}: {layer(i.source)} may not import {layer(i.target)}"
        for i in IMPORTS
        if layer(i.source) in order and layer(i.target) in order
        and order[layer(i.target)] > order[layer(i.source)] and layer(i.target) != "commands"
    ]
    assert not bad, _listing(
        "imports pointing up the stages (pass the thing in from above, or move it down to where both can reach it)", bad)


def test_only_the_cli_imports_commands() -> None:
    """Commands are the thin shell: one command reusing another's code means
    that code belongs in a stage (or config/) where both can import it."""
    bad = [i.where(MODULES) for i in IMPORTS if layer(i.target) == "commands" and layer(i.source) != "cli"]
    assert not bad, _listing("bot/commands imported by something other than bot/cli.py and bot/__main__.py", bad)


def test_shared_helpers_import_no_stage() -> None:
    """errors, logs, progress, textsafe, argtypes, i18n, context sit below
    every stage so every stage can use them."""
    bad = _bad_imports("helpers", {"helpers", "config", "storage", "nlp"})
    assert not bad, _listing("shared helpers in bot/ importing a stage", bad)


def _cycle_report(graph: dict[str, set[str]], imports: list[Import]) -> list[str]:
    lines = []
    for component in cycles(graph):
        members = set(component)
        lines.append("cycle: " + " <-> ".join(component))
        lines += [f"    {i.where(MODULES)}" for i in imports if i.source in members and i.target in members]
    return lines


def test_no_import_cycle_at_module_level() -> None:
    module_level = [i for i in IMPORTS if not i.in_function]
    bad = _cycle_report(edges(module_level), module_level)
    assert not bad, _listing("import cycles among our modules (module-level imports)", bad, len(cycles(edges(module_level))))


def test_no_import_cycle_counting_imports_in_functions() -> None:
    """An import moved into a function hides a cycle from Python, not from the
    reader: break it by putting the shared thing in the layer both belong to."""
    bad = _cycle_report(edges(IMPORTS), list(IMPORTS))
    assert not bad, _listing("import cycles among our modules (counting imports inside functions)", bad, len(cycles(edges(IMPORTS))))


def test_no_sql_outside_storage() -> None:
    """storage/ owns every query and transaction (storage.db.transaction for
    BEGIN/COMMIT/ROLLBACK); elsewhere, call a storage function."""
    bad = [
        f"{m.path}:{s.line}: {SQL.search(s.text).group(0)!r} in {s.text.strip()[:60]!r}"
        for m in MODULES.values()
        if layer(m.name) != "storage" and not str(m.path).startswith(SQL_ALLOWED)
        for s in string_constants(m)
        if SQL.search(s.text)
    ]
    assert not bad, _listing("SQL outside storage/ (move it into a storage function)", bad)


def test_functions_at_most_80_lines() -> None:
    bad = [
        f"{m.path}:{line}: {name} is {length} lines"
        for m in MODULES.values()
        for name, line, length in functions(m)
        if length > MAX_FUNCTION_LINES
    ]
    assert not bad, _listing(f"functions over {MAX_FUNCTION_LINES} lines (split them by job)", bad)


def _command_names(module: Module) -> set[int]:
    """ids of the names given to ``add_parser``: a command called "sandbox"
    is the CLI's vocabulary, not knowledge of the platform."""
    return {
        id(node.args[0])
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_parser" and node.args
    }


def test_platform_names_only_in_adapters() -> None:
    """A new platform is one new adapter in bot/find/sources/: nothing else may
    spell a platform's name. Ask the adapter (links, send modes, settings)."""
    found: dict[str, list[str]] = {}
    for m in MODULES.values():
        if str(m.path).startswith(PLATFORMS_ALLOWED):
            continue
        commands = _command_names(m)
        for s in string_constants(m):
            if s.text in PLATFORMS and id(s.node) not in commands:
                found.setdefault(f"{m.path}:{s.line}", []).append(repr(s.text))
    bad = [f"{where}: {', '.join(names)}" for where, names in found.items()]
    assert not bad, _listing("platform names outside bot/find/sources/ (ask the adapter instead)", bad)


# The reader itself, on a small made-up tree: what the rules above would miss
# if it stopped seeing it.

def _tree(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in ("config", "storage", "nlp", "bot"):
        (root / package).mkdir(exist_ok=True)
    return root


def test_the_reader_sees_deferred_relative_and_typing_imports(tmp_path) -> None:
    root = _tree(tmp_path, {
        "bot/__init__.py": "",
        "bot/find/__init__.py": "",
        "bot/find/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.engage import b\n",
        "bot/engage/__init__.py": "from . import b\n",
        "bot/engage/b.py": "def f():\n    from ..find import a\n    import importlib\n    importlib.import_module('nlp.x')\n",
        "nlp/x.py": "",
    })
    found = {(i.source, i.target, i.in_function) for i in all_imports(root)}
    assert found == {
        ("bot.find.a", "bot.engage.b", False),
        ("bot.engage", "bot.engage.b", False),
        ("bot.engage.b", "bot.find.a", True),
        ("bot.engage.b", "nlp.x", True),
    }
    assert cycles(edges(all_imports(root))) == [["bot.engage.b", "bot.find.a"]]


def test_the_reader_keeps_code_strings_and_drops_docstrings(tmp_path) -> None:
    root = _tree(tmp_path, {
        "bot/m.py": '"""SELECT in a docstring is prose."""\n'
                    'def f(t):\n    """DELETE FROM here: prose too."""\n'
                    '    return f"UPDATE {t} SET n = 1", "weibo"\n',
    })
    texts = [s.text for s in string_constants(read_modules(root)["bot.m"])]
    assert texts == ["UPDATE _ SET n = 1", "weibo"]
    assert SQL.search(texts[0]) and not SQL.search("select a file from here")
    assert [(name, length) for name, _, length in functions(read_modules(root)["bot.m"])] == [("f", 3)]
