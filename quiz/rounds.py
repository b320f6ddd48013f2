"""A round's life: open it, start a player's clock, take answers, close it and eliminate."""
import gc
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import exists, select, text, update
from sqlalchemy.exc import IntegrityError

from . import scoring
from .checkin import needs_checkin
from .errors import QuizError, ValidationError
from .extensions import db
from .forms import request_work
from .jobs import after_commit, enqueue_after_commit
from .links import ensure_links, shuffled_choices
from .live import publish_after_commit
from .models import Challenge, FormLink, Participant, Submission
from .observability import SUBMISSIONS
from .photos import photo_key, store_photos
from .question_types import AnswerError
from .ranking import Entry, Outcome, rank_round

# The page states of /f/<code>, in the order a player meets them.
NOT_OPEN, READY, QUESTIONS, SUBMITTED, CLOSED, ELIMINATED = (
    "not_open", "ready", "questions", "submitted", "closed", "eliminated")
CHECK_IN = "check_in"  # round 1 open, but CHECKIN_REQUIRED and this player hasn't checked in


@dataclass(frozen=True)
class CloseSummary:
    """What closing a round did, for the console, the API and the log."""

    number: int
    submitted: int
    kept: int
    unanswered: int
    ranked_out: int
    winner_id: int | None


def get_challenge(number: int, lock: bool = False) -> Challenge:
    """Round `number`, or a 404 the organizer can act on."""
    query = select(Challenge).where(Challenge.number == number)
    if lock:
        # Row lock on PostgreSQL: closers serialize, submitters (FOR SHARE) wait for them.
        query = query.with_for_update().execution_options(populate_existing=True)
        lock_for_sqlite(Challenge.number == number)
    challenge = db.session.scalar(query)
    if challenge is None:
        raise QuizError(f"There is no round {number}. Load the question bank first.", code="no_such_round", status=404)
    return challenge


def lock_for_sqlite(condition) -> None:
    """SQLite has no row locks, and pysqlite runs SELECTs outside the transaction: take its write lock now.

    A no-op write on the round's row, so the checks that follow and the writes after them see one state
    (without it, a submit could land after the close eliminated its player, and two closes both ran).
    """
    if db.engine.dialect.name == "sqlite":
        db.session.execute(update(Challenge).where(condition).values(status=Challenge.status)
                           .execution_options(synchronize_session=False))


def start_round(number: int, now: datetime) -> Challenge:
    """Open round `number` (rounds go in order); the caller commits, then links are sent."""
    challenge = get_challenge(number, lock=True)
    unfinished = db.session.scalar(select(Challenge.number).where(
        Challenge.number != number, Challenge.status == "open"))
    if unfinished is None and challenge.status == "draft":
        unfinished = db.session.scalar(select(Challenge.number).where(
            Challenge.number < number, Challenge.status == "draft").order_by(Challenge.number))
    if unfinished is not None:
        raise QuizError(f"Round {unfinished} comes first: end it (or start it) before round {number}.",
                        code="out_of_order")
    if not challenge.questions:
        raise QuizError(f"Round {number} has no questions. Load them first.", code="no_questions")
    challenge.open(now)
    ensure_links()
    db.session.flush()
    enqueue_after_commit("quiz.tasks.send_round_links", challenge.id, queue="notify",
                         description=f"round {number}: send links")
    publish_after_commit()
    # Forms of anyone whose background render was lost (Redis down at registration) are made now.
    enqueue_after_commit("quiz.tasks.reconcile_forms", [challenge.id], queue="forms",
                         description=f"round {number}: check its stored forms")
    deadline = challenge.deadline(current_app.config["SUBMIT_GRACE_SECONDS"])
    if deadline:
        enqueue_after_commit("quiz.tasks.close_expired_round", challenge.id, at=deadline,
                             description=f"close round {number} at its time limit")
    return challenge


def close_round(number: int, now: datetime) -> CloseSummary:
    """Close round `number` and eliminate, in the caller's transaction."""
    challenge = get_challenge(number, lock=True)
    challenge.close(now)
    db.session.flush()
    outcome = eliminate(challenge)
    last = is_last(challenge)
    unanswered = db.session.scalar(select(db.func.count()).where(
        Participant.eliminated_in == number, Participant.elimination_reason == "unanswered"))
    winner_id = outcome.order[0] if last and outcome.order else None
    publish_after_commit()
    enqueue_after_commit("quiz.tasks.file_unanswered_forms", challenge.id, queue="forms",
                         description=f"round {number}: move forms not answered to unanswered/")
    if current_app.config["SMS_RESULTS"]:
        enqueue_after_commit("quiz.tasks.send_results", challenge.id, winner_id, queue="notify",
                             description=f"round {number}: results by SMS")
    return CloseSummary(number=number, submitted=len(outcome.order), kept=outcome.kept, unanswered=unanswered,
                        ranked_out=len(outcome.ranked_out), winner_id=winner_id)


def eliminate(challenge: Challenge) -> Outcome:
    """Rank the round (a pure function), then apply it set-based: ranks, no-shows, the cut."""
    connection = db.session.connection()
    with gc_paused():
        rows = connection.execute(ranking_rows(challenge)).all()
        outcome = rank_round([Entry(pid, score, seconds, at) for _, pid, score, seconds, at in rows],
                             challenge.keep_fraction, challenge.keep_count)
        submission_of = {pid: sid for sid, pid, *_ in rows}
        apply_ranks([submission_of[pid] for pid in outcome.order])
    no_submission = ~exists().where(Submission.participant_id == Participant.id,
                                    Submission.challenge_id == challenge.id)
    connection.execute(update(Participant).where(Participant.eliminated_in.is_(None), no_submission)
                       .values(eliminated_in=challenge.number, elimination_reason="unanswered"))
    eliminate_ranked_out(challenge, outcome.ranked_out)
    db.session.expire_all()
    return outcome


def ranking_rows(challenge: Challenge):
    """The round's submissions of players still in, fetched as plain tuples (Core: no ORM objects)."""
    return (select(Submission.id, Submission.participant_id, Submission.score, Submission.response_time,
                   Submission.submitted_at)
            .join(Participant, Participant.id == Submission.participant_id)
            .where(Submission.challenge_id == challenge.id, Participant.eliminated_in.is_(None))
            # Already in ranking order, so the pure function's sort is a linear pass; it still decides.
            .order_by(Submission.score.desc(), Submission.response_time, Submission.submitted_at,
                      Submission.participant_id))


@contextmanager
def gc_paused():
    """No cyclic garbage collection while 50,000 short-lived tuples are built: they hold no cycles, and the
    full collections they would trigger over a web process's heap cost more than the ranking itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# The ranking's result applied in one statement each, the ids travelling as one parameter (SQLite: a JSON
# array; PostgreSQL: an integer[]).
# SQLite: each element is `submission id × 2^24 + rank`, sorted, so rows are visited in table order
# (random order costs half as much again at 50,000 players).
RANK_UPDATES = {
    "sqlite": "UPDATE submission SET rank = ranked.value & 16777215 FROM json_each(:order) AS ranked "
              "WHERE submission.id = ranked.value >> 24",
    "postgresql": "UPDATE submission SET rank = ranked.place FROM unnest(CAST(:order AS integer[])) "
                  "WITH ORDINALITY AS ranked(id, place) WHERE submission.id = ranked.id",
}
RANKED_OUT = {
    "sqlite": "SELECT value FROM json_each(:ids)",
    "postgresql": "SELECT unnest(CAST(:ids AS integer[]))",
}


def apply_ranks(submission_ids: list[int]) -> None:
    """Store rank 1..n for the submissions in this order."""
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        order = json.dumps(sorted((sid << 24) | place for place, sid in enumerate(submission_ids, start=1)))
    elif dialect == "postgresql":
        order = list(submission_ids)  # an integer[] parameter
    else:  # another database: the portable executemany
        db.session.execute(update(Submission), [{"id": sid, "rank": place}
                                                for place, sid in enumerate(submission_ids, start=1)])
        return
    if submission_ids:
        db.session.connection().execute(text(RANK_UPDATES[dialect]), {"order": order})


def eliminate_ranked_out(challenge: Challenge, participant_ids: tuple[int, ...]) -> None:
    """Mark the submitters below the cut as out of the game, in one statement."""
    if not participant_ids:
        return
    dialect, ordered = db.engine.dialect.name, sorted(participant_ids)
    if dialect in RANKED_OUT:
        values = json.dumps(ordered) if dialect == "sqlite" else ordered
        below_cut = Participant.id.in_(text(RANKED_OUT[dialect]).bindparams(ids=values))
    else:
        below_cut = Participant.id.in_(ordered)
    db.session.connection().execute(update(Participant).where(Participant.eliminated_in.is_(None), below_cut)
                                    .values(eliminated_in=challenge.number, elimination_reason="ranked_out"))


def page_state(link: FormLink, now: datetime) -> str:
    """Which page /f/<code> shows right now."""
    challenge, participant = link.challenge, link.participant
    if participant.eliminated_in is not None and participant.eliminated_in < challenge.number:
        return ELIMINATED
    if challenge.status == "draft":
        return NOT_OPEN
    if has_submitted(link):
        return SUBMITTED
    deadline = challenge.deadline(current_app.config["SUBMIT_GRACE_SECONDS"])
    if challenge.status == "closed" or participant.eliminated_in is not None or (deadline and now > deadline):
        return CLOSED
    if needs_checkin(link):
        return CHECK_IN
    return QUESTIONS if link.started_at else READY


def has_submitted(link: FormLink) -> bool:
    return db.session.scalar(select(exists().where(
        Submission.participant_id == link.participant_id, Submission.challenge_id == link.challenge_id)))


def refusal(state: str, link: FormLink) -> QuizError:
    """Why a player cannot start or submit in `state`."""
    number = link.challenge.number
    return {
        NOT_OPEN: QuizError(f"Round {number} hasn't started yet. Keep this page: it opens when the round does.",
                            code="not_open"),
        SUBMITTED: QuizError("Your answers are already in. Only the first submission counts.",
                             code="already_submitted"),
        CLOSED: QuizError(f"Round {number} is closed: answers are no longer accepted.", code="closed"),
        CHECK_IN: QuizError(f"Round {number} is only open to players who have checked in. Show the QR code from "
                            "your confirmation page at the registration desk, then come back here.",
                            code="not_checked_in", status=403),
        ELIMINATED: QuizError(f"You were knocked out in round {link.participant.eliminated_in}, "
                              "so this round isn't open to you.", code="eliminated", status=403),
    }[state]


def start_clock(link: FormLink, now: datetime) -> None:
    """The Start press: the response clock runs from the first one (later presses change nothing)."""
    state = page_state(link, now)
    if state not in (READY, QUESTIONS):
        raise refusal(state, link)
    db.session.execute(update(FormLink).where(FormLink.id == link.id, FormLink.started_at.is_(None))
                       .values(started_at=now).execution_options(synchronize_session=False))
    db.session.refresh(link)


def parse_answers(link: FormLink, form, files=None) -> list:
    """Each question's answer, in question order, read by its kind; ValidationError says what to fix."""
    questions = link.challenge.questions
    known = {f"q{q.id}" for q in questions}
    unknown = [key for key in [*form.keys(), *(files or {}).keys()] if key.startswith("q") and key not in known]
    if unknown:
        raise QuizError("These answers are for questions that are not in this round. Reload the page.",
                        code="unknown_question", status=422)
    errors, answers, status = {}, [], 422
    for number, question in enumerate(questions, start=1):
        try:
            answers.append(question.type.read(question, form, files, number))
        except AnswerError as error:
            errors[f"q{question.id}"] = error.message
            status = 413 if 413 in (status, error.status) else status
            answers.append(None)
    if errors:
        # 413 when a photo is over the limit: the message says the limit.
        message = next(iter(errors.values())) if status == 413 else "Some answers need another look."
        error = ValidationError(errors, message)
        error.status = status
        raise error
    return answers


def check_can_submit(link: FormLink, now: datetime) -> None:
    """Refuse a submission unless the player's questions page is what they should be seeing."""
    state = page_state(link, now)
    if state == READY:
        raise QuizError("Press Start first: your clock starts when you do.", code="not_started")
    if state != QUESTIONS:
        raise refusal(state, link)


def submit_answers(link: FormLink, form, now: datetime, files=None) -> Submission:
    """Score and store a player's answers exactly once (photos stored after the row is in); the caller commits."""
    try:
        answers = parse_answers(link, form, files)  # before any lock: decoding a photo takes a while
    except QuizError:
        check_can_submit(link, now)  # a closed round says so, rather than what to fix in the answers
        raise
    # FOR SHARE on PostgreSQL: a concurrent close waits for this submission, or this one sees the close.
    db.session.execute(select(Challenge.id).where(Challenge.id == link.challenge_id).with_for_update(read=True))
    lock_for_sqlite(Challenge.id == link.challenge_id)
    # The round's state as of the lock; its questions (already read above) can't change while it is open.
    db.session.refresh(link.challenge, ["status", "opened_at", "closes_at", "closed_at"])
    check_can_submit(link, now)
    challenge = link.challenge
    photos = {q: answer for q, answer in zip(challenge.questions, answers) if q.type.upload}
    stored = {q: [photo_key(challenge.number, link.participant_id, q.id)] if q in photos else answer
              for q, answer in zip(challenge.questions, answers)}
    response_time = max((now - link.started_at).total_seconds(), 0.0)
    result = scoring.score_marks([(q.type.mark(q, answer, None), q.points) for q, answer in stored.items()],
                                 challenge.scoring, response_time, challenge.time_limit_seconds)
    submission = Submission(
        participant_id=link.participant_id, challenge_id=challenge.id, submitted_at=now,
        answers={str(q.id): answer for q, answer in stored.items()},
        score=result.points, correct=result.correct, response_time=response_time)
    try:
        with db.session.begin_nested():
            db.session.add(submission)
    except IntegrityError:
        raise refusal(SUBMITTED, link)
    if photos:  # only the player whose row went in writes: a doubled POST never overwrites a photo
        store_photos(submission, challenge, photos)
    publish_after_commit()
    after_commit(SUBMISSIONS.inc)
    after_commit(request_work, f"answered:{challenge.id}", [link.participant_id])
    return submission


def questions_for(link: FormLink) -> list[tuple]:
    """The round's questions with this participant's shuffled choices; never the answer key."""
    return [(q, shuffled_choices(link, q)) for q in link.challenge.questions]


def current_challenge() -> Challenge | None:
    """The open round, else the next one to open, else the last one."""
    for status, order in (("open", Challenge.number), ("draft", Challenge.number),
                          ("closed", Challenge.number.desc())):
        challenge = db.session.scalar(select(Challenge).where(Challenge.status == status).order_by(order).limit(1))
        if challenge:
            return challenge
    return None


def is_last(challenge: Challenge) -> bool:
    """No round comes after this one."""
    return not db.session.scalar(select(exists().where(Challenge.number > challenge.number)))


def winner() -> Participant | None:
    """First place of the last round, once it has closed (passing over anyone disqualified since)."""
    last = db.session.scalar(select(Challenge).order_by(Challenge.number.desc()).limit(1))
    if last is None or last.status != "closed":
        return None
    return db.session.scalar(select(Participant).join(Submission, Submission.participant_id == Participant.id)
                             .where(Submission.challenge_id == last.id, Submission.rank.is_not(None),
                                    Participant.elimination_reason.is_distinct_from("disqualified"))
                             .order_by(Submission.rank).limit(1))


def disqualify(participant: Participant, reason: str) -> int:
    """Take a player out of the game (cheating, a duplicate person…); returns the round it counts for."""
    reason = " ".join(reason.split())
    if not reason or len(reason) > 200:
        message = "Say why (up to 200 characters): it goes into the audit log."
        raise ValidationError({"reason": message}, message)
    if participant.eliminated_in is not None:
        raise QuizError(f"{participant.name} is already out (round {participant.eliminated_in}).", code="already_out")
    current = current_challenge()
    number = current.number if current else 1
    participant.eliminated_in, participant.elimination_reason = number, "disqualified"
    publish_after_commit()
    return number
