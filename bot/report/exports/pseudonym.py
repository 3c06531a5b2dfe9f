"""Keyed pseudonyms for exports shared outside the team.

Why a keyed hash (HMAC) and not a plain hash: platform user ids are short
numbers, so a plain hash is reversed by hashing every possible id. With a
secret key the recipient cannot go back to the id, while the same user gets
the same pseudonym in every export made with the same key, so lists can still
be compared and joined.

The key comes from an environment variable or from a key file beside the
database (created on first use, readable by its owner only). It is never
written into an export, a sidecar, the database or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot.errors import HuaxiangError

log = logging.getLogger(__name__)

PREFIX = "anon-"


def key_file_for(db_path: Path) -> Path:
    return Path(str(db_path) + ".pseudonym-key")


@dataclass(frozen=True)
class Pseudonymiser:
    key: bytes
    source: str           # where the key came from, for the sidecar (never the key)

    def uid(self, platform: str | None, uid: str | None) -> str:
        if uid is None:
            return ""
        msg = f"{platform or ''}\x1f{uid}".encode("utf-8")
        return PREFIX + hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:24]

    def secret_values(self) -> tuple[str, ...]:
        """What must never appear in an export: the key in the forms it can take."""
        text = self.key.decode("utf-8", "replace")
        return (text, self.key.hex())


def load_pseudonymiser(db_path: Path, env_name: str = "HUAXIANG_PSEUDONYM_KEY", create: bool = True) -> Pseudonymiser:
    value = os.environ.get(env_name, "").strip() if env_name else ""
    if value:
        if len(value) < 16:
            raise HuaxiangError(f"{env_name} is too short for a pseudonym key (use 16 or more characters)")
        return Pseudonymiser(value.encode("utf-8"), f"environment variable {env_name}")
    path = key_file_for(Path(db_path))
    if path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        if len(text) < 16:
            raise HuaxiangError(f"{path}: pseudonym key is too short (16 or more characters)")
        return Pseudonymiser(text.encode("utf-8"), f"key file {path.name}")
    if not create:
        raise HuaxiangError(f"no pseudonym key: set {env_name} or create {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two exports started at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_pseudonymiser(db_path, env_name, create=False)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    log.info("created pseudonym key %s (keep it to get the same pseudonyms next time)", path)
    return load_pseudonymiser(db_path, env_name, create=False)
