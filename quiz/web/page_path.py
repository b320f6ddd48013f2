"""GET /f/<code> answered before Flask when it can be (`PageFastPath`): the stored form, or a page
from this process's copy.

Right after "Start round" every phone opens its link (the Start page), presses Start and is sent to
its link, whose page is then its stored form (quiz/stored_forms.py): bytes from storage with this
moment's timer put in; after its submit, it opens its link again ("Answers in ✔"), and a waiting
phone fetches its page's fragment when the shared status changes. None of these needs a session: the
stored form proves its origin with the link's token, and so do the link page's forms (Start,
language switch, help: quiz/web/start_path.py). So a web process answers them before Flask does: the
link's row (`links.page_row`: plain values, not the ORM's objects, whose load cost more than the
query; on PostgreSQL read with other pages' of the same moment in one query), the page's state,
the storage read or the copy (quiz/web/page_cache.py `copy_before_flask`: whole, or the htmx
fragment), and the headers Flask's hooks would add (tests/test_page_path.py and
tests/test_page_fast.py compare both paths byte for byte). Anything else — another state, a page
not copied yet in this process, a session with a flash message or a staff login (or one
Flask-Login would mark), a shadow-league player, storage paused or failing, a form not stored yet,
HEAD — goes on to Flask, in the same application context, whose view reads the link's objects
(`find_round_page`): such a page costs two reads, the many answered here one. On PostgreSQL the
row's read is one round trip: sent without a transaction (no BEGIN before it, no ROLLBACK after),
one begun as ever if the page goes on to Flask. `pressed_page` is what an htmx Start press answers
with once the clock runs (quiz/web/start_path.py), from the press's own read, and `stored_form`
Flask's way to the same page (served, or through a pre-signed URL).
"""
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app, redirect, render_template
from flask_babel import force_locale
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Request

from .. import answers, i18n, shadow
from ..clock import utcnow
from ..effects import Drain, Pending, dispatch
from ..errors import QuizError
from ..extensions import state, statements_alone, statements_together
from ..links import CODE_PATTERN, LinkRow, RoundPage, page_reads_grouped, page_row, row_page
from ..models import FormLink
from ..observability import REQUEST_SECONDS, request_id
from ..start_press import Press
from ..storage import StorageError, get_storage
from ..stored_forms import TIMER_MARK, form_key
from .page_cache import copy_before_flask
from .security import security_headers

log = logging.getLogger(__name__)
# After a storage failure, players get the live-rendered form for this long before storage is tried
# again.
STORAGE_PAUSE_SECONDS = 15
PREFIX = "/f/"
# What Flask's hooks add to a stored form's response (quiz/web/security.py, quiz/observability.py),
# in their order; Flask's session adds Cookie to Vary (a hook reads the session).
HEADERS = [("Vary", "HX-Request, Cookie"), *security_headers("/f/")]
# ... and to a shared page's (the view adds Accept-Language: a page without a stored language
# speaks the phone's)
COPY_HEADERS = [("Vary", "HX-Request, Accept-Language, Cookie"), *security_headers("/f/")]


@dataclass(frozen=True, slots=True)
class Clock:
    """What the stored form's timer shows of a link: the end of the player's own time."""

    window_ends_at: datetime | None


def stored_body(link: FormLink | LinkRow, language: str) -> bytes | None:
    """The stored form with this moment's timer (in `language`), read from storage; None when it is
    not there (then made in the background by the caller) or storage is paused or failing."""
    return stored_form_body(link.challenge.number, link.participant_id, link.window_ends_at,
                            language)


def stored_form_body(number: int, participant_id: int, window_ends_at: datetime | None,
                     language: str) -> bytes | None:
    """`stored_body` of round `number`'s form for `participant_id`, whose own time ends at
    `window_ends_at`: what the link's row gives (an htmx Start press has no link object)."""
    if time.monotonic() < state().storage_down_until:
        return None  # storage failed a moment ago: don't make every player wait for it again
    key = form_key("forms", number, participant_id)
    try:
        body = get_storage().get(key)
    except StorageError as error:
        log.warning("stored form %s unavailable, rendering it live: %s", key, error)
        state().storage_down_until = time.monotonic() + STORAGE_PAUSE_SECONDS
        return None
    if body is None:
        return None
    with force_locale(language):
        timer = render_template("play/_timer.html", link=Clock(window_ends_at), now=utcnow())
    return body.replace(TIMER_MARK, timer.encode())


def serves_stored(page: RoundPage) -> bool:
    """This page is the player's stored form, if storage has it: the questions, not in the shadow
    league (the stored form can't say so)."""
    link = page.link
    return (answers.page_state(link, utcnow(), page.submitted) == answers.QUESTIONS
            and not shadow.in_shadow_league(link.participant, link.challenge))


class PageFastPath:
    """WSGI: GET /f/<code> answered with the stored form, or a shared page from this process's copy
    (whole or the htmx fragment), when that is the page; anything else goes on to the app."""

    def __init__(self, app: Flask, wrapped):
        self.app, self.wrapped = app, wrapped

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (environ.get("REQUEST_METHOD") != "GET" or not path.startswith(PREFIX)
                or not CODE_PATTERN.fullmatch(path[len(PREFIX):])):
            return self.wrapped(environ, start_response)
        fragment = htmx_fragment(environ)
        if fragment is None:
            return self.wrapped(environ, start_response)
        started, failed = time.perf_counter(), False
        with self.app.app_context():
            try:
                answer = self.answer(path[len(PREFIX):], environ, fragment)
            except QuizError:
                answer = None  # Flask's page says what failed (an unknown link: its 404)
            except SQLAlchemyError as error:
                answer, failed = None, True
                log.warning("round page %s: the fast path's read failed, the app reads again: %s",
                            path, error)
            if answer is None and not failed:
                statements_together()  # Flask's view goes on in a transaction, with the read
                return self.wrapped(environ, start_response)
        if failed:
            # Its session is gone with its context (a cut connection is discarded, and the pool
            # renewed): the app reads again in a context of its own, and says what failed if
            # that fails too.
            return self.wrapped(environ, start_response)
        body, headers = answer
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(body))), *headers,
                                  ("X-Request-ID", request_id(environ.get("HTTP_X_REQUEST_ID")))])
        REQUEST_SECONDS.labels("play.round_page", "GET").observe(time.perf_counter() - started)
        return [body]

    def answer(self, code: str, environ, fragment: bool) -> tuple[bytes, list] | None:
        """`code`'s page and the headers Flask's hooks would add, or None (Flask's page: another
        page, or an unknown link's 404). The read is one round trip on PostgreSQL: in a group
        (the session holds no connection meanwhile), or alone with no transaction around it
        (`statements_alone`)."""
        if not page_reads_grouped():
            statements_alone()  # (the row read on the session's connection)
        row = page_row(code)
        if row is None:
            return None
        page = row_page(row)
        if not fragment:
            body = stored_page_of(page, environ)
            if body is not None:
                return body, HEADERS
        asked = Request(environ)
        copy = copy_before_flask(page, asked, fragment)
        if copy is None:
            return None
        return copy.encode(), COPY_HEADERS


def htmx_fragment(environ) -> bool | None:
    """Whether the request asks for the page's fragment (quiz/web/handling.wants_fragment: an htmx
    request, not boosted, not a history restore); None for anything else htmx sends (Flask
    answers it)."""
    htmx = environ.get("HTTP_HX_REQUEST")
    if htmx is None:
        return False
    if (htmx != "true" or "HTTP_HX_BOOSTED" in environ
            or "HTTP_HX_HISTORY_RESTORE_REQUEST" in environ):
        return None
    return True


def pressed_page(press: Press, environ) -> bytes | None:
    """The stored form an htmx Start press answers with once the clock runs
    (quiz/web/start_path.py), made from what the press read (the link is not read again); None
    when that is not the page now (a shadow-league round, the clock started by another press at
    the same moment: its end not read here), or it is served through a pre-signed URL, or storage
    doesn't have it."""
    link = press.link
    if (link is None or link.shadow
            or answers.state_of(link, utcnow(), current_app.config["SUBMIT_GRACE_SECONDS"])
            != answers.QUESTIONS
            or current_app.config["FORMS_DELIVERY"] == "redirect" and get_storage().presigns):
        return None
    language = i18n.page_language(press.language, Request(environ))
    return stored_form_body(link.number, press.participant_id, link.window_ends_at, language)


def stored_page_of(page: RoundPage, environ) -> bytes | None:
    """`page` when it is the stored form, served here (not through a pre-signed URL), or None."""
    if (not serves_stored(page) or current_app.config["FORMS_DELIVERY"] == "redirect"
            and get_storage().presigns):
        return None
    language = i18n.page_language(page.link.participant.language, Request(environ))
    return stored_body(page.link, language)


def install(app: Flask) -> None:
    app.wsgi_app = PageFastPath(app, app.wsgi_app)


def stored_form(link: FormLink):
    """The stored form, served from storage or through a pre-signed URL minted at this click; None
    if unavailable (quiz/web/page_path.py serves it before Flask when it can).

    Nothing a participant holds expires: the /f/ link is checked against the database on every
    click, and any signature is made now, with the credentials valid now.
    """
    key = form_key("forms", link.challenge.number, link.participant_id)
    store, config = get_storage(), current_app.config
    if config["FORMS_DELIVERY"] == "redirect" and store.presigns:
        if time.monotonic() < state().storage_down_until:
            return None  # storage failed a moment ago: don't make every player wait for it again
        try:
            if store.exists(key):
                return redirect(store.presigned_url(key, config["FORMS_URL_EXPIRY_SECONDS"]), 303)
        except StorageError as error:
            log.warning("stored form %s unavailable, rendering it live: %s", key, error)
            state().storage_down_until = time.monotonic() + STORAGE_PAUSE_SECONDS
            return None
    elif (body := stored_body(link, i18n.current_language())) is not None:
        response = current_app.make_response(body)
        response.headers["Vary"] = "HX-Request"
        return response
    if time.monotonic() < state().storage_down_until:
        return None
    # Not stored yet (or lost): the live page serves now, and the form is made in the background.
    dispatch(Pending(Drain.NEW_FORMS, (link.participant_id,)))
    return None
