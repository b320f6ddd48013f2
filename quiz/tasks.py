"""RQ jobs: thin, take ids, re-fetch, safe to run twice, commit at the end."""
import logging

from flask import current_app
from sqlalchemy import select

from . import notify, rounds
from .clock import utcnow
from .extensions import db
from .jobs import enqueue
from .models import Challenge, Message

log = logging.getLogger(__name__)


def send_round_links(challenge_id: int) -> int:
    """Queue a link SMS for every player still in the round, then fan out batched send jobs."""
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None or challenge.status == "draft":
        return 0
    created = notify.queue_round_links(challenge)
    db.session.commit()
    ids = db.session.scalars(select(Message.id).where(
        Message.challenge_id == challenge_id, Message.kind == "round_link", Message.status == "queued")
        .order_by(Message.id)).all()
    for start in range(0, len(ids), notify.BATCH_SIZE):
        batch = ids[start:start + notify.BATCH_SIZE]
        enqueue("quiz.tasks.send_messages", batch, queue="notify",
                description=f"round {challenge.number}: SMS {start + 1}–{start + len(batch)} of {len(ids)}")
    log.info("round %s: %s link messages queued in %s batches", challenge.number, created,
             -(-len(ids) // notify.BATCH_SIZE))
    return created


def send_messages(message_ids: list[int]) -> tuple[int, int]:
    """Send one batch of queued SMS."""
    sent, failed = notify.send_messages(message_ids)
    log.info("SMS batch: %s sent, %s failed", sent, failed)
    return sent, failed


def close_expired_round(challenge_id: int) -> bool:
    """Close a round whose time limit (plus grace) has passed; a no-op if the organizer already did."""
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None or challenge.status != "open":
        return False
    deadline = challenge.deadline(current_app.config["SUBMIT_GRACE_SECONDS"])
    now = utcnow()
    if deadline is None:
        return False
    if now < deadline:  # the scheduler fired early: try again at the deadline
        enqueue("quiz.tasks.close_expired_round", challenge_id, at=deadline, description=f"close round {challenge.number}")
        return False
    summary = rounds.close_round(challenge.number, now)
    db.session.commit()
    log.info("round %s closed by its time limit: %s", challenge.number, summary)
    return True
