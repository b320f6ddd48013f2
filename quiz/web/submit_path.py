"""POST /f/<code>/submit from a stored form, answered before Flask (a WSGI wrapper).

Nearly every phone hands its answers in from its stored form (quiz/stored_forms.py): a urlencoded
body carrying the form's `form_token`. Thousands arrive within seconds of a round's end, and the
Flask request around the submit (request context, session, hooks, routing, the view) cost as
much as the submit itself. `SubmitFastPath` answers that request in an app context only:
- the same checks as the route: the rate limit (the route's counter in Redis,
  quiz/rate_limits.count_hit), the stored form's token, then answers.submit_answers (the player's
  check, the scoring, the group commit) through the same write path (web/handling.write);
- on success the same 303 to the player's page, with the headers the app adds (security, rate
  limit, X-Request-ID) and the same metrics (knockout_submissions_total, the request latency);
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
from contextlib import contextmanager, suppress
from urllib.parse import parse_qsl

from flask import Flask, current_app, g, has_app_context
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import redirect

from .. import answers
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db, limiter
from ..links import CODE_PATTERN
from ..observability import REQUEST_SECONDS, SUBMISSIONS, SUBMIT_PATH, request_id
from ..rate_limits import COUNTED, SUBMIT_LIMIT, count_hit
from ..stored_forms import form_token_ok
from .handling import write
from .repeat_page import repeat_response
from .security import garbled, security_headers

log = logging.getLogger(__name__)

PATH = re.compile(r"/f/([^/]*)/submit")
ENDPOINT = "play.submit"  # the route's: its rate-limit counter and its latency metric's label
FORM = "application/x-www-form-urlencoded"
ANSWERED, HANDED_ON = "answered", "handed_on"
REPEAT = "already_submitted"  # the refusal answered here too (a phone sending its answers again)


class SubmitFastPath:
    """WSGI: a stored form's submit answered here when it can be; anything else goes on to the
    app, unchanged."""

    def __init__(self, app: Flask, wrapped):
        self.app, self.wrapped = app, wrapped
        self.answered = SUBMIT_PATH.labels(ANSWERED)
        self.handed_on = SUBMIT_PATH.labels(HANDED_ON)
        self.latency = REQUEST_SECONDS.labels(ENDPOINT, "POST")  # the route's own series

    def __call__(self, environ, start_response):
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wrapped(environ, start_response)
        started, code = time.perf_counter(), match.group(1)
        with self._context():
            form = self._form(environ, code)
            response = None if form is None else self._submit(environ, code, form, started)
        if response is None:
            self.handed_on.inc()
            return self.wrapped(environ, start_response)
        self.answered.inc()
        return response(environ, start_response)

    def _form(self, environ, code: str) -> ImmutableMultiDict | None:
        """The stored form's fields, when this is its submit (a urlencoded body within the app's
        limit, carrying a valid form_token); else None. A body read here is put back for the app."""
        if not CODE_PATTERN.fullmatch(code):
            return None
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != FORM or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if length < 0 or (limit is not None and length > limit):
            return None  # the app answers 413
        try:
            body = environ["wsgi.input"].read(length)
        except Exception:  # the client went away mid-body: the app answers as it does to that
            log.debug("submit %s: body unreadable, handed on", code, exc_info=True)
            return None
        environ["wsgi.input"] = io.BytesIO(body)  # the app reads the same body, CONTENT_LENGTH kept
        if len(body) != length or garbled(body):
            return None  # the app answers 400, as to any short or garbled body
        try:
            # as Werkzeug parses a urlencoded form for the app
            form = ImmutableMultiDict(parse_qsl(body.decode(), keep_blank_values=True,
                                                errors="werkzeug.url_quote"))
        except ValueError:
            return None
        return form if form_token_ok(code, form.get("form_token", "")) else None

    def _submit(self, environ, code: str, form: ImmutableMultiDict, started: float):
        """The 303 once the row is stored; None to hand the request on (nothing stored)."""
        g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers = self._counted(environ, code)
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
            response = self._redirect(environ, code, headers + [("X-Request-ID", g.request_id)])
            self.latency.observe(time.perf_counter() - started)
            return response
        except Exception:
            log.exception("submit %s stored; answering without all of its headers", code)
            return self._redirect(environ, code, [])

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

    def _counted(self, environ, code: str) -> list[tuple[str, str]] | None:
        """The route's rate limit, counted here: its headers, or None when the app should see the
        request (over the limit: the app counts it and answers 429; the limiter failed)."""
        if not (limiter.enabled and limiter.initialized):
            return []
        try:
            within, headers = count_hit(limiter, SUBMIT_LIMIT, ENDPOINT, "link:" + code)
        except Exception:
            log.warning("submit %s: rate limit not counted here", code, exc_info=True)
            return None
        if not within:
            return None
        environ[COUNTED] = True  # the app doesn't count it again if it gets it after all
        return headers

    def _redirect(self, environ, code: str, headers: list[tuple[str, str]]):
        """The route's 303 to the player's page (url_for's relative URL), with the app's headers."""
        location = environ.get("SCRIPT_NAME", "").rstrip("/") + f"/f/{code}"
        response = redirect(location, 303, Response=self.app.response_class)
        for name, value in headers:
            response.headers.add(name, value)
        for name, value in security_headers(environ.get("PATH_INFO", "")):
            response.headers.setdefault(name, value)
        # The app's answer looked at the session (Flask-Login's remember cookie, after every
        # request), so Flask marked it Vary: Cookie; a stored form's submit never changes a cookie.
        response.vary.add("Cookie")
        return response

    @contextmanager
    def _context(self):
        """This app's context: the one already pushed (as Flask's request would reuse it: a test
        holding one), else a new one."""
        if has_app_context() and current_app._get_current_object() is self.app:
            yield
            return
        with self.app.app_context():
            yield


def install(app: Flask) -> None:
    app.wsgi_app = SubmitFastPath(app, app.wsgi_app)
