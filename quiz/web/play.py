"""The participant's pages: join, the round link, the report."""
import logging
import random
import time

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from redis import RedisError
from sqlalchemy import select

from .. import rounds
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import csrf, db, limiter
from ..forms import TIMER_MARK, form_key, form_token_ok, request_work
from ..links import find_link, link_url, report_url
from ..models import FormLink, Participant, Submission
from ..reports import participant_report
from ..registration import register_participant, registration_open, validate_registration
from ..storage import StorageError, get_storage
from . import wants_fragment, write
from .display import qr_svg
from .security import link_key, registration_key

bp = Blueprint("play", __name__)
log = logging.getLogger(__name__)
# After a storage failure, players get the live-rendered form for this long before storage is tried again.
STORAGE_PAUSE_SECONDS = 15


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
    """A player's round: one clear page per state; the questions are their stored form when it is there."""
    link = find_link(code)
    state = rounds.page_state(link, utcnow())
    if state == rounds.QUESTIONS and not wants_fragment():
        stored = stored_form(link)
        if stored is not None:
            return stored
    return render_round(link, state, fragment=wants_fragment())


def stored_form(link: FormLink):
    """The stored form, served from storage or through a pre-signed URL minted at this click; None if unavailable.

    Nothing a participant holds expires: the /f/ link is checked against the database on every
    click, and any signature is made now, with the credentials valid now.
    """
    key = form_key("forms", link.challenge.number, link.participant_id)
    store, config = get_storage(), current_app.config
    if time.monotonic() < current_app.extensions.get("knockout_storage_down_until", 0):
        return None  # storage failed a moment ago: don't make every player wait for it again
    try:
        if config["FORMS_DELIVERY"] == "redirect" and store.presigns:
            if store.exists(key):
                return redirect(store.presigned_url(key, config["FORMS_URL_EXPIRY_SECONDS"]), 303)
        elif (body := store.get(key)) is not None:
            timer = render_template("play/_timer.html", challenge=link.challenge, now=utcnow()).encode()
            response = current_app.make_response(body.replace(TIMER_MARK, timer))
            response.headers["Vary"] = "HX-Request"
            return response
    except StorageError as error:
        log.warning("stored form %s unavailable, rendering it live: %s", key, error)
        current_app.extensions["knockout_storage_down_until"] = time.monotonic() + STORAGE_PAUSE_SECONDS
        return None
    try:  # not stored yet (or lost): the live page serves now, and the form is made in the background
        request_work("new", [link.participant_id])
    except RedisError:
        pass
    return None


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
@csrf.exempt  # checked below: the live page's session token, or the stored form's own token
@limiter.limit("30 per minute", key_func=link_key)
def submit(code):
    """Hand in the answers; a retried or doubled POST gets 'already submitted'."""
    link = find_link(code)
    if not form_token_ok(code, request.form.get("form_token", "")):
        csrf.protect()
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
