"""The RQ worker class: `rq worker -w jobs.worker.AppWorker alerts sync`."""
from __future__ import annotations

from typing import Any

from rq.worker import SimpleWorker

from jobs import get_app


class AppWorker(SimpleWorker):
    """Runs each job in this process, with the Flask app built once, before the first job.

    A forked work horse per job starts cold even when it inherits the app: a new database
    connection and an empty SQLAlchemy statement cache, plus the fork itself, cost 70-300 ms on
    a 2-core machine (tests/perf/bench_alert_latency.py), against ~30 ms for an alert evaluation
    in a warm process. Jobs release their database session when they end (`in_app_context`),
    and job timeouts still apply (SIGALRM in this process).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        get_app()
        super().__init__(*args, **kwargs)
