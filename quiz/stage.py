"""What the room sees: the projector's stage before, during and after a round, and the podium."""
from flask import current_app
from sqlalchemy import func, select

from . import clocks, reveal, rounds, shadow
from .clock import utcnow
from .extensions import db
from .leaderboard import leaderboard
from .models import Participant, Submission
from .qr import join_qr_svg

LEADERBOARD_ROWS = 10
SHADOW_ROWS = 10


def what_the_room_sees() -> dict:
    """The stage now: before, during, after a round, or the podium (for the page and the push)."""
    challenge = rounds.current_challenge()
    # One pass over the players for both counts (eliminated_in has no index: the close writes it
    # in place).
    players, in_game = db.session.execute(select(func.count(), func.count().filter(
        Participant.eliminated_in.is_(None))).select_from(Participant)).one()
    context = {"challenge": challenge, "players": players, "in_game": in_game, "now": utcnow(),
               "qr": join_qr_svg()}
    if challenge is None or (challenge.is_draft and challenge.number == 1):
        context["phase"] = "before"
    elif challenge.is_open:
        context["phase"] = "during"
        context["submitted"] = db.session.scalar(select(func.count()).where(
            Submission.challenge_id == challenge.id, Submission.shadow.is_(False)))
        # Playing, and when the round closes itself (it moves as players start, run out of time,
        # or get more): one aggregate, reused for a moment (clocks.SHOWN_PLAN_SECONDS).
        context["plan"] = clocks.shown_plan(challenge, context["now"])
        league = current_app.config["SHADOW_LEAGUE"]
        context["shadow_submitted"] = shadow.submitted(challenge) if league else 0
    else:
        shown = (challenge if challenge.is_closed
                 else rounds.get_challenge(challenge.number - 1))
        champion = rounds.winner()
        entries = leaderboard(shown, limit=LEADERBOARD_ROWS if not champion else 3)
        context.update(phase="podium" if champion else "after", shown=shown, winner=champion,
                       entries=podium(shown, champion, entries) if champion else entries,
                       next_challenge=challenge if challenge.is_draft else None)
        # Once the round is final, its questions and answers come first (quiz/reveal.py).
        shown_reveal = reveal.stage_context(shown, context["now"])
        if shown_reveal is not None:
            context.update(phase="reveal", reveal=shown_reveal)
        context["reveal_in"] = reveal.starts_in(shown, context["now"])
    # The shadow league's panel, beside whatever the room sees once a round has been played.
    played = context["phase"] != "before" and current_app.config["SHADOW_LEAGUE"]
    context["shadow"] = shadow.standings(limit=SHADOW_ROWS) if played else []
    return context


def podium(shown, champion: Participant, top: list[dict]) -> list[dict]:
    """The podium's three: the winner on the top step, even when PRIZE_REQUIRES_CHECKIN passed
    over a better rank."""
    if top and top[0]["user_id"] == champion.id:
        return top
    score = db.session.scalar(select(Submission.score).where(
        Submission.challenge_id == shown.id, Submission.participant_id == champion.id))
    others = [e for e in top if e["user_id"] != champion.id]
    return [{"user_id": champion.id, "name": champion.public_name, "score": score},
            *others][:3]
