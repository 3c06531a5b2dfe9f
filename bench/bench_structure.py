"""The shape of bot/'s import graph: the figures issue 18 argues from.

    .venv/bin/python bench/bench_structure.py [--at REV] [--against REV]

For the work tree (or commit ``--at``) and a reference commit (``--against``,
by default the last commit before bot/ was grouped by stage), over the modules
under bot/ (every .py file is a module; imports of config/, storage/ and nlp/
are left out), prints:

- dependencies: distinct module -> module imports, counting imports written
  inside functions and, separately, module-level imports only;
- depth: modules on the longest import chain (a cycle counts as one level,
  so the figure exists while cycles do), with the chain itself;
- upward: imports of a later stage by an earlier one (helpers < find <
  understand < engage < report < service < commands < cli), plus imports of
  bot/commands by anything but the cli; meaningful only where bot/ is grouped
  by stage, so the count of modules in no stage is printed beside it;
- cycles, and which stage imports which.

Reads source with ``ast`` (tests/modgraph.py, the same reader as
tests/test_structure.py); a commit is read from ``git archive``, nothing is
checked out. Takes about a second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from modgraph import PACKAGES, STAGES, Import, all_imports, cycles, edges, layer, longest_chain, read_modules  # noqa: E402

FLAT_LAYOUT = "37e4e56"  # the last commit with bot/ as loose modules (before issue 18's moves)


@dataclass
class Graph:
    """One view of the imports: its nodes and the figures read from them."""

    nodes: int
    deps: int
    deps_module_level: int
    depth: int
    depth_module_level: int
    chain: list[str]
    cycles: list[list[str]]


@dataclass
class Figures:
    label: str
    modules: Graph
    entries: Graph
    upward: list[Import]
    unplaced: int
    stage_deps: Counter


def _in_bot(imports: tuple[Import, ...]) -> list[Import]:
    return [i for i in imports if i.source.split(".")[0] == "bot" and i.target.split(".")[0] == "bot"]


def _entry(name: str) -> str:
    """The top-level entry of bot/ a module is in (what ``ls bot/`` shows)."""
    return ".".join(name.split(".")[:2])


def _graph(imports: list[Import], nodes: set[str], unit=lambda name: name) -> Graph:
    def collapse(selected: list[Import]) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {}
        for i in selected:
            if unit(i.source) != unit(i.target):
                graph.setdefault(unit(i.source), set()).add(unit(i.target))
        return graph

    every, module_level = collapse(imports), collapse([i for i in imports if not i.in_function])
    chain = longest_chain(every)
    return Graph(
        nodes=len({unit(n) for n in nodes}),
        deps=sum(len(t) for t in every.values()),
        deps_module_level=sum(len(t) for t in module_level.values()),
        depth=len(chain),
        depth_module_level=len(longest_chain(module_level)),
        chain=chain,
        cycles=cycles(every),
    )


def _upward(imports: list[Import]) -> list[Import]:
    order = {name: rank for rank, name in enumerate(STAGES)}
    found = []
    for i in imports:
        src, dst = layer(i.source), layer(i.target)
        if dst == "commands" and src != "cli" or (
            src in order and dst in order and dst != "commands" and order[dst] > order[src]
        ):
            found.append(i)
    return found


def measure(root: Path, label: str) -> Figures:
    bot = {name for name in read_modules(root) if name.split(".")[0] == "bot"}
    imports = _in_bot(all_imports(root))
    stage_deps = Counter(
        (layer(s), layer(t)) for s, targets in edges(imports).items() for t in targets if layer(s) != layer(t)
    )
    return Figures(
        label=label,
        modules=_graph(imports, bot),
        entries=_graph(imports, bot, _entry),
        upward=_upward(imports),
        unplaced=sum(1 for name in bot if not layer(name)),
        stage_deps=stage_deps,
    )


def checkout(rev: str, into: Path) -> Path:
    """The four packages at ``rev``, unpacked into ``into`` (no checkout, no index change)."""
    into.mkdir(parents=True)
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, *PACKAGES], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def _show_graph(title: str, g: Graph) -> None:
    print(f"  {title}: {g.nodes}")
    print(f"    dependencies   {g.deps:4d} counting imports in functions, {g.deps_module_level} module-level only")
    print(f"    depth          {g.depth:4d} levels counting imports in functions, {g.depth_module_level} module-level only")
    print(f"    cycles         {len(g.cycles):4d}" + "".join(f"\n                   {' <-> '.join(c)}" for c in g.cycles))
    print(f"    longest chain  {' -> '.join(g.chain)}")


def show(f: Figures) -> None:
    print(f"{f.label}:")
    _show_graph("modules under bot/", f.modules)
    _show_graph("top-level entries of bot/ (a stage or a loose module)", f.entries)
    note = f"  (not meaningful: {f.unplaced} modules in no stage)" if f.unplaced else ""
    print(f"  upward imports   {len(f.upward):4d}{note}")
    for i in f.upward:
        print(f"                   {i.source} -> {i.target} (line {i.line})")
    if not f.unplaced:
        pairs = sorted(f.stage_deps.items(), key=lambda kv: (STAGES.index(kv[0][0]), STAGES.index(kv[0][1])))
        print("  stage -> stage   " + ", ".join(f"{s}->{t} {n}" for (s, t), n in pairs))


def ratio(now: int, before: int) -> str:
    return f"{now / before:.2f}x" if before else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", metavar="REV", help="measure this commit instead of the work tree")
    parser.add_argument("--against", metavar="REV", default=FLAT_LAYOUT,
                        help=f"reference commit (default {FLAT_LAYOUT}, bot/ before it was grouped by stage)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        now = measure(checkout(args.at, Path(tmp) / "at") if args.at else ROOT, args.at or "work tree")
        before = measure(checkout(args.against, Path(tmp) / "against"), args.against)
    show(now)
    show(before)
    for view in ("modules", "entries"):
        a, b = getattr(now, view), getattr(before, view)
        print(f"{view}: {now.label} vs {before.label}: dependencies {a.deps} vs {b.deps} ({ratio(a.deps, b.deps)}), "
              f"depth {a.depth} vs {b.depth} levels ({ratio(a.depth, b.depth)}), cycles {len(a.cycles)} vs {len(b.cycles)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
