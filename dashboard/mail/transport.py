"""The one place a message leaves: an SMTP server (`SMTP_URL`), or, with none set, a Maildir under `instance/`.

`SMTP_URL` forms: `smtp://user:password@host:587` (STARTTLS when the server offers it; `?starttls=required`
refuses a server that does not), `smtps://user:password@host:465` (TLS from the start), `smtp://host:25`
(no auth). User and password are URL-encoded. Every connection and command is bounded by `SMTP_TIMEOUT_SECONDS`.
The Maildir (`MAILDIR_PATH`, default `instance/mail`) is readable by any mail client (`mutt -f instance/mail`)
or by `flask mail list`.
"""
from __future__ import annotations

import mailbox
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

DEFAULT_TIMEOUT_SECONDS = 8.0
"""Below the delivery job's 10 s, so a hung server fails the attempt rather than the job."""


class TransportError(Exception):
    """The message was not accepted; the caller retries later."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool
    starttls: str
    """"auto" (when offered), "required", or "never"."""
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpServer:
    """Read `SMTP_URL`; a malformed one raises ValueError naming the problem."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme or 'nothing'}://")
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["never" if tls else "auto"])[0]
    if starttls not in {"auto", "required", "never"}:
        raise ValueError("SMTP_URL's starttls must be auto, required or never")
    return SmtpServer(host=parts.hostname, port=parts.port or (465 if tls else 587), tls=tls, starttls=starttls,
                      username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None)


def send(message: EmailMessage) -> None:
    """Hand the message to the SMTP server, or file it in the Maildir; TransportError when it is not accepted."""
    url = current_app.config.get("SMTP_URL")
    if not url:
        try:
            _to_maildir(message, Path(current_app.config["MAILDIR_PATH"]))
        except OSError as error:  # a full disk, a folder it may not write: retried like a refusing server
            raise TransportError(f"Maildir: {error}"[:480]) from error
        return
    timeout = float(current_app.config.get("SMTP_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    try:
        _to_smtp(message, parse_smtp_url(url), timeout)
    except (OSError, smtplib.SMTPException) as error:
        raise TransportError(f"{type(error).__name__}: {error}"[:480]) from error


def _to_smtp(message: EmailMessage, server: SmtpServer, timeout: float) -> None:
    context = ssl.create_default_context()
    if server.tls:
        connection: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        connection = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with connection:
        connection.ehlo()
        if not server.tls and server.starttls != "never":
            if connection.has_extn("starttls"):
                connection.starttls(context=context)
                connection.ehlo()
            elif server.starttls == "required":
                raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS")
        if server.username:
            connection.login(server.username, server.password or "")
        connection.send_message(message)


def _to_maildir(message: EmailMessage, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # Maildir(create=True) makes the folder with cur/, new/, tmp/
    mailbox.Maildir(str(path), create=True).add(message)
