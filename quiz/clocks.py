"""Links before clocks: a timed round's limit runs for each player from their own Start, and the
round closes itself once every invited player's time is used up.

A player's time is used up once they submitted, their own window ended (Start + limit, plus
SUBMIT_GRACE_SECONDS), or they did not press Start within START_WINDOW_SECONDS after their link
SMS was sent or failed for good. Knocked-out players (the shadow league) and players held back by
check-in are not invited, so they hold nothing open. Whatever happens, a round closes at its
latest close (`Challenge.closes_at`: ROUND_MAX_SECONDS after it opened, moved by an extension).

Nothing here runs per submission: one aggregate query over the round's links answers "is it
complete, and if not, when could it be?", asked by the close job (which owes itself again for
that moment), by the drain that files answered forms (everyone may have submitted) and by
reconcile (a lost job), and by the projector for its countdown.
"""
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy import String, and_, bindparam, cast, func, literal, select, update

from .effects import Job, Task, owe
from .extensions import db
from .models import Challenge, FormLink, Message, MessageStatus, Participant, Submission

# The close job never owes itself again sooner than this (a plan due "now" that is not complete
# yet: a link being sent, a clock on the edge).
MIN_RECHECK_SECONDS = 1.0


def start_window_seconds(challenge: Challenge) -> float:
    """How long after its SMS a link not started stops holding the round open."""
    configured = current_app.config["START_WINDOW_SECONDS"]
    return float(configured if configured is not None else challenge.time_limit_seconds or 0)


def send_seconds(messages: int) -> float:
    """How long `messages` SMS take at SMS_RATE_PER_SECOND (0: no limit, no wait)."""
    rate = float(current_app.config["SMS_RATE_PER_SECOND"])
    return messages / rate if rate > 0 else 0.0


def round_max_seconds(challenge: Challenge, invited: int) -> float:
    """ROUND_MAX_SECONDS, or by default: the limit, the start window and the links' send time."""
    configured = current_app.config["ROUND_MAX_SECONDS"]
    if configured is not None:
        return float(configured)
    return (challenge.time_limit_seconds + start_window_seconds(challenge)
            + send_seconds(invited))


def window_end(challenge: Challenge, started_at: datetime) -> datetime | None:
    """When a player starting at `started_at` runs out of time: the limit (and any extension
    since the round opened), cut at the round's latest close; None in an untimed round."""
    return window_end_of(challenge.time_limit_seconds, challenge.extra_seconds,
                         challenge.closes_at, started_at)


def window_end_of(limit: int | None, extra: int, closes_at: datetime | None,
                  started_at: datetime) -> datetime | None:
    """`window_end` from a round's plain values (its limit, extension and latest close)."""
    if not limit or closes_at is None:
        return None
    return min(started_at + timedelta(seconds=limit + extra), closes_at)


def time_is_up(window_ends_at: datetime | None, now: datetime, grace: float) -> bool:
    """The player's own time (plus grace) has run out."""
    return window_ends_at is not None and now > window_ends_at + timedelta(seconds=grace)


def held_back(challenge: Challenge) -> bool:
    """Players who have not checked in get no link for this round (CHECKIN_REQUIRED, round 1)."""
    return current_app.config["CHECKIN_REQUIRED"] and not db.session.scalar(
        select(func.count()).where(Challenge.number < challenge.number))


def invited_count(challenge: Challenge) -> int:
    """Players the round's links go to: still in (and checked in, where check-in holds back)."""
    query = select(func.count()).where(Participant.eliminated_in.is_(None))
    if held_back(challenge):
        query = query.where(Participant.checked_in_at.is_not(None))
    return db.session.scalar(query)


@dataclass(frozen=True)
class Plan:
    """Where a round's players stand, and when it closes itself."""

    answered: int  # invited players who submitted
    playing: int  # started, not submitted, their time still running
    unstarted: int  # not started, not submitted
    unsent: int  # of those: link SMS neither sent nor failed yet
    close_at: datetime | None  # when it closes itself (planned; None: only End round closes it)
    complete: bool  # every invited player's time is used up (or the latest close has passed)


def plan(challenge: Challenge, now: datetime) -> Plan:
    """One aggregate query over the round's invited links."""
    grace = timedelta(seconds=current_app.config["SUBMIT_GRACE_SECONDS"])
    answered = Submission.id.is_not(None)
    started = FormLink.started_at.is_not(None)
    waiting = ~answered & ~started
    sent = Message.status.is_not_distinct_from(MessageStatus.SENT)
    failed = Message.status.is_not_distinct_from(MessageStatus.FAILED)
    running = ~answered & started & (FormLink.window_ends_at.is_(None)
                                     | (FormLink.window_ends_at >= now - grace))
    query = (select(func.count().filter(answered), func.count().filter(running),
                    func.count().filter(waiting), func.count().filter(waiting & ~sent & ~failed),
                    func.max(FormLink.window_ends_at).filter(~answered & started),
                    func.max(Message.sent_at).filter(waiting & sent),
                    func.max(func.coalesce(Message.claimed_at, Message.created_at))
                    .filter(waiting & failed))
             .select_from(FormLink)
             .join(Participant, and_(Participant.id == FormLink.participant_id,
                                     Participant.eliminated_in.is_(None)))
             .outerjoin(Submission, and_(Submission.participant_id == FormLink.participant_id,
                                         Submission.challenge_id == challenge.id))
             .outerjoin(Message, Message.key == link_message_key(challenge))
             .where(FormLink.challenge_id == challenge.id))
    if held_back(challenge):
        query = query.where(Participant.checked_in_at.is_not(None))
    return _plan(challenge, now, *db.session.execute(query).one())


def opening_plan(challenge: Challenge, invited: int, now: datetime) -> Plan:
    """`plan` of a round opened at `now` to `invited` players, without its query (~0.1 s at
    10,000 players): no one has started, answered or been sent the round's link yet (a round
    opens once, from a draft; its links go out after the commit). tests/test_clocks.py checks it
    against the query."""
    return _plan(challenge, now, 0, 0, invited, invited, None, None, None)


def _plan(challenge: Challenge, now: datetime, answered_n: int, playing: int, unstarted: int,
          unsent: int, window, sent_at, failed_at) -> Plan:
    """The plan from the round's counts (`plan`'s query: its aggregates, in its order)."""
    grace = timedelta(seconds=current_app.config["SUBMIT_GRACE_SECONDS"])
    if challenge.closes_at is None or not challenge.is_open:
        return Plan(answered_n, playing, unstarted, unsent, None, False)
    start_window = timedelta(seconds=start_window_seconds(challenge))
    ends = [_as_datetime(window) + grace if window else None,
            _as_datetime(sent_at) + start_window if sent_at else None,
            _as_datetime(failed_at) + start_window if failed_at else None]
    due = max((t for t in ends if t is not None), default=now)
    if unsent:  # their links are still on the way: sent at the configured rate, then started
        due = max(due, now + timedelta(seconds=send_seconds(unsent)) + start_window)
    latest = challenge.closes_at + grace
    complete = now >= latest or (not unsent and now >= due)
    return Plan(answered_n, playing, unstarted, unsent, min(due, latest), complete)


# The projector and the console render every live tick (LIVE_TICK_SECONDS) in every web process:
# they reuse a plan this young (~0.1 s of database time at 10,000 players, bench/round_plan.py).
# Their countdowns run in the browser meanwhile; the close itself never reads this cache.
SHOWN_PLAN_SECONDS = 2.0
_SHOWN: "weakref.WeakKeyDictionary[Engine, dict]" = weakref.WeakKeyDictionary()


def shown_plan(challenge: Challenge, now: datetime) -> Plan:
    """The plan for a page (the projector, the console): at most SHOWN_PLAN_SECONDS old."""
    known = _SHOWN.setdefault(db.engine, {})
    key = (challenge.id, challenge.status, challenge.closes_at)
    cached = known.get(key)
    if cached is None or time.monotonic() - cached[0] > SHOWN_PLAN_SECONDS:
        known.clear()
        known[key] = cached = (time.monotonic(), plan(challenge, now))
    return cached[1]


def _as_datetime(value) -> datetime:
    """An aggregate's datetime (SQLite hands MAX() of a filtered column back as its text)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def link_message_key(challenge: Challenge):
    """A link's SMS by its unique key (notify._queue: "round_link:<round>:<participant>"): one
    index lookup per link, where matching on participant and round would scan the round's
    messages for each."""
    return literal(f"round_link:{challenge.id}:") + cast(FormLink.participant_id, String)


def owe_check(challenge: Challenge, at: datetime) -> None:
    """The job that closes the round once it is complete, asking again at `at`."""
    owe(Job(Task.CLOSE_EXPIRED_ROUND, (challenge.id,), at=at,
            description=f"round {challenge.number}: close once everyone's time is used up"))


def next_check(challenge: Challenge, now: datetime, known: Plan | None = None) -> datetime:
    """When the close job should ask again: when the round could be complete (as `known` plans
    it, else as the round's `plan` does now), not sooner than a second from now."""
    due = (known or plan(challenge, now)).close_at or now
    return max(due, now + timedelta(seconds=MIN_RECHECK_SECONDS))


def extend_windows(challenge: Challenge, seconds: int, now: datetime,
                   running_at: datetime | None = None) -> int:
    """Move by `seconds` the window of every player whose time was still running at `running_at`
    (default: now) and who has not submitted; returns how many. An ended window is not revived
    (reinstate the player instead). A window that ended since `running_at` (a reopen) runs again
    from now.

    Per row, in Python: date arithmetic differs between SQLite and PostgreSQL, and an extension is
    one organizer's click.
    """
    answered = select(Submission.id).where(Submission.participant_id == FormLink.participant_id,
                                           Submission.challenge_id == challenge.id).exists()
    rows = db.session.execute(select(FormLink.id, FormLink.window_ends_at).where(
        FormLink.challenge_id == challenge.id, FormLink.window_ends_at >= (running_at or now),
        ~answered)).all()
    extra = timedelta(seconds=seconds)
    moved = [{"link_id": link_id, "ends": max(ends, now) + extra} for link_id, ends in rows]
    if moved:
        table = FormLink.__table__
        db.session.connection().execute(update(table).where(table.c.id == bindparam("link_id"))
                                        .values(window_ends_at=bindparam("ends")), moved)
    return len(moved)
