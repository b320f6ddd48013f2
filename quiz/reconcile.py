"""Finding lost work again: what the database says is owed, handed to the workers once more.

A nudge to the workers (an RQ job) can be lost: Redis down at the moment of a commit, a worker
killed mid-job. The database keeps what is owed, so this pass, run every RECONCILE_SECONDS by a
worker (quiz/worker.py) and by `flask --app quiz sms reconcile`, finds it: open rounds get their
link messages, closed rounds their result messages, due reminders go out, rounds past their time
close, messages claimed by a dead worker or never handed to a job are handed over again. Safe to
run any time, during the event too.
"""
from datetime import timedelta

from sqlalchemy import select, update

from . import delivery, notify, rounds
from .clock import utcnow
from .extensions import db
from .models import Challenge, Message, MessageStatus, Reminder, ReminderStatus


# Results and reminders are scheduled jobs. A worker killed while it held RQ's scheduler lock keeps
# every scheduled job waiting until the lock expires and another worker's maintenance takes it (a
# minute or more), and a job lost with Redis never runs: past their time by this much, reconcile
# queues them itself (both are idempotent: one message per purpose per person).
SCHEDULED_GRACE_SECONDS = 10


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
    reminders = due_reminders(timedelta(seconds=SCHEDULED_GRACE_SECONDS))
    for reminder in reminders:
        notify.send_reminder(reminder)
    stale = delivery.stale_sending(timedelta(seconds=stale_after))
    if stale:
        db.session.execute(update(Message)
                           .where(Message.id.in_(stale), Message.status == MessageStatus.SENDING)
                           .values(status=MessageStatus.QUEUED, claimed_by=None, enqueued_at=None)
                           .execution_options(synchronize_session=False))
    db.session.flush()
    forgotten = db.session.scalars(select(Message.id).where(
        Message.status == MessageStatus.QUEUED,
        db.or_(Message.enqueued_at.is_(None),
               Message.enqueued_at < utcnow() - timedelta(seconds=forgotten_after)))
        .order_by(Message.id)).all()
    notify.hand_over(forgotten, "reconcile")
    db.session.commit()
    return {"reclaimed": len(stale), "requeued": len(forgotten), "closed": close_expired_rounds(),
            "results": len(owed), "reminders": len(reminders)}


def owed_results(older_than: timedelta) -> list[Challenge]:
    """Closed rounds whose result messages were owed longer ago than their job takes to run."""
    return db.session.scalars(select(Challenge).where(
        Challenge.is_closed, Challenge.results_due_at < utcnow() - older_than)).all()


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
