"""A semaphore that serves waiters in the order they came (first come, first served).

`threading.Semaphore` and `Lock` let a newcomer take a freed slot before the
waiter that was woken for it runs, so under steady load one request can wait
past any deadline while later ones pass it. Here a freed slot is handed to the
oldest waiter directly. Under gevent's monkey patching its lock and events
are cooperative, like everything in `threading`.
"""
from __future__ import annotations

import threading
from collections import deque


class FairSemaphore:
    def __init__(self, slots: int = 1) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._lock:
            if turn.is_set():  # handed over just as the wait ended: keep it
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1
