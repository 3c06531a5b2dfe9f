"""The JSON sidecar every export writes beside itself.

Why: an audience list forwarded by mail loses its context. The sidecar says
what the file holds, when it was made, with which filters and from which
analysis run, whether ids are pseudonymised, and a checksum, so a colleague
can tell a stale or edited list from the real one. It never holds a secret
or the pseudonym key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bot import __version__
from bot.report.exports.writers import atomic_file


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_sidecar(path: Path, meta: dict[str, Any]) -> Path:
    out = sidecar_path(path)
    body = {"file": path.name, "huaxiang_version": __version__, **meta}
    with atomic_file(out, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(body, fh, ensure_ascii=False, indent=2, sort_keys=False)
        fh.write("\n")
    return out
