"""One answer to "does this request want a fragment?": htmx asking for a partial does; a plain browser and
htmx restoring a page missing from its history cache want the whole page."""
from __future__ import annotations

import pytest

from dashboard.web.fragments import wants_fragment

HTMX = {"HX-Request": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


@pytest.mark.parametrize("headers,expected", [({}, False), (HTMX, True), (HISTORY_RESTORE, False)])
def test_only_an_htmx_request_that_is_no_history_restore_wants_a_fragment(app, headers, expected):
    """Given a plain, an htmx and an htmx history-restore request, only the htmx one wants a fragment."""
    with app.test_request_context("/", headers=headers):
        assert wants_fragment() is expected


@pytest.mark.parametrize("panel", ["organizations", "incidents", "health"])
def test_htmx_history_restore_of_a_platform_panel_gets_the_whole_page(client, world, login, panel):
    """Given a global admin, when htmx restores a platform panel's address from history, it is sent to the
    panel on the full page (as a plain browser is), not given the panel alone."""
    login(world.global_admin)

    response = client.get(f"/platform/{panel}", headers=HISTORY_RESTORE)
    page = client.get(f"/platform/{panel}", headers=HISTORY_RESTORE, follow_redirects=True).get_data(as_text=True)

    assert response.status_code == 302 and response.headers["Location"].endswith(f"/platform#platform-{panel}")
    assert "<h1" in page and f'id="platform-{panel}"' in page


@pytest.mark.parametrize("path,anchor", [
    ("/orgs/org-a/integration/connectors", "connector-panel"),
    ("/orgs/org-a/integration/open-alerts", "alerts-panel"),
    ("/orgs/org-a/integration/chart", "attempts-chart"),
])
def test_htmx_history_restore_of_a_status_panel_gets_the_whole_screen(client, world, login, path, anchor):
    """Given an organization admin, when htmx restores a status panel's address from history, it is sent to
    the panel on the whole screen."""
    login(world.admin_a)

    response = client.get(path, headers=HISTORY_RESTORE)

    assert response.status_code == 302 and response.headers["Location"].endswith(f"/orgs/org-a/integration#{anchor}")
