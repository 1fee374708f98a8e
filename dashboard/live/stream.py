"""The authorised event stream: flask-sse's message format, one Redis subscription per process.

Plain flask-sse opens a Redis subscription per browser and sends no bytes
until the first event. Here one listener thread per web process (a greenlet
under gunicorn's gevent worker) pattern-subscribes to every live channel and
fans each message out to the in-memory queues of the streams allowed to read
it. A stream's channels are worked out on the server from the signed-in user;
the client chooses none. A stream sends a comment at once, a heartbeat
comment every 15 seconds, and holds no database connection.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import redis
from flask_sse import Message

from dashboard import metrics
from dashboard.live.publish import CHANNEL_PREFIX, PLATFORM_CHANNEL, organization_channel, user_channel
from dashboard.vocabulary import LiveEvent

log = logging.getLogger(__name__)
ALL_ORGANIZATIONS = "org:*"
HEARTBEAT_SECONDS = 15.0
QUEUE_LIMIT = 100
RESYNC = Message({"reason": "reconnected"}, type=LiveEvent.RESYNC.value)


def channels_for(user_id: int, organization_ids: set[int], is_global_admin: bool) -> frozenset[str]:
    """Exactly the channels a user may read: their own, their organizations', and the platform's."""
    channels = {user_channel(user_id)} | {organization_channel(o) for o in organization_ids}
    if is_global_admin:
        channels |= {ALL_ORGANIZATIONS, PLATFORM_CHANNEL}
    return frozenset(channels)


class Inbox:
    """queue.Queue's put_nowait/get for one reader, at a fraction of its memory (a list and an Event).

    A queue.Queue is three Conditions and a deque, about 3 KiB, and each stream holds one while it
    waits; at 10,000 streams per worker that is 30 MB.
    """

    __slots__ = ("_items", "_ready")

    def __init__(self) -> None:
        self._items: list[Message] = []
        self._ready = threading.Event()

    def put_nowait(self, item: Message) -> None:
        if len(self._items) >= QUEUE_LIMIT:
            raise queue.Full
        self._items.append(item)
        self._ready.set()

    def get(self, timeout: float | None = None) -> Message:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._ready.clear()  # before looking, so a put after the look still wakes the wait
            if self._items:
                return self._items.pop(0)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise queue.Empty
            self._ready.wait(remaining)


@dataclass(eq=False)
class Subscriber:
    channels: frozenset[str]
    inbox: Inbox = field(default_factory=Inbox)

    def offer(self, message: Message) -> None:
        try:
            self.inbox.put_nowait(message)
        except queue.Full:  # a stalled client: it re-fetches on its next reconnect
            pass


class Broker:
    """One Redis pattern subscription for the process, fanned out to local subscribers."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._lock = threading.Lock()
        self._by_channel: dict[str, set[Subscriber]] = {}
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()
        """Set while the Redis subscription is live (events published before it are not seen)."""

    def subscribe(self, channels: frozenset[str]) -> Subscriber:
        subscriber = Subscriber(channels)
        with self._lock:
            for channel in channels:
                self._by_channel.setdefault(channel, set()).add(subscriber)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._listen, name="sse-broker", daemon=True)
                self._thread.start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            for channel in subscriber.channels:
                members = self._by_channel.get(channel)
                if members is not None:
                    members.discard(subscriber)
                    if not members:
                        del self._by_channel[channel]

    def dispatch(self, channel: str, message: Message) -> None:
        with self._lock:
            targets = set(self._by_channel.get(channel, ()))
            if channel.startswith("org:"):
                targets |= self._by_channel.get(ALL_ORGANIZATIONS, set())
        for subscriber in targets:
            subscriber.offer(message)

    def _broadcast(self, message: Message) -> None:
        with self._lock:
            targets = {s for members in self._by_channel.values() for s in members}
        for subscriber in targets:
            subscriber.offer(message)

    def _listen(self) -> None:
        """Listen for ever; after a Redis outage every stream is told to re-fetch what it shows."""
        delay = 0.5
        connected_before = False
        while True:
            client = redis.Redis.from_url(self.redis_url, health_check_interval=30)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                pubsub.get_message(timeout=5)  # the subscription's confirmation
                self.subscribed.set()
                if connected_before:
                    self._broadcast(RESYNC)
                connected_before = True
                delay = 0.5
                for item in pubsub.listen():
                    if item.get("type") != "pmessage":
                        continue
                    channel = item["channel"].decode()[len(CHANNEL_PREFIX):]
                    try:
                        message = Message(**json.loads(item["data"]))
                    except (TypeError, ValueError):  # not flask-sse's format: drop it, keep the subscription
                        log.warning("dropped a malformed live event on %s", channel)
                        continue
                    self.dispatch(channel, message)
            except Exception:  # noqa: BLE001 - Redis went away: back off and resubscribe
                self.subscribed.clear()
                log.warning("live event listener lost Redis; retrying in %.1fs", delay)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


_brokers: dict[str, Broker] = {}
_brokers_lock = threading.Lock()


def broker_for(redis_url: str) -> Broker:
    with _brokers_lock:
        if redis_url not in _brokers:
            _brokers[redis_url] = Broker(redis_url)
        return _brokers[redis_url]


def event_stream(broker: Broker, channels: frozenset[str], heartbeat: float = HEARTBEAT_SECONDS,
                 session_version: int = 0) -> Iterator[bytes]:
    """The bytes of one stream: an opening comment at once, then events and heartbeats.

    The stream ends when its session is revoked (a newer session version is announced on the
    user's channel); the browser's reconnect then meets the sign-in page.
    """
    subscriber = broker.subscribe(channels)
    broker.subscribed.wait(timeout=2)  # open the stream once events can reach it (so a re-fetch then misses nothing)
    try:
        metrics.stream_clients.inc()
        yield b": connected\nretry: 2000\n\n"
        while True:
            try:
                message = subscriber.inbox.get(timeout=heartbeat)
            except queue.Empty:
                yield b": heartbeat\n\n"
                continue
            if message.type == LiveEvent.SESSIONS_REVOKED:
                if (message.data or {}).get("session_version", 0) > session_version:
                    return
                continue
            yield str(message).encode()
            metrics.stream_events.inc()
    finally:
        metrics.stream_clients.dec()
        broker.unsubscribe(subscriber)
