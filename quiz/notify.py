"""SMS: what the messages say, and the backends that send them."""
import logging

from flask import current_app
from sqlalchemy import and_, exists, insert, literal, select, update

from .clock import utcnow
from .extensions import db
from .models import Challenge, FormLink, Message, Participant

log = logging.getLogger(__name__)

BATCH_SIZE = 100


class OutboxBackend:
    """The embedded default: the message stays in the database (the console lists it) and in the log."""

    name = "outbox"

    def send(self, to: str, body: str) -> None:
        log.info("SMS to %s: %s", to, body)


BACKENDS = {OutboxBackend.name: OutboxBackend}


def backend():
    """The configured SMS backend (SMS_BACKEND)."""
    name = current_app.config["SMS_BACKEND"]
    if name not in BACKENDS:
        raise RuntimeError(f"SMS_BACKEND={name!r} is not one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]()


def round_link_prefix(challenge: Challenge) -> str:
    """The text of a round-link SMS, up to the participant's code."""
    event = current_app.config["EVENT_NAME"]
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{event}: round {challenge.number} \"{challenge.title}\" is open. Your personal link: {base}/f/"


def queue_round_links(challenge: Challenge) -> int:
    """One queued message per player still in the game (one statement; safe to repeat)."""
    already = exists().where(Message.kind == "round_link", Message.challenge_id == challenge.id,
                             Message.participant_id == Participant.id)
    rows = (select(Participant.id, literal(challenge.id), literal("round_link"), Participant.phone,
                   literal(round_link_prefix(challenge)) + FormLink.code, literal("queued"), literal(utcnow()))
            .join(FormLink, and_(FormLink.participant_id == Participant.id, FormLink.challenge_id == challenge.id))
            .where(Participant.eliminated_in.is_(None), ~already))
    result = db.session.execute(insert(Message).from_select(
        ["participant_id", "challenge_id", "kind", "to", "body", "status", "created_at"], rows))
    return result.rowcount


def send_messages(message_ids: list[int]) -> tuple[int, int]:
    """Send queued messages, each at most once (claimed in the database first); returns (sent, failed)."""
    sender, sent, failed = backend(), 0, 0
    for message_id in message_ids:
        claimed = db.session.execute(update(Message).where(Message.id == message_id, Message.status == "queued")
                                     .values(status="sending")).rowcount
        db.session.commit()
        if not claimed:
            continue
        message = db.session.get(Message, message_id)
        try:
            sender.send(message.to, message.body)
        except Exception as exc:  # a provider's refusal is recorded with its reason
            message.status, message.error = "failed", str(exc)[:500]
            failed += 1
        else:
            message.status, message.sent_at = "sent", utcnow()
            sent += 1
        db.session.commit()
    return sent, failed


def sms_progress(challenge: Challenge) -> dict:
    """Where sending the round's links stands: status, total, sent, failed, progress_percent."""
    counts = dict(db.session.execute(
        select(Message.status, db.func.count()).where(Message.challenge_id == challenge.id,
                                                      Message.kind == "round_link")
        .group_by(Message.status)).all())
    total = sum(counts.values())
    sent, failed = counts.get("sent", 0), counts.get("failed", 0)
    if challenge.status == "draft":
        status = "not_started"
    elif total == 0:
        status = "preparing"
    else:
        status = "completed" if sent + failed == total else "sending"
    percent = round(100 * (sent + failed) / total, 1) if total else (100.0 if status == "completed" else 0.0)
    return {"status": status, "total": total, "sent": sent, "failed": failed, "progress_percent": percent}
