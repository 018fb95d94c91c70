"""Forms of the datasets pages (uploads and bulk labeling read request.files / ids directly)."""
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp


class DatasetForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the dataset a name."), Length(max=120)])
    description = TextAreaField("Description (optional)", validators=[Optional(), Length(max=2000)])


class ClassForm(FlaskForm):
    name = StringField("Class name", validators=[DataRequired(message="Give the class a name."), Length(max=80)])
    color = StringField("Colour", validators=[Optional(), Regexp(r"^#[0-9a-fA-F]{6}$", message="Pick a colour.")])


class ShareForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(message="Type the other person's username.")])
    role = SelectField("Access", choices=[SelectChoice("viewer", "Viewer — can see it and train models"),
                                          SelectChoice("editor", "Editor — can also upload and label")])
