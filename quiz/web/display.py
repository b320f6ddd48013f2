"""The projector: /display, one page whose stage refreshes itself."""
from flask import Blueprint, current_app, render_template

from .. import live
from ..stage import what_the_room_sees
from .handling import wants_fragment

bp = Blueprint("display", __name__)


@bp.get("/display")
def display():
    """The projector page; htmx polls the same URL for its stage."""
    template = "display/_stage.html" if wants_fragment() else "display/display.html"
    response = current_app.make_response(render_template(template, **what_the_room_sees()))
    response.headers["Vary"] = "HX-Request"
    return response


@live.renderer(bp, "display")
def live_stage() -> str:
    """The stage as the websocket pushes it to every projector."""
    return render_template("display/_stage.html", **what_the_room_sees())
