"""Putting mistakes right during the event: more time for a round, a round closed by mistake opened
again (its elimination reversed exactly), a player brought back into the game.

A close's results wait RESULTS_DELAY_SECONDS (quiz/rounds.py): until then, and until the next
round starts, nobody has been told anything a reopen would make wrong.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from . import clocks, rounds
from .clock import local_time
from .effects import CHANGED, Drain, Job, Pending, Task, owe
from .errors import QuizError, ValidationError
from .extensions import db
from .models import Challenge, Message, Participant, Submission
from .notify import RESULT_KINDS

MAX_EXTENSION = 3600
# What a close writes on the players it takes out (rounds.eliminate); a disqualification is not
# the round's doing and stays.
CLOSE_REASONS = ("unanswered", "ranked_out")


def check_seconds(value) -> int:
    """Seconds of extra time, as a JSON number or a form's text: 1 to 3600, or a ValidationError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXTENSION:
        message = f"Give the extra time as a whole number of seconds, 1 to {MAX_EXTENSION}."
        raise ValidationError({"seconds": message}, message)
    return value


def extend_round(number: int, seconds, now: datetime) -> Challenge:
    """Give an open, timed round `seconds` more: every player's time still running and the round's
    latest close move by that much, and players who have not started yet get the longer limit. A
    player whose time already ran out is not revived (reinstate them). The close job asks again
    at its time and finds the round not complete yet.
    """
    seconds = check_seconds(seconds)
    challenge = rounds.get_challenge(number, lock=True)
    challenge.extend(seconds, now)
    clocks.extend_windows(challenge, seconds, now)
    owe(CHANGED)
    return challenge


@dataclass(frozen=True)
class Reopened:
    """What a reopen did, for the console, the API and the audit log."""

    number: int
    back_in: int
    closes_at: datetime | None


def reopen_round(number: int, now: datetime, seconds=None) -> Reopened:
    """Open a round closed by mistake again, as it was before its close: who the close took out is
    back in, the ranks and counts it wrote are gone, no results are owed. `seconds` gives a timed
    round more time (needed when its limit ran out, or it would close again at once)."""
    challenge = rounds.get_challenge(number, lock=True)
    if not challenge.is_closed:
        challenge.reopen()  # says why not
    check_reopenable(challenge, now)
    closed_at = challenge.closed_at
    if seconds is not None:
        extra = check_seconds(seconds)
        if challenge.closes_at is None:
            raise QuizError(f"Round {number} has no time limit: reopen it without more time.",
                            code="no_time_limit")
        challenge.closes_at = max(challenge.closes_at, now) + timedelta(seconds=extra)
        challenge.extra_seconds += extra
        # Whoever was still playing when it closed plays on, with the extra time from now.
        clocks.extend_windows(challenge, extra, now, running_at=closed_at)
    grace = current_app.config["SUBMIT_GRACE_SECONDS"]
    if challenge.closes_at is not None and challenge.closes_at + timedelta(seconds=grace) <= now:
        raise QuizError(f"Round {number}'s time limit ran out at "
                        f"{local_time(challenge.closes_at)}: reopen it with more time (seconds), "
                        "or it would close again at once.",
                        code="time_up")
    back_in = db.session.execute(update(Participant)
                                 .where(Participant.eliminated_in == number,
                                        Participant.elimination_reason.in_(CLOSE_REASONS))
                                 .values(eliminated_in=None, elimination_reason=None)
                                 .execution_options(synchronize_session=False)).rowcount
    db.session.execute(update(Submission).where(Submission.challenge_id == challenge.id)
                       .values(rank=None).execution_options(synchronize_session=False))
    challenge.reopen()
    db.session.flush()
    db.session.expire_all()  # players and submissions loaded before the statements above
    if challenge.closes_at is not None:
        if clocks.plan(challenge, now).complete:
            raise QuizError(f"Round {number} would close again at once: every invited player's "
                            "time was used up when it closed. Reinstate players one by one "
                            "instead.", code="time_up")
        clocks.owe_check(challenge, clocks.next_check(challenge, now))
    # Forms the close filed under unanswered/ go back to forms/ (the database now says so).
    owe(CHANGED, Job(Task.RECONCILE_FORMS, ([challenge.id],),
                     description=f"round {number} reopened: forms back in place"))
    return Reopened(number, back_in, challenge.closes_at)


def reopened_detail(done: Reopened) -> str:
    """The audit log's line for a reopen."""
    until = f", closes {local_time(done.closes_at)}" if done.closes_at else ""
    return f"round {done.number}: {done.back_in} player(s) back in{until}"


def check_reopenable(challenge: Challenge, now: datetime) -> None:
    """A closed round may be reopened while its results have not gone out and the next round has
    not started; otherwise a QuizError saying which."""
    blocker = reopen_blocker(challenge, now)
    if blocker is not None:
        raise blocker


def reopen_blocker(challenge: Challenge, now: datetime) -> QuizError | None:
    """Why the closed round can no longer be reopened (the next round started, or its results are
    out), or None while it still can."""
    number = challenge.number
    started = db.session.scalar(select(Challenge.number).where(
        Challenge.number > number, ~Challenge.is_draft).order_by(Challenge.number))
    if started is not None:
        return QuizError(f"Round {started} has started since: round {number} can no longer be "
                         "reopened. Reinstate players one by one instead.", code="next_started")
    delay = current_app.config["RESULTS_DELAY_SECONDS"]
    told = db.session.scalar(select(Message.id).where(Message.challenge_id == challenge.id,
                                                      Message.kind.in_(RESULT_KINDS)).limit(1))
    if is_final(challenge.closed_at, now, next_started=False, told=told is not None):
        return QuizError(f"Round {number}'s results are out (a round can be reopened for "
                         f"{delay:g} s after its close, RESULTS_DELAY_SECONDS): "
                         "reinstate players one by one instead.", code="results_out")
    return None


def is_final(closed_at: datetime | None, now: datetime, next_started: bool, told: bool) -> bool:
    """The one rule of when a closed round (closed at `closed_at`) can no longer be reopened: the
    next round has started, its results went out, or RESULTS_DELAY_SECONDS have passed. The reopen
    and the reveal (quiz/reveal.py: a round's answers show only once it is final) both ask it."""
    if closed_at is None:
        return False  # not closed
    delay = timedelta(seconds=current_app.config["RESULTS_DELAY_SECONDS"])
    return next_started or told or now >= closed_at + delay


def reinstate(participant: Participant) -> tuple[int, str]:
    """Bring a player knocked out or disqualified by mistake back into the game; returns the round
    and reason they were out for."""
    if participant.eliminated_in is None:
        raise QuizError(f"{participant.name} is in the game already.", code="already_in")
    last = db.session.scalar(select(Challenge).where(Challenge.is_last))
    if last is not None and last.is_closed:
        raise QuizError(f"The game is over (round {last.number}, the last, has closed): "
                        f"{participant.name} can't be brought back into it.", code="game_over")
    was = (participant.eliminated_in, participant.elimination_reason)
    participant.eliminated_in = participant.elimination_reason = None
    current = db.session.scalar(select(Challenge).where(Challenge.is_open))
    if current is not None:
        # Answers they sent in the shadow league while out now count for the prize; without any,
        # their link comes like a late joiner's.
        db.session.execute(update(Submission)
                           .where(Submission.participant_id == participant.id,
                                  Submission.challenge_id == current.id)
                           .values(shadow=False).execution_options(synchronize_session=False))
        owe(Pending(Drain.LATE_LINKS, (participant.id,), current.id))
    owe(CHANGED)
    return was


def results_due(challenge_id: int, now: datetime) -> Challenge | None:
    """The closed round whose results are owed by now, locked against a reopen racing the send;
    None if it was reopened, sent already, or is not due yet (a close after a reopen owes them
    later, with a job of its own)."""
    number = db.session.scalar(select(Challenge.number).where(Challenge.id == challenge_id))
    if number is None:
        return None
    challenge = rounds.get_challenge(number, lock=True)
    due = challenge.results_due_at
    return challenge if challenge.is_closed and due is not None and due <= now else None
