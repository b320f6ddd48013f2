"""A round's life: open it, start a player's clock, take answers, close it and eliminate."""
import gc
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from . import clocks
from .bulk import apply_ranks, id_in, id_not_in
from .errors import QuizError, ValidationError
from .extensions import db
from .effects import CHANGED, Job, Task, owe
from .links import ensure_links
from .models import RANKING_ORDER, Challenge, Participant, RoundStatus, Submission
from .ranking import Entry, Outcome, rank_round

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
        raise QuizError(f"There is no round {number}. Load the question bank first.",
                        code="no_such_round", status=404)
    return challenge


def lock_for_sqlite(condition) -> None:
    """SQLite has no row locks, and pysqlite runs SELECTs outside the transaction: take its write
    lock now.

    A no-op write on the round's row, so the checks that follow and the writes after them see one
    state (without it, a submit could land after the close eliminated its player, and two closes
    both ran).
    """
    if db.engine.dialect.name == "sqlite":
        db.session.execute(update(Challenge).where(condition).values(status=Challenge.status)
                           .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Opened:
    """A round just opened, and a timed round's plan at that moment (None when untimed)."""

    challenge: Challenge
    plan: clocks.Plan | None


def start_round(number: int, now: datetime) -> Opened:
    """Open round `number` (rounds go in order); the caller commits, then links are sent."""
    challenge = get_challenge(number, lock=True)
    # another round open, else (opening a draft) an earlier draft: one query, the open one first
    first = Challenge.is_open & (Challenge.number != number)
    if challenge.is_draft:
        first |= Challenge.is_draft & (Challenge.number < number)
    unfinished = db.session.scalar(select(Challenge.number).where(first)
                                   .order_by(Challenge.is_open.desc(), Challenge.number).limit(1))
    if unfinished is not None:
        raise QuizError(f"Round {unfinished} comes first: "
                        f"end it (or start it) before round {number}.",
                        code="out_of_order")
    if not challenge.questions:
        raise QuizError(f"Round {number} has no questions. Load them first.", code="no_questions")
    invited = clocks.invited_count(challenge) if challenge.time_limit_seconds else None
    if invited is not None:
        challenge.open(now, clocks.round_max_seconds(challenge, invited))
    else:
        challenge.open(now)
    ensure_links()
    db.session.flush()
    owe(Job(Task.SEND_ROUND_LINKS, (challenge.id,), description=f"round {number}: send links"),
        CHANGED,
        # Forms of anyone whose background render was lost (Redis down at registration) are made
        # now.
        Job(Task.RECONCILE_FORMS, ([challenge.id],),
            description=f"round {number}: check its stored forms"))
    plan = clocks.opening_plan(challenge, invited, now) if challenge.closes_at else None
    if plan is not None:
        clocks.owe_check(challenge, clocks.next_check(challenge, now, plan))
    return Opened(challenge, plan)


def close_round(number: int, now: datetime) -> CloseSummary:
    """Close round `number` and eliminate, in the caller's transaction."""
    challenge = get_challenge(number, lock=True)
    challenge.close(now)
    db.session.flush()
    last = challenge.is_last
    outcome, ranked_out, unanswered = eliminate(
        challenge, spare_winner=last and current_app.config["PRIZE_REQUIRES_CHECKIN"])
    champion = winner() if last else None
    winner_id = champion.id if champion else None
    owe(CHANGED, Job(Task.FILE_UNANSWERED_FORMS, (challenge.id,),
                     description=f"round {number}: move forms not answered to unanswered/"))
    if current_app.config["SMS_RESULTS"]:
        # Owed in this transaction (reconcile queues them if the job below never runs), after
        # RESULTS_DELAY_SECONDS: a round reopened by then (quiz/undo.py) has told no one anything.
        delay = timedelta(seconds=current_app.config["RESULTS_DELAY_SECONDS"])
        challenge.results_due_at = now + delay
        owe(Job(Task.SEND_RESULTS, (challenge.id, winner_id), at=now + delay if delay else None,
                description=f"round {number}: results by SMS"))
    return CloseSummary(number=number, submitted=len(outcome.order),
                        kept=len(outcome.order) - len(ranked_out), unanswered=unanswered,
                        ranked_out=len(ranked_out), winner_id=winner_id)


def eliminate(challenge: Challenge,
              spare_winner: bool = False) -> tuple[Outcome, tuple[int, ...], int]:
    """Rank the round (a pure function), then apply it set-based: ranks and what readers keep, the
    cut, no-shows.

    `spare_winner` (the last round, with PRIZE_REQUIRES_CHECKIN): the best-ranked player who checked
    in wins, so stays in even if the cut fell above them. Returns the outcome, who was ranked out,
    how many unanswered.
    """
    with gc_paused():
        rows = ranking_rows(challenge)
        outcome = rank_round([Entry(pid, score, seconds, at)
                              for _, pid, score, seconds, at in rows],
                             challenge.keep_fraction, challenge.keep_count)
        row_of = {row[1]: row for row in rows}
        apply_ranks([row_of[pid][0] for pid in outcome.order])
        record_counts(challenge, outcome, row_of)
    ranked_out = outcome.ranked_out
    if spare_winner and (champion_id := prize_winner_id(challenge)) is not None:
        ranked_out = tuple(pid for pid in ranked_out if pid != champion_id)
    eliminate_ranked_out(challenge, ranked_out)
    # Everyone still in whom the ranking didn't keep is now out: they are the ones who sent nothing.
    unanswered = eliminate_unanswered(challenge, set(outcome.order).difference(ranked_out))
    db.session.expire_all()
    return outcome, ranked_out, unanswered


def record_counts(challenge: Challenge, outcome: Outcome, row_of: dict[int, tuple]) -> None:
    """Keep on the round what its readers would otherwise look up by rank: the count, and the cut
    line (score and time of place `kept`, the last that stayed by the keep rule)."""
    challenge.ranked_count = len(outcome.order)
    if outcome.kept:
        _, _, challenge.cut_score, challenge.cut_response_time, _ = row_of[
            outcome.order[outcome.kept - 1]]
    db.session.flush()


def ranking_rows(challenge: Challenge) -> list[tuple]:
    """The round's submissions of players still in, as plain tuples (Core: no ORM objects), in
    ranking order.

    Two reads rather than a join: the round's rows come straight off ix_submission_ranking, and the
    players out are one scan. (Joined, PostgreSQL probed the participant index 50,000 times whenever
    its statistics lagged behind a burst of submissions, as they do at a close.)
    """
    connection = db.session.connection()
    out = set(connection.scalars(select(Participant.id)
                                 .where(Participant.eliminated_in.is_not(None))))
    query = (select(Submission.id, Submission.participant_id, Submission.score,
                    Submission.response_time, Submission.submitted_at)
             # (Shadow submissions come from players already out; the flag says so even if that ever
             # changed.)
             .where(Submission.challenge_id == challenge.id, Submission.shadow.is_(False))
             # Already in ranking order, so the pure function's sort is a linear pass; it still
             # decides.
             .order_by(*RANKING_ORDER))
    # all(): one fetch, not 50,000
    return [row for row in connection.execute(query).all() if row[1] not in out]


@contextmanager
def gc_paused():
    """No cyclic garbage collection while 50,000 short-lived tuples are built: they hold no cycles,
    and the full collections they would trigger over a web process's heap cost more than the ranking
    itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def eliminate_ranked_out(challenge: Challenge, participant_ids: tuple[int, ...]) -> None:
    """Mark the submitters below the cut as out of the game, in one statement."""
    if participant_ids:
        eliminate_where(challenge, "ranked_out", id_in(participant_ids))


def eliminate_unanswered(challenge: Challenge, kept: set[int]) -> int:
    """Mark everyone still in but `kept` (after the cut: whoever sent nothing) as out; returns how
    many."""
    return eliminate_where(challenge, "unanswered", id_not_in(kept) if kept else None)


def eliminate_where(challenge: Challenge, reason: str, condition) -> int:
    """Take the players still in who meet `condition` (None: all of them) out in this round; returns
    how many."""
    still_in = Participant.eliminated_in.is_(None)
    statement = update(Participant).where(still_in if condition is None else still_in & condition)
    result = db.session.connection().execute(statement.values(eliminated_in=challenge.number,
                                                              elimination_reason=reason))
    return result.rowcount


def current_challenge() -> Challenge | None:
    """The open round, else the next one to open, else the last one."""
    rounds = db.session.execute(select(Challenge.number, Challenge.status)).all()
    number = current_number(rounds)
    return (None if number is None
            else db.session.scalar(select(Challenge).where(Challenge.number == number)))


def current_number(rounds: list[tuple[int, str]]) -> int | None:
    """Of (number, status) pairs: the open round, else the next one to open, else the last one."""
    open_ = [n for n, status in rounds if status == RoundStatus.OPEN]
    draft = [n for n, status in rounds if status == RoundStatus.DRAFT]
    return min(open_ or draft) if open_ or draft else max((n for n, _ in rounds), default=None)


def winner() -> Participant | None:
    """First place of the last round, once it has closed (passing over anyone disqualified since,
    and, with PRIZE_REQUIRES_CHECKIN, anyone who hasn't checked in)."""
    last = db.session.scalar(select(Challenge).where(Challenge.is_last))
    if last is None or not last.is_closed:
        return None
    return db.session.scalar(_prize_ranking(last, Participant))


def prize_winner_id(challenge: Challenge) -> int | None:
    """Who the prize goes to among this round's ranked players (ranks applied, not yet
    committed)."""
    return db.session.scalar(_prize_ranking(challenge, Participant.id))


def _prize_ranking(challenge: Challenge, what):
    """The round's ranked real submitters who may win, best first, limited to one."""
    query = (select(what).join(Submission, Submission.participant_id == Participant.id)
             .where(Submission.challenge_id == challenge.id, Submission.rank.is_not(None),
                    Submission.shadow.is_(False),
                    Participant.elimination_reason.is_distinct_from("disqualified")))
    if current_app.config["PRIZE_REQUIRES_CHECKIN"]:
        # Checked in by the final's close: a check-in afterwards can't take the prize from the
        # winner announced.
        query = query.where(Participant.checked_in_at <= challenge.closed_at)
    return query.order_by(*RANKING_ORDER).limit(1)  # by rank: the ranked are in RANKING_ORDER


def disqualify(participant: Participant, reason: str) -> int:
    """Take a player out of the game (cheating, a duplicate person…); returns the round it counts
    for."""
    reason = " ".join(reason.split())
    if not reason or len(reason) > 200:
        message = "Say why (up to 200 characters): it goes into the audit log."
        raise ValidationError({"reason": message}, message)
    if participant.eliminated_in is not None:
        raise QuizError(f"{participant.name} is already out (round {participant.eliminated_in}).",
                        code="already_out")
    current = current_challenge()
    number = current.number if current else 1
    participant.eliminated_in, participant.elimination_reason = number, "disqualified"
    owe(CHANGED)
    return number


def close_if_due(challenge_id: int, now: datetime,
                 recheck: bool = True) -> CloseSummary | None:
    """Close a timed round once every invited player's time is used up, or its latest close has
    passed (quiz/clocks.py); None if it is not due, or not open. `recheck` (the close job) owes the
    job again for when it could be (a drain or reconcile only looks).

    Looked at without a lock first (submits go on meanwhile), then again under the round's lock.
    """
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None or not challenge.is_open or challenge.closes_at is None:
        return None
    if clocks.plan(challenge, now).complete:
        challenge = get_challenge(challenge.number, lock=True)
        if challenge.is_open and clocks.plan(challenge, now).complete:
            return close_round(challenge.number, now)
    if recheck and challenge.is_open:
        clocks.owe_check(challenge, clocks.next_check(challenge, now))
        owe(CHANGED)  # the projector's countdown: the planned close may have moved
    return None
