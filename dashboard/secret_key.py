"""The secret that signs sessions and CSRF tokens: from `SECRET_KEY`, or generated once for `make run`.

Flask's signing key must be secret: anyone who knows it can forge a session
cookie for any user. So the service refuses to start (web, CLI and workers,
unless testing) without one. `make run` keeps a random key in
`instance/secret_key` (created on first run, readable by its owner only), so
the one-command start needs no setup; production sets `SECRET_KEY`.

Run as `python -m dashboard.secret_key` to create the instance key if missing.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from dashboard.config import INSTANCE_PATH

PUBLISHED_DEFAULTS = frozenset({"", "dev-only-change-me", "change-me", "secret", "dev"})
"""Keys that were, or look like, published defaults: refused like a missing key."""
INSTANCE_KEY_FILE = "secret_key"


class MissingSecretKey(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "SECRET_KEY is not set (or is a published default). Set it to a long random value, for example\n"
            "  export SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')\n"
            f"or run `make run`, which keeps a generated key in {instance_key_path()}."
        )


def instance_key_path() -> Path:
    return INSTANCE_PATH / INSTANCE_KEY_FILE


def configured_key() -> str | None:
    """`SECRET_KEY` from the environment, else the instance key file, else None."""
    value = os.environ.get("SECRET_KEY")
    if value is not None:
        return value
    path = instance_key_path()
    return path.read_text().strip() if path.exists() else None


def usable(key: str | None) -> bool:
    return key is not None and key.strip() not in PUBLISHED_DEFAULTS


def ensure_instance_key() -> Path:
    """Create the instance key file once (mode 0600); an existing one is kept."""
    path = instance_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
    return path


if __name__ == "__main__":
    print(f"Secret key in {ensure_instance_key()}")
