"""Dataset health: a background check for near-duplicates, likely label errors, train/test leaks, broken
or tiny images and small classes, the report page, and its one-click fixes."""
from flask import Blueprint

bp = Blueprint("health", __name__, template_folder="templates")
