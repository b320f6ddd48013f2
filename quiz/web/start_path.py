"""POST /f/<code>/start from the Start page, answered before Flask (a WSGI wrapper).

After "Start round" every phone of the room presses Start within seconds. The Start page's form
carries the link's `form_token` (quiz/stored_forms.py: an HMAC of the code, as the stored form's
submit does) instead of the session's CSRF token: a cross-site page can't know it without the
code, and whoever knows the code holds the player's credential already (they can open the page
and press Start themselves). So the press needs no session, and `StartFastPath` answers it in an
app context only:
- the same rate limit as the route (its counter in Redis, quiz/rate_limits.count_hit), then the
  token, then quiz/start_press.press_start (the page's state rule, the clock started once) through
  the route's write path (web/handling.write: a dropped connection or a busy database retried);
- on success the route's 303 to the player's page, with the headers the app adds (security, rate
  limit, X-Request-ID, Vary) and the route's latency metric;
- anything else goes to the app as it came (the body read here is handed on re-wrapped): another
  body type, a press with the session's CSRF token (a page from before this), a bad or missing
  token, a body too long, garbled or short, a press over the limit (the app counts and refuses it),
  every refusal (not open, closed, time up, eliminated, check-in, already in, an unknown link)
  and any unexpected error: the app runs the press again and words its page in the player's
  language. A press is idempotent (the clock starts once), so handing one on is always safe.
"""
import io
import logging
import re
import time
from contextlib import contextmanager
from functools import wraps
from urllib.parse import parse_qsl

from flask import Flask, current_app, g, has_app_context, request
from prometheus_client import Counter
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import redirect

from ..clock import utcnow
from ..errors import QuizError
from ..extensions import csrf, limiter
from ..links import CODE_PATTERN
from ..observability import REGISTRY, REQUEST_SECONDS, request_id
from ..rate_limits import COUNTED, START_LIMIT, count_hit
from ..start_press import press_start
from ..stored_forms import form_token, form_token_ok
from .handling import write
from .security import garbled, security_headers

log = logging.getLogger(__name__)

PATH = re.compile(r"/f/([^/]*)/start")
ENDPOINT = "play.start"  # the route's: its rate-limit counter and its latency metric's label
FORM = "application/x-www-form-urlencoded"
ANSWERED, HANDED_ON = "answered", "handed_on"
START_PATH = Counter("knockout_start_fast_path_total", "Start presses answered before Flask or "
                     "handed on to it", ["outcome"], registry=REGISTRY)


class StartFastPath:
    """WSGI: a Start press with the link's form token answered here when it can be; anything else
    goes on to the app, unchanged."""

    def __init__(self, app: Flask, wrapped):
        self.app, self.wrapped = app, wrapped
        self.answered = START_PATH.labels(ANSWERED)
        self.handed_on = START_PATH.labels(HANDED_ON)
        self.latency = REQUEST_SECONDS.labels(ENDPOINT, "POST")  # the route's own series

    def __call__(self, environ, start_response):
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wrapped(environ, start_response)
        started, code = time.perf_counter(), match.group(1)
        with self._context():
            response = self._press(environ, code, started) if self._token_ok(environ, code) \
                else None
        if response is None:
            self.handed_on.inc()
            return self.wrapped(environ, start_response)
        self.answered.inc()
        return response(environ, start_response)

    def _token_ok(self, environ, code: str) -> bool:
        """A urlencoded body within the app's limit carrying the link's form_token. A body read
        here is put back for the app."""
        if not CODE_PATTERN.fullmatch(code):
            return False
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != FORM or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return False
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return False
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if length < 0 or (limit is not None and length > limit):
            return False  # the app answers 413
        try:
            body = environ["wsgi.input"].read(length)
        except Exception:  # the client went away mid-body: the app answers as it does to that
            log.debug("start %s: body unreadable, handed on", code, exc_info=True)
            return False
        environ["wsgi.input"] = io.BytesIO(body)  # the app reads the same body, CONTENT_LENGTH kept
        if len(body) != length or garbled(body):
            return False  # the app answers 400, as to any short or garbled body
        try:
            # as Werkzeug parses a urlencoded form for the app
            fields = ImmutableMultiDict(parse_qsl(body.decode(), keep_blank_values=True,
                                                  errors="werkzeug.url_quote"))
        except ValueError:
            return False
        return form_token_ok(code, fields.get("form_token", ""))

    def _press(self, environ, code: str, started: float):
        """The 303 once the clock runs (started now or before); None to hand the press on."""
        g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers = self._counted(environ, code)
        if headers is None:
            return None
        try:
            write(press_start, code, utcnow())
        except QuizError:
            return None  # a refusal: the app words it, in the player's language
        except Exception:
            log.warning("start %s: handed on to the app after an error", code, exc_info=True)
            return None
        # The clock runs: this press answers 303 now, whatever fails below.
        try:
            response = self._redirect(environ, code, headers, g.request_id)
            self.latency.observe(time.perf_counter() - started)
            return response
        except Exception:
            log.exception("start %s: clock started; answering without all of its headers", code)
            return self._redirect(environ, code, [], None)

    def _counted(self, environ, code: str) -> list[tuple[str, str]] | None:
        """The route's rate limit, counted here: its headers, or None when the app should see the
        press (over the limit: the app counts it and answers 429; the limiter failed)."""
        if not (limiter.enabled and limiter.initialized):
            return []
        try:
            within, headers = count_hit(limiter, START_LIMIT, ENDPOINT, "link:" + code)
        except Exception:
            log.warning("start %s: rate limit not counted here", code, exc_info=True)
            return None
        if not within:
            return None
        environ[COUNTED] = True  # the app doesn't count it again if it gets it after all
        return headers

    def _redirect(self, environ, code: str, headers: list[tuple[str, str]], given_id: str | None):
        """The route's 303 to the player's page (url_for's relative URL), with the app's headers in
        the order its hooks add them."""
        location = environ.get("SCRIPT_NAME", "").rstrip("/") + f"/f/{code}"
        response = redirect(location, 303, Response=self.app.response_class)
        for name, value in headers:
            response.headers.add(name, value)
        for name, value in security_headers(environ.get("PATH_INFO", "")):
            response.headers.setdefault(name, value)
        if given_id is not None:
            response.headers["X-Request-ID"] = given_id
        # The app's answer looked at the session (Flask-Login, after every request), so Flask
        # marked it Vary: Cookie; a press with the form token never changes a cookie.
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


def link_token_or_csrf(view):
    """The route's check, for the presses that reach it: the link's token (the Start page's form),
    else the session's CSRF token (a page rendered before the form carried the link's token); the
    CSRF error's 400 otherwise."""
    @wraps(view)
    def checked(code, **kwargs):
        if not form_token_ok(code, request.form.get("form_token", "")):
            csrf.protect()
        return view(code, **kwargs)
    return csrf.exempt(checked)


def install(app: Flask) -> None:
    """The fast path, and the token the Start page's form carries (`start_token(code)`)."""
    app.jinja_env.globals["start_token"] = form_token
    app.wsgi_app = StartFastPath(app, app.wsgi_app)
