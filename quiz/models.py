"""Every table. The database is the source of truth; constraints guard the rules."""
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import (JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint, exists,
                        false, select, text)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .clock import utcnow
from .statuses import HelpStatus, MessageStatus, PhotoStatus, ReminderStatus, RoundStatus
from .errors import QuizError
from .extensions import db
from .question_types import QUESTION_TYPES

SCORING_MODES = ("accuracy", "speed")
ELIMINATION_REASONS = ("unanswered", "ranked_out", "disqualified")
# Free space PostgreSQL leaves in each page of the two tables the close updates row by row, so the new row
# versions fit beside the old (HOT: no index entries written). Every submission of a round gets its rank (half
# a page free); half the players still in go out in a round. Measured: bench/end_of_round.py.
SUBMISSION_FILLFACTOR = 50
PARTICIPANT_FILLFACTOR = 60


def status_column(statuses: type[StrEnum], default: StrEnum, **options):
    """A status column: its lowercase value in a VARCHAR(10), as ever (no native enum, no CHECK: no
    migration), read back as the enum member (a str, so JSON and templates see the same words)."""
    stored = Enum(statuses, native_enum=False, length=10, values_callable=_values)
    return mapped_column(stored, default=default, **options)


def _values(statuses: type[StrEnum]) -> list[str]:
    return [member.value for member in statuses]


class Participant(db.Model):
    """A player; their personal links are their only credential."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    company: Mapped[str] = mapped_column(String(100), default="")
    consent: Mapped[bool] = mapped_column(default=False)  # round links by SMS, name on the leaderboard (required)
    # A separate, optional box: sponsors may contact them (the sponsor-leads export holds only these).
    sponsor_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    report_code: Mapped[str] = mapped_column(String(32), unique=True)
    # What the badge's QR code holds: only a key for staff at the kiosk (login required), never a credential.
    checkin_code: Mapped[str] = mapped_column(String(16), unique=True, default=lambda: new_checkin_code())
    checked_in_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Number of the round that knocked this player out; None while in the game. Not indexed: the close
    # writes it for half the players, and without an index PostgreSQL updates those rows in place (HOT).
    eliminated_in: Mapped[int | None]
    elimination_reason: Mapped[str | None] = mapped_column(String(20))

    links: Mapped[list["FormLink"]] = relationship(back_populates="participant", lazy="raise_on_sql")

    # Room in each page for a new version of every row the close updates (PostgreSQL; the fillfactors above).
    __table_args__ = ({"postgresql_with": {"fillfactor": PARTICIPANT_FILLFACTOR}},)

    @property
    def in_game(self) -> bool:
        return self.eliminated_in is None


# Crockford's base32: no I, L, O or U, so a code read off a badge and typed at the desk is unambiguous.
CHECKIN_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECKIN_LENGTH = 10  # 50 bits: unique among any number of players, and nothing to gain by guessing


def new_checkin_code() -> str:
    """A fresh check-in code for a badge, e.g. '7KQ2M9XD4T'."""
    return "".join(secrets.choice(CHECKIN_ALPHABET) for _ in range(CHECKIN_LENGTH))




class Challenge(db.Model):
    """A round: draft → open → closed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(200))
    time_limit_seconds: Mapped[int | None]
    keep_fraction: Mapped[float] = mapped_column(default=0.5)
    keep_count: Mapped[int | None]
    scoring: Mapped[str] = mapped_column(String(20), default="accuracy")
    status: Mapped[RoundStatus] = status_column(RoundStatus, RoundStatus.DRAFT)
    opened_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Set by the close, with the ranks (readers need no index on rank): how many submitters were ranked,
    # and the score and time of the last place that stayed (the cut line; None when nobody was ranked).
    ranked_count: Mapped[int | None]
    cut_score: Mapped[int | None]
    cut_response_time: Mapped[float | None]
    # Set by the close when results are to be texted, cleared once their messages are queued: reconcile
    # queues them if the nudge to the workers was lost (Redis down at the close).
    results_due_at: Mapped[datetime | None]

    questions: Mapped[list["Question"]] = relationship(
        back_populates="challenge", order_by="Question.position", cascade="all, delete-orphan")

    @hybrid_property
    def is_draft(self) -> bool:
        return self.status == RoundStatus.DRAFT

    @hybrid_property
    def is_open(self) -> bool:
        return self.status == RoundStatus.OPEN

    @hybrid_property
    def is_closed(self) -> bool:
        return self.status == RoundStatus.CLOSED

    @hybrid_property
    def is_last(self) -> bool:
        """No round comes after this one (on an instance: one query)."""
        return not db.session.scalar(select(_round_after(self.number)))

    @is_last.inplace.expression
    @classmethod
    def _is_last_expression(cls):
        return ~_round_after(cls.number)

    def open(self, now: datetime) -> None:
        """Open the round; its clock (if it has a time limit) starts now."""
        if not self.is_draft:
            raise QuizError(f"Round {self.number} is already {self.status}.", code=f"already_{self.status}")
        self.status = RoundStatus.OPEN
        self.opened_at = now
        if self.time_limit_seconds:
            self.closes_at = now + timedelta(seconds=self.time_limit_seconds)

    def close(self, now: datetime) -> None:
        """Stop the round; elimination follows in the same transaction (rounds.close_round)."""
        if not self.is_open:
            raise QuizError(f"Round {self.number} is {self.status}, not open.", code="not_open")
        self.status = RoundStatus.CLOSED
        self.closed_at = now

    def deadline(self, grace: float) -> datetime | None:
        """The last moment a submission may arrive, or None while nothing limits it."""
        ends = [t for t in (self.closes_at, self.closed_at) if t is not None]
        return min(ends) + timedelta(seconds=grace) if ends else None


def _round_after(number):
    """EXISTS a round numbered above `number` (a value, or a column of the enclosing query)."""
    later = aliased(Challenge)
    return exists().where(later.number > number)


class ByKind:
    """What a question's kind decides, for the ORM row and the submit's plain row (answers.Asked) alike."""

    __slots__ = ()

    @property
    def multiple(self) -> bool:
        return len(self.answer) > 1

    @property
    def type(self):
        """This question's behaviour (parsing, rendering, validating, scoring): a QuestionType."""
        return QUESTION_TYPES[self.kind]


class Question(ByKind, db.Model):
    """A question of one of the kinds in question_types: multiple choice (`answer` lists the correct choices) or photo."""

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenge.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20), default="choice", server_default="choice")
    text: Mapped[str] = mapped_column(Text)
    choices: Mapped[list] = mapped_column(JSON)
    answer: Mapped[list] = mapped_column(JSON)
    points: Mapped[int] = mapped_column(default=1)

    challenge: Mapped[Challenge] = relationship(back_populates="questions")

    __table_args__ = (UniqueConstraint("challenge_id", "position"),)


class FormLink(db.Model):
    """A participant's personal link for one round: /f/<code>."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenge.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    seed: Mapped[int]  # shuffles this participant's choices
    started_at: Mapped[datetime | None]  # the Start press; the response clock runs from here

    participant: Mapped[Participant] = relationship(back_populates="links")
    challenge: Mapped[Challenge] = relationship()

    __table_args__ = (UniqueConstraint("participant_id", "challenge_id"),)


class Submission(db.Model):
    """A participant's answers to one round: one row at most, by a unique key."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenge.id", ondelete="CASCADE"))
    answers: Mapped[dict] = mapped_column(JSON)
    score: Mapped[int]
    correct: Mapped[int]
    response_time: Mapped[float]  # seconds, Start press to arrival, server clock
    submitted_at: Mapped[datetime]
    rank: Mapped[int | None]  # set when the round closes
    # Played after being knocked out (the shadow league): never ranked, never counted for the prize.
    shadow: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("participant_id", "challenge_id"),
        # Only the shadow league's rows (the standings read them): real submissions never touch this index.
        Index("ix_submission_shadow", "participant_id", postgresql_where=text("shadow IS true"),
              sqlite_where=text("shadow IS 1")),
        {"postgresql_with": {"fillfactor": SUBMISSION_FILLFACTOR}},
    )


# The one ranking order: ranking.sort_key in SQL (tests/test_rounds.py checks the two agree). Ranks
# are 1..n in this order, so the close, the leaderboard and "the best ranked" walk the index below
# instead of sorting.
RANKING_ORDER = (Submission.score.desc(), Submission.response_time, Submission.submitted_at,
                 Submission.participant_id)

# A round's submissions in ranking order: the leaderboard's top rows and the prize's best-ranked
# player are its first entries. Not on rank: the close writes rank.
Index("ix_submission_ranking", Submission.challenge_id, *RANKING_ORDER)




class PhotoAnswer(db.Model):
    """A photo sent for a photo question: stored under `key`, worth its points once staff accept it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenge.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    status: Mapped[PhotoStatus] = status_column(PhotoStatus, PhotoStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(80))
    reviewed_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship(lazy="joined")
    question: Mapped[Question] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("submission_id", "question_id"),
        Index("ix_photo_answer_challenge_status", "challenge_id", "status"),
    )

    @hybrid_property
    def is_accepted(self) -> bool:
        return self.status == PhotoStatus.ACCEPTED

    @hybrid_property
    def is_rejected(self) -> bool:
        return self.status == PhotoStatus.REJECTED




class Message(db.Model):
    """An SMS: queued → sending (claimed by one worker) → sent or failed. The outbox backend just keeps it here."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id", ondelete="SET NULL"))
    challenge_id: Mapped[int | None] = mapped_column(ForeignKey("challenge.id", ondelete="SET NULL"))
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminder.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    # "<kind>:<round or reminder>:<participant>": one message per purpose per person, however often
    # sending is retried (NULLs would make a composite unique key let duplicates through).
    key: Mapped[str] = mapped_column(String(80), unique=True)
    to: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[MessageStatus] = status_column(MessageStatus, MessageStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    enqueued_at: Mapped[datetime | None]  # last handed to a send job; reconcile re-hands the forgotten
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (Index("ix_message_challenge_status", "challenge_id", "status"),)


class MessageTemplate(db.Model):
    """The organizer's wording of one kind of SMS (defaults live in notify.TEMPLATES)."""

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    body: Mapped[str] = mapped_column(Text)




class Reminder(db.Model):
    """An announcement sent to everyone still in the game at a set time, by RQ's scheduler."""

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(320))
    send_at: Mapped[datetime]
    status: Mapped[ReminderStatus] = status_column(ReminderStatus, ReminderStatus.SCHEDULED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @hybrid_property
    def is_scheduled(self) -> bool:
        return self.status == ReminderStatus.SCHEDULED

    @hybrid_property
    def is_sent(self) -> bool:
        return self.status == ReminderStatus.SENT


class AdminUser(UserMixin, db.Model):
    """An organizer who can log in to the console."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class AuditEntry(db.Model):
    """Who did what in the console or the API, shown in the console."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text, default="")


HELP_KINDS = {"no_sms": "I didn't get my SMS", "submit_failed": "My answers didn't go through", "other": "Something else"}




class HelpRequest(db.Model):
    """A participant asking the help desk; staff answer with a reply the participant sees on their page."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"), index=True)
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
