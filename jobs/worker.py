"""The RQ worker class: `rq worker -w jobs.worker.AppWorker alerts sync`."""
from __future__ import annotations

import socket
import time
from typing import Any

import redis
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.worker import SimpleWorker
from sqlalchemy.exc import SQLAlchemyError

from dashboard.processes import is_running
from jobs import get_app

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
CHECK_INTERVAL = 1.0


class AppWorker(SimpleWorker):
    """Runs each job in this process, with the Flask app built once, before the first job.

    A forked work horse per job starts cold even when it inherits the app: a new database
    connection and an empty SQLAlchemy statement cache, plus the fork itself, cost 70-300 ms on
    a 2-core machine (tests/perf/bench_alert_latency.py), against ~30 ms for an alert evaluation
    in a warm process. Jobs release their database session when they end (`in_app_context`),
    and job timeouts still apply (SIGALRM in this process).

    It also keeps scheduled jobs (the grouping-wait announcements) on time through a Redis
    outage. RQ's scheduler process (`--with-scheduler`) exits at its first Redis error, and RQ
    starts it again only in its 10-minute maintenance; RQ also waits up to a minute between
    reconnection attempts and up to 405 s for a job. This worker waits at most a second for a
    job and half a second between reconnection attempts, and once a second (between jobs, or
    while it waits for one) it starts a dead scheduler process again, and schedules the next
    announcement again from the database when the Redis it reaches is new to it (first contact,
    or a restart that may have lost the scheduled job).
    """

    max_connection_wait_time = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        get_app()
        super().__init__(*args, **kwargs)
        self._next_check = 0.0
        self._redis_run_id: str | None = None

    @property
    def dequeue_timeout(self) -> int:
        """Wait at most a second for a job, so the checks in `run_maintenance_tasks` run while idle too."""
        return 1

    @property
    def connection_timeout(self) -> int:
        """How long one Redis command may hang: a paused Redis answers when it resumes, so wait for it."""
        return 60

    @property
    def should_run_maintenance_tasks(self) -> bool:
        """RQ's maintenance when due (every 10 minutes), and this worker's checks once a second."""
        return super().should_run_maintenance_tasks or time.monotonic() >= self._next_check

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job; when Redis goes away meanwhile, wait for it rather than quit.

        RQ's loop quits on a Redis error anywhere but in its wait for a job, and a job that runs
        while Redis restarts cannot record its outcome. Its record in Redis stays "started" until
        RQ's registry cleanup retries or fails it; the jobs are idempotent, and the periodic scan
        and sweep redo what a lost job would have done.
        """
        try:
            super().execute_job(job, queue)
        except REDIS_ERRORS as error:
            self.log.warning("Worker %s: Redis went away during job %s (%s); waiting for it", self.name, job.id, error)
            self._wait_for_redis()

    def _wait_for_redis(self) -> None:
        while not self._stop_requested:
            try:
                self.connection.ping()
                return
            except REDIS_ERRORS:  # also what a stop request raises while Redis is away
                time.sleep(self.max_connection_wait_time)

    def run_maintenance_tasks(self) -> None:
        self._next_check = time.monotonic() + CHECK_INTERVAL
        try:
            self._reschedule_if_redis_is_new()  # first, so that a scheduler started next finds the job at once
            self._keep_scheduler_running()
        except REDIS_ERRORS as error:
            self.log.warning("Worker %s: Redis unavailable for its checks (%s); retrying", self.name, error)
        if super().should_run_maintenance_tasks:
            super().run_maintenance_tasks()

    def _keep_scheduler_running(self) -> None:
        """Start the scheduler process again as soon as it has died (after a Redis error, say)."""
        scheduler = self.scheduler
        if scheduler is None or (scheduler._process is not None and scheduler._process.is_alive()):
            return
        if scheduler._process is not None:
            self.log.warning("Worker %s: scheduler process exited with %s; starting it again",
                             self.name, scheduler._process.exitcode)
            scheduler._process = None
        self._free_abandoned_scheduler_locks()
        if scheduler.acquire_locks():
            self._close_idle_connections()
            scheduler.start()

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        self._close_idle_connections()
        super()._start_scheduler(*args, **kwargs)

    def _close_idle_connections(self) -> None:
        """Close this worker's idle Redis connections before the scheduler process forks.

        A forked process inherits the sockets. Were this worker killed, the socket it waits for a
        job on would stay open in the scheduler process, and Redis would hand the next job to a
        reader that is gone. The worker opens a new connection at its next command.
        """
        self.connection.connection_pool.disconnect(inuse_connections=False)

    def _free_abandoned_scheduler_locks(self) -> None:
        """Release scheduler locks held by a scheduler process of this machine that no longer runs.

        A worker killed together with its scheduler (SIGKILL, the OOM killer) leaves the locks for
        a minute (their TTL); until then no scheduler would move scheduled jobs to their queues.
        """
        for queue_name in self.queue_names():
            key = RQScheduler.get_locking_key(queue_name)
            holder = self.connection.get(key)
            if holder is not None and _abandoned(holder.decode(), self.connection):
                release_lock(self.connection, key, holder.decode())

    def _reschedule_if_redis_is_new(self) -> None:
        """Schedule the next announcement from the database when this Redis is new to the worker.

        The database is the source of truth; the scheduled job has a deterministic id, so
        scheduling it again when it is still there is harmless.
        """
        run_id = self.connection.info("server")["run_id"]
        if run_id == self._redis_run_id:
            return
        from dashboard.extensions import db
        from jobs.alerts import schedule_announcement

        with get_app().app_context():
            try:
                schedule_announcement()
            except SQLAlchemyError as error:
                self.log.warning("Worker %s: could not read the next announcement (%s); the minute scan makes it",
                                 self.name, error)
            finally:
                db.session.remove()
        self._redis_run_id = run_id


def _abandoned(scheduler_name: str, connection: redis.Redis) -> bool:
    """True for a scheduler of this machine whose process is gone (one still starting has no record yet)."""
    hostname, pid = connection.hmget(SCHEDULER_KEY_TEMPLATE % scheduler_name, "hostname", "pid")
    if hostname is None or pid is None:
        return False
    return hostname.decode() == socket.gethostname() and not is_running(int(pid))

