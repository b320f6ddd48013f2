"""The console's live numbers: the overview at the top, the rounds table, the audit log."""
from flask import current_app
from sqlalchemy import func, select

from . import delivery, photos, rounds, shadow
from .checkin import unchecked_finalists
from .clock import utcnow
from .extensions import db
from .models import AuditEntry, Challenge, Participant, Submission
from .delivery import sms_progress


def overview() -> dict:
    """The live numbers at the top of the console."""
    current = rounds.current_challenge()
    # One pass over the players for both counts.
    players, in_game = db.session.execute(select(func.count(), func.count().filter(
        Participant.eliminated_in.is_(None))).select_from(Participant)).one()
    return {
        "players": players,
        "in_game": in_game,
        "current": current,
        "answered": db.session.scalar(select(func.count()).where(
            Submission.challenge_id == current.id, Submission.shadow.is_(False)))
        if current else 0,
        "winner": rounds.winner(),
        "shadow": shadow.players() if current_app.config["SHADOW_LEAGUE"] else None,
    }


def rounds_and_audit() -> dict:
    """What the rounds table and the audit log show."""
    challenges = db.session.scalars(select(Challenge).order_by(Challenge.number)).all()
    in_game = db.session.scalar(select(func.count()).where(Participant.eliminated_in.is_(None)))
    return {
        "challenges": challenges,
        "submitted": dict(db.session.execute(select(Submission.challenge_id, func.count())
                                             .where(Submission.shadow.is_(False))
                                             .group_by(Submission.challenge_id)).all()),
        "unchecked": unchecked_finalists(),
        "progress": {c.id: sms_progress(c) for c in challenges},
        "audit": db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())
                                    .limit(20)).all(),
        "counts": {"in_game": in_game},
        "send_warning": delivery.send_time_warning(in_game),
        "unreviewed": photos.unreviewed(),
        "now": utcnow(),
    }
