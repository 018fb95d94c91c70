"""A dataset's images: upload (files and folder-per-class zips), the labeling grid with bulk label and
delete, the image files and thumbnails, and export as a zip."""
from flask import Blueprint

bp = Blueprint("images", __name__, template_folder="templates")
