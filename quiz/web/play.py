"""The participant's pages: join, the round link, the report."""
import random

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from .. import rounds
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db, limiter
from ..links import find_link, link_url, report_url
from ..models import FormLink, Participant, Submission
from ..reports import participant_report
from ..registration import register_participant, registration_open, validate_registration
from . import wants_fragment, write
from .display import qr_svg
from .security import link_key, registration_key

bp = Blueprint("play", __name__)


@bp.get("/")
@bp.get("/register")
def register_form():
    """The join form."""
    return render_template("play/register.html", values={}, errors={}, is_open=registration_open())


@bp.post("/register")
@limiter.limit("10 per minute", key_func=registration_key)
@limiter.limit("1200 per minute")  # per address: a whole venue behind one NAT still gets in
def register():
    """Join the game; errors come back inline with what was typed kept."""
    if not registration_open():
        return render_template("play/register.html", values={}, errors={}, is_open=False), 409
    try:
        clean = validate_registration(request.form)
        if not clean["consent"]:
            raise QuizError("Please tick the box to agree to receive your round links by SMS.", code="invalid",
                            status=422, fields={"consent": "Needed: your round links come by SMS."})
        participant = write(register_participant, clean)
    except QuizError as error:
        return render_template("play/register.html", values=request.form, errors=error.fields or {"form": error.message},
                               is_open=registration_open()), error.status
    return redirect(url_for("play.report", code=participant.report_code, welcome=1), 303)


@bp.get("/f/<code>")
def round_page(code):
    """A player's round: one clear page per state."""
    link = find_link(code)
    return render_round(link, rounds.page_state(link, utcnow()), fragment=wants_fragment())


@bp.post("/f/<code>/start")
@limiter.limit("30 per minute", key_func=link_key)
def start(code):
    """Press Start: the response clock starts now (never on the GET)."""
    link = find_link(code)
    try:
        write(rounds.start_clock, link, utcnow())
    except QuizError as error:
        return render_round(link, rounds.page_state(link, utcnow()), error), error.status
    return redirect(url_for("play.round_page", code=code), 303)


@bp.post("/f/<code>/submit")
@limiter.limit("30 per minute", key_func=link_key)
def submit(code):
    """Hand in the answers; a retried or doubled POST gets 'already submitted'."""
    link = find_link(code)
    try:
        write(rounds.submit_answers, link, request.form, utcnow())
    except QuizError as error:
        state = rounds.page_state(link, utcnow())
        if error.code == "already_submitted":
            return render_round(link, state, error)
        return render_round(link, state, error, chosen=request.form), error.status
    return redirect(url_for("play.round_page", code=code), 303)


def render_round(link: FormLink, state: str, error: QuizError | None = None, chosen=None, fragment=False):
    """The round page for `state`, with an optional message on top."""
    submission, final, won = None, False, False
    if state == rounds.SUBMITTED:
        submission = db.session.scalar(select(Submission).where(
            Submission.participant_id == link.participant_id, Submission.challenge_id == link.challenge_id))
        if link.challenge.status == "closed":
            champion = rounds.winner()
            final = champion is not None and rounds.is_last(link.challenge)
            won = final and champion.id == link.participant_id
    response = current_app.make_response(render_template(
        "play/_state.html" if fragment else "play/round.html", link=link, challenge=link.challenge, participant=link.participant, state=state,
        error=error, chosen=chosen, submission=submission, now=utcnow(), final=final, won=won,
        questions=rounds.questions_for(link) if state == rounds.QUESTIONS else [],
        report_url=report_url(link.participant.report_code), poll_delay=round(random.uniform(3, 6), 1)))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.get("/r/<code>")
def report(code):
    """A participant's page: their links and, round by round, how they did."""
    participant = db.session.scalar(select(Participant).where(Participant.report_code == code)) if len(code) < 64 else None
    if participant is None:
        abort(404, "This report link is not valid. Check that you opened the whole link.")
    return render_template("play/report.html", participant=participant, rows=participant_report(participant), qr=qr_svg,
                           welcome=request.args.get("welcome") == "1", link_url=link_url,
                           report_url=report_url(participant.report_code), event=current_app.config["EVENT_NAME"])
