"""Datasets: the dataset itself (list, create, edit, delete, classes, sharing) and, in sub-packages with
their own blueprints, its images (upload, zip import, labeling, export), health checks and label
suggestions. The sub-blueprints are nested under this one, so their endpoints read
'datasets.images.label_images' and their URLs stay under /datasets/<id>/."""
from flask import Blueprint

from app.blueprints.datasets.health import bp as health_bp
from app.blueprints.datasets.images import bp as images_bp
from app.blueprints.datasets.suggestions import bp as suggestions_bp

bp = Blueprint("datasets", __name__, template_folder="templates")
for _child in (images_bp, health_bp, suggestions_bp):
    bp.register_blueprint(_child)


def init_app(app):
    from app.blueprints.datasets import views  # noqa: F401
    from app.blueprints.datasets.classes import ink
    from app.blueprints.datasets.context import train_url
    from app.blueprints.datasets.health import views as health_views  # noqa: F401
    from app.blueprints.datasets.images import views as images_views  # noqa: F401
    from app.blueprints.datasets.suggestions import views as suggestions_views  # noqa: F401

    app.add_template_global(train_url)
    app.add_template_filter(ink, "ink")  # text on a class colour
    app.register_blueprint(bp)
