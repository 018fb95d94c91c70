from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.blueprints.auth import bp
from app.blueprints.auth.forms import LoginForm, RegisterForm
from app.blueprints.auth.services import authenticate, register_user, safe_next_url
from app.errors import DomainError


@bp.route("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("datasets.list_datasets"))
    return render_template("auth/home.html")


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = register_user(form.username.data, form.password.data)
        except DomainError as err:
            form.username.errors.append(err.message)
        else:
            login_user(user)
            flash(f"Welcome, {user.username}! Create your first dataset to get started.", "success")
            return redirect(url_for("datasets.list_datasets"))
    status = 422 if form.errors else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_url = safe_next_url(request.args.get("next"))
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data)
        except DomainError as err:
            flash(err.message, "error")
            return render_template("auth/login.html", form=form), err.status
        if user is None:
            flash("Wrong username or password.", "error")
            return render_template("auth/login.html", form=form), 401
        login_user(user, remember=True)
        current_app.logger.info("login user_id=%s", user.id)
        return redirect(next_url or url_for("datasets.list_datasets"))
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
