"""The sandbox platform: a local, deterministic stand-in for Weibo.

``start_sandbox()`` runs it in a background thread for tests and the demo;
``huaxiang sandbox serve`` runs it in the foreground.
"""

from __future__ import annotations

from bot.find.sandbox.faults import FaultConfig
from bot.find.sandbox.server import SandboxServer, start_sandbox
from bot.find.sandbox.world import World

__all__ = ["FaultConfig", "SandboxServer", "World", "start_sandbox"]
