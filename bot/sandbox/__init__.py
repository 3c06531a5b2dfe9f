"""The sandbox platform: a local, deterministic stand-in for Weibo.

``start_sandbox()`` runs it in a background thread for tests and the demo;
``huaxiang sandbox serve`` runs it in the foreground.
"""

from __future__ import annotations

from bot.sandbox.faults import FaultConfig
from bot.sandbox.server import SandboxServer, start_sandbox
from bot.sandbox.world import World

__all__ = ["FaultConfig", "SandboxServer", "World", "start_sandbox"]
