"""A POST to a player's link from a page's own form, answered before Flask: what the stored form's
submit (quiz/web/submit_path.py) and the Start press (quiz/web/start_path.py) share.

Such a form carries the link's `form_token` (quiz/stored_forms.py: an HMAC of the code) instead of
a session's CSRF token, so the request needs no session: a subclass answers it in an app context
(`answer`), with the route's rate limit counted here (its counter in Redis,
quiz/rate_limits.count_hit) and the route's 303 and headers. Anything else goes to the app as it
came, the body read here handed on re-wrapped: another body type, a bad or missing token, a body too
long, chunked, short or garbled, a request over the limit (the app counts and refuses it), and
whatever the subclass hands on (`answer` returns None).
"""
import io
import logging
import re
import time
from contextlib import contextmanager
from urllib.parse import parse_qsl

from flask import Flask, current_app, g, has_app_context
from prometheus_client import Counter
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import redirect

from ..extensions import limiter
from ..links import CODE_PATTERN
from ..observability import REQUEST_SECONDS, request_id
from ..rate_limits import COUNTED, count_hit
from ..stored_forms import form_token_ok
from .security import garbled, security_headers

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
ANSWERED, HANDED_ON = "answered", "handed_on"


class LinkPost:
    """WSGI: `PATH`'s POST with the link's form token answered here when `answer` can; anything
    else goes on to the app, unchanged."""

    PATH: re.Pattern  # its one group: the link's code
    ENDPOINT: str  # the route's: its rate-limit counter and its latency metric's label
    LIMIT: str  # the route's rate limit
    ACTION: str  # what the logs call it

    def __init__(self, app: Flask, wrapped, outcomes: Counter):
        self.app, self.wrapped = app, wrapped
        self.answered, self.handed_on = outcomes.labels(ANSWERED), outcomes.labels(HANDED_ON)
        self.latency = REQUEST_SECONDS.labels(self.ENDPOINT, "POST")  # the route's own series

    def __call__(self, environ, start_response):
        match = self.PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wrapped(environ, start_response)
        started, code = time.perf_counter(), match.group(1)
        with self.context():
            form = self.fields(environ, code)
            if form is not None:
                g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID"))
            response = None if form is None else self.answer(environ, code, form, started)
        if response is None:
            self.handed_on.inc()
            return self.wrapped(environ, start_response)
        self.answered.inc()
        return response(environ, start_response)

    def answer(self, environ, code: str, form: ImmutableMultiDict, started: float):
        """The response to send, or None to hand the request on to the app."""
        raise NotImplementedError

    def fields(self, environ, code: str) -> ImmutableMultiDict | None:
        """The form's fields, when they are a page's own for this link (a urlencoded body within
        the app's limit, carrying the link's form_token); else None. A body read here is put back
        for the app."""
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
            log.debug("%s %s: body unreadable, handed on", self.ACTION, code, exc_info=True)
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

    def counted(self, environ, code: str) -> list[tuple[str, str]] | None:
        """The route's rate limit, counted here: its headers, or None when the app should see the
        request (over the limit: the app counts it and answers 429; the limiter failed)."""
        if not (limiter.enabled and limiter.initialized):
            return []
        try:
            within, headers = count_hit(limiter, self.LIMIT, self.ENDPOINT, "link:" + code)
        except Exception:
            log.warning("%s %s: rate limit not counted here", self.ACTION, code, exc_info=True)
            return None
        if not within:
            return None
        environ[COUNTED] = True  # the app doesn't count it again if it gets it after all
        return headers

    def redirect(self, environ, code: str, headers: list[tuple[str, str]],
                 last: list[tuple[str, str]] = ()):
        """The route's 303 to the player's page (url_for's relative URL), with the app's headers
        in the order its hooks add them: `headers`, the security headers, then `last`."""
        location = environ.get("SCRIPT_NAME", "").rstrip("/") + f"/f/{code}"
        response = redirect(location, 303, Response=self.app.response_class)
        for name, value in headers:
            response.headers.add(name, value)
        for name, value in security_headers(environ.get("PATH_INFO", "")):
            response.headers.setdefault(name, value)
        for name, value in last:
            response.headers[name] = value
        # The app's answer looked at the session (Flask-Login, after every request), so Flask
        # marked it Vary: Cookie; a form with the link's token never changes a cookie.
        response.vary.add("Cookie")
        return response

    @contextmanager
    def context(self):
        """This app's context: the one already pushed (as Flask's request would reuse it: a test
        holding one), else a new one."""
        if has_app_context() and current_app._get_current_object() is self.app:
            yield
            return
        with self.app.app_context():
            yield
