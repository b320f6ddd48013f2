"""A player's side of a round: which page their link shows, the Start press, and their answers going
in.

The submit is the busiest write of an event (thousands within seconds of a round's end), so it runs
on plain rows through SQLAlchemy Core: one read of link, player, round and "already in?" (the
round's questions are read once per process), the check and the scoring, then the row goes to
quiz/submit_store.py: under gevent, one INSERT … ON CONFLICT DO NOTHING and one commit for every
submission that arrived in the same few milliseconds (group commit).
"""
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import ARRAY, any_, bindparam, exists, select, update
from sqlalchemy.engine import Engine

from . import clocks, scoring
from .answer_sheet import Asked, deal_sheet, parse_answers
from .checkin import needs_checkin
from .effects import CHANGED, owe
from .errors import QuizError
from .extensions import db, state as app_state
from .links import CODE_PATTERN, dealt_questions
from .models import Challenge, FormLink, Participant, Question, RoundStatus, Submission
from .photos import photo_key, store_photos
from .shadow import in_shadow_league, invited
from .submit_read import ALONE, PreparedRead, reader, reading
from .submit_store import CLOSED as ROUND_CLOSED, DUPLICATE, Answered, insert_rows, store

# The page states of /f/<code>, in the order a player meets them.
NOT_OPEN, READY, QUESTIONS, SUBMITTED, CLOSED, ELIMINATED = (
    "not_open", "ready", "questions", "submitted", "closed", "eliminated")
TIME_UP = "time_up"  # the round is open, but this player's own time (from their Start) ran out
CHECK_IN = "check_in"  # round 1 open, but CHECKIN_REQUIRED and this player hasn't checked in
UNKNOWN_LINK = _l("This link is not valid. Check that you opened the whole link from your SMS.")


@dataclass(frozen=True, slots=True)
class LinkState:
    """The plain values a link's page depends on (from the ORM for pages, from one Core row for a
    submit)."""

    number: int
    status: RoundStatus
    closes_at: datetime | None
    closed_at: datetime | None
    eliminated_in: int | None
    started_at: datetime | None
    submitted: bool
    needs_checkin: bool
    # knocked out earlier, playing this round in the shadow league (quiz/shadow.py)
    shadow: bool = False
    window_ends_at: datetime | None = None  # this player's own time is up (quiz/clocks.py)

    @classmethod
    def of_row(cls, row) -> "LinkState":
        """From one plain row of link, player and round (the submit's, the Start press's, the
        repeat's read)."""
        return cls(row.number, row.status, row.closes_at, row.closed_at, row.eliminated_in,
                   row.started_at, bool(row.submitted),
                   needs_checkin(row.number, row.checked_in_at),
                   invited(row.eliminated_in, row.elimination_reason, row.number),
                   row.window_ends_at)


def state_of(link: LinkState, now: datetime, grace: float) -> str:
    """Which page a link shows (a pure function: the one rule for pages and submissions alike)."""
    if link.eliminated_in is not None and link.eliminated_in < link.number and not link.shadow:
        return ELIMINATED
    if link.status == RoundStatus.DRAFT:
        return NOT_OPEN
    if link.submitted:
        return SUBMITTED
    if (closed := accepts(link, now, grace)) is not None:
        return closed
    if link.needs_checkin:
        return CHECK_IN
    return QUESTIONS if link.started_at else READY


def accepts(link: LinkState, now: datetime, grace: float) -> str | None:
    """The acceptance check (pages and the submit's insert path alike): None while the round is
    open to this player and their own time (plus grace) runs, else CLOSED or TIME_UP."""
    ends = [t for t in (link.closes_at, link.closed_at) if t is not None]
    late = bool(ends) and now > min(ends) + timedelta(seconds=grace)
    out = link.eliminated_in is not None and not link.shadow
    if link.status == RoundStatus.CLOSED or out or late:
        return CLOSED
    return TIME_UP if clocks.time_is_up(link.window_ends_at, now, grace) else None


def page_state(link: FormLink, now: datetime, submitted: bool | None = None) -> str:
    """Which page /f/<code> shows right now (`submitted`: whether they have answered, when known
    already)."""
    challenge, participant = link.challenge, link.participant
    submitted = has_submitted(link) if submitted is None else submitted
    state = LinkState(challenge.number, challenge.status, challenge.closes_at, challenge.closed_at,
                      participant.eliminated_in, link.started_at, submitted,
                      needs_checkin(challenge.number, participant.checked_in_at),
                      in_shadow_league(participant, challenge), link.window_ends_at)
    return state_of(state, now, current_app.config["SUBMIT_GRACE_SECONDS"])


def has_submitted(link: FormLink) -> bool:
    return db.session.scalar(select(exists().where(
        Submission.participant_id == link.participant_id,
        Submission.challenge_id == link.challenge_id)))


def refusal(state: str, number: int, eliminated_in: int | None = None) -> QuizError:
    """Why a player cannot start or submit in round `number` in `state`."""
    # Lazy: worded when the page is rendered, in its player's language (chosen after the write).
    return {
        NOT_OPEN: QuizError(_l("Round %(number)s hasn't started yet. Keep this page: it opens when "
                               "the round does.", number=number), code="not_open"),
        SUBMITTED: QuizError(_l("Your answers are already in. Only the first submission counts."),
                             code="already_submitted"),
        CLOSED: QuizError(_l("Round %(number)s is closed: answers are no longer accepted.",
                             number=number), code="closed"),
        TIME_UP: QuizError(_l("Your time for round %(number)s is up (it ran from your Start): "
                              "answers are no longer accepted.", number=number), code="time_up"),
        CHECK_IN: QuizError(_l("Round %(number)s is only open to players who have checked in. "
                               "Show the QR code from your confirmation page at the registration "
                               "desk, then come back here.", number=number),
                            code="not_checked_in", status=403),
        ELIMINATED: QuizError(_l("You were knocked out in round %(number)s, so this round isn't "
                                 "open to you.", number=eliminated_in),
                              code="eliminated", status=403),
        READY: QuizError(_l("Press Start first: your clock starts when you do."),
                         code="not_started"),
    }[state]


def start_clock(link: FormLink, now: datetime) -> None:
    """The Start press: the response clock runs from the first one (later presses change
    nothing)."""
    state = page_state(link, now)
    if state not in (READY, QUESTIONS):
        raise refusal(state, link.challenge.number, link.participant.eliminated_in)
    # The player's own time runs from here (a timed round): recorded with the press.
    ends = clocks.window_end(link.challenge, now)
    db.session.execute(update(FormLink).where(FormLink.id == link.id, FormLink.started_at.is_(None))
                       .values(started_at=now, window_ends_at=ends)
                       .execution_options(synchronize_session=False))
    db.session.refresh(link)
    owe(CHANGED)  # the projector counts who is playing


def questions_for(link: FormLink) -> list[tuple]:
    """This participant's questions and choices in their order, with their values; never the key."""
    return dealt_questions(link)


def submit_answers(code: str, form, now: datetime, files=None) -> int:
    """Score and store a player's answers exactly once; returns the submission's id. The caller
    commits.

    The player's check and the scoring run here, on one unlocked read; the row is stored by
    quiz/submit_store.py, which checks the round again under its lock. In a web process under
    gevent it goes through the process's group commit: the reads hold no connection while the
    request waits for the writer, and the row is committed once this returns.
    Photos (`files`) are decoded once the link was found open to answers (a 12 MP photo takes
    ~0.2 s); a submission with photos is stored in the caller's transaction, the photos with it,
    so a doubled POST never overwrites one.
    """
    if not CODE_PATTERN.fullmatch(code or ""):
        raise QuizError(UNKNOWN_LINK, code="unknown_link", status=404)
    row, link = _linked(code)
    state = state_of(link, now, current_app.config["SUBMIT_GRACE_SECONDS"])
    if state != QUESTIONS:
        raise refusal(state, link.number, link.eliminated_in)
    questions = _dealt(row, code)
    answers = parse_answers(questions, form, files)
    photos = {q.id: answer for q, answer in zip(questions, answers) if q.type.upload}
    stored = [[photo_key(row.number, row.participant_id, q.id)] if q.id in photos else answer
              for q, answer in zip(questions, answers)]
    response_time = max((now - link.started_at).total_seconds(), 0.0)
    result = scoring.score_marks([(q.type.mark(q, answer, None), q.points)
                                  for q, answer in zip(questions, stored)],
                                 row.scoring, response_time, own_limit(row, link))
    answered = Answered(row.participant_id, row.challenge_id, now,
                        {str(q.id): answer for q, answer in zip(questions, stored)},
                        result.points, result.correct, response_time, link.shadow)
    if photos:
        outcome = insert_rows([answered])[0]
    else:
        outcome = store(answered)
    # a doubled POST that passed the check at the same moment: the key stopped it; or the round
    # closed in between
    if outcome in (DUPLICATE, ROUND_CLOSED):
        raise refusal(SUBMITTED if outcome == DUPLICATE else CLOSED, link.number)
    if photos:
        store_photos(outcome, row.participant_id, row.challenge_id, row.number, photos)
    return outcome


def _linked(code: str) -> tuple:
    """The submit's row for `code` (PostgreSQL under gevent: read with others' in one query,
    `grouped_link`) and the LinkState it gives; a 404 for an unknown link."""
    row = grouped_link(code)
    if row is ALONE:
        with reading() as connection:
            return _link(connection, _statements()["link"], code)
    if row is None:
        raise QuizError(UNKNOWN_LINK, code="unknown_link", status=404)
    return row, LinkState.of_row(row)


def grouped_link(code: str):
    """`code`'s row of link, player and round, read with the other submits' and Start presses' of
    the same moment in one query (PostgreSQL under gevent: quiz/submit_read.py), holding no
    connection meanwhile; None for an unknown code. ALONE where reads are not grouped (SQLite,
    outside gevent) or the group's query failed: the caller reads alone."""
    statements = _statements()
    if "links" not in statements or not app_state().submit_writer.is_batched():
        return ALONE
    return reader().group(statements["links"], "code").first(code)


def _link(connection, statement: PreparedRead, code: str) -> tuple:
    """The submit's row for `code` and the LinkState it gives; a 404 for an unknown link."""
    row = statement.first(connection, {"code": code})
    if row is None:
        raise QuizError(UNKNOWN_LINK, code="unknown_link", status=404)
    return row, LinkState.of_row(row)


def own_limit(row, link: LinkState) -> float | None:
    """The seconds speed scoring decays over: the player's own window (cut for a late joiner,
    longer after an extension), else the round's limit."""
    if link.window_ends_at is None or link.started_at is None:
        return row.time_limit_seconds
    return max((link.window_ends_at - link.started_at).total_seconds(), 0.0) or None


# An open round's questions never change (the bank refuses to), so each web process reads them once
# per round and database: keyed by the engine (held weakly) and the round's id and opening time.
_QUESTIONS: "weakref.WeakKeyDictionary[Engine, dict]" = weakref.WeakKeyDictionary()


def _dealt(row, code: str) -> list[Asked]:
    """This player's questions (a pool's draw, in their order), each with its choice values."""
    questions = _QUESTIONS.get(db.engine, {}).get((row.challenge_id, row.opened_at))
    if questions is None:
        with reading() as connection:
            questions = _questions(connection, row.challenge_id, row.opened_at)
    return deal_sheet(questions, code, row.seed,
                      row.draw, current_app.config["SECRET_KEY"])


def _questions(connection, challenge_id: int, opened_at: datetime | None) -> list[Asked]:
    """The round's questions in order, read once per web process once it has opened (a draft's may
    change)."""
    known = _QUESTIONS.setdefault(db.engine, {})
    if opened_at is None or (challenge_id, opened_at) not in known:
        rows = connection.execute(_statements()["questions"], {"challenge": challenge_id})
        if opened_at is None:
            return [Asked(*q) for q in rows]
        known[challenge_id, opened_at] = [Asked(*q) for q in rows]
    return known[challenge_id, opened_at]


_STATEMENTS: dict[str, dict] = {}


def _statements() -> dict:
    """The submit's reads, built once per dialect (building and cache-keying them costs more than
    running them). No lock: quiz/submit_store.py checks the round again under its lock."""
    dialect = db.engine.dialect.name
    if dialect not in _STATEMENTS:
        code, challenge = bindparam("code"), bindparam("challenge")
        submitted = exists().where(Submission.participant_id == FormLink.participant_id,
                                   Submission.challenge_id == FormLink.challenge_id)
        # (with what the Start press reads, quiz/start_press.py: presses and submits at the same
        # moment share a group's query)
        link = (select(FormLink.participant_id, FormLink.challenge_id, FormLink.started_at,
                       FormLink.window_ends_at, FormLink.seed, Challenge.draw,
                       Participant.eliminated_in, Participant.elimination_reason,
                       Participant.checked_in_at, Participant.language,
                       Challenge.number, Challenge.status, Challenge.opened_at, Challenge.closes_at,
                       Challenge.closed_at, Challenge.scoring, Challenge.time_limit_seconds,
                       Challenge.extra_seconds, submitted.label("submitted"))
                .join(Participant, Participant.id == FormLink.participant_id)
                .join(Challenge, Challenge.id == FormLink.challenge_id))
        _STATEMENTS[dialect] = statements = {
            # (PostgreSQL: through the driver)
            "link": PreparedRead(link.where(FormLink.code == code), db.engine.dialect),
            "questions": select(Question.id, Question.kind, Question.choices, Question.answer,
                                Question.points)
                         .where(Question.challenge_id == challenge).order_by(Question.position)}
        if dialect == "postgresql":  # many submits' reads in one query (a group read)
            codes = bindparam("values", type_=ARRAY(FormLink.code.type))
            statements["links"] = PreparedRead(
                link.add_columns(FormLink.code).where(FormLink.code == any_(codes)),
                db.engine.dialect)
    return _STATEMENTS[dialect]
