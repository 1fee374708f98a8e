"""The scheduler process: `python -m jobs.scheduler` runs `rq cron` on `jobs.cron`, and outlives Redis outages.

RQ's own `rq cron jobs.cron` ends at the first Redis error (its loop has no retry). This
runs the same CronScheduler with the same configuration, and when Redis cannot be reached it
waits (0.5 s doubling to 5 s) and carries on with the schedule it had: jobs that were due while
Redis was away are queued as soon as it answers again. It reads REDIS_URL (default: the
embedded Redis socket under the instance folder), as the web and the worker do.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import suppress
from types import FrameType

import redis
from redis.client import Pipeline
from rq.cron import CronScheduler
from rq.exceptions import SchedulerNotFound, StopRequested

from dashboard.config import default_redis_url

FIRST_DELAY = 0.5
MAX_DELAY = 5.0
STABLE_AFTER = 60.0
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)

log = logging.getLogger("jobs.scheduler")


class PatientCronScheduler(CronScheduler):
    """A CronScheduler whose loop survives Redis errors; SIGINT and SIGTERM still stop it."""

    _stopping = False

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True  # the StopRequested raised next may be masked by a Redis error (register_death)
        super()._request_stop(signum, frame)

    def register_death(self, pipeline: Pipeline | None = None) -> None:
        """Leave the registry; an entry that Redis lost (restarted without its data) is gone already."""
        with suppress(SchedulerNotFound):
            super().register_death(pipeline)

    def start(self) -> None:
        """Run RQ's loop; after a Redis error, wait and run it again with the schedule it had."""
        delay = FIRST_DELAY
        while not self._stopping:
            began = time.monotonic()
            try:
                super().start()
            except REDIS_ERRORS as error:
                if time.monotonic() - began > STABLE_AFTER:
                    delay = FIRST_DELAY  # it had been running: a new outage starts the backoff over
                log.warning("Redis unavailable (%s); the cron scheduler carries on in %.1f s", error, delay)
                self._wait(delay)
                delay = min(delay * 2, MAX_DELAY)
            else:
                return

    def _wait(self, seconds: float) -> None:
        try:
            if not self._stopping:
                time.sleep(seconds)
        except StopRequested:
            pass  # SIGTERM while waiting: `_stopping` is set and the loop ends


def main() -> None:
    """Load `jobs.cron` and run it until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url = os.environ.get("REDIS_URL") or default_redis_url()
    connection = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    scheduler = PatientCronScheduler(connection=connection, logging_level=logging.WARNING)
    scheduler.load_config_from_file("jobs.cron")
    scheduler.start()


if __name__ == "__main__":
    main()
