"""The game: rounds, their questions, each player's link, submissions and photos, the ranking
order."""
from datetime import datetime, timedelta

from sqlalchemy import (JSON, ForeignKey, Index, String, Text, UniqueConstraint, exists, false,
                        select, text)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db
from ..question_types import QUESTION_TYPES
from ..statuses import PhotoStatus, RoundStatus
from .columns import SUBMISSION_FILLFACTOR, status_column
from .players import Participant


class Challenge(db.Model):
    """A round: draft → open → closed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(200))
    time_limit_seconds: Mapped[int | None]
    keep_fraction: Mapped[float] = mapped_column(default=0.5)
    keep_count: Mapped[int | None]
    scoring: Mapped[str] = mapped_column(String(20), default="accuracy")
    # A pool: each player is asked this many of the round's questions, drawn per player
    # (quiz/deal.py); None asks them all.
    draw: Mapped[int | None]
    status: Mapped[RoundStatus] = status_column(RoundStatus, RoundStatus.DRAFT)
    opened_at: Mapped[datetime | None]
    # A timed round's latest close (ROUND_MAX_SECONDS after opening, moved by an extension): it
    # closes itself earlier once every invited player's time is used up (quiz/clocks.py).
    closes_at: Mapped[datetime | None]
    # Seconds given on top of the limit (quiz/undo.py): players who start later get them too.
    extra_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    closed_at: Mapped[datetime | None]
    # Set by the close, with the ranks (readers need no index on rank): how many submitters were
    # ranked, and the score and time of the last place that stayed (the cut line; None when nobody
    # was ranked).
    ranked_count: Mapped[int | None]
    cut_score: Mapped[int | None]
    cut_response_time: Mapped[float | None]
    # Set by the close when results are to be texted, cleared once their messages are queued:
    # reconcile queues them if the nudge to the workers was lost (Redis down at the close).
    results_due_at: Mapped[datetime | None]
    # The projector's reveal of this round once closed (quiz/reveal.py): the step the console last
    # moved it to, and when (None: not moved; REVEAL_SECONDS_PER_QUESTION steps on from there).
    reveal_step: Mapped[int] = mapped_column(default=0, server_default="0")
    reveal_moved_at: Mapped[datetime | None]

    questions: Mapped[list["Question"]] = relationship(
        back_populates="challenge", order_by="Question.position", cascade="all, delete-orphan")

    @property
    def asked(self) -> int:
        """How many questions each player answers: the draw of a pool, or every question."""
        return len(self.questions) if self.draw is None else min(self.draw, len(self.questions))

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

    def open(self, now: datetime, max_seconds: float | None = None) -> None:
        """Open the round; a timed one closes at the latest `max_seconds` from now (each player's
        own time runs from their Start)."""
        if not self.is_draft:
            raise QuizError(f"Round {self.number} is already {self.status}.",
                            code=f"already_{self.status}")
        self.status = RoundStatus.OPEN
        self.opened_at = now
        if self.time_limit_seconds:
            self.closes_at = now + timedelta(seconds=max_seconds or self.time_limit_seconds)

    def close(self, now: datetime) -> None:
        """Stop the round; elimination follows in the same transaction (rounds.close_round)."""
        if not self.is_open:
            raise QuizError(f"Round {self.number} is {self.status}, not open.", code="not_open")
        self.status = RoundStatus.CLOSED
        self.closed_at = now

    def extend(self, seconds: int, now: datetime) -> None:
        """Move the round's own close `seconds` later (quiz/undo.py checks the number)."""
        if not self.is_open:
            raise QuizError(f"Round {self.number} is {self.status}: only an open round can be "
                            "given more time.", code="not_open")
        if self.closes_at is None:
            raise QuizError(f"Round {self.number} has no time limit: it stays open until you end "
                            "it.", code="no_time_limit")
        if self.closes_at <= now:
            raise QuizError(f"Round {self.number}'s time is already up: it is closing. Once it "
                            "has closed, reopen it with more time.", code="time_up")
        self.closes_at += timedelta(seconds=seconds)
        self.extra_seconds += seconds

    def reopen(self) -> None:
        """Back to open, without anything the close wrote on the round (quiz/undo.py checks when
        that is still allowed and reverses the elimination)."""
        if not self.is_closed:
            raise QuizError(f"Round {self.number} is {self.status}: only a closed round can be "
                            "reopened.", code="not_closed")
        self.status = RoundStatus.OPEN
        self.closed_at = self.results_due_at = None
        self.ranked_count = self.cut_score = self.cut_response_time = None
        self.reveal_step, self.reveal_moved_at = 0, None

    def deadline(self, grace: float) -> datetime | None:
        """The last moment a submission may arrive, or None while nothing limits it."""
        ends = [t for t in (self.closes_at, self.closed_at) if t is not None]
        return min(ends) + timedelta(seconds=grace) if ends else None


def _round_after(number):
    """EXISTS a round numbered above `number` (a value, or a column of the enclosing query)."""
    later = aliased(Challenge)
    return exists().where(later.number > number)


class ByKind:
    """What a question's kind decides, for the ORM row and the submit's plain row
    (answer_sheet.Asked) alike."""

    __slots__ = ()

    @property
    def multiple(self) -> bool:
        return len(self.answer) > 1

    @property
    def type(self):
        """This question's behaviour (parsing, rendering, validating, scoring): a QuestionType."""
        return QUESTION_TYPES[self.kind]


class Question(ByKind, db.Model):
    """A question of one of the kinds in question_types: multiple choice (`answer` lists the
    correct choices) or photo."""

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenge.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20), default="choice", server_default="choice")
    text: Mapped[str] = mapped_column(Text)
    choices: Mapped[list] = mapped_column(JSON)
    answer: Mapped[list] = mapped_column(JSON)
    points: Mapped[int] = mapped_column(default=1)
    # Its pictures, when the bank gives any (quiz/question_images.py): {"question": image,
    # "choices": {choice text: image}}, an image being {"hash", "alt", "phone": [w, h], "stage"}.
    images: Mapped[dict | None] = mapped_column(JSON, default=None)

    challenge: Mapped[Challenge] = relationship(back_populates="questions")

    __table_args__ = (UniqueConstraint("challenge_id", "position"),)


class FormLink(db.Model):
    """A participant's personal link for one round: /f/<code>."""

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenge.id", ondelete="CASCADE"),
                                              index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    seed: Mapped[int]  # draws and orders this participant's questions and choices (quiz/deal.py)
    started_at: Mapped[datetime | None]  # the Start press; the response clock runs from here
    # A timed round: when this player's own time is up (Start + limit, cut at the round's latest
    # close; moved by an extension while it runs).
    window_ends_at: Mapped[datetime | None]

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
        # Only the shadow league's rows (the standings read them): real submissions never touch
        # this index.
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
    """A photo sent for a photo question: stored under `key`, worth its points once staff accept
    it."""

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
