"""Email preferences: each signed-in person chooses how alerts reach them by email, and only their own choices."""
from __future__ import annotations

import re

import pytest

from dashboard.extensions import db
from dashboard.models import User
from tests import factories

pytestmark = pytest.mark.db

PAGE = "/account/notifications"
GOOD = {"email_raised": "digest", "email_resolved": "never", "email_delay_minutes": "30", "digest_time": "07:30"}
DEFAULTS = ("immediate", "immediate", 10, 480)


def choices(user: User) -> tuple[str, str, int, int]:
    db.session.expire_all()
    person = db.session.get(User, user.id)
    return person.email_raised, person.email_resolved, person.email_delay_minutes, person.digest_minute


def checked(html: str, name: str) -> list[str]:
    return re.findall(rf'<input checked id="[^"]+" name="{name}" type="radio" value="(\w+)"', html)


def test_the_page_shows_the_saved_choices_and_the_organizations_time_zone(client, world, login):
    """Given organization A in Helsinki time, when its admin opens the page, the form holds their defaults and
    says the digest time is in Europe/Helsinki."""
    world.org_a.timezone = "Europe/Helsinki"
    db.session.commit()
    response = login(world.admin_a).get(PAGE)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert checked(html, "email_raised") == ["immediate"] and checked(html, "email_resolved") == ["immediate"]
    assert 'value="10"' in html and 'value="08:00"' in html
    assert "Europe/Helsinki" in html
    assert "<legend>Email me about resolved alerts</legend>" in html


def test_a_global_admin_without_an_organization_reads_oslo_time(client, world, login):
    """Given a global admin who administers no organization, the digest time is said to be Europe/Oslo."""
    assert "Europe/Oslo" in login(world.global_admin).get(PAGE).get_data(as_text=True)


def test_saving_stores_the_choices_and_says_so(client, world, login):
    """Given valid choices, when they are saved, they are stored on the person, and the page they land on says
    they are saved in its status region."""
    response = login(world.admin_a).post(PAGE, data=GOOD)
    assert response.status_code == 302
    assert choices(world.admin_a) == ("digest", "never", 30, 450)
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="preferences-status" role="status"><p[^>]*>.*Your email preferences are saved', html)


def test_saving_from_the_page_script_answers_the_form_and_fills_the_status_line(client, world, login):
    """Given the page's htmx request, when it saves, the answer is the form with the saved values and the status
    line filled out of band."""
    response = login(world.admin_a).post(PAGE, data={**GOOD, "email_delay_minutes": "0"}, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="preferences-editor"' in html and "<h1>" not in html
    assert 'hx-swap-oob="innerHTML"' in html and "Your email preferences are saved." in html
    assert choices(world.admin_a) == ("digest", "never", 0, 450)


@pytest.mark.parametrize("field, value, message", [
    ("email_delay_minutes", "1441", "Enter the delay as a whole number of minutes from 0 to 1440."),
    ("email_delay_minutes", "-1", "Enter the delay as a whole number of minutes from 0 to 1440."),
    ("email_delay_minutes", "ten", "Enter the delay as a whole number of minutes from 0 to 1440."),
    ("digest_time", "24:00", "Enter the digest time as hours and minutes from 00:00 to 23:59"),
    ("digest_time", "8", "Enter the digest time as hours and minutes from 00:00 to 23:59"),
    ("email_raised", "sometimes", "Choose when to be emailed"),
    ("email_resolved", "", "Choose when to be emailed"),
])
def test_bad_input_is_named_on_the_form_and_changes_nothing(client, world, login, field, value, message):
    """Given one bad value among good ones, when saved, the form comes back (422) naming the problem, tied to its
    field, and nothing is stored."""
    response = login(world.admin_a).post(PAGE, data={**GOOD, field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert f'id="{field}-error"' in html and re.search(rf'aria-describedby="[^"]*{field}-error', html)
    assert f'href="#{field}"' in html  # the error summary links to the field
    assert choices(world.admin_a) == DEFAULTS


def test_a_person_changes_only_their_own_choices(client, world, login):
    """Given admin B signed in, when they post the form naming admin A, only admin B's choices change: the page
    has no user in its address or form."""
    response = login(world.admin_b).post(PAGE, data={**GOOD, "user_id": str(world.admin_a.id),
                                                     "email": world.admin_a.email})
    assert response.status_code == 302
    assert choices(world.admin_a) == DEFAULTS
    assert choices(world.admin_b) == ("digest", "never", 30, 450)


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    """Given nobody signed in, the page and its form send the visitor to sign in, and nothing changes."""
    assert client.get(PAGE).status_code == 302
    assert "/login" in client.post(PAGE, data=GOOD).headers["Location"]
    assert choices(world.admin_a) == DEFAULTS


def test_the_unsubscribe_link_preselects_never_and_saves_nothing_until_saved(client, world, login):
    """Given an email's unsubscribe link, when it is opened, "never" is chosen for both with a note saying nothing
    changes until saved; nothing is stored until the person saves."""
    html = login(world.admin_a).get(PAGE + "?unsubscribe=1").get_data(as_text=True)
    assert checked(html, "email_raised") == ["never"] and checked(html, "email_resolved") == ["never"]
    assert "Nothing changes until you choose" in html
    assert choices(world.admin_a) == DEFAULTS


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_a_post_without_the_form_token_is_refused(client, world, app_config):
    """Given CSRF protection on, when a post comes without the form's token, it is refused and nothing changes."""
    user = factories.user("csrf@example.org")
    db.session.commit()
    client.post("/login", data={"email": user.email, "password": factories.PASSWORD})
    response = client.post(PAGE, data=GOOD)
    assert response.status_code in (400, 422)
    assert choices(user) == DEFAULTS
