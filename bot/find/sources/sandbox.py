"""The sandbox platform: the Weibo adapter pointed at the local sandbox server.

Why a subclass and not a mode flag: records crawled from the sandbox are
stored under their own platform name ("sandbox"), so generated data never
mixes with real Weibo data in one database, while every byte of parsing and
classification is the real adapter's.
"""

from __future__ import annotations

from typing import Any

from config import SourceSettings
from bot.errors import HuaxiangError
from bot.find.sources.weibo import WeiboSource

# The sandbox's well-known write token (not a secret: it only opens the local
# sandbox). A configured token_env/token_file still wins.
SANDBOX_TOKEN = "sandbox-token"


class SandboxSource(WeiboSource):
    platform = "sandbox"
    send_mode = "sandbox"
    send_token = None                   # the well-known sandbox token below
    local = True
    default = False
    # Sandbox posts exist nowhere on the web, and the sandbox's port changes
    # between runs: no URL is stored rather than a wrong or unstable one.
    # (``signin`` stays Weibo's: the sandbox stands in for Weibo's sign-in.)
    post_url = None

    @classmethod
    def post_link(cls, pid: str, sources: list[SourceSettings]) -> str | None:
        """The running sandbox's page for the post (the first sandbox source's base_url)."""
        for s in sources:
            if s.platform == cls.platform and s.base_url:
                return f"{s.base_url.rstrip('/')}/detail/{pid}"
        return None

    @classmethod
    def profile_link(cls, uid: str) -> str | None:
        return None

    def __init__(self, settings: Any, http: Any, secrets: dict[str, str | None] | None = None, now: Any = None):
        secrets = dict(secrets or {})
        if not secrets.get("token"):
            secrets["token"] = SANDBOX_TOKEN
        super().__init__(settings, http, secrets, now)
        if not settings.base_url:
            raise HuaxiangError(f"source {settings.name!r}: platform 'sandbox' needs base_url (the sandbox's http://127.0.0.1:PORT)")

    def _default_api_base(self) -> str:
        return self.settings.base_url

    def _write_headers(self, idempotency_key: str) -> dict[str, str] | None:
        # The sandbox records the key with each action so tests can prove "sent once".
        return {"X-Idempotency-Key": idempotency_key} if idempotency_key else None


SOURCE_CLASS = SandboxSource
