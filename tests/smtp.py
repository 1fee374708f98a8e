"""A real SMTP server for the email tests (aiosmtpd on a free local port), and the settings that point the app at it.

Use in a test module: `from tests.smtp import app_config, inbox, smtp_server  # noqa: F401  (fixtures)`.
"""
from __future__ import annotations

import email
import socket
import threading
from email.message import EmailMessage as Message
from email.policy import default
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller

BASE = "https://alerts.example.org"
"""The tests' PUBLIC_BASE_URL: every link in a message starts with it."""


class Inbox:
    """An aiosmtpd handler keeping what it accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.original_content, policy=default))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[Controller]:
    controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture()
def inbox(smtp_server: Controller) -> Inbox:
    smtp_server.handler.messages.clear()
    return smtp_server.handler


@pytest.fixture()
def app_config(smtp_server: Controller, tmp_path) -> dict:  # type: ignore[no-untyped-def]
    return {"SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}", "PUBLIC_BASE_URL": BASE,
            "MAIL_FROM": "Sync alerts <alerts@example.org>", "MAILDIR_PATH": str(tmp_path / "mail")}
