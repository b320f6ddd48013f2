"""Scheduled announcements ("Round 2 starts at 14:00"), sent by RQ's scheduler, cancellable."""
from datetime import datetime

from .clock import utcnow
from .effects import CancelJob, Job, Task, owe
from .errors import ValidationError
from .extensions import db
from .i18n import SUPPORTED, default, enabled
from .models import Reminder, ReminderStatus

TEXT_MAX = 300


def job_id(reminder: Reminder) -> str:
    return f"knockout-reminder-{reminder.id}"


def schedule_reminder(text: str, send_at: datetime, texts: dict | None = None) -> Reminder:
    """A reminder to everyone still in the game at `send_at` (naive UTC): `text` in the event's
    default language, `texts` in others by code (optional: a language without one reads `text`).
    The caller commits."""
    text = " ".join(text.split())
    errors = {}
    if not text:
        errors["text"] = "Write what the reminder should say."
    elif len(text) > TEXT_MAX:
        errors["text"] = f"Keep it under {TEXT_MAX} characters (it has {len(text)})."
    translated = {}
    for code, value in (texts or {}).items():
        value = " ".join(str(value or "").split())
        if code not in enabled() or code == default():
            errors[f"text_{code}"] = (f"'{code}' is not one of the event's other languages ("
                                      + ", ".join(c for c in enabled() if c != default()) + ").")
        elif len(value) > TEXT_MAX:
            errors[f"text_{code}"] = (f"Keep the {SUPPORTED[code]} text under {TEXT_MAX} "
                                      f"characters (it has {len(value)}).")
        elif value:
            translated[code] = value
    if send_at <= utcnow():
        errors["send_at"] = "Pick a time in the future."
    if errors:
        raise ValidationError(errors)
    reminder = Reminder(text=text, texts=translated, send_at=send_at)
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
