"""GET /api/status, the shared status every waiting phone polls (quiz/waiting.py): its JSON, or
304 when the phone's version is current. No cookie, no session, no database.

Thousands of phones ask it every few seconds, so a web process answers it before Flask does
(`StatusFastPath`, a WSGI wrapper): no request context, session, hooks or metrics, a few dozen
microseconds a request. The blueprint's route (quiz/web/api.py) gives the same answer through
Flask, for anything the wrapper lets through (and when the database and Redis are both down, the
app's JSON error).
"""
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import parse_etags

from ..waiting import EXTENSION, Status

PATH = "/api/status"
# nginx (deploy/nginx.conf) and the phone's browser may reuse an answer for a second.
CACHE_CONTROL = "public, max-age=1"
REASONS = {200: "200 OK", 304: "304 Not Modified"}


def answer(status: Status, if_none_match: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status code, headers, body) for a request holding `if_none_match`."""
    headers = [("ETag", status.etag), ("Cache-Control", CACHE_CONTROL),
               ("X-Content-Type-Options", "nosniff")]
    if if_none_match and parse_etags(if_none_match).contains_weak(status.version):
        return 304, headers, b""
    return 200, headers + [("Content-Type", "application/json")], status.body


class StatusFastPath:
    """WSGI: GET and HEAD /api/status answered from the process's copy of the status; anything else
    goes on to the app."""

    def __init__(self, app: Flask, wrapped):
        self.cache, self.wrapped = app.extensions[EXTENSION], wrapped

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if environ.get("PATH_INFO") != PATH or method not in ("GET", "HEAD"):
            return self.wrapped(environ, start_response)
        try:
            status = self.cache.get()
        except SQLAlchemyError:
            return self.wrapped(environ, start_response)  # the app's error page says what failed
        code, headers, body = answer(status, environ.get("HTTP_IF_NONE_MATCH"))
        start_response(REASONS[code], headers + [("Content-Length", str(len(body)))])
        return [body] if method == "GET" else []


def install(app: Flask) -> None:
    app.wsgi_app = StatusFastPath(app, app.wsgi_app)
