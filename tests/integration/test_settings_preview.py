"""Preview a change of alert settings over the last 30 days, before saving: a job on the alerts queue replays the
organization's sync log with the saved settings and with the submitted ones, and the page polls for the result."""
from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from rq import SimpleWorker

from dashboard.alerts import preview
from dashboard.extensions import db, redis_ext
from dashboard.models import utcnow
from dashboard.queues import alerts_queue
from dashboard.tokens import create_token
from tests.storm import post_traffic, traffic

HTMX = {"HX-Request": "true"}
SAVED = {"consecutive_failure_threshold": "3", "error_threshold": "10", "error_window_hours": "24",
         "stale_after_hours": "48", "error_rearm_level": "", "daily_notification_budget": "6",
         "timezone": "Europe/Oslo"}
QUIETER = {**SAVED, "error_threshold": "40"}


@pytest.fixture()
def drip(world, client):  # type: ignore[no-untyped-def]
    """Organization A's last four days: about 12 failures a day, each retried within two hours."""
    token = create_token(world.org_a, "Orchestrator")
    db.session.commit()
    start = utcnow() - timedelta(days=4)
    made = traffic("drip", "a", 100, start, 4, random.Random(5))
    post_traffic(client, token, world.connector_a.id, made.attempts, start, batch_minutes=120)
    return made


def _preview_url(html: str) -> str:
    return re.search(r'hx-get="(/orgs/org-a/settings/preview/[0-9a-f]{32})"', html).group(1)


def _work() -> None:
    SimpleWorker([alerts_queue()], connection=redis_ext.client).work(burst=True)


def _queued_previews() -> list[str]:
    return [j for j in alerts_queue().job_ids if j.startswith("preview-")]


def _saved(world) -> tuple[int, int | None]:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    return world.org_a.error_threshold, world.org_a.error_rearm_level


@pytest.mark.slow
def test_a_preview_compares_the_saved_settings_with_the_submitted_ones(client, world, login, drip):
    """Given a drip of failures, when the admin previews a higher error threshold, the page says it is computing,
    saves nothing, and once the job has run shows both sides: the saved settings raise alerts, the new ones none."""
    login(world.admin_a)
    alerts_queue().empty()

    started = client.post("/orgs/org-a/settings/preview", data=QUIETER, headers=HTMX)

    html = started.get_data(as_text=True)
    assert started.status_code == 200
    assert '<div id="preview-status" hx-swap-oob="innerHTML">Computing the preview…</div>' in html
    assert _saved(world) == (10, None)
    assert len(_queued_previews()) == 1 and _queued_previews()[0].startswith(f"preview-{world.org_a.id}-")
    url = _preview_url(html)

    waiting = client.get(url, headers=HTMX).get_data(as_text=True)
    assert "Computing the preview…" in waiting and "preview-status" not in waiting  # announced once, not per poll

    _work()
    ready = client.get(url, headers=HTMX)

    html = ready.get_data(as_text=True)
    assert ready.status_code == 200
    assert '<th scope="col">With the saved settings</th>' in html and '<th scope="col">With your values</th>' in html
    alerts = re.search(r'<th scope="row">Alerts raised</th><td>(\d+)</td><td>(\d+)</td>', html)
    assert int(alerts.group(1)) >= 1 and int(alerts.group(2)) == 0
    assert f"Notifications to {world.admin_a.email}: most in one day" in html
    assert re.search(r'<div id="preview-status" hx-swap-oob="innerHTML">Preview ready: with your values, 0 alerts '
                     r'and at most 0 notifications for one administrator in a day; with the saved settings, \d+ '
                     r'alerts? and at most \d+ notifications?\.</div>', html)
    assert _saved(world) == (10, None)


@pytest.mark.parametrize("field, value, message", [
    ("error_rearm_level", "40", "The re-arm level (40) must be below the error threshold (10)"),
    ("daily_notification_budget", "0", "Enter the notifications per admin per day as a whole number from 1 to 1000."),
])
def test_a_preview_of_bad_values_shows_the_forms_errors_and_starts_nothing(client, world, login, field, value,
                                                                           message):
    """Given a bad value, when the admin previews it, the form comes back with its error (422, swapped in place of
    the form) and no job is queued."""
    login(world.admin_a)
    alerts_queue().empty()

    response = client.post("/orgs/org-a/settings/preview", data={**SAVED, field: value}, headers=HTMX)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#settings-editor"
    assert html.lstrip().startswith('<div id="settings-editor"')
    assert message in html and 'aria-invalid="true"' in html
    assert 'name="shown_errors"' in html
    assert _queued_previews() == []


def test_a_good_preview_after_errors_clears_them_and_keeps_focus_on_its_button(client, world, login):
    """Given a form that showed errors, when the admin previews good values, the form is sent again without
    errors (out of band), with the preview button focused."""
    login(world.admin_a)

    html = client.post("/orgs/org-a/settings/preview", data={**QUIETER, "shown_errors": "1"},
                       headers=HTMX).get_data(as_text=True)

    assert '<div id="settings-editor" hx-swap-oob="outerHTML">' in html
    assert 'aria-invalid' not in html
    assert re.search(r'<button type="submit" id="preview-button"[^>]*autofocus>', html)


def test_without_javascript_the_preview_is_a_page(client, world, login):
    """Given no htmx, when the admin previews, the whole settings page answers with the submitted values and a
    link to the result, which is the whole page too."""
    login(world.admin_a)

    html = client.post("/orgs/org-a/settings/preview", data=QUIETER).get_data(as_text=True)

    assert '<h1>Alert settings of Organization A</h1>' in html
    assert '<div id="preview-status" role="status">Computing the preview…</div>' in html
    assert 'name="error_threshold" spellcheck="false" type="text" value="40"' in html
    link = re.search(r'<noscript><p><a href="(/orgs/org-a/settings/preview/[0-9a-f]{32})">', html).group(1)
    page = client.get(link).get_data(as_text=True)
    assert '<h1>Alert settings of Organization A</h1>' in page and "Computing the preview…" in page


def test_an_unknown_preview_answers_404_and_says_so(client, world, login):
    login(world.admin_a)

    response = client.get("/orgs/org-a/settings/preview/" + "0" * 32, headers=HTMX)

    assert response.status_code == 404
    assert "This preview is no longer available." in response.get_data(as_text=True)


def test_another_organizations_admin_can_neither_start_nor_read_a_preview(client, world, login):
    """Given a preview of organization A, when B's admin asks for it under A's address or their own, it answers
    404; B's admin cannot start one for A either, and no job is queued for A."""
    login(world.admin_a)
    url = _preview_url(client.post("/orgs/org-a/settings/preview", data=QUIETER, headers=HTMX).get_data(as_text=True))
    key = url.rsplit("/", 1)[1]
    assert client.get(url, headers=HTMX).status_code == 200
    client.post("/logout")
    login(world.admin_b)
    alerts_queue().empty()

    assert client.get(url, headers=HTMX).status_code == 404
    assert client.get(f"/orgs/org-b/settings/preview/{key}", headers=HTMX).status_code == 404
    assert client.post("/orgs/org-a/settings/preview", data=QUIETER, headers=HTMX).status_code == 404
    assert _queued_previews() == []


@pytest.mark.parametrize("method, path", [("post", "/orgs/org-a/settings/preview"),
                                          ("get", "/orgs/org-a/settings/preview/" + "0" * 32)])
def test_anonymous_is_sent_to_sign_in(client, world, method, path):
    response = getattr(client, method)(path, data=QUIETER)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_when_the_job_queue_is_unreachable_the_page_says_so(client, world, login, monkeypatch):
    """Given Redis down, when the admin previews, the page says the preview cannot be computed now (announced),
    and nothing is saved."""
    login(world.admin_a)
    monkeypatch.setattr(alerts_queue().__class__, "enqueue", _refuse)

    html = client.post("/orgs/org-a/settings/preview", data=QUIETER, headers=HTMX).get_data(as_text=True)

    message = "The preview cannot be computed right now: the job queue is unreachable. Try again in a minute."
    assert f'<p class="problem"><span aria-hidden="true">⚠</span> {message}</p>' in html
    assert f'<div id="preview-status" hx-swap-oob="innerHTML">{message}</div>' in html
    assert "hx-get" not in html
    assert _saved(world) == (10, None)


def _refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
    raise ConnectionError("Redis is down")


def test_a_preview_that_fails_says_so_and_stops_asking(client, world, login, monkeypatch):
    """Given a replay that fails, when the job has run, the page says the preview could not be computed
    (announced) and polls no more."""
    login(world.admin_a)
    monkeypatch.setattr(preview, "replay", _refuse)
    url = _preview_url(client.post("/orgs/org-a/settings/preview", data=QUIETER, headers=HTMX).get_data(as_text=True))

    _work()
    html = client.get(url, headers=HTMX).get_data(as_text=True)

    assert '<div id="preview-status" hx-swap-oob="innerHTML">The preview could not be computed.' in html
    assert "hx-get" not in html
