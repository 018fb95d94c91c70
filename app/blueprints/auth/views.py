from flask import current_app, flash, redirect, render_template, request, send_from_directory, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_babel import gettext as _

from app.blueprints.auth import bp, reset_links, sessions
from app.blueprints.auth import deletion as account_deletion
from app.blueprints.auth.forms import ChangePasswordForm, LoginForm, RegisterForm, ResetPasswordForm
from app.blueprints.auth.services import (
    authenticate, change_password, register_user, safe_next_url, save_language,
)
from app.errors import DomainError, ValidationError
from app.i18n import LANG_COOKIE, LANG_COOKIE_AGE, LANGUAGES
from app.quotas import usage_rows
from app.rate_limits import limit_by_ip


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on pages without a link (files, JSON): the same SVG icon."""
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


@bp.route("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("datasets.list_datasets"))
    return render_template("auth/home.html")


@bp.route("/register", methods=["GET", "POST"])
@limit_by_ip("RATELIMIT_REGISTER", methods=["POST"])
def register():
    form = RegisterForm()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("datasets.list_datasets"))
    if form.validate_on_submit():
        try:
            user = register_user(form.username.data, form.password.data)
        except DomainError as err:
            form.username.errors.append(err.message)
        else:
            login_user(sessions.start_session(user))
            flash(_("Welcome, %(name)s! Create your first dataset to get started.", name=user.username), "success")
            return redirect(url_for("datasets.list_datasets"))
    status = 422 if form.errors else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limit_by_ip("RATELIMIT_LOGIN", methods=["POST"])
def login():
    form = LoginForm()
    next_url = safe_next_url(request.args.get("next"))
    if current_user.is_authenticated and request.method == "GET":  # nothing to do here: go on
        return redirect(next_url or url_for("datasets.list_datasets"))
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data)
        except DomainError as err:
            flash(err.message, "error")
            return render_template("auth/login.html", form=form), err.status
        if user is None:
            flash(_("Wrong username or password."), "error")
            return render_template("auth/login.html", form=form), 401
        login_user(sessions.start_session(user), remember=True)
        current_app.logger.info("login user_id=%s", user.id)
        return redirect(next_url or url_for("datasets.list_datasets"))
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    sessions.end_session(current_user)
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            change_password(current_user, form.current.data, form.password.data)
        except DomainError as err:
            form.current.errors.append(err.message)
        else:
            flash(_("Password changed. Every other browser signed in to this account was logged out."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, sessions=sessions.list_sessions(current_user),
                           usage=usage_rows(current_user)), 422 if form.errors else 200


@bp.route("/account/logout-everywhere", methods=["POST"])
@login_required
def logout_everywhere():
    sessions.end_other_sessions(current_user, keep_current=False)
    logout_user()
    flash(_("You are logged out on every device and browser."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete_account():
    """What deleting the account does, and the password to confirm it; then logged out, on the home page."""
    error, status = None, 200
    if request.method == "POST":
        try:
            account_deletion.delete_own_account(current_user, request.form.get("password", ""))
        except DomainError as err:
            error, status = err.message, err.status
        else:
            logout_user()
            flash(_("Your account and your datasets are deleted. Goodbye!"), "info")
            return redirect(url_for("auth.home"))
    summary = account_deletion.account_summary(current_user)
    return render_template("auth/delete_account.html", summary=summary,
                           lines=account_deletion.summary_lines(summary), error=error), status


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limit_by_ip("RATELIMIT_LOGIN", methods=["POST"])
def reset_password(token: str):
    """An admin's one-time link: choose a new password, then be logged in as its account (whoever was
    logged in on this browser before is logged out)."""
    user = reset_links.user_for_reset_token(token)
    form = ResetPasswordForm(user.username)
    if form.validate_on_submit():
        user = reset_links.reset_password(token, form.password.data)
        if current_user.is_authenticated:
            sessions.end_session(current_user)
            logout_user()
        login_user(sessions.start_session(user), remember=True)
        current_app.logger.info("password reset with a link by user_id=%s", user.id)
        flash(_("Your new password is set. Every other browser signed in to this account was logged out."),
              "success")
        return redirect(url_for("datasets.list_datasets"))
    response = current_app.make_response((render_template("auth/reset_password.html", form=form, account=user),
                                          422 if form.errors else 200))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's address
    return response


@bp.route("/language", methods=["POST"])
def set_language():
    """The header's switcher (everyone) and the account page: a cookie, and the account when logged in.
    An empty choice means "follow my browser" again."""
    code = request.form.get("lang", "")
    if code and code not in LANGUAGES:
        raise ValidationError(_("Unknown language."), code="unknown_language")
    if current_user.is_authenticated:
        save_language(current_user, code or None)
    response = redirect(safe_next_url(request.form.get("next")) or url_for("auth.home"))
    if code:
        response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_AGE, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    else:
        response.delete_cookie(LANG_COOKIE)
    return response
