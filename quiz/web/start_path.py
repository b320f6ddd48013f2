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
  limit, X-Request-ID, Vary) and the route's latency metric; a press from the Start form through
  htmx (HX-Request) gets the page itself instead, the stored form as GET /f/<code> gives it
  (quiz/web/page_path.py), made from the press's own read of the link, with HX-Replace-Url: one
  request a phone, not the 303 and a GET (no stored form: handed on, and the route, pressing again
  to no effect, answers with the live page);
- anything else goes to the app as it came (the body read here is handed on re-wrapped): another
  body type, a press with the session's CSRF token (a page from before this), a bad or missing
  token, a body too long, garbled or short, a press over the limit (the app counts and refuses it),
  every refusal (not open, closed, time up, eliminated, check-in, already in, an unknown link)
  and any unexpected error: the app runs the press again and words its page in the player's
  language. A press is idempotent (the clock starts once), so handing one on is always safe.
"""
import logging
import re
import time
from functools import wraps

from flask import Flask, current_app, g, request, url_for
from prometheus_client import Counter
from werkzeug.datastructures import ImmutableMultiDict

from ..clock import utcnow
from ..errors import QuizError
from ..extensions import csrf
from ..observability import REGISTRY
from ..rate_limits import START_LIMIT
from ..start_press import Press, press_start
from ..stored_forms import form_token, form_token_ok
from .handling import write
from .link_post import LinkPost
from .page_path import pressed_page
from .security import security_headers

log = logging.getLogger(__name__)

START_PATH = Counter("knockout_start_fast_path_total", "Start presses answered before Flask or "
                     "handed on to it", ["outcome"], registry=REGISTRY)


class StartFastPath(LinkPost):
    """WSGI: a Start press with the link's form token answered here when it can be; anything else
    goes on to the app, unchanged."""

    PATH = re.compile(r"/f/([^/]*)/start")
    ENDPOINT, LIMIT, ACTION = "play.start", START_LIMIT, "start"

    def __init__(self, app: Flask, wrapped):
        super().__init__(app, wrapped, START_PATH)

    def answer(self, environ, code: str, form: ImmutableMultiDict, started: float):
        """The 303 once the clock runs (started now or before); None to hand the press on."""
        headers = self.counted(environ, code)
        if headers is None:
            return None
        try:
            press = write(press_start, code, utcnow())
        except QuizError:
            return None  # a refusal: the app words it, in the player's language
        except Exception:
            log.warning("start %s: handed on to the app after an error", code, exc_info=True)
            return None
        if htmx_press(environ):
            return self.questions(environ, code, press, headers, started)
        # The clock runs: this press answers 303 now, whatever fails below.
        try:
            response = self.redirect(environ, code, headers, [("X-Request-ID", g.request_id)])
            self.latency.observe(time.perf_counter() - started)
            return response
        except Exception:
            log.exception("start %s: clock started; answering without all of its headers", code)
            return self.redirect(environ, code, [])

    def questions(self, environ, code: str, press: Press, headers: list[tuple[str, str]],
                  started: float):
        """An htmx press's answer once the clock runs: the stored form, as GET /f/<code> would
        answer it now (quiz/web/page_path.py), made from what the press read, with the route's
        headers and the page's address (HX-Replace-Url); None to hand the press on (the route
        presses again, which changes nothing now, and answers with the live page)."""
        try:
            body = pressed_page(press, environ)
            if body is None:
                return None
            response = self.app.response_class(body)
            response.headers["Vary"] = "HX-Request"
            response.headers["HX-Replace-Url"] = page_url(environ, code)
            for name, value in headers:
                response.headers.add(name, value)
            for name, value in security_headers(environ.get("PATH_INFO", "")):
                response.headers.setdefault(name, value)
            response.headers["X-Request-ID"] = g.request_id
            response.vary.add("Cookie")
        except Exception:
            log.warning("start %s: the questions handed on to the app after an error", code,
                        exc_info=True)
            return None
        self.latency.observe(time.perf_counter() - started)
        return response


def htmx_press(environ) -> bool:
    """A press from the Start form through htmx (its hx-post): it takes the questions page itself
    as the answer, one request instead of the 303 and the GET after it."""
    return environ.get("HTTP_HX_REQUEST") == "true"


def pressed(code: str, page):
    """The route's answer to an htmx press once the clock runs: `page` (what GET /f/<code> answers
    now, whole) with its address for a reload (HX-Replace-Url); a page served through a pre-signed
    URL (FORMS_DELIVERY=redirect) is a navigation to the link instead (HX-Redirect), as after the
    plain form's 303."""
    url = url_for("play.round_page", code=code)
    if page.status_code in (301, 302, 303, 307, 308):
        page = current_app.response_class(status=200)
        page.headers["HX-Redirect"] = url
        return page
    page.headers["HX-Replace-Url"] = url
    return page


def page_url(environ, code: str) -> str:
    """The player's page, as url_for gives it (relative, under the app's mount)."""
    return environ.get("SCRIPT_NAME", "").rstrip("/") + f"/f/{code}"


def link_token_or_csrf(view):
    """The route's check, for the posts that reach it (Start, and the help form of a link page): the
    link's token (the link page's forms), else the session's CSRF token (a page rendered before the
    form carried the link's token); the CSRF error's 400 otherwise."""
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
