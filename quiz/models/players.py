"""Players: a participant, and the code on their badge."""
import secrets
from datetime import datetime

from sqlalchemy import String, case, cast, false, literal
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import db
from .columns import PARTICIPANT_FILLFACTOR


class Participant(db.Model):
    """A player; their personal links are their only credential."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    company: Mapped[str] = mapped_column(String(100), default="")
    # round links by SMS, name on the leaderboard (required)
    consent: Mapped[bool] = mapped_column(default=False)
    # A separate, optional box: sponsors may contact them
    # (the sponsor-leads export holds only these).
    sponsor_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    report_code: Mapped[str] = mapped_column(String(32), unique=True)
    # When they followed an email's unsubscribe link: no more emails (SMS are unaffected).
    email_opted_out_at: Mapped[datetime | None]
    # What the badge's QR code holds: only a key for staff at the kiosk (login required),
    # never a credential.
    checkin_code: Mapped[str] = mapped_column(String(16), unique=True,
                                              default=lambda: new_checkin_code())
    checked_in_at: Mapped[datetime | None]
    # The language their pages, SMS and emails speak (quiz/i18n.py); None: the event's default.
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A confirmation SMS (SMS_CONFIRMATION) is owed: set when they join, cleared in the transaction
    # that queues it; reconcile queues what a lost drain job left owed.
    confirmation_owed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Number of the round that knocked this player out; None while in the game. Not indexed: the
    # close writes it for half the players, and without an index PostgreSQL updates those rows in
    # place (HOT).
    eliminated_in: Mapped[int | None]
    elimination_reason: Mapped[str | None] = mapped_column(String(20))
    # When `privacy shred` replaced their personal data: what says a row is shredded (an email
    # that merely starts with "shredded-" says nothing).
    shredded_at: Mapped[datetime | None]

    links: Mapped[list["FormLink"]] = relationship(back_populates="participant",
                                                   lazy="raise_on_sql")

    # Room in each page for a new version of every row the close updates (PostgreSQL; the
    # fillfactors above).
    __table_args__ = ({"postgresql_with": {"fillfactor": PARTICIPANT_FILLFACTOR}},)

    @property
    def in_game(self) -> bool:
        return self.eliminated_in is None

    @hybrid_property
    def public_name(self) -> str:
        """The name the room sees (projector, public leaderboard): theirs only with consent; a
        player who joined without it (before the API required it) is "Player <id>"."""
        return self.name if self.consent else f"Player {self.id}"

    @public_name.inplace.expression
    @classmethod
    def _public_name_expression(cls):
        return case((cls.consent, cls.name), else_=literal("Player ") + cast(cls.id, String))


# Crockford's base32: no I, L, O or U, so a code read off a badge and typed at the desk
# is unambiguous.
CHECKIN_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECKIN_LENGTH = 10  # 50 bits: unique among any number of players, and nothing to gain by guessing


def new_checkin_code() -> str:
    """A fresh check-in code for a badge, e.g. '7KQ2M9XD4T'."""
    return "".join(secrets.choice(CHECKIN_ALPHABET) for _ in range(CHECKIN_LENGTH))
