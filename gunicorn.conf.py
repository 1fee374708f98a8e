"""gunicorn settings: gevent workers, since each live stream holds a connection."""
import os

worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "25000"))
timeout = 60
graceful_timeout = 5
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", None)

# Greenlets need not remember who spawned them (gevent's default keeps a stack summary per greenlet).
os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")


def on_starting(server):  # noqa: ANN001
    """Raise the open-file limit so thousands of streams fit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, worker_connections + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def post_worker_init(worker):  # noqa: ANN001
    """Call the application for each request in a greenlet of its own that ends when the call returns.

    A greenlet's Python frames live in a 16 KiB stack it allocates when it starts and keeps until it
    ends; the pages a deep call touched stay resident. The connection's greenlet outlives its request
    (a live stream waits in it for as long as the page is open), while Flask's dispatch, the sign-in
    and the database are deep: run there, they would leave about 8 KiB behind in every open stream.
    Run in a short-lived greenlet, they leave nothing, and the connection's greenlet only iterates the
    response, which is shallow.

    A response the app marks as long-lived (`dashboard.web.live.LONG_LIVED` in its environ) keeps,
    once the app has returned it, only the environ keys gunicorn reads afterwards (its access log's
    and the file-wrapper check): gunicorn holds the environ until the response ends, and the request's
    headers, input and Flask's request object are not needed for that.
    """
    import greenlet

    from dashboard.web.live import LONG_LIVED

    application = worker.wsgi

    def call_in_own_greenlet(environ, start_response):  # noqa: ANN001, ANN202
        response = greenlet.greenlet(application).switch(environ, start_response)
        if environ.get(LONG_LIVED):
            kept = {key: environ[key] for key in _READ_AFTER_RETURN if key in environ}
            environ.clear()  # frees the dict's table too, which deleting keys one by one would not
            environ.update(kept)
        return response

    worker.wsgi = call_in_own_greenlet


_READ_AFTER_RETURN = ("wsgi.file_wrapper", "REMOTE_ADDR", "REQUEST_METHOD", "RAW_URI", "SERVER_PROTOCOL",
                      "PATH_INFO", "QUERY_STRING", "HTTP_REFERER", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION")
"""The environ keys gunicorn reads once the app has returned: the file-wrapper check and the access log's."""
