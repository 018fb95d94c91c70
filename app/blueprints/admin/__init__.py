"""Admin area: users, queue overview, RQ dashboard, shutdown. 404 for everyone but admins.

Also registers the operational pieces that are not admin pages: GET /healthz (no login), the
503 answer while the server is shutting down, and signing out accounts an admin disabled.
"""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


def init_app(app):
    from app.blueprints.admin import views  # noqa: F401
    from app.blueprints.admin.guards import init_guards
    from app.blueprints.admin.health import bp as health_bp
    from app.blueprints.admin.rq_dashboard import init_rq_dashboard

    app.register_blueprint(bp)
    app.register_blueprint(health_bp)
    init_rq_dashboard(app)
    init_guards(app)
