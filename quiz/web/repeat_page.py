"""The "already in" page of a repeated stored-form submit, answered before Flask's view.

A tenth of a burst of submits are a phone sending its answers a second time. The route would run
the submit again, read the player's page and render it with "Your answers are already in"; here
(quiz/web/submit_path.py found the answers already in) the same request goes through Flask's hooks
(its request context, the session and its CSRF token, the headers, the metrics) around a page from
a per-process copy (quiz/web/page_cache.py): rendered once per round, language, look and shared
status, the player's code, report code, CSRF token and name put in. The same bytes as the route's
answer (tests/test_submit_path.py compares them). Anything more on that page — a flash message, a
staff login, a help request, a closed round's result, another state — goes to the route.
"""
import logging

from flask import Flask, current_app, request
from sqlalchemy import ARRAY, any_, bindparam, exists, select
from sqlalchemy.orm import aliased

from .. import answers, i18n, waiting
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db, state
from ..links import find_round_page, round_facts
from ..models import Challenge, FormLink, HelpRequest, Participant, RoundStatus, Submission
from ..submit_read import ALONE, PreparedRead, reader
from .page_cache import copied_page, plain_session
from .play import render_round

log = logging.getLogger(__name__)
KIND = "already_in"  # its copies' key, next to the Start page's
FACTS = "knockout.round_facts"  # links.round_facts' copies


def repeat_response(app: Flask, environ, code: str, error: QuizError):
    """The route's answer to a repeated submit (`error`: its "already in"), or None to hand the
    request on; in this app's context, the request's own pushed around it."""
    context = app.request_context(environ)
    context.push()
    try:
        if app.preprocess_request() is not None:
            return None  # a hook answers: the route's turn
        body = _page(code, error)
        if body is None:
            return None
        response = app.make_response(body)
        response.headers["Vary"] = "HX-Request, Accept-Language"  # as play.render_round sets it
        return app.process_response(response)
    finally:
        context.pop()


def _page(code: str, error: QuizError) -> str | None:
    """The player's "already in" page, from the copy when there is one; None when the page holds
    more than what is put in (the route renders it)."""
    if not plain_session():
        return None
    row = _row(code)
    if row is None:
        return None
    i18n.use_language(row.language)
    link = answers.LinkState.of_row(row)
    shadow = link.shadow
    if (row.asked_for_help or row.status == RoundStatus.CLOSED
            or answers.state_of(link, utcnow(), current_app.config["SUBMIT_GRACE_SECONDS"])
            != answers.SUBMITTED):
        return None
    facts = current_app.extensions.get(FACTS, {}).get((row.challenge_id, row.opened_at))
    if facts is None:  # (once a process and round)
        facts = round_facts(db.session.get(Challenge, row.challenge_id))
    status = waiting.current_status()
    invited_next = (current_app.config["SHADOW_LEAGUE"] and row.eliminated_in == row.number
                    and row.elimination_reason != "disqualified" and not row.last)
    key = (KIND, row.challenge_id, row.status, row.number, row.title, facts, shadow, invited_next,
           status.version, status.rounds_version, status.poll_seconds, request.script_root)

    def render() -> tuple[str, bool]:
        page = find_round_page(code)
        body = render_round(page.link, answers.SUBMITTED, error, help_requests=[],
                            last=page.last).get_data(as_text=True)
        # kept under the status it shows: the same status, though the process may have read it
        # again meanwhile (its copy lasts STATUS_CACHE_SECONDS)
        return body, waiting.current_status() == status
    return copied_page(key, (code, row.report_code, row.name), render)


def _row(code: str):
    """The page's row for `code` (None: no such link): in a web process on PostgreSQL read with
    other requests' in one query (quiz/submit_read.py's group read), else in the request's own
    transaction."""
    if GROUPED in _statements() and state().submit_writer.is_batched():
        row = reader().group(_statements()[GROUPED], "code").first(code)
        if row is not ALONE:
            return row
    return _statements()[ONE].first(db.session.connection(), {"code": code})


_STATEMENTS: dict[str, dict[str, PreparedRead]] = {}
ONE, GROUPED = "one", "grouped"


def _statements() -> dict[str, PreparedRead]:
    """What the page depends on, in one plain row (the round page's query loads whole objects),
    built once per dialect (PostgreSQL: prepared, quiz/submit_read.py; and a group read's)."""
    dialect = db.engine.dialect.name
    if dialect not in _STATEMENTS:
        this, later = aliased(Challenge, name="this_round"), aliased(Challenge, name="later")
        page = (
            select(FormLink.started_at, FormLink.window_ends_at, FormLink.challenge_id,
                   Participant.name, Participant.language, Participant.report_code,
                   Participant.eliminated_in, Participant.elimination_reason,
                   Participant.checked_in_at, Challenge.number, Challenge.status,
                   Challenge.title, Challenge.opened_at, Challenge.closes_at,
                   Challenge.closed_at,
                   exists().where(Submission.participant_id == FormLink.participant_id,
                                  Submission.challenge_id == FormLink.challenge_id)
                   .label("submitted"),
                   exists().where(HelpRequest.participant_id == FormLink.participant_id)
                   .label("asked_for_help"),
                   ~exists().where(this.id == FormLink.challenge_id, later.number > this.number)
                   .label("last"))
            .join(Participant, Participant.id == FormLink.participant_id)
            .join(Challenge, Challenge.id == FormLink.challenge_id))
        statements = _STATEMENTS[dialect] = {
            ONE: PreparedRead(page.where(FormLink.code == bindparam("code")), db.engine.dialect)}
        if dialect == "postgresql":
            codes = bindparam("values", type_=ARRAY(FormLink.code.type))
            statements[GROUPED] = PreparedRead(
                page.add_columns(FormLink.code).where(FormLink.code == any_(codes)),
                db.engine.dialect)
    return _STATEMENTS[dialect]
