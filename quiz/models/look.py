"""The event's own look as set in the console: one row, each field empty for "as configured"."""
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class EventLook(db.Model):
    """Name, colours, logo and sponsors set on the console's Look page (id 1, the only row); an
    empty field falls back to the configuration (quiz/branding.py)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    primary: Mapped[str] = mapped_column(String(7), default="")
    accent: Mapped[str] = mapped_column(String(7), default="")
    # Keys in object storage (brand/…, named by their content's hash), or empty.
    logo_key: Mapped[str] = mapped_column(String(200), default="")
    # One sponsor a line: "name" or "name\tlogo key".
    sponsors: Mapped[str] = mapped_column(Text, default="")
    # What phones show as the SMS sender (SNS's SenderID), over SMS_SENDER_ID.
    sms_sender: Mapped[str] = mapped_column(String(11), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
