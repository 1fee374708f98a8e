"""Settings: webhooks, an organization's (its administrators and global admins) and the platform's (global
admins only). Each page lists them and adds, enables, disables, removes, re-keys and tests them; each webhook
has its delivery log. A signing secret is shown once, in the answer that created or rotated it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug import Response

from dashboard.database import read_only_from_now, write_transaction
from dashboard.extensions import db
from dashboard.models import Organization, Webhook, utcnow
from dashboard.vocabulary import DeliveryStatus
from dashboard.web.access import global_admin_required, org_view
from dashboard.web.webhook_forms import EVENT_LABELS, WebhookForm
from dashboard.webhooks import settings
from dashboard.webhooks.sending import deliver

bp = Blueprint("webhooks", __name__)

ACTIONS = "any(enable, disable, remove, rotate, test)"
DELIVERY_BADGES = {
    DeliveryStatus.PENDING: ("warn", "◷", _l("Waiting to retry")),
    DeliveryStatus.SENDING: ("off", "…", _l("Sending")),
    DeliveryStatus.SENT: ("ok", "✓", _l("Delivered")),
    DeliveryStatus.SKIPPED: ("off", "○", _l("Skipped")),
    DeliveryStatus.FAILED: ("bad", "✗", _l("Given up")),
}
"""A delivery status's badge class, icon and words (the words say it: never the colour alone)."""


@dataclass(frozen=True)
class Scope:
    """Whose webhooks a page shows: an organization's, or (None) the platform's."""

    organization: Organization | None

    @property
    def organization_id(self) -> int | None:
        return self.organization.id if self.organization else None

    def url(self, suffix: str = "", **values: Any) -> str:
        if self.organization is None:
            return url_for(f"webhooks.platform{suffix}", **values)
        return url_for(f"webhooks.organization{suffix}", org=self.organization.slug, **values)

    def webhook(self, webhook_id: int) -> Webhook:
        """The scope's webhook, or 404 (another scope's ids are not revealed)."""
        return settings.find(self.organization_id, webhook_id) or abort(404)


@bp.route("/orgs/<org>/settings/webhooks", methods=["GET", "POST"])
@org_view
def organization(org: Organization) -> Any:
    return _index(Scope(org))


@bp.get("/orgs/<org>/settings/webhooks/<int:webhook_id>")
@org_view
def organization_log(org: Organization, webhook_id: int) -> Any:
    return _log(Scope(org), webhook_id)


@bp.post(f"/orgs/<org>/settings/webhooks/<int:webhook_id>/<{ACTIONS}:action>")
@org_view
def organization_action(org: Organization, webhook_id: int, action: str) -> Any:
    return _act(Scope(org), webhook_id, action)


@bp.route("/platform/webhooks", methods=["GET", "POST"])
@global_admin_required
def platform() -> Any:
    return _index(Scope(None))


@bp.get("/platform/webhooks/<int:webhook_id>")
@global_admin_required
def platform_log(webhook_id: int) -> Any:
    return _log(Scope(None), webhook_id)


@bp.post(f"/platform/webhooks/<int:webhook_id>/<{ACTIONS}:action>")
@global_admin_required
def platform_action(webhook_id: int, action: str) -> Any:
    return _act(Scope(None), webhook_id, action)


def _index(scope: Scope) -> Any:
    """List the webhooks and add one; a refused one saves nothing. A new one's secret is shown in this answer."""
    form = WebhookForm()
    read_only_from_now()  # validating resolves the URL's host: no write lock may be held across that lookup
    db.session.commit()
    if form.validate_on_submit():
        with write_transaction():
            webhook, secret = settings.create(scope.organization_id, form.url.data, form.description.data or "",
                                              list(form.events.data), current_user.id)
        return _page(scope, WebhookForm(formdata=None), shown=(webhook.id, secret), status=201)
    return _page(scope, form, status=422 if request.method == "POST" else 200)


def _act(scope: Scope, webhook_id: int, action: str) -> Any:
    if action == "test":
        return _send_test(scope, webhook_id)
    with write_transaction():
        webhook = scope.webhook(webhook_id)
        name = webhook.url
        if action == "rotate":
            secret = settings.rotate(webhook)
        elif action == "remove":
            settings.remove(webhook, utcnow())
        else:
            settings.set_enabled(webhook, action == "enable")
    if action == "rotate":
        return _page(scope, WebhookForm(formdata=None), shown=(webhook_id, secret), rotated=True)
    flash({"remove": _("The webhook to %(url)s is removed: it is called no more. Its deliveries stay in the alerts' "
                       "timelines.", url=name),
           "enable": _("The webhook to %(url)s is enabled.", url=name),
           "disable": _("The webhook to %(url)s is disabled: it gets no alert events until it is enabled again.",
                        url=name)}[action], "info")
    return redirect(scope.url())


def _send_test(scope: Scope, webhook_id: int) -> Response:
    """Send a test message now, in this request (8 s at most), and say how it went on the webhook's log."""
    with write_transaction():
        webhook = scope.webhook(webhook_id)
        delivery_id = settings.plan_test(webhook, scope.organization, utcnow())
    deliver(delivery_id)
    delivery = settings.delivery(delivery_id)
    if delivery.status == DeliveryStatus.SENT:
        flash(_("The test message was delivered: the endpoint answered %(code)d.", code=delivery.last_status_code),
              "info")
    else:
        flash(_("The test message was not delivered: %(error)s.", error=delivery.last_error.rstrip(".")), "error")
    return redirect(scope.url("_log", webhook_id=webhook_id))


def _page(scope: Scope, form: WebhookForm, *, shown: tuple[int, str] | None = None, rotated: bool = False,
          status: int = 200) -> Response:
    html = render_template("webhooks/index.html", scope=scope, org=scope.organization, form=form,
                           webhooks=settings.listing(scope.organization_id), event_labels=EVENT_LABELS,
                           badges=DELIVERY_BADGES, shown=shown, rotated=rotated)
    response = make_response(html, status)
    if shown:
        response.headers["Cache-Control"] = "no-store"  # the secret is in this page alone
    return response


def _log(scope: Scope, webhook_id: int) -> str:
    webhook = scope.webhook(webhook_id)
    return render_template("webhooks/log.html", scope=scope, org=scope.organization, webhook=webhook,
                           deliveries=settings.deliveries(webhook), event_labels=EVENT_LABELS,
                           badges=DELIVERY_BADGES)
