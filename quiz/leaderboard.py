"""Leaderboards: a round's standing, as the API, the projector and reports show it."""
from sqlalchemy import func, select

from .extensions import db
from .models import RANKING_ORDER, Challenge, Participant, Submission


def leaderboard(challenge: Challenge, limit: int | None = None) -> list[dict]:
    """Everyone who took part in the round, best first, as it stood after that round.

    While the round is open the ranks are provisional. Once it has closed, `eliminated`
    means out by the end of this round (then `rank` is null); no-shows come last. A player who
    gave no consent shows as "Player <id>" (Participant.public_name).
    """
    closed = challenge.is_closed
    query = (select(Participant.id, Participant.public_name.label("name"),
                    Participant.eliminated_in, Submission.score,
                    Submission.response_time, Submission.rank)
             .join(Submission, Submission.participant_id == Participant.id)
             .where(Submission.challenge_id == challenge.id,
                    Submission.shadow.is_(False))  # shadow league: apart
             .order_by(*RANKING_ORDER))
    if limit:
        query = query.limit(limit)
    entries, place = [], 0
    for row in db.session.execute(query):
        out = row.eliminated_in is not None and row.eliminated_in <= challenge.number
        if not out:
            place += 1
        entry = _entry(row.id, row.name, row.score, row.response_time,
                       row.eliminated_in if out else None,
                       (row.rank if closed else place) if not out else None)
        # the round's ranking, out or not
        entry["place"] = row.rank if closed else place if not out else None
        entries.append(entry)
    if closed and (limit is None or len(entries) < limit):
        no_shows = select(Participant.id, Participant.public_name).where(
            Participant.eliminated_in == challenge.number,
            Participant.elimination_reason != "ranked_out",
            ~Participant.id.in_(select(Submission.participant_id)
                                .where(Submission.challenge_id == challenge.id))
        ).order_by(Participant.id)
        if limit:
            no_shows = no_shows.limit(limit - len(entries))
        entries += [_entry(pid, name, None, None, challenge.number, None) | {"place": None}
                    for pid, name in db.session.execute(no_shows)]
    return entries


def round_counts(challenge: Challenge) -> dict:
    """What the public may know of a round that has not closed: how many answered, of how many
    still in the game. No score, rank, time or order: those would tell which answers are right."""
    submitted = db.session.scalar(select(func.count()).where(
        Submission.challenge_id == challenge.id, Submission.shadow.is_(False)))
    players = db.session.scalar(select(func.count()).where(Participant.eliminated_in.is_(None)))
    return {"status": challenge.status, "submitted": submitted, "players": players}


def _entry(user_id, name, score, response_time, eliminated_in, rank) -> dict:
    return {"rank": rank, "user_id": user_id, "name": name, "score": score,
            "response_time_seconds": round(response_time, 6) if response_time is not None else None,
            "eliminated": eliminated_in is not None, "elimination_challenge": eliminated_in}
