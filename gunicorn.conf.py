"""gunicorn settings: gevent workers, since each live stream holds a connection."""
import os

worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
timeout = 60
graceful_timeout = 5
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", None)


def on_starting(server):  # noqa: ANN001
    """Raise the open-file limit so thousands of streams fit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, worker_connections + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
