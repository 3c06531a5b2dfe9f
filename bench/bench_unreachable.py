"""How long `huaxiang crawl` takes to give up on a source where nothing listens.

Issue 14's acceptance: under 30 s, exit 1, the URL named. One command:

    .venv/bin/python bench/bench_unreachable.py

It writes a one-query config pointing at a closed loopback port, runs the real
CLI in a subprocess and prints the wall-clock time, the exit code and the last
line, beside the same run's reference: the retry waits the client is built
with (bot.find.http.CONNECT_DELAYS).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.find.http import CONNECT_DELAYS  # noqa: E402


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    port = closed_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.toml"
        cfg.write_text(f'[[sources]]\nname = "sb"\nplatform = "sandbox"\nbase_url = "http://127.0.0.1:{port}"\n\n'
                       '[[queries]]\nname = "q"\nsource = "sb"\nkind = "keyword"\nvalue = "跑步"\n', encoding="utf-8")
        start = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "bot", "--config", str(cfg), "--db", str(Path(tmp) / "u.db"),
                              "crawl"], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "COLUMNS": "400"})
        took = time.monotonic() - start
    said = [line for line in (run.stdout + run.stderr).splitlines() if "cannot connect" in line] or [""]
    waits = sum(CONNECT_DELAYS)
    print(f"crawl against closed port {port}: {took:.1f} s, exit {run.returncode} (target: under 30 s, exit 1)")
    print(f"  of which retry waits: {waits:.1f} s ({waits / took:.0%}); the rest is start-up and three refused connects")
    print(f"  said: {said[0].strip()}")
    return 0 if run.returncode == 1 and took < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
