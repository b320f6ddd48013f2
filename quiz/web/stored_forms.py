"""The console's view of stored forms: where they are against where the database says, repair,
regenerate."""
from flask import Blueprint, render_template, request
from flask_login import current_user
from sqlalchemy import select

from .. import stored_forms
from ..audit import record
from ..extensions import db
from ..models import Challenge, Participant, Role
from ..storage import StorageError
from .admin import act
from .roles import requires

bp = Blueprint("stored_forms", __name__, url_prefix="/admin/forms")


@bp.get("/")
@requires(Role.VIEWER)
def state():
    """Per round: forms expected in each place (database) and found there (storage), and any
    drift."""
    challenges = db.session.scalars(select(Challenge).order_by(Challenge.number)).all()
    try:
        reports, error = [(c, stored_forms.drift([c.id])) for c in challenges], None
    except StorageError as failure:
        reports, error = [], f"The storage could not be read just now ({failure}). Players still " \
                            "get their forms: Knockout renders them itself while storage is away."
    return render_template("admin/stored_forms.html", reports=reports, error=error,
                           places=stored_forms.PLACES), 503 if error else 200


@bp.post("/repair")
@requires(Role.HOST)
def repair():
    """Compare storage with the database and repair every difference, in the background."""
    def operation():
        record(current_user.username, "repair stored forms", None, "every round")
        stored_forms.repair_later("console: repair stored forms")
    return act(operation, "Repair started: reload this page in a few seconds to see the result.",
               "stored_forms.state")


@bp.post("/participants/<int:participant_id>/regenerate")
@requires(Role.HOST)
def regenerate(participant_id):
    """Render one participant's forms again, into the places the database says."""
    def operation():
        participant = db.get_or_404(Participant, participant_id)
        record(current_user.username, "regenerate forms", None, participant.name,
               about=participant)
        stored_forms.regenerate_later(participant.id)
    return act(operation, "Their forms are being made again.", "admin.participants",
               q=request.form.get("q", ""))
