"""Settings from environment variables, with safe defaults for a laptop."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_PATH = Path(os.environ.get("INSTANCE_PATH", PROJECT_ROOT / "instance"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def embedded_redis_socket() -> Path:
    """The fixed socket the embedded Redis listens on, shared by web, worker and cron."""
    return INSTANCE_PATH / "redis.sock"


def metrics_directory() -> Path:
    """Where every process on this machine keeps its Prometheus counters (wipe it on deploy)."""
    return Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or INSTANCE_PATH / "metrics")


def default_database_url() -> str:
    return f"sqlite:///{INSTANCE_PATH / 'dashboard.sqlite3'}"


def default_redis_url() -> str:
    return f"unix://{embedded_redis_socket()}"


class Config:
    """Read once per app; `create_app(config)` may override any key."""

    def __init__(self) -> None:
        from dashboard.secret_key import configured_key

        self.SECRET_KEY = configured_key()
        self.SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or default_database_url()
        self.REDIS_URL = os.environ.get("REDIS_URL") or default_redis_url()
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": True,
            # A gevent worker serves many requests at once: enough connections that pages and health checks
            # never queue behind writers waiting their turn, and a bounded wait when they all are in use.
            "pool_size": _int("DATABASE_POOL_SIZE", 10),
            "max_overflow": _int("DATABASE_POOL_OVERFLOW", 30),
            "pool_timeout": _int("DATABASE_POOL_TIMEOUT_SECONDS", 10),
        }
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "http")
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", self.PREFERRED_URL_SCHEME == "https")
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PROXY_FIX_X_FOR = _int("PROXY_FIX_X_FOR", 0)
        self.PROXY_FIX_X_PROTO = _int("PROXY_FIX_X_PROTO", 0)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 120)
        self.PERMANENT_SESSION_LIFETIME = self.SESSION_IDLE_MINUTES * 60
        self.WTF_CSRF_TIME_LIMIT = self.PERMANENT_SESSION_LIFETIME
        self.BABEL_DEFAULT_LOCALE = os.environ.get("BABEL_DEFAULT_LOCALE", "en")
        self.LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "10 per minute;100 per hour")
        self.LOGIN_LIMIT_PER_ACCOUNT = os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "5 per 15 minutes;20 per day")
        self.API_LIMIT_PER_TOKEN = os.environ.get("API_LIMIT_PER_TOKEN", "1200 per minute")
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.SYNC_INTERVAL_SECONDS = _int("SYNC_INTERVAL_SECONDS", 300)
        self.SYNC_BATCH_SIZE = _int("SYNC_BATCH_SIZE", 200)
        self.SYNC_MAX_AUTO_ATTEMPTS = _int("SYNC_MAX_AUTO_ATTEMPTS", 5)
        self.RETRY_DELAY_SCALE = float(os.environ.get("RETRY_DELAY_SCALE", "1.0"))
        self.SQLITE_WRITE_WAIT_SECONDS = float(os.environ.get("SQLITE_WRITE_WAIT_SECONDS", "10"))
        self.CONNECTOR_RATE_LIMIT_ALERT_MINUTES = _int("CONNECTOR_RATE_LIMIT_ALERT_MINUTES", 15)
        self.FLAP_RAISES = _int("FLAP_RAISES", 3)
        self.FLAP_WINDOW_HOURS = _int("FLAP_WINDOW_HOURS", 24)
        self.FLAP_QUIET_HOURS = _int("FLAP_QUIET_HOURS", 12)
        self.SHORT_LIVED_MINUTES = _int("SHORT_LIVED_MINUTES", 5)
        self.TRIPLETEX_CONSUMER_TOKEN = os.environ.get("TRIPLETEX_CONSUMER_TOKEN")
        self.FIKEN_CLIENT_ID = os.environ.get("FIKEN_CLIENT_ID")
        self.FIKEN_CLIENT_SECRET = os.environ.get("FIKEN_CLIENT_SECRET")
        self.FIKEN_TOKEN_URL = os.environ.get("FIKEN_TOKEN_URL")  # unset: Fiken's (fiken_oauth.DEFAULT_TOKEN_URL)
        self.ALLOW_PRIVATE_OUTBOUND_URLS = _bool("ALLOW_PRIVATE_OUTBOUND_URLS", False)
        self.API_ATTEMPT_HORIZON_DAYS = _int("API_ATTEMPT_HORIZON_DAYS", 30)
        self.SYNC_LOG_RETENTION_DAYS = _int("SYNC_LOG_RETENTION_DAYS", 400)
        self.API_CONCURRENT_INGESTS = _int("API_CONCURRENT_INGESTS", 1)
        self.API_MAX_ATTEMPTS_PER_REQUEST = _int("API_MAX_ATTEMPTS_PER_REQUEST", 1000)
        self.MAX_CONTENT_LENGTH = _int("API_MAX_BODY_BYTES", 1_048_576)
        self.QUEUE_ALERTS = os.environ.get("QUEUE_ALERTS", "alerts")
        self.QUEUE_SYNC = os.environ.get("QUEUE_SYNC", "sync")
        self.QUEUE_DELIVERY = os.environ.get("QUEUE_DELIVERY", "delivery")
        self.PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        """Where people reach this service: the links in emails and webhook messages start with it."""
        self.SMTP_URL = os.environ.get("SMTP_URL") or None
        """smtp://user:password@host:587 (STARTTLS), smtps://...:465 (TLS), or unset: a Maildir under instance/."""
        self.MAIL_FROM = os.environ.get("MAIL_FROM", "Sync alerts <alerts@localhost>")
        self.WEBHOOK_ALLOW_HTTP = _bool("WEBHOOK_ALLOW_HTTP", False)
        self.MAILDIR_PATH = os.environ.get("MAILDIR_PATH") or str(INSTANCE_PATH / "mail")
        self.DEMO_TRAFFIC = _bool("DEMO_TRAFFIC", False)
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
