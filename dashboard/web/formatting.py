"""Template filters and globals: times in the organization's zone, money in minor units, labels, the vocabulary."""
from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from dashboard import vocabulary
from dashboard.formatting import age, localtime, money
from dashboard.vocabulary import RecordStatus

STATUS_LABELS = {
    RecordStatus.PENDING: _l("Pending"),
    RecordStatus.SYNCED: _l("Synced"),
    RecordStatus.FAILED: _l("Failed"),
    RecordStatus.EXCLUDED: _l("Excluded"),
}
"""A record status in people's words: the one table of them."""


def status_label(status: str) -> str:
    label = STATUS_LABELS.get(status)  # type: ignore[call-overload]
    return str(label) if label is not None else status


def register(app: Flask) -> None:
    app.add_template_filter(localtime)
    app.add_template_filter(money)
    app.add_template_filter(age)
    app.add_template_global(status_label)
    vocabulary.register(app)
