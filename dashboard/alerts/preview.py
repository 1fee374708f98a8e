"""What a change of alert settings would have done: the organization's last 30 days replayed with its current
settings and with the proposed ones, reduced to the figures an administrator compares."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dashboard.alerts import quiet
from dashboard.alerts.replay import ReplayReport, replay

PREVIEW_DAYS = 30


@dataclass(frozen=True)
class RecipientFigures:
    """One recipient's announced notifications: the most in one day, and all of them."""

    user: str
    is_global_admin: bool
    most_in_a_day: int
    total: int


@dataclass(frozen=True)
class Outcome:
    """What one set of settings would have made."""

    alerts_raised: int
    recipients: tuple[RecipientFigures, ...]
    gathered: int
    """Notifications gathered into a summary instead of being announced one by one."""

    @property
    def most_in_a_day(self) -> int:
        """The most notifications any one recipient was announced in one day."""
        return max((r.most_in_a_day for r in self.recipients), default=0)

    def of(self, user: str) -> RecipientFigures | None:
        return next((r for r in self.recipients if r.user == user), None)


@dataclass(frozen=True)
class Preview:
    start: datetime
    end: datetime
    current: Outcome
    proposed: Outcome

    def recipients(self) -> list[tuple[str, bool]]:
        """Everyone either side notifies, organization admins first, by email."""
        seen = {(r.user, r.is_global_admin) for r in (*self.current.recipients, *self.proposed.recipients)}
        return sorted(seen, key=lambda r: (r[1], r[0]))


def outcome(report: ReplayReport, organization: str) -> Outcome:
    """The figures of one replay for one organization (days are UTC days, as the replay counts them)."""
    per_day: Counter[tuple[str, object]] = Counter()
    totals: Counter[str] = Counter()
    global_admins: set[str] = set()
    gathered = 0
    for n in report.notifications:
        if n.organization not in (organization, None):
            continue
        if n.is_global_admin:
            global_admins.add(n.user)
        if not n.announced:
            gathered += 1
            continue
        per_day[(n.user, n.created_at.date())] += 1
        totals[n.user] += 1
    most: Counter[str] = Counter()
    for (user, _day), count in per_day.items():
        most[user] = max(most[user], count)
    recipients = tuple(RecipientFigures(user, user in global_admins, most[user], totals[user])
                       for user in sorted(totals))
    return Outcome(alerts_raised=sum(1 for a in report.alerts if a.organization == organization),
                   recipients=recipients, gathered=gathered)


def preview(organization: str, current: Mapping[str, int | None], proposed: Mapping[str, int | None],
            now: datetime) -> Preview:
    """Replay the organization's last 30 days before `now` twice: with the current settings and the proposed."""
    start = now - timedelta(days=PREVIEW_DAYS)
    return Preview(start=start, end=now,
                   current=outcome(replay([organization], start, now, _replay_settings(current)), organization),
                   proposed=outcome(replay([organization], start, now, _replay_settings(proposed)), organization))


def _replay_settings(values: Mapping[str, int | None]) -> dict[str, int]:
    """The values as replay settings, an empty re-arm level as the level it stands for."""
    settings = {k: v for k, v in values.items() if v is not None}
    settings["rearm"] = quiet.rearm_level(settings["threshold"], values["rearm"])
    return settings
