from flask import render_template
from flask_login import login_required

from app.blueprints.training import bp


@bp.route("/models")
@login_required
def list_models():
    return render_template("training/list.html")
