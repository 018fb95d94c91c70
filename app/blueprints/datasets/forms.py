"""Forms of the datasets pages (uploads and bulk labeling read request.files / ids directly)."""
from flask_wtf import FlaskForm
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp


class DatasetForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(message=_l("Give the dataset a name.")), Length(max=120)])
    description = TextAreaField(_l("Description (optional)"), validators=[Optional(), Length(max=2000)])


class ClassForm(FlaskForm):
    name = StringField(_l("Class name"), validators=[DataRequired(message=_l("Give the class a name.")), Length(max=80)])
    color = StringField(_l("Colour"), validators=[Optional(), Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Pick a colour."))])


class ShareForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(message=_l("Type the other person's username."))])
    role = SelectField(_l("Access"), choices=[SelectChoice("viewer", _l("Viewer — can see it and train models")),
                                          SelectChoice("editor", _l("Editor — can also upload and label"))])
