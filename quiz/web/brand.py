"""The event's logos: uploaded ones from object storage (named by content: cached for a year),
configured ones (EVENT_LOGO, SPONSORS' YAML) from their path."""
import mimetypes
import re
from pathlib import Path

from flask import Blueprint, abort, current_app, request

from .. import branding, logos
from ..storage import StorageError

bp = Blueprint("brand", __name__, url_prefix="/brand")
KEY = re.compile(r"[0-9a-f]{32}\.png")


@bp.get("/<key>")
def stored(key):
    """An uploaded logo; its key is its content's hash, so it never changes."""
    if not KEY.fullmatch(key):
        abort(404)
    try:
        body = logos.read_logo(key)
    except StorageError:
        abort(503, "The storage could not be read just now. Reload in a moment.")
    if body is None:
        abort(404)
    response = current_app.response_class(body, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/look.css")
def stylesheet():
    """The event's colours (templates/brand/_style.html links it with its version: a new look is a
    new address, so this one may be cached for good). Asked for a version this process's copy of
    the look is not (saved in another process a moment ago), it reads the look afresh; a version
    that is still not the look's (an old page's) is answered with today's colours, not cached."""
    look = branding.current_look()
    wanted = request.args.get("v", "")
    if wanted != look.css_version:
        look = branding.fresh_look()
    response = current_app.response_class(look.css, mimetype="text/css")
    response.headers["Cache-Control"] = ("public, max-age=31536000, immutable"
                                         if wanted == look.css_version else "no-cache")
    return response


@bp.app_context_processor
def the_look():
    """`look` in every template (quiz/branding.py)."""
    return {"look": branding.current_look()}


def configured_file(path: str):
    if not path or branding.is_url(path) or not Path(path).is_file():
        abort(404)
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    response = current_app.response_class(Path(path).read_bytes(), mimetype=kind)
    response.headers["Cache-Control"] = "public, max-age=3600"  # the file may change: an hour
    return response


@bp.get("/configured/logo")
def configured_logo():
    """EVENT_LOGO, when it is a path."""
    return configured_file(current_app.config.get("EVENT_LOGO", ""))


@bp.get("/configured/sponsor/<int:index>")
def configured_sponsor(index):
    """A logo of the SPONSORS YAML, when it is a path."""
    sponsors = branding.configured_sponsors(current_app.config)
    if index >= len(sponsors):
        abort(404)
    return configured_file(sponsors[index]["logo"])
