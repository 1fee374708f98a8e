"""Webhook signatures and retry pauses, called directly: no Flask, database or Redis.

Signatures are checked with the `standardwebhooks` package, the reference a receiver would use."""
from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from standardwebhooks import Webhook as Receiver
from standardwebhooks.webhooks import WebhookVerificationError

from dashboard.webhooks import signing
from dashboard.webhooks.payload import slack_escape
from dashboard.webhooks.sending import retry_delay

BODY = json.dumps({"type": "alert.raised", "text": "Blåbær AS: 3 records ✗"}, ensure_ascii=False).encode()


def test_a_new_secret_is_prefixed_base64_of_24_random_bytes():
    """Given two new secrets, each is `whsec_` and the base64 of 24 bytes, and they differ."""
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 24
    assert signing.secret_bytes(first) == base64.b64decode(first[6:])


def test_a_signed_message_verifies_with_the_standard_webhooks_library():
    """Given a message signed now, when a receiver verifies it with the reference library, the body comes back."""
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_abc", int(time.time()), BODY)
    assert headers["webhook-signature"].startswith("v1,")
    assert Receiver(secret).verify(BODY, headers) == json.loads(BODY)


def test_the_signature_matches_a_known_vector():
    """Given the Standard Webhooks specification's example secret, id, timestamp and body, the signature is its
    published one."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp", "secret"])
def test_a_changed_message_does_not_verify(tamper):
    """Given a signed message, when its body, id, timestamp or the secret differs, verification fails."""
    secret, now = signing.new_secret(), int(time.time())
    headers = signing.headers(secret, "msg_abc", now, BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b"3", b"4")
    elif tamper == "id":
        headers["webhook-id"] = "msg_abd"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(now - 1)
    else:
        secret = signing.new_secret()
    with pytest.raises(WebhookVerificationError):
        Receiver(secret).verify(body, headers)


def test_retries_pause_longer_each_time_then_every_two_hours():
    """Given failed attempts one after another, the pauses grow from 5 seconds to an hour, then stay at 2 hours."""
    pauses = [retry_delay(n) for n in range(1, 10)]
    assert pauses[:6] == [timedelta(seconds=s) for s in (5, 30, 120, 600, 1800, 3600)]
    assert pauses[6:] == [timedelta(hours=2)] * 3
    assert pauses == sorted(pauses)


def test_slack_markup_in_a_title_is_escaped():
    """Given a title with Slack's markup characters, they are escaped so it can neither break nor forge a link."""
    assert slack_escape("A&B <https://evil|click>") == "A&amp;B &lt;https://evil|click&gt;"
