"""The states a row moves through, and the staff's roles, as enums (str: JSON, CSV and templates
see the same words).

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


class Role(StrEnum):
    """What a staff account may do in the console; each role can do everything the one before can.

    viewer: read every page; desk: also check-in, the help desk, resend a player's link, correct a
    participant; host: everything, including accounts.
    """

    VIEWER = "viewer"
    DESK = "desk"
    HOST = "host"

    def allows(self, needed: "Role") -> bool:
        """This role may do what `needed` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)

    @property
    def summary(self) -> str:
        """What the role is for, in a sentence (the console's account page and its 403 page)."""
        return ROLE_SUMMARIES[self]


ROLE_SUMMARIES = {
    Role.VIEWER: "reads every page of the console, changes nothing",
    Role.DESK: "check-in, the help desk, resending a player's link, correcting a participant",
    Role.HOST: "everything: rounds, questions, messages, photos, accounts",
}
