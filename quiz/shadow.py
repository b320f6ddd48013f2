"""The shadow league: knocked-out players play the later rounds for fun, never for the prize.

A shadow submission is a Submission with `shadow` set: scored and stored exactly like a real one
(one per player per round, the same close and grace), but never ranked, never counted in the
round's results, and with no effect on who is eliminated or who wins. Its standings add up every
round a player played in it: total score, then total response time, then id. Only closed rounds
count: standings that moved while a round is open would tell who is scoring in it.
"""
from flask import current_app
from sqlalchemy import func, select

from .extensions import db
from .models import Challenge, Participant, Submission
from .ranking import ShadowTotal, shadow_standings


def in_shadow_league(participant: Participant, challenge: Challenge) -> bool:
    """This round is a shadow-league round for this player: knocked out earlier (not disqualified),
    league on."""
    return invited(participant.eliminated_in, participant.elimination_reason, challenge.number)


def invited(eliminated_in: int | None, reason: str | None, number: int) -> bool:
    """Round `number` is a shadow-league round for a player out since `eliminated_in` for
    `reason`."""
    return (current_app.config["SHADOW_LEAGUE"] and eliminated_in is not None
            and eliminated_in < number and reason != "disqualified")


def _results():
    """Shadow-league submissions of closed rounds: the ones whose results may show."""
    return (Submission.shadow.is_(True),
            Submission.challenge_id.in_(select(Challenge.id).where(Challenge.is_closed)))


def standings(limit: int | None = None) -> list[dict]:
    """The shadow league's table over its closed rounds, best first: one aggregate query, ordered
    as ranking.shadow_key orders."""
    score, seconds = func.sum(Submission.score), func.sum(Submission.response_time)
    # the name the room may see (consent); grouped by the player's key, so any column of theirs
    query = (select(Submission.participant_id, score, seconds, func.count(),
                    Participant.public_name)
             .join(Participant, Participant.id == Submission.participant_id)
             .where(*_results())
             .group_by(Submission.participant_id, Participant.id)
             .order_by(score.desc(), seconds, Submission.participant_id))
    if limit:
        query = query.limit(limit)
    rows = db.session.execute(query).all()
    names = {pid: name for pid, *_, name in rows}
    # The database sorts so that a limit can apply; the pure function still decides the order
    # returned.
    totals = shadow_standings([ShadowTotal(pid, int(s), float(t), n) for pid, s, t, n, _ in rows])
    return [{"place": place, "user_id": t.participant_id, "name": names[t.participant_id],
             "score": t.score, "response_time_seconds": round(t.response_time, 6),
             "rounds": t.rounds}
            for place, t in enumerate(totals, start=1)]


def players() -> int:
    """How many players have played at least one round in the shadow league."""
    return db.session.scalar(select(func.count(func.distinct(Submission.participant_id)))
                             .where(Submission.shadow.is_(True)))


def submitted(challenge: Challenge) -> int:
    """Shadow-league answers in this round (kept apart from the round's real count)."""
    return db.session.scalar(select(func.count()).where(Submission.challenge_id == challenge.id,
                                                        Submission.shadow.is_(True)))


def totals_of(participant_id: int) -> ShadowTotal | None:
    """One player's shadow-league totals over closed rounds, or None if they have none yet."""
    row = db.session.execute(select(func.coalesce(func.sum(Submission.score), 0),
                                    func.coalesce(func.sum(Submission.response_time), 0.0),
                                    func.count())
                             .where(Submission.participant_id == participant_id,
                                    *_results())).one()
    return ShadowTotal(participant_id, int(row[0]), float(row[1]), row[2]) if row[2] else None


def invited_after(participant: Participant, challenge: Challenge, last: bool | None = None) -> bool:
    """Knocked out in this round, and a later round is still to come in the shadow league (`last`:
    whether this round is the last, when known already)."""
    return (current_app.config["SHADOW_LEAGUE"] and participant.eliminated_in == challenge.number
            and participant.elimination_reason != "disqualified"
            and not (challenge.is_last if last is None else last))
