"""POST /f/<code>/submit from a stored form, answered before Flask (a WSGI wrapper).

Nearly every phone hands its answers in from its stored form (quiz/stored_forms.py): a urlencoded
body carrying the form's `form_token`. Thousands arrive within seconds of a round's end, and the
Flask request around the submit (request context, session, hooks, routing, the view) cost as
much as the submit itself. `SubmitFastPath` answers that request in an app context only:
- the same checks as the route: the rate limit (the route's counter in Redis,
  quiz/rate_limits.count_hit), the stored form's token, then answers.submit_answers (the player's
  check, the scoring, the group commit) through the same write path (web/handling.write);
- on success the same 303 to the player's page, with the headers the app adds (security, rate
  limit, X-Request-ID) and the same metrics (knockout_submissions_total, the request latency); a
  submit through htmx (HX-Request, the questions form's hx-post) gets the page itself instead,
  whole: what GET /f/<code> answers now, got from the app wrapped here (`page_now`: whatever
  answers that GET, before Flask or through it), with HX-Replace-Url: one request a phone, not the
  303 and a GET. If that page fails in any way, the 303 as ever (the row is stored either way);
- a repeat (a phone sending its answers again: a tenth of a burst) gets the route's "already in"
  page from a per-process copy, through Flask's hooks (quiz/web/repeat_page.py);
- anything else goes to the app as it came (the body read here is handed on re-wrapped): another
  body type (photos), the live page's CSRF submit, a bad token, a body too long or chunked, a
  request over the limit (the app counts and refuses it), every other refusal (closed, time up, a
  bad answer...), a repeat whose page holds more than the copy (a flash message, a help request),
  or an unexpected error before the row is stored: the app runs the submit again and words its
  page in the player's language, as for any other submit. Once the row is stored nothing is
  handed on: a failure after that still answers the 303 ("3xx means stored").
"""
import io
import logging
import re
import time
from contextlib import suppress

from flask import Flask, g
from werkzeug.datastructures import ImmutableMultiDict

from .. import answers
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db
from ..observability import SUBMISSIONS, SUBMIT_PATH
from ..rate_limits import SUBMIT_LIMIT
from .handling import write
from .link_post import LinkPost
from .repeat_page import repeat_response
from .security import security_headers
from .start_path import htmx_press, page_url

log = logging.getLogger(__name__)

REPEAT = "already_submitted"  # the refusal answered here too (a phone sending its answers again)


class SubmitFastPath(LinkPost):
    """WSGI: a stored form's submit answered here when it can be; anything else goes on to the
    app, unchanged."""

    PATH = re.compile(r"/f/([^/]*)/submit")
    ENDPOINT, LIMIT, ACTION = "play.submit", SUBMIT_LIMIT, "submit"

    def __init__(self, app: Flask, wrapped):
        super().__init__(app, wrapped, SUBMIT_PATH)

    def answer(self, environ, code: str, form: ImmutableMultiDict, started: float):
        """The 303 once the row is stored; None to hand the request on (nothing stored)."""
        headers = self.counted(environ, code)
        if headers is None:
            return None
        try:
            write(answers.submit_answers, code, form, utcnow())
        except QuizError as error:
            # a repeat: its page from a copy (quiz/web/repeat_page.py); any other refusal: the app
            # words it, in the player's language
            return self._repeat(environ, code, error) if error.code == REPEAT else None
        except Exception:
            log.warning("submit %s: handed on to the app after an error", code, exc_info=True)
            return None
        # Stored: this request answers 303 now, whatever fails below (never handed on, where the
        # submit would run again and say "already submitted" to the player who just made it).
        try:
            SUBMISSIONS.inc()
            response = self.page(environ, code, headers) if htmx_press(environ) else None
            if response is None:
                response = self.redirect(environ, code, headers + [("X-Request-ID", g.request_id)])
            self.latency.observe(time.perf_counter() - started)
            return response
        except Exception:
            log.exception("submit %s stored; answering without all of its headers", code)
            return self.redirect(environ, code, [])

    def page(self, environ, code: str, headers: list[tuple[str, str]]):
        """An htmx submit's answer once its row is stored: the player's page as GET /f/<code>
        gives it now (`page_now`), with the route's headers (HX-Replace-Url, the rate limit's);
        None when that page failed in any way (the 303 then)."""
        try:
            request_id = g.request_id
            with self.app.app_context():  # the GET's own, as a phone's would have (g, session)
                page = page_now(self.wrapped, environ, code, request_id)
        except Exception:
            page = None
            log.warning("submit %s stored; its page failed", code, exc_info=True)
        if page is None:
            return None
        given, body = page
        # in the order the route's answer has them: the view's, its address, then the hooks' (the
        # rate limit's first)
        view = next((i for i, (name, _) in enumerate(given) if name.lower() in HOOKS), len(given))
        answer = [*given[:view], ("HX-Replace-Url", page_url(environ, code)), *headers,
                  *given[view:]]

        def respond(_environ, start_response):
            start_response("200 OK", answer)
            return [body]
        return respond

    def _repeat(self, environ, code: str, error: QuizError):
        """The route's "already in" page for a repeated submit, or None to hand it on (its body
        put back for the app)."""
        body = environ["wsgi.input"]
        try:
            response = repeat_response(self.app, environ, code, error)
        except Exception:
            log.warning("submit %s: repeat handed on to the app after an error", code,
                        exc_info=True)
            with suppress(Exception):  # (the app's own context starts afresh in a web process)
                db.session.rollback()
            response = None
        if response is None:
            body.seek(0)
            environ["wsgi.input"] = body
            environ.pop("werkzeug.request", None)
        return response


# The first header an app's hook adds to a page (after the view's: Content-Type, its length, Vary)
HOOKS = {name.lower() for name, _ in security_headers("/f/")} | {"x-request-id", "set-cookie"}
# What a GET of the player's page is built from: the request's own (its cookies, languages, host,
# mount, server and connection), without its body and without what makes it htmx's or a form's.
KEPT = ("HTTP_", "SERVER_", "REMOTE_", "wsgi.", "gunicorn.")
DROPPED = ("HTTP_HX_", "HTTP_ORIGIN", "HTTP_X_CSRFTOKEN", "HTTP_TRANSFER_ENCODING",
           "HTTP_CONTENT_", "wsgi.input")


def page_now(app, environ, code: str, request_id: str) -> tuple[list, bytes] | None:
    """What GET /f/<code> answers now to the phone that made this request, from `app` (the WSGI
    app below this one: whatever answers that GET, before Flask or through it): its headers and
    body when it is a page (200, HTML), else None. With this request's id."""
    path = f"/f/{code}"
    get = {key: value for key, value in environ.items()
           if key.startswith(KEPT) and not key.startswith(DROPPED)}
    get.update({"REQUEST_METHOD": "GET", "SCRIPT_NAME": environ.get("SCRIPT_NAME", ""),
                "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(b""),
                "HTTP_X_REQUEST_ID": request_id,
                "RAW_URI": environ.get("SCRIPT_NAME", "").rstrip("/") + path})
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered["status"], answered["headers"] = status, headers
        return lambda data: None  # (no app here writes through it)
    result = app(get, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    headers = answered.get("headers", [])
    kind = next((value for name, value in headers if name.lower() == "content-type"), "")
    if not answered.get("status", "").startswith("200 ") or not kind.startswith("text/html"):
        return None
    return list(headers), body


def install(app: Flask) -> None:
    app.wsgi_app = SubmitFastPath(app, app.wsgi_app)
