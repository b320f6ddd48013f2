"""The event desk in the console: the check-in kiosk and the help desk."""
from datetime import timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import helpdesk, live, rounds
from ..audit import record
from ..checkin import check_in, checkin_counts
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db
from ..models import HelpRequest, Role
from .handling import wants_fragment, write
from .roles import requires

bp = Blueprint("desk", __name__, url_prefix="/admin")


def venue_time(moment) -> str:
    """A stored (naive UTC) time as the venue's clock shows it: '09:14'."""
    zone = ZoneInfo(current_app.config["EVENT_TIMEZONE"])
    return moment.replace(tzinfo=timezone.utc).astimezone(zone).strftime("%H:%M")


@bp.get("/checkin")
@requires(Role.VIEWER)
def kiosk():
    """The check-in kiosk: camera scan or a typed code."""
    return render_template("desk/checkin.html", result=None, counts=checkin_counts())


@bp.post("/checkin")
@requires(Role.DESK)
def checkin():
    """Check a badge's owner in; the kiosk shows who, or why not, in big letters."""
    code = request.form.get("code", "")
    try:
        result, status = write(check_in, code, utcnow()), 200
    except QuizError as error:
        result, status = error, error.status
    template = "desk/_checkin_result.html" if wants_fragment() else "desk/checkin.html"
    return render_template(template, result=result, counts=checkin_counts(),
                           time=venue_time), status


def help_page(status: int = 200, error: QuizError | None = None, failed_id: int | None = None):
    return render_template("desk/help.html", live=False, error=error, failed_id=failed_id,
                           current=rounds.current_challenge(), **helpdesk.desk_queue()), status


@bp.get("/help")
@requires(Role.VIEWER)
def help_desk():
    """Help requests, oldest open first; pushed live over /ws?topic=help."""
    return help_page()


@bp.post("/help/<int:request_id>/resolve")
@requires(Role.DESK)
def resolve(request_id):
    """Answer a help request; the participant sees the reply on their page."""
    def operation():
        help_request = db.get_or_404(HelpRequest, request_id)
        helpdesk.resolve(help_request, request.form.get("reply", ""), current_user.username,
                         utcnow())
        record(current_user.username, "answer help request", None,
               f"#{help_request.id} {help_request.participant.name}",
               about=help_request.participant)
    try:
        write(operation)
    except QuizError as error:
        return help_page(error.status, error, request_id)
    flash(f"Request #{request_id} answered.", "ok")
    return redirect(url_for("desk.help_desk"), 303)


@live.renderer(bp, "help")
def live_help() -> str:
    """The help list as the websocket pushes it (no per-session CSRF field: htmx sends the
    header)."""
    return render_template("admin/_help.html", live=True, current=rounds.current_challenge(),
                           **helpdesk.desk_queue())
