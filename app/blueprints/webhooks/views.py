"""Routes: the user's webhooks (a section of the account), one webhook with its latest deliveries."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.blueprints.webhooks import bp, services
from app.errors import DomainError, ValidationError
from app.ids import parse_id


def _list_page(status: int = 200, **extra):
    return render_template("webhooks/list.html", webhooks=services.list_webhooks(current_user),
                           datasets=services.dataset_choices(current_user), events=services.EVENTS, event_words=services.EVENT_WORDS,
                           **extra), status


def _dataset_choice(value: str | None) -> int | None:
    if not value:
        return None
    dataset_id = parse_id(value)
    if dataset_id is None:
        raise ValidationError(_("Choose a dataset from the list."))
    return dataset_id


@bp.get("")
@login_required
def list_webhooks():
    return _list_page()


@bp.post("")
@login_required
def create_webhook():
    form = {"url": request.form.get("url", ""), "events": request.form.getlist("events"),
            "dataset_id": request.form.get("dataset_id", "")}
    try:
        webhook, secret = services.create_webhook(current_user, form["url"], form["events"],
                                                  _dataset_choice(form["dataset_id"]))
    except DomainError as err:
        flash(err.message, "error")
        return _list_page(err.status, form=form)
    return _list_page(201, new_webhook=webhook, new_secret=secret)


def _show_page(webhook, **extra):
    return render_template("webhooks/show.html", webhook=webhook, deliveries=services.recent_deliveries(webhook),
                           **extra)


@bp.get("/<int:webhook_id>")
@login_required
def show_webhook(webhook_id: int):
    return _show_page(services.get_webhook_for(current_user, webhook_id))


@bp.post("/<int:webhook_id>/secret")
@login_required
def rotate_secret(webhook_id: int):
    # rendered, not redirected: the secret must not travel through the session's flash messages
    webhook, secret = services.rotate_secret(current_user, webhook_id)
    return _show_page(webhook, new_secret=secret)


@bp.post("/<int:webhook_id>/delete")
@login_required
def delete_webhook(webhook_id: int):
    services.delete_webhook(current_user, webhook_id)
    flash(_("The webhook is deleted, with its deliveries."), "success")
    return redirect(url_for("webhooks.list_webhooks"))


@bp.post("/<int:webhook_id>/enable")
@login_required
def enable_webhook(webhook_id: int):
    services.enable_webhook(current_user, webhook_id)
    flash(_("The webhook is enabled again."), "success")
    return redirect(url_for("webhooks.show_webhook", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/ping")
@login_required
def ping_webhook(webhook_id: int):
    services.send_ping(current_user, webhook_id)
    flash(_("A test delivery (event “ping”) is on its way; reload this page in a moment to see how it went."),
          "info")
    return redirect(url_for("webhooks.show_webhook", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/deliveries/<int:attempt_id>/resend")
@login_required
def resend_delivery(webhook_id: int, attempt_id: int):
    services.send_again(current_user, webhook_id, attempt_id)
    flash(_("Sent again, with the object as it is now; reload this page in a moment to see how it went."), "info")
    return redirect(url_for("webhooks.show_webhook", webhook_id=webhook_id))
