"""One place that turns errors into a page or JSON a person can act on."""
import logging

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from ..errors import QuizError
from ..extensions import db

bp = Blueprint("errors", __name__)
log = logging.getLogger(__name__)

# Worded in the request's language when the page (or the JSON) is made.
MESSAGES = {
    400: _l("The request was not understood. Reload the page and try again."),
    404: _l("There is nothing at this address. Check the link."),
    405: _l("This address does not take that kind of request."),
    413: _l("That was more data than this form takes. Shorten it and try again."),
    429: _l("Too many tries in a short time. Wait a minute, then try again."),
    500: _l("Something went wrong on our side. Try again in a moment; your earlier answers are "
            "safe."),
}


def respond(status: int, message: str, code: str, fields: dict | None = None):
    """JSON for the API, a page for people."""
    if request.path.startswith("/api/"):
        body = {"error": code, "message": _plain(message)}
        if fields:
            body["fields"] = {name: _plain(text) for name, text in fields.items()}
        return jsonify(body), status
    return render_template("errors/error.html", status=status, message=message), status


def _plain(text):
    """A message worded lazily (in the request's language) as the text JSON can carry."""
    return str(text) if isinstance(text, LazyString) else text


@bp.app_errorhandler(QuizError)
def quiz_error(error: QuizError):
    return respond(error.status, error.message, error.code, error.fields)


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError):
    return respond(400, _l("This form is out of date (its security token is missing or "
                           "expired). Reload the page and send it again."), "csrf")


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    status = error.code or 500
    # abort(404, "...") carries a message meant for the person; the default ones don't.
    message = (error.description if error.description != type(error).description
               else MESSAGES.get(status, error.name))
    if status == 429:  # Flask-Limiter's description is the limit itself
        message = f"{MESSAGES[429]} (limit: {error.description})"
    return respond(status, message, error.name.lower().replace(" ", "_"))


DATABASE_BUSY = _l("We couldn't save that just now \u2014 nothing was lost; please press the "
                   "button again in a moment.")


@bp.app_errorhandler(DBAPIError)
def database_unavailable(error: DBAPIError):
    """A locked database or a dropped connection: 503 with Retry-After, never a stack trace;
    anything else is a bug."""
    if not (isinstance(error, OperationalError) or error.connection_invalidated):
        return unexpected(error)
    log.warning("database unavailable on %s %s: %s", request.method, request.path,
                str(error).splitlines()[0])
    return busy()


@bp.app_errorhandler(PoolTimeout)
def database_overloaded(error: PoolTimeout):
    """Every pooled connection stayed busy for pool_timeout (a rush bigger than the pool): the
    same 503, not a bug."""
    log.warning("no database connection free on %s %s: %s", request.method, request.path,
                str(error).splitlines()[0])
    return busy()


def busy():
    """503 "nothing was lost, press again" with Retry-After; the transaction rolled back."""
    # nothing half-written; the next request starts clean (the pool renews dead links)
    db.session.rollback()
    body, status = respond(503, DATABASE_BUSY, "busy")
    response = current_app.make_response((body, status))
    response.headers["Retry-After"] = "2"
    return response


@bp.app_errorhandler(Exception)
def unexpected(error: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return respond(500, MESSAGES[500], "internal_error")
