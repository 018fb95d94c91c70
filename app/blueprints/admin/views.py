"""Admin pages. Every route is wrapped in admin_required (a 404 for everyone else)."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_babel import gettext as _

from app.blueprints.admin import bp
from app.blueprints.admin import limits as limit_services
from app.blueprints.admin import networks as network_services
from app.blueprints.admin import services
from app.blueprints.admin.services import admin_required
from app.blueprints.auth import deletion as account_deletion
from app.errors import DomainError
from app.quotas import default_limits
from app.rendering import render_page
from app.shutdown import request_shutdown


@bp.route("/")
@admin_required
def index():
    return render_template(
        "admin/index.html", overview=services.queue_overview(), users=services.count_users(),
        shutdown_enabled=current_app.config["ALLOW_REMOTE_SHUTDOWN"],
    )


@bp.route("/users")
@admin_required
def list_users():
    return render_template("admin/users.html", users=services.list_users(), defaults=default_limits())


@bp.route("/users/<int:user_id>/<any(admin, disabled):flag>", methods=["POST"])
@admin_required
def set_user_flag(user_id: int, flag: str):
    value = request.form.get("value") == "1"
    change = services.set_admin if flag == "admin" else services.set_disabled
    try:
        user = change(current_user.id, user_id, value)
    except DomainError as err:
        if not request.htmx:
            raise
        user = services.get_user(user_id)
        return render_template("admin/_user_row.html", user=user, error=err.message, defaults=default_limits()), \
            err.status
    message = _flag_message(user, flag)
    if request.htmx:
        return render_template("admin/_user_row.html", user=user, notice=message, defaults=default_limits())
    flash(message, "success")
    return redirect(url_for("admin.list_users"))


def _flag_message(user, flag: str) -> str:
    if flag == "admin":
        return (_("%(name)s is now an admin.", name=user.username) if user.is_admin else
                _("%(name)s is no longer an admin.", name=user.username))
    return (_("%(name)s is disabled and signed out.", name=user.username) if user.is_disabled else
            _("%(name)s is enabled again.", name=user.username))


@bp.route("/users/<int:user_id>/limits", methods=["POST"])
@admin_required
def set_user_limits(user_id: int):
    user = services.get_user(user_id)
    try:
        limit_services.save_user_limits(current_user.id, user, request.form)
    except DomainError as err:
        if not request.htmx:
            raise
        return render_template("admin/_user_row.html", user=user, error=err.message, defaults=default_limits()), \
            err.status
    message = _("Limits of %(name)s saved.", name=user.username)
    if request.htmx:
        return render_template("admin/_user_row.html", user=user, notice=message, defaults=default_limits())
    flash(message, "success")
    return redirect(url_for("admin.list_users"))


@bp.route("/users/<int:user_id>/reset-link", methods=["POST"])
@admin_required
def create_reset_link(user_id: int):
    """Shows the link once: in the user's row (htmx) or on the whole users page, never in a flash or log."""
    try:
        link = services.create_reset_link(current_user.id, user_id)
    except DomainError as err:
        if not request.htmx or err.status == 404:
            raise
        return render_template("admin/_user_row.html", user=services.get_user(user_id), error=err.message,
                               defaults=default_limits()), err.status
    shown = {"user_id": link.user_id, "expires_at": link.expires_at,
             "url": url_for("auth.reset_password", token=link.token, _external=True)}
    if request.htmx:
        body = render_template("admin/_user_row.html", user=services.get_user(user_id), reset_link=shown,
                               defaults=default_limits())
    else:
        body = render_template("admin/users.html", users=services.list_users(), reset_link=shown,
                               defaults=default_limits())
    return body, 200, {"Cache-Control": "no-store"}


@bp.route("/users/<int:user_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_user(user_id: int):
    """A page that says what deleting the account does; the admin types its name to confirm."""
    error, status = None, 200
    if request.method == "POST":
        try:
            name, receiver = services.delete_user(current_user, user_id, request.form.get("confirm_name", ""),
                                                  request.form.get("transfer_to", ""))
        except DomainError as err:
            if err.status == 404:
                raise
            error, status = err.message, err.status
        else:
            flash(_("The account %(name)s is deleted; its datasets now belong to %(receiver)s.", name=name,
                    receiver=receiver.username) if receiver else
                  _("The account %(name)s and its datasets are deleted.", name=name), "success")
            return redirect(url_for("admin.list_users"))
    user = services.user_to_delete(current_user.id, user_id)
    summary = account_deletion.account_summary(user)
    return render_template("admin/delete_user.html", user=user, summary=summary,
                           lines=account_deletion.summary_lines(summary, choosing=True),
                           targets=account_deletion.transfer_targets(user), error=error,
                           chosen=request.form.get("transfer_to", "")), status


@bp.route("/limits", methods=["GET", "POST"])
@admin_required
def limits():
    error, status = None, 200
    if request.method == "POST":
        try:
            limit_services.save_defaults(current_user.id, request.form)
        except DomainError as err:
            error, status = err.message, err.status
        else:
            flash(_("Default limits saved. They apply to every account without limits of its own."), "success")
            return redirect(url_for("admin.limits"))
    return render_template("admin/limits.html", error=error, **limit_services.overview()), status


@bp.route("/queue")
@admin_required
def queue():
    return render_page("admin/queue.html", "admin/_queue.html", overview=services.queue_overview())


@bp.route("/networks")
@admin_required
def networks():
    return render_template("admin/networks.html", rows=network_services.network_rows())


@bp.route("/networks/<name>")
@admin_required
def network_row(name: str):
    return render_template("admin/_network_row.html", row=network_services.network_row(name))


@bp.route("/networks/<name>/<any(download, upload, remove):action>", methods=["POST"])
@admin_required
def network_action(name: str, action: str):
    try:
        message, status = network_services.act(name, action, current_user.id, request.files.get("file")), 200
    except DomainError as err:
        if err.status == 404:
            raise
        message, status = err.message, err.status
    ok = status == 200
    if request.htmx:  # the row alone, saying what happened
        return render_template("admin/_network_row.html", row=network_services.network_row(name),
                               notice=message if ok else None, error=None if ok else message), status
    flash(message, "success" if ok else "error")
    if ok:
        return redirect(url_for("admin.networks"))
    return render_template("admin/networks.html", rows=network_services.network_rows()), status


@bp.route("/shutdown", methods=["POST"])
@admin_required
def shutdown():
    if not current_app.config["ALLOW_REMOTE_SHUTDOWN"]:
        raise DomainError(
            _("Shutting the server down from the browser is switched off. "
              "Set ALLOW_REMOTE_SHUTDOWN=1 to allow it, or run `flask shutdown` on the server."), 403,
        )
    pid = request_shutdown(request.environ)
    current_app.logger.warning("shutdown requested by user=%s (server pid %s)", current_user.id, pid)
    return render_template("admin/shutdown.html"), 202

