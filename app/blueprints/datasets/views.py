from flask import render_template
from flask_login import login_required

from app.blueprints.datasets import bp


@bp.route("/datasets")
@login_required
def list_datasets():
    return render_template("datasets/list.html")
