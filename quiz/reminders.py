"""Scheduled announcements ("Round 2 starts at 14:00"), sent by RQ's scheduler, cancellable."""
from datetime import datetime

from .clock import utcnow
from .effects import CancelJob, Job, Task, owe
from .errors import ValidationError
from .extensions import db
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
    owe(Job(Task.SEND_REMINDER, (reminder.id,), at=send_at, job_id=job_id(reminder),
            description=f"reminder {reminder.id}"))
    return reminder


def cancel_reminder(reminder: Reminder) -> None:
    """Stop a scheduled reminder; the job also checks the status, so a race cannot send it."""
    if not reminder.is_scheduled:
        raise ValidationError({"reminder": f"This reminder is already {reminder.status}."},
                              f"This reminder is already {reminder.status}.")
    reminder.status = ReminderStatus.CANCELLED
    owe(CancelJob(job_id(reminder)))
