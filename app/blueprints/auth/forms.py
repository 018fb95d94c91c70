from flask_wtf import FlaskForm
from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from app.blueprints.auth.services import MAX_PASSWORD_LENGTH, password_problem


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class RegisterForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(),
            Length(min=3, max=40),
            Regexp(r"^[A-Za-z0-9_.-]+$", message=_l("Use letters, digits, '.', '_' or '-' only.")),
        ],
    )
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(
        _l("Repeat password"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )

    def validate_password(self, field):
        problem = password_problem(field.data or "", self.username.data or "")
        if problem:
            raise ValidationError(problem)


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(_l("Type your current password."))])
    password = PasswordField(_l("New password"), validators=[DataRequired(_l("Choose a new password."))])
    confirm = PasswordField(
        _l("Repeat new password"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )

    def validate_password(self, field):
        from flask_login import current_user

        problem = password_problem(field.data or "", current_user.username)
        if problem:
            raise ValidationError(problem)
