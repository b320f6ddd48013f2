"""The projector: /display, one page whose stage refreshes itself."""
import functools
import io

import segno
from flask import Blueprint, current_app, render_template
from sqlalchemy import func, select

from .. import rounds, shadow
from ..clock import utcnow
from ..extensions import db
from ..leaderboard import leaderboard
from ..models import Participant, Submission
from . import wants_fragment

bp = Blueprint("display", __name__)

LEADERBOARD_ROWS = 10
SHADOW_ROWS = 10


def stage() -> dict:
    """What the room should see now: before, during, after a round, or the podium."""
    challenge = rounds.current_challenge()
    # One pass over the players for both counts (eliminated_in has no index: the close writes it in place).
    players, in_game = db.session.execute(select(func.count(), func.count().filter(
        Participant.eliminated_in.is_(None))).select_from(Participant)).one()
    context = {"challenge": challenge, "players": players, "in_game": in_game, "now": utcnow()}
    if challenge is None or (challenge.is_draft and challenge.number == 1):
        context["phase"] = "before"
    elif challenge.is_open:
        context["phase"] = "during"
        context["submitted"] = db.session.scalar(select(func.count()).where(Submission.challenge_id == challenge.id,
                                                                           Submission.shadow.is_(False)))
        context["shadow_submitted"] = shadow.submitted(challenge) if current_app.config["SHADOW_LEAGUE"] else 0
    else:
        shown = challenge if challenge.is_closed else rounds.get_challenge(challenge.number - 1)
        champion = rounds.winner()
        entries = leaderboard(shown, limit=LEADERBOARD_ROWS if not champion else 3)
        context.update(phase="podium" if champion else "after", shown=shown, winner=champion,
                       entries=podium(shown, champion, entries) if champion else entries,
                       next_challenge=challenge if challenge.is_draft else None)
    # The shadow league's panel, beside whatever the room sees once a round has been played.
    played = context["phase"] != "before" and current_app.config["SHADOW_LEAGUE"]
    context["shadow"] = shadow.standings(limit=SHADOW_ROWS) if played else []
    return context


def podium(shown, champion: Participant, top: list[dict]) -> list[dict]:
    """The podium's three: the winner on the top step, even when PRIZE_REQUIRES_CHECKIN passed over a better rank."""
    if top and top[0]["user_id"] == champion.id:
        return top
    score = db.session.scalar(select(Submission.score).where(Submission.challenge_id == shown.id,
                                                             Submission.participant_id == champion.id))
    others = [e for e in top if e["user_id"] != champion.id]
    return [{"user_id": champion.id, "name": champion.name, "score": score}, *others][:3]


def join_qr_svg() -> str:
    """The QR code on the projector: where to register."""
    return qr_svg(f"{current_app.config['PUBLIC_BASE_URL']}/register")


@functools.lru_cache(maxsize=64)
def qr_svg(url: str) -> str:
    """An SVG QR code for `url` (cached: the projector polls)."""
    out = io.BytesIO()
    # micro=False: a short text (a check-in code) would otherwise become a Micro QR, which phones and jsQR can't read.
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=10, border=2, dark="#0b1020", light="#ffffff", xmldecl=False, svgns=True,
        omitsize=True)  # a viewBox and no fixed size: it scales to its CSS box
    return out.getvalue().decode()


@bp.get("/display")
def display():
    """The projector page; htmx polls the same URL for its stage."""
    context = stage()
    if wants_fragment():
        response = current_app.make_response(render_template("display/_stage.html", qr=join_qr_svg(), **context))
    else:
        response = current_app.make_response(render_template("display/display.html", qr=join_qr_svg(), **context))
    response.headers["Vary"] = "HX-Request"
    return response
