"""RQ jobs: thin, take ids, re-fetch, safe to run twice, commit at the end."""
import logging
from datetime import timedelta

from flask import current_app
from rq import get_current_job
from sqlalchemy import select

from . import notify, rounds, stored_forms, work
from .clock import utcnow
from .extensions import db
from .jobs import after_commit, enqueue
from .models import Challenge, FormLink, Message, Participant, Reminder, Submission

log = logging.getLogger(__name__)

# Transient SMS failures wait this long before the next try (seconds, by attempt).
RETRY_BACKOFF = (2, 10, 30, 60)


def batches(ids: list[int]):
    for start in range(0, len(ids), notify.BATCH_SIZE):
        yield start, ids[start:start + notify.BATCH_SIZE]


def enqueue_batches(ids: list[int], label: str) -> None:
    """Enqueue send jobs of BATCH_SIZE messages each (Redis only: fine in an after-commit hook)."""
    for start, batch in batches(ids):
        enqueue("quiz.tasks.send_messages", batch, queue="notify",
                description=f"{label}: SMS {start + 1}–{start + len(batch)} of {len(ids)}")


def mark_enqueued(ids: list[int]) -> None:
    """Note when messages were handed to a job (reconcile hands over again what is forgotten)."""
    for _, batch in batches(ids):
        db.session.execute(db.update(Message).where(Message.id.in_(batch)).values(enqueued_at=utcnow()))


def fan_out(ids: list[int], label: str) -> int:
    """From a job: enqueue the send jobs now, and record it."""
    enqueue_batches(ids, label)
    mark_enqueued(ids)
    db.session.commit()
    return -(-len(ids) // notify.BATCH_SIZE)


def fan_out_after_commit(ids: list[int], label: str) -> None:
    """From a request: record it in this transaction; enqueue once it has committed."""
    mark_enqueued(ids)
    after_commit(enqueue_batches, ids, label)


def queued_ids(**where) -> list[int]:
    query = select(Message.id).where(Message.status == "queued").order_by(Message.id)
    for column, value in where.items():
        query = query.where(getattr(Message, column) == value)
    return db.session.scalars(query).all()


def send_round_links(challenge_id: int) -> int:
    """Queue a link SMS for every player still in the round, then fan out batched send jobs."""
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None or challenge.status == "draft":
        return 0
    created = notify.queue_round_links(challenge)
    db.session.commit()
    batches = fan_out(queued_ids(challenge_id=challenge_id, kind="round_link"), f"round {challenge.number} links")
    log.info("round %s: %s link messages queued in %s batches", challenge.number, created, batches)
    return created


def send_results(challenge_id: int, winner_id: int | None) -> int:
    """After a round closed: 'through' / 'out' (and 'winner') messages."""
    challenge = db.session.get(Challenge, challenge_id)
    created = notify.queue_results(challenge, winner_id)
    db.session.commit()
    ids = db.session.scalars(select(Message.id).where(
        Message.challenge_id == challenge_id, Message.status == "queued",
        Message.kind.in_(("result_through", "result_out", "result_out_shadow", "winner", "final_result")))
        .order_by(Message.id)).all()
    fan_out(ids, f"round {challenge.number} results")
    log.info("round %s: %s result messages queued", challenge.number, created)
    return created


def send_messages(message_ids: list[int]) -> tuple[int, int]:
    """Send one batch of queued SMS; transient failures come back later, with backoff."""
    job = get_current_job()
    sent, failed, retry = notify.send_messages(message_ids, worker=job.worker_name if job and job.worker_name else "inline")
    if retry:
        attempts = max(db.session.scalars(select(Message.attempts).where(Message.id.in_(retry))).all())
        delay = RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF)) - 1]
        enqueue("quiz.tasks.send_messages", retry, queue="notify", at=utcnow() + timedelta(seconds=delay),
                description=f"SMS retry of {len(retry)} (attempt {attempts + 1})")
    log.info("SMS batch: %s sent, %s failed, %s to retry", sent, failed, len(retry))
    return sent, failed


def send_reminder(reminder_id: int) -> int:
    """At its time: the reminder to everyone still in the game (unless cancelled)."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or reminder.status != "scheduled":
        return 0
    created = notify.queue_reminder(reminder)
    reminder.status = "sent"
    db.session.commit()
    fan_out(queued_ids(reminder_id=reminder_id), f"reminder {reminder_id}")
    return created


def reconcile_messages(stale_after: float = 60, forgotten_after: float = 600) -> dict:
    """Find lost work again (a Redis outage, a dead worker): safe to run any time, during the event too.

    Open rounds get their link messages (idempotent), rounds past their time limit close,
    messages claimed by a worker that died go back to the queue (one that was mid-send may go
    out twice: a rare duplicate beats a player without their link), and queued messages that no
    job has been given for a while are handed to the workers again.
    """
    closed = 0
    for challenge in db.session.scalars(select(Challenge).where(Challenge.status == "open")).all():
        notify.queue_round_links(challenge)
        db.session.commit()
        closed += close_expired_round(challenge.id)
    stale = notify.stale_sending(timedelta(seconds=stale_after))
    if stale:
        db.session.execute(db.update(Message).where(Message.id.in_(stale), Message.status == "sending")
                           .values(status="queued", claimed_by=None, enqueued_at=None))
        db.session.commit()
    forgotten = db.session.scalars(select(Message.id).where(
        Message.status == "queued", db.or_(Message.enqueued_at.is_(None),
                                           Message.enqueued_at < utcnow() - timedelta(seconds=forgotten_after)))
        .order_by(Message.id)).all()
    fan_out(forgotten, "reconcile")
    return {"reclaimed": len(stale), "requeued": len(forgotten), "closed": closed}


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


def drain_forms(kind: str) -> int:
    """Do what requests left pending, in batches: store the forms of 'new' (registrations) or move those of
    'answered:<round id>' (submissions); text the link of 'late:<round id>' (joined while it was open)."""
    if kind == "new":
        done = work.drain(kind, lambda ids: stored_forms.write_forms(stored_forms.form_rows(participant_ids=ids)))
    elif kind.startswith("late:"):
        challenge_id = int(kind.split(":", 1)[1])
        done = work.drain(kind, lambda ids: send_round_links(challenge_id))  # everyone in without one gets theirs
    else:
        challenge_id = int(kind.split(":", 1)[1])
        done = work.drain(kind, lambda ids: stored_forms.move_forms(stored_forms.form_rows(ids, [challenge_id])))
    log.info("forms %s: %s participant(s) stored", kind, done)
    return done


def file_unanswered_forms(challenge_id: int) -> int:
    """After a round closed: hand out batched jobs that move every form not answered to unanswered/."""
    number = db.session.scalar(select(Challenge.number).where(Challenge.id == challenge_id))
    ids = db.session.scalars(select(FormLink.participant_id).where(
        FormLink.challenge_id == challenge_id,
        ~select(Submission.id).where(Submission.challenge_id == challenge_id,
                                     Submission.participant_id == FormLink.participant_id).exists())
        .order_by(FormLink.participant_id)).all()
    for start in range(0, len(ids), stored_forms.BATCH_SIZE):
        batch = ids[start:start + stored_forms.BATCH_SIZE]
        enqueue("quiz.tasks.settle_forms", challenge_id, batch, queue="forms",
                description=f"round {number}: forms {start + 1}–{start + len(batch)} of {len(ids)} to unanswered/")
    return len(ids)


def settle_forms(challenge_id: int, participant_ids: list[int]) -> dict:
    """Move these participants' forms of a round to where the database says they belong."""
    return dict(stored_forms.move_forms(stored_forms.form_rows(participant_ids, [challenge_id])))


def regenerate_forms(participant_ids: list[int] | None = None, challenge_ids: list[int] | None = None) -> int:
    """Render forms afresh (new questions, a fixed typo, shredded names) into their places, in batches."""
    ids = participant_ids if participant_ids is not None else \
        db.session.scalars(select(Participant.id).order_by(Participant.id)).all()
    done = 0
    for start in range(0, len(ids), stored_forms.BATCH_SIZE):  # loaded a batch at a time, never all at once
        done += stored_forms.write_forms(stored_forms.form_rows(ids[start:start + stored_forms.BATCH_SIZE], challenge_ids))
        db.session.expunge_all()
    return done


def reconcile_forms(challenge_ids: list[int] | None = None) -> dict:
    """Compare storage with the database and repair every difference."""
    return stored_forms.reconcile(challenge_ids)
