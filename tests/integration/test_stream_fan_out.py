"""What each open stream keeps is small, and the fan-out still reaches exactly the right streams.

The broker keeps each channel's subscribers as a tuple and one heartbeat thread for the process; gunicorn
calls the app in a greenlet of its own and trims a long-lived response's environ (gunicorn.conf.py).
"""
from __future__ import annotations

import os
import queue
import runpy
import threading
from pathlib import Path

import greenlet
import pytest
from flask_sse import Message

from dashboard.live.stream import ALL_ORGANIZATIONS, HEARTBEAT_TICK_SECONDS, QUEUE_LIMIT, Broker, channels_for, \
    event_stream
from dashboard.web.live import LONG_LIVED

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def _received(subscriber) -> list:  # type: ignore[no-untyped-def]
    got = []
    while True:
        try:
            got.append(subscriber.inbox.get(timeout=0))
        except queue.Empty:
            return got


def test_given_subscribers_coming_and_going_when_a_channel_has_an_event_then_exactly_those_left_get_it(app):
    broker = Broker(app.config["REDIS_URL"])
    first, second, third = (broker.subscribe(frozenset({"org:1", f"user:{n}"})) for n in (1, 2, 3))
    broker.unsubscribe(second)

    broker.dispatch("org:1", Message({"n": 1}, type="records-changed"))
    broker.dispatch("user:2", Message({"n": 2}, type="notification"))

    assert [m.data for m in _received(first)] == [{"n": 1}]
    assert _received(second) == []
    assert [m.data for m in _received(third)] == [{"n": 1}]
    broker.unsubscribe(first)
    broker.unsubscribe(third)
    broker.dispatch("org:1", Message({"n": 3}, type="records-changed"))
    assert _received(first) == [] and _received(third) == []


def test_given_a_global_admin_who_is_also_a_member_when_their_organization_has_an_event_then_it_arrives_once(app):
    broker = Broker(app.config["REDIS_URL"])
    admin = broker.subscribe(channels_for(9, {1}, True))
    assert ALL_ORGANIZATIONS in admin.channels and "org:1" in admin.channels

    broker.dispatch("org:1", Message({"n": 1}, type="records-changed"))
    broker.dispatch("org:2", Message({"n": 2}, type="records-changed"))

    assert [m.data for m in _received(admin)] == [{"n": 1}, {"n": 2}]


def test_given_a_stalled_stream_when_its_inbox_is_full_then_the_others_still_get_every_event(app):
    broker = Broker(app.config["REDIS_URL"])
    stalled = broker.subscribe(frozenset({"org:1"}))
    reading = broker.subscribe(frozenset({"org:1"}))
    got = []
    for n in range(QUEUE_LIMIT + 20):
        broker.dispatch("org:1", Message({"n": n}, type="records-changed"))
        got += _received(reading)

    assert [m.data["n"] for m in got] == list(range(QUEUE_LIMIT + 20))
    assert len(_received(stalled)) == QUEUE_LIMIT


def test_given_an_idle_stream_when_its_heartbeat_is_due_then_a_heartbeat_comment_arrives(app):
    broker = Broker(app.config["REDIS_URL"])
    stream = event_stream(broker, channels_for(1, {1}, False), heartbeat=0.1)
    assert next(stream).startswith(b": connected")
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(next(stream)), daemon=True)

    reader.start()
    reader.join(HEARTBEAT_TICK_SECONDS * 3)

    assert chunks == [b": heartbeat\n\n"]
    stream.close()


@pytest.fixture()
def gunicorn_hook(monkeypatch):  # type: ignore[no-untyped-def]
    """gunicorn.conf.py's post_worker_init (the settings file sets a gevent variable: kept out of os.environ)."""
    monkeypatch.setattr(os, "environ", os.environ.copy())
    return runpy.run_path(str(GUNICORN_CONF))["post_worker_init"]


class _Worker:
    def __init__(self, wsgi) -> None:  # type: ignore[no-untyped-def]
        self.wsgi = wsgi


def _environ(**extra: object) -> dict:
    return {"REQUEST_METHOD": "GET", "RAW_URI": "/events", "PATH_INFO": "/events", "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "test",
            "HTTP_COOKIE": "session=x", "wsgi.input": object(), "wsgi.file_wrapper": object, **extra}


def test_given_gunicorn_when_the_app_is_called_then_in_a_greenlet_that_ends_with_the_call(gunicorn_hook):
    caller = greenlet.getcurrent()
    seen = []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        seen.append(greenlet.getcurrent())
        return [b"body"]

    worker = _Worker(app)
    gunicorn_hook(worker)

    assert worker.wsgi(_environ(), None) == [b"body"]
    assert seen[0] is not caller and seen[0].dead


def test_given_gunicorn_when_the_app_raises_then_the_error_reaches_the_server(gunicorn_hook):
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        raise LookupError("from the app")

    worker = _Worker(app)
    gunicorn_hook(worker)

    with pytest.raises(LookupError, match="from the app"):
        worker.wsgi(_environ(), None)


def test_given_a_long_lived_response_when_the_app_returns_then_its_environ_keeps_what_gunicorn_reads(
        gunicorn_hook, app, client, world, login, monkeypatch):
    environs = []
    flask_app = app.wsgi_app
    monkeypatch.setattr(app, "wsgi_app", lambda environ, start_response: environs.append(environ) or
                        flask_app(environ, start_response))
    login(world.admin_a)
    client.get("/notifications/tray").close()
    client.get("/events", buffered=False).close()
    assert [environ.get(LONG_LIVED) for environ in environs[-2:]] == [None, True]

    def stream(environ, start_response):  # type: ignore[no-untyped-def]
        environ[LONG_LIVED] = True
        return [b"stream"]

    streams, pages = _Worker(stream), _Worker(lambda environ, start_response: [b"page"])
    gunicorn_hook(streams)
    gunicorn_hook(pages)
    long_lived, short = _environ(), _environ()
    streams.wsgi(long_lived, None)
    pages.wsgi(short, None)

    assert set(long_lived) == {"REQUEST_METHOD", "RAW_URI", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
                               "REMOTE_ADDR", "HTTP_USER_AGENT", "wsgi.file_wrapper"}
    assert set(short) == set(_environ())
