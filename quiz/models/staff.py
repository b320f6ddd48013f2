"""The staff's side: organizer accounts, the audit log, help requests."""
import secrets
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import utcnow
from ..extensions import db
from ..statuses import HelpStatus, Role
from .columns import status_column
from .players import Participant


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class AdminUser(UserMixin, db.Model):
    """A staff account that can log in to the console, with its role (accounts from before roles
    are hosts)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    # Part of the id Flask-Login keeps in the session and the remember cookie (get_id): a new one
    # (logout, a new password) makes every cookie issued before it worthless.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)

    def get_id(self) -> str:
        """Flask-Login's alternative id: the account and its current session token."""
        return f"{self.id}:{self.session_token}"

    def rotate_session_token(self) -> None:
        """Log this organizer out everywhere: their session and remember cookies stop working."""
        self.session_token = new_session_token()

    role: Mapped[Role] = status_column(Role, Role.HOST, server_default=Role.HOST.value)

    def can(self, needed: Role) -> bool:
        """This account's role may do what `needed` may."""
        return Role(self.role).allows(needed)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(
            password, method=current_app.config["PASSWORD_HASH_METHOD"])
        self.rotate_session_token()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class AuditEntry(db.Model):
    """Who did what in the console or the API, shown in the console."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text, default="")
    # The player an entry is about (its detail names them): `privacy shred` finds their name here.
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"))


# Labels in the page's language (the participant's form; the console reads them in English).
HELP_KINDS = {"no_sms": _l("I didn't get my SMS"),
              "submit_failed": _l("My answers didn't go through"), "other": _l("Something else")}




class HelpRequest(db.Model):
    """A participant asking the help desk; staff answer with a reply the participant sees on their
    page."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"),
                                                index=True)
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[HelpStatus] = status_column(HelpStatus, HelpStatus.OPEN, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reply: Mapped[str | None] = mapped_column(String(500))
    resolved_by: Mapped[str | None] = mapped_column(String(80))
    resolved_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship(lazy="joined")

    @hybrid_property
    def is_open(self) -> bool:
        return self.status == HelpStatus.OPEN

    @property
    def kind_label(self) -> str:
        return HELP_KINDS.get(self.kind, self.kind)
