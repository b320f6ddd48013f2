"""The states a row moves through, as enums (str: JSON, CSV and templates see the same words).

Stored as their lowercase values (models.status_column); the models add state properties
(`Challenge.is_open`, …) usable in Python and in SQL.
"""
from enum import StrEnum


class RoundStatus(StrEnum):
    """A round's life: draft → open → closed."""

    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class PhotoStatus(StrEnum):
    """A photo's review: pending until staff accept or reject it."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class MessageStatus(StrEnum):
    """An SMS: queued → sending (claimed by one worker) → sent or failed."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ReminderStatus(StrEnum):
    """A reminder: scheduled, then sent (or cancelled before)."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    CANCELLED = "cancelled"


class HelpStatus(StrEnum):
    """A help request: open until the desk answers it."""

    OPEN = "open"
    RESOLVED = "resolved"
