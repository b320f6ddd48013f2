"""The console's alerts panel: incidents open now and the latest alerts and recoveries (what
ALERT_WEBHOOK_URL was told). It reads the instance folder's file (and Redis, when it answers): with
Redis down it still shows what this folder knows; with the database down only the webhook speaks
(logging in needs it)."""
from flask import Blueprint, render_template

from .. import alerts
from ..models import Role
from .roles import requires

bp = Blueprint("alerts", __name__, url_prefix="/admin")


@bp.get("/alerts")
@requires(Role.VIEWER)
def panel():
    """The panel alone (the dashboard's polls it)."""
    return render_template("admin/_alerts.html")


@bp.app_context_processor
def alert_report() -> dict:
    """`alert_report()` in a template: read only where the panel is drawn."""
    return {"alert_report": alerts.report}
