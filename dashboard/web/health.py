"""Liveness for load balancers and the run command: no sign-in, no data."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from dashboard.extensions import db, redis_ext

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks = {"database": _check(lambda: db.session.execute(sa.text("SELECT 1")))}
    db.session.rollback()  # no transaction stays open across the Redis call
    checks["redis"] = _check(lambda: redis_ext.client.ping())
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "degraded", **checks), 200 if ok else 503


def _check(probe) -> str:  # type: ignore[no-untyped-def]
    try:
        probe()
    except Exception:  # noqa: BLE001 - any failure means "unreachable"
        return "unreachable"
    return "ok"
