"""The projector: /display, one page whose stage refreshes itself. It speaks the event's
DEFAULT_LANGUAGE, or `?lang=` (one of LANGUAGES), whatever the laptop's browser asks for; each
language's stage is its own live topic (`display`, `display-de`, …), rendered only when watched."""
from functools import partial

from flask import Blueprint, current_app, render_template, request
from flask_babel import force_locale

from .. import i18n, live
from ..stage import what_the_room_sees
from .handling import wants_fragment

bp = Blueprint("display", __name__)


@bp.get("/display")
def display():
    """The projector page; htmx polls the same URL for its stage."""
    asked = request.args.get("lang")
    language = i18n.default() if asked is None else i18n.offered(asked)
    i18n.use_language(language)
    own = language if asked is not None and language != i18n.default() else None
    template = "display/_stage.html" if wants_fragment() else "display/display.html"
    response = current_app.make_response(render_template(
        template, stage_language=own, stage_topic=f"display-{own}" if own else "display",
        **what_the_room_sees()))
    response.headers["Vary"] = "HX-Request"
    return response


@live.renderer(bp, "display")
def live_stage() -> str:
    """The stage as the websocket pushes it to every projector."""
    with force_locale(i18n.default()):
        return render_template("display/_stage.html", stage_language=None, **what_the_room_sees())


def stage_in(language: str) -> str:
    """The stage in `language` (/ws?topic=display-<language>), for a projector with ?lang=."""
    with force_locale(language):
        return render_template("display/_stage.html", stage_language=language,
                               **what_the_room_sees())


for _code in i18n.SUPPORTED:
    live.renderer(bp, f"display-{_code}")(partial(stage_in, _code))
