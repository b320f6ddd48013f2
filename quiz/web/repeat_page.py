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

from .. import answers, i18n, waiting
from ..clock import utcnow
from ..errors import QuizError
from ..links import find_round_page, page_row, round_facts, round_row
from ..models import RoundStatus
from .page_cache import copied_page, plain_session
from .play import render_round

log = logging.getLogger(__name__)
KIND = "already_in"  # its copies' key, next to the Start page's


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
    row = page_row(code)
    if row is None:
        return None
    i18n.use_language(row.language)
    link = answers.LinkState.of_row(row)
    shadow = link.shadow
    if (row.asked_for_help or row.status == RoundStatus.CLOSED
            or answers.state_of(link, utcnow(), current_app.config["SUBMIT_GRACE_SECONDS"])
            != answers.SUBMITTED):
        return None
    facts = round_facts(round_row(row))  # (its questions read once a process)
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
