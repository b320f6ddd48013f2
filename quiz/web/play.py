"""The participant's pages: join, the round link, the report."""
import logging
import random

from flask import (Blueprint, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from .. import answers, helpdesk, i18n, reveal, rounds, shadow
from ..branding import current_look
from ..checkin import display_code
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import csrf, db, limiter
from ..stored_forms import form_token, form_token_ok
from ..links import find_link, find_participant, find_round_page, link_url, report_url
from ..models import HELP_KINDS, FormLink, Participant, Submission
from ..observability import SUBMISSIONS
from ..qr import qr_svg
from ..rate_limits import START_LIMIT, SUBMIT_LIMIT, counted_before
from ..reports import linked_rounds, participant_report, report_version
from .handling import wants_fragment, write
from .page_cache import round_values, shared, shared_page, waiting_context
from .page_path import stored_form
from .security import link_key
from .start_path import htmx_press, link_token_or_csrf, pressed

bp = Blueprint("play", __name__)
log = logging.getLogger(__name__)


@bp.get("/f/<code>")
def round_page(code):
    """A player's round: one clear page per state; the questions are their stored form when it is
    there."""
    return page_for(code, wants_fragment())


def page_for(code: str, fragment: bool):
    """`code`'s round page now (`fragment`: its state's part alone, for htmx)."""
    page = find_round_page(code)
    link = page.link
    i18n.use_language(link.participant.language)  # the row already loaded: no query
    state = answers.page_state(link, utcnow(), page.submitted)
    # A shadow-league player gets the live page: the stored form can't say "shadow league".
    if (state == answers.QUESTIONS and not fragment
            and not shadow.in_shadow_league(link.participant, link.challenge)):
        stored = stored_form(link)
        if stored is not None:
            return stored
    return render_round(link, state, fragment=fragment,
                        help_requests=None if page.asked_for_help else [], last=page.last)


@bp.post("/f/<code>/start")
@link_token_or_csrf  # a press with the link's token is answered before Flask (start_path.py)
@limiter.limit(START_LIMIT, key_func=link_key, exempt_when=counted_before)
def start(code):
    """Press Start: the response clock starts now (never on the GET)."""
    link = find_link(code)
    i18n.use_language(link.participant.language)
    try:
        write(answers.start_clock, link, utcnow())
    except QuizError as error:
        return render_round(link, answers.page_state(link, utcnow()), error), error.status
    if htmx_press(request.environ):
        return pressed(code, page_for(code, fragment=False))
    return redirect(url_for("play.round_page", code=code), 303)


@bp.post("/f/<code>/submit")
@csrf.exempt  # checked below: the live page's session token, or the stored form's own token
# The stored form's submit is answered before Flask (submit_path.py), refusals handed on here.
@limiter.limit(SUBMIT_LIMIT, key_func=link_key, exempt_when=counted_before)
def submit(code):
    """Hand in the answers; a retried or doubled POST gets 'already submitted'. Through htmx (the
    questions form's hx-post) the answer is the player's page itself, a refusal its page as ever."""
    if request.mimetype == "multipart/form-data":
        # a photo round's form: its own body limit, before reading it
        link = find_link(code)
        i18n.use_language(link.participant.language)
        too_large = read_body(link)
        if too_large:
            return (render_round(link, answers.page_state(link, utcnow()), too_large),
                    too_large.status)
    if not form_token_ok(code, request.form.get("form_token", "")):
        csrf.protect()
    try:
        write(answers.submit_answers, code, request.form, utcnow(), request.files)
    except QuizError as error:
        # the page to answer with, in one query (an unknown link is a 404 from here): a doubled
        # tap comes with every burst
        page = find_round_page(code)
        i18n.use_language(page.link.participant.language)  # the message is worded as rendered
        state = answers.page_state(page.link, utcnow(), page.submitted)
        help_requests = None if page.asked_for_help else []
        if error.code == "already_submitted":
            return render_round(page.link, state, error, help_requests=help_requests)
        return (render_round(page.link, state, error, chosen=request.form,
                             help_requests=help_requests), error.status)
    SUBMISSIONS.inc()  # committed
    if htmx_press(request.environ):  # through htmx: the page itself (as after Start), else the 303
        try:
            return pressed(code, page_for(code, fragment=False))
        except Exception:  # stored: the 303 says so, whatever failed
            log.warning("submit %s stored; its page failed", code, exc_info=True)
            db.session.rollback()
    return redirect(url_for("play.round_page", code=code), 303)


def read_body(link: FormLink) -> QuizError | None:
    """Parse the form, taking photos only in a round that asks for them (PHOTO_MAX_BYTES each); 413
    past that."""
    config = current_app.config
    uploads = sum(q.type.upload for q in link.challenge.questions)
    if not uploads:
        return None  # the app-wide MAX_CONTENT_LENGTH applies
    request.max_content_length = uploads * config["PHOTO_MAX_BYTES"] + config["MAX_CONTENT_LENGTH"]
    try:
        request.form, request.files
    except RequestEntityTooLarge:
        return QuizError(gettext("That photo is larger than %(size)s MB, the limit. Send a "
                                 "smaller one, or take it again at a lower resolution.",
                                 size=f"{config['PHOTO_MAX_BYTES'] / 1_000_000:g}"),
                         code="too_large", status=413)
    return None


def render_round(link: FormLink, state: str, error: QuizError | None = None, chosen=None,
                 fragment=False, help_error: QuizError | None = None, help_requests=None,
                 last: bool | None = None):
    """The round page for `state`, with an optional message on top (`help_requests`: the
    player's, and `last`: whether the round is the last, when known already)."""
    submission, final, won = None, False, False
    if state == answers.SUBMITTED and link.challenge.is_closed:  # no result while it is open
        submission = db.session.scalar(select(Submission).where(
            Submission.participant_id == link.participant_id,
            Submission.challenge_id == link.challenge_id))
        if link.challenge.is_last if last is None else last:  # the winner only after the last
            champion = rounds.winner()
            final = champion is not None
            won = final and champion.id == link.participant_id
    desk = {} if fragment else help_context(link.participant, "f", link.code, help_error,
                                            help_requests)
    template = "play/_state.html" if fragment else "play/round.html"
    context = dict(
        link=link, challenge=link.challenge, participant=link.participant, state=state,
        error=error, chosen=chosen, submission=submission, now=utcnow(), final=final, won=won,
        **round_values(link, state, last),
        questions=answers.questions_for(link) if state == answers.QUESTIONS else [],
        report_url=report_url(link.participant.report_code), **waiting_context(link, state),
        language_action=url_for("language.switch_round", code=link.code),
        # the language switch and help form prove their origin with the link's token, as the
        # Start form does (quiz/web/start_path.py): the page holds no session token
        link_token=form_token(link.code), **desk)
    plain = (not shared(context) or error or help_error or chosen is not None
             or desk.get("help_requests"))
    response = current_app.make_response(render_template(template, **context) if plain
                                         else shared_page(template, link, context))
    response.headers["Vary"] = "HX-Request, Accept-Language"
    return response


@bp.get("/r/<code>")
def report(code):
    """A participant's page: their links and, round by round, how they did. Cached by ETag."""
    participant = find_participant(code)
    i18n.use_language(participant.language)
    welcome = request.args.get("welcome") == "1"
    # The page carries this session's CSRF token (help form): a cached copy must belong to the same
    # session.
    generate_csrf()
    if session.get("_flashes"):  # a one-off message on top: this copy must not be reused
        return render_report(participant, welcome), 200, {"Cache-Control": "no-store"}
    etag = report_version(participant, welcome, session.get("csrf_token"),
                          i18n.current_language())
    if request.if_none_match.contains(etag):
        return _cacheable(current_app.response_class(status=304), etag)
    return _cacheable(current_app.make_response(render_report(participant, welcome)), etag)


def render_report(participant: Participant, welcome: bool = False,
                  help_error: QuizError | None = None):
    rows = participant_report(participant)
    # Rounds still to play in the shadow league (knocked out earlier, not disqualified,
    # SHADOW_LEAGUE on).
    playable = [row for row in rows if not row.challenge.is_closed
                and shadow.in_shadow_league(participant, row.challenge)]
    return render_template("play/report.html", participant=participant, rows=rows,
                           linked=linked_rounds(participant, rows), shadow_playable=playable,
                           shadow_totals=shadow.totals_of(participant.id),
                           qr=qr_svg, welcome=welcome, link_url=link_url,
                           sheets=reveal.answer_sheets(participant.id, utcnow()),
                           checkin=display_code(participant.checkin_code),
                           report_url=report_url(participant.report_code),
                           event=current_look().name,
                           language_action=url_for("language.switch_report",
                                                   code=participant.report_code),
                           **help_context(participant, "r", participant.report_code, help_error))


def _cacheable(response, etag: str):
    """Private to this browser, reused for a few seconds, then revalidated (a 304 when nothing
    changed)."""
    response.set_etag(etag)
    response.headers["Cache-Control"] = (
        f"private, max-age={current_app.config['REPORT_MAX_AGE']}, must-revalidate")
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response


@bp.get("/r/<code>/badge")
def badge(code):
    """A printable badge: name, company, check-in QR code (print CSS)."""
    participant = find_participant(code)
    i18n.use_language(participant.language)
    return render_template("play/badge.html", participant=participant,
                           qr=qr_svg(participant.checkin_code),
                           checkin=display_code(participant.checkin_code),
                           event=current_look().name)


# --- the help desk, from the participant's side ---------------------------------------------------

def help_context(participant: Participant, scope: str, code: str,
                 error: QuizError | None = None, requests=None) -> dict:
    """What the help form and the replies on a participant's page need (`requests`: theirs, when
    known already)."""
    requests = helpdesk.requests_of(participant.id) if requests is None else requests
    return {"help_requests": requests, "help_kinds": HELP_KINDS,
            "help_error": error, "help_values": request.form if error else {}, "help_scope": scope,
            "help_code": code, "help_max": helpdesk.TEXT_MAX,
            "help_poll": round(random.uniform(5, 9), 1)}


@bp.post("/f/<code>/help")
@link_token_or_csrf  # the round page's form carries the link's token; an older page the session's
@limiter.limit("6 per minute", key_func=link_key)
def ask_help_round(code):
    """Ask the help desk from a round page."""
    link = find_link(code)
    i18n.use_language(link.participant.language)
    try:
        write(helpdesk.ask_for_help, link.participant, request.form.get("kind", ""),
              request.form.get("text", ""), utcnow())
    except QuizError as error:
        return (render_round(link, answers.page_state(link, utcnow()), help_error=error),
                error.status)
    flash(gettext("Your request is with the help desk. Their answer will appear on this page."),
          "ok")
    return redirect(url_for("play.round_page", code=code, _anchor="help"), 303)


@bp.post("/r/<code>/help")
@limiter.limit("6 per minute", key_func=link_key)
def ask_help_report(code):
    """Ask the help desk from the report page."""
    participant = find_participant(code)
    i18n.use_language(participant.language)
    try:
        write(helpdesk.ask_for_help, participant, request.form.get("kind", ""),
              request.form.get("text", ""), utcnow())
    except QuizError as error:
        return render_report(participant, help_error=error), error.status
    flash(gettext("Your request is with the help desk. Their answer will appear on this page."),
          "ok")
    return redirect(url_for("play.report", code=code, _anchor="help"), 303)


@bp.get("/<any(f, r):scope>/<code>/help")
def help_status(scope, code):
    """The participant's requests and the desk's replies (polled while one is open)."""
    participant = find_link(code).participant if scope == "f" else find_participant(code)
    i18n.use_language(participant.language)
    if not wants_fragment():
        return redirect(url_for("play.round_page" if scope == "f" else "play.report", code=code,
                                _anchor="help"), 303)
    return render_template("play/_help_status.html", **help_context(participant, scope, code))
