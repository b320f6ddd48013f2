"""The console's live numbers: the overview at the top, the rounds table, the audit log."""
from flask import current_app
from sqlalchemy import and_, func, select

from . import clocks, delivery, photos, reveal, rounds, shadow
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
    in_game = in_game_count()
    return {
        "challenges": challenges,
        "submitted": dict(db.session.execute(select(Submission.challenge_id, func.count())
                                             .where(Submission.shadow.is_(False))
                                             .group_by(Submission.challenge_id)).all()),
        "unchecked": unchecked_finalists(),
        "progress": {c.id: sms_progress(c) for c in challenges},
        "email_progress": {c.id: delivery.email_progress(c) for c in challenges},
        "audit": db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())
                                    .limit(20)).all(),
        "counts": {"in_game": in_game},
        "send_warning": delivery.send_time_warning(in_game),
        "links_take": links_take(in_game),
        "plans": {c.id: clocks.shown_plan(c, utcnow()) for c in challenges if c.is_open},
        "unreviewed": photos.unreviewed(),
        "waiting": {c.id: not_started(c) for c in challenges if c.is_open},
        "reopenable": reopenable(challenges, utcnow()),
        "reveals": reveal.console_states(challenges, utcnow()),
        "now": utcnow(),
    }


def in_game_count() -> int:
    """Players still in the game: Start round texts each of them their link."""
    return db.session.scalar(select(func.count()).where(Participant.eliminated_in.is_(None)))


def not_started(challenge: Challenge) -> tuple[int, int]:
    """For End round's confirmation: of the players invited to the round (still in, with its
    link), how many have not pressed Start, and how many of those have not had their link sent."""
    # by the message's unique key: one index lookup per link, not a scan of the round's messages
    sent = select(Message.id).where(Message.key == clocks.link_message_key(challenge),
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


def links_take(messages: int) -> str | None:
    """Before Start round: how long the links take at SMS_RATE_PER_SECOND (None: no limit set).
    Each player's time runs from their own Start, so this adds to how long the round stays open,
    not to anyone's time."""
    rate = float(current_app.config["SMS_RATE_PER_SECOND"])
    if rate <= 0:
        return None
    seconds = clocks.send_seconds(messages)
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    return f"links to {messages:,} players take ≈ {took} at {rate:g}/s"
