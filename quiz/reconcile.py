"""Finding lost work again: what the database says is owed, handed to the workers once more.

A nudge to the workers (an RQ job) can be lost: Redis down at the moment of a commit, a worker
killed mid-job. The database keeps what is owed, so this pass, run every RECONCILE_SECONDS by a
worker (quiz/worker.py) and by `flask --app quiz sms reconcile`, finds it: open rounds get their
link messages, closed rounds their result messages, due reminders go out, players who joined get
the confirmation they are owed, rounds past their time
close, messages claimed by a dead worker or never handed to a job are handed over again. Safe to
run any time, during the event too.
"""
from datetime import timedelta

from sqlalchemy import select, update

from . import delivery, emails, notify, rounds
from .clock import utcnow
from .extensions import db
from .models import Challenge, Message, MessageStatus, Participant, Reminder, ReminderStatus


# Results and reminders are scheduled jobs. A worker killed while it held RQ's scheduler lock keeps
# every scheduled job waiting until the lock expires and another worker's maintenance takes it (a
# minute or more), and a job lost with Redis never runs: past their time by this much, reconcile
# queues them itself (both are idempotent: one message per purpose per person).
SCHEDULED_GRACE_SECONDS = 10
# A confirmation SMS is queued by a drain job within seconds of joining (a rush drains 100 at a
# time); still owed this long after, its job was lost.
CONFIRMATION_GRACE_SECONDS = 60


def reconcile_messages(stale_after: float = 60, forgotten_after: float = 600) -> dict:
    """Hand lost message work over again (one commit), then close the rounds past their time.

    Messages claimed by a worker that died go back to the queue: one that was mid-send may go out
    twice (a rare duplicate beats a player without their link).
    """
    for challenge in db.session.scalars(select(Challenge).where(Challenge.is_open)).all():
        notify.queue_round_links(challenge)
    owed = owed_results(timedelta(seconds=SCHEDULED_GRACE_SECONDS))
    for challenge in owed:
        champion = rounds.winner() if challenge.is_last else None
        notify.send_results(challenge, champion.id if champion else None)
        emails.send_final_results(challenge)
    reminders = due_reminders(timedelta(seconds=SCHEDULED_GRACE_SECONDS))
    for reminder in reminders:
        notify.send_reminder(reminder)
    confirmations = owed_confirmations(timedelta(seconds=CONFIRMATION_GRACE_SECONDS))
    for start in range(0, len(confirmations), 1000):
        notify.send_confirmations(confirmations[start:start + 1000])
    stale = delivery.stale_sending(timedelta(seconds=stale_after))
    if stale:
        db.session.execute(update(Message)
                           .where(Message.id.in_(stale), Message.status == MessageStatus.SENDING)
                           .values(status=MessageStatus.QUEUED, claimed_by=None, enqueued_at=None)
                           .execution_options(synchronize_session=False))
    fallbacks = emails.missing_fallbacks()  # a worker died between a failed SMS and its email
    db.session.flush()
    forgotten = db.session.execute(select(Message.id, Message.channel).where(
        Message.status == MessageStatus.QUEUED,
        db.or_(Message.enqueued_at.is_(None),
               Message.enqueued_at < utcnow() - timedelta(seconds=forgotten_after)))
        .order_by(Message.id)).all()
    # each channel to its own queue (emails after the links)
    notify.hand_over([i for i, channel in forgotten if channel != "email"], "reconcile")
    emails.hand_over([i for i, channel in forgotten if channel == "email"], "reconcile")
    db.session.commit()
    return {"reclaimed": len(stale), "requeued": len(forgotten), "closed": close_expired_rounds(),
            "results": len(owed), "reminders": len(reminders),
            "confirmations": len(confirmations), "email_fallbacks": fallbacks}


def owed_results(older_than: timedelta) -> list[Challenge]:
    """Closed rounds whose result messages were owed longer ago than their job takes to run."""
    return db.session.scalars(select(Challenge).where(
        Challenge.is_closed, Challenge.results_due_at < utcnow() - older_than)).all()


def owed_confirmations(older_than: timedelta) -> list[int]:
    """Players who joined longer ago than their drain job takes and are still owed a confirmation
    SMS: the job was lost (Redis down as they joined, a worker killed)."""
    return db.session.scalars(select(Participant.id).where(
        Participant.confirmation_owed, Participant.created_at < utcnow() - older_than)
        .order_by(Participant.id)).all()


def due_reminders(late_by: timedelta) -> list[Reminder]:
    """Reminders still scheduled well after their time: their scheduled job was lost."""
    return db.session.scalars(select(Reminder).where(
        Reminder.status == ReminderStatus.SCHEDULED, Reminder.send_at < utcnow() - late_by)
        .order_by(Reminder.id)).all()


def close_expired_rounds() -> int:
    """Close every open round whose players' time is all used up, or past its latest close (a lost
    close job), each in its own transaction."""
    closed = 0
    ids = db.session.scalars(select(Challenge.id).where(Challenge.is_open)).all()
    for challenge_id in ids:
        closed += rounds.close_if_due(challenge_id, utcnow(), recheck=False) is not None
        db.session.commit()
    return closed
