"""Scheduled announcements ("Round 2 starts at 14:00"), sent by RQ's scheduler, cancellable."""
from datetime import datetime

from rq.exceptions import NoSuchJobError
from rq.job import Job

from .clock import utcnow
from .errors import ValidationError
from .extensions import db, get_queue, get_redis
from .jobs import after_commit
from .models import Reminder, ReminderStatus


def job_id(reminder: Reminder) -> str:
    return f"knockout-reminder-{reminder.id}"


def schedule_reminder(text: str, send_at: datetime) -> Reminder:
    """A reminder to everyone still in the game at `send_at` (naive UTC); the caller commits."""
    text = " ".join(text.split())
    errors = {}
    if not text:
        errors["text"] = "Write what the reminder should say."
    elif len(text) > 300:
        errors["text"] = f"Keep it under 300 characters (it has {len(text)})."
    if send_at <= utcnow():
        errors["send_at"] = "Pick a time in the future."
    if errors:
        raise ValidationError(errors)
    reminder = Reminder(text=text, send_at=send_at)
    db.session.add(reminder)
    db.session.flush()
    after_commit(_enqueue, reminder.id, send_at, job_id(reminder))
    return reminder


def _enqueue(reminder_id: int, send_at: datetime, identifier: str) -> None:
    from datetime import timezone
    get_queue("notify").enqueue_at(send_at.replace(tzinfo=timezone.utc), "quiz.tasks.send_reminder", reminder_id,
                                   job_id=identifier, description=f"reminder {reminder_id}")


def cancel_reminder(reminder: Reminder) -> None:
    """Stop a scheduled reminder; the job also checks the status, so a race cannot send it."""
    if not reminder.is_scheduled:
        raise ValidationError({"reminder": f"This reminder is already {reminder.status}."},
                              f"This reminder is already {reminder.status}.")
    reminder.status = ReminderStatus.CANCELLED
    after_commit(_cancel_job, job_id(reminder))


def _cancel_job(identifier: str) -> None:
    try:
        Job.fetch(identifier, connection=get_redis()).cancel()
    except NoSuchJobError:
        pass
