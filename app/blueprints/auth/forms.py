from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from app.blueprints.auth.services import MAX_PASSWORD_LENGTH, password_problem


class HintError(str):
    """An error that says what the field's hint says: field() in _macros.html then shows only the error."""

    restates_hint = True


class RestatesHint:
    """Wraps a validator whose error restates the field's hint ('Use letters, digits...' under 'Letters,
    digits...')."""

    def __init__(self, validator):
        self.validator = validator
        self.field_flags = getattr(validator, "field_flags", {})

    def __call__(self, form, field):
        try:
            self.validator(form, field)
        except ValidationError as err:
            raise ValidationError(HintError(err.args[0])) from None


def check_new_password(field, username: str) -> None:
    """The password rules; too short restates the hint 'At least N characters'."""
    problem = password_problem(field.data or "", username)
    if problem:
        short = len(field.data or "") < current_app.config["MIN_PASSWORD_LENGTH"]
        raise ValidationError(HintError(problem) if short else problem)


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class RegisterForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(),
            Length(min=3, max=40),
            RestatesHint(Regexp(r"^[A-Za-z0-9_.-]+$", message=_l("Use letters, digits, '.', '_' or '-' only."))),
        ],
    )
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(
        _l("Repeat password"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )

    def validate_password(self, field):
        check_new_password(field, self.username.data or "")


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(_l("Type your current password."))])
    password = PasswordField(_l("New password"), validators=[DataRequired(_l("Choose a new password."))])
    confirm = PasswordField(
        _l("Repeat new password"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )

    def validate_password(self, field):
        from flask_login import current_user

        check_new_password(field, current_user.username)


class ResetPasswordForm(FlaskForm):
    """The new password on a reset link's page; the rules are checked against the link's account."""

    password = PasswordField(_l("New password"), validators=[DataRequired(_l("Choose a new password."))])
    confirm = PasswordField(
        _l("Repeat new password"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )

    def __init__(self, account_name: str, **kwargs):
        super().__init__(**kwargs)
        self.account_name = account_name

    def validate_password(self, field):
        check_new_password(field, self.account_name)
