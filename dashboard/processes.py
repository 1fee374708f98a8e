"""Whether a process of this machine is still there (for cleaning up after processes that died)."""
from __future__ import annotations

import os


def is_running(pid: int) -> bool:
    """True while a process with this id exists, ours or another user's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
