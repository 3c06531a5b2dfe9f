"""Whether the process named in a lock row is still running (on this host).

Why here: lock rows (crawl locks, the sender's lease, the service lock) live
in the database, and deciding that one is stale is the same question each
time.
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists here (even one we may not signal)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True
