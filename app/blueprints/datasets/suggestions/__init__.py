"""Label suggestions: a trained model guesses classes for the unlabeled images in the background; the
user reviews the guesses by class and accepts them."""
from flask import Blueprint

bp = Blueprint("suggestions", __name__, template_folder="templates")
