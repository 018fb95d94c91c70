from flask import render_template
from flask_login import login_required

from app.blueprints.predict import bp


@bp.route("/tokens")
@login_required
def tokens():
    return render_template("predict/tokens.html")
