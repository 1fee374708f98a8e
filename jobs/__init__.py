"""RQ entry points: an app per worker process, an app context per job.

Jobs are functions of ids. The app is built once per worker process
(`jobs.worker.AppWorker` builds it before the first job and runs jobs in
process); under a forking worker, a work horse keeps the app but drops the
connections it inherited, so it never shares the parent's database connections.
"""
from __future__ import annotations

import os
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Flask

F = TypeVar("F", bound=Callable[..., Any])
_app: Flask | None = None
_app_pid: int | None = None


def get_app() -> Flask:
    global _app, _app_pid
    if _app is None:
        from dashboard import create_app

        _app = create_app()
        _app_pid = os.getpid()
    elif _app_pid != os.getpid():
        from dashboard.extensions import db

        with _app.app_context():
            db.engine.dispose(close=False)  # the parent's connections stay the parent's
        _app_pid = os.getpid()
    return _app


def in_app_context(func: F) -> F:
    """Run the job inside an app context, with writer transactions, and release the session after."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from flask import has_app_context

        from dashboard.database import writer
        from dashboard.extensions import db

        if has_app_context():
            with writer():
                return func(*args, **kwargs)
        with get_app().app_context(), writer():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]
