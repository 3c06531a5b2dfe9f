"""Import formats. One module per format defines ``FORMAT`` (its --format
name) and ``read(path) -> Iterator[Item]``; ``bot.importer`` drives them.

An ``Item`` is a parsed post (``Post``, optionally with ``author``) or a
``BadLine`` saying where and what was wrong, so the driver can skip or, in
strict mode, refuse the whole file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.errors import HuaxiangError
from storage.records import Post, User


@dataclass
class BadLine:
    line: int
    problem: str


Item = Post | User | BadLine


class Reader(Protocol):
    def __call__(self, path: Path) -> Iterator[Item]: ...


def json_line(n: int, line: str | bytes) -> object:
    """One JSON-lines record, or a ``BadLine`` saying why it cannot be read.

    Every format that reads JSON lines reports the same problems the same way:
    bad bytes, bad JSON (with the column), and nesting too deep to read.
    """
    import json

    try:
        return json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
    except UnicodeDecodeError as exc:
        return BadLine(n, f"not UTF-8 ({exc.reason})")
    except json.JSONDecodeError as exc:
        return BadLine(n, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return BadLine(n, "JSON nested too deeply to read")


def formats() -> dict[str, Reader]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "FORMAT", None)
        if name:
            found[name] = module.read
    return found


def reader_for(fmt: str) -> Reader:
    known = formats()
    if fmt not in known:
        raise HuaxiangError(f"unknown import format {fmt!r} (known: {', '.join(sorted(known))})")
    return known[fmt]
