"""The authorised event stream: flask-sse's message format, one Redis subscription per process.

Plain flask-sse opens a Redis subscription per browser and sends no bytes
until the first event. Here one listener thread per web process (a greenlet
under gunicorn's gevent worker) pattern-subscribes to every live channel and
fans each message out to the in-memory queues of the streams allowed to read
it. A stream's channels are worked out on the server from the signed-in user;
the client chooses none. A stream sends a comment at once, a heartbeat
comment every 15 seconds, and holds no database connection.

A worker holds tens of thousands of streams, so what each one keeps while it
waits is kept small: a tuple of its channels, a list and an event, and no timer
of its own (one heartbeat thread per process offers each stream its heartbeat).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Iterable, Iterator

import redis
from flask_sse import Message

from dashboard import metrics
from dashboard.live.publish import CHANNEL_PREFIX, PLATFORM_CHANNEL, organization_channel, user_channel
from dashboard.vocabulary import LiveEvent

log = logging.getLogger(__name__)
ALL_ORGANIZATIONS = "org:*"
HEARTBEAT_SECONDS = 15.0
QUEUE_LIMIT = 100
HEARTBEAT_TICK_SECONDS = 1.0
"""How often the heartbeat thread looks for streams due one (a heartbeat may come this much late)."""
RESYNC = Message({"reason": "reconnected"}, type=LiveEvent.RESYNC.value)
HEARTBEAT = Message(None)
"""Offered to a stream when its heartbeat is due (compared by identity, never published)."""


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


class Subscriber:
    """One open stream: the channels it reads (a tuple, smaller than a set), its inbox, and when its next
    heartbeat is due (time.monotonic())."""

    __slots__ = ("channels", "inbox", "heartbeat", "heartbeat_due")

    def __init__(self, channels: tuple[str, ...], heartbeat: float) -> None:
        self.channels = channels
        self.inbox = Inbox()
        self.heartbeat = heartbeat
        self.heartbeat_due = time.monotonic() + heartbeat

    def offer(self, message: Message) -> None:
        try:
            self.inbox.put_nowait(message)
        except queue.Full:  # a stalled client: it re-fetches on its next reconnect
            pass


class Broker:
    """One Redis pattern subscription for the process, fanned out to local subscribers.

    Each channel's subscribers are a tuple, replaced (under the lock) when one comes or goes: most
    channels are one user's, and a tuple of one costs a quarter of a set; a message's fan-out reads
    the current tuple without copying it or taking the lock.
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._lock = threading.Lock()
        self._by_channel: dict[str, tuple[Subscriber, ...]] = {}
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._heartbeat_thread: threading.Thread | None = None
        self.subscribed = threading.Event()
        """Set while the Redis subscription is live (events published before it are not seen)."""

    def subscribe(self, channels: frozenset[str], heartbeat: float = HEARTBEAT_SECONDS) -> Subscriber:
        """A subscriber to `channels`, offered HEARTBEAT every `heartbeat` seconds (on the next tick)."""
        subscriber = Subscriber(tuple(channels), heartbeat)
        with self._lock:
            for channel in subscriber.channels:
                self._by_channel[channel] = self._by_channel.get(channel, ()) + (subscriber,)
            self._subscribers.add(subscriber)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._listen, name="sse-broker", daemon=True)
                self._thread.start()
            if self._heartbeat_thread is None or not self._heartbeat_thread.is_alive():
                self._heartbeat_thread = threading.Thread(target=self._beat, name="sse-heartbeat", daemon=True)
                self._heartbeat_thread.start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)
            for channel in subscriber.channels:
                members = self._by_channel.get(channel, ())
                if subscriber in members:
                    at = members.index(subscriber)
                    rest = members[:at] + members[at + 1:]
                    if rest:
                        self._by_channel[channel] = rest
                    else:
                        del self._by_channel[channel]

    def dispatch(self, channel: str, message: Message) -> None:
        targets: Iterable[Subscriber] = self._by_channel.get(channel, ())
        if channel.startswith("org:"):
            everywhere = self._by_channel.get(ALL_ORGANIZATIONS, ())
            if everywhere:  # a global admin who is also a member reads the channel twice: once is enough
                targets = set(targets).union(everywhere)
        for subscriber in targets:
            subscriber.offer(message)

    def _broadcast(self, message: Message) -> None:
        with self._lock:
            targets = list(self._subscribers)
        for subscriber in targets:
            subscriber.offer(message)

    def _beat(self) -> None:
        """Offer each subscriber HEARTBEAT when it is due: one timer for the process instead of one per stream."""
        while True:
            time.sleep(HEARTBEAT_TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                due = [s for s in self._subscribers if s.heartbeat_due <= now]
            for subscriber in due:
                subscriber.heartbeat_due = now + subscriber.heartbeat
                subscriber.offer(HEARTBEAT)

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
    subscriber = broker.subscribe(channels, heartbeat)
    del channels  # the subscriber's tuple is all the stream keeps
    broker.subscribed.wait(timeout=2)  # open the stream once events can reach it (so a re-fetch then misses nothing)
    try:
        metrics.stream_clients.inc()
        yield b": connected\nretry: 2000\n\n"
        while True:
            message = subscriber.inbox.get()
            if message is HEARTBEAT:
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
