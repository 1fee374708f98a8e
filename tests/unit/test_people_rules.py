"""The pure rules of people's links: an invitation's state at a moment, addresses, and the tokens (no database)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard import people
from dashboard.models import Invitation
from dashboard.tokens import hash_token

T0 = datetime(2026, 11, 30, 12, 0)


def _invitation(**fields) -> Invitation:  # type: ignore[no-untyped-def]
    return Invitation(organization_id=1, email="a@example.org", token_hash="x", created_at=T0, sent_at=T0,
                      expires_at=T0 + people.INVITATION_LIFETIME, **fields)


@pytest.mark.parametrize(("fields", "at", "state"), [
    ({}, T0 + timedelta(hours=71, minutes=59), "pending"),
    ({}, T0 + timedelta(hours=72), "expired"),
    ({"revoked_at": T0}, T0, "revoked"),
    ({"accepted_at": T0, "revoked_at": None}, T0 + timedelta(days=9), "accepted"),
])
def test_an_invitation_is_pending_until_it_is_accepted_revoked_or_72_hours_old(fields, at, state):
    assert people.invitation_state(_invitation(**fields), at) == state


@pytest.mark.parametrize(("typed", "valid"), [("kari@example.org", True), ("kari@localhost", False),
                                              ("kari example.org", False), ("@example.org", False),
                                              ("a@b.no" + "o" * 250, False)])
def test_an_address_needs_a_name_an_at_and_a_domain_with_a_dot(typed, valid):
    assert people.is_email(typed) is valid


def test_a_links_secret_is_random_and_only_its_hash_is_kept():
    (one, one_hash), (two, _) = people.new_token(), people.new_token()
    assert one != two and len(one) >= 43 and one_hash == hash_token(one) and one not in one_hash
    assert people.normalized_email("  Kari@Example.ORG ") == "kari@example.org"
