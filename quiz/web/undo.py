"""The console's undo and fix: more time for a round, a round reopened, a player reinstated, a
participant's details corrected (quiz/undo.py, quiz/corrections.py)."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import undo
from ..undo import reopened_detail
from ..audit import record
from ..clock import local_time, utcnow
from ..corrections import FIELDS, correct_participant
from ..errors import QuizError
from ..extensions import db
from ..models import Participant, Role
from .admin import act
from .confirm import confirm_first, to_reinstate, to_reopen_round
from .handling import write
from .roles import requires

bp = Blueprint("undo", __name__, url_prefix="/admin")


@bp.post("/rounds/<int:number>/extend")
@requires(Role.HOST)
def extend_round(number):
    """Give an open, timed round more time."""
    def operation():
        challenge = undo.extend_round(number, request.form.get("seconds", ""), utcnow())
        return record(current_user.username, "extend round", challenge,
                      f"round {number}: +{request.form.get('seconds')} s, closes "
                      f"{local_time(challenge.closes_at)}")
    return act(operation, lambda c: f"Round {number}: every player still playing has "
                                    f"{request.form.get('seconds')} s more; it now closes "
                                    f"{local_time(c.closes_at)} at the latest.")


@bp.post("/rounds/<int:number>/reopen")
@requires(Role.HOST)
@confirm_first(to_reopen_round)
def reopen_round(number):
    """Reopen a round ended by mistake: its eliminations are reversed, no results go out."""
    seconds = request.form.get("seconds") or None

    def operation():
        done = undo.reopen_round(number, utcnow(), seconds)
        return record(current_user.username, "reopen round", done, reopened_detail(done))
    return act(operation, lambda done: f"Round {number} is open again: the {done.back_in} "
                                       "player(s) it knocked out are back in.",
               failure="Round not reopened: {}")


@bp.post("/participants/<int:participant_id>/reinstate")
@requires(Role.HOST)
@confirm_first(to_reinstate)
def reinstate(participant_id):
    """Bring a player knocked out or disqualified by mistake back into the game."""
    def operation():
        participant = db.get_or_404(Participant, participant_id)
        number, reason = undo.reinstate(participant)
        return record(current_user.username, "reinstate", participant,
                      f"{participant.name} (was out in round {number}: {reason})")
    return act(operation, lambda p: f"{p.name} is back in the game.", "admin.participants",
               q=request.form.get("q", ""))


@bp.route("/participants/<int:participant_id>/edit", methods=["GET", "POST"])
@requires(Role.DESK)
def edit_participant(participant_id):
    """Correct a participant's name, email, phone or company; optionally resend their link."""
    participant = db.get_or_404(Participant, participant_id)
    if request.method == "GET":
        return _edit_page(participant, {field: getattr(participant, field) for field in FIELDS})
    values = {field: request.form.get(field, "") for field in FIELDS}
    resend = request.form.get("resend") == "on"

    def operation():
        done = correct_participant(participant, values, resend=resend)
        record(current_user.username, "correct participant", None,
               f"{participant.name} (#{participant.id}): "
               f"{', '.join(done.changed) or 'nothing changed'}"
               f"{'; link resent' if done.resent else ''}")
        return done
    try:
        done = write(operation)
    except QuizError as error:
        return _edit_page(participant, values, error.fields or {"form": error.message},
                          error.status, resend)
    flash(f"Saved: {', '.join(done.changed) or 'nothing changed'}."
          f"{' Their link is being sent again.' if done.resent else ''}", "ok")
    return redirect(url_for("admin.participants", q=request.form.get("q", "")), 303)


def _edit_page(participant, values, errors=None, status=200, resend=False):
    return render_template("admin/participant_edit.html", p=participant, values=values,
                           errors=errors or {}, resend=resend), status
