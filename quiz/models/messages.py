"""Text messages: each one sent at most once, the organizer's wording, scheduled reminders."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db
from ..statuses import MessageStatus, ReminderStatus
from .columns import status_column


class Message(db.Model):
    """An SMS or an email: queued → sending (claimed by one worker) → sent or failed. The outbox
    backends just keep it here."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"))
    challenge_id: Mapped[int | None] = mapped_column(
        ForeignKey("challenge.id", ondelete="SET NULL"))
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminder.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    # "<kind>:<round or reminder>:<participant>": one message per purpose per person, however often
    # sending is retried (NULLs would make a composite unique key let duplicates through).
    key: Mapped[str] = mapped_column(String(80), unique=True)
    # "sms" (to: E.164) or "email" (to: an address; body: the plain text, html beside it)
    channel: Mapped[str] = mapped_column(String(10), default="sms", server_default="sms")
    to: Mapped[str] = mapped_column(String(254))
    body: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str | None] = mapped_column(String(200))
    html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[MessageStatus] = status_column(MessageStatus, MessageStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    # last handed to a send job; reconcile re-hands the forgotten
    enqueued_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (Index("ix_message_challenge_status", "challenge_id", "status"),)


class MessageTemplate(db.Model):
    """The organizer's wording of one kind of SMS in one language (defaults, per language, live in
    quiz/sms_templates.py)."""

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class EmailTemplate(db.Model):
    """The organizer's wording of one kind of email in one language (defaults, per language, live
    in quiz/email_templates.py)."""

    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)


class Reminder(db.Model):
    """An announcement sent to everyone still in the game at a set time, by RQ's scheduler."""

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(320))  # in the event's DEFAULT_LANGUAGE
    # The text in other languages, by code ({"de": "…"}); a language without one gets `text`.
    texts: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    send_at: Mapped[datetime]
    status: Mapped[ReminderStatus] = status_column(ReminderStatus, ReminderStatus.SCHEDULED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def text_in(self, language: str) -> str:
        """What the reminder says to a player of `language`."""
        return (self.texts or {}).get(language) or self.text

    @hybrid_property
    def is_scheduled(self) -> bool:
        return self.status == ReminderStatus.SCHEDULED

    @hybrid_property
    def is_sent(self) -> bool:
        return self.status == ReminderStatus.SENT
