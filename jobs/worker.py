"""The RQ worker class: `rq worker -w jobs.worker.AppWorker alerts sync`."""
from __future__ import annotations

from typing import Any

from rq.worker import Worker

from jobs import get_app


class AppWorker(Worker):
    """Builds the Flask app once, before the first job, so each forked job starts without that cost."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        get_app()
        super().__init__(*args, **kwargs)
