"""The console's live numbers: the overview at the top, the rounds table, the audit log."""
from flask import current_app
from sqlalchemy import and_, func, select

from . import delivery, photos, reveal, rounds, shadow
from .checkin import unchecked_finalists
from .clock import utcnow
from .extensions import db
from .models import AuditEntry, Challenge, FormLink, Message, MessageStatus, Participant, Submission
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
        "waiting": {c.id: not_started(c) for c in challenges if c.is_open},
        "reopenable": reopenable(challenges, utcnow()),
        "reveals": reveal.console_states(challenges, utcnow()),
        "now": utcnow(),
    }


def not_started(challenge: Challenge) -> tuple[int, int]:
    """For End round's confirmation: of the players invited to the round (still in, with its
    link), how many have not pressed Start, and how many of those have not had their link sent."""
    sent = select(Message.id).where(Message.participant_id == FormLink.participant_id,
                                    Message.challenge_id == challenge.id,
                                    Message.kind == "round_link",
                                    Message.status == MessageStatus.SENT).exists()
    query = (select(func.count(), func.count().filter(~sent)).select_from(FormLink)
             .join(Participant, and_(Participant.id == FormLink.participant_id,
                                     Participant.eliminated_in.is_(None)))
             .where(FormLink.challenge_id == challenge.id, FormLink.started_at.is_(None)))
    if current_app.config["CHECKIN_REQUIRED"] and challenge.number == 1:
        query = query.where(Participant.checked_in_at.is_not(None))  # the others get no link
    unstarted, unsent = db.session.execute(query).one()
    return unstarted, unsent


def reopenable(challenges: list[Challenge], now) -> set[int]:
    """The closed rounds the console offers to reopen: those not final yet (within
    RESULTS_DELAY_SECONDS of their close, results not sent, the next round not started:
    quiz/undo.is_final, whose finality also lets the reveal show)."""
    return {c.id for c in challenges if c.is_closed} - reveal.revealable_ids(now)
