from flask import render_template

from app.blueprints.admin import bp
from app.blueprints.admin.services import admin_required


@bp.route("/")
@admin_required
def index():
    return render_template("admin/index.html")
