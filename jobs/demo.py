"""Demo traffic: new approved records now and then, so the demo keeps syncing."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def demo_traffic() -> None:
    from dashboard.demo import add_demo_records

    add_demo_records()
